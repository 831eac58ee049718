"""The interface every reward model implements: differentiable score(images, prompts) -> (B,)."""
from __future__ import annotations

import torch
from torch import nn


class RewardModel(nn.Module):
    """R(image, prompt), higher is better; differentiable with respect to the images.

    `forward(images, prompts)`: images (B, 3, H, W) floats in [0, 1] (any H, W; resized and
    normalised inside), prompts a list of B strings (or one string broadcast). Returns (B,).
    Parameters are frozen (requires_grad False); gradients flow to the images only.
    """

    name: str = "reward"

    def forward(self, images: torch.Tensor, prompts: list[str] | str) -> torch.Tensor:  # noqa: D102
        raise NotImplementedError
