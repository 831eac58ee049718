"""Prompt -> token embeddings (B, L, D) for a diffusion UNet's cross-attention.

One class for every text encoder a prior may use (CLIP for Stable Diffusion, BERT-like or T5
for pixel priors), so that a model trained with `TextEncoder` is conditioned at inference on
exactly the same embeddings: padding to `max_length`, truncation, last_hidden_state.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
from torch import nn

from .base import freeze

# Prompts repeat every step (a few view-dependent variants), so their embeddings are kept.
TEXT_CACHE_SIZE = 64
# Used when neither the model folder nor the tokenizer gives a usable maximum length.
DEFAULT_MAX_LENGTH = 77
# Tokenizers without a real limit report a huge sentinel as model_max_length.
_NO_LIMIT = 100_000


def load_text_model(path: str, subfolder: str = "", dtype: torch.dtype | None = None, **kwargs: Any) -> nn.Module:
    """Load a transformers text encoder by its config: *EncoderModel/*TextModel classes, else AutoModel."""
    # Imported here, not at the top: it is about a second of a cold start, and a run shows its
    # starting shape before any model loads (engine.generate).
    import transformers

    sub = {"subfolder": subfolder} if subfolder else {}
    config = transformers.AutoConfig.from_pretrained(path, **sub, **kwargs)
    arch = (getattr(config, "architectures", None) or [""])[0]
    # T5 checkpoints for diffusion ship as T5EncoderModel; AutoModel would build the whole
    # encoder-decoder and leave the decoder random. Heads like *ForMaskedLM are not wanted:
    # AutoModel then gives the base model whose output has last_hidden_state.
    cls = getattr(transformers, arch, None) if arch.endswith(("EncoderModel", "TextModel")) else None
    cls = cls or transformers.AutoModel
    return cls.from_pretrained(path, **sub, dtype=dtype, **kwargs)


def usable_max_length(tokenizer: Any, requested: int | None) -> int:
    """The padded sequence length: `requested`, else the tokenizer's own limit, else 77."""
    if requested:
        return int(requested)
    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(limit, int) and 0 < limit < _NO_LIMIT:
        return limit
    return DEFAULT_MAX_LENGTH


class TextEncoder(nn.Module):
    """Frozen tokenizer + encoder: prompts -> last_hidden_state (B, max_length, D), float32."""

    def __init__(self, tokenizer: Any, model: nn.Module, max_length: int | None = None) -> None:
        super().__init__()
        self.tokenizer = tokenizer
        self.model = freeze(model)
        self.max_length = usable_max_length(tokenizer, max_length)
        config = model.config
        # Stable Diffusion was trained on CLIP embeddings computed without an attention mask
        # (the pipeline passes one only if config.use_attention_mask); BERT/T5 need the mask.
        is_clip = config.model_type in ("clip_text_model", "clip")
        self.use_attention_mask = bool(getattr(config, "use_attention_mask", False)) or not is_clip
        self.hidden_size = int(getattr(config, "hidden_size", getattr(config, "d_model", 0)))
        self._cache: OrderedDict[str, torch.Tensor] = OrderedDict()

    @classmethod
    def from_folder(
        cls,
        path: str,
        text_subfolder: str = "",
        tokenizer_subfolder: str = "",
        max_length: int | None = None,
        dtype: torch.dtype | None = None,
        **kwargs: Any,
    ) -> TextEncoder:
        """Load tokenizer and encoder from a folder or hub id (optionally from subfolders)."""
        import transformers  # see load_text_model

        sub = {"subfolder": tokenizer_subfolder} if tokenizer_subfolder else {}
        tokenizer = transformers.AutoTokenizer.from_pretrained(path, **sub, **kwargs)
        model = load_text_model(path, text_subfolder, dtype=dtype, **kwargs)
        return cls(tokenizer, model, max_length)

    @property
    def device(self) -> torch.device:
        """Where the encoder's weights are (inputs are sent there)."""
        return next(self.model.parameters()).device

    def clear_cache(self) -> None:
        """Forget cached prompt embeddings."""
        self._cache.clear()

    @torch.no_grad()
    def _encode(self, prompts: list[str]) -> torch.Tensor:
        tokens = self.tokenizer(
            prompts, padding="max_length", max_length=self.max_length, truncation=True, return_tensors="pt"
        )
        device = self.device
        kwargs = {"attention_mask": tokens["attention_mask"].to(device)} if self.use_attention_mask else {}
        out = self.model(input_ids=tokens["input_ids"].to(device), **kwargs)
        return out.last_hidden_state.float()

    def forward(self, prompts: list[str] | str) -> torch.Tensor:
        """Embeddings (B, max_length, D) float32, no grad; repeated prompts come from a cache."""
        if isinstance(prompts, str):
            prompts = [prompts]
        missing = list(dict.fromkeys(p for p in prompts if p not in self._cache))
        if missing:
            for prompt, emb in zip(missing, self._encode(missing)):
                self._cache[prompt] = emb
        for prompt in prompts:
            self._cache.move_to_end(prompt)
        out = torch.stack([self._cache[p] for p in prompts])
        while len(self._cache) > TEXT_CACHE_SIZE:
            self._cache.popitem(last=False)
        return out
