"""Does a prior's view word say how a cube is turned? Its implicit classifier on face-on and edge-on cubes.

A cube seen face-on (camera azimuth within +-10 degrees of the cube's front) and edge-on (45
+-10 degrees off it) are different pictures. If a run's views are to agree on how its cube is
turned, the prior must read that from the view word each view's prompt gets. Noised world
renders of red cubes, half of each, go through the prior with the face-on caption ("front") and
the edge-on one (the view 45 degrees round, e.g. "front-right"); the caption with the smaller
noise-prediction error (mean of a few noise draws) is the prior's answer. About 50 % means the
word does not carry the turn. A prior whose views have no word for 45 degrees (DreamFusion's
front / side / back) gets the same word for both and scores 50 % by construction.

    python benchmarks/turn_classifier.py
    python benchmarks/turn_classifier.py --prior /tmp/exp/priorC --timesteps 100 300 500 700
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

from benchmarks.implicit_classifier import noise_errors, timestep_table  # noqa: E402
from benchmarks.report import reproduce_command, write_report  # noqa: E402
from psd_engine.config import PriorConfig  # noqa: E402
from psd_engine.knowledge import prior_manifest, trained_prompt_config  # noqa: E402
from psd_engine.models import load_prior  # noqa: E402
from psd_engine.prompts import view_direction, view_prompt  # noqa: E402
from psd_engine.shapes import world  # noqa: E402

# Elevation bands in degrees (the world's overhead views start at 60).
BANDS = {"side (0-40)": (0.0, 40.0), "above (60-80)": (60.0, 80.0)}
TURNS = {"face-on": 0.0, "edge-on": 45.0}  # camera azimuth relative to the cube's front
JITTER_DEG = 10.0


def turned_cubes(band: tuple[float, float], n: int, rng: np.random.Generator) -> tuple[list[world.ShapeSpec], np.ndarray]:
    """n red cubes of random yaw and size, alternately face-on and edge-on to the camera; and which are face-on."""
    face_on = np.arange(n) % 2 == 0
    relative = np.where(face_on, TURNS["face-on"], TURNS["edge-on"]) + rng.uniform(-JITTER_DEG, JITTER_DEG, n)
    specs = world.sample_specs(n, rng, pairs=[("cube", "red")])
    elevations = rng.uniform(*band, size=n)
    specs = [replace(s, elevation_deg=float(e), azimuth_deg=s.yaw_deg + float(r), light_azimuth_deg=s.yaw_deg + float(r))
             for s, e, r in zip(specs, elevations, relative)]
    return specs, face_on


@torch.no_grad()
def classify_turns(prior_path: str, timesteps: list[int], n: int, repeats: int = 4, seed: int = 0) -> list[dict]:
    """One row per (view band, timestep): share of cubes whose own turn's caption wins, and the two captions."""
    prior = load_prior(PriorConfig(kind="pixel", model=prior_path), torch.device("cpu"))
    prompt_cfg = trained_prompt_config(prior_manifest(prior_path))
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for band_name, band in BANDS.items():
        specs, face_on = turned_cubes(band, n, rng)
        x = torch.from_numpy(world.render_specs(specs, prior.resolution)).permute(0, 3, 1, 2) * 2.0 - 1.0
        captions = {turn: [view_prompt("a red cube", view_direction(s.elevation_deg, az, prompt_cfg), prompt_cfg)
                           for s in specs] for turn, az in TURNS.items()}
        emb = {turn: prior.encode_text(c) for turn, c in captions.items()}
        truth = torch.from_numpy(face_on)
        for t in timesteps:
            err = noise_errors(prior, x, emb, t, generator, repeats)
            said_face_on = err["face-on"] < err["edge-on"]
            rows.append({"view": band_name, "t": t, "accuracy": float((said_face_on == truth).float().mean()),
                         "words": f"{captions['face-on'][0]!r} / {captions['edge-on'][0]!r}"})
    return rows


def main(argv: list[str] | None = None) -> int:
    """Write the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prior", default="assets/shapes-prior", help="prior folder (relative paths: from the repo root)")
    ap.add_argument("--timesteps", type=int, nargs="+", default=[100, 300, 500, 700])
    ap.add_argument("--n", type=int, default=48, help="cube renders per view band (half face-on)")
    ap.add_argument("--repeats", type=int, default=4, help="noise draws averaged per render and timestep")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="docs/results")
    ap.add_argument("--name", default="turn_classifier")
    args = ap.parse_args(argv)
    if args.n < 2 or args.repeats < 1:
        raise SystemExit("--n must be at least 2 and --repeats at least 1")
    rows = classify_turns(str(ROOT / args.prior), args.timesteps, args.n, args.repeats, args.seed)
    intro = (f"Prior `{args.prior}`; {args.n} red cubes per view band, half face-on, half edge-on "
             f"(+-{JITTER_DEG:.0f} degrees), {args.repeats} noise draws each, seed {args.seed}. Each cell: cubes whose "
             "own turn's caption gives the smaller noise-prediction error (50 % = the word carries no turn).")
    body = timestep_table(intro, ["view", "captions (face-on / edge-on)"], lambda r: [r["view"], r["words"]], rows,
                          args.timesteps, lambda r: f"{100 * r['accuracy']:.0f} %")
    write_report(Path(args.out), args.name, "Does the view word say how a cube is turned?",
                 reproduce_command("turn_classifier.py", argv), body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
