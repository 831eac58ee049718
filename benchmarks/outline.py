"""How square an outline is: the silhouette measure of the cube's top (image_sds, offline_demo).

squareness(alpha) is the 4-fold harmonic of the outline's radius about its centre, as % of the
mean radius: about 6.9 for a square at any turn, about 0 for a disc (lumpy outlines give 1-2).
top_squareness(glb) measures a GLB's silhouette seen from straight above, where a cube's top is
a square and a cylinder's a disc.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from psd_engine.export.raster import glb_mesh, rasterize_mesh
from psd_engine.scene.cameras import make_cameras

# Straight down (90 degrees) has no defined "up"; 89 is as good for an outline.
TOP_ELEVATION = 89.0


def squareness(alpha: np.ndarray) -> float:
    """4-fold harmonic of the silhouette's radius about its centre, % of the mean radius: a square ~6.9 at any
    turn, a disc ~0 (the outline is the longest alpha = 0.5 contour, sub-pixel; NaN if there is none)."""
    from skimage import measure

    contours = measure.find_contours(np.pad(alpha, 1), 0.5)
    if not contours:
        return float("nan")
    y, x = max(contours, key=len).T
    cross = x[:-1] * y[1:] - x[1:] * y[:-1]  # shoelace: the outline's area centroid
    area = cross.sum() / 2.0
    if abs(area) < 1e-6:
        return float("nan")
    cx, cy = ((x[:-1] + x[1:]) * cross).sum() / (6 * area), ((y[:-1] + y[1:]) * cross).sum() / (6 * area)
    angle, radius = np.arctan2(y - cy, x - cx), np.hypot(y - cy, x - cx)
    order = np.argsort(angle)
    grid = np.linspace(-np.pi, np.pi, 360, endpoint=False)
    profile = np.interp(grid, angle[order], radius[order], period=2 * np.pi)  # radius at each degree
    return float(100.0 * abs((profile * np.exp(-4j * grid)).mean()) / profile.mean())


def top_squareness(glb: str | Path, distance: float, fovy_deg: float, resolution: int = 128) -> float:
    """squareness of a GLB mesh's silhouette seen from straight above (NaN if nothing is seen)."""
    vertices, faces, colours = glb_mesh(glb)
    camera = make_cameras(torch.tensor([TOP_ELEVATION]), torch.tensor([0.0]), torch.tensor([distance]),
                          torch.tensor([fovy_deg]))
    image = rasterize_mesh(vertices, faces, np.zeros_like(colours), camera, resolution)  # black on white
    return squareness(1.0 - image[0, 0].numpy())
