"""Shared machinery of score-distillation guidance: timestep schedule, noising, CFG, the SDS trick.

Every guidance is called once per optimisation step with the rendered images and returns a
dict: entries named `loss_*` are scalar tensors to be summed into the step's loss, all
others are float diagnostics (grad norm, rewards, ...), as in threestudio.
"""
from __future__ import annotations

from typing import Any

import torch

from ..config import GuidanceConfig
from ..models.base import DiffusionPrior
from ..profiling import StepTimer
from ..rewards.base import RewardModel


def sds_surrogate_loss(z: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """0.5 * ||z - stopgrad(z - grad)||^2 / B, whose gradient with respect to z is exactly `grad`."""
    target = (z - grad).detach()
    return 0.5 * ((z - target) ** 2).sum() / z.shape[0]


def lerp_schedule(start: float, end: float, progress: float, begin: float, finish: float) -> float:
    """Linear ramp from `start` to `end` as `progress` goes from `begin` to `finish` (clamped)."""
    if finish <= begin:
        return end if progress >= finish else start
    a = min(max((progress - begin) / (finish - begin), 0.0), 1.0)
    return start + (end - start) * a


class ScoreDistillation:
    """Base class: holds the frozen prior, the reward and the schedules; subclasses define `__call__`."""

    def __init__(
        self,
        cfg: GuidanceConfig,
        prior: DiffusionPrior,
        reward: RewardModel | None,
        negative_embedding: torch.Tensor,
        timer: StepTimer | None = None,
    ) -> None:
        self.cfg = cfg
        self.prior = prior
        self.reward = reward
        self.negative = negative_embedding.detach()  # n_0, (1, L, D)
        self.timer = timer or StepTimer(enabled=False)
        self.alphas = prior.alphas_cumprod.to(torch.float32)
        self.T = int(prior.num_train_timesteps)
        self.t_min = cfg.t_min
        self.t_max = cfg.t_max

    # -- schedules ---------------------------------------------------------------
    def update_step(self, step: int, total_steps: int) -> None:
        """Anneal the timestep range (threestudio-style) for step `step` (0-based) of `total_steps`."""
        progress = step / max(total_steps - 1, 1)
        c = self.cfg
        self.t_min = lerp_schedule(c.t_min, c.t_min_end, progress, c.t_anneal_start, c.t_anneal_end)
        self.t_max = lerp_schedule(c.t_max, c.t_max_end, progress, c.t_anneal_start, c.t_anneal_end)

    def sample_t(self, batch: int, generator: torch.Generator) -> torch.Tensor:
        """Integer timesteps (batch,) uniform in [t_min T, t_max T]."""
        lo = max(int(self.t_min * self.T), 1)
        hi = max(min(int(self.t_max * self.T), self.T - 1), lo)
        t = torch.randint(lo, hi + 1, (batch,), generator=generator, device=generator.device)
        return t.to(self.alphas.device)

    def weight(self, t: torch.Tensor) -> torch.Tensor:
        """w(t) broadcastable over (B, C, H, W)."""
        if self.cfg.weighting == "uniform":
            w = torch.ones_like(t, dtype=torch.float32)
        else:
            w = 1.0 - self.alphas[t]
        return w.view(-1, 1, 1, 1)

    # -- diffusion helpers ---------------------------------------------------------
    def add_noise(self, z: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """z_t = sqrt(alpha_bar_t) z + sqrt(1 - alpha_bar_t) eps."""
        ab = self.alphas[t].view(-1, 1, 1, 1).to(z.dtype)
        return ab.sqrt() * z + (1 - ab).sqrt() * eps

    def predict_x0(self, z_t: torch.Tensor, eps_pred: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """One-step estimate (z_t - sqrt(1 - alpha_bar_t) e) / sqrt(alpha_bar_t)."""
        ab = self.alphas[t].view(-1, 1, 1, 1).to(z_t.dtype)
        return (z_t - (1 - ab).sqrt() * eps_pred) / ab.sqrt()

    def cfg_noise(
        self,
        z_t: torch.Tensor,
        t: torch.Tensor,
        cond: torch.Tensor,
        negative: torch.Tensor,
        camera: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """CFG noise e = e_n + s (e_c - e_n) from one batched UNet call; returns (e, e_c, e_n).

        The conditional half sees the camera (`camera`, None for a text-only prior); the
        negative half sees it too unless guidance.camera_cfg (see negative_camera).
        """
        b = z_t.shape[0]
        neg = negative.expand(b, -1, -1) if negative.shape[0] == 1 else negative
        cameras = None if camera is None else torch.cat([camera, self.negative_camera(camera)])
        with self.timer.section("unet"):
            out = self.prior.predict_noise(
                torch.cat([z_t, z_t]), torch.cat([t, t]), torch.cat([cond, neg.to(cond.dtype)]), camera=cameras
            )
        e_c, e_n = out.float().chunk(2)
        return e_n + self.cfg.guidance_scale * (e_c - e_n), e_c, e_n

    def negative_camera(self, camera: torch.Tensor | None) -> torch.Tensor | None:
        """The camera input of the negative half: the same, or zeros ("unknown") with guidance.camera_cfg."""
        if camera is None or not self.cfg.camera_cfg:
            return camera
        return torch.zeros_like(camera)

    def finish_grad(self, grad: torch.Tensor) -> torch.Tensor:
        """Replace NaN/Inf by 0 and clip element-wise if configured."""
        grad = torch.nan_to_num(grad, nan=0.0, posinf=0.0, neginf=0.0)
        if self.cfg.grad_clip > 0:
            grad = grad.clamp(-self.cfg.grad_clip, self.cfg.grad_clip)
        return grad

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """z = encode(x) in float32, timed under 'encode'."""
        with self.timer.section("encode"):
            return self.prior.encode_images(images).float()

    def score(self, images: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        """Reward scores (B,) timed under 'reward' (gradients flow if the caller enables them)."""
        if self.reward is None:
            return torch.zeros(images.shape[0], device=images.device)
        with self.timer.section("reward"):
            return self.reward(images, prompts).float()

    def __call__(
        self,
        images: torch.Tensor,
        cond: torch.Tensor,
        prompts: list[str],
        generator: torch.Generator,
        step: int = 0,
        camera: torch.Tensor | None = None,
    ) -> dict[str, Any]:
        """Losses and diagnostics for one step on rendered `images` (B,3,H,W) with grad.

        `camera`: the prior's camera features of the B renders (prior.camera_condition), or None.
        """
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """Learnable guidance state (e.g. the adaptive negative embedding); empty by default."""
        return {}
