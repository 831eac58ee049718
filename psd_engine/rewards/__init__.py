"""Reward models: `load_reward(cfg, device)` -> a frozen, image-differentiable RewardModel (or None).

Kinds: "hpsv2" (HPSv2 / HPSv2.1 via open_clip), "openclip" (any open_clip model + checkpoint),
"pickscore" and "clip" (transformers CLIPModel), "none". tiny_random loads a random-weight
model of the same family from the project cache through the same loaders (plumbing only).
Loaded models are cached in-process; `clear_cache()` frees them.
"""
from __future__ import annotations

import dataclasses

import torch

from ..config import ConfigError, RewardConfig
from ..models.cache import ModelCache
from ..models.unet_prior import resolve_dtype
from .base import RewardModel, broadcast_prompts

__all__ = ["RewardModel", "broadcast_prompts", "clear_cache", "load_reward", "REWARD_KINDS"]

REWARD_KINDS = ("hpsv2", "pickscore", "clip", "openclip", "none")
_CACHE: ModelCache[RewardModel] = ModelCache()


def load_reward(cfg: RewardConfig, device: torch.device) -> RewardModel | None:
    """The reward model described by `cfg` on `device` (None for kind 'none'); loaded once per process."""
    if cfg.kind not in REWARD_KINDS:
        raise ConfigError(f"reward.kind must be one of {', '.join(REWARD_KINDS)}; got '{cfg.kind}'")
    if cfg.kind == "none":
        return None
    device = torch.device(device)
    key = (tuple(sorted(dataclasses.asdict(cfg).items())), str(device))
    return _CACHE.get(key, lambda: _load(cfg, device))


def _load(cfg: RewardConfig, device: torch.device) -> RewardModel:
    from .hf_clip import load_transformers_clip_reward
    from .openclip import load_hpsv2_reward, load_openclip_reward

    dtype = resolve_dtype(cfg.dtype, device)
    requested_kind = cfg.kind
    if cfg.tiny_random:
        from .tiny import TINY_OPENCLIP_CONFIG_FILE, TINY_OPENCLIP_WEIGHTS_FILE, build_tiny_hf_clip, build_tiny_openclip

        if cfg.kind in ("pickscore", "clip"):
            folder = str(build_tiny_hf_clip())
            cfg = dataclasses.replace(cfg, model=folder, processor=folder)
        else:
            folder = build_tiny_openclip()
            cfg = dataclasses.replace(cfg, kind="openclip", arch=str(folder / TINY_OPENCLIP_CONFIG_FILE),
                                      model=str(folder / TINY_OPENCLIP_WEIGHTS_FILE))
    if cfg.kind == "hpsv2":
        reward = load_hpsv2_reward(cfg, device, dtype)
    elif cfg.kind == "openclip":
        reward = load_openclip_reward(cfg, device, dtype)
    else:
        reward = load_transformers_clip_reward(cfg, device, dtype)
    if cfg.resolution and cfg.resolution != reward.input_size:
        raise ConfigError(
            f"reward.resolution is {cfg.resolution} but {reward.name} takes {reward.input_size} px images; "
            f"set reward.resolution={reward.input_size} (or 0 to use the model's size)"
        )
    if cfg.tiny_random:
        reward.name = f"tiny-random-{requested_kind}"
    return reward


def clear_cache() -> None:
    """Drop every cached reward model (the next load_reward reads from disk again)."""
    _CACHE.clear()
