"""`psd` and `psd-fixed-neg`: Preference Score Distillation, steps 1-8 of ../shared/psd-method.md.

Per step: K noisy copies of each render are denoised with CFG, their one-step estimates x0^k
are ranked by the reward, and the winner-minus-loser residual is added CFG-style to the
winner's SDS residual, scaled by the reward gap (reward-based scaling). With `adapt_negative`
the negative text embedding is optimised online to raise the reward of the winner's estimate.
All K samples share one batched UNet call and one batched reward call (with the render
itself, scored for the `reward` diagnostic).
"""
from __future__ import annotations

from typing import Any

import torch

from ..config import GuidanceConfig
from ..models.base import DiffusionPrior
from ..profiling import StepTimer
from ..rewards.base import RewardModel
from .base import ScoreDistillation, sds_surrogate_loss


class PSDGuidance(ScoreDistillation):
    """Preference Score Distillation with optional adaptive negative embedding."""

    def __init__(
        self,
        cfg: GuidanceConfig,
        prior: DiffusionPrior,
        reward: RewardModel | None,
        negative_embedding: torch.Tensor,
        timer: StepTimer | None = None,
        adapt_negative: bool = True,
    ) -> None:
        super().__init__(cfg, prior, reward, negative_embedding, timer)
        if reward is None:
            raise ValueError("PSD needs a reward model (reward.kind must not be 'none')")
        self.adapt_negative = adapt_negative
        self.n0 = self.negative.float().clone()
        self.n = torch.nn.Parameter(self.n0.clone())
        self.neg_opt = torch.optim.Adam([self.n], lr=cfg.neg_lr) if adapt_negative else None

    def neg_update_due(self, step: int) -> bool:
        """Whether step 8 (negative-embedding update) runs at this 0-based step."""
        c = self.cfg
        return (
            self.adapt_negative
            and step >= c.neg_update_start
            and (step - c.neg_update_start) % c.neg_update_every == 0
        )

    def reward_of_negative(
        self,
        z_t: torch.Tensor,
        t: torch.Tensor,
        e_c: torch.Tensor,
        prompts: list[str],
        camera: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """R(x0(z_t; e(n)), prompt) differentiable with respect to n only (theta is detached)."""
        b = z_t.shape[0]
        with self.timer.section("unet"):
            n = self.n.expand(b, -1, -1).to(e_c.dtype)
            e_n = self.prior.predict_noise(z_t, t, n, camera=self.negative_camera(camera)).float()
        e = e_n + self.cfg.guidance_scale * (e_c - e_n)
        with self.timer.section("encode"):
            x0 = self.prior.decode(self.predict_x0(z_t, e, t))
        return self.score(x0, prompts)

    def update_negative(
        self,
        z_t: torch.Tensor,
        t: torch.Tensor,
        e_c: torch.Tensor,
        prompts: list[str],
        camera: torch.Tensor | None = None,
    ) -> dict[str, float]:
        """One Adam step on n maximising R(x0) - beta ||n - n_0||^2; returns diagnostics."""
        assert self.neg_opt is not None
        with torch.enable_grad():
            reward = self.reward_of_negative(z_t.detach(), t, e_c.detach(), prompts, camera)
            drift = ((self.n - self.n0) ** 2).sum()
            loss = -reward.mean() + self.cfg.neg_beta * drift
            self.neg_opt.zero_grad(set_to_none=True)
            with self.timer.section("backward"):
                loss.backward()
            with self.timer.section("optimiser"):
                finite = bool(torch.isfinite(self.n.grad).all())
                if finite:
                    self.neg_opt.step()
        return {
            "neg_reward": float(reward.detach().mean()),
            "neg_drift": float(drift.detach().sqrt()),
            "neg_updated": float(finite),
        }

    def __call__(self, images, cond, prompts, generator, step=0, camera=None) -> dict[str, Any]:  # noqa: D102
        k = self.cfg.num_samples
        z = self.encode(images)
        b = z.shape[0]
        t = self.sample_t(b, generator)
        eps = torch.randn((k,) + tuple(z.shape), generator=generator, device=generator.device)
        eps = eps.to(z.device, z.dtype)
        with torch.no_grad():
            # 1-2: K noisy copies, CFG noise for all of them in one UNet call.
            tk = t.repeat(k)
            z_t = self.add_noise(z.detach().repeat(k, 1, 1, 1), eps.flatten(0, 1), tk)
            negative = self.n.detach() if self.adapt_negative else self.negative
            camera_k = None if camera is None else camera.repeat(k, *([1] * (camera.dim() - 1)))
            e, e_c, _ = self.cfg_noise(z_t, tk, cond.repeat(k, 1, 1), negative, camera_k)
            # 3: one-step estimates, scored together with the render itself.
            with self.timer.section("encode"):
                x0 = self.prior.decode(self.predict_x0(z_t, e, tk))
            scored = self.score(torch.cat([x0, _resize(images.detach(), x0.shape[-1])]), prompts * (k + 1))
            r = scored[: k * b].view(k, b)
            # 4: winner / loser per render.
            win, lose = r.argmax(0), r.argmin(0)
            cols = torch.arange(b, device=r.device)
            residual = (e - eps.flatten(0, 1)).view(k, b, *z.shape[1:])
            res_w, res_l = residual[win, cols], residual[lose, cols]
            r_w, r_l = r[win, cols], r[lose, cols]
            gap = r_w - r_l
            # 5-6: implicit-reward direction with reward-based scaling.
            direction = res_w - res_l
            lam = torch.full_like(gap, self.cfg.preference_scale)
            if self.cfg.reward_scaling:
                lam = lam * (gap / self.cfg.tau).clamp(0.0, 1.0)
            # 7: the PSD gradient, applied with the SDS surrogate.
            grad = self.finish_grad(self.weight(t) * (res_w + lam.view(-1, 1, 1, 1) * direction))
        out: dict[str, Any] = {
            "loss_sds": sds_surrogate_loss(z, grad),
            "grad_norm": float(grad.norm()),
            "t": float(t.float().mean()) / self.T,
            "reward": float(scored[k * b :].mean()),
            "reward_samples": float(r.mean()),
            "reward_win": float(r_w.mean()),
            "reward_lose": float(r_l.mean()),
            "reward_gap": float(gap.mean()),
            "lambda_eff": float(lam.mean()),
        }
        # 8: adapt the negative embedding on the winner's noisy sample, when due.
        if self.neg_update_due(step):
            z_t_w = z_t.view(k, b, *z.shape[1:])[win, cols]
            e_c_w = e_c.view(k, b, *z.shape[1:])[win, cols]
            out.update(self.update_negative(z_t_w, t, e_c_w, prompts, camera))
        return out

    def state_dict(self) -> dict[str, Any]:  # noqa: D102
        return {"negative_embedding": self.n.detach().cpu()} if self.adapt_negative else {}


def _resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """Bring renders to the estimates' size so both go through one reward call."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    return torch.nn.functional.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
