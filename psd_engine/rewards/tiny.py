"""Tiny random-weight reward models for plumbing tests, saved to disk and loaded like real ones.

`build_tiny_openclip` writes an open_clip model config + checkpoint, loaded by the same
OpenClipReward loader as HPSv2; `build_tiny_hf_clip` writes a transformers CLIPModel +
processor folder, loaded by the PickScore / CLIP-score loader. Folders live in the project
cache ($PSD3D_CACHE or ~/.cache/psd-3d/tiny-random/...), built once with seeded weights.
RANDOM WEIGHTS: the scores mean nothing; for plumbing tests only.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..models.tiny import CLIP_VOCAB_SIZE, TINY_LABEL, build_once, tiny_cache_dir, write_clip_bpe_tokenizer

TINY_OPENCLIP_NAME = "tiny-random-openclip"  # also the open_clip architecture name (file stem)
TINY_OPENCLIP_CONFIG_FILE = f"{TINY_OPENCLIP_NAME}.json"
TINY_OPENCLIP_WEIGHTS_FILE = "open_clip_model.safetensors"
# 32 px input, 8 px patches (16 tokens): fast; presets using it set reward.resolution 32.
TINY_IMAGE_SIZE = 32
TINY_OPENCLIP = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": TINY_IMAGE_SIZE, "layers": 2, "width": 32, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 77, "vocab_size": CLIP_VOCAB_SIZE, "width": 32, "heads": 2, "layers": 2},
}
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
TINY_HF_CLIP_TEXT = {"vocab_size": CLIP_VOCAB_SIZE, "hidden_size": 32, "intermediate_size": 64,
                     "num_hidden_layers": 2, "num_attention_heads": 2, "max_position_embeddings": 77,
                     "bos_token_id": 49406, "eos_token_id": 49407, "pad_token_id": 49407}
TINY_HF_CLIP_VISION = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                       "num_attention_heads": 2, "image_size": TINY_IMAGE_SIZE, "patch_size": 8}
TINY_HF_CLIP_PROJECTION = 32


def build_tiny_openclip(folder: str | Path | None = None) -> Path:
    """Build (once) <folder>/tiny-random-openclip.json + open_clip_model.safetensors; returns the folder.

    The folder also has open_clip_config.json ({"model_cfg", "preprocess_cfg"}), so it can be
    loaded as an open_clip folder too.
    """
    import open_clip
    from safetensors.torch import save_file

    folder = Path(folder) if folder else tiny_cache_dir("openclip")

    def write(tmp: Path) -> None:
        model = open_clip.model.CLIP(**TINY_OPENCLIP)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp / TINY_OPENCLIP_WEIGHTS_FILE))
        (tmp / TINY_OPENCLIP_CONFIG_FILE).write_text(json.dumps(TINY_OPENCLIP, indent=2) + "\n")
        preprocess = {"mean": list(OPENAI_MEAN), "std": list(OPENAI_STD)}
        (tmp / "open_clip_config.json").write_text(
            json.dumps({"model_cfg": TINY_OPENCLIP, "preprocess_cfg": preprocess}, indent=2) + "\n"
        )
        (tmp / "README.txt").write_text(TINY_LABEL + "\n")

    return build_once(folder, {"kind": "openclip", "cfg": TINY_OPENCLIP}, write)


def build_tiny_hf_clip(folder: str | Path | None = None) -> Path:
    """Build (once) a transformers CLIPModel + CLIPProcessor folder with random weights; returns it."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    folder = Path(folder) if folder else tiny_cache_dir("hf-clip")

    def write(tmp: Path) -> None:
        config = CLIPConfig(text_config=TINY_HF_CLIP_TEXT, vision_config=TINY_HF_CLIP_VISION,
                            projection_dim=TINY_HF_CLIP_PROJECTION)
        CLIPModel(config).save_pretrained(tmp)
        write_clip_bpe_tokenizer(tmp)
        size = TINY_HF_CLIP_VISION["image_size"]
        image_processor = CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size},
                                             image_mean=list(OPENAI_MEAN), image_std=list(OPENAI_STD))
        CLIPProcessor(image_processor=image_processor, tokenizer=CLIPTokenizer.from_pretrained(str(tmp))).save_pretrained(tmp)
        (tmp / "README.txt").write_text(TINY_LABEL + "\n")

    spec = {"kind": "hf-clip", "text": TINY_HF_CLIP_TEXT, "vision": TINY_HF_CLIP_VISION, "proj": TINY_HF_CLIP_PROJECTION}
    return build_once(folder, spec, write)
