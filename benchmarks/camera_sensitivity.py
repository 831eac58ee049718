"""How much a prior's noise prediction depends on the camera, the view word and the colour word.

Noisy renders of a red cube from the shapes world (yaw 0; elevations and azimuths below),
captioned in the prior's own view words (psd_prior.json "views"), go through the prior at a few
timesteps; the table gives the RMS change of the predicted noise when one input changes (the
view word as for a camera turned by 90 degrees, or 45 for a prior with azimuth sectors; the
colour word; the camera), as a percentage of the prediction's RMS. A camera-conditioned prior
(psd_prior.json "camera_harmonics" or "camera_map") that reads its camera shows a clear change for "camera
azimuth +45"; a text-only prior has no camera rows.

    python benchmarks/camera_sensitivity.py --prior assets/shapes-prior
    python benchmarks/camera_sensitivity.py --prior /tmp/camprior/prior
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from psd_engine.config import PriorConfig  # noqa: E402
from psd_engine.knowledge import prior_manifest, trained_prompt_config  # noqa: E402
from psd_engine.models import load_prior  # noqa: E402
from psd_engine.prompts import view_direction, view_prompt  # noqa: E402
from psd_engine.scene.cameras import make_cameras  # noqa: E402
from psd_engine.shapes import world  # noqa: E402

ELEVATIONS = (15.0, 70.0)
AZIMUTHS = (0.0, 20.0, 45.0)


def _rms(x: torch.Tensor) -> float:
    return float(x.pow(2).mean().sqrt())


@torch.no_grad()
def sensitivity(prior_path: str, timesteps: list[int], seed: int = 0) -> list[dict[str, float]]:
    """Per timestep: RMS change of the noise prediction (% of its RMS) for each changed input."""
    prior = load_prior(PriorConfig(kind="pixel", model=prior_path), torch.device("cpu"))
    specs = [world.ShapeSpec("cube", "red", azimuth_deg=a, light_azimuth_deg=a, elevation_deg=e)
             for e in ELEVATIONS for a in AZIMUTHS]
    z = torch.from_numpy(world.render_specs(specs, prior.resolution)).permute(0, 3, 1, 2) * 2.0 - 1.0
    elevation = torch.tensor([s.elevation_deg for s in specs])
    azimuth = torch.tensor([s.azimuth_deg for s in specs])
    prompt_cfg = trained_prompt_config(prior_manifest(prior_path))

    def captions(colour: str, turn: float = 0.0) -> torch.Tensor:
        # Each render's caption in the prior's own view words, for the camera turned by `turn` degrees.
        views = [view_direction(s.elevation_deg, s.azimuth_deg + turn, prompt_cfg) for s in specs]
        return prior.encode_text([view_prompt(f"a {colour} cube", v, prompt_cfg) for v in views])

    emb = captions("red")

    def cameras(azimuth: torch.Tensor):
        n = len(specs)
        distance, fovy = torch.full((n,), specs[0].distance), torch.full((n,), specs[0].fovy_deg)
        return prior.camera_condition(make_cameras(elevation, azimuth, distance, fovy))

    camera = cameras(azimuth)
    changes = {
        "view word, camera +90": dict(text=captions("red", 90.0)),
        "colour word red -> blue": dict(text=captions("blue")),
    }
    if prompt_cfg.azimuth_views:  # sectors narrower than 90 degrees: the word that tells a cube's turn
        changes["view word, camera +45"] = dict(text=captions("red", 45.0))
    if camera is not None:
        changes["camera azimuth +45"] = dict(camera=cameras(azimuth + 45.0))
        changes["camera unknown (zeros)"] = dict(camera=torch.zeros_like(camera))
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for t in timesteps:
        ab = prior.alphas_cumprod[t]
        z_t = ab.sqrt() * z + (1.0 - ab).sqrt() * torch.randn(z.shape, generator=generator)
        tt = torch.full((len(specs),), t)
        base = prior.predict_noise(z_t, tt, emb, camera=camera)
        row = {"t": float(t)}
        for name, change in changes.items():
            other = prior.predict_noise(z_t, tt, change.get("text", emb), camera=change.get("camera", camera))
            row[name] = 100.0 * _rms(base - other) / _rms(base)
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    """Print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prior", default=str(ROOT / "assets" / "shapes-prior"))
    ap.add_argument("--timesteps", type=int, nargs="+", default=[200, 500, 800])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    rows = sensitivity(args.prior, args.timesteps, args.seed)
    names = [k for k in rows[0] if k != "t"]
    print(f"prior={args.prior}: RMS change of the predicted noise, % of its RMS (noisy red-cube renders)")
    print("| t | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for row in rows:
        print(f"| {int(row['t'])} | " + " | ".join(f"{row[n]:.2f}" for n in names) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
