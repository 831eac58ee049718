"""Scores of a finished 3D asset, measured from several rendered views.

Used by the comparison benchmark and the offline-model tests: the learned reward (the one
the run was steered by), the ground-truth taste, prompt fidelity (the fidelity judge) and
the floater count, all on the same white-background views.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .scene.cameras import orbit_cameras


@dataclass
class EvalConfig:
    """Views on which a finished asset is judged."""

    views: int = 8
    resolution: int = 64
    elevation: float = 15.0
    distance: float = 2.4
    fovy: float = 45.0


@torch.no_grad()
def render_views(field, renderer, cfg: EvalConfig, device: torch.device) -> torch.Tensor:
    """Albedo renders (B, 3, H, W) on a white background from `cfg.views` evenly spaced azimuths."""
    cams = orbit_cameras(cfg.views, cfg.elevation, cfg.distance, cfg.fovy, device=device)
    # background=None is white in the renderer, whatever background the run trained with.
    out = renderer.render(field, cams, cfg.resolution, background=None, shading="albedo", perturb=False)
    return out["rgb"].clamp(0, 1)


@torch.no_grad()
def score_views(images: torch.Tensor, prompt: str, reward=None, judge=None) -> dict[str, Any]:
    """Learned reward, taste, fidelity and floaters of a set of views of one asset."""
    from .shapes.judge import fidelity
    from .shapes.taste import count_floaters, taste_3d

    out: dict[str, Any] = {
        "taste": taste_3d(images),
        "floaters": float(np.mean(count_floaters(images))),
    }
    if reward is not None:
        out["reward"] = float(reward(images, [prompt] * images.shape[0]).mean())
    if judge is not None:
        out["fidelity"] = float(fidelity(images, prompt, judge))
    return out
