"""View-dependent prompting (DreamFusion): which suffix a camera gets, and cached text embeddings."""
from __future__ import annotations

import torch

from .config import PromptConfig

VIEWS = ("front", "side", "back", "overhead")


def view_direction(elevation_deg: float, azimuth_deg: float, cfg: PromptConfig) -> str:
    """Name the view ("front", "side", "back", "overhead") for a camera at this elevation/azimuth."""
    if elevation_deg > cfg.overhead_threshold_deg:
        return "overhead"
    az = (azimuth_deg + 180.0) % 360.0 - 180.0  # wrap to [-180, 180)
    if abs(az) < cfg.front_threshold_deg:
        return "front"
    if 180.0 - abs(az) < cfg.back_threshold_deg:
        return "back"
    return "side"


def view_prompt(prompt: str, view: str, cfg: PromptConfig) -> str:
    """The prompt with the suffix of `view` appended (unchanged if view-dependent prompting is off)."""
    if not cfg.view_dependent:
        return prompt
    suffix = {
        "front": cfg.front_suffix,
        "side": cfg.side_suffix,
        "back": cfg.back_suffix,
        "overhead": cfg.overhead_suffix,
    }[view]
    return prompt + suffix


class PromptEmbeddings:
    """Text embeddings of the prompt per view and of the negative prompt, computed once per run."""

    def __init__(self, prior, prompt: str, negative_prompt: str, cfg: PromptConfig) -> None:
        self.cfg = cfg
        self.prompt = prompt
        self.view_prompts = {v: view_prompt(prompt, v, cfg) for v in VIEWS}
        with torch.no_grad():
            texts = [self.view_prompts[v] for v in VIEWS] + [negative_prompt]
            emb = prior.encode_text(texts)
        self.views = {v: emb[i : i + 1] for i, v in enumerate(VIEWS)}
        self.negative = emb[len(VIEWS) : len(VIEWS) + 1]

    def for_cameras(self, elevations: torch.Tensor, azimuths: torch.Tensor) -> tuple[torch.Tensor, list[str]]:
        """Per-camera conditional embeddings (B, L, D) and the matching view prompts."""
        names = [view_direction(float(e), float(a), self.cfg) for e, a in zip(elevations, azimuths)]
        return torch.cat([self.views[n] for n in names], 0), [self.view_prompts[n] for n in names]
