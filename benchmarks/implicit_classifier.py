"""Does a prior tell two shapes apart? Its implicit classifier on noisy world renders.

A diffusion prior classifies an image without being trained to: noise the image, predict the
noise under each candidate caption, and the caption with the smaller error is the prior's
answer (the same comparison that score distillation's guidance direction amplifies). Renders
of each shape from the shapes world (random size, yaw, lighting; the elevations of one view
band) are scored against their own world caption with each candidate's shape word in it
(same colour, same view word). The table gives, per view band, true shape and timestep, the
share of renders whose own caption wins, and the mean error gap to the best wrong caption
(% of the true caption's error; > 0 means the prior prefers the truth). With two candidates,
a prior that cannot tell them apart scores about 50 %; with all five, about 20 %.

    python benchmarks/implicit_classifier.py
    python benchmarks/implicit_classifier.py --prior /tmp/ohprior --shapes cube cylinder
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks.report import reproduce_command, write_report  # noqa: E402
from psd_engine.config import PriorConfig  # noqa: E402
from psd_engine.knowledge import prior_manifest, trained_prompt_config  # noqa: E402
from psd_engine.models import load_prior  # noqa: E402
from psd_engine.shapes import world  # noqa: E402

# Elevation bands in degrees; the world captions views from >= 60 degrees "overhead".
BANDS = {"low (0-30)": (0.0, 30.0), "overhead (60-80)": (60.0, 80.0)}


def renders(shape: str, colours: list[str], band: tuple[float, float], n: int, seed: int) -> list[world.ShapeSpec]:
    """n world objects of one shape (colours cycled) seen from elevations inside `band`."""
    rng = np.random.default_rng(seed)
    specs = world.sample_specs(n, rng, pairs=[(shape, c) for c in colours])
    elevations = rng.uniform(*band, size=n)
    return [replace(s, elevation_deg=float(e)) for s, e in zip(specs, elevations)]


@torch.no_grad()
def noise_errors(prior, x: torch.Tensor, embeddings: dict, t: int, generator: torch.Generator,
                 repeats: int = 1) -> dict:
    """Per image, the noise-prediction MSE under each candidate caption's embedding (same noise for all; mean of `repeats` draws)."""
    total = {key: torch.zeros(x.shape[0]) for key in embeddings}
    ab = prior.alphas_cumprod[t]
    tt = torch.full((x.shape[0],), t)
    for _ in range(repeats):
        noise = torch.randn(x.shape, generator=generator)
        x_t = ab.sqrt() * x + (1.0 - ab).sqrt() * noise
        for key, e in embeddings.items():
            total[key] += (prior.predict_noise(x_t, tt, e) - noise).pow(2).mean(dim=(1, 2, 3)) / repeats
    return total


@torch.no_grad()
def classify(prior_path: str, shapes: list[str], colours: list[str], timesteps: list[int], n: int,
             seed: int = 0) -> list[dict]:
    """One row per (view band, true shape, timestep): accuracy and mean error gap of the implicit classifier."""
    prior = load_prior(PriorConfig(kind="pixel", model=prior_path), torch.device("cpu"))
    prompt_cfg = trained_prompt_config(prior_manifest(prior_path))
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for band_name, band in BANDS.items():
        for true_shape in shapes:
            specs = renders(true_shape, colours, band, n, seed)
            x = torch.from_numpy(world.render_specs(specs, prior.resolution)).permute(0, 3, 1, 2) * 2.0 - 1.0
            # Each render's own world caption (colour, view word), with each candidate's shape word.
            emb = {s: prior.encode_text([world.caption(replace(spec, shape=s), prompt_cfg=prompt_cfg) for spec in specs])
                   for s in shapes}
            for t in timesteps:
                err = noise_errors(prior, x, emb, t, generator)
                wrong = torch.stack([err[s] for s in shapes if s != true_shape]).min(dim=0).values
                right = err[true_shape]
                rows.append({"view": band_name, "shape": true_shape, "t": t,
                             "accuracy": float((right < wrong).float().mean()),
                             "gap": float(((wrong - right) / right).mean() * 100.0)})
    return rows


def timestep_table(intro: str, label_columns: list[str], labels, rows: list[dict], timesteps: list[int], cell) -> str:
    """A Markdown table: rows grouped by len(timesteps), label columns from the group's first row, one cell per t."""
    lines = [intro, "", "| " + " | ".join(label_columns) + " | " + " | ".join(f"t = {t}" for t in timesteps) + " |",
             "|---" * (len(timesteps) + len(label_columns)) + "|"]
    for i in range(0, len(rows), len(timesteps)):
        group = rows[i:i + len(timesteps)]
        lines.append("| " + " | ".join(labels(group[0])) + " | " + " | ".join(cell(r) for r in group) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prior", default="assets/shapes-prior", help="prior folder (relative paths: from the repo root)")
    ap.add_argument("--shapes", nargs="+", default=list(world.SHAPES))
    ap.add_argument("--colours", nargs="+", default=["red", "purple", "green", "blue"])
    ap.add_argument("--timesteps", type=int, nargs="+", default=[100, 300, 500])
    ap.add_argument("--n", type=int, default=64, help="renders per shape and view band")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="docs/results")
    ap.add_argument("--name", default="implicit_classifier")
    args = ap.parse_args(argv)
    unknown = [s for s in args.shapes if s not in world.SHAPES] + [c for c in args.colours if c not in world.COLORS]
    if unknown or len(args.shapes) < 2:
        raise SystemExit(f"give at least two shapes of {', '.join(world.SHAPES)} and colours of "
                         f"{', '.join(world.COLORS)}; unknown: {', '.join(unknown) or 'none'}")
    rows = classify(str(ROOT / args.prior), args.shapes, args.colours, args.timesteps, args.n, args.seed)
    intro = (f"Prior `{args.prior}`; candidates {', '.join(args.shapes)}; {args.n} renders per shape and view band "
             f"(colours {', '.join(args.colours)}), seed {args.seed}. Each cell: renders whose own caption gives the "
             "smaller noise-prediction error / mean error gap to the best wrong caption (% of the right caption's error).")
    body = timestep_table(intro, ["view", "shape"], lambda r: [r["view"], r["shape"]], rows, args.timesteps,
                          lambda r: f"{100 * r['accuracy']:.0f} % / {r['gap']:+.1f}")
    write_report(Path(args.out), args.name, "The prior as a classifier",
                 reproduce_command("implicit_classifier.py", argv), body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
