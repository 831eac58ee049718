"""The mesh rasterizer (psd_engine/export/raster.py): geometry, occlusion, colours, and a GLB read back."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import trimesh

from psd_engine.config import ExportConfig
from psd_engine.export import read_glb, write_glb
from psd_engine.export.raster import rasterize_mesh
from psd_engine.scene.cameras import orbit_cameras


def coloured_box(extents, centre, rgb) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vertices, faces and per-vertex colours of an axis-aligned box."""
    box = trimesh.creation.box(extents=extents)
    box.apply_translation(centre)
    return np.asarray(box.vertices), np.asarray(box.faces), np.tile(np.asarray(rgb, float), (len(box.vertices), 1))


def test_front_view_of_a_unit_cube_covers_its_projected_square():
    distance, fovy, res = 3.0, 40.0, 96
    v, f, c = coloured_box((1.0, 1.0, 1.0), (0, 0, 0), (1.0, 0.0, 0.0))
    cams = orbit_cameras(1, 0.0, distance, fovy)  # camera on +z looking at the origin
    image = rasterize_mesh(v, f, c, cams, res, supersample=4)[0]
    # The front face (z = +0.5) is what bounds the silhouette: half side 0.5 at depth distance - 0.5.
    focal = res / 2 / math.tan(math.radians(fovy) / 2)
    side_px = 2 * focal * 0.5 / (distance - 0.5)
    covered = 1.0 - image[1]  # green channel: 0 on the red cube, 1 on white
    assert covered.sum().item() == pytest.approx(side_px**2, rel=0.02)
    assert torch.allclose(image[:, res // 2, res // 2], torch.tensor([1.0, 0.0, 0.0]))
    assert torch.allclose(image[:, 2, 2], torch.ones(3))  # background corner stays white
    # Centred: as much red left of the middle column as right of it.
    assert covered[:, : res // 2].sum().item() == pytest.approx(covered[:, res // 2:].sum().item(), rel=1e-3)


def test_nearer_surface_wins_from_either_side():
    v1, f1, c1 = coloured_box((0.6, 0.6, 0.2), (0, 0, 0.5), (1.0, 0.0, 0.0))  # red slab, nearer +z
    v2, f2, c2 = coloured_box((0.6, 0.6, 0.2), (0, 0, -0.5), (0.0, 0.0, 1.0))  # blue slab, nearer -z
    v = np.concatenate([v1, v2])
    f = np.concatenate([f1, f2 + len(v1)])
    c = np.concatenate([c1, c2])
    both = orbit_cameras(2, 0.0, 3.0, 40.0)  # azimuths 0 (+z) and 180 (-z)
    front, back = both[0:1], both[1:2]
    res = 32
    for cams, expected in ((front, [1.0, 0.0, 0.0]), (back, [0.0, 0.0, 1.0])):
        image = rasterize_mesh(v, f, c, cams, res)
        assert torch.allclose(image[0, :, res // 2, res // 2], torch.tensor(expected))


def test_vertex_colours_are_interpolated_inside_a_triangle():
    # One triangle facing the camera at constant depth: screen-space interpolation is exact there.
    v = np.array([[-0.8, -0.6, 0.0], [0.8, -0.6, 0.0], [0.0, 0.9, 0.0]])
    c = np.eye(3)
    cams = orbit_cameras(1, 0.0, 3.0, 45.0)
    res = 65
    image = rasterize_mesh(v, np.array([[0, 1, 2]]), c, cams, res, supersample=1)[0]
    centroid = v.mean(0)
    focal = res / 2 / math.tan(math.radians(45.0) / 2)
    col = round(res / 2 - 0.5 + focal * centroid[0] / 3.0)
    row = round(res / 2 - 0.5 - focal * centroid[1] / 3.0)
    assert torch.allclose(image[:, row, col], torch.full((3,), 1 / 3), atol=0.03)


def test_lambertian_shading_darkens_faces_turned_away():
    v, f, c = coloured_box((1.0, 1.0, 1.0), (0, 0, 0), (1.0, 1.0, 1.0))
    cams = orbit_cameras(1, 30.0, 3.0, 40.0)  # from above: top and front faces lit differently
    albedo = rasterize_mesh(v, f, c, cams, 64)[0]
    lit = rasterize_mesh(v, f, c, cams, 64, shading="lambertian", ambient=0.2)[0]
    assert albedo.min() == pytest.approx(1.0)  # a white box on white: nothing but white
    assert 0.2 < lit.min().item() < 0.9
    with pytest.raises(ValueError, match="shading must be one of albedo, lambertian"):
        rasterize_mesh(v, f, c, cams, 64, shading="phong")


def test_glb_written_by_the_exporter_reads_back_and_renders_red(tmp_path):
    v, f, c = coloured_box((0.8, 0.8, 0.8), (0, 0, 0), (1.0, 0.0, 0.0))
    mesh = trimesh.Trimesh(vertices=v, faces=f, process=False)
    mesh.visual = trimesh.visual.ColorVisuals(mesh, vertex_colors=np.tile([255, 0, 0, 255], (len(v), 1)))
    path = write_glb(mesh, tmp_path / "box.glb", ExportConfig())
    loaded, colours = read_glb(path)
    assert len(loaded.faces) == len(f) and colours.shape == (len(loaded.vertices), 4)
    assert (colours[:, 0] == 255).all() and (colours[:, 1:3] == 0).all()
    image = rasterize_mesh(loaded.vertices, loaded.faces, colours[:, :3] / 255.0, orbit_cameras(1, 0.0, 3.0, 40.0), 32)
    assert torch.allclose(image[0, :, 16, 16], torch.tensor([1.0, 0.0, 0.0]))
    with pytest.raises(FileNotFoundError, match="no GLB file at"):
        read_glb(tmp_path / "missing.glb")
