"""View-dependent prompting (DreamFusion): which suffix a camera gets, and cached text embeddings.

Two schemes, chosen by PromptConfig.azimuth_views: DreamFusion's words (front / side / back by
azimuth thresholds, overhead above an elevation), or equal azimuth sectors with names of their
own ("front", "front-right", ...), each also seen from above ("overhead front-right").
Azimuths are relative to the object's front: in a run the object is not turned, so they are the
camera's own; the shapes world subtracts the object's yaw.
"""
from __future__ import annotations

import torch

from .config import PromptConfig

VIEWS = ("front", "side", "back", "overhead")
OVERHEAD = "overhead"


def wrap_degrees(angle: float) -> float:
    """An angle in degrees wrapped to [-180, 180)."""
    return (angle + 180.0) % 360.0 - 180.0


def all_views(cfg: PromptConfig) -> tuple[str, ...]:
    """Every view name a camera can get under cfg, in a fixed order."""
    if not cfg.azimuth_views:
        return VIEWS
    return tuple(cfg.azimuth_views) + tuple(f"{OVERHEAD} {name}" for name in cfg.azimuth_views)


def azimuth_sector(azimuth_deg: float, sectors: int) -> int:
    """Index of the equal azimuth sector (the first centred on 0, then towards positive azimuth)."""
    width = 360.0 / sectors
    return int(round(wrap_degrees(azimuth_deg) / width)) % sectors


def view_direction(elevation_deg: float, azimuth_deg: float, cfg: PromptConfig) -> str:
    """Name the view of a camera at this elevation and azimuth (relative to the object's front)."""
    if cfg.azimuth_views:
        name = cfg.azimuth_views[azimuth_sector(azimuth_deg, len(cfg.azimuth_views))]
        return f"{OVERHEAD} {name}" if elevation_deg > cfg.overhead_threshold_deg else name
    if elevation_deg > cfg.overhead_threshold_deg:
        return OVERHEAD
    az = wrap_degrees(azimuth_deg)
    if abs(az) < cfg.front_threshold_deg:
        return "front"
    if 180.0 - abs(az) < cfg.back_threshold_deg:
        return "back"
    return "side"


def split_overhead(view: str) -> tuple[bool, str]:
    """A sector view's name as (seen from above, sector name): "overhead front-right" -> (True, "front-right")."""
    prefix = f"{OVERHEAD} "
    return (True, view[len(prefix):]) if view.startswith(prefix) else (False, view)


def mirror_view(view: str, cfg: PromptConfig) -> str:
    """The view's name in the mirror image (azimuth negated): sectors swap sides, DreamFusion's words stay."""
    if not cfg.azimuth_views:
        return view
    overhead, name = split_overhead(view)
    n = len(cfg.azimuth_views)
    mirrored = cfg.azimuth_views[(-cfg.azimuth_views.index(name)) % n]
    return f"{OVERHEAD} {mirrored}" if overhead else mirrored


def view_prompt(prompt: str, view: str, cfg: PromptConfig) -> str:
    """The prompt with the suffix of `view` appended (unchanged if view-dependent prompting is off)."""
    if not cfg.view_dependent:
        return prompt
    if view not in all_views(cfg):
        raise ValueError(f"unknown view '{view}'; these prompts name the views {', '.join(all_views(cfg))}")
    if cfg.azimuth_views:
        overhead, name = split_overhead(view)
        return prompt + (cfg.overhead_view_format if overhead else cfg.view_format).format(name)
    suffix = {
        "front": cfg.front_suffix,
        "side": cfg.side_suffix,
        "back": cfg.back_suffix,
        OVERHEAD: cfg.overhead_suffix,
    }[view]
    return prompt + suffix


class PromptEmbeddings:
    """Text embeddings of the prompt per view and of the negative prompt, computed once per run."""

    def __init__(self, prior, prompt: str, negative_prompt: str, cfg: PromptConfig) -> None:
        self.cfg = cfg
        self.prompt = prompt
        views = all_views(cfg)
        self.view_prompts = {v: view_prompt(prompt, v, cfg) for v in views}
        with torch.no_grad():
            texts = [self.view_prompts[v] for v in views] + [negative_prompt]
            emb = prior.encode_text(texts)
        self.views = {v: emb[i : i + 1] for i, v in enumerate(views)}
        self.negative = emb[len(views) : len(views) + 1]

    def for_cameras(self, elevations: torch.Tensor, azimuths: torch.Tensor) -> tuple[torch.Tensor, list[str]]:
        """Per-camera conditional embeddings (B, L, D) and the matching view prompts."""
        names = [view_direction(float(e), float(a), self.cfg) for e, a in zip(elevations, azimuths)]
        return torch.cat([self.views[n] for n in names], 0), [self.view_prompts[n] for n in names]
