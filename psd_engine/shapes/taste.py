"""The ground-truth "taste": a documented, measurable stand-in for human judgement of renders.

The offline shapes setting has no people to ask which of two images is better, so this
function answers instead. It scores visible qualities a 3D asset can have or lack, all
computed on 2D renders of one object on a white background:

- ``saturation``: vivid rather than washed-out colour (mean HSV saturation of the object).
- ``floaters``: no small disconnected blobs of stuff floating around the object.
- ``fog``: no semi-transparent, near-white haze around the silhouette.
- ``sharpness``: a crisp silhouette edge rather than a soft, smeared one.
- ``centring``: the object sits in the middle of the frame.
- ``size``: the object fills a reasonable part of the frame (neither tiny nor cropped).

Each component lies in [0, 1] (1 = best) and ``taste`` is their weighted mean. They were
chosen because plain score distillation does not already maximise them: SDS-style
optimisation is known for haze, floaters and smeared or washed-out colour, while a text
prior alone is indifferent to them. The reward model in ``training/train_reward.py`` learns
this taste from pairwise comparisons only, the way HPSv2 learned from people.

Images: numpy (N, H, W, 3) or torch (B, 3, H, W), floats in [0, 1], white background.
Every threshold and weight lives in ``TasteConfig``; sizes are fractions of the image
side so that 32-px training renders and 128-px exported views are judged alike.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from scipy import ndimage

COMPONENTS = ("saturation", "floaters", "fog", "sharpness", "centring", "size")


@dataclass
class TasteConfig:
    """Thresholds and weights of the taste function (pixel sizes are fractions of the image side)."""

    # "Ink" of a pixel = 1 - min(r, g, b): 0 on pure white, high on any saturated or dark colour.
    object_ink: float = 0.3  # a pixel with at least this much ink belongs to the (opaque) foreground
    haze_ink: float = 0.02  # below this a pixel counts as clean white background
    edge_band: float = 0.05  # silhouette band (fraction of side) where soft edge pixels are counted
    # Floaters: foreground components smaller than this fraction of the largest component.
    floater_max_fraction: float = 0.25
    floater_count_weight: float = 0.35  # score = exp(-(w_n * count + w_a * floater_area / object_area))
    floater_area_weight: float = 4.0
    # Fog: ink outside the silhouette band, relative to the object area.
    fog_scale: float = 0.08  # score = exp(-fog_mass / fog_scale)
    # Sharpness: soft-edge pixels (haze_ink <= ink < sharp_ink) in the band, per silhouette pixel.
    sharp_ink: float = 0.6
    softness_free: float = 1.5  # softness up to this (anti-aliasing of a crisp render) costs nothing
    softness_scale: float = 1.5  # score = exp(-(softness - free) / scale)
    # Saturation: mean HSV saturation over object pixels, mapped linearly from [low, high] to [0, 1].
    saturation_low: float = 0.0
    saturation_high: float = 1.0
    # Centring: distance of the object's bounding-box centre from the image centre (fraction of side).
    centring_free: float = 0.04
    centring_scale: float = 0.12  # score = exp(-((offset - free) / scale) ** 2)
    # Size: longest bounding-box side of the object as a fraction of the image side.
    size_good: tuple[float, float] = (0.35, 0.9)  # score 1 inside this range ...
    size_zero: tuple[float, float] = (0.05, 1.0)  # ... falling linearly to 0 at these ends
    weights: dict[str, float] = field(
        default_factory=lambda: {
            "saturation": 1.0, "floaters": 1.0, "fog": 1.0, "sharpness": 0.5, "centring": 1.0, "size": 0.5,
        }
    )


def as_numpy_images(images: np.ndarray | torch.Tensor | list) -> np.ndarray:
    """Convert renders to a float32 (N, H, W, 3) numpy array, checking shape and range."""
    if isinstance(images, list):
        if not images:
            raise ValueError("expected at least one image, got an empty list")
        return np.concatenate([as_numpy_images(im) for im in images], axis=0)
    if isinstance(images, torch.Tensor):
        arr = images.detach().to("cpu", torch.float32).numpy()
        if arr.ndim == 3:
            arr = arr[None]
        if arr.ndim != 4 or arr.shape[1] != 3:
            raise ValueError(f"torch images must be (B, 3, H, W) or (3, H, W); got shape {tuple(images.shape)}")
        arr = arr.transpose(0, 2, 3, 1)
    else:
        arr = np.asarray(images, dtype=np.float32)
        if arr.ndim == 3:
            arr = arr[None]
        if arr.ndim != 4 or arr.shape[-1] != 3:
            raise ValueError(
                f"numpy images must be (N, H, W, 3) or (H, W, 3) RGB; got shape {arr.shape}. "
                "Pass torch tensors as (B, 3, H, W)."
            )
    if arr.shape[0] == 0:
        raise ValueError("expected at least one image, got an empty batch")
    if not np.isfinite(arr).all():
        raise ValueError("images contain NaN or Inf values")
    if arr.min() < -1e-3 or arr.max() > 1.0 + 1e-3:
        raise ValueError(
            f"images must be floats in [0, 1] (got min {arr.min():.3f}, max {arr.max():.3f}); "
            "divide uint8 images by 255"
        )
    return np.clip(arr, 0.0, 1.0).astype(np.float32, copy=False)


def _band_pixels(side: int, fraction: float) -> int:
    return max(1, int(round(fraction * side)))


def _components(ink: np.ndarray, cfg: TasteConfig) -> tuple[np.ndarray, np.ndarray, int]:
    """Label the foreground of one image: (labels, areas indexed by label, label of the largest)."""
    labels, count = ndimage.label(ink >= cfg.object_ink, structure=np.ones((3, 3), dtype=bool))
    areas = np.bincount(labels.ravel(), minlength=count + 1)
    areas[0] = 0
    main = int(areas.argmax()) if count else 0
    return labels, areas, main


def _floaters(areas: np.ndarray, main: int, cfg: TasteConfig) -> tuple[int, float]:
    """Number and total area of the small components (not the largest one)."""
    if main == 0:
        return 0, 0.0
    small = (areas > 0) & (areas < cfg.floater_max_fraction * areas[main])
    return int(small.sum()), float(areas[small].sum())


def count_floaters(images: np.ndarray | torch.Tensor | list, cfg: TasteConfig | None = None) -> np.ndarray:
    """Number of small disconnected foreground components per image, (N,) int."""
    cfg = cfg or TasteConfig()
    arr = as_numpy_images(images)
    ink = 1.0 - arr.min(axis=-1)
    return np.array([_floaters(*_components(ink[i], cfg)[1:], cfg)[0] for i in range(len(arr))], dtype=np.int64)


def _ramp(x: float, zero: tuple[float, float], good: tuple[float, float]) -> float:
    """1 inside `good`, linear to 0 at the `zero` ends, 0 outside."""
    if x < good[0]:
        return float(np.clip((x - zero[0]) / max(good[0] - zero[0], 1e-8), 0.0, 1.0))
    if x > good[1]:
        return float(np.clip((zero[1] - x) / max(zero[1] - good[1], 1e-8), 0.0, 1.0))
    return 1.0


def _image_components(rgb: np.ndarray, cfg: TasteConfig) -> dict[str, float]:
    """All component scores of one (H, W, 3) image."""
    side = max(rgb.shape[0], rgb.shape[1])
    ink = 1.0 - rgb.min(axis=-1)
    labels, areas, main = _components(ink, cfg)
    if main == 0:
        # Nothing opaque in the frame: an empty or fully washed-out render has no merit.
        return {name: 0.0 for name in COMPONENTS}
    foreground = labels > 0
    main_mask = labels == main
    object_area = float(areas[main])

    n_floaters, floater_area = _floaters(areas, main, cfg)
    floaters = np.exp(-(cfg.floater_count_weight * n_floaters + cfg.floater_area_weight * floater_area / object_area))

    # Saturation of every opaque pixel (floaters included: a grey blob is washed-out too).
    fg = rgb[foreground]
    vmax = fg.max(axis=-1)
    sat = np.where(vmax > 1e-6, (vmax - fg.min(axis=-1)) / np.maximum(vmax, 1e-6), 0.0)
    saturation = float(
        np.clip((sat.mean() - cfg.saturation_low) / (cfg.saturation_high - cfg.saturation_low), 0.0, 1.0)
    )

    # Holes (the torus's, bright highlights) belong to the object, not to the haze around it.
    filled = ndimage.binary_fill_holes(foreground)
    band_px = _band_pixels(side, cfg.edge_band)
    band = ndimage.binary_dilation(filled, iterations=band_px)
    haze = np.where(ink >= cfg.haze_ink, ink, 0.0)
    fog_mass = float(haze[~band].sum()) / object_area
    fog = float(np.exp(-fog_mass / cfg.fog_scale))

    silhouette = filled & ~ndimage.binary_erosion(filled)
    soft = (ink >= cfg.haze_ink) & (ink < cfg.sharp_ink) & band & ~filled
    softness = float(soft.sum()) / max(float(silhouette.sum()), 1.0)
    sharpness = float(np.exp(-max(softness - cfg.softness_free, 0.0) / cfg.softness_scale))

    rows, cols = np.nonzero(main_mask)
    h, w = ink.shape
    centre_y = (rows.min() + rows.max() + 1) / 2.0 / h
    centre_x = (cols.min() + cols.max() + 1) / 2.0 / w
    offset = float(np.hypot(centre_y - 0.5, centre_x - 0.5))
    centring = float(np.exp(-((max(offset - cfg.centring_free, 0.0) / cfg.centring_scale) ** 2)))

    extent = max((rows.max() - rows.min() + 1) / h, (cols.max() - cols.min() + 1) / w)
    size = _ramp(float(extent), cfg.size_zero, cfg.size_good)
    return {
        "saturation": saturation, "floaters": float(floaters), "fog": fog,
        "sharpness": sharpness, "centring": centring, "size": size,
    }


def taste_components(images: np.ndarray | torch.Tensor | list, cfg: TasteConfig | None = None) -> dict[str, np.ndarray]:
    """Each taste component (in [0, 1], 1 = best) per image, plus their weighted mean as "taste"."""
    cfg = cfg or TasteConfig()
    unknown = set(cfg.weights) - set(COMPONENTS)
    if unknown:
        raise ValueError(f"unknown taste weight(s) {sorted(unknown)}; components are {', '.join(COMPONENTS)}")
    arr = as_numpy_images(images)
    rows = [_image_components(arr[i], cfg) for i in range(len(arr))]
    out = {name: np.array([r[name] for r in rows], dtype=np.float64) for name in COMPONENTS}
    total = sum(cfg.weights.get(name, 0.0) for name in COMPONENTS)
    if total <= 0:
        raise ValueError("TasteConfig.weights must contain at least one positive weight")
    out["taste"] = sum(cfg.weights.get(name, 0.0) * out[name] for name in COMPONENTS) / total
    return out


def taste_2d(images: np.ndarray | torch.Tensor | list, cfg: TasteConfig | None = None) -> np.ndarray:
    """Taste score in [0, 1] of each render, (N,) float."""
    return taste_components(images, cfg)["taste"]


def taste_3d(views: list | np.ndarray | torch.Tensor, cfg: TasteConfig | None = None) -> float:
    """Taste of a 3D asset: the mean taste over its rendered views (a list of images or one batch)."""
    return float(taste_2d(views, cfg).mean())


__all__ = ["COMPONENTS", "TasteConfig", "as_numpy_images", "count_floaters", "taste_components", "taste_2d", "taste_3d"]
