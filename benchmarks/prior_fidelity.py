"""How well the shipped 2D prior draws what it is asked: fidelity-judge accuracy of its samples.

Samples each shape-colour pair of the shapes world from several views with the prior
(DDIM, classifier-free guidance), classifies every sample with the fidelity judge and
prints a markdown table per pair (shape, colour, both) plus the totals.

    python benchmarks/prior_fidelity.py --pairs train            # all trained pairs
    python benchmarks/prior_fidelity.py --pairs held-out
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from psd_engine.shapes import world  # noqa: E402
from psd_engine.shapes.judge import load_judge  # noqa: E402
from psd_engine.knowledge import trained_prompt_config  # noqa: E402
from training.sample_prior import default_views, load_prior, prompts_for, sample, view_cameras  # noqa: E402
from training.train_prior import encode_texts, load_text_encoder  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Sample, judge and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prior", default=str(ROOT / "assets" / "shapes-prior"))
    ap.add_argument("--pairs", choices=("train", "held-out", "all"), default="train")
    ap.add_argument("--views", nargs="+", default=None,
                    help="view names of the prior's captions (default: its front, a quarter turn and its back)")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--cfg", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    unet, scheduler, meta = load_prior(Path(args.prior))
    prompt_cfg = trained_prompt_config(meta)
    args.views = args.views or default_views(prompt_cfg)
    tokenizer, encoder = load_text_encoder()
    try:
        prompts = prompts_for(args.pairs, args.views, prompt_cfg)
    except ValueError as err:
        raise SystemExit(f"--views: {err}") from None
    cond = encode_texts(tokenizer, encoder, prompts, meta["max_length"])
    uncond = encode_texts(tokenizer, encoder, [""], meta["max_length"])
    images = sample(unet, scheduler, cond, uncond, args.steps, args.cfg, torch.Generator().manual_seed(args.seed),
                    cameras=view_cameras(prompts, meta))
    predicted = load_judge().predict(images.permute(0, 2, 3, 1).numpy())
    truth = [world.parse_prompt(p) for p in prompts]
    print(f"prior={args.prior} pairs={args.pairs} views={' '.join(args.views)} steps={args.steps} cfg={args.cfg}")
    print("| pair | shape | colour | both |\n|---|---|---|---|")
    for i in range(0, len(prompts), len(args.views)):
        rows = list(zip(predicted[i : i + len(args.views)], truth[i : i + len(args.views)]))
        shape = sum(p[0] == t[0] for p, t in rows)
        colour = sum(p[1] == t[1] for p, t in rows)
        both = sum(p == t for p, t in rows)
        n = len(rows)
        print(f"| {truth[i][1]} {truth[i][0]} | {shape}/{n} | {colour}/{n} | {both}/{n} |")
    n = len(prompts)
    print(f"| **all** | {sum(p[0] == t[0] for p, t in zip(predicted, truth)) / n:.1%} | "
          f"{sum(p[1] == t[1] for p, t in zip(predicted, truth)) / n:.1%} | "
          f"{sum(p == t for p, t in zip(predicted, truth)) / n:.1%} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
