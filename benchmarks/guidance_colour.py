"""Which way a prior's guidance pushes the colour of a correctly coloured object.

Renders one shapes-world object in its true colour, noises it at a few timesteps, and prints,
per RGB channel and averaged over the object's pixels, the two parts of the SDS push on the
image (the update moves the image along -(e - eps), with e = e_c + (s - 1)(e_c - e_n)):

    cond push      -(e_c - eps)   what the conditional prediction alone asks for
    guidance push  -(e_c - e_n)   the CFG direction, multiplied by s - 1 in a run

A guidance push that is not ~0 on the true colour moves a run away from it at high s
(e.g. "an orange cube" turns red). Uses the prior of a preset (default: shapes).

    python benchmarks/guidance_colour.py --shape cube --colour orange
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from psd_engine.config import resolve_config  # noqa: E402
from psd_engine.models import load_prior  # noqa: E402
from psd_engine.shapes import world  # noqa: E402


def channel_pushes(prior, image: torch.Tensor, prompt: str, t_fraction: float, samples: int,
                   generator: torch.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Mean (cond push, guidance push) per channel over the object's pixels of `image` (1, 3, H, W) in [0, 1]."""
    z = prior.encode_images(image)
    cond, uncond = prior.encode_text([prompt]), prior.encode_text([""])
    mask = (image < 0.95).any(1, keepdim=True).float()  # the object: anything not white background
    t = torch.full((samples,), int(round(t_fraction * (prior.num_train_timesteps - 1))))
    eps = torch.randn((samples, *z.shape[1:]), generator=generator)
    alpha_bar = prior.alphas_cumprod[t][:, None, None, None]
    z_t = alpha_bar.sqrt() * z + (1 - alpha_bar).sqrt() * eps
    with torch.no_grad():
        e_c = prior.predict_noise(z_t, t, cond.expand(samples, -1, -1)).float()
        e_n = prior.predict_noise(z_t, t, uncond.expand(samples, -1, -1)).float()
    if e_c.shape[-1] != mask.shape[-1]:  # the prior works at its own resolution
        mask = torch.nn.functional.interpolate(mask, size=e_c.shape[-2:], mode="nearest")

    def mean(v: torch.Tensor) -> np.ndarray:
        return ((v * mask).sum((0, 2, 3)) / (mask.sum() * samples)).numpy()

    return mean(-(e_c - eps)), mean(-(e_c - e_n))


def main(argv: list[str] | None = None) -> int:
    """Print the pushes for one object at a few timesteps."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="shapes")
    parser.add_argument("--shape", default="cube", choices=world.SHAPES)
    parser.add_argument("--colour", default="orange", choices=list(world.COLORS))
    parser.add_argument("--t", type=float, nargs="+", default=[0.2, 0.5, 0.8], help="timesteps as fractions")
    parser.add_argument("--samples", type=int, default=16, help="noise draws per timestep")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    cfg = resolve_config(args.preset)
    prior = load_prior(cfg.prior, torch.device("cpu"))
    spec = world.ShapeSpec(args.shape, args.colour, yaw_deg=20.0)
    image = torch.tensor(np.array(world.render_specs([spec], cfg.prior.resolution or 32))).permute(0, 3, 1, 2).float()
    prompt = world.caption(spec)  # with the view suffix the engine adds ("..., front view")
    generator = torch.Generator().manual_seed(args.seed)
    print(f"prompt {prompt!r}; true colour {world.COLORS[args.colour]}; mean push per channel (R, G, B) "
          "inside the object")
    print("| t | cond push | guidance push |\n|---|---|---|")
    for t in args.t:
        cond, guide = channel_pushes(prior, image, prompt, t, args.samples, generator)
        print(f"| {t:g} | {' '.join(f'{v:+.3f}' for v in cond)} | {' '.join(f'{v:+.3f}' for v in guide)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
