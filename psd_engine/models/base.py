"""The interface every diffusion prior implements, latent (SD layout) or pixel-space."""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from .camera_condition import camera_input

if TYPE_CHECKING:
    from ..scene.cameras import Cameras


class ModelNotFoundError(RuntimeError):
    """Weights are missing: the message names the model, where it was looked for, and the fix."""


class DiffusionPrior(nn.Module):
    """A frozen text-conditioned noise predictor eps_phi(z_t, t, y) with its encoder/decoder.

    Images are (B, 3, H, W) floats in [0, 1]. For a pixel-space prior, z = 2 x - 1 at
    `resolution`; for a latent prior, z = vae.encode(2 x - 1) * scaling_factor.
    Every method returns float32 tensors, whatever dtype the weights are held in.
    """

    latent: bool = False
    resolution: int = 64  # image side fed to the prior
    num_train_timesteps: int = 1000
    alphas_cumprod: torch.Tensor  # (T,) float32, on the prior's device (a buffer)
    # Azimuth harmonics of a camera-conditioned prior (models/camera_condition.py); () = text only.
    camera_harmonics: tuple[int, ...] = ()
    # A prior that takes a camera map as extra input channels (models/camera_condition.py).
    camera_map: bool = False

    def encode_text(self, prompts: list[str]) -> torch.Tensor:
        """Text embeddings (B, L, D) as the UNet's encoder_hidden_states."""
        raise NotImplementedError

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] of any size -> z (differentiable), resized to `resolution`."""
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z -> images in [0, 1] (differentiable)."""
        raise NotImplementedError

    def camera_condition(self, cameras: Cameras) -> torch.Tensor | None:
        """The cameras as predict_noise takes them (object yaw 0): features, a map, or None if text only."""
        return camera_input(cameras.elevation_deg, cameras.azimuth_deg, cameras.distance, cameras.fovy_deg,
                            self.camera_harmonics, self.camera_map, self.resolution)

    def predict_noise(
        self, z_t: torch.Tensor, t: torch.Tensor, text_emb: torch.Tensor, camera: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Epsilon prediction for noisy z_t at integer timesteps t (B,), v-prediction converted.

        `camera` from camera_condition ((B, F) features or a (B, 3, R, R) map); a text-only prior
        ignores it, a camera-conditioned one reads None as "camera unknown".
        """
        raise NotImplementedError


PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")


def model_output_to_epsilon(
    output: torch.Tensor,
    z_t: torch.Tensor,
    t: torch.Tensor,
    alphas_cumprod: torch.Tensor,
    prediction_type: str,
) -> torch.Tensor:
    """Convert a UNet output to an epsilon prediction, whatever the scheduler trained it to predict.

    With z_t = sqrt(ab) x0 + sqrt(1 - ab) eps and v = sqrt(ab) eps - sqrt(1 - ab) x0 (SD 2.x):
    eps = sqrt(ab) v + sqrt(1 - ab) z_t; for x0 ("sample"): eps = (z_t - sqrt(ab) x0) / sqrt(1 - ab).
    """
    if prediction_type == "epsilon":
        return output
    ab = alphas_cumprod.to(output.device, torch.float32)[t.long().to(output.device)]
    ab = ab.reshape(-1, *([1] * (output.dim() - 1)))
    if prediction_type == "v_prediction":
        return ab.sqrt() * output + (1.0 - ab).sqrt() * z_t
    if prediction_type == "sample":
        return (z_t - ab.sqrt() * output) / (1.0 - ab).sqrt()
    raise ValueError(
        f"scheduler prediction_type '{prediction_type}' is not supported; expected one of {', '.join(PREDICTION_TYPES)}"
    )


def freeze(module: nn.Module) -> nn.Module:
    """Put a module in eval mode with every parameter's requires_grad off; returns it."""
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module
