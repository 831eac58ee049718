"""Where a run ends depends on where it starts: distil each prompt from fields that start as world shapes.

For each prompt and each start, the preset's `psd` run (default steps, as the CLI makes it)
begins from that start instead of the usual density blob: "blob" is the preset's own start,
a shape name (cube, sphere, cylinder, cone, torus) puts that shape of the shapes world (unit
SDF times --size, yaw 0, grey) into the field, raw density --inside inside and the preset's
`field.init_density` outside. The GLB is judged as offline_demo judges it, from the 4 side
views (15 degrees) and the 4 views above (45 and 70 degrees), and the lit GLB is drawn, from
the side and from above, for each cell.

A prior whose pull squares a round top and rounds a square one makes "a purple cylinder"
round again when it starts as a cube, and "a red cube" square when it starts as a blob. The
shipped prior does neither (docs/results/shape_basin.md): the top the run ends with is the top
it started with, although as a classifier it tells the two tops apart (docs/results/cube_top.md).

    python benchmarks/shape_basin.py --prompts "a red cube" "a purple cylinder" --starts blob cube cylinder --out docs/results
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks.export_threshold import optimise  # noqa: E402
from benchmarks.offline_demo import glb_views, score_views  # noqa: E402
from benchmarks.report import reproduce_command, write_picture, write_report  # noqa: E402
from psd_engine.engine import Run  # noqa: E402
from psd_engine.export import extract_mesh, write_glb  # noqa: E402
from psd_engine.scene.field import GridField  # noqa: E402
from psd_engine.shapes import world  # noqa: E402
from psd_engine.shapes.judge import load_judge  # noqa: E402

BLOB = "blob"


def start_as_shape(field: GridField, shape: str, size: float, inside: float) -> None:
    """Set a voxel field to one world shape: raw density `inside` within it, the field's init_density outside, grey."""
    if not isinstance(field, GridField):
        raise ValueError(f"a start shape needs the voxel field (field.kind grid); this run has {type(field).__name__}")
    if shape not in world.SHAPES:
        raise ValueError(f"unknown start shape '{shape}'; use {BLOB} or one of {', '.join(world.SHAPES)}")
    centres = field.voxel_centres(field.cfg.resolution, field.cfg.bound)
    distance = world.sdf_unit(shape, centres.reshape(-1, 3) / size).reshape(centres.shape[:-1])
    with torch.no_grad():
        field.density_grid[0, 0] = torch.where(distance < 0, float(inside), float(field.cfg.init_density))
        field.color_grid.zero_()  # logit 0 = grey


def starter(name: str, size: float, inside: float) -> Callable[[Run], None] | None:
    """The `start` hook of export_threshold.optimise for a start name (None = the preset's blob)."""
    if name == BLOB:
        return None
    return lambda run: start_as_shape(run.field, name, size, inside)


def basin_cell(prompt: str, start: str, args: argparse.Namespace, judge, tmp: Path) -> tuple[str, np.ndarray]:
    """'side / above' right-view counts of the run's GLB and a strip of its lit views (side, side, above, above)."""
    run = optimise(prompt, args.seed, args.preset, args.overrides, tmp, start=starter(start, args.size, args.inside))
    glb = write_glb(extract_mesh(run.field, run.cfg.export), tmp / "model.glb", run.cfg.export)
    views = glb_views(glb, run.cfg.camera, 4, run.cfg.export.views_resolution)
    run.close()
    side, above = (score_views(prompt, views[k], judge)["right"] for k in ("albedo", "above"))
    strip = np.concatenate(views["lambertian"][:2] + views["above_lit"][2:], axis=1)
    return f"{side} / {above}", strip


def main(argv: list[str] | None = None) -> int:
    """Run every prompt from every start and write <out>/<name>.md and <name>.png."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", nargs="+", default=["a red cube", "a purple cylinder"])
    parser.add_argument("--starts", nargs="+", default=[BLOB, "cube", "cylinder"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=float, default=0.93, help="scale of the world's unit shape (world sizes 0.8-1.05)")
    parser.add_argument("--inside", type=float, default=6.0, help="raw density inside the start shape")
    parser.add_argument("--preset", default="shapes")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="config override, as in the CLI")
    parser.add_argument("--out", default="docs/results")
    parser.add_argument("--name", default="shape_basin")
    args = parser.parse_args(argv)
    for start in args.starts:
        if start != BLOB and start not in world.SHAPES:
            parser.error(f"--starts: unknown start '{start}'; use {BLOB} or one of {', '.join(world.SHAPES)}")
    judge = load_judge()
    lines = ["| prompt | " + " | ".join(f"start: {s}" for s in args.starts) + " |",
             "|---|" + "---|" * len(args.starts)]
    rows = []
    for prompt in args.prompts:
        cells, strips = [], []
        for start in args.starts:
            with tempfile.TemporaryDirectory() as tmp:
                cell, strip = basin_cell(prompt, start, args, judge, Path(tmp))
            cells.append(cell)
            strips.append(strip)
            print(f"{prompt} from {start}: {cell}", flush=True)
        lines.append(f"| {prompt} | " + " | ".join(cells) + " |")
        rows.append(np.concatenate(strips, axis=1))
    out = Path(args.out)
    write_picture(out, f"{args.name}.png", np.concatenate(rows, axis=0))
    body = (f"Preset `{args.preset}`, `--method psd`, default steps, seed {args.seed}. Each cell: views of the GLB "
            "the fidelity judge calls the prompted shape and colour, of the 4 side views (15 degrees) / of the 4 "
            "views above (45 and 70 degrees). \"blob\" is the preset's own start; a shape name starts the field "
            f"as that world shape (size {args.size:g}, grey). The picture has a row per prompt and, per start, the "
            "lit GLB from two side views and from 70 degrees above.\n\n"
            + "\n".join(lines) + f"\n\n![basin]({args.name}.png)\n")
    write_report(out, args.name, "Where a run ends against where it starts",
                 reproduce_command("shape_basin.py", argv), body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
