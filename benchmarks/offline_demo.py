"""The offline default on its demo prompts, exactly as a user runs it, measured.

Each prompt runs through the CLI in a fresh process (`python -m psd_engine generate --preset
shapes --method psd`, default settings, HF_HUB_OFFLINE=1), so the wall time includes
imports and model loading. Two things a run exports are scored: its views.png (4 volume
renders of the field) and its model.glb (the mesh users download and the app shows), rendered
from the same 4 cameras by psd_engine/export/raster.py, and from 4 cameras above (45 and 70
degrees: the top of a cube, the hole of a torus). Each gets the fidelity judge's (shape,
colour) per view, the ground-truth taste and its fog, floater and sharpness components.
Writes <out>/<name>.md and <out>/<name>_views.png (per prompt: two volume views over the same
two views of the GLB mesh, lit, over the GLB from above at 45 and 70 degrees, lit).

    python benchmarks/offline_demo.py --out docs/results
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks.outline import top_squareness  # noqa: E402
from benchmarks.report import reproduce_command, write_report  # noqa: E402
from psd_engine.config import CameraConfig, load_config  # noqa: E402
from psd_engine.export.raster import glb_mesh, rasterize_mesh  # noqa: E402
from psd_engine.export.views import grid_shape  # noqa: E402
from psd_engine.scene.cameras import make_cameras, orbit_cameras  # noqa: E402
from psd_engine.shapes.judge import fidelity, load_judge  # noqa: E402
from psd_engine.shapes.taste import taste_components  # noqa: E402

DEMO_PROMPTS = ["a red cube", "a blue sphere", "a green cone", "a yellow torus", "a purple cylinder"]
HELD_OUT_PROMPTS = ["a blue cone", "a purple cube"]


def split_grid(image: np.ndarray, n: int) -> list[np.ndarray]:
    """The n tiles of a views grid written by export.write_views_grid (row by row)."""
    rows, cols = grid_shape(n)
    h, w = image.shape[0] // rows, image.shape[1] // cols
    return [image[r * h:(r + 1) * h, c * w:(c + 1) * w] for r in range(rows) for c in range(cols)][:n]


def run_prompt(prompt: str, out_dir: Path, extra: list[str]) -> dict:
    """Run the CLI on one prompt in a fresh process; returns timings and the run folder."""
    command = [sys.executable, "-m", "psd_engine", "generate", "--prompt", prompt, "--preset", "shapes",
               "--method", "psd", "--out", str(out_dir), "--quiet", *extra]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{shlex.join(command)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    rows = [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines()]
    return {"wall": wall, "loop": rows[-1]["time"], "first_step": rows[0]["time"], "steps": rows[-1]["step"]}


def score_views(prompt: str, views: list[np.ndarray], judge) -> dict:
    """Judge and taste of one asset's views (H, W, 3) floats in [0, 1]."""
    comps = taste_components(views)  # includes "taste" (= taste_3d per view)
    return {
        "views": views,
        "judged": judge.predict(views),
        "right": round(fidelity(views, prompt, judge) * len(views)),
        **{k: float(np.mean(comps[k])) for k in ("taste", "fog", "floaters", "sharpness")},
    }


# Views of the GLB from above, where the preview's 15 degree views cannot see: the top of a cube,
# the hole of a torus. (elevation, azimuth) in degrees, at the preview's distance and field of view.
ABOVE_VIEWS = ((45.0, 20.0), (45.0, 110.0), (70.0, 0.0), (70.0, 60.0))


def glb_views(glb: Path, camera: CameraConfig, n: int, resolution: int) -> dict[str, list[np.ndarray]]:
    """A GLB (read once) rendered from the n preview cameras of `camera` (those of a run's views.png),
    per shading, and ("above", "above_lit") from ABOVE_VIEWS."""
    cams = orbit_cameras(n, camera.preview_elevation, camera.preview_distance, camera.preview_fovy)
    k = len(ABOVE_VIEWS)
    above = make_cameras(torch.tensor([e for e, _ in ABOVE_VIEWS]), torch.tensor([a for _, a in ABOVE_VIEWS]),
                         torch.full((k,), camera.preview_distance), torch.full((k,), camera.preview_fovy))
    mesh = glb_mesh(glb)

    def render(cameras, shading: str) -> list[np.ndarray]:
        return list(rasterize_mesh(*mesh, cameras, resolution, shading=shading).permute(0, 2, 3, 1).numpy())

    return {"albedo": render(cams, "albedo"), "lambertian": render(cams, "lambertian"), "above": render(above, "albedo"),
            "above_lit": render(above, "lambertian")}


def score_run(prompt: str, out_dir: Path, judge) -> dict:
    """Scores of the views.png and of the model.glb a run exported (also from above), plus lit GLB views to show."""
    import imageio.v3 as iio

    views = [v.astype(np.float32) / 255.0 for v in split_grid(iio.imread(out_dir / "views.png")[..., :3], 4)]
    camera = load_config(out_dir / "config.json").camera
    mesh_views = glb_views(out_dir / "model.glb", camera, len(views), views[0].shape[0])
    return {
        "volume": score_views(prompt, views, judge),
        "mesh": score_views(prompt, mesh_views["albedo"], judge),
        "mesh_above": score_views(prompt, mesh_views["above"], judge),
        "mesh_lit": mesh_views["lambertian"],
        "mesh_above_lit": mesh_views["above_lit"],
        "top_squareness": top_squareness(out_dir / "model.glb", camera.preview_distance, camera.preview_fovy),
    }


def _cells(s: dict) -> str:
    names = ", ".join(sorted({f"{c} {sh}" for sh, c in s["judged"]}))
    return f"{s['right']}/4 ({names}) | {s['taste']:.2f} | {s['fog']:.2f} | {s['floaters']:.2f} | {s['sharpness']:.2f}"


def main(argv: list[str] | None = None) -> int:
    """Run the demo prompts and write the table and the views strip."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", nargs="+", default=DEMO_PROMPTS + HELD_OUT_PROMPTS)
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="passed to the CLI as --set")
    parser.add_argument("--out", default="docs/results")
    parser.add_argument("--name", default="demo", help="output file stem: <name>.md and <name>_views.png")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    extra = [a for o in args.overrides for a in ("--set", o)]
    judge = load_judge()
    lines = ["| prompt | asset | wall (s) | loop (s) | first step (s) | judge: right views of 4 (predictions) | taste "
             "| fog | floaters | sharpness | squareness from straight above |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    strip = []
    with tempfile.TemporaryDirectory() as tmp:
        for prompt in args.prompts:
            run_dir = Path(tmp) / prompt.replace(" ", "_")
            t = run_prompt(prompt, run_dir, extra)
            s = score_run(prompt, run_dir, judge)
            held = " (held out)" if prompt in HELD_OUT_PROMPTS else ""
            lines.append(f"| {prompt}{held} | views.png | {t['wall']:.1f} | {t['loop']:.1f} | {t['first_step']:.2f} "
                         f"| {_cells(s['volume'])} | |")
            lines.append(f"| | model.glb | | | | {_cells(s['mesh'])} | {s['top_squareness']:.1f} |")
            lines.append(f"| | model.glb, above | | | | {_cells(s['mesh_above'])} | |")
            print("\n".join(lines[-3:]), flush=True)
            rows = (s["volume"]["views"][:2], s["mesh_lit"][:2], s["mesh_above_lit"][::2])  # above: 45 and 70 deg
            strip.append(np.concatenate([np.concatenate(row, axis=1) for row in rows], axis=0))
    import imageio.v3 as iio

    iio.imwrite(out / f"{args.name}_views.png", (np.concatenate(strip, axis=1) * 255).round().astype(np.uint8))
    body = ("Each row: `python -m psd_engine generate --prompt P --preset shapes --method psd` in a fresh process "
            "(default settings, HF_HUB_OFFLINE=1). wall = the whole process (imports, model loading, run, export); "
            "loop = generate() start to the last step; first step = generate() start to the end of step 1 "
            "(the first preview follows it). Scores of two exports, each from the same 4 views at the same size "
            "(elevation 15 degrees): views.png (volume renders of the field) and model.glb (the mesh, rendered by "
            "psd_engine/export/raster.py with its vertex colours); \"model.glb, above\" is the mesh from 4 views "
            "at elevations 45 and 70 degrees (the top of a cube, the hole of a torus): fidelity judge, taste "
            "(docs: psd_engine/shapes/taste.py) and three of its components (1 = best). Squareness: the 4-fold "
            "harmonic of the GLB's outline seen from straight above, % of its mean radius (benchmarks/outline.py: "
            "a square about 7 at any turn, a disc about 0, lumpy outlines 1-2). The picture shows, per "
            "prompt, two views of views.png over the same two views of the GLB, lit, and under them the GLB from "
            "above (45 and 70 degrees), lit.\n\n"
            + "\n".join(lines) + f"\n\n![views]({args.name}_views.png)\n")
    write_report(out, args.name, "Offline default: demo prompts", reproduce_command("offline_demo.py", argv), body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
