"""The "shapes world": captioned multi-view renders of single coloured primitives.

It is the training data of the project's own offline text-to-image prior and the ground
truth of its fidelity judge. Everything is deterministic given a seed. Renders use the
engine's camera convention (Y up, azimuth 0 at the +Z front, camera at
d * (cos(el) sin(az), sin(el), cos(el) cos(az)) looking at the origin) so that renders of
a 3D scene look like these images. Objects are signed distance functions, sphere-traced
in batches with torch on the CPU, lit with lambertian + ambient shading on white.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..config import PromptConfig
from ..prompts import view_direction, view_prompt

SHAPES: tuple[str, ...] = ("cube", "sphere", "cylinder", "cone", "torus")
COLORS: dict[str, tuple[float, float, float]] = {
    "red": (0.86, 0.10, 0.10),
    "green": (0.12, 0.66, 0.16),
    "blue": (0.12, 0.26, 0.88),
    "yellow": (0.96, 0.86, 0.10),
    "orange": (1.00, 0.50, 0.04),
    "purple": (0.56, 0.16, 0.72),
}

# Other words a person may type for a shape or colour (parse_prompt and caption paraphrases).
SHAPE_SYNONYMS: dict[str, tuple[str, ...]] = {
    "cube": ("cube", "box", "block", "dice"),
    "sphere": ("sphere", "ball", "orb", "globe"),
    "cylinder": ("cylinder", "can", "tube", "pillar"),
    "cone": ("cone", "traffic cone", "funnel"),
    "torus": ("torus", "donut", "doughnut", "ring"),
}
COLOR_SYNONYMS: dict[str, tuple[str, ...]] = {
    "red": ("red", "crimson", "scarlet"),
    "green": ("green", "emerald", "lime"),
    "blue": ("blue", "navy", "azure", "cobalt"),
    "yellow": ("yellow", "golden", "lemon"),
    "orange": ("orange", "tangerine", "amber"),
    "purple": ("purple", "violet", "lilac"),
}

HELD_OUT_FILE = Path(__file__).with_name("held_out.json")
# The azimuth sectors the offline prior is captioned with (PromptConfig.azimuth_views), 45 degrees
# each: narrow enough that the view word tells whether a cube faces the camera or shows an edge.
# "right" is towards positive azimuth (+X), as a viewer standing at the front sees it.
AZIMUTH_VIEWS: tuple[str, ...] = ("front", "front-right", "right", "back-right", "back", "back-left", "left",
                                  "front-left")


@dataclass
class WorldConfig:
    """Sampling ranges of the shapes world (sizes, cameras, lights, shading)."""

    size_range: tuple[float, float] = (0.8, 1.05)  # scale of the unit shapes (radius <= ~0.82 at 1.05)
    yaw_range: tuple[float, float] = (0.0, 360.0)
    # Matches CameraConfig's training elevations, plus a few high views so "overhead" captions exist.
    elevation_range: tuple[float, float] = (-10.0, 50.0)
    overhead_prob: float = 0.1
    overhead_range: tuple[float, float] = (60.0, 80.0)
    azimuth_range: tuple[float, float] = (-180.0, 180.0)
    distance_range: tuple[float, float] = (2.1, 2.7)
    fovy_deg: float = 45.0
    # Light roughly from the camera and above, as a studio key light.
    light_azimuth_jitter: float = 50.0
    light_elevation_range: tuple[float, float] = (20.0, 70.0)
    ambient_range: tuple[float, float] = (0.35, 0.55)


@dataclass
class ShapeSpec:
    """One object and one camera: everything needed to render and caption an image."""

    shape: str
    color: str
    size: float = 1.0
    yaw_deg: float = 0.0
    elevation_deg: float = 15.0
    azimuth_deg: float = 0.0
    light_azimuth_deg: float = 0.0
    light_elevation_deg: float = 45.0
    distance: float = 2.4
    fovy_deg: float = 45.0
    ambient: float = 0.45

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise ValueError(f"unknown shape '{self.shape}'; choose one of {', '.join(SHAPES)}")
        if self.color not in COLORS:
            raise ValueError(f"unknown colour '{self.color}'; choose one of {', '.join(COLORS)}")


# ----------------------------------------------------------------------------- pairs and captions

def held_out_pairs() -> list[tuple[str, str]]:
    """(shape, colour) pairs never shown to the prior in training (from held_out.json)."""
    data = json.loads(HELD_OUT_FILE.read_text())
    return [(p["shape"], p["color"]) for p in data["pairs"]]


def all_pairs() -> list[tuple[str, str]]:
    """Every (shape, colour) pair of the world, shapes-major."""
    return [(s, c) for s in SHAPES for c in COLORS]


def train_pairs() -> list[tuple[str, str]]:
    """All (shape, colour) pairs except the held-out ones."""
    held = set(held_out_pairs())
    return [p for p in all_pairs() if p not in held]


def base_prompt(shape: str, color: str) -> str:
    """The canonical caption of a pair without a view, e.g. "a red cube"."""
    return f"a {color} {shape}"


def view_of(spec: ShapeSpec, prompt_cfg: PromptConfig | None = None, relative: bool = True) -> str:
    """The view name of a render as the engine names it, from the camera's azimuth relative to the
    object's front (the engine's objects are not turned, so there the camera azimuth is that).

    relative=False names it by the camera's own azimuth, as the shipped reward's captions were
    made; with the object's yaw drawn at random, such a word says nothing about the picture.
    """
    cfg = prompt_cfg or PromptConfig()
    azimuth = spec.azimuth_deg - spec.yaw_deg if relative else spec.azimuth_deg
    return view_direction(spec.elevation_deg, azimuth, cfg)


def caption(spec: ShapeSpec, with_view: bool = True, prompt_cfg: PromptConfig | None = None,
            relative: bool = True) -> str:
    """The caption of a render, e.g. "a red cube, front view" (view named as the engine names it)."""
    text = base_prompt(spec.shape, spec.color)
    if not with_view:
        return text
    cfg = prompt_cfg or PromptConfig()
    return view_prompt(text, view_of(spec, cfg, relative), cfg)


def paraphrase(spec: ShapeSpec, rng: np.random.Generator, with_view: bool = True,
               prompt_cfg: PromptConfig | None = None, relative: bool = True) -> str:
    """A caption with synonym words ("a crimson box, side view") for text-robust training."""
    cfg = prompt_cfg or PromptConfig()
    shape_word = str(rng.choice(SHAPE_SYNONYMS[spec.shape]))
    color_word = str(rng.choice(COLOR_SYNONYMS[spec.color]))
    text = f"a {color_word} {shape_word}"
    if not with_view:
        return text
    return view_prompt(text, view_of(spec, cfg, relative), cfg)


def _word_pattern(words: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"\b(?:{alternatives})(?:e?s)?\b", re.IGNORECASE)


# Words too common in other senses to count as a shape when parsing ("can you make ...").
_AMBIGUOUS = {"can"}
_SHAPE_PATTERNS = {s: _word_pattern((s,)) for s in SHAPES}
_COLOR_PATTERNS = {c: _word_pattern((c,)) for c in COLORS}
_SHAPE_SYNONYM_PATTERNS = {s: _word_pattern(tuple(x for x in w if x not in _AMBIGUOUS)) for s, w in SHAPE_SYNONYMS.items()}
_COLOR_SYNONYM_PATTERNS = {c: _word_pattern(w) for c, w in COLOR_SYNONYMS.items()}


def _first_match(text: str, patterns: dict[str, re.Pattern[str]]) -> str | None:
    best: tuple[int, str] | None = None
    for name, pattern in patterns.items():
        m = pattern.search(text)
        if m and (best is None or m.start() < best[0]):
            best = (m.start(), name)
    return best[1] if best else None


def parse_prompt(text: str) -> tuple[str | None, str | None]:
    """Best-effort (shape, colour) named in a prompt, synonyms included; None where absent."""
    # The world's own words win over synonyms wherever they stand in the prompt.
    shape = _first_match(text, _SHAPE_PATTERNS) or _first_match(text, _SHAPE_SYNONYM_PATTERNS)
    color = _first_match(text, _COLOR_PATTERNS) or _first_match(text, _COLOR_SYNONYM_PATTERNS)
    return shape, color


# ----------------------------------------------------------------------------- sampling

def sample_specs(
    n: int,
    rng: np.random.Generator,
    pairs: list[tuple[str, str]] | None = None,
    cfg: WorldConfig | None = None,
) -> list[ShapeSpec]:
    """n random objects and cameras drawn from `pairs` (default: the training pairs)."""
    cfg = cfg or WorldConfig()
    pairs = train_pairs() if pairs is None else list(pairs)
    if not pairs:
        raise ValueError("sample_specs needs at least one (shape, colour) pair")
    idx = rng.integers(0, len(pairs), size=n)
    size = rng.uniform(*cfg.size_range, size=n)
    yaw = rng.uniform(*cfg.yaw_range, size=n)
    elev = rng.uniform(*cfg.elevation_range, size=n)
    high = rng.random(n) < cfg.overhead_prob
    elev = np.where(high, rng.uniform(*cfg.overhead_range, size=n), elev)
    azim = rng.uniform(*cfg.azimuth_range, size=n)
    dist = rng.uniform(*cfg.distance_range, size=n)
    light_az = azim + rng.uniform(-cfg.light_azimuth_jitter, cfg.light_azimuth_jitter, size=n)
    light_el = rng.uniform(*cfg.light_elevation_range, size=n)
    ambient = rng.uniform(*cfg.ambient_range, size=n)
    return [
        ShapeSpec(
            shape=pairs[i][0], color=pairs[i][1], size=float(size[k]), yaw_deg=float(yaw[k]),
            elevation_deg=float(elev[k]), azimuth_deg=float(azim[k]), light_azimuth_deg=float(light_az[k]),
            light_elevation_deg=float(light_el[k]), distance=float(dist[k]), fovy_deg=cfg.fovy_deg,
            ambient=float(ambient[k]),
        )
        for k, i in enumerate(idx)
    ]


# ----------------------------------------------------------------------------- rendering

# Unit shapes (size 1), all centred on the origin and within radius ~0.78.
CUBE_HALF = 0.45
SPHERE_RADIUS = 0.6
CYLINDER_RADIUS = 0.45
CYLINDER_HALF_HEIGHT = 0.5
CONE_RADIUS = 0.55
CONE_HALF_HEIGHT = 0.5
TORUS_MAJOR = 0.5
TORUS_MINOR = 0.2

BOUND_RADIUS = 0.85  # rays that miss this sphere (times the size) see only background
MAX_STEPS = 96
HIT_EPS = 1e-3


def sdf_unit(shape: str, p: torch.Tensor) -> torch.Tensor:
    """Signed distance of points p (M, 3) to the unit shape (formulas after I. Quilez)."""
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    if shape == "cube":
        q = p.abs() - CUBE_HALF
        return q.clamp(min=0).norm(dim=1) + q.max(dim=1).values.clamp(max=0)
    if shape == "sphere":
        return p.norm(dim=1) - SPHERE_RADIUS
    radial = torch.sqrt(x * x + z * z)
    if shape == "cylinder":
        d = torch.stack([radial - CYLINDER_RADIUS, y.abs() - CYLINDER_HALF_HEIGHT], dim=1)
        return d.max(dim=1).values.clamp(max=0) + d.clamp(min=0).norm(dim=1)
    if shape == "torus":
        return torch.sqrt((radial - TORUS_MAJOR) ** 2 + y * y) - TORUS_MINOR
    if shape == "cone":
        # Capped cone with base radius r at y = -h and its tip at y = +h.
        h, r = CONE_HALF_HEIGHT, CONE_RADIUS
        qx, qy = radial, y
        ca_x = qx - torch.minimum(qx, torch.where(qy < 0, torch.full_like(qx, r), torch.zeros_like(qx)))
        ca_y = qy.abs() - h
        k2x, k2y = -r, 2.0 * h
        tt = ((0.0 - qx) * k2x + (h - qy) * k2y) / (k2x * k2x + k2y * k2y)
        tt = tt.clamp(0.0, 1.0)
        cb_x = qx + k2x * tt
        cb_y = qy - h + k2y * tt
        sign = torch.where((cb_x < 0) & (ca_y < 0), -1.0, 1.0)
        return sign * torch.sqrt(torch.minimum(ca_x * ca_x + ca_y * ca_y, cb_x * cb_x + cb_y * cb_y))
    raise ValueError(f"unknown shape '{shape}'")


def _direction(azimuth_deg: np.ndarray, elevation_deg: np.ndarray) -> np.ndarray:
    az, el = np.radians(azimuth_deg), np.radians(elevation_deg)
    return np.stack([np.cos(el) * np.sin(az), np.sin(el), np.cos(el) * np.cos(az)], axis=-1)


def camera_rays(specs: list[ShapeSpec], resolution: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Ray origins (N, 3) and unit directions (N, H*W, 3) in the engine's camera convention."""
    az = np.array([s.azimuth_deg for s in specs])
    el = np.array([s.elevation_deg for s in specs])
    dist = np.array([s.distance for s in specs])
    eye = _direction(az, el) * dist[:, None]
    forward = -eye / np.linalg.norm(eye, axis=1, keepdims=True)
    up_world = np.array([0.0, 1.0, 0.0])
    right = np.cross(forward, up_world)
    # Straight-down views have no defined "right": fall back to the azimuth's.
    degenerate = np.linalg.norm(right, axis=1) < 1e-6
    right[degenerate] = np.stack([np.cos(np.radians(az)), np.zeros_like(az), -np.sin(np.radians(az))], 1)[degenerate]
    right /= np.linalg.norm(right, axis=1, keepdims=True)
    up = np.cross(right, forward)
    tan_half = np.tan(np.radians(np.array([s.fovy_deg for s in specs])) / 2.0)
    # Pixel centres; row 0 is the top of the image.
    coords = (np.arange(resolution) + 0.5) / resolution * 2.0 - 1.0
    v, u = np.meshgrid(-coords, coords, indexing="ij")
    u, v = u.reshape(-1), v.reshape(-1)
    dirs = (
        forward[:, None, :]
        + u[None, :, None] * tan_half[:, None, None] * right[:, None, :]
        + v[None, :, None] * tan_half[:, None, None] * up[:, None, :]
    )
    dirs /= np.linalg.norm(dirs, axis=2, keepdims=True)
    return torch.from_numpy(eye).float(), torch.from_numpy(dirs).float()


def _yaw_matrices(yaw_deg: np.ndarray) -> torch.Tensor:
    c, s = np.cos(np.radians(yaw_deg)), np.sin(np.radians(yaw_deg))
    zeros, ones = np.zeros_like(c), np.ones_like(c)
    # World-from-object rotation about +Y.
    rot = np.stack([np.stack([c, zeros, s], -1), np.stack([zeros, ones, zeros], -1), np.stack([-s, zeros, c], -1)], -2)
    return torch.from_numpy(rot).float()


def _trace_group(shape: str, specs: list[ShapeSpec], resolution: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sphere-trace one shape's images: colours (n, R*R, 3) before background and hit mask (n, R*R)."""
    n = len(specs)
    eye, dirs = camera_rays(specs, resolution)
    rays = dirs.shape[1]
    size = torch.tensor([s.size for s in specs], dtype=torch.float32)
    rot = _yaw_matrices(np.array([s.yaw_deg for s in specs]))
    # Work in each object's frame: p_obj = R^T p / size; distances scale back by size.
    o = torch.einsum("nji,nj->ni", rot, eye) / size[:, None]
    d = torch.einsum("nji,nrj->nri", rot, dirs)
    o = o[:, None, :].expand(n, rays, 3).reshape(-1, 3)
    d = d.reshape(-1, 3)
    # Start at the bounding sphere; rays that miss it are background.
    b = (o * d).sum(1)
    c = (o * o).sum(1) - BOUND_RADIUS**2
    disc = b * b - c
    t = (-b - torch.sqrt(disc.clamp(min=0))).clamp(min=0)
    t_far = -b + torch.sqrt(disc.clamp(min=0))
    active = torch.nonzero(disc > 0).squeeze(1)
    hit = torch.zeros(o.shape[0], dtype=torch.bool)
    for _ in range(MAX_STEPS):
        if active.numel() == 0:
            break
        p = o[active] + t[active, None] * d[active]
        dist = sdf_unit(shape, p)
        t[active] += dist
        done_hit = dist < HIT_EPS
        hit[active[done_hit]] = True
        escaped = t[active] > t_far[active]
        active = active[~(done_hit | escaped)]
    p = o + t[:, None] * d
    eps = 1e-3
    offsets = torch.eye(3) * eps
    grad = torch.stack(
        [sdf_unit(shape, p + offsets[i]) - sdf_unit(shape, p - offsets[i]) for i in range(3)], dim=1
    )
    normal_obj = grad / grad.norm(dim=1, keepdim=True).clamp(min=1e-8)
    normal = torch.einsum("nij,nrj->nri", rot, normal_obj.reshape(n, rays, 3))
    light = torch.from_numpy(
        _direction(np.array([s.light_azimuth_deg for s in specs]), np.array([s.light_elevation_deg for s in specs]))
    ).float()
    lambert = (normal * light[:, None, :]).sum(-1).clamp(min=0)
    ambient = torch.tensor([s.ambient for s in specs], dtype=torch.float32)[:, None]
    albedo = torch.tensor([COLORS[s.color] for s in specs], dtype=torch.float32)[:, None, :]
    shade = ambient + (1.0 - ambient) * lambert
    return (albedo * shade[..., None]).clamp(0, 1), hit.reshape(n, rays)


@torch.no_grad()
def render_specs(
    specs: list[ShapeSpec], resolution: int, return_alpha: bool = False, supersample: int = 2
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Render specs to (N, H, W, 3) float32 RGB in [0, 1] on white (and alpha (N, H, W) if asked)."""
    if resolution < 1 or supersample < 1:
        raise ValueError(f"resolution and supersample must be >= 1, got {resolution} and {supersample}")
    n, hi = len(specs), resolution * supersample
    rgb = torch.ones(n, hi * hi, 3)
    alpha = torch.zeros(n, hi * hi)
    for shape in SHAPES:
        idx = [i for i, s in enumerate(specs) if s.shape == shape]
        if not idx:
            continue
        color, hit = _trace_group(shape, [specs[i] for i in idx], hi)
        a = hit.float()
        rgb[idx] = color * a[..., None] + (1.0 - a[..., None])
        alpha[idx] = a
    # Box-filter the supersampled image: smooth, anti-aliased edges.
    rgb = rgb.reshape(n, resolution, supersample, resolution, supersample, 3).mean(dim=(2, 4))
    alpha = alpha.reshape(n, resolution, supersample, resolution, supersample).mean(dim=(2, 4))
    rgb_np = rgb.numpy().astype(np.float32)
    if return_alpha:
        return rgb_np, alpha.numpy().astype(np.float32)
    return rgb_np


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Float images in [0, 1] -> uint8 (for saving)."""
    return (np.clip(images, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def grid(images: np.ndarray, cols: int) -> np.ndarray:
    """Tile (N, H, W, 3) images into one (rows*H, cols*W, 3) image, white where empty."""
    n, h, w, ch = images.shape
    rows = max(1, math.ceil(n / cols))
    out = np.ones((rows * h, cols * w, ch), dtype=images.dtype)
    for i in range(n):
        r, c = divmod(i, cols)
        out[r * h : (r + 1) * h, c * w : (c + 1) * w] = images[i]
    return out


__all__ = [
    "SHAPES", "COLORS", "SHAPE_SYNONYMS", "COLOR_SYNONYMS", "WorldConfig", "ShapeSpec", "held_out_pairs",
    "all_pairs", "train_pairs", "base_prompt", "caption", "paraphrase", "parse_prompt", "sample_specs",
    "camera_rays", "render_specs", "to_uint8", "grid",
]
