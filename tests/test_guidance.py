"""Guidance maths on a small analytic prior and reward: SDS gradient, PSD winner, adaptive negative."""
from __future__ import annotations

import pytest
import torch

from psd_engine.config import GuidanceConfig
from psd_engine.guidance import build_guidance
from psd_engine.guidance.base import lerp_schedule, sds_surrogate_loss
from psd_engine.models.base import DiffusionPrior
from psd_engine.rewards.base import RewardModel


class AnalyticPrior(DiffusionPrior):
    """Pixel-space prior with z = x and a linear, text-dependent noise prediction."""

    latent = False
    resolution = 8

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.register_buffer("alphas_cumprod", torch.linspace(0.999, 0.01, 1000))
        self.num_train_timesteps = 1000
        self.mix = torch.nn.Parameter(torch.randn(3, 4, generator=g) * 0.5, requires_grad=False)

    def encode_text(self, prompts):
        return torch.stack([torch.full((2, 4), float(len(p)) / 10.0) for p in prompts])

    def encode_images(self, images):
        return images

    def decode(self, z):
        return z

    def predict_noise(self, z_t, t, text_emb, camera=None):
        shift = (text_emb.mean(1) @ self.mix.T).view(-1, 3, 1, 1)  # (B, 3, 1, 1), depends on the text
        if camera is not None:  # and on the camera, when given
            shift = shift + 0.3 * camera.sum(1).view(-1, 1, 1, 1)
        return 0.5 * z_t + shift + 0.001 * t.view(-1, 1, 1, 1).float()


class RednessReward(RewardModel):
    """Higher when the image is red: mean(R) - mean(G, B); differentiable."""

    def forward(self, images, prompts):
        return images[:, 0].mean((1, 2)) - images[:, 1:].mean((1, 2, 3))


def _setup(method: str, **overrides):
    cfg = GuidanceConfig(method=method, guidance_scale=7.5, **overrides)
    prior = AnalyticPrior()
    neg = prior.encode_text([""])
    return cfg, prior, build_guidance(cfg, prior, RednessReward(), neg)


def _expected_cfg_noise(prior, z_t, t, cond, neg, scale, camera=None, neg_camera=None):
    e_c = prior.predict_noise(z_t, t, cond, camera=camera)
    e_n = prior.predict_noise(z_t, t, neg.expand_as(cond), camera=neg_camera)
    return e_n + scale * (e_c - e_n)


def test_surrogate_loss_gradient_is_grad_over_batch():
    z = torch.randn(2, 3, 4, 4, requires_grad=True)
    grad = torch.randn(2, 3, 4, 4)
    sds_surrogate_loss(z, grad).backward()
    torch.testing.assert_close(z.grad, grad / 2)


def test_sds_gradient_is_weighted_residual():
    cfg, prior, guidance = _setup("sds", t_min=0.5, t_max=0.5 + 1e-3)
    images = torch.rand(2, 3, 8, 8, requires_grad=True)
    cond = prior.encode_text(["a red cube", "a red cube, side view"])
    out = guidance(images, cond, ["a red cube"] * 2, torch.Generator().manual_seed(3))
    out["loss_sds"].backward()
    # Replay the same random draws to get t and eps.
    g = torch.Generator().manual_seed(3)
    t = guidance.sample_t(2, g)
    eps = torch.randn(images.shape, generator=g)
    z_t = guidance.add_noise(images.detach(), eps, t)
    e = _expected_cfg_noise(prior, z_t, t, cond, prior.encode_text([""]), cfg.guidance_scale)
    w = (1 - prior.alphas_cumprod[t]).view(-1, 1, 1, 1)
    expected = w * (e - eps)
    torch.testing.assert_close(images.grad * 2, expected, rtol=1e-4, atol=1e-5)
    assert out["grad_norm"] == pytest.approx(float(expected.norm()), rel=1e-4)


@pytest.mark.parametrize("camera_cfg", [False, True])
@pytest.mark.parametrize("method", ["sds", "psd-fixed-neg"])
def test_camera_features_reach_both_halves_of_every_prior_call(method, camera_cfg):
    """A camera-conditioned prior gets each render's camera in the conditional call, and in the negative
    call too unless guidance.camera_cfg, which gives the negative half "camera unknown" (zeros)."""
    cfg, prior, guidance = _setup(method, t_min=0.5, t_max=0.5 + 1e-3, preference_scale=0.0, num_samples=2,
                                  camera_cfg=camera_cfg)
    images = torch.rand(2, 3, 8, 8, requires_grad=True)
    cond = prior.encode_text(["a red cube", "a red cube, side view"])
    camera = torch.tensor([[1.0, 0.5], [-2.0, 0.0]])
    guidance(images, cond, ["a red cube"] * 2, torch.Generator().manual_seed(3), camera=camera)["loss_sds"].backward()
    g = torch.Generator().manual_seed(3)
    t = guidance.sample_t(2, g)
    k = 1 if method == "sds" else 2
    eps = torch.randn((k,) + tuple(images.shape), generator=g)
    neg = prior.encode_text([""])
    w = (1 - prior.alphas_cumprod[t]).view(-1, 1, 1, 1)
    candidates = []
    for j in range(k):
        z_t = guidance.add_noise(images.detach(), eps[j], t)
        neg_camera = torch.zeros_like(camera) if camera_cfg else camera
        e = _expected_cfg_noise(prior, z_t, t, cond, neg, cfg.guidance_scale, camera, neg_camera)
        candidates.append(w * (e - eps[j]))
    # sds: the one residual; psd with preference_scale 0: the winner's residual, per render.
    grad = images.grad * 2  # the surrogate loss divides by the batch
    for b in range(2):
        assert any(torch.allclose(grad[b], c[b], rtol=1e-4, atol=1e-5) for c in candidates)
        z_t = guidance.add_noise(images.detach(), eps[0], t)
        without = w * (_expected_cfg_noise(prior, z_t, t, cond, neg, cfg.guidance_scale) - eps[0])
        assert not torch.allclose(grad[b], without[b], rtol=1e-3, atol=1e-4)
        other = w * (_expected_cfg_noise(prior, z_t, t, cond, neg, cfg.guidance_scale, camera,
                                         camera if camera_cfg else torch.zeros_like(camera)) - eps[0])
        assert not torch.allclose(grad[b], other[b], rtol=1e-3, atol=1e-4)


def test_uniform_weighting_and_clip():
    cfg, prior, guidance = _setup("sds", weighting="uniform", grad_clip=0.01)
    images = torch.rand(1, 3, 8, 8, requires_grad=True)
    out = guidance(images, prior.encode_text(["x"]), ["x"], torch.Generator().manual_seed(0))
    out["loss_sds"].backward()
    assert images.grad.abs().max() <= 0.01 + 1e-7  # clipped per element (B = 1)


def test_psd_gradient_follows_higher_reward_sample():
    cfg, prior, guidance = _setup("psd-fixed-neg", preference_scale=0.0, num_samples=2)
    images = torch.rand(1, 3, 8, 8, requires_grad=True)
    cond = prior.encode_text(["a red cube"])
    out = guidance(images, cond, ["a red cube"], torch.Generator().manual_seed(5))
    out["loss_sds"].backward()
    g = torch.Generator().manual_seed(5)
    t = guidance.sample_t(1, g)
    eps = torch.randn((2, 1, 3, 8, 8), generator=g)
    residuals, rewards = [], []
    for k in range(2):
        z_t = guidance.add_noise(images.detach(), eps[k], t)
        e = _expected_cfg_noise(prior, z_t, t, cond, prior.encode_text([""]), cfg.guidance_scale)
        x0 = guidance.predict_x0(z_t, e, t)
        rewards.append(float(RednessReward()(x0, ["a red cube"])))
        residuals.append((1 - prior.alphas_cumprod[t]).view(-1, 1, 1, 1) * (e - eps[k]))
    win, lose = (0, 1) if rewards[0] > rewards[1] else (1, 0)
    assert rewards[win] != rewards[lose]
    torch.testing.assert_close(images.grad, residuals[win], rtol=1e-4, atol=1e-5)
    assert not torch.allclose(images.grad, residuals[lose], rtol=1e-3, atol=1e-4)
    assert out["reward_win"] == pytest.approx(rewards[win], rel=1e-4)
    assert out["reward_lose"] == pytest.approx(rewards[lose], rel=1e-4)
    assert out["reward_win"] >= out["reward_lose"]
    assert out["reward_gap"] == pytest.approx(rewards[win] - rewards[lose], rel=1e-4)


def test_psd_preference_term_and_reward_scaling():
    lam, tau = 2.0, 1e9  # huge tau: lambda_eff = lam * gap / tau, tiny but nonzero
    cfg, prior, guidance = _setup("psd-fixed-neg", preference_scale=lam, tau=tau)
    images = torch.rand(1, 3, 8, 8)
    out = guidance(images, prior.encode_text(["a"]), ["a"], torch.Generator().manual_seed(1))
    assert out["lambda_eff"] == pytest.approx(lam * out["reward_gap"] / tau, rel=1e-4)
    cfg2, _, guidance2 = _setup("psd-fixed-neg", preference_scale=lam, tau=1e-9)
    out2 = guidance2(images, prior.encode_text(["a"]), ["a"], torch.Generator().manual_seed(1))
    assert out2["lambda_eff"] == pytest.approx(lam)  # gap far above tau: saturates at lambda


def test_adaptive_negative_moves_and_raises_its_reward():
    cfg, prior, guidance = _setup("psd", neg_lr=0.05, neg_beta=0.0)
    z = torch.rand(1, 3, 8, 8)
    t = torch.tensor([600])
    z_t = guidance.add_noise(z, torch.randn(z.shape, generator=torch.Generator().manual_seed(2)), t)
    cond = prior.encode_text(["a red cube"])
    e_c = prior.predict_noise(z_t, t, cond)
    n_before = guidance.n.detach().clone()
    with torch.no_grad():
        r_before = float(guidance.reward_of_negative(z_t, t, e_c, ["a red cube"]))
    for _ in range(20):
        diag = guidance.update_negative(z_t, t, e_c, ["a red cube"])
    with torch.no_grad():
        r_after = float(guidance.reward_of_negative(z_t, t, e_c, ["a red cube"]))
    assert diag["neg_updated"] == 1.0
    assert (guidance.n.detach() - n_before).abs().max() > 1e-3
    assert r_after > r_before + 1e-3
    # The UNet and the scene were not touched: only n has a gradient.
    assert prior.mix.grad is None


def test_negative_update_schedule_and_fixed_neg_never_updates():
    cfg, prior, guidance = _setup("psd", neg_update_every=3, neg_update_start=2)
    assert [s for s in range(10) if guidance.neg_update_due(s)] == [2, 5, 8]
    _, _, fixed = _setup("psd-fixed-neg")
    assert not any(fixed.neg_update_due(s) for s in range(10))
    images = torch.rand(1, 3, 8, 8)
    out = fixed(images, prior.encode_text(["a"]), ["a"], torch.Generator().manual_seed(0), step=0)
    assert "neg_reward" not in out
    out = guidance(images, prior.encode_text(["a"]), ["a"], torch.Generator().manual_seed(0), step=2)
    assert "neg_reward" in out and out["neg_updated"] == 1.0


def test_reward_grad_adds_reward_gradient():
    cfg, prior, guidance = _setup("reward-grad", reward_grad_scale=3.0)
    images = torch.rand(1, 3, 8, 8, requires_grad=True)
    out = guidance(images, prior.encode_text(["a"]), ["a"], torch.Generator().manual_seed(0))
    assert float(out["loss_reward"].detach()) == pytest.approx(-3.0 * out["reward"], rel=1e-5)
    out["loss_reward"].backward()
    # d(-3 R)/d(red pixel) = -3 / (H W): pushes red up.
    assert float(images.grad[0, 0, 0, 0]) == pytest.approx(-3.0 / 64, rel=1e-5)


def test_timestep_annealing_schedule():
    cfg, prior, guidance = _setup("sds", t_max=0.98, t_max_end=0.5, t_anneal_start=0.0, t_anneal_end=0.5)
    guidance.update_step(0, 101)
    assert guidance.t_max == pytest.approx(0.98)
    guidance.update_step(25, 101)
    assert guidance.t_max == pytest.approx(0.74)
    guidance.update_step(100, 101)
    assert guidance.t_max == pytest.approx(0.5)
    t = guidance.sample_t(1000, torch.Generator().manual_seed(0))
    assert int(t.max()) <= 500 and int(t.min()) >= 20
    assert lerp_schedule(1.0, 0.0, 0.5, 0.5, 0.5) == 0.0
