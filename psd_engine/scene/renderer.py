"""Differentiable volume rendering of a `Field` from `Cameras` (pure PyTorch, CPU or GPU).

Each ray is sampled only inside its intersection with the box around the field's occupied space
(density above `skip_density`; the empty space around it costs nothing), at `samples_per_ray`
stratified depths, and alpha-composited front to back over a
background. Shading follows DreamFusion: albedo, lambertian, textureless, or one of them at random.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from psd_engine.config import ConfigError, RenderConfig
from psd_engine.scene.background import Background
from psd_engine.scene.cameras import Cameras, get_rays
from psd_engine.scene.field import Field
from psd_engine.scene.rng import normal, uniform

SHADINGS = ("albedo", "lambertian", "textureless", "random")
_LIT_SHADINGS = ("albedo", "lambertian", "textureless")  # the order of RenderConfig.shading_probs


def ray_box_intersection(origins: Tensor, dirs: Tensor, low: Tensor | float,
                         high: Tensor | float) -> tuple[Tensor, Tensor]:
    """Entry and exit distances (N,) of rays with the box [low, high] (far <= near: the ray misses)."""
    # Rays parallel to an axis would divide by zero; a tiny stand-in keeps the slab test finite and exact enough.
    safe = torch.where(dirs.abs() < 1e-12, torch.full_like(dirs, 1e-12), dirs)
    inv = 1.0 / safe
    t0 = (low - origins) * inv
    t1 = (high - origins) * inv
    near = torch.minimum(t0, t1).amax(dim=-1)
    far = torch.maximum(t0, t1).amin(dim=-1)
    return near, far


def composite_weights(sigma: Tensor, delta: Tensor) -> Tensor:
    """Alpha-compositing weights (R, S) = T_i (1 - exp(-sigma_i delta_i)) for densities (R, S), step lengths (R, 1)."""
    tau = sigma * delta
    optical_depth = torch.cumsum(tau, dim=1)
    transmittance = torch.exp(tau - optical_depth)  # exp(-sum_{j<i} tau_j)
    return transmittance * -torch.expm1(-tau)


class _Rays(NamedTuple):
    """One render call's rays (all pixels) and the sample points of the m rays that cross the box."""

    dirs: Tensor  # (B, H, W, 3)
    ray_d: Tensor  # (B*H*W, 3)
    n_rays: int
    pixels: int
    n_samples: int
    m: int
    t: Tensor  # (m, S) sample distances
    delta: Tensor  # (m, 1) step length
    points: Tensor  # (m, S, 3)
    all_hit: bool
    index: Tensor | None  # rows of the m rays among all, None when all hit
    pick: Callable[[Tensor], Tensor]


class VolumeRenderer:
    """Renders a field's colour, opacity and depth images through a batch of cameras."""

    def __init__(self, cfg: RenderConfig) -> None:
        if cfg.shading not in SHADINGS:
            raise ConfigError(f"render.shading must be one of {', '.join(SHADINGS)}; got '{cfg.shading}'")
        if cfg.samples_per_ray < 1:
            raise ConfigError(f"render.samples_per_ray must be >= 1; got {cfg.samples_per_ray}")
        if not 0.0 <= cfg.ambient <= 1.0:
            raise ConfigError(f"render.ambient must lie in [0, 1]; got {cfg.ambient}")
        if len(cfg.shading_probs) != 3 or min(cfg.shading_probs) < 0 or sum(cfg.shading_probs) <= 0:
            raise ConfigError(
                "render.shading_probs must be three non-negative weights (albedo, lambertian, textureless) "
                f"with a positive sum; got {cfg.shading_probs}"
            )
        if cfg.near >= cfg.far:
            raise ConfigError(f"render.near must be < render.far; got near={cfg.near}, far={cfg.far}")
        self.cfg = cfg

    def pick_shading(self, shading: str | None, generator: torch.Generator | None) -> str:
        """The shading for this call: the argument, else the config; "random" draws one by shading_probs."""
        shading = shading or self.cfg.shading
        if shading not in SHADINGS:
            raise ConfigError(f"shading must be one of {', '.join(SHADINGS)}; got '{shading}'")
        if shading != "random":
            return shading
        probs = torch.tensor(self.cfg.shading_probs, dtype=torch.float64)
        edges = torch.cumsum(probs / probs.sum(), dim=0)
        u = uniform((1,), generator, "cpu").double()
        return _LIT_SHADINGS[min(int((u > edges).sum()), 2)]

    def _lights(self, cameras: Cameras, light_dir: Tensor | None, perturb: bool,
                generator: torch.Generator | None) -> Tensor:
        """Unit directions towards the light (B, 3): given, or from the camera (jittered in training)."""
        n = len(cameras)
        if light_dir is not None:
            light = light_dir.to(cameras.device, cameras.c2w.dtype).reshape(-1, 3).expand(n, 3)
            return F.normalize(light, dim=-1)
        light = F.normalize(cameras.positions, dim=-1)
        if perturb and self.cfg.light_jitter > 0:
            light = light + self.cfg.light_jitter * normal((n, 3), generator, cameras.device).to(light.dtype)
        return F.normalize(light, dim=-1)

    def _march(self, field: Field, cameras: Cameras, resolution: int, generator: torch.Generator | None,
               perturb: bool) -> _Rays:
        """Rays through every pixel and their sample points inside the field's occupied box."""
        if resolution < 1:
            raise ValueError(f"resolution must be >= 1 pixel; got {resolution}")
        cfg = self.cfg
        origins, dirs = get_rays(cameras, resolution)
        device, dtype = dirs.device, dirs.dtype
        n_rays, pixels, n_samples = len(cameras) * resolution * resolution, resolution * resolution, cfg.samples_per_ray
        ray_o, ray_d = origins.reshape(-1, 3), dirs.reshape(-1, 3)

        box = field.occupied_box(cfg.skip_density) if cfg.skip_density > 0 else None
        low, high = box if box is not None else (-field.bound, field.bound)
        near, far = ray_box_intersection(ray_o, ray_d, low, high)
        near, far = near.clamp(min=cfg.near), far.clamp(max=cfg.far)
        hit = far > near
        # Only rays that cross the box are marched; the rest see the background directly.
        all_hit = bool(hit.all())
        index = None if all_hit else hit.nonzero().squeeze(-1)
        pick = (lambda x: x) if all_hit else (lambda x: x[index])
        o, d, near, far = pick(ray_o), pick(ray_d), pick(near), pick(far)
        m = o.shape[0]

        offsets = uniform((m, n_samples), generator, device).to(dtype) if perturb else 0.5
        bins = (torch.arange(n_samples, device=device, dtype=dtype) + offsets) / n_samples
        span = (far - near)[:, None]
        t = near[:, None] + span * bins  # (m, S)
        points = o[:, None] + t[..., None] * d[:, None]
        return _Rays(dirs, ray_d, n_rays, pixels, n_samples, m, t, span / n_samples, points, all_hit, index, pick)

    @staticmethod
    def _scatter(rays: _Rays, values: Tensor) -> Tensor:
        """Per-marched-ray values back into all n_rays rows (zeros for rays that missed the box)."""
        if rays.all_hit:
            return values
        full = torch.zeros((rays.n_rays, *values.shape[1:]), device=values.device, dtype=values.dtype)
        return full.index_put((rays.index,), values)

    def opacity(self, field: Field, cameras: Cameras, resolution: int, generator: torch.Generator | None = None,
                perturb: bool = False) -> Tensor:
        """Opacity images (B, 1, H, W) alone: what `render` returns as "opacity", at the cost of density
        lookups only (no colour, no background). It draws the same randoms as an albedo `render` with a
        white or learned background, so swapping one for the other leaves a seeded run unchanged."""
        rays = self._march(field, cameras, resolution, generator, perturb)
        sigma = field.density(rays.points.reshape(-1, 3))
        opacity = self._scatter(rays, composite_weights(sigma.view(rays.m, rays.n_samples), rays.delta).sum(dim=1))
        return opacity.view(len(cameras), 1, resolution, resolution)

    def render(
        self,
        field: Field,
        cameras: Cameras,
        resolution: int,
        background: Background | None = None,
        shading: str | None = None,
        light_dir: Tensor | None = None,
        generator: torch.Generator | None = None,
        perturb: bool = False,
        need_normals: bool = False,
    ) -> dict[str, Any]:
        """Render B square images.

        Returns rgb (B, 3, H, W) in [0, 1], opacity and depth (B, 1, H, W) (depth: expected distance
        along the ray of the visible surface, 0 where nothing is hit), per-sample `weights` (B*H*W, S),
        ray `dirs` (B*H*W, 3), the `shading` used, and per-sample outward `normals` (B*H*W, S, 3) when
        the shading needs them or `need_normals` is set. `perturb` jitters sample depths and the light
        (training); every random draw comes from `generator`. background None means white.
        """
        cfg = self.cfg
        shading = self.pick_shading(shading, generator)
        with_normals = need_normals or shading != "albedo"
        rays = self._march(field, cameras, resolution, generator, perturb)
        batch, m, n_samples, t = len(cameras), rays.m, rays.n_samples, rays.t

        sigma, albedo, normals = field.query(rays.points.reshape(-1, 3), with_normals)
        weights = composite_weights(sigma.view(m, n_samples), rays.delta)
        albedo = albedo.reshape(m, n_samples, 3)
        if normals is not None:
            normals = normals.reshape(m, n_samples, 3)

        if shading == "albedo":
            colour = albedo
        else:
            light = self._lights(cameras, light_dir, perturb, generator)
            ray_light = rays.pick(light.repeat_interleave(rays.pixels, dim=0))
            lambert = (normals * ray_light[:, None]).sum(-1).clamp(min=0)
            shade = (cfg.ambient + (1 - cfg.ambient) * lambert).unsqueeze(-1)
            colour = albedo * shade if shading == "lambertian" else cfg.textureless_albedo * shade.expand_as(albedo)

        comp_rgb = torch.bmm(weights.unsqueeze(1), colour).squeeze(1)  # (m, 3)
        opacity = weights.sum(dim=1)
        depth_sum = (weights * t).sum(dim=1)

        comp_rgb, opacity, depth_sum, weights = (
            self._scatter(rays, x) for x in (comp_rgb, opacity, depth_sum, weights))
        bg = background(rays.dirs, generator) if background is not None else torch.ones_like(rays.dirs)
        rgb = comp_rgb + (1 - opacity)[:, None] * bg.reshape(-1, 3)
        depth = torch.where(opacity > 1e-4, depth_sum / opacity.clamp(min=1e-4), torch.zeros_like(depth_sum))

        def image(x: Tensor) -> Tensor:
            return x.view(batch, resolution, resolution, -1).permute(0, 3, 1, 2).contiguous()

        # rgb is in [0, 1] by construction up to rounding. A plain clamp would also zero the gradient of
        # pixels at exactly 1 (torch's clamp backward excludes the bounds), i.e. of every pure-white
        # background pixel, so density could never grow there; clamp the value only.
        rgb = rgb + (rgb.clamp(0.0, 1.0) - rgb).detach()
        out: dict[str, Any] = {
            "rgb": image(rgb),
            "opacity": image(opacity[:, None]),
            "depth": image(depth[:, None]),
            "weights": weights,
            "dirs": rays.ray_d,
            "shading": shading,
        }
        if normals is not None:
            out["normals"] = self._scatter(rays, normals)
        return out
