"""transformers CLIP rewards: PickScore (logit_scale * cosine) and CLIP score (cosine).

PickScore: CLIPModel weights from yuvalkirstain/PickScore_v1 with the processor (tokenizer +
image size/mean/std) of laion/CLIP-ViT-H-14-laion2B-s32B-b79K, as its authors load it.
CLIP score: CLIPModel, default openai/clip-vit-base-patch32, processor from the same place.
reward.model / reward.processor may be hub ids or local folders (save_pretrained layout:
config.json + model.safetensors; tokenizer files + preprocessor_config.json).
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from transformers import AutoProcessor, CLIPModel

from ..config import RewardConfig
from ..models.hub import WEIGHTS_MISSING_ERRORS, hub_kwargs, looks_like_path, missing_weights_error
from .clip_like import ClipLikeReward

PICKSCORE_MODEL = "yuvalkirstain/PickScore_v1"
PICKSCORE_PROCESSOR = "laion/CLIP-ViT-H-14-laion2B-s32B-b79K"
CLIP_MODEL = "openai/clip-vit-base-patch32"


class TransformersClipReward(ClipLikeReward):
    """Cosine similarity of a transformers CLIPModel's projected image and text embeddings."""

    def __init__(self, model: CLIPModel, processor: object, name: str, device: torch.device,
                 use_logit_scale: bool, score_scale: float = 1.0) -> None:
        image_processor = processor.image_processor
        crop = getattr(image_processor, "crop_size", None) or {}
        size = crop.get("height") or (getattr(image_processor, "size", None) or {}).get("shortest_edge")
        logit_scale = float(model.logit_scale.detach().float().exp()) if use_logit_scale else 1.0
        super().__init__(name, int(size), tuple(image_processor.image_mean), tuple(image_processor.image_std),
                         "crop", device, logit_scale=logit_scale, score_scale=score_scale)
        self.model = model
        self.tokenizer = processor.tokenizer
        self.max_length = int(model.config.text_config.max_position_embeddings)
        self._freeze()

    # The towers are called directly (not get_image_features) because that method's return
    # type changed between transformers versions (tensor vs. output object).
    def encode_image_features(self, pixels: torch.Tensor) -> torch.Tensor:  # noqa: D102
        pooled = self.model.vision_model(pixel_values=pixels).pooler_output
        return self.model.visual_projection(pooled)

    def encode_text_features(self, prompts: list[str]) -> torch.Tensor:  # noqa: D102
        tokens = self.tokenizer(prompts, padding=True, truncation=True, max_length=self.max_length,
                                return_tensors="pt").to(self.execution_device)
        pooled = self.model.text_model(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"]).pooler_output
        return self.model.text_projection(pooled)


def _load(name: str, loader: Callable[..., Any], what: str, **kwargs: Any) -> Any:
    """Call `loader(name, ...)` for a folder or hub id; missing weights -> ModelNotFoundError."""
    if looks_like_path(name):
        folder = Path(name).expanduser()
        if not folder.is_dir():
            raise missing_weights_error(what, name, folder=folder.absolute(), problem="it does not exist")
        try:
            return loader(str(folder), **kwargs)
        except WEIGHTS_MISSING_ERRORS as err:
            raise missing_weights_error(what, name, folder=folder.absolute(), problem="it failed to load",
                                        cause=err) from err
    try:
        return loader(name, **kwargs, **hub_kwargs())
    except WEIGHTS_MISSING_ERRORS as err:
        raise missing_weights_error(what, name, cause=err) from err


def load_transformers_clip_reward(cfg: RewardConfig, device: torch.device, dtype: torch.dtype) -> TransformersClipReward:
    """PickScore (kind 'pickscore') or CLIP score (kind 'clip') from reward.model / reward.processor."""
    pick = cfg.kind == "pickscore"
    model_id = cfg.model or (PICKSCORE_MODEL if pick else CLIP_MODEL)
    processor_id = cfg.processor or (PICKSCORE_PROCESSOR if pick else model_id)
    what = "Reward model PickScore" if pick else "Reward model CLIP"
    model = _load(model_id, CLIPModel.from_pretrained, what, dtype=dtype).to(device)
    processor = _load(processor_id, AutoProcessor.from_pretrained, what + " processor")
    return TransformersClipReward(model, processor, "pickscore" if pick else "clip", device,
                                  use_logit_scale=pick, score_scale=cfg.score_scale)
