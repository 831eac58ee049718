"""How the exported mesh depends on export.density_threshold, for the same optimised field.

Each (prompt, seed) is optimised once in-process by the preset (the CLI's steps and random
draws), then its field is meshed at every threshold; each GLB is rendered, as offline_demo
does, from the 4 side views of views.png and from its 4 views above, and the fidelity judge
counts the views that show the prompted shape and colour. Writes <out>/<name>.md.

    python benchmarks/export_threshold.py --prompts "a green cone" "a yellow torus" --seeds 0 1 --out docs/results
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.offline_demo import glb_views, score_views  # noqa: E402
from benchmarks.report import reproduce_command, write_report  # noqa: E402
from psd_engine.config import RunConfig, resolve_config  # noqa: E402
from psd_engine.engine import Run  # noqa: E402
from psd_engine.export import ExportError, extract_mesh, write_glb  # noqa: E402
from psd_engine.scene import Field  # noqa: E402
from psd_engine.shapes.judge import load_judge  # noqa: E402


def optimise(prompt: str, seed: int, preset: str, overrides: list[str], out_dir: Path,
             start: Callable[[Run], None] | None = None) -> Run:
    """The preset's full run of `prompt` (as `generate --method psd` makes it), returned open.

    `start`, if given, changes the new run (e.g. its field's starting shape) before the first step.
    """
    cfg = resolve_config(preset, ["guidance.method=psd", *overrides], prompt=prompt, seed=seed, out_dir=str(out_dir))
    run = Run(cfg)
    if start is not None:
        start(run)
    for step in range(cfg.steps):
        run.step(step)
    return run


def threshold_cells(field: Field, cfg: RunConfig, prompt: str, thresholds: list[float], judge,
                    out_dir: Path) -> list[str]:
    """'side / above' right-view counts of the field's mesh at each threshold ('no surface' if empty)."""
    cells = []
    for threshold in thresholds:
        export = replace(cfg.export, density_threshold=threshold)
        try:
            glb = write_glb(extract_mesh(field, export), out_dir / f"model_{threshold:g}.glb", export)
        except ExportError:
            cells.append("no surface")
            continue
        views = glb_views(glb, cfg.camera, 4, export.views_resolution)
        side, above = (score_views(prompt, views[k], judge)["right"] for k in ("albedo", "above"))
        cells.append(f"{side} / {above}")
    return cells


def main(argv: list[str] | None = None) -> int:
    """Optimise each prompt and seed, mesh it at each threshold, and write the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", nargs="+", default=["a green cone", "a yellow torus"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--thresholds", nargs="+", type=float, default=[1.0, 2.0, 3.0, 4.0, 6.0])
    parser.add_argument("--preset", default="shapes")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="config override, as in the CLI")
    parser.add_argument("--out", default="docs/results")
    parser.add_argument("--name", default="export_threshold")
    args = parser.parse_args(argv)
    judge = load_judge()
    lines = ["| prompt | seed | " + " | ".join(f"threshold {t:g}" for t in args.thresholds) + " |",
             "|---|---|" + "---|" * len(args.thresholds)]
    for prompt in args.prompts:
        for seed in args.seeds:
            with tempfile.TemporaryDirectory() as tmp:
                run = optimise(prompt, seed, args.preset, args.overrides, Path(tmp))
                cells = threshold_cells(run.field, run.cfg, prompt, args.thresholds, judge, Path(tmp))
                run.close()
            lines.append(f"| {prompt} | {seed} | " + " | ".join(cells) + " |")
            print(lines[-1], flush=True)
    body = (f"Preset `{args.preset}`, `--method psd`, default steps. Each cell: views of the GLB the fidelity judge "
            "calls the prompted shape and colour, of the 4 side views (elevation 15 degrees, as views.png) / of "
            "the 4 views above (45 and 70 degrees). Same field per row; only the threshold changes.\n\n"
            + "\n".join(lines) + "\n")
    write_report(Path(args.out), args.name, "The exported mesh against export.density_threshold",
                 reproduce_command("export_threshold.py", argv), body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
