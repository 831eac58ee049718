"""What an offline prior knows, and a warning before a run when a prompt is far from all of it.

A prior folder may list its concepts under "known_concepts" in `psd_prior.json` (the shipped
`shapes` prior does). A prompt is compared with each concept by cosine similarity of
mean-pooled sentence embeddings from the prior's own text encoder (for `shapes`, the
packaged all-MiniLM-L6-v2 it is conditioned on; the loaded instance is shared, not
copied); below `PromptConfig.known_similarity_warn` the user is warned before the run,
with the nearest known concept.
"""
from __future__ import annotations

import json
import weakref
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from .config import PromptConfig, RunConfig

if TYPE_CHECKING:
    from .models.text import TextEncoder


def prior_manifest(folder: str | Path) -> dict:
    """A prior folder's psd_prior.json ({} for a hub id or a folder without one)."""
    path = Path(folder) / "psd_prior.json"
    if not path.is_file():
        return {}
    return json.loads(path.read_text())


def known_concepts(cfg: RunConfig) -> list[str]:
    """Concepts listed by the prior folder's psd_prior.json (empty if none are listed)."""
    return list(prior_manifest(cfg.prior.model).get("known_concepts", []))


def trained_prompt_config(manifest: dict) -> PromptConfig:
    """The view words a prior's captions used (psd_prior.json "views"; DreamFusion's words if it does not say)."""
    views = manifest.get("views")
    if not views:
        return PromptConfig()
    return PromptConfig(azimuth_views=tuple(views["azimuth_views"]), view_format=views["view_format"],
                        overhead_view_format=views["overhead_view_format"])


def view_words(cfg: PromptConfig) -> dict:
    """The view words of cfg as psd_prior.json records them ("views"; read back by trained_prompt_config)."""
    return {"azimuth_views": list(cfg.azimuth_views), "view_format": cfg.view_format,
            "overhead_view_format": cfg.overhead_view_format}


def view_words_warning(cfg: RunConfig) -> str | None:
    """A warning if the run names its cameras with other view words than the prior's training captions."""
    manifest = prior_manifest(cfg.prior.model)
    if "views" not in manifest or not cfg.prompt_processing.view_dependent:
        return None  # a prior that does not say is trusted
    trained, used = view_words(trained_prompt_config(manifest)), view_words(cfg.prompt_processing)
    if not trained["azimuth_views"] and not used["azimuth_views"]:
        return None  # both DreamFusion's words: the sector formats are not used
    if trained == used:
        return None
    names = ",".join(trained["azimuth_views"])
    return (f"the prior was trained with the view words {trained}, but this run uses {used}: the views "
            f"will not mean what the prior learned. Set prompt_processing.azimuth_views={names} "
            f"(and the view formats) as in {cfg.prior.model}/psd_prior.json, or use its preset.")


@torch.no_grad()
def sentence_embeddings(texts: list[str], encoder: TextEncoder) -> torch.Tensor:
    """Unit-length mask-aware mean-pooled sentence embeddings (N, D) from the prior's own text encoder."""
    tokens = encoder.tokenizer(texts, padding=True, truncation=True, return_tensors="pt").to(encoder.device)
    hidden = encoder.model(**tokens).last_hidden_state.float()
    mask = tokens["attention_mask"].unsqueeze(-1).float()
    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
    return torch.nn.functional.normalize(pooled, dim=-1)


# Embeddings of a prior's known concepts, per encoder instance (computed once, not every run).
_CONCEPTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def concept_embeddings(concepts: list[str], encoder: TextEncoder) -> torch.Tensor:
    """sentence_embeddings of `concepts`, cached per encoder and concept list."""
    per_encoder = _CONCEPTS.setdefault(encoder, {})
    key = tuple(concepts)
    if key not in per_encoder:
        per_encoder[key] = sentence_embeddings(concepts, encoder)
    return per_encoder[key]


def nearest_concept(prompt: str, concepts: list[str], encoder: TextEncoder) -> tuple[str, float]:
    """The known concept most similar to `prompt` and the cosine similarity."""
    sims = concept_embeddings(concepts, encoder) @ sentence_embeddings([prompt], encoder)[0]
    best = int(sims.argmax())
    return concepts[best], float(sims[best])


def prompt_warning(cfg: RunConfig, encoder: TextEncoder | None = None) -> str | None:
    """A warning if the prior knows a closed set of concepts and the prompt is far from all of them.

    `encoder` is the prior's text encoder (the engine passes the loaded one); by default the
    prior is loaded (once per process, shared with runs) to get it.
    """
    concepts = known_concepts(cfg)
    if not concepts or not cfg.prompt.strip():
        return None
    if encoder is None:
        from .engine import resolve_device
        from .models import load_prior

        encoder = load_prior(cfg.prior, resolve_device(cfg.device)).text_encoder
    concept, sim = nearest_concept(cfg.prompt, concepts, encoder)
    if sim >= cfg.prompt_processing.known_similarity_warn:
        return None
    return (
        f"the '{cfg.preset}' model only knows simple coloured shapes (e.g. '{concepts[0]}'); "
        f"'{cfg.prompt}' is far from all of them (nearest: '{concept}', similarity {sim:.2f} < "
        f"{cfg.prompt_processing.known_similarity_warn:.2f}). Expect the nearest known shape, not your prompt."
    )
