"""What every CLIP-style reward shares: differentiable preprocessing in torch and cosine scoring.

score(image, prompt) = logit_scale * cos(image_features, text_features) * score_scale, the way
HPSv2 (diag of image_features @ text_features.T), PickScore (with CLIP's logit scale) and CLIP
score are computed. Text features are cached per prompt because prompts repeat every step.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F

from ..models.base import freeze
from .base import RewardModel, broadcast_prompts

TEXT_CACHE_SIZE = 64
RESIZE_MODES = ("crop", "pad")


def fit_square(images: torch.Tensor, size: int, mode: str) -> torch.Tensor:
    """Resize (B, C, H, W) to size x size, differentiably: 'crop' or 'pad' like the models' own transforms.

    'crop' (CLIP / PickScore): shorter side to `size`, then centre crop. 'pad' (HPSv2): longer
    side to `size`, then zero padding (black, before normalisation) to a square.
    """
    if mode not in RESIZE_MODES:
        raise ValueError(f"resize mode must be one of {RESIZE_MODES}; got '{mode}'")
    h, w = images.shape[-2:]
    if (h, w) == (size, size):
        return images
    scale = size / (min(h, w) if mode == "crop" else max(h, w))
    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
    # Bilinear with antialiasing: the models were trained on PIL-resized images, and renders
    # are usually downscaled, where plain bilinear aliases.
    x = F.interpolate(images, size=(new_h, new_w), mode="bilinear", align_corners=False, antialias=True)
    if mode == "crop":
        top, left = (new_h - size) // 2, (new_w - size) // 2
        return x[..., top : top + size, left : left + size]
    pad_h, pad_w = size - new_h, size - new_w
    return F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2), value=0.0)


class ClipLikeReward(RewardModel):
    """A frozen two-tower model scored by cosine similarity; subclasses provide the two encoders."""

    def __init__(
        self,
        name: str,
        image_size: int,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        resize_mode: str,
        device: torch.device,
        logit_scale: float = 1.0,
        score_scale: float = 1.0,
    ) -> None:
        super().__init__()
        self.name = name
        self.input_size = int(image_size)
        self.resize_mode = resize_mode
        self.logit_scale = float(logit_scale)
        self.score_scale = float(score_scale)
        self.execution_device = torch.device(device)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1))
        self._text_cache: OrderedDict[str, torch.Tensor] = OrderedDict()

    def _freeze(self) -> None:
        freeze(self)

    @property
    def model_dtype(self) -> torch.dtype:
        """The dtype the weights are held in (pixels are cast to it)."""
        return next(self.parameters()).dtype

    def encode_image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        """Normalised pixels (B, 3, S, S) -> image embeddings (B, D)."""
        raise NotImplementedError

    def encode_text_features(self, prompts: list[str]) -> torch.Tensor:
        """Prompts -> text embeddings (B, D)."""
        raise NotImplementedError

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1], any size -> the model's normalised square input (differentiable)."""
        x = fit_square(images.to(self.execution_device).float(), self.input_size, self.resize_mode)
        return ((x - self.mean) / self.std).to(self.model_dtype)

    @torch.no_grad()
    def text_features(self, prompts: list[str]) -> torch.Tensor:
        """Unit-norm text features (B, D) float32, cached per prompt."""
        missing = list(dict.fromkeys(p for p in prompts if p not in self._text_cache))
        if missing:
            feats = F.normalize(self.encode_text_features(missing).float(), dim=-1)
            for prompt, feat in zip(missing, feats):
                self._text_cache[prompt] = feat
        for prompt in prompts:
            self._text_cache.move_to_end(prompt)
        out = torch.stack([self._text_cache[p] for p in prompts])
        while len(self._text_cache) > TEXT_CACHE_SIZE:
            self._text_cache.popitem(last=False)
        return out

    def forward(self, images: torch.Tensor, prompts: list[str] | str) -> torch.Tensor:
        """Scores (B,) float32 = logit_scale * cos(image, text) * score_scale; differentiable in images."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be (B, 3, H, W) in [0, 1]; got shape {tuple(images.shape)}")
        prompts = broadcast_prompts(prompts, images.shape[0])
        image_feats = F.normalize(self.encode_image_features(self.preprocess(images)).float(), dim=-1)
        cosine = (image_feats * self.text_features(prompts)).sum(dim=-1)
        return cosine * (self.logit_scale * self.score_scale)
