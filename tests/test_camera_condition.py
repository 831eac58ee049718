"""Camera conditioning: the features and maps, the mirror rule checked against the world's renderer,
the loader's checks, and the training batch's mirroring and dropout."""
from __future__ import annotations

import json
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from psd_engine.config import PriorConfig  # noqa: E402
from psd_engine.models import load_prior  # noqa: E402
from psd_engine.models.camera_condition import camera_feature_dim, camera_features, camera_map  # noqa: E402
from psd_engine.models.tiny import build_tiny_pixel  # noqa: E402
from psd_engine.scene.cameras import make_cameras  # noqa: E402
from psd_engine.shapes import world  # noqa: E402
from training import train_prior  # noqa: E402

CPU = torch.device("cpu")


def test_features_are_sines_and_cosines_of_elevation_and_azimuth_harmonics():
    f = camera_features(torch.tensor([0.0, 30.0]), torch.tensor([0.0, 45.0]), (1, 2))
    assert f.shape == (2, camera_feature_dim((1, 2))) == (2, 6)
    torch.testing.assert_close(f[0], torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0, 1.0]))
    h = math.sqrt(0.5)
    torch.testing.assert_close(f[1], torch.tensor([0.5, math.sqrt(3) / 2, h, h, 1.0, 0.0]), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="2 elevations but 1 azimuths"):
        camera_features(torch.tensor([0.0, 1.0]), torch.tensor([0.0]), (1,))


def _render(yaw: float, azimuth: float) -> np.ndarray:
    spec = world.ShapeSpec("cube", "red", yaw_deg=yaw, azimuth_deg=azimuth, light_azimuth_deg=azimuth,
                           elevation_deg=25.0, light_elevation_deg=40.0)
    return world.render_specs([spec], 32)[0]


def test_relative_azimuth_and_the_mirror_rule_match_what_the_world_renders():
    """A cube at yaw 20 seen from azimuth 50 is the cube at yaw 0 seen from 30 (the features use az - yaw);
    its mirror image is the cube seen from -30 (the training batch negates a mirrored image's azimuth)."""
    seen = _render(20.0, 50.0)
    assert np.abs(seen - _render(0.0, 30.0)).max() < 0.02
    assert np.abs(seen - _render(0.0, 0.0)).mean() > 0.01  # the pose does change the picture
    assert np.abs(seen[:, ::-1] - _render(0.0, -30.0)).max() < 0.02
    specs = [world.ShapeSpec("cube", "red", yaw_deg=20.0, azimuth_deg=50.0, elevation_deg=25.0)]
    torch.testing.assert_close(train_prior.spec_cameras(specs), torch.tensor([[25.0, 30.0, 2.4, 45.0]]))


def _cams(elevation: float, azimuth: float, n: int = 1) -> tuple[torch.Tensor, ...]:
    return (torch.full((n,), elevation), torch.full((n,), azimuth), torch.full((n,), 2.4), torch.full((n,), 45.0))


def test_camera_map_is_each_rays_closest_point_to_the_centre_as_the_world_renderer_casts_it():
    spec = world.ShapeSpec("cube", "red", azimuth_deg=30.0, elevation_deg=25.0, distance=2.2, fovy_deg=40.0)
    eye, dirs = world.camera_rays([spec], 16)  # the rays the training images were traced along
    expected = eye[:, None, :] - (eye[:, None, :] * dirs).sum(-1, keepdim=True) * dirs
    got = camera_map(torch.tensor([25.0]), torch.tensor([30.0]), torch.tensor([2.2]), torch.tensor([40.0]), 16)
    assert got.shape == (1, 3, 16, 16)
    torch.testing.assert_close(got, expected.reshape(1, 16, 16, 3).permute(0, 3, 1, 2), atol=1e-5, rtol=0)
    # Each point is on its ray and that ray's point nearest the centre (perpendicular to it).
    assert float((got.permute(0, 2, 3, 1).reshape(1, -1, 3) * dirs).sum(-1).abs().max()) < 1e-5
    # A mirrored picture is the object seen from -azimuth: its map is the mirrored map with x negated.
    mirrored = camera_map(torch.tensor([25.0]), torch.tensor([-30.0]), torch.tensor([2.2]), torch.tensor([40.0]), 16)
    torch.testing.assert_close(mirrored, got.flip(-1) * torch.tensor([-1.0, 1.0, 1.0])[:, None, None], atol=1e-5, rtol=0)
    # Straight from the front at the horizon, the centre pixels' points are near the origin, x grows to the right.
    front = camera_map(*_cams(0.0, 0.0), 8)[0]
    assert float(front[:, 3:5, 3:5].abs().max()) < 0.15
    assert bool((front[0, 4, 1:] > front[0, 4, :-1]).all()) and bool((front[1, 1:, 4] < front[1, :-1, 4]).all())


def test_training_batch_mirrors_flipped_images_and_drops_cameras_at_the_rate():
    cfg = train_prior.PriorTrainConfig(camera_harmonics=(1, 2, 4), camera_dropout=0.25)
    cams = torch.stack(_cams(10.0, 40.0, 4000), dim=1)
    flip = torch.arange(4000) % 2 == 0
    out = train_prior.batch_cameras(cfg, cams, flip, np.random.default_rng(0))
    assert out.shape == (4000, camera_feature_dim(cfg.camera_harmonics))
    unknown = (out == 0).all(1)
    assert 0.22 < float(unknown.float().mean()) < 0.28
    known = ~unknown
    torch.testing.assert_close(out[known & flip][0], camera_features(torch.tensor([10.0]), torch.tensor([-40.0]), (1, 2, 4))[0])
    torch.testing.assert_close(out[known & ~flip][0], camera_features(torch.tensor([10.0]), torch.tensor([40.0]), (1, 2, 4))[0])
    cfg_map = train_prior.PriorTrainConfig(camera_map=True, camera_dropout=0.25, resolution=8)
    maps = train_prior.batch_cameras(cfg_map, cams[:400], flip[:400], np.random.default_rng(0))
    assert maps.shape == (400, 3, 8, 8)
    # The same random draws decide "unknown" for either camera input.
    torch.testing.assert_close((maps == 0).flatten(1).all(1), unknown[:400])
    kept = ~unknown[:400]
    torch.testing.assert_close(maps[kept & flip[:400]][0], camera_map(*_cams(10.0, -40.0), 8)[0])
    torch.testing.assert_close(maps[kept & ~flip[:400]][0], camera_map(*_cams(10.0, 40.0), 8)[0])
    assert train_prior.batch_cameras(train_prior.PriorTrainConfig(), cams, flip, np.random.default_rng(0)) is None


def test_camera_conditioned_prior_loads_and_its_output_depends_on_the_camera(tmp_path):
    folder = build_tiny_pixel(tmp_path / "cam", camera_harmonics=(1, 2))
    prior = load_prior(PriorConfig(kind="pixel", model=str(folder)), CPU)
    assert prior.camera_harmonics == (1, 2)
    cams = prior.camera_condition(make_cameras(torch.tensor([15.0, 15.0]), torch.tensor([0.0, 90.0]),
                                               torch.tensor([2.4, 2.4]), torch.tensor([45.0, 45.0])))
    torch.testing.assert_close(cams, camera_features(torch.tensor([15.0, 15.0]), torch.tensor([0.0, 90.0]), (1, 2)))
    z = torch.rand(1, 3, 32, 32).expand(2, -1, -1, -1)
    emb = prior.encode_text(["a red cube"]).expand(2, -1, -1)
    with torch.no_grad():
        # A random UNet's projection weights are small; scale the features so the difference is clear.
        out = prior.predict_noise(z, torch.tensor([500, 500]), emb, camera=cams * 50)
        unknown = prior.predict_noise(z, torch.tensor([500, 500]), emb)
        zeros = prior.predict_noise(z, torch.tensor([500, 500]), emb, camera=torch.zeros(2, 6))
    assert not torch.allclose(out[0], out[1], atol=1e-4)
    torch.testing.assert_close(unknown, zeros)
    with pytest.raises(ValueError, match=r"camera features must be \(2, 6\) for this prior; got \(2, 4\)"):
        prior.predict_noise(z, torch.tensor([500, 500]), emb, camera=torch.zeros(2, 4))


def test_text_only_prior_has_no_camera_condition_and_mismatches_are_explained(tmp_path):
    text_only = load_prior(PriorConfig(kind="pixel", tiny_random=True), CPU)
    assert text_only.camera_condition(make_cameras(*_cams(10.0, 0.0))) is None
    folder = tmp_path / "cam"
    shutil.copytree(build_tiny_pixel(tmp_path / "src", camera_harmonics=(1, 2)), folder)
    manifest = json.loads((folder / "psd_prior.json").read_text())
    manifest["camera_harmonics"] = [1, 2, 4]
    (folder / "psd_prior.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=r"camera_harmonics \[1, 2, 4\] need a UNet with class_embed_type "
                                         r"'projection' and projection_class_embeddings_input_dim 8"):
        load_prior(PriorConfig(kind="pixel", model=str(folder)), CPU)
    del manifest["camera_harmonics"]
    (folder / "psd_prior.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="psd_prior.json lists its camera_harmonics"):
        load_prior(PriorConfig(kind="pixel", model=str(folder)), CPU)


def test_camera_map_prior_loads_reads_its_map_and_mismatches_are_explained(tmp_path):
    folder = build_tiny_pixel(tmp_path / "map", camera_map=True)
    prior = load_prior(PriorConfig(kind="pixel", model=str(folder)), CPU)
    assert prior.camera_map and prior.camera_harmonics == ()
    cams = make_cameras(*(torch.cat([a, b]) for a, b in zip(_cams(15.0, 0.0), _cams(70.0, 45.0))))
    maps = prior.camera_condition(cams)
    torch.testing.assert_close(maps, camera_map(cams.elevation_deg, cams.azimuth_deg, cams.distance, cams.fovy_deg, 32))
    z = torch.rand(1, 3, 32, 32).expand(2, -1, -1, -1)
    emb = prior.encode_text(["a red cube"]).expand(2, -1, -1)
    with torch.no_grad():
        out = prior.predict_noise(z, torch.tensor([500, 500]), emb, camera=maps)
        unknown = prior.predict_noise(z, torch.tensor([500, 500]), emb)
        zeros = prior.predict_noise(z, torch.tensor([500, 500]), emb, camera=torch.zeros_like(maps))
    assert not torch.allclose(out[0], out[1], atol=1e-4)
    torch.testing.assert_close(unknown, zeros)
    with pytest.raises(ValueError, match=r"camera map must be \(2, 3, 32, 32\) for this prior; got \(2, 3, 16, 16\)"):
        prior.predict_noise(z, torch.tensor([500, 500]), emb, camera=maps[:, :, :16, :16])
    broken = tmp_path / "broken"
    shutil.copytree(folder, broken)
    manifest = json.loads((broken / "psd_prior.json").read_text())
    del manifest["camera_map"]
    (broken / "psd_prior.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=r'takes 6 input channels and outputs 3; it takes 3 more, as a camera-map '
                                         r'prior does: set "camera_map": true in psd_prior.json'):
        load_prior(PriorConfig(kind="pixel", model=str(broken)), CPU)
    manifest["camera_harmonics"] = [1]
    manifest["camera_map"] = True
    (broken / "psd_prior.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="gives both camera_harmonics and camera_map; a prior takes one"):
        load_prior(PriorConfig(kind="pixel", model=str(broken)), CPU)
    text_only = build_tiny_pixel(tmp_path / "text")
    manifest = json.loads((text_only / "psd_prior.json").read_text())
    manifest["camera_map"] = True
    (text_only / "psd_prior.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="says camera_map, which needs 3 input channels more than the image has"):
        load_prior(PriorConfig(kind="pixel", model=str(text_only)), CPU)
