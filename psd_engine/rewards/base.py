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
    input_size: int = 224  # the square image side the model sees (images are resized to it)

    def forward(self, images: torch.Tensor, prompts: list[str] | str) -> torch.Tensor:  # noqa: D102
        raise NotImplementedError


def broadcast_prompts(prompts: list[str] | str, batch: int) -> list[str]:
    """One prompt per image: a single string (or a 1-list) is repeated; other lengths must equal batch."""
    if isinstance(prompts, str):
        return [prompts] * batch
    prompts = list(prompts)
    if len(prompts) == 1:
        return prompts * batch
    if len(prompts) != batch:
        raise ValueError(f"got {len(prompts)} prompts for {batch} images; pass one prompt or one per image")
    return prompts
