"""The colour seen where rays leave the scene: white, a random colour per image, or a learned colour."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from psd_engine.config import ConfigError, RenderConfig
from psd_engine.scene.rng import uniform

BACKGROUNDS = ("white", "random", "learned")


class Background(nn.Module):
    """Background colour per ray; `kind` is RenderConfig.background."""

    def __init__(self, cfg: RenderConfig) -> None:
        super().__init__()
        if cfg.background not in BACKGROUNDS:
            raise ConfigError(f"render.background must be one of {', '.join(BACKGROUNDS)}; got '{cfg.background}'")
        self.kind = cfg.background
        self.cfg = cfg
        if self.kind == "learned":
            # A single learned colour: the prior only needs a backdrop the object can be told apart from,
            # and one colour cannot learn to paint the object into the background the way an MLP can.
            self.logit = nn.Parameter(torch.full((3,), float(cfg.learned_background_logit)))

    def forward(self, dirs: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Colours (B, H, W, 3) in [0, 1] for ray directions (B, H, W, 3); "random" draws one colour per image."""
        if self.kind == "white":
            return torch.ones_like(dirs)
        if self.kind == "random":
            colour = uniform((dirs.shape[0], 1, 1, 3), generator, dirs.device).to(dirs.dtype)
            return colour.expand_as(dirs)
        return torch.sigmoid(self.logit).to(device=dirs.device, dtype=dirs.dtype).expand_as(dirs)

    def display(self) -> "Background":
        """The background to show in previews and exports: white instead of random, else this one."""
        if self.kind != "random":
            return self
        return Background(RenderConfig(background="white"))
