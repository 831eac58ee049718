"""Guidance registry: build a score-distillation guidance by method name."""
from __future__ import annotations

from functools import partial
from typing import Callable

import torch

from ..config import GuidanceConfig
from ..models.base import DiffusionPrior
from ..profiling import StepTimer
from ..rewards.base import RewardModel
from .base import ScoreDistillation
from .psd import PSDGuidance
from .reward_grad import RewardGradGuidance
from .sds import SDSGuidance

GUIDANCE: dict[str, Callable[..., ScoreDistillation]] = {
    "sds": SDSGuidance,
    "reward-grad": RewardGradGuidance,
    "psd-fixed-neg": partial(PSDGuidance, adapt_negative=False),
    "psd": partial(PSDGuidance, adapt_negative=True),
}


def build_guidance(
    cfg: GuidanceConfig,
    prior: DiffusionPrior,
    reward: RewardModel | None,
    negative_embedding: torch.Tensor,
    timer: StepTimer | None = None,
) -> ScoreDistillation:
    """Instantiate the guidance named by cfg.method."""
    if cfg.method not in GUIDANCE:
        raise ValueError(f"unknown guidance method '{cfg.method}'; choose one of {', '.join(GUIDANCE)}")
    return GUIDANCE[cfg.method](cfg, prior, reward, negative_embedding, timer)
