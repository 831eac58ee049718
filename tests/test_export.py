"""Tests of the exporters: marching-cubes mesh -> GLB with vertex colours, turntable video, views grid, export_all."""
from __future__ import annotations

import warnings
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pygltflib
import pytest
import torch
from PIL import Image
from pygltflib.validator import validate

from psd_engine.config import CameraConfig, ExportConfig, FieldConfig, RenderConfig, RunConfig
from psd_engine.export import (
    ExportError, export_all, extract_mesh, read_glb, render_turntable, to_uint8, write_glb, write_turntable,
    write_views_grid,
)
from psd_engine.export import video as video_module
from psd_engine.scene import Background, GridField, VolumeRenderer

RED_LOGITS = (6.0, -6.0, -6.0)


def balls_field(balls: list[tuple[tuple[float, float, float], float]], resolution: int = 40,
                colour_logits=RED_LOGITS, slope: float = 40.0) -> GridField:
    """A GridField of one or more balls (centre, radius): raw density slope * (radius - distance), relu."""
    field = GridField(FieldConfig(resolution=resolution, blob_density=0.0, density_activation="relu"))
    points = GridField.voxel_centres(resolution, 1.0)
    raw = torch.full(points.shape[:3], -10.0)
    for centre, radius in balls:
        raw = torch.maximum(raw, slope * (radius - (points - torch.tensor(centre)).norm(dim=-1)))
    with torch.no_grad():
        field.density_grid[0, 0] = raw
        field.color_grid[0] = torch.tensor(colour_logits)[:, None, None, None]
    return field


def empty_field() -> GridField:
    return GridField(FieldConfig(resolution=16, blob_density=0.0, init_density=-5.0))


def small_export_cfg(**kw) -> ExportConfig:
    base = dict(mesh_resolution=40, density_threshold=5.0, video_frames=4, video_resolution=32, views_resolution=24,
                video_fps=8, mesh_chunk=10000)
    base.update(kw)
    return ExportConfig(**base)


# ----------------------------------------------------------------------------- mesh and GLB

def test_ball_mesh_is_closed_red_and_survives_glb_round_trip(tmp_path):
    radius = 0.5
    field = balls_field([((0.0, 0.0, 0.0), radius)])
    cfg = small_export_cfg()
    mesh = extract_mesh(field, cfg)
    assert mesh.is_watertight and mesh.volume > 0  # closed, normals outward
    # Surface where relu(40 (r - d)) = 5, i.e. d = r - 0.125, in world units.
    surface_radius = radius - cfg.density_threshold / 40.0
    assert np.allclose(np.linalg.norm(mesh.vertices, axis=1), surface_radius, atol=0.02)
    assert mesh.volume == pytest.approx(4 / 3 * np.pi * surface_radius**3, rel=0.05)
    colours = np.asarray(mesh.visual.vertex_colors)
    assert colours.dtype == np.uint8 and colours.shape == (len(mesh.vertices), 4)
    assert colours[:, 0].min() >= 250 and colours[:, 1:3].max() <= 5 and colours[:, 3].min() == 255

    path = write_glb(mesh, tmp_path / "ball.glb", cfg)
    assert path == tmp_path / "ball.glb" and path.read_bytes()[:4] == b"glTF"
    loaded, loaded_colours = read_glb(path)
    assert len(loaded.faces) == len(mesh.faces) and loaded_colours.shape == (len(loaded.vertices), 4)
    assert loaded_colours[:, 0].min() >= 250 and loaded_colours[:, 1:3].max() <= 5  # red stays red

    gltf = pygltflib.GLTF2().load(str(path))
    assert len(gltf.meshes) == 1 and len(gltf.meshes[0].primitives) == 1
    primitive = gltf.meshes[0].primitives[0]
    assert primitive.attributes.COLOR_0 is not None and primitive.attributes.NORMAL is not None
    colour_accessor = gltf.accessors[primitive.attributes.COLOR_0]
    assert colour_accessor.count == len(mesh.vertices)
    material = gltf.materials[primitive.material]
    assert material.pbrMetallicRoughness.baseColorFactor == [1.0, 1.0, 1.0, 1.0]
    assert material.pbrMetallicRoughness.metallicFactor == cfg.material_metallic
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # pygltflib marks its validator "provisional"
        assert validate(gltf, warning=True) == []


def test_keep_largest_component_removes_small_blob():
    field = balls_field([((-0.35, 0.0, 0.0), 0.45), ((0.65, 0.5, 0.0), 0.25)])
    both = extract_mesh(field, small_export_cfg(keep_largest_component=False))
    assert len(both.split(only_watertight=False)) == 2
    # World axes survive marching cubes: the small ball reaches x = 0.65 + 0.125 and y = 0.5 + 0.125,
    # the big one z = 0.45 - 0.125.
    assert both.bounds[1] == pytest.approx([0.775, 0.625, 0.325], abs=0.03)
    largest = extract_mesh(field, small_export_cfg(keep_largest_component=True))
    assert len(largest.split(only_watertight=False)) == 1
    assert largest.bounds[1, 0] < 0.2  # only the big ball on the left is left
    assert len(largest.faces) < len(both.faces)


def shell_and_core_field(core_radius: float) -> GridField:
    """A red-logit ball (radius 0.5, surface at 0.375) whose colour is green outside core_radius, yellow inside."""
    field = balls_field([((0.0, 0.0, 0.0), 0.5)])
    distance = GridField.voxel_centres(40, 1.0).norm(dim=-1)
    with torch.no_grad():
        field.color_grid[0, 0] = torch.where(distance < core_radius, 6.0, -6.0)  # red on in the core only
        field.color_grid[0, 1] = 6.0
    return field


def test_vertex_colours_are_what_a_head_on_render_sees_not_the_thin_shell():
    # Like the shapes runs: the density-5 surface sits in a thin outer shell (0.375 > d > 0.33) whose
    # colour (green) differs from the object's (yellow). A render composites through the shell into
    # the core, so should the GLB's colours; the colour at the vertex alone is the shell's.
    field = shell_and_core_field(core_radius=0.33)
    at_vertex = np.asarray(extract_mesh(field, small_export_cfg(colour_ray_samples=1)).visual.vertex_colors)
    assert at_vertex[:, 0].mean() < 40 and at_vertex[:, 1].min() >= 250  # green
    head_on = np.asarray(extract_mesh(field, small_export_cfg()).visual.vertex_colors)
    # Green optical depth on the ray: ~0.3 over the 0.1 outside the surface (density 1 -> 5) plus ~0.27 in
    # the shell, so 1 - exp(-0.57) = 0.43 of its weight is green and the rest yellow core.
    assert 110 < head_on[:, 0].mean() < 180 and head_on[:, 1].min() >= 250 and head_on[:, 2].max() <= 5  # yellow
    everywhere_green = np.asarray(extract_mesh(shell_and_core_field(core_radius=0.0), small_export_cfg())
                                  .visual.vertex_colors)
    assert everywhere_green[:, 0].max() <= 5  # the ray mixes only colours that are there


@pytest.mark.parametrize("kw, fragment", [
    (dict(colour_ray_samples=0), "export.colour_ray_samples must be >= 1 (1 = the colour at the vertex); got 0"),
    (dict(colour_ray_inside=-0.1), "must be >= 0 (world units); got 0.1 and -0.1"),
    (dict(colour_ray_outside=0.0, colour_ray_inside=0.0), "needs a ray: set export.colour_ray_inside > 0"),
])
def test_bad_colour_ray_settings_name_the_setting(kw, fragment):
    with pytest.raises(ExportError) as info:
        extract_mesh(balls_field([((0.0, 0.0, 0.0), 0.5)]), small_export_cfg(**kw))
    assert fragment in str(info.value)


def test_empty_field_raises_export_error_with_fix():
    with pytest.raises(ExportError) as info:
        extract_mesh(empty_field(), small_export_cfg(density_threshold=5.0))
    message = str(info.value)
    assert message.startswith("no surface at density threshold 5: the object is empty")
    assert "lower export.density_threshold or run more steps" in message


# ----------------------------------------------------------------------------- video and views

def frames_of(n: int, size: int = 30) -> list[np.ndarray]:
    """n solid-colour frames whose red level encodes the frame index."""
    return [np.full((size, size, 3), (40 * i % 256, 100, 200), dtype=np.uint8) for i in range(n)]


def test_turntable_mp4_is_readable_with_right_frame_count(tmp_path):
    path = write_turntable(frames_of(6, size=31), tmp_path / "turn", fps=8)  # odd size is padded to even
    assert path == tmp_path / "turn.mp4"
    reader = imageio.get_reader(path)
    frames = [frame for frame in reader]  # list(reader) would ask len(), which is inf for ffmpeg readers
    assert len(frames) == 6 and frames[0].shape == (32, 32, 3)
    assert abs(int(frames[3][10, 10, 0]) - 120) < 12  # the frame content survived the codec
    assert reader.get_meta_data()["fps"] == pytest.approx(8)


def test_turntable_falls_back_to_gif_when_mp4_fails(tmp_path, monkeypatch):
    def broken_ffmpeg(*args, **kwargs):
        raise RuntimeError("No ffmpeg exe could be found")

    monkeypatch.setattr(video_module, "_write_mp4", broken_ffmpeg)
    path = write_turntable(frames_of(5), tmp_path / "turn", fps=10)
    assert path == tmp_path / "turn.gif" and not (tmp_path / "turn.mp4").exists()
    frames = imageio.mimread(path)
    assert len(frames) == 5 and frames[0].shape[:2] == (30, 30)
    with Image.open(path) as gif:
        assert gif.info["duration"] == 100  # ms per frame at 10 fps
    assert write_turntable(frames_of(3), tmp_path / "asked", fps=10, fmt="gif").suffix == ".gif"
    with pytest.raises(ValueError, match="video format must be one of"):
        write_turntable(frames_of(3), tmp_path / "bad", fps=10, fmt="avi")


def test_render_turntable_frames():
    field = balls_field([((0.0, 0.0, 0.0), 0.5)], resolution=24)
    renderer = VolumeRenderer(RenderConfig(samples_per_ray=32))
    background = Background(RenderConfig(background="random"))  # shown as white in exports
    frames = render_turntable(renderer, field, background, small_export_cfg(video_frames=5, render_batch=2),
                              CameraConfig())
    assert len(frames) == 5 and all(f.shape == (32, 32, 3) and f.dtype == np.uint8 for f in frames)
    assert tuple(frames[0][0, 0]) == (255, 255, 255)
    assert np.abs(frames[2][16, 16].astype(int) - (255, 0, 0)).max() <= 2  # sigmoid(6) red


def test_views_grid_size_and_layout(tmp_path):
    images = [np.full((16, 20, 3), 50 * i, dtype=np.uint8) for i in range(4)]
    path = write_views_grid(images, tmp_path / "views.png")
    grid = imageio.imread(path)
    assert grid.shape == (32, 40, 3)
    assert grid[20, 30, 0] == 150  # image 3 sits bottom-right
    five = imageio.imread(write_views_grid(images + [images[0]], tmp_path / "five.png"))
    assert five.shape == (32, 60, 3) and five[20, 50, 0] == 255  # 2x3, the unused cell is white
    with pytest.raises(ValueError, match="one shape"):
        write_views_grid([images[0], np.zeros((8, 8, 3), np.uint8)], tmp_path / "bad.png")


def test_to_uint8():
    rgb = torch.tensor([0.0, 0.5, 1.0, 1.5]).view(1, 1, 2, 2).expand(2, 3, 2, 2)
    out = to_uint8(rgb)
    assert len(out) == 2 and out[0].shape == (2, 2, 3) and out[0].dtype == np.uint8
    assert out[0][:, :, 0].tolist() == [[0, 128], [255, 255]]


# ----------------------------------------------------------------------------- export_all

def run_cfg(tmp_path: Path) -> RunConfig:
    cfg = RunConfig(out_dir=str(tmp_path))
    cfg.export = small_export_cfg(mesh_resolution=32)
    cfg.render = RenderConfig(samples_per_ray=24)
    return cfg


def test_export_all_writes_everything(tmp_path):
    cfg = run_cfg(tmp_path)
    field = balls_field([((0.0, 0.0, 0.0), 0.5)], resolution=24)
    paths = export_all(field, VolumeRenderer(cfg.render), Background(cfg.render), cfg, tmp_path)
    assert set(paths) == {"glb", "video", "views"}
    assert Path(paths["glb"]).name == "model.glb" and Path(paths["views"]).name == "views.png"
    assert Path(paths["video"]).name in ("turntable.mp4", "turntable.gif")
    assert imageio.imread(paths["views"]).shape == (48, 48, 3)  # 4 views of 24 px in 2x2
    assert len([frame for frame in imageio.get_reader(paths["video"])]) == cfg.export.video_frames
    assert pygltflib.GLTF2().load(paths["glb"]).meshes[0].primitives[0].attributes.COLOR_0 is not None


def test_export_all_keeps_images_when_mesh_is_empty(tmp_path):
    cfg = run_cfg(tmp_path)
    with pytest.raises(ExportError, match="no surface at density threshold") as info:
        export_all(empty_field(), VolumeRenderer(cfg.render), None, cfg, tmp_path)
    assert set(info.value.written) == {"views", "video"}
    assert all(Path(p).is_file() for p in info.value.written.values())
    assert not (tmp_path / "model.glb").exists()
