"""Sample 2D images from a trained shapes prior (DDIM, optional classifier-free guidance) into a grid PNG.

Usage: python training/sample_prior.py --prior assets/shapes-prior --prompts "a red cube" "a crimson box"
       python training/sample_prior.py --pairs train --views front side --per-prompt 2 --out /tmp/samples.png

Rows are prompts, columns are samples; --npz also saves the raw images and their prompts,
which the fidelity judge can score.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from psd_engine.config import PromptConfig  # noqa: E402
from psd_engine.knowledge import trained_prompt_config  # noqa: E402
from psd_engine.models.camera_condition import camera_input  # noqa: E402
from psd_engine.prompts import view_prompt  # noqa: E402
from psd_engine.shapes import world  # noqa: E402
from training.train_prior import encode_texts, load_text_encoder  # noqa: E402


def load_prior(folder: Path):
    """The UNet (eval, fp32), its DDPM scheduler config and psd_prior.json of a saved prior."""
    from diffusers import DDIMScheduler, UNet2DConditionModel

    meta_path = folder / "psd_prior.json"
    if not meta_path.is_file():
        raise SystemExit(f"{folder} is not a shapes prior (no psd_prior.json); train one with training/train_prior.py")
    meta = json.loads(meta_path.read_text())
    unet = UNet2DConditionModel.from_pretrained(folder / "unet").eval().requires_grad_(False).float()
    scheduler = DDIMScheduler.from_pretrained(folder / "scheduler")
    return unet, scheduler, meta


@torch.no_grad()
def sample(
    unet,
    scheduler,
    cond: torch.Tensor,
    uncond: torch.Tensor,
    steps: int = 50,
    guidance_scale: float = 1.0,
    generator: torch.Generator | None = None,
    batch: int = 64,
    cameras: torch.Tensor | None = None,
) -> torch.Tensor:
    """Images (B, 3, R, R) in [0, 1] for text embeddings cond (B, L, D) with CFG against uncond (1, L, D).

    `cameras`: camera features (B, F) or camera maps (B, 3, R, R) for a camera-conditioned UNet
    (None there = unknown camera).
    """
    res = unet.config.sample_size
    dim = unet.config.projection_class_embeddings_input_dim if unet.config.class_embed_type == "projection" else 0
    map_channels = unet.config.in_channels - 3
    if cameras is None and (dim or map_channels):
        cameras = torch.zeros(cond.shape[0], dim) if dim else torch.zeros(cond.shape[0], map_channels, res, res)
    outs = []
    for start in range(0, cond.shape[0], batch):
        c = cond[start : start + batch]
        n = c.shape[0]
        x = torch.randn(n, 3, res, res, generator=generator)
        scheduler.set_timesteps(steps)
        u = uncond.expand(n, -1, -1)
        labels = None if not dim else cameras[start : start + batch].repeat(2, 1)
        maps = None if not map_channels else cameras[start : start + batch].repeat(2, 1, 1, 1)
        for t in scheduler.timesteps:
            x_in = torch.cat([x, x]) if maps is None else torch.cat([torch.cat([x, x]), maps], dim=1)
            eps = unet(x_in, t, encoder_hidden_states=torch.cat([u, c]), class_labels=labels).sample
            eps_u, eps_c = eps.chunk(2)
            eps = eps_u + guidance_scale * (eps_c - eps_u)
            x = scheduler.step(eps, t, x).prev_sample
        outs.append(((x + 1.0) / 2.0).clamp(0, 1))
    return torch.cat(outs)


# A representative camera (elevation, azimuth in degrees, object yaw 0) per view word.
VIEW_CAMERAS: dict[str, tuple[float, float]] = {
    "front": (15.0, 0.0), "side": (15.0, 90.0), "back": (15.0, 180.0), "overhead": (70.0, 0.0),
}


def view_cameras(prompts: list[str], meta: dict) -> torch.Tensor | None:
    """Camera features or maps of each prompt's view word (zeros = unknown without one); None if text only."""
    harmonics = tuple(meta.get("camera_harmonics") or ())
    if not harmonics and not meta.get("camera_map"):
        return None
    views = [next((v for v in VIEW_CAMERAS if prompt.endswith(f"{v} view")), None) for prompt in prompts]
    el = torch.tensor([VIEW_CAMERAS[v][0] if v else 0.0 for v in views])
    az = torch.tensor([VIEW_CAMERAS[v][1] if v else 0.0 for v in views])
    known = torch.tensor([v is not None for v in views], dtype=torch.float32)
    spec = world.ShapeSpec("cube", "red")  # the world's default camera distance and field of view
    n = len(prompts)
    inputs = camera_input(el, az, torch.full((n,), spec.distance), torch.full((n,), spec.fovy_deg), harmonics,
                          bool(meta.get("camera_map")), int(meta["resolution"]))
    return inputs * known.view(-1, *([1] * (inputs.dim() - 1)))


def default_views(cfg: PromptConfig) -> list[str]:
    """Three views to sample a prior from: its front, a quarter turn and the back."""
    names = cfg.azimuth_views
    if not names:
        return ["front", "side", "back"]
    return [names[0], names[len(names) // 4], names[len(names) // 2]]


def prompts_for(pairs: str, views: list[str], cfg: PromptConfig | None = None) -> list[str]:
    """Prompts of the trained or held-out pairs, one per pair and view ("none" = no suffix)."""
    chosen = world.train_pairs() if pairs == "train" else world.held_out_pairs() if pairs == "held-out" else world.all_pairs()
    cfg = cfg or PromptConfig()
    out = []
    for shape, color in chosen:
        base = world.base_prompt(shape, color)
        out += [base if v == "none" else view_prompt(base, v, cfg) for v in views]
    return out


def main(argv: list[str] | None = None) -> None:
    """Entry point: sample the prompts and write the grid (and optionally an npz)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prior", default=str(ROOT / "assets" / "shapes-prior"))
    ap.add_argument("--prompts", nargs="*", default=None)
    ap.add_argument("--pairs", choices=("train", "held-out", "all"), default=None, help="sample the world's pairs")
    ap.add_argument("--views", nargs="*", default=["front"],
                    help="view names of the prior's captions (front, front-right, ..., 'overhead front', or "
                         "front side back overhead for DreamFusion's words) or none")
    ap.add_argument("--per-prompt", type=int, default=4)
    ap.add_argument("--steps", type=int, default=50)
    # The shipped prior samples cleanly without guidance (96 % judged right); at 2+ the small
    # model's guided trajectories leave the data and shapes break up.
    ap.add_argument("--cfg", type=float, default=1.0, help="classifier-free guidance scale")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scale", type=int, default=3, help="nearest-neighbour upscaling of the grid for viewing")
    ap.add_argument("--out", default="/tmp/prior_samples.png")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (1 is faster on a busy machine)")
    ap.add_argument("--npz", default="", help="also save images (N,H,W,3 float32) and prompts here")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    unet, scheduler, meta = load_prior(Path(args.prior))
    prompts = list(args.prompts or [])
    if args.pairs:
        try:
            prompts += prompts_for(args.pairs, args.views, trained_prompt_config(meta))
        except ValueError as err:
            raise SystemExit(f"--views: {err}") from None
    if not prompts:
        raise SystemExit("give --prompts TEXT... or --pairs train|held-out|all")
    tokenizer, text_model = load_text_encoder()
    expanded = [p for p in prompts for _ in range(args.per_prompt)]
    cond = encode_texts(tokenizer, text_model, expanded, meta["max_length"])
    uncond = encode_texts(tokenizer, text_model, [""], meta["max_length"])
    t0 = time.time()
    cameras = view_cameras(expanded, meta)
    images = sample(unet, scheduler, cond, uncond, args.steps, args.cfg, torch.Generator().manual_seed(args.seed),
                    cameras=cameras)
    print(f"sampled {len(expanded)} images in {time.time() - t0:.0f} s")
    arr = images.permute(0, 2, 3, 1).numpy().astype(np.float32)
    tiled = world.grid(arr, args.per_prompt)
    tiled = tiled.repeat(args.scale, 0).repeat(args.scale, 1)
    import imageio.v3 as iio

    iio.imwrite(args.out, world.to_uint8(tiled))
    print(f"wrote {args.out} (rows: {len(prompts)} prompts, columns: {args.per_prompt} samples)")
    for i, p in enumerate(prompts):
        print(f"  row {i}: {p}")
    if args.npz:
        np.savez_compressed(args.npz, images=arr, prompts=np.array(expanded))
        print(f"wrote {args.npz}")


if __name__ == "__main__":
    main()
