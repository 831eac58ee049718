"""Pinhole cameras on a sphere looking at the origin: random training views, orbits, and their rays.

World is Y-up. A camera at elevation el, azimuth az and distance d sits at
d * (cos(el) sin(az), sin(el), cos(el) cos(az)), so az = 0 is the front (+Z). Camera frames use
the OpenGL convention: the camera looks down its -Z axis with +Y up and +X to the right.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from psd_engine.config import CameraConfig, check_camera
from psd_engine.scene.rng import uniform


@dataclass
class Cameras:
    """A batch of B cameras: c2w (B, 4, 4) camera-to-world and the spherical parameters they came from."""

    c2w: Tensor
    fovy_deg: Tensor
    elevation_deg: Tensor
    azimuth_deg: Tensor
    distance: Tensor

    def __len__(self) -> int:
        return self.c2w.shape[0]

    def __getitem__(self, index: slice | int | Tensor) -> "Cameras":
        """A sub-batch (an int index keeps the batch dimension)."""
        if isinstance(index, int):
            index = slice(index, index + 1)
        return Cameras(self.c2w[index], self.fovy_deg[index], self.elevation_deg[index],
                       self.azimuth_deg[index], self.distance[index])

    @property
    def positions(self) -> Tensor:
        """Camera centres in world space (B, 3)."""
        return self.c2w[:, :3, 3]

    @property
    def device(self) -> torch.device:
        return self.c2w.device

    def to(self, device: torch.device | str) -> "Cameras":
        """The same cameras with every tensor on `device`."""
        tensors = (self.c2w, self.fovy_deg, self.elevation_deg, self.azimuth_deg, self.distance)
        return Cameras(*(t.to(device) for t in tensors))


def camera_positions(elevation_deg: Tensor, azimuth_deg: Tensor, distance: Tensor) -> Tensor:
    """World positions (B, 3) for spherical coordinates in the project's convention (az=0 at +Z, Y up)."""
    el = torch.deg2rad(elevation_deg)
    az = torch.deg2rad(azimuth_deg)
    return distance[:, None] * torch.stack([el.cos() * az.sin(), el.sin(), el.cos() * az.cos()], dim=-1)


def look_at_origin(positions: Tensor) -> Tensor:
    """Camera-to-world matrices (B, 4, 4) for cameras at `positions` looking at the origin, +Y up."""
    back = torch.nn.functional.normalize(positions, dim=-1)  # camera +Z points away from the target
    world_up = torch.tensor([0.0, 1.0, 0.0], device=positions.device, dtype=positions.dtype).expand_as(back)
    right = torch.linalg.cross(world_up, back)
    # Straight above or below the origin "up" is undefined; any horizontal right vector then works.
    degenerate = right.norm(dim=-1, keepdim=True) < 1e-6
    x_axis = torch.tensor([1.0, 0.0, 0.0], device=positions.device, dtype=positions.dtype)
    right = torch.where(degenerate, x_axis, right)
    right = torch.nn.functional.normalize(right, dim=-1)
    up = torch.linalg.cross(back, right)
    c2w = torch.zeros(positions.shape[0], 4, 4, device=positions.device, dtype=positions.dtype)
    c2w[:, :3, 0] = right
    c2w[:, :3, 1] = up
    c2w[:, :3, 2] = back
    c2w[:, :3, 3] = positions
    c2w[:, 3, 3] = 1.0
    return c2w


def make_cameras(elevation_deg: Tensor, azimuth_deg: Tensor, distance: Tensor, fovy_deg: Tensor) -> Cameras:
    """Cameras looking at the origin from the given spherical coordinates (all (B,) tensors)."""
    c2w = look_at_origin(camera_positions(elevation_deg, azimuth_deg, distance))
    return Cameras(c2w=c2w, fovy_deg=fovy_deg, elevation_deg=elevation_deg, azimuth_deg=azimuth_deg, distance=distance)


def sample_cameras(cfg: CameraConfig, n: int, generator: torch.Generator | None,
                   device: torch.device | str = "cpu") -> Cameras:
    """n random cameras, each parameter uniform in its range, some overhead if asked (deterministic given `generator`)."""
    check_camera(cfg)
    u = uniform((4, n), generator, device)

    def lerp(values: tuple[float, float], t: Tensor) -> Tensor:
        return values[0] + (values[1] - values[0]) * t

    elevation = lerp(cfg.elevation_range, u[0])
    if cfg.overhead_prob > 0.0:  # extra draws only when asked for, so other runs stay bit-identical
        high = uniform((2, n), generator, device)
        elevation = torch.where(high[0] < cfg.overhead_prob, lerp(cfg.overhead_range, high[1]), elevation)
    return make_cameras(
        elevation_deg=elevation,
        azimuth_deg=lerp(cfg.azimuth_range, u[1]),
        distance=lerp(cfg.distance_range, u[2]),
        fovy_deg=lerp(cfg.fovy_range, u[3]),
    )


def orbit_cameras(n: int, elevation_deg: float, distance: float, fovy_deg: float,
                  start_azimuth_deg: float = 0.0, device: torch.device | str = "cpu") -> Cameras:
    """n cameras evenly spaced in azimuth (start, start + 360/n, ...), for previews and turntables."""
    if n < 1:
        raise ValueError(f"orbit_cameras needs n >= 1 views; got {n}")
    azimuth = start_azimuth_deg + 360.0 * torch.arange(n, device=device, dtype=torch.float32) / n
    azimuth = torch.remainder(azimuth + 180.0, 360.0) - 180.0  # report in [-180, 180) like sampled cameras
    full = lambda value: torch.full((n,), float(value), device=device)  # noqa: E731
    return make_cameras(full(elevation_deg), azimuth, full(distance), full(fovy_deg))


def get_rays(cameras: Cameras, resolution: int) -> tuple[Tensor, Tensor]:
    """Ray origins and unit directions (B, H, W, 3) through pixel centres of a square image, row 0 at the top."""
    device, dtype = cameras.c2w.device, cameras.c2w.dtype
    pix = (torch.arange(resolution, device=device, dtype=dtype) + 0.5) / resolution * 2 - 1  # [-1, 1] centres
    ndc_y, ndc_x = torch.meshgrid(-pix, pix, indexing="ij")  # image rows go down, camera +Y goes up
    tan_half = torch.tan(torch.deg2rad(cameras.fovy_deg.to(dtype)) / 2)[:, None, None]
    dirs_cam = torch.stack(
        [ndc_x * tan_half, ndc_y * tan_half, -torch.ones_like(ndc_x).expand_as(ndc_x * tan_half)], dim=-1
    )  # (B, H, W, 3)
    rotation = cameras.c2w[:, :3, :3]
    dirs = torch.einsum("bij,bhwj->bhwi", rotation, dirs_cam)
    dirs = torch.nn.functional.normalize(dirs, dim=-1)
    origins = cameras.c2w[:, None, None, :3, 3].expand_as(dirs)
    return origins, dirs


def focal_pixels(fovy_deg: float, resolution: int) -> float:
    """Focal length in pixels of a square pinhole image with vertical field of view fovy_deg."""
    return resolution / 2 / math.tan(math.radians(fovy_deg) / 2)
