"""Still images: tensors -> uint8 frames, and a grid PNG of several views."""
from __future__ import annotations

import math
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import torch


def to_uint8(rgb: torch.Tensor) -> list[np.ndarray]:
    """Images (B, 3, H, W) in [0, 1] -> list of B uint8 arrays (H, W, 3)."""
    if rgb.dim() != 4 or rgb.shape[1] != 3:
        raise ValueError(f"to_uint8 expects images shaped (B, 3, H, W); got {tuple(rgb.shape)}")
    array = (rgb.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return list(array)


def grid_shape(n: int) -> tuple[int, int]:
    """(rows, cols) of a near-square grid for n images: 4 -> 2x2, 6 -> 2x3, 5 -> 2x3."""
    cols = math.ceil(math.sqrt(n))
    return math.ceil(n / cols), cols


def write_views_grid(images: list[np.ndarray], path: str | Path) -> Path:
    """Tile equally sized uint8 HxWx3 images row by row into one PNG (unused cells white)."""
    if not images:
        raise ValueError("write_views_grid needs at least one image; got none")
    shapes = {tuple(im.shape) for im in images}
    if len(shapes) != 1 or len(next(iter(shapes))) != 3 or next(iter(shapes))[2] != 3:
        raise ValueError(f"write_views_grid needs images of one shape (H, W, 3); got shapes {sorted(shapes)}")
    height, width, _ = images[0].shape
    rows, cols = grid_shape(len(images))
    canvas = np.full((rows * height, cols * width, 3), 255, dtype=np.uint8)
    for i, image in enumerate(images):
        r, c = divmod(i, cols)
        canvas[r * height:(r + 1) * height, c * width:(c + 1) * width] = image
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    imageio.imwrite(path, canvas, format="PNG")
    return path
