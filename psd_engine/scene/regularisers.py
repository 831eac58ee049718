"""Regularisers of the 3D scene: opacity sparsity and entropy, DreamFusion orientation, density total variation."""
from __future__ import annotations

import torch
from torch import Tensor

from psd_engine.scene.field import Field

# Keeps log() finite for opacities at exactly 0 or 1.
_EPS = 1e-6


def opacity_loss(opacity: Tensor) -> Tensor:
    """L1 sparsity of rendered opacity (mean): fewer semi-transparent floaters."""
    return opacity.abs().mean()


def entropy_loss(opacity: Tensor) -> Tensor:
    """Mean binary entropy of rendered opacity: pushes each pixel to fully empty or fully solid."""
    o = opacity.clamp(_EPS, 1 - _EPS)
    return -(o * torch.log(o) + (1 - o) * torch.log(1 - o)).mean()


def orient_loss(weights: Tensor, normals: Tensor, dirs: Tensor) -> Tensor:
    """DreamFusion orientation loss: sum_i stopgrad(w_i) max(0, n_i . d)^2, averaged over rays that see something.

    weights (R, S), normals (R, S, 3) outward, dirs (R, 3) from the camera into the scene. A visible
    normal facing away from the camera (n . d > 0) is penalised.
    """
    facing_away = (normals * dirs[:, None, :]).sum(-1).clamp(min=0)
    per_ray = (weights.detach() * facing_away**2).sum(dim=1)
    seen = (weights.detach().sum(dim=1) > 0).sum().clamp(min=1)
    return per_ray.sum() / seen


def tv_loss(field: Field) -> Tensor:
    """Mean squared difference between neighbouring voxels of the raw density grid (fewer floaters)."""
    grid = getattr(field, "density_grid", None)
    if not isinstance(grid, Tensor) or grid.dim() != 5:
        raise TypeError(
            f"tv_loss needs a voxel-grid field with a 5D `density_grid`; {type(field).__name__} has none. "
            "Set optim.lambda_tv=0 for this field kind."
        )
    dz = (grid[..., 1:, :, :] - grid[..., :-1, :, :]).pow(2).mean()
    dy = (grid[..., :, 1:, :] - grid[..., :, :-1, :]).pow(2).mean()
    dx = (grid[..., :, :, 1:] - grid[..., :, :, :-1]).pow(2).mean()
    return dx + dy + dz
