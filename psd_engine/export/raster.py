"""A small z-buffer rasterizer for triangle meshes, so the exported GLB itself can be looked at and scored.

The views.png and turntable are volume renders of the field; the GLB is a marching-cubes surface
of it, which is what users download and what the app's 3D viewer shows. This renders that mesh
with the engine's own cameras (same pinhole model as `scene.cameras.get_rays`), in pure PyTorch:
each triangle is tested against the pixel centres in its screen bounding box, the nearest
fragment per pixel wins (scatter-min on depth), and `supersample` x `supersample` sub-pixels are
averaged for anti-aliasing. Colours are interpolated perspective-correctly from the vertices.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from psd_engine.export.mesh import read_glb
from psd_engine.scene.cameras import Cameras, focal_pixels

SHADINGS = ("albedo", "lambertian")


def _project(vertices: Tensor, c2w: Tensor, fovy_deg: float, size: int) -> tuple[Tensor, Tensor, Tensor]:
    """Pixel x, y (pixel-centre units: centre of pixel i is at i) and depth along the view axis.

    The inverse of scene.cameras.get_rays: same focal length, row 0 at the top.
    """
    rel = vertices - c2w[:3, 3]
    cam = rel @ c2w[:3, :3]  # columns of c2w's rotation are right, up, back
    depth = -cam[:, 2]
    focal = focal_pixels(fovy_deg, size)
    safe = depth.clamp_min(1e-6)
    centre = size / 2 - 0.5
    return centre + focal * cam[:, 0] / safe, centre - focal * cam[:, 1] / safe, depth


def _rasterize_one(vertices: Tensor, faces: Tensor, colours: Tensor, c2w: Tensor, fovy_deg: float, size: int,
                   near: float, chunk: int) -> tuple[Tensor, Tensor]:
    """RGB (size, size, 3) and coverage (size, size) of one view, without anti-aliasing."""
    px, py, depth = _project(vertices, c2w, fovy_deg, size)
    tri_x, tri_y, tri_z = px[faces], py[faces], depth[faces]  # (F, 3) each
    x0 = tri_x.min(1).values.ceil().clamp(0, size - 1)
    x1 = tri_x.max(1).values.floor().clamp(-1, size - 1)
    y0 = tri_y.min(1).values.ceil().clamp(0, size - 1)
    y1 = tri_y.max(1).values.floor().clamp(-1, size - 1)
    visible = (tri_z.min(1).values > near) & (x1 >= x0) & (y1 >= y0)
    width, height = (x1 - x0 + 1).long(), (y1 - y0 + 1).long()

    zbuf = torch.full((size * size,), float("inf"), dtype=vertices.dtype, device=vertices.device)
    fragments: list[tuple[Tensor, Tensor, Tensor, Tensor]] = []  # pixel, depth, face, barycentrics
    # Triangles are grouped by bounding-box size so each group tests a window just big enough.
    extent = torch.maximum(width, height)
    for window in sorted({int(2 ** math.ceil(math.log2(max(int(e), 1)))) for e in extent[visible].tolist()}):
        group = visible & (extent <= window) & (extent > window // 2 if window > 1 else extent >= 1)
        ids = group.nonzero().squeeze(1)
        offs = torch.arange(window, device=vertices.device)
        dy, dx = torch.meshgrid(offs, offs, indexing="ij")
        dx, dy = dx.reshape(-1), dy.reshape(-1)
        for start in range(0, ids.numel(), max(chunk // (window * window), 1)):
            f = ids[start:start + max(chunk // (window * window), 1)]
            cx = x0[f, None] + dx  # (n, window^2) candidate pixel centres
            cy = y0[f, None] + dy
            inside_box = (cx <= x1[f, None]) & (cy <= y1[f, None])
            ax, ay = tri_x[f], tri_y[f]
            # Edge functions: the barycentric weight of vertex k is the area opposite it.
            w0 = (ax[:, 1, None] - cx) * (ay[:, 2, None] - cy) - (ay[:, 1, None] - cy) * (ax[:, 2, None] - cx)
            w1 = (ax[:, 2, None] - cx) * (ay[:, 0, None] - cy) - (ay[:, 2, None] - cy) * (ax[:, 0, None] - cx)
            w2 = (ax[:, 0, None] - cx) * (ay[:, 1, None] - cy) - (ay[:, 0, None] - cy) * (ax[:, 1, None] - cx)
            area = (w0 + w1 + w2)
            sign = torch.where(area >= 0, 1.0, -1.0)  # both windings: meshes may be viewed from inside
            inside = inside_box & (w0 * sign >= 0) & (w1 * sign >= 0) & (w2 * sign >= 0) & (area.abs() > 1e-12)
            if not inside.any():
                continue
            bary = torch.stack([w0, w1, w2], dim=-1) / area[..., None]
            # Perspective-correct weights: interpolate 1/z linearly in screen space.
            inv_z = bary / tri_z[f][:, None, :]
            frag_depth = 1.0 / inv_z.sum(-1)
            persp = inv_z * frag_depth[..., None]
            pix = (cy * size + cx).long()
            rows, cols = inside.nonzero(as_tuple=True)
            fragments.append((pix[rows, cols], frag_depth[rows, cols], f[rows], persp[rows, cols]))
            zbuf.scatter_reduce_(0, pix[rows, cols], frag_depth[rows, cols], reduce="amin")

    rgb = torch.zeros(size * size, 3, dtype=vertices.dtype, device=vertices.device)
    covered = torch.zeros(size * size, dtype=torch.bool, device=vertices.device)
    for pix, frag_depth, face, persp in fragments:
        win = frag_depth <= zbuf[pix]
        if win.any():
            corner = colours[faces[face[win]]]  # (n, 3 vertices, 3 channels)
            rgb[pix[win]] = (persp[win][..., None] * corner).sum(1)
            covered[pix[win]] = True
    return rgb.view(size, size, 3), covered.view(size, size)


@torch.no_grad()
def rasterize_mesh(vertices: np.ndarray | Tensor, faces: np.ndarray | Tensor, colours: np.ndarray | Tensor,
                   cameras: Cameras, resolution: int, supersample: int = 2, shading: str = "albedo",
                   ambient: float = 0.35, near: float = 1e-3, chunk: int = 1 << 20) -> Tensor:
    """Images (B, 3, H, W) in [0, 1] of a vertex-coloured mesh on white, one per camera.

    shading "albedo" shows the vertex colours as they are (like the engine's albedo views);
    "lambertian" multiplies them by ambient + (1 - ambient) * |n . l| per face, with a light at the
    camera (both sides lit, so winding does not matter).
    """
    if shading not in SHADINGS:
        raise ValueError(f"shading must be one of {', '.join(SHADINGS)}; got '{shading}'")
    if resolution < 1 or supersample < 1:
        raise ValueError(f"resolution and supersample must be >= 1; got {resolution} and {supersample}")
    device = cameras.device
    v = torch.as_tensor(np.asarray(vertices, np.float32) if not isinstance(vertices, Tensor) else vertices,
                        dtype=torch.float32, device=device)
    f = torch.as_tensor(faces, dtype=torch.long, device=device)
    c = torch.as_tensor(np.asarray(colours, np.float32) if not isinstance(colours, Tensor) else colours,
                        dtype=torch.float32, device=device)[:, :3]
    if v.ndim != 2 or v.shape[1] != 3 or f.ndim != 2 or f.shape[1] != 3 or c.shape[0] != v.shape[0]:
        raise ValueError(f"need vertices (V, 3), faces (F, 3) and colours (V, 3); got {tuple(v.shape)}, "
                         f"{tuple(f.shape)}, {tuple(c.shape)}")
    size = resolution * supersample
    if shading == "lambertian":
        # Flat shading per face: each face gets its own three vertices so its light is its own.
        tri = v[f]
        normals = torch.nn.functional.normalize(torch.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], dim=-1),
                                                dim=-1)
        centres = tri.mean(1)
        verts, fcs = tri.reshape(-1, 3), torch.arange(f.numel(), device=device).view(-1, 3)
    images = []
    for b in range(len(cameras)):
        c2w = cameras.c2w[b].float()
        if shading == "lambertian":
            to_camera = torch.nn.functional.normalize(c2w[:3, 3] - centres, dim=-1)
            lit = ambient + (1 - ambient) * (normals * to_camera).sum(-1).abs()
            cols = (c[f] * lit[:, None, None]).reshape(-1, 3)
        else:
            verts, fcs, cols = v, f, c
        rgb, covered = _rasterize_one(verts, fcs, cols, c2w, float(cameras.fovy_deg[b]), size, near, chunk)
        rgb = torch.where(covered[..., None], rgb.clamp(0, 1), torch.ones_like(rgb))
        image = rgb.permute(2, 0, 1)[None]
        if supersample > 1:
            image = torch.nn.functional.avg_pool2d(image, supersample)
        images.append(image)
    return torch.cat(images)


def glb_mesh(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vertices (V, 3), faces (F, 3) and RGB vertex colours in [0, 1] (V, 3) of the mesh in a GLB file."""
    mesh, colours = read_glb(path)
    return np.asarray(mesh.vertices), np.asarray(mesh.faces), colours[:, :3] / 255.0


def render_glb(path: str | Path, cameras: Cameras, resolution: int, shading: str = "albedo",
               supersample: int = 2) -> Tensor:
    """Images (B, 3, H, W) of the mesh in a GLB file (e.g. a run's model.glb), one per camera."""
    return rasterize_mesh(*glb_mesh(path), cameras, resolution, supersample=supersample, shading=shading)
