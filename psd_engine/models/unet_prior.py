"""What latent and pixel priors share: a frozen diffusers UNet, its DDPM noise schedule and a text encoder.

Also the device/dtype choices (fp16 on CUDA when dtype is "auto", bfloat16 autocast on a CPU that
has it) and the GPU memory options (attention slicing, CPU offload, channels_last), which are
no-ops on a CPU.
"""
from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ConfigError, PriorConfig, check_autocast
from .base import DiffusionPrior, freeze, model_output_to_epsilon
from .camera_condition import CAMERA_MAP_CHANNELS, camera_feature_dim
from .text import TextEncoder

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """'auto' is float16 on CUDA and float32 elsewhere; otherwise the named dtype."""
    if name == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    if name not in _DTYPES:
        raise ConfigError(f"dtype must be 'auto' or one of {', '.join(_DTYPES)}; got '{name}'")
    return _DTYPES[name]


def native_cpu_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX); torch's probes, absent in old releases."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)


def resolve_autocast(mode: str, device: torch.device, dtype: torch.dtype) -> torch.dtype | None:
    """The dtype UNet forwards autocast to: bfloat16 for a float32 UNet on a CPU when `mode` asks
    for it ("auto": only where the CPU has native bfloat16, as emulated it is slower); else None."""
    check_autocast(mode)
    if mode == "off" or device.type != "cpu" or dtype != torch.float32:
        return None
    return torch.bfloat16 if mode == "bfloat16" or native_cpu_bfloat16() else None


def resize_square(images: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize of (B, C, H, W) to size x size (differentiable; no-op if already that size)."""
    if images.shape[-2:] == (size, size):
        return images
    # antialias off: renders are close to the prior's size and this runs every step.
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=False)


def apply_gpu_options(cfg: PriorConfig, modules: list[nn.Module], unet: nn.Module, device: torch.device) -> bool:
    """Attention slicing, channels_last and CPU offload on CUDA; returns True if offloaded."""
    if device.type != "cuda":
        return False
    if cfg.attention_slicing:
        unet.set_attention_slice("auto")
    if cfg.channels_last:
        unet.to(memory_format=torch.channels_last)
    if not cfg.cpu_offload:
        return False
    # Model-level offload as diffusers' enable_model_cpu_offload does it: each part moves to
    # the GPU when called and the previous part goes back to the CPU.
    from accelerate import cpu_offload_with_hook

    hook = None
    for module in modules:
        module.to("cpu")
        _, hook = cpu_offload_with_hook(module, device, prev_module_hook=hook)
    return True


def check_camera_input(unet: nn.Module, camera_harmonics: tuple[int, ...], source: str, camera_map: bool = False) -> None:
    """Raise ValueError unless the UNet's class-label input and input channels match the camera inputs."""
    config = getattr(unet, "config", None)
    kind = getattr(config, "class_embed_type", None)
    if camera_harmonics and camera_map:
        raise ValueError(f"prior {source}: psd_prior.json gives both camera_harmonics and camera_map; a prior takes one")
    inputs, outputs = getattr(config, "in_channels", None), getattr(config, "out_channels", None)
    if isinstance(inputs, int) and isinstance(outputs, int):
        image = inputs - CAMERA_MAP_CHANNELS if camera_map else inputs
        # Learned-variance UNets (DeepFloyd IF) output twice the image's channels.
        if image not in (outputs, outputs // 2):
            if camera_map:
                problem = "psd_prior.json says camera_map, which needs 3 input channels more than the image has"
            elif inputs - outputs == CAMERA_MAP_CHANNELS:
                problem = 'it takes 3 more, as a camera-map prior does: set "camera_map": true in psd_prior.json'
            else:
                problem = "this loader feeds it the noisy image alone"
            raise ValueError(f"prior {source}: the UNet takes {inputs} input channels and outputs {outputs}; {problem}")
    if not camera_harmonics:
        if kind == "projection":
            raise ValueError(
                f"prior {source}: the UNet takes a projected class label (class_embed_type 'projection') but "
                f"nothing says what it is; a camera-conditioned prior's psd_prior.json lists its camera_harmonics"
            )
        return
    dim = camera_feature_dim(camera_harmonics)
    got = getattr(config, "projection_class_embeddings_input_dim", None)
    if kind != "projection" or got != dim:
        raise ValueError(
            f"prior {source}: camera_harmonics {list(camera_harmonics)} need a UNet with class_embed_type "
            f"'projection' and projection_class_embeddings_input_dim {dim}; this UNet has {kind!r} and {got}"
        )


class UNetPrior(DiffusionPrior):
    """A frozen UNet2DConditionModel with the alphas_cumprod of its DDPM schedule."""

    def __init__(
        self,
        unet: nn.Module,
        scheduler: object,
        text_encoder: TextEncoder,
        resolution: int,
        device: torch.device,
        source: str,
        camera_harmonics: tuple[int, ...] = (),
        camera_map: bool = False,
        autocast: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.autocast = autocast  # None: the UNet runs in its own dtype
        check_camera_input(unet, camera_harmonics, source, camera_map)
        self.camera_harmonics = tuple(int(k) for k in camera_harmonics)
        self.camera_map = bool(camera_map)
        self.unet = freeze(unet)
        self.text_encoder = text_encoder
        self.resolution = int(resolution)
        self.execution_device = torch.device(device)
        self.source = source  # the folder / hub id the weights came from (for labels and logs)
        config = scheduler.config
        self.prediction_type = str(config.prediction_type)
        self.num_train_timesteps = int(config.num_train_timesteps)
        self.register_buffer("alphas_cumprod", scheduler.alphas_cumprod.detach().to(self.execution_device, torch.float32))

    @property
    def unet_dtype(self) -> torch.dtype:
        """The dtype the UNet's weights are held in (inputs are cast to it)."""
        return self.unet.dtype

    def encode_text(self, prompts: list[str]) -> torch.Tensor:
        """Text embeddings (B, L, D) float32 as the UNet's encoder_hidden_states (cached per prompt)."""
        return self.text_encoder(prompts)

    def predict_noise(
        self, z_t: torch.Tensor, t: torch.Tensor, text_emb: torch.Tensor, camera: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Epsilon prediction (float32) for z_t at integer timesteps t; v/x0 outputs are converted."""
        batch = z_t.shape[0]
        t = torch.as_tensor(t, device=self.execution_device).long().reshape(-1)
        if t.numel() == 1:
            t = t.expand(batch)
        z_t = z_t.to(self.execution_device)
        if text_emb.shape[0] == 1 and batch > 1:
            text_emb = text_emb.expand(batch, *text_emb.shape[1:])
        dtype = self.unet_dtype
        extra = {}
        if self.camera_harmonics:
            extra["class_labels"] = self._camera_labels(camera, batch).to(self.execution_device, dtype)
        z_in = torch.cat([z_t, self._camera_map_input(camera, z_t)], dim=1) if self.camera_map else z_t
        cast = contextlib.nullcontext() if self.autocast is None else torch.autocast("cpu", dtype=self.autocast)
        with cast:
            out = self.unet(
                z_in.to(dtype), t, encoder_hidden_states=text_emb.to(self.execution_device, dtype), **extra
            ).sample.float()
        channels = z_t.shape[1]
        if out.shape[1] == 2 * channels:
            # Learned-variance UNets (DeepFloyd IF) append the variance channels: keep epsilon.
            out = out[:, :channels]
        return model_output_to_epsilon(out, z_t.float(), t, self.alphas_cumprod, self.prediction_type)

    def _camera_labels(self, camera: torch.Tensor | None, batch: int) -> torch.Tensor:
        """(batch, F) camera features; zeros ("camera unknown") when none are given."""
        dim = camera_feature_dim(self.camera_harmonics)
        if camera is None:
            return torch.zeros(batch, dim)
        camera = torch.as_tensor(camera, dtype=torch.float32)
        if camera.shape[0] == 1 and batch > 1:
            camera = camera.expand(batch, -1)
        if tuple(camera.shape) != (batch, dim):
            raise ValueError(f"camera features must be ({batch}, {dim}) for this prior; got {tuple(camera.shape)}")
        return camera

    def _camera_map_input(self, camera: torch.Tensor | None, z_t: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) camera map beside z_t; zeros ("camera unknown") when none is given."""
        b, _, h, w = z_t.shape
        if camera is None:
            return torch.zeros(b, CAMERA_MAP_CHANNELS, h, w, device=z_t.device, dtype=z_t.dtype)
        camera = torch.as_tensor(camera).to(z_t.device, z_t.dtype)
        if camera.dim() == 4 and camera.shape[0] == 1 and b > 1:
            camera = camera.expand(b, -1, -1, -1)
        if tuple(camera.shape) != (b, CAMERA_MAP_CHANNELS, h, w):
            raise ValueError(
                f"camera map must be ({b}, {CAMERA_MAP_CHANNELS}, {h}, {w}) for this prior; got {tuple(camera.shape)}"
            )
        return camera
