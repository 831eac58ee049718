"""Which way a prior's guidance pushes the colour of a correctly coloured object.

Renders one shapes-world object in its true colour, noises it at a few timesteps, and prints,
per RGB channel and averaged over the object's pixels, the two parts of the SDS push on the
image (the update moves the image along -(e - eps), with e = e_c + (s - 1)(e_c - e_n)):

    cond push      -(e_c - eps)   what the conditional prediction alone asks for
    guidance push  -(e_c - e_n)   the CFG direction, multiplied by s - 1 in a run

A guidance push that is not ~0 on the true colour moves a run away from it at high s
(e.g. "an orange cube" turns red). Uses the prior of a preset (default: shapes). A last line
gives what the preset's reward thinks of the same object in each world colour, scored
against the prompt without its view suffix: whether a reward could steer the colour back.

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
from psd_engine.rewards import load_reward  # noqa: E402
from psd_engine.shapes import world  # noqa: E402


def channel_pushes(prior, image: torch.Tensor, prompt: str, t_fractions: list[float], samples: int,
                   generator: torch.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per timestep, mean (cond push, guidance push) per channel over the object's pixels of `image`
    (1, 3, H, W) in [0, 1]."""
    z = prior.encode_images(image)
    text = torch.cat([prior.encode_text([prompt]), prior.encode_text([""])]).repeat_interleave(samples, dim=0)
    mask = (image < 0.95).any(1, keepdim=True).float()  # the object: anything not white background
    if z.shape[-1] != mask.shape[-1]:  # the prior works at its own resolution
        mask = torch.nn.functional.interpolate(mask, size=z.shape[-2:], mode="nearest")

    def mean(v: torch.Tensor) -> np.ndarray:
        return ((v * mask).sum((0, 2, 3)) / (mask.sum() * samples)).numpy()

    rows = []
    for t_fraction in t_fractions:
        t = torch.full((samples,), int(round(t_fraction * (prior.num_train_timesteps - 1))))
        eps = torch.randn((samples, *z.shape[1:]), generator=generator)
        alpha_bar = prior.alphas_cumprod[t][:, None, None, None]
        z_t = alpha_bar.sqrt() * z + (1 - alpha_bar).sqrt() * eps
        with torch.no_grad():  # conditional and unconditional in one batched call, as the engine's CFG does
            e_c, e_n = prior.predict_noise(torch.cat([z_t, z_t]), torch.cat([t, t]), text).float().chunk(2)
        rows.append((mean(-(e_c - eps)), mean(-(e_c - e_n))))
    return rows


def reward_by_colour(reward, shape: str, prompt: str, resolution: int, views: int = 4) -> dict[str, float]:
    """Mean reward of `prompt` on world renders of `shape` in each world colour (yaw 20, `views` azimuths)."""
    colours = list(world.COLORS)
    specs = [world.ShapeSpec(shape, c, yaw_deg=20.0, azimuth_deg=a, light_azimuth_deg=a)
             for c in colours for a in np.linspace(0.0, 90.0, views)]
    images = torch.from_numpy(world.render_specs(specs, resolution)).permute(0, 3, 1, 2)
    with torch.no_grad():
        scores = reward(images, [prompt] * len(specs)).float().view(len(colours), views).mean(1)
    return dict(zip(colours, scores.tolist()))


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
    prompt = world.caption(spec, prompt_cfg=cfg.prompt_processing)  # with the view suffix the engine adds
    generator = torch.Generator().manual_seed(args.seed)
    print(f"prompt {prompt!r}; true colour {world.COLORS[args.colour]}; mean push per channel (R, G, B) "
          "inside the object")
    print("| t | cond push | guidance push |\n|---|---|---|")
    for t, (cond, guide) in zip(args.t, channel_pushes(prior, image, prompt, args.t, args.samples, generator)):
        print(f"| {t:g} | {' '.join(f'{v:+.3f}' for v in cond)} | {' '.join(f'{v:+.3f}' for v in guide)} |")
    if cfg.reward.kind != "none":
        base = world.base_prompt(args.shape, args.colour)
        scores = reward_by_colour(load_reward(cfg.reward, torch.device("cpu")), args.shape, base, cfg.reward.resolution)
        print(f"reward of {base!r} on world renders of a {args.shape} in each colour: "
              + ", ".join(f"{c} {v:.2f}" for c, v in sorted(scores.items(), key=lambda kv: -kv[1])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
