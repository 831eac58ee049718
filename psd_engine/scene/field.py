"""3D fields of density and colour: the `Field` interface and the dense voxel-grid field.

A field maps world points (N, 3) inside the box [-bound, bound]^3 to a volume density
sigma >= 0 and an RGB colour in [0, 1]. Outside the box the density is zero.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from psd_engine.config import DENSITY_ACTIVATIONS, SAMPLERS, ConfigError, FieldConfig, OptimConfig, check_field
from psd_engine.scene.registry import register_field
from psd_engine.scene.rng import normal

# exp(15) times any step length already makes a sample opaque; the clamp only stops overflow to inf.
_EXP_RAW_MAX = 15.0


class Field(nn.Module):
    """Interface of a density + colour field in the box [-bound, bound]^3 (subclass and implement forward)."""

    def __init__(self, bound: float, fd_step: float = 1e-2, normal_eps: float = 1e-3) -> None:
        super().__init__()
        self.bound = float(bound)
        self.fd_step = float(fd_step)  # finite-difference step of the generic `normals`
        self.normal_eps = float(normal_eps)  # gradient length below which normals shorten (see outward_unit)

    def forward(self, points: Tensor) -> tuple[Tensor, Tensor]:
        """Density sigma (N,) >= 0 and colour rgb (N, 3) in [0, 1] at world points (N, 3)."""
        raise NotImplementedError

    def density(self, points: Tensor) -> Tensor:
        """Density sigma (N,) at world points (N, 3)."""
        return self.forward(points)[0]

    def normals(self, points: Tensor) -> Tensor:
        """Outward unit normals (N, 3) = -grad sigma / |grad sigma| by central differences (shorter where flat)."""
        h = self.fd_step
        offsets = torch.eye(3, device=points.device, dtype=points.dtype) * h
        probes = torch.cat([points[:, None] + offsets, points[:, None] - offsets], dim=1)  # (N, 6, 3)
        sigma = self.density(probes.reshape(-1, 3)).view(-1, 6)
        grad = (sigma[:, :3] - sigma[:, 3:]) / (2 * h)
        return outward_unit(grad.t(), self.normal_eps).t()

    def query(self, points: Tensor, need_normals: bool = False) -> tuple[Tensor, Tensor, Tensor | None]:
        """(sigma, rgb, normals or None) at points; subclasses fuse these into one lookup."""
        sigma, rgb = self.forward(points)
        return sigma, rgb, self.normals(points) if need_normals else None

    def inside(self, points: Tensor) -> Tensor:
        """Boolean (N,) mask of points inside the field's box."""
        return (points.abs() <= self.bound).all(dim=-1)

    def occupied_box(self, threshold: float) -> tuple[Tensor, Tensor] | None:
        """(min xyz, max xyz) of a box holding all density above `threshold`; None means the whole box."""
        return None


def activate_density(raw: Tensor, activation: str, scale: float) -> Tensor:
    """Map raw density to sigma >= 0 with the named activation, times `scale`."""
    if activation == "softplus":
        out = F.softplus(raw)
    elif activation == "exp":
        out = torch.exp(raw.clamp(max=_EXP_RAW_MAX))
    elif activation == "relu":
        out = F.relu(raw)
    else:
        choices = ", ".join(DENSITY_ACTIVATIONS)
        raise ConfigError(f"field.density_activation must be one of {choices}; got '{activation}'")
    return out * scale


def sample_volume(volume: Tensor, coords: Tensor, sampler: str = "auto") -> Tensor:
    """Trilinear lookup: volume (1, C, D=z, H=y, W=x), coords (N, 3) xyz in [-1, 1] -> (C, N).

    Voxel centres sit at the box corners (align_corners=True), so the grid spans the box exactly.
    """
    if sampler == "auto":
        sampler = "atlas_2d" if volume.device.type == "cpu" else "grid_sample_3d"
    channels = volume.shape[1]
    n = coords.shape[0]
    if sampler == "grid_sample_3d":
        out = F.grid_sample(volume, coords.view(1, n, 1, 1, 3), mode="bilinear", padding_mode="border",
                            align_corners=True)
        return out.view(channels, n)
    if sampler != "atlas_2d":
        raise ConfigError(f"field.sampler must be one of {', '.join(SAMPLERS)}; got '{sampler}'")
    # PyTorch's CPU grid_sample kernel is vectorised for 4D (2D) inputs but not for 5D ones, so on the
    # CPU the z-slices are stacked into one tall 2D image: two bilinear lookups (the slices below and
    # above the point) and a lerp along z give the same trilinear value about twice as fast.
    depth, height, width = volume.shape[2:]
    atlas = volume.reshape(1, channels, depth * height, width)
    # Clamping first keeps points outside the box from reading a neighbouring slice of the atlas.
    cx, cy, cz = coords.clamp(-1.0, 1.0).unbind(-1)
    z = (cz + 1) * (0.5 * (depth - 1))
    z0 = z.floor().clamp_(max=depth - 2)
    row_scale = 2.0 / (depth * height - 1)
    row0 = (z0 * height + (cy + 1) * (0.5 * (height - 1))) * row_scale - 1
    rows = torch.stack([row0, row0 + height * row_scale])  # (2, n): the slice below and the slice above
    grid = torch.stack([cx.expand(2, n), rows], dim=-1).view(1, 2, n, 2)
    out = F.grid_sample(atlas, grid, mode="bilinear", padding_mode="border", align_corners=True)
    below, above = out.view(channels, 2, n).unbind(1)
    return torch.lerp(below, above, z - z0)


def outward_unit(grad: Tensor, eps: float) -> Tensor:
    """-grad / max(|grad|, eps) for a channel-first gradient (3, N): unit length, shorter where |grad| < eps."""
    # Where the density is flat (|grad| -> 0) dividing by |grad| would multiply gradients by up to
    # 1/|grad|; the floor caps that at 1/eps and lets such normals fade out instead.
    # Channel-first sums of three contiguous planes are much cheaper than F.normalize's norm over a
    # trailing dimension of size 3, which showed up as a tenth of a shaded render's time.
    inv_norm = torch.rsqrt((grad * grad).sum(0).clamp(min=eps * eps))
    return grad * -inv_norm


def blob_distance(points: Tensor, norm: float) -> Tensor:
    """The p-norm of each point (..., 3): 2 = Euclidean (a ball's distance), 0 = the max-norm (a box's)."""
    if norm == 2:
        return points.norm(dim=-1)
    if norm == 0:
        return points.abs().amax(dim=-1)
    return torch.linalg.vector_norm(points, ord=norm, dim=-1)


@register_field("grid")
class GridField(Field):
    """Dense voxel grid of raw density (1 channel) and raw colour (3 channels), trilinearly interpolated."""

    def __init__(self, cfg: FieldConfig, generator: torch.Generator | None = None) -> None:
        check_field(cfg)
        super().__init__(cfg.bound, fd_step=2 * cfg.bound / (cfg.resolution - 1), normal_eps=cfg.normal_eps)
        self.cfg = cfg
        res = cfg.resolution
        centres = self.voxel_centres(res, cfg.bound)
        radius = blob_distance(centres, cfg.blob_norm)
        # Density blob (DreamFusion / Magic3D): a dense ball at the centre gives the first steps a shape to
        # carve; init_density is the raw value everywhere outside it.
        blob = (1 - radius / cfg.blob_radius).clamp(min=0) if cfg.blob_density != 0 else torch.zeros_like(radius)
        raw_density = cfg.init_density + cfg.blob_density * blob
        raw_color = torch.full((3, res, res, res), float(cfg.init_color))
        if cfg.color_noise > 0:
            raw_color = raw_color + cfg.color_noise * normal((3, res, res, res), generator, "cpu")
        self.density_grid = nn.Parameter(raw_density[None, None].contiguous())  # (1, 1, D=z, H=y, W=x)
        self.color_grid = nn.Parameter(raw_color[None].contiguous())  # (1, 3, D=z, H=y, W=x)

    @staticmethod
    def voxel_centres(resolution: int, bound: float) -> Tensor:
        """World xyz of every voxel centre, shape (D=z, H=y, W=x, 3), matching the grid layout."""
        lin = torch.linspace(-bound, bound, resolution)
        z, y, x = torch.meshgrid(lin, lin, lin, indexing="ij")
        return torch.stack([x, y, z], dim=-1)

    def _sigma(self, raw: Tensor, points: Tensor) -> Tensor:
        sigma = activate_density(raw, self.cfg.density_activation, self.cfg.density_scale)
        return sigma * self.inside(points).to(sigma.dtype)

    def _density_gradient_grid(self) -> Tensor:
        """Central differences of the raw density on the grid (1, 3, D, H, W), xyz order.

        The activation is monotonic, so grad(raw) points the same way as grad(sigma); differencing the
        raw grid keeps a direction even where relu would flatten sigma. Interpolating this grid costs
        three extra channels in the one lookup instead of six extra density lookups.
        """
        raw = F.pad(self.density_grid, (1, 1, 1, 1, 1, 1), mode="replicate")
        gx = raw[..., 1:-1, 1:-1, 2:] - raw[..., 1:-1, 1:-1, :-2]
        gy = raw[..., 1:-1, 2:, 1:-1] - raw[..., 1:-1, :-2, 1:-1]
        gz = raw[..., 2:, 1:-1, 1:-1] - raw[..., :-2, 1:-1, 1:-1]
        return torch.cat([gx, gy, gz], dim=1)

    def query(self, points: Tensor, need_normals: bool = False) -> tuple[Tensor, Tensor, Tensor | None]:
        """(sigma (N,), rgb (N, 3), outward unit normals (N, 3) or None) from one trilinear lookup."""
        grids = [self.density_grid, self.color_grid]
        if need_normals:
            grids.append(self._density_gradient_grid())
        values = sample_volume(torch.cat(grids, dim=1), points / self.bound, self.cfg.sampler)
        # split (not indexing) so that backward concatenates the gradients instead of zero-filling copies
        raw, raw_rgb, *grad = values.split([1, 3, 3] if need_normals else [1, 3])
        sigma = self._sigma(raw[0], points)
        rgb = torch.sigmoid(raw_rgb).t()
        normals = outward_unit(grad[0], self.normal_eps).t() if need_normals else None
        return sigma, rgb, normals

    def forward(self, points: Tensor) -> tuple[Tensor, Tensor]:
        """Density sigma (N,) and colour rgb (N, 3) in [0, 1] at world points (N, 3)."""
        sigma, rgb, _ = self.query(points)
        return sigma, rgb

    def density(self, points: Tensor) -> Tensor:
        """Density sigma (N,) at world points (N, 3) (density channel only)."""
        raw = sample_volume(self.density_grid, points / self.bound, self.cfg.sampler)[0]
        return self._sigma(raw, points)

    def normals(self, points: Tensor) -> Tensor:
        """Outward unit normals (N, 3) from the interpolated density gradient (shorter where nearly flat)."""
        grad = sample_volume(self._density_gradient_grid(), points / self.bound, self.cfg.sampler)
        return outward_unit(grad, self.normal_eps).t()

    @torch.no_grad()
    def occupied_box(self, threshold: float) -> tuple[Tensor, Tensor] | None:
        """Bounds of the voxels with density above `threshold`, grown by one voxel so that the shape can grow.

        None (the whole box) when no voxel is that dense: an empty field must still get gradients everywhere.
        """
        sigma = activate_density(self.density_grid[0, 0], self.cfg.density_activation, self.cfg.density_scale)
        occupied = (sigma > threshold).nonzero()  # (K, 3) as (z, y, x) voxel indices
        if occupied.shape[0] == 0:
            return None
        last = self.cfg.resolution - 1
        low = (occupied.amin(dim=0) - 1).clamp(min=0).flip(0)
        high = (occupied.amax(dim=0) + 1).clamp(max=last).flip(0)
        spacing = 2 * self.bound / last
        return low.to(sigma.dtype) * spacing - self.bound, high.to(sigma.dtype) * spacing - self.bound

    def parameter_groups(self, optim_cfg: OptimConfig) -> list[dict]:
        """Adam parameter groups: density at optim.lr, colour at optim.color_lr."""
        return [
            {"params": [self.density_grid], "lr": optim_cfg.lr, "name": "density"},
            {"params": [self.color_grid], "lr": optim_cfg.color_lr, "name": "color"},
        ]
