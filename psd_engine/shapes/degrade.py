"""Synthetic artefacts for clean shapes-world renders: the flaws the taste function penalises.

Score distillation produces haze, floaters, washed-out colour, soft edges and badly framed
objects. These functions paint each of them onto clean renders, at a chosen strength, so
that the reward model can be trained on "same prompt, better vs worse" comparisons
(labelled by ``taste``) and the tests can check that ``taste`` ranks them as intended.

All functions take float (N, H, W, 3) images in [0, 1] on white and return new arrays;
sizes are fractions of the image side. ``alpha`` (N, H, W) is the object's coverage; when
it is not given it is estimated from the image's ink (distance from white).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

KINDS = ("fog", "floaters", "desaturate", "washout", "shift", "shrink", "blur")
FULL_COVERAGE_INK = 0.6  # ink at which an estimated alpha reaches 1 (shaded world colours have more)
FOG_OBJECT_SHARE = 0.6  # haze colour: this much of the object's colour, the rest a random light cast
FLOATER_GAP = 0.04  # clear space around each floater and from the border (fraction of side)
LUMA = (0.299, 0.587, 0.114)  # Rec. 601 luminance weights


@dataclass
class DegradeConfig:
    """Strength ranges of each artefact when drawn at random (``random_degradations``)."""

    fog_strength: tuple[float, float] = (0.4, 1.0)  # peak opacity of the haze
    fog_radius: float = 0.12  # haze spread (Gaussian sigma, fraction of side)
    fog_tint_ink: tuple[float, float] = (0.2, 0.4)  # how far from white the haze colour is
    floater_count: tuple[int, int] = (1, 6)
    floater_radius: tuple[float, float] = (0.015, 0.045)
    desaturate: tuple[float, float] = (0.3, 0.9)  # blend towards grey
    washout: tuple[float, float] = (0.25, 0.6)  # blend towards white
    shift: tuple[float, float] = (0.12, 0.3)  # translation distance
    shrink: tuple[float, float] = (0.3, 0.6)  # zoom factor (object becomes this big)
    blur_sigma: tuple[float, float] = (0.015, 0.05)
    max_artefacts: int = 2  # a degraded image carries 1..max_artefacts different artefacts


def estimate_alpha(images: np.ndarray) -> np.ndarray:
    """Object coverage (N, H, W) estimated from ink (1 - min channel) when no alpha is known."""
    ink = 1.0 - images.min(axis=-1)
    return np.clip(ink / FULL_COVERAGE_INK, 0.0, 1.0)


def _alpha(images: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    return estimate_alpha(images) if alpha is None else np.asarray(alpha, dtype=np.float32)


def _object_colour(image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    weight = alpha[..., None]
    return (image * weight).sum(axis=(0, 1)) / max(float(weight.sum()), 1e-6)


def add_fog(
    images: np.ndarray, strength: float | np.ndarray, rng: np.random.Generator,
    alpha: np.ndarray | None = None, radius: float = 0.12, tint_ink: float | np.ndarray = 0.25,
) -> np.ndarray:
    """Blend a light, object-tinted haze into the background around the silhouette."""
    alpha = _alpha(images, alpha)
    n, h, w, _ = images.shape
    strength = np.broadcast_to(np.asarray(strength, dtype=np.float32), (n,))
    tint_ink = np.broadcast_to(np.asarray(tint_ink, dtype=np.float32), (n,))
    out = images.copy()
    for i in range(n):
        halo = ndimage.gaussian_filter(alpha[i], sigma=radius * max(h, w))
        halo = halo / max(float(halo.max()), 1e-6)
        # Haze colour: mostly white, a little of the object's colour and a random cool/warm cast.
        cast = rng.uniform(0.5, 1.0, size=3)
        colour = FOG_OBJECT_SHARE * _object_colour(images[i], alpha[i]) + (1.0 - FOG_OBJECT_SHARE) * cast
        tint = 1.0 - tint_ink[i] * (1.0 - colour) / max(float((1.0 - colour).max()), 1e-6)
        fog_a = (strength[i] * halo * (1.0 - alpha[i]))[..., None]
        out[i] = images[i] * (1.0 - fog_a) + tint[None, None, :] * fog_a
    return out.astype(np.float32)


def add_floaters(
    images: np.ndarray, count: int | np.ndarray, rng: np.random.Generator,
    alpha: np.ndarray | None = None, radius: tuple[float, float] = (0.015, 0.045),
) -> np.ndarray:
    """Paint `count` small opaque blobs away from the object (each image may get its own count)."""
    alpha = _alpha(images, alpha)
    n, h, w, _ = images.shape
    counts = np.broadcast_to(np.asarray(count, dtype=np.int64), (n,))
    side = max(h, w)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
    out = images.copy()
    gap = max(2.0, FLOATER_GAP * side)
    border = max(2, int(FLOATER_GAP * side))
    for i in range(n):
        # Keep blobs clear of the object and of each other so that each stays a separate component.
        occupied = alpha[i] > 0.02
        for _ in range(int(counts[i])):
            r = rng.uniform(*radius) * side
            clearance = ndimage.distance_transform_edt(~occupied)
            ok = clearance[border:-border, border:-border] > r + gap
            free = np.argwhere(ok) + border
            if len(free) == 0:
                break
            cy, cx = free[rng.integers(len(free))] + 0.5
            dist = np.hypot(yy - cy, xx - cx)
            blob = np.clip(r + 0.5 - dist, 0.0, 1.0)[..., None]  # anti-aliased disc
            if rng.random() < 0.5:
                colour = _object_colour(images[i], alpha[i]) * rng.uniform(0.5, 1.0)
            else:
                colour = rng.uniform(0.0, 0.7, size=3)
            out[i] = out[i] * (1.0 - blob) + colour[None, None, :] * blob
            occupied |= blob[..., 0] > 0
    return out.astype(np.float32)


def desaturate(images: np.ndarray, amount: float | np.ndarray) -> np.ndarray:
    """Blend colours towards their grey luminance (amount 1 = fully grey)."""
    amount = np.asarray(amount, dtype=np.float32).reshape(-1, 1, 1, 1)
    lum = (images * np.array(LUMA, dtype=np.float32)).sum(-1, keepdims=True)
    return (images + amount * (lum - images)).astype(np.float32)


def washout(images: np.ndarray, amount: float | np.ndarray) -> np.ndarray:
    """Blend colours towards white (amount 1 = invisible)."""
    amount = np.asarray(amount, dtype=np.float32).reshape(-1, 1, 1, 1)
    return (images + amount * (1.0 - images)).astype(np.float32)


def shift(images: np.ndarray, dy: float | np.ndarray, dx: float | np.ndarray) -> np.ndarray:
    """Translate by (dy, dx) fractions of the side, filling with white."""
    n, h, w, _ = images.shape
    dy = np.broadcast_to(np.asarray(dy, dtype=np.float32), (n,))
    dx = np.broadcast_to(np.asarray(dx, dtype=np.float32), (n,))
    out = np.empty_like(images)
    for i in range(n):
        out[i] = ndimage.shift(images[i], (dy[i] * h, dx[i] * w, 0), order=1, cval=1.0)
    return out


def shrink(images: np.ndarray, factor: float | np.ndarray) -> np.ndarray:
    """Zoom out about the centre by `factor` (< 1 makes the object smaller), filling with white."""
    n, h, w, _ = images.shape
    factor = np.broadcast_to(np.asarray(factor, dtype=np.float32), (n,))
    out = np.empty_like(images)
    centre = np.array([(h - 1) / 2.0, (w - 1) / 2.0])
    for i in range(n):
        scale = 1.0 / factor[i]
        offset = centre - scale * centre
        # Anti-alias before sampling the image more coarsely.
        src = ndimage.gaussian_filter(images[i], sigma=(0.5 * scale, 0.5 * scale, 0))
        for c in range(3):
            out[i, ..., c] = ndimage.affine_transform(src[..., c], [scale, scale], offset=offset, order=1, cval=1.0)
    return out


def blur(images: np.ndarray, sigma: float | np.ndarray) -> np.ndarray:
    """Gaussian blur with sigma as a fraction of the side (soft, smeared edges)."""
    n, h, w, _ = images.shape
    sigma = np.broadcast_to(np.asarray(sigma, dtype=np.float32), (n,))
    out = np.empty_like(images)
    for i in range(n):
        s = float(sigma[i]) * max(h, w)
        out[i] = ndimage.gaussian_filter(images[i], sigma=(s, s, 0), mode="nearest")
    return out


def apply(
    images: np.ndarray, kind: str, level: float, rng: np.random.Generator,
    alpha: np.ndarray | None = None, cfg: DegradeConfig | None = None,
) -> np.ndarray:
    """Apply one artefact at `level` in [0, 1] (0 = weakest, 1 = strongest of its range in cfg)."""
    cfg = cfg or DegradeConfig()
    if kind not in KINDS:
        raise ValueError(f"unknown artefact '{kind}'; choose one of {', '.join(KINDS)}")
    if not 0.0 <= level <= 1.0:
        raise ValueError(f"artefact level must lie in [0, 1], got {level}")

    def lerp(r: tuple[float, float]) -> float:
        return r[0] + level * (r[1] - r[0])

    n = len(images)
    if kind == "fog":
        return add_fog(images, lerp(cfg.fog_strength), rng, alpha, cfg.fog_radius, rng.uniform(*cfg.fog_tint_ink, n))
    if kind == "floaters":
        return add_floaters(images, int(round(lerp(cfg.floater_count))), rng, alpha, cfg.floater_radius)
    if kind == "desaturate":
        return desaturate(images, lerp(cfg.desaturate))
    if kind == "washout":
        return washout(images, lerp(cfg.washout))
    if kind == "shift":
        angle = rng.uniform(0, 2 * np.pi, n)
        return shift(images, lerp(cfg.shift) * np.sin(angle), lerp(cfg.shift) * np.cos(angle))
    if kind == "shrink":
        # Level 1 = smallest object, so the range runs from the mild end downwards.
        return shrink(images, cfg.shrink[1] - level * (cfg.shrink[1] - cfg.shrink[0]))
    return blur(images, lerp(cfg.blur_sigma))


def draw_artefacts(rng: np.random.Generator, cfg: DegradeConfig | None = None) -> list[tuple[str, float]]:
    """1..max_artefacts distinct random artefact kinds, each with a random level in [0, 1]."""
    cfg = cfg or DegradeConfig()
    k = int(rng.integers(1, cfg.max_artefacts + 1))
    kinds = rng.choice(KINDS, size=k, replace=False).tolist()
    return [(str(kind), float(rng.random())) for kind in kinds]


def apply_artefacts(
    images: np.ndarray, artefacts: list[tuple[str, float]], rng: np.random.Generator,
    alpha: np.ndarray | None = None, cfg: DegradeConfig | None = None,
) -> np.ndarray:
    """Apply (kind, level) artefacts in KINDS order: alpha-based ones before those that move pixels."""
    alpha = _alpha(images, alpha)
    out = images
    for kind, level in sorted(artefacts, key=lambda kl: KINDS.index(kl[0])):
        out = apply(out, kind, level, rng, alpha, cfg)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def describe(artefacts: list[tuple[str, float]]) -> str:
    """A short text such as "fog:0.62+blur:0.10" ("clean" when empty)."""
    return "+".join(f"{k}:{v:.2f}" for k, v in artefacts) or "clean"


def random_degradations(
    images: np.ndarray, rng: np.random.Generator, alpha: np.ndarray | None = None,
    cfg: DegradeConfig | None = None, clean_prob: float = 0.0,
) -> tuple[np.ndarray, list[str]]:
    """Each image gets 1..max_artefacts random artefacts at random levels (or none with clean_prob).

    Returns the degraded images and a description per image such as "fog:0.62+blur:0.10".
    """
    cfg = cfg or DegradeConfig()
    alpha = _alpha(images, alpha)
    out = images.copy()
    notes: list[str] = []
    for i in range(len(images)):
        artefacts = [] if rng.random() < clean_prob else draw_artefacts(rng, cfg)
        if artefacts:
            out[i] = apply_artefacts(images[i : i + 1], artefacts, rng, alpha[i : i + 1], cfg)[0]
        notes.append(describe(artefacts))
    return out, notes


__all__ = [
    "KINDS", "DegradeConfig", "estimate_alpha", "add_fog", "add_floaters", "desaturate", "washout", "shift",
    "shrink", "blur", "apply", "draw_artefacts", "apply_artefacts", "describe", "random_degradations",
]
