"""Camera conditioning: the features, their mirror rule checked against the world's renderer, the
loader's checks, and the training batch's mirroring and dropout."""
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
from psd_engine.models.camera_condition import camera_feature_dim, camera_features, mirror_features  # noqa: E402
from psd_engine.models.tiny import build_tiny_pixel  # noqa: E402
from psd_engine.shapes import world  # noqa: E402
from training import train_prior  # noqa: E402

CPU = torch.device("cpu")


def test_features_are_sines_and_cosines_of_elevation_and_azimuth_harmonics():
    f = camera_features(torch.tensor([0.0, 30.0]), torch.tensor([0.0, 45.0]), (1, 2))
    assert f.shape == (2, camera_feature_dim((1, 2))) == (2, 6)
    torch.testing.assert_close(f[0], torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0, 1.0]))
    h = math.sqrt(0.5)
    torch.testing.assert_close(f[1], torch.tensor([0.5, math.sqrt(3) / 2, h, h, 1.0, 0.0]), atol=1e-6, rtol=0)
    torch.testing.assert_close(mirror_features(f)[1], torch.tensor([0.5, math.sqrt(3) / 2, -h, h, -1.0, 0.0]),
                               atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="2 elevations but 1 azimuths"):
        camera_features(torch.tensor([0.0, 1.0]), torch.tensor([0.0]), (1,))


def _render(yaw: float, azimuth: float) -> np.ndarray:
    spec = world.ShapeSpec("cube", "red", yaw_deg=yaw, azimuth_deg=azimuth, light_azimuth_deg=azimuth,
                           elevation_deg=25.0, light_elevation_deg=40.0)
    return world.render_specs([spec], 32)[0]


def test_relative_azimuth_and_the_mirror_rule_match_what_the_world_renders():
    """A cube at yaw 20 seen from azimuth 50 is the cube at yaw 0 seen from 30 (the features use az - yaw);
    its mirror image is the cube seen from -30 (mirror_features negates the azimuth)."""
    seen = _render(20.0, 50.0)
    assert np.abs(seen - _render(0.0, 30.0)).max() < 0.02
    assert np.abs(seen - _render(0.0, 0.0)).mean() > 0.01  # the pose does change the picture
    assert np.abs(seen[:, ::-1] - _render(0.0, -30.0)).max() < 0.02
    specs = [world.ShapeSpec("cube", "red", yaw_deg=20.0, azimuth_deg=50.0, elevation_deg=25.0)]
    f = train_prior.spec_camera_features(specs, (1, 2, 4))
    torch.testing.assert_close(f, camera_features(torch.tensor([25.0]), torch.tensor([30.0]), (1, 2, 4)))
    torch.testing.assert_close(mirror_features(f), camera_features(torch.tensor([25.0]), torch.tensor([-30.0]), (1, 2, 4)))


def test_training_batch_mirrors_flipped_images_and_drops_cameras_at_the_rate():
    cfg = train_prior.PriorTrainConfig(camera_harmonics=(1, 2, 4), camera_dropout=0.25)
    cams = camera_features(torch.full((4000,), 10.0), torch.full((4000,), 40.0), cfg.camera_harmonics)
    flip = torch.arange(4000) % 2 == 0
    out = train_prior.batch_cameras(cfg, cams, flip, np.random.default_rng(0))
    unknown = (out == 0).all(1)
    assert 0.22 < float(unknown.float().mean()) < 0.28
    known = ~unknown
    torch.testing.assert_close(out[known & flip], mirror_features(cams)[known & flip])
    torch.testing.assert_close(out[known & ~flip], cams[known & ~flip])
    assert train_prior.batch_cameras(train_prior.PriorTrainConfig(camera_harmonics=()), cams, flip,
                                     np.random.default_rng(0)) is None


def test_camera_conditioned_prior_loads_and_its_output_depends_on_the_camera(tmp_path):
    folder = build_tiny_pixel(tmp_path / "cam", camera_harmonics=(1, 2))
    prior = load_prior(PriorConfig(kind="pixel", model=str(folder)), CPU)
    assert prior.camera_harmonics == (1, 2)
    cams = prior.camera_condition(torch.tensor([15.0, 15.0]), torch.tensor([0.0, 90.0]))
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
    assert text_only.camera_condition(torch.tensor([10.0]), torch.tensor([0.0])) is None
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
