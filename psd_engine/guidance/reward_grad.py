"""`reward-grad`: SDS plus lambda_r times the gradient of -R(rendered image) (DreamReward-like).

This is the naive classifier-guidance way that the PSD paper argues against: the reward's
pixel gradient goes straight into the 3D parameters.
"""
from __future__ import annotations

from typing import Any

from .sds import SDSGuidance


class RewardGradGuidance(SDSGuidance):
    """Score distillation with a direct reward-gradient term on the renders."""

    def __call__(self, images, cond, prompts, generator, step=0, camera=None) -> dict[str, Any]:  # noqa: D102
        loss, out = self.sds_terms(images, cond, generator, camera)
        reward = self.score(images, prompts)
        out["loss_sds"] = loss
        out["loss_reward"] = -self.cfg.reward_grad_scale * reward.mean()
        out["reward"] = float(reward.detach().mean())
        return out
