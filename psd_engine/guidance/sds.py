"""`sds`: DreamFusion score distillation, one noise, grad = w(t) (e - eps)."""
from __future__ import annotations

from typing import Any

import torch

from .base import ScoreDistillation, sds_surrogate_loss


class SDSGuidance(ScoreDistillation):
    """Plain score distillation sampling with classifier-free guidance."""

    def sds_terms(
        self, images: torch.Tensor, cond: torch.Tensor, generator: torch.Generator, camera: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        """The SDS surrogate loss on `images` and its diagnostics (grad norm, mean t)."""
        z = self.encode(images)
        t = self.sample_t(z.shape[0], generator)
        eps = torch.randn(z.shape, generator=generator, device=generator.device).to(z.device, z.dtype)
        with torch.no_grad():
            e, _, _ = self.cfg_noise(self.add_noise(z, eps, t), t, cond, self.negative, camera)
            grad = self.finish_grad(self.weight(t) * (e - eps))
        diagnostics = {
            "grad_norm": float(grad.norm()),
            "t": float(t.float().mean()) / self.T,
        }
        return sds_surrogate_loss(z, grad), diagnostics

    def __call__(self, images, cond, prompts, generator, step=0, camera=None) -> dict[str, Any]:  # noqa: D102
        loss, out = self.sds_terms(images, cond, generator, camera)
        out["loss_sds"] = loss
        if self.reward is not None:
            with torch.no_grad():
                out["reward"] = float(self.score(images.detach(), prompts).mean())
        return out
