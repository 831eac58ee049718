"""Score distillation on one picture: what the preset's guidance makes of a single fixed view.

The 2D twin of shape_basin.py. The optimised "scene" is one image seen by one camera, started
as a world render of a shape (grey-free: the render itself, in the prompt's colour) and
updated by the preset's own guidance (prior, prompt embeddings with their view suffix, CFG,
t schedule; `--method sds` by default) for the preset's number of steps. No 3D, no other
views, so nothing is averaged across cameras: if even this does not turn a disc into a square,
the guidance itself does not, whatever the 3D side does. The report gives, per prior, prompt
and start, the silhouette's squareness (the 4-fold harmonic of its radius about the centre, %
of the mean radius: a square about 7 at any turn, a disc about 0) at the start and at the end, and the
picture shows the image at five points of the run. (The fidelity judge is not used: it was
trained on clean world renders and calls nearly every one of these images a cube.)

    python benchmarks/image_sds.py
    python benchmarks/image_sds.py --priors assets/shapes-prior /tmp/ohprior --starts sphere cylinder
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks.outline import squareness  # noqa: E402
from benchmarks.report import reproduce_command, write_picture, write_report  # noqa: E402
from psd_engine.config import resolve_config  # noqa: E402
from psd_engine.engine import Run  # noqa: E402
from psd_engine.scene.cameras import make_cameras  # noqa: E402
from psd_engine.shapes import world  # noqa: E402

SNAPSHOTS = 5


def start_image(shape: str, prompt: str, elevation: float, resolution: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A world render of `shape` in the prompt's colour (red if it names none): colour (1, 3, H, W) and alpha (1, 1, H, W)."""
    _, colour = world.parse_prompt(prompt)
    spec = world.ShapeSpec(shape, colour or "red", elevation_deg=elevation, yaw_deg=20.0,
                           light_azimuth_deg=0.0, light_elevation_deg=60.0)
    rgb, alpha = world.render_specs([spec], resolution, return_alpha=True)
    alpha = torch.from_numpy(alpha)[:, None]
    # Composited on white; unmix it so the colour layer holds the object's colour at its soft edge.
    rgb = (torch.from_numpy(rgb).permute(0, 3, 1, 2) - (1.0 - alpha)) / alpha.clamp(min=1e-3)
    return torch.where(alpha > 0, rgb, torch.full_like(rgb, 0.5)), alpha


def distil_image(run: Run, start: tuple[torch.Tensor, torch.Tensor], elevation: float, lr: float) -> tuple[list[np.ndarray], np.ndarray]:
    """Optimise one image (colour and opacity over a fixed white background, as the renderer composites) with
    the run's guidance; return SNAPSHOTS (H, W, 3) pictures, the last one final, and the final opacity."""
    cfg = run.cfg
    colour, alpha = (torch.logit(x.clamp(1e-3, 1 - 1e-3)).clone().requires_grad_(True) for x in start)
    opt = torch.optim.Adam([colour, alpha], lr=lr)
    el, az = torch.tensor([elevation]), torch.tensor([0.0])
    spec = world.ShapeSpec("cube", "red")  # the world's default camera distance and fov (start_image's camera)
    camera = run.prior.camera_condition(make_cameras(el, az, torch.tensor([spec.distance]), torch.tensor([spec.fovy_deg])))
    cond, view_prompts = run.prompts.for_cameras(el, az)
    reward_prompts = view_prompts if cfg.reward.use_view_prompt else [cfg.prompt]
    keep = set(np.linspace(0, cfg.steps, SNAPSHOTS).round().astype(int).tolist())
    pictures = []
    for step in range(cfg.steps + 1):
        a = torch.sigmoid(alpha)
        image = a * torch.sigmoid(colour) + (1.0 - a)
        if step in keep:
            pictures.append(image.detach()[0].permute(1, 2, 0).numpy())
        if step == cfg.steps:
            break
        run.guidance.update_step(step, cfg.steps)
        result = run.guidance(image, cond, reward_prompts, run.generator, step=step, camera=camera)
        loss = sum(v for k, v in result.items() if k.startswith("loss_"))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return pictures, a.detach()[0, 0].numpy()


def main(argv: list[str] | None = None) -> int:
    """Distil every prompt from every start with every prior; write <out>/<name>.md and <name>.png."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--priors", nargs="+", default=[], help="prior folders (default: the preset's own prior)")
    parser.add_argument("--prompts", nargs="+", default=["a red cube", "a red cylinder"])
    parser.add_argument("--starts", nargs="+", default=["sphere"], help="world shapes whose render starts the image")
    parser.add_argument("--elevation", type=float, default=75.0, help="camera elevation, degrees (>= 60: 'overhead view')")
    parser.add_argument("--method", default="sds")
    parser.add_argument("--lr", type=float, default=0.03, help="Adam step on the image's logits")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--preset", default="shapes")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="config override, as in the CLI")
    parser.add_argument("--out", default="docs/results")
    parser.add_argument("--name", default="image_sds")
    args = parser.parse_args(argv)
    bad = [s for s in args.starts if s not in world.SHAPES]
    if bad:
        parser.error(f"--starts: unknown shape {', '.join(bad)}; use {', '.join(world.SHAPES)}")
    lines = ["| prior | prompt | start | squareness: start | final |", "|---|---|---|---|---|"]
    rows = []
    for prior in args.priors or [None]:
        for prompt in args.prompts:
            for start in args.starts:
                with tempfile.TemporaryDirectory() as tmp:
                    overrides = [f"guidance.method={args.method}", *args.overrides]
                    overrides += [f"prior.model={ROOT / prior}"] if prior else []  # relative: from the repo root
                    cfg = resolve_config(args.preset, overrides, prompt=prompt, seed=args.seed, out_dir=tmp)
                    run = Run(cfg)
                    image = start_image(start, prompt, args.elevation, cfg.render.resolution)
                    pictures, final_alpha = distil_image(run, image, args.elevation, args.lr)
                    run.close()
                before, after = squareness(image[1][0, 0].numpy()), squareness(final_alpha)
                label = prior or "preset's prior"
                lines.append(f"| {label} | {prompt} | {start} | {before:.1f} | {after:.1f} |")
                print(lines[-1], flush=True)
                rows.append(np.concatenate([np.pad(x, ((1, 1), (1, 1), (0, 0))) for x in pictures], axis=1))
    out = Path(args.out)
    picture = np.concatenate(rows, axis=0)
    write_picture(out, f"{args.name}.png", picture.repeat(4, axis=0).repeat(4, axis=1))  # 32 px is too small to see
    body = (f"Preset `{args.preset}`, `--method {args.method}`, {SNAPSHOTS - 1} snapshots over the preset's steps, "
            f"seed {args.seed}, camera elevation {args.elevation:g} degrees, Adam lr {args.lr:g} on the colour and "
            "opacity logits. Each row of the picture is one line of the table, left to right from the start render to "
            "the final image.\n\n" + "\n".join(lines) + f"\n\n![image sds]({args.name}.png)\n")
    write_report(out, args.name, "Score distillation on one picture", reproduce_command("image_sds.py", argv), body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
