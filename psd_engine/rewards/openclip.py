"""open_clip rewards: a generic open_clip model + checkpoint, and HPSv2 / HPSv2.1 on top of it.

Generic ("openclip"): reward.arch is an open_clip architecture name ("ViT-H-14") or a path to
a model-config JSON (keys embed_dim, vision_cfg, text_cfg; registered with open_clip under its
file stem); reward.model is a checkpoint file (.safetensors, or .pt/.bin read with
weights_only=True), or a folder / hub repo in open_clip's own layout (open_clip_config.json +
open_clip_model.safetensors or open_clip_pytorch_model.bin).

HPSv2: ViT-H-14 with the checkpoint HPS_v2_compressed.pt (v2.0) or HPS_v2.1_compressed.pt
(v2.1) from the hub repo xswu/HPSv2, or reward.model as a local checkpoint file. The `hpsv2`
pip package is deliberately not used: upstream it misses its BPE vocabulary file, pins
pytest/protobuf, reloads the model on every call and scores under no_grad, so it can neither
be installed cleanly nor differentiated. open_clip is all it wraps.
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
from pathlib import Path

import open_clip
import torch
from huggingface_hub import hf_hub_download
from huggingface_hub import errors as hub_errors

from ..config import ConfigError, RewardConfig
from ..models.hub import WEIGHTS_MISSING_ERRORS, hub_kwargs, looks_like_path, missing_weights_error, psd_cache_dir
from .clip_like import ClipLikeReward

HPS_REPO = "xswu/HPSv2"
HPS_FILES = {"v2.0": "HPS_v2_compressed.pt", "v2.1": "HPS_v2.1_compressed.pt"}
HPS_ARCH = "ViT-H-14"
OPEN_CLIP_CONFIG = "open_clip_config.json"
OPEN_CLIP_WEIGHTS = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
_PRECISION = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}


class OpenClipReward(ClipLikeReward):
    """Cosine similarity of an open_clip model's image and text features."""

    def __init__(self, model: torch.nn.Module, tokenizer: object, name: str, resize_mode: str,
                 device: torch.device, score_scale: float = 1.0) -> None:
        visual = model.visual
        size = visual.image_size
        size = size[0] if isinstance(size, (tuple, list)) else size
        pp = getattr(visual, "preprocess_cfg", None) or {}
        mean = tuple(pp.get("mean", getattr(visual, "image_mean", None) or open_clip.OPENAI_DATASET_MEAN))
        std = tuple(pp.get("std", getattr(visual, "image_std", None) or open_clip.OPENAI_DATASET_STD))
        super().__init__(name, size, mean, std, resize_mode, device, score_scale=score_scale)
        self.model = model
        self.tokenizer = tokenizer
        self._freeze()

    def encode_image_features(self, pixels: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.model.encode_image(pixels)

    def encode_text_features(self, prompts: list[str]) -> torch.Tensor:  # noqa: D102
        return self.model.encode_text(self.tokenizer(prompts).to(self.execution_device))


def register_arch(arch: str) -> str:
    """An open_clip architecture name; a model-config JSON is registered with open_clip first.

    open_clip names a registered config by its file stem, globally. Two different configs can
    share a stem (every reward folder may call it model_config.json), so a copy named
    <stem>-<content hash> is registered from the project cache instead.
    """
    if not arch.endswith(".json"):
        if arch not in open_clip.list_models():
            raise ConfigError(f"reward.arch '{arch}' is not an open_clip architecture nor a .json model config; "
                              f"known names include ViT-B-32, ViT-L-14, ViT-H-14")
        return arch
    path = Path(arch).expanduser().absolute()
    if not path.is_file():
        raise ConfigError(f"reward.arch: model-config JSON {path} does not exist")
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ConfigError(f"reward.arch: {path} is not valid JSON ({err})") from err
    if not all(k in config for k in ("embed_dim", "vision_cfg", "text_cfg")):
        raise ConfigError(f"reward.arch: {path} must have the keys embed_dim, vision_cfg, text_cfg (open_clip format)")
    text = json.dumps(config, sort_keys=True)
    name = f"{path.stem}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"
    if name not in open_clip.list_models():
        copy = psd_cache_dir() / "open_clip_configs" / f"{name}.json"
        copy.parent.mkdir(parents=True, exist_ok=True)
        if not copy.is_file():
            tmp = copy.with_name(f".{copy.name}.{os.getpid()}")
            tmp.write_text(text)
            os.replace(tmp, copy)  # atomic: parallel processes never read a half-written file
        open_clip.add_model_config(copy)
    return name


def _precision(dtype: torch.dtype) -> str:
    return _PRECISION[dtype]


def create_open_clip(arch: str, checkpoint: str, device: torch.device, dtype: torch.dtype) -> tuple:
    """(model, tokenizer) for an architecture + checkpoint file, loaded by open_clip with weights_only=True."""
    name = register_arch(arch)
    try:
        # open_clip's loader reads .safetensors, or torch.load(weights_only=True) (its default),
        # and accepts {"state_dict": ...} checkpoints as HPSv2 ships them.
        model = open_clip.create_model(
            name, pretrained=checkpoint, precision=_precision(dtype), device=device, weights_only=True,
            require_pretrained=True,
        )
    except pickle.UnpicklingError as err:
        raise ValueError(f"{checkpoint} holds objects other than tensors, refused by torch.load(weights_only=True); "
                         f"convert it to a plain state_dict or .safetensors") from err
    except RuntimeError as err:
        if "state_dict" not in str(err):
            raise
        raise ValueError(f"checkpoint {checkpoint} does not fit the open_clip architecture '{arch}' "
                         f"(missing or mis-shaped weights); set reward.arch to the model it was trained as") from err
    return model, open_clip.get_tokenizer(name)


def create_open_clip_folder(folder: Path, device: torch.device, dtype: torch.dtype) -> tuple:
    """(model, tokenizer) from a folder in open_clip's hub layout (open_clip_config.json + weights)."""
    if not any((folder / w).is_file() for w in OPEN_CLIP_WEIGHTS):
        raise missing_weights_error("Reward model", str(folder), folder=folder.absolute(),
                                    problem=f"no {' or '.join(OPEN_CLIP_WEIGHTS)} in it")
    name = f"local-dir:{folder}"
    model = open_clip.create_model(name, precision=_precision(dtype), device=device, weights_only=True,
                                   require_pretrained=True)
    return model, open_clip.get_tokenizer(name)


def download_first(repo: str, filenames: tuple[str, ...], revision: str | None = None) -> str:
    """Local path of the first of `filenames` found in hub repo `repo` (cache first, offline-aware)."""
    last: BaseException | None = None
    for filename in filenames:
        try:
            return hf_hub_download(repo, filename, **hub_kwargs(revision))
        except hub_errors.EntryNotFoundError as err:  # includes LocalEntryNotFoundError: try the next name
            last = err
    assert last is not None
    raise last


def load_openclip_reward(cfg: RewardConfig, device: torch.device, dtype: torch.dtype) -> OpenClipReward:
    """Generic open_clip reward from reward.arch + reward.model (file, folder or hub repo)."""
    if not cfg.model:
        raise ConfigError("reward.kind 'openclip' needs reward.model: a checkpoint file, an open_clip folder or hub repo")
    path = Path(cfg.model).expanduser()
    if path.is_file():
        model, tokenizer = create_open_clip(cfg.arch, str(path), device, dtype)
    elif path.is_dir():
        model, tokenizer = create_open_clip_folder(path, device, dtype)
    elif looks_like_path(cfg.model):
        raise missing_weights_error("Reward model", cfg.model, folder=path.absolute(), problem="it does not exist")
    else:
        try:
            config_file = download_first(cfg.model, (OPEN_CLIP_CONFIG,))
            download_first(cfg.model, OPEN_CLIP_WEIGHTS)
        except WEIGHTS_MISSING_ERRORS as err:
            raise missing_weights_error("Reward model", cfg.model, cause=err) from err
        model, tokenizer = create_open_clip_folder(Path(config_file).parent, device, dtype)
    name = f"openclip:{Path(cfg.arch).stem}"
    return OpenClipReward(model, tokenizer, name, "crop", device, cfg.score_scale)


def load_hpsv2_reward(cfg: RewardConfig, device: torch.device, dtype: torch.dtype) -> OpenClipReward:
    """HPSv2 / HPSv2.1: open_clip ViT-H-14 + the HPS checkpoint (local file or from xswu/HPSv2)."""
    if cfg.version not in HPS_FILES:
        raise ConfigError(f"reward.version must be one of {', '.join(HPS_FILES)}; got '{cfg.version}'")
    filename = HPS_FILES[cfg.version]
    path = Path(cfg.model).expanduser() if cfg.model else None
    if path is not None and path.is_file():
        checkpoint = str(path)
    elif cfg.model and looks_like_path(cfg.model):
        raise missing_weights_error("Reward model HPS" + cfg.version, cfg.model, folder=path.absolute(),
                                    problem=f"no such file (expected the {filename} checkpoint)")
    else:
        repo = cfg.model or HPS_REPO
        try:
            checkpoint = hf_hub_download(repo, filename, **hub_kwargs())
        except WEIGHTS_MISSING_ERRORS as err:
            raise missing_weights_error(f"Reward model HPS{cfg.version} ({filename})", repo,
                                        download=f"hf download {repo} {filename}", cause=err) from err
    model, tokenizer = create_open_clip(cfg.arch or HPS_ARCH, checkpoint, device, dtype)
    # HPSv2's inference transform fits the longer side and zero-pads (not CLIP's centre crop).
    return OpenClipReward(model, tokenizer, f"hps{cfg.version}", "pad", device, cfg.score_scale)
