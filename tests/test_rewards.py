"""Reward models: tiny random open_clip / transformers CLIP models through the real loaders.

RANDOM WEIGHTS: the scores mean nothing; these tests check plumbing (shapes, gradients,
caching, prompt handling, checkpoint formats, error messages).
"""
from __future__ import annotations

import math

import pytest
import torch

from psd_engine.config import ConfigError, RewardConfig
from psd_engine.models import ModelNotFoundError
from psd_engine.rewards import load_reward
from psd_engine.rewards.clip_like import fit_square
from psd_engine.rewards.tiny import (
    TINY_IMAGE_SIZE,
    TINY_OPENCLIP_CONFIG_FILE,
    TINY_OPENCLIP_WEIGHTS_FILE,
    build_tiny_hf_clip,
    build_tiny_openclip,
)

CPU = torch.device("cpu")
pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def tiny(cache_dir):
    return load_reward(RewardConfig(kind="hpsv2", tiny_random=True, resolution=TINY_IMAGE_SIZE), CPU)


def images(n: int = 3, size: int = 48, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def test_tiny_reward_scores_are_finite_and_reach_the_images_only(tiny, cache_dir):
    assert (cache_dir / "tiny-random" / "openclip" / TINY_OPENCLIP_WEIGHTS_FILE).is_file()
    assert tiny.name == "tiny-random-hpsv2" and tiny.input_size == TINY_IMAGE_SIZE
    x = images().requires_grad_(True)
    scores = tiny(x, ["a red cube", "a blue ball", "a green cone"])
    assert scores.shape == (3,) and scores.dtype == torch.float32 and torch.isfinite(scores).all()
    assert scores.abs().max() <= 1.0  # a cosine, score_scale 1
    scores.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in tiny.parameters())
    assert all(p.grad is None for p in tiny.parameters())


def test_prompt_broadcast_and_prompt_mismatch(tiny):
    x = images()
    one = tiny(x, "a red cube")
    torch.testing.assert_close(one, tiny(x, ["a red cube"]))
    torch.testing.assert_close(one, tiny(x, ["a red cube"] * 3))
    assert not torch.allclose(one, tiny(x, ["a red cube", "a blue ball", "a red cube"]))
    with pytest.raises(ValueError, match="got 2 prompts for 3 images"):
        tiny(x, ["a", "b"])
    with pytest.raises(ValueError, match="images must be \\(B, 3, H, W\\)"):
        tiny(x[:, :1], "a")


def test_scores_match_a_manual_open_clip_cosine(tiny):
    x = images(2, size=TINY_IMAGE_SIZE)
    mean, std = tiny.mean, tiny.std
    with torch.no_grad():
        img = tiny.model.encode_image((x - mean) / std, normalize=True)
        txt = tiny.model.encode_text(tiny.tokenizer(["a", "b"]), normalize=True)
    torch.testing.assert_close(tiny(x, ["a", "b"]), (img @ txt.T).diag())


def test_fit_square_crop_and_pad():
    x = torch.ones(1, 3, 20, 40)
    x[..., :, :4] = 0.0  # a black band at the left edge
    crop = fit_square(x, 10, "crop")  # shorter side 20 -> 10: 10x20, the centre 10 columns are kept
    assert crop.shape == (1, 3, 10, 10) and crop.min() > 0.999  # the band was cropped away
    pad = fit_square(x, 10, "pad")  # longer side 40 -> 10: 5x10 image, zero rows above and below
    assert pad.shape == (1, 3, 10, 10)
    assert pad[..., :2, :].abs().sum() == 0 and pad[..., -3:, :].abs().sum() == 0
    assert pad[..., 2:7, 0].max() < 0.5 and pad[..., 2:7, 5:].min() > 0.99  # band kept, scaled
    y = torch.rand(1, 3, 64, 48, requires_grad=True)
    fit_square(y, 16, "pad").sum().backward()
    assert y.grad.abs().sum() > 0


def test_load_reward_caches_and_none(tiny):
    cfg = RewardConfig(kind="hpsv2", tiny_random=True, resolution=TINY_IMAGE_SIZE)
    assert load_reward(cfg, CPU) is tiny
    assert load_reward(RewardConfig(kind="none"), CPU) is None
    with pytest.raises(ConfigError, match="reward.kind must be one of"):
        load_reward(RewardConfig(kind="imagereward"), CPU)


def test_resolution_mismatch_is_a_config_error(cache_dir):
    with pytest.raises(ConfigError, match="set reward.resolution=32"):
        load_reward(RewardConfig(kind="openclip", tiny_random=True, resolution=224), CPU)


def test_hps_style_checkpoint_and_open_clip_folder_load_the_same_weights(tiny, cache_dir, tmp_path):
    from safetensors.torch import load_file

    folder = build_tiny_openclip()
    state = load_file(str(folder / TINY_OPENCLIP_WEIGHTS_FILE))
    checkpoint = tmp_path / "HPS_tiny.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, checkpoint)  # as HPSv2 ships it
    arch = str(folder / TINY_OPENCLIP_CONFIG_FILE)
    hps = load_reward(RewardConfig(kind="hpsv2", model=str(checkpoint), arch=arch, resolution=0), CPU)
    assert hps.name == "hpsv2.1" and hps.resize_mode == "pad"
    from_folder = load_reward(RewardConfig(kind="openclip", model=str(folder), arch=arch, resolution=0), CPU)
    x = images(2, size=TINY_IMAGE_SIZE)  # square: pad and crop agree
    torch.testing.assert_close(hps(x, "a cube"), tiny(x, "a cube"))
    torch.testing.assert_close(from_folder(x, "a cube"), tiny(x, "a cube"))


def test_checkpoint_with_pickled_objects_is_refused(cache_dir, tmp_path):
    folder = build_tiny_openclip()
    checkpoint = tmp_path / "bad.pt"
    torch.save({"state_dict": {}, "args": ConfigError("not a tensor")}, checkpoint)
    with pytest.raises(ValueError, match="weights_only=True"):
        load_reward(RewardConfig(kind="openclip", model=str(checkpoint), arch=str(folder / TINY_OPENCLIP_CONFIG_FILE),
                                 resolution=0), CPU)


def test_hpsv2_missing_offline_names_the_repo_and_file(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    with pytest.raises(ModelNotFoundError) as info:
        load_reward(RewardConfig(kind="hpsv2", version="v2.1"), CPU)
    message = str(info.value)
    assert "xswu/HPSv2" in message and "HPS_v2.1_compressed.pt" in message
    assert str(tmp_path / "hf" / "hub") in message and "tiny-random" in message
    with pytest.raises(ModelNotFoundError, match="HPS_v2_compressed.pt"):
        load_reward(RewardConfig(kind="hpsv2", version="v2.0"), CPU)
    with pytest.raises(ModelNotFoundError, match="yuvalkirstain/PickScore_v1"):
        load_reward(RewardConfig(kind="pickscore"), CPU)
    with pytest.raises(ConfigError, match="reward.version must be one of v2.0, v2.1"):
        load_reward(RewardConfig(kind="hpsv2", version="v3"), CPU)


def test_pickscore_is_logit_scale_times_clip_score(cache_dir):
    build_tiny_hf_clip()
    clip = load_reward(RewardConfig(kind="clip", tiny_random=True, resolution=TINY_IMAGE_SIZE), CPU)
    pick = load_reward(RewardConfig(kind="pickscore", tiny_random=True, resolution=TINY_IMAGE_SIZE), CPU)
    x = images().requires_grad_(True)
    c = clip(x, ["a red cube", "a blue ball", "a"])
    p = pick(x, ["a red cube", "a blue ball", "a"])
    assert c.shape == (3,) and c.abs().max() <= 1.0
    scale = float(pick.model.logit_scale.exp())
    assert math.isclose(scale, 1 / 0.07, rel_tol=1e-4)  # CLIP's initial temperature (random weights)
    torch.testing.assert_close(p, c * scale)
    p.sum().backward()
    assert x.grad.abs().sum() > 0 and all(q.grad is None for q in pick.parameters())


def test_checkpoint_for_another_architecture_is_named(cache_dir, tmp_path):
    import json

    folder = build_tiny_openclip()
    config = json.loads((folder / TINY_OPENCLIP_CONFIG_FILE).read_text())
    config["embed_dim"] = 16  # same checkpoint, different projection size
    other = tmp_path / "other-arch.json"
    other.write_text(json.dumps(config))
    with pytest.raises(ValueError, match="does not fit the open_clip architecture"):
        load_reward(RewardConfig(kind="openclip", model=str(folder / TINY_OPENCLIP_WEIGHTS_FILE), arch=str(other),
                                 resolution=0), CPU)


def test_model_configs_with_the_same_file_name_do_not_collide(cache_dir, tmp_path):
    import json

    import open_clip

    from psd_engine.rewards.openclip import register_arch

    base = json.loads((build_tiny_openclip() / TINY_OPENCLIP_CONFIG_FILE).read_text())
    names = []
    for width in (32, 64):
        folder = tmp_path / f"reward-{width}"
        folder.mkdir()
        config = {**base, "text_cfg": {**base["text_cfg"], "width": width}}
        (folder / "model_config.json").write_text(json.dumps(config))
        names.append(register_arch(str(folder / "model_config.json")))
        assert open_clip.get_model_config(names[-1])["text_cfg"]["width"] == width
    assert names[0] != names[1] and all(n.startswith("model_config-") for n in names)
    with pytest.raises(ConfigError, match="must have the keys embed_dim, vision_cfg, text_cfg"):
        (tmp_path / "bad.json").write_text("{}")
        register_arch(str(tmp_path / "bad.json"))
