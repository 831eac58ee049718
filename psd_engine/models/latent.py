"""Latent diffusion prior in the Stable Diffusion layout (SD 1.x / 2.x), loaded with diffusers.

A model is a hub id or a local folder with the diffusers layout:
    unet/          UNet2DConditionModel (config.json + diffusion_pytorch_model.safetensors)
    vae/           AutoencoderKL
    text_encoder/  transformers CLIPTextModel
    tokenizer/     CLIPTokenizer (vocab.json + merges.txt, or tokenizer.json)
    scheduler/     scheduler_config.json (read as DDPMScheduler: only the noise schedule is used)
The tiny-random preset is such a folder, built by `tiny.build_tiny_sd` and loaded here.
"""
from __future__ import annotations

from pathlib import Path

import torch
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
from transformers import CLIPTextModel, CLIPTokenizer

from ..config import PriorConfig
from .base import freeze
from .hub import check_model_folder, model_source, weights_missing_reported
from .text import TextEncoder
from .unet_prior import UNetPrior, apply_gpu_options, resize_square, resolve_autocast, resolve_dtype

# Each part of the layout and the file that must be in it.
SD_LAYOUT = {
    "unet": "config.json",
    "vae": "config.json",
    "text_encoder": "config.json",
    "tokenizer": "",  # vocab.json + merges.txt or tokenizer.json; checked by loading
    "scheduler": "scheduler_config.json",
}


class LatentPrior(UNetPrior):
    """Stable-Diffusion-style prior: z = vae.encode(2x - 1) * scaling_factor at `resolution`."""

    latent = True

    def __init__(self, vae: AutoencoderKL, **kwargs) -> None:
        super().__init__(**kwargs)
        self.vae = freeze(vae)
        self.scaling_factor = float(vae.config.scaling_factor)
        # SD 1.x/2.x VAEs have no shift; later VAEs in this layout (SD3-style) do.
        self.shift_factor = float(getattr(vae.config, "shift_factor", None) or 0.0)

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] (any size) -> latents (B, 4, r/8, r/8) float32, differentiable."""
        x = resize_square(images.to(self.execution_device), self.resolution) * 2.0 - 1.0
        posterior = self.vae.encode(x.to(self.vae.dtype)).latent_dist
        # The posterior mean, not a sample (threestudio samples): a deterministic z makes
        # steps reproducible and the SD VAE's posterior std is tiny next to the SDS noise.
        z = posterior.mean
        return ((z - self.shift_factor) * self.scaling_factor).float()

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latents -> images in [0, 1] (B, 3, r, r) float32, differentiable."""
        z = z.to(self.execution_device) / self.scaling_factor + self.shift_factor
        x = self.vae.decode(z.to(self.vae.dtype)).sample.float()
        return (x * 0.5 + 0.5).clamp(0.0, 1.0)


def check_sd_folder(folder: Path) -> None:
    """Raise ModelNotFoundError if `folder` lacks a part of the Stable Diffusion layout."""
    needed = [f"{part}/{name}" for part, name in SD_LAYOUT.items()]
    parts = ", ".join(p + "/" for p in SD_LAYOUT)
    layout = f"a Stable Diffusion folder has {parts} as written by diffusers save_pretrained"
    check_model_folder("Diffusion prior", folder, needed, layout)


def load_latent_prior(cfg: PriorConfig, device: torch.device, model: str | None = None) -> LatentPrior:
    """Load a Stable-Diffusion-layout prior from `model` (default cfg.model): hub id or folder."""
    name = model or cfg.model
    dtype = resolve_dtype(cfg.dtype, device)
    path, kwargs, folder = model_source(name, cfg.revision)
    if folder is not None:
        check_sd_folder(folder)
    with weights_missing_reported("Diffusion prior", name, is_folder=folder is not None):
        # safetensors are preferred; a .bin fallback is read by diffusers / transformers with
        # torch.load(weights_only=True), so no pickled code runs.
        scheduler = DDPMScheduler.from_pretrained(path, subfolder="scheduler", **kwargs)
        tokenizer = CLIPTokenizer.from_pretrained(path, subfolder="tokenizer", **kwargs)
        text_model = CLIPTextModel.from_pretrained(path, subfolder="text_encoder", dtype=dtype, **kwargs)
        vae = AutoencoderKL.from_pretrained(path, subfolder="vae", dtype=dtype, **kwargs)
        unet = UNet2DConditionModel.from_pretrained(path, subfolder="unet", dtype=dtype, **kwargs)
    vae_factor = 2 ** (len(vae.config.block_out_channels) - 1)
    native = int(unet.config.sample_size) * vae_factor
    text_encoder = TextEncoder(tokenizer, text_model)
    offloaded = apply_gpu_options(cfg, [text_model, unet, vae], unet, device)
    if not offloaded:
        for module in (text_model, unet, vae):
            module.to(device)
    return LatentPrior(
        vae=vae,
        unet=unet,
        scheduler=scheduler,
        text_encoder=text_encoder,
        resolution=cfg.resolution or native,
        device=device,
        source=name,
        autocast=resolve_autocast(cfg.autocast, device, dtype),
    )
