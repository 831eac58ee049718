"""Diffusion priors: `load_prior(cfg, device)` loads a latent or pixel prior, cached in-process.

Real models (hub id or folder) and the tiny-random test models go through the same loaders:
`tiny_random` only builds the tiny folder first (once) and then loads it like any folder.
The cache keeps loaded priors between runs of the app; `clear_cache()` frees them.
"""
from __future__ import annotations

import torch

from ..config import ConfigError, PriorConfig
from .base import DiffusionPrior, ModelNotFoundError, model_output_to_epsilon
from .cache import ModelCache

__all__ = ["DiffusionPrior", "ModelNotFoundError", "clear_cache", "load_prior", "model_output_to_epsilon"]

_CACHE: ModelCache[DiffusionPrior] = ModelCache()


def _cache_key(cfg: PriorConfig, device: torch.device) -> tuple:
    return (cfg.model, cfg.kind, cfg.dtype, str(device), cfg.revision, cfg.tiny_random, cfg.resolution,
            cfg.attention_slicing, cfg.cpu_offload, cfg.channels_last, cfg.autocast)


def load_prior(cfg: PriorConfig, device: torch.device) -> DiffusionPrior:
    """The frozen prior described by `cfg` on `device`; loaded once per process and reused."""
    device = torch.device(device)
    if cfg.kind not in ("latent", "pixel"):
        raise ConfigError(f"prior.kind must be 'latent' or 'pixel'; got '{cfg.kind}'")
    return _CACHE.get(_cache_key(cfg, device), lambda: _load(cfg, device))


def _load(cfg: PriorConfig, device: torch.device) -> DiffusionPrior:
    # Each loader is imported only when used: the latent one pulls in the VAE and CLIP classes,
    # which a pixel prior (the offline default) does not need at start-up.
    model = None
    if cfg.tiny_random:
        from .tiny import build_tiny_pixel, build_tiny_sd

        model = str(build_tiny_sd() if cfg.kind == "latent" else build_tiny_pixel())
    if cfg.kind == "latent":
        from .latent import load_latent_prior

        return load_latent_prior(cfg, device, model)
    from .pixel import load_pixel_prior

    return load_pixel_prior(cfg, device, model)


def clear_cache() -> None:
    """Drop every cached prior (frees memory; the next load_prior reads from disk again)."""
    _CACHE.clear()
