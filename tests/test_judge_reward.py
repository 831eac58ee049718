"""The fidelity judge and the shapes reward model: training scripts, file layout, shipped accuracy.

The --smoke runs train for three steps: their weights are plumbing-test weights only. The
accuracy tests use the shipped assets (assets/shapes-judge, assets/shapes-reward) and are
skipped when those have not been trained.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from psd_engine.shapes import degrade, world  # noqa: E402
from psd_engine.shapes.judge import fidelity, load_judge  # noqa: E402
from psd_engine.shapes.taste import taste_2d  # noqa: E402
from training import train_judge, train_reward  # noqa: E402

JUDGE_DIR = ROOT / "assets" / "shapes-judge"
REWARD_DIR = ROOT / "assets" / "shapes-reward"
needs_judge = pytest.mark.skipif(not (JUDGE_DIR / "judge.safetensors").is_file(), reason="judge not trained")
needs_reward = pytest.mark.skipif(not (REWARD_DIR / "open_clip_model.safetensors").is_file(),
                                  reason="reward not trained")


# ----------------------------------------------------------------------------- smoke runs

@pytest.fixture(scope="module")
def smoke_judge(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("judge") / "shapes-judge"
    train_judge.main(["--smoke", "--out", str(out)])
    return out


@pytest.fixture(scope="module")
def smoke_reward(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reward") / "shapes-reward"
    train_reward.main(["--smoke", "--out", str(out)])
    return out


@pytest.mark.slow
def test_judge_smoke_run_writes_a_loadable_judge(smoke_judge):
    cfg = json.loads((smoke_judge / "judge.json").read_text())
    assert cfg["shapes"] == list(world.SHAPES) and cfg["colors"] == list(world.COLORS)
    assert cfg["extra"]["smoke"] is True and cfg["extra"]["steps"] == 3
    assert cfg["extra"]["command"].startswith("python training/train_judge.py --smoke")
    assert set(cfg["extra"]["accuracy"]) == {"train_pairs", "held_out_pairs"}
    judge = load_judge(smoke_judge)
    images = world.render_specs(world.sample_specs(3, np.random.default_rng(0)), 40)
    predicted = judge.predict(images)
    assert len(predicted) == 3
    assert all(s in world.SHAPES and c in world.COLORS for s, c in predicted)
    shape_p, color_p = judge.probs(torch.from_numpy(images).permute(0, 3, 1, 2))
    assert shape_p.shape == (3, 5) and color_p.shape == (3, 6)
    assert np.allclose(shape_p.sum(1), 1.0, atol=1e-5) and np.allclose(color_p.sum(1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_reward_smoke_run_writes_open_clip_files(smoke_reward):
    import open_clip

    model_cfg = json.loads((smoke_reward / "model_config.json").read_text())
    assert set(model_cfg) == {"embed_dim", "vision_cfg", "text_cfg"}
    assert model_cfg["text_cfg"]["vocab_size"] == 49408
    folder_cfg = json.loads((smoke_reward / "open_clip_config.json").read_text())
    assert folder_cfg["model_cfg"] == model_cfg
    info = json.loads((smoke_reward / "training.json").read_text())
    assert info["smoke"] is True and info["contrastive"]["steps"] == 3 and info["preference"]["steps"] == 3
    assert info["command"].startswith("python training/train_reward.py --smoke")
    for split in ("train_pairs", "held_out_pairs"):
        assert 0.0 <= info["eval"][split]["accuracy_view_prompt"] <= 1.0
    # open_clip itself loads the files: the model config as a dict, the weights with safetensors.
    model = open_clip.model.CLIP(**model_cfg)
    open_clip.load_checkpoint(model, str(smoke_reward / "open_clip_model.safetensors"))
    tokenizer = open_clip.get_tokenizer("", context_length=model_cfg["text_cfg"]["context_length"])
    size = model_cfg["vision_cfg"]["image_size"]
    with torch.no_grad():
        img = model.encode_image(torch.rand(2, 3, size, size), normalize=True)
        txt = model.encode_text(tokenizer(["a red cube", "a blue sphere, side view"]), normalize=True)
    assert torch.isfinite((img * txt).sum(-1)).all()


def test_fidelity_rejects_prompts_outside_the_shapes_world():
    images = np.ones((1, 32, 32, 3), dtype=np.float32)
    with pytest.raises(ValueError, match="names no shape"):
        fidelity(images, "a photo of a dog")


def test_missing_judge_folder_says_how_to_train_one(tmp_path):
    with pytest.raises(FileNotFoundError, match="train_judge.py"):
        load_judge(tmp_path / "nothing-here")


# ----------------------------------------------------------------------------- shipped assets

@needs_judge
def test_shipped_judge_names_fresh_renders():
    rng = np.random.default_rng(123)
    specs = world.sample_specs(30, rng, pairs=world.all_pairs())
    images = world.render_specs(specs, 48)
    predicted = load_judge().predict(images)
    hits = [p == (s.shape, s.color) for p, s in zip(predicted, specs)]
    assert np.mean(hits) >= 0.9


@needs_judge
def test_fidelity_is_high_for_the_prompt_and_low_for_another():
    specs = [world.ShapeSpec("cube", "red", azimuth_deg=a, elevation_deg=15.0, light_azimuth_deg=a)
             for a in (0.0, 90.0, 180.0, 270.0)]
    views = world.render_specs(specs, 64)
    assert fidelity(views, "a red cube, front view") >= 0.75
    assert fidelity(views, "a blue sphere") == 0.0
    assert fidelity(views, "something red") >= 0.75  # only the colour is named, only it is checked


def _clean_and_degraded(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    specs = world.sample_specs(n, rng, pairs=world.all_pairs())
    clean, alpha = world.render_specs(specs, 64, return_alpha=True)
    degraded, _ = degrade.random_degradations(clean, rng, alpha)
    return clean, degraded, [world.caption(s) for s in specs]


@needs_reward
def test_shipped_reward_prefers_clean_renders_through_the_engine_loader():
    from psd_engine.config import RewardConfig
    from psd_engine.rewards import load_reward

    ckpt = REWARD_DIR / "open_clip_model.safetensors"
    cfg = RewardConfig(kind="openclip", arch=str(REWARD_DIR / "model_config.json"), model=str(ckpt), resolution=0)
    reward = load_reward(cfg, torch.device("cpu"))
    clean, degraded, prompts = _clean_and_degraded(24, seed=77)
    # Only pairs where taste sees a real difference count (as in training).
    keep = taste_2d(clean) - taste_2d(degraded) >= 0.01
    to_torch = lambda a: torch.from_numpy(a).permute(0, 3, 1, 2)  # noqa: E731
    with torch.no_grad():
        s_clean = reward(to_torch(clean), prompts)
        s_degraded = reward(to_torch(degraded), prompts)
    assert s_clean.shape == (24,)
    assert (s_clean > s_degraded)[torch.from_numpy(keep)].float().mean() >= 0.8
    # Differentiable with respect to the images (the reward-grad baseline needs it).
    x = to_torch(clean[:2]).clone().requires_grad_(True)
    reward(x, prompts[:2]).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@needs_reward
def test_shipped_reward_loads_as_an_open_clip_folder():
    import open_clip

    model = open_clip.create_model(f"local-dir:{REWARD_DIR}", require_pretrained=True)
    info = json.loads((REWARD_DIR / "training.json").read_text())
    assert info["smoke"] is False
    assert info["eval"]["held_out_pairs"]["accuracy_view_prompt"] >= 0.85
    assert model.visual.image_size in (64, (64, 64), 32, (32, 32))
