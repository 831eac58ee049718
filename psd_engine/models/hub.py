"""Where weights come from: a local folder or the Hugging Face cache, honouring HF_HUB_OFFLINE.

One place decides whether the hub may be contacted, which cache folder is used, and how
a missing model is reported. Priors and rewards both use it, so every "weights not found"
message has the same shape: the model, where it was looked for, how to get it, and which
presets run offline on this machine.
"""
from __future__ import annotations

import contextlib
import contextvars
import os
from pathlib import Path
from typing import Iterator

from huggingface_hub import constants as hub_constants
from huggingface_hub import errors as hub_errors

from .base import ModelNotFoundError

# Presets that need no download: they are named in every missing-weights message.
OFFLINE_PRESETS_HINT = (
    "Presets that run offline here: 'tiny-random' (random weights, a plumbing test only, "
    "not a real model) and 'shapes' (the small model shipped with the project)."
)

_TRUE = ("1", "on", "yes", "true")

# Errors that mean "these weights are not available" (as opposed to a bug or a corrupt file).
# diffusers and transformers re-raise hub failures as OSError with their own text, and
# huggingface_hub's own errors (LocalEntryNotFoundError when offline or the network is down,
# RepositoryNotFoundError / GatedRepoError / RevisionNotFoundError / EntryNotFoundError) are
# OSError subclasses too; HFValidationError (a malformed repo id) is a ValueError.
WEIGHTS_MISSING_ERRORS: tuple[type[BaseException], ...] = (OSError, hub_errors.HFValidationError)


_LOCAL_ONLY: contextvars.ContextVar[bool] = contextvars.ContextVar("psd3d_local_only", default=False)


@contextlib.contextmanager
def local_files_only() -> Iterator[None]:
    """Within this block, load from local folders and the cache only (availability checks)."""
    token = _LOCAL_ONLY.set(True)
    try:
        yield
    finally:
        _LOCAL_ONLY.reset(token)


def hub_offline() -> bool:
    """True when the hub must not be contacted (HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE or local_files_only())."""
    if _LOCAL_ONLY.get():
        return True
    # Read the environment at call time: huggingface_hub reads it once at import, so a
    # variable set later (the app, a test) would otherwise be ignored.
    env = any(os.environ.get(name, "").strip().lower() in _TRUE for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
    return env or bool(hub_constants.HF_HUB_OFFLINE)


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache folder, from HF_HUB_CACHE / HF_HOME at call time."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "huggingface" / "hub"


def psd_cache_dir() -> Path:
    """The project's own cache folder (tiny random models): $PSD3D_CACHE or ~/.cache/psd-3d."""
    env = os.environ.get("PSD3D_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "psd-3d"


def looks_like_path(name: str) -> bool:
    """True if `name` exists on disk or is written like a path (absolute, ./, ../, ~)."""
    if not name:
        return False
    if Path(name).expanduser().exists():
        return True
    if name.startswith(("/", "./", "../", "~", ".\\")) or Path(name).is_absolute():
        return True
    return Path(name).suffix.lower() in (".json", ".pt", ".pth", ".bin", ".safetensors", ".ckpt")


def hub_kwargs(revision: str | None = None) -> dict:
    """from_pretrained / hf_hub_download keyword arguments for a hub id (cache dir, offline)."""
    kwargs: dict = {"cache_dir": str(hub_cache_dir()), "local_files_only": hub_offline()}
    if revision:
        kwargs["revision"] = revision
    return kwargs


def missing_weights_error(
    what: str,
    model: str,
    *,
    folder: Path | None = None,
    problem: str = "",
    download: str = "",
    cause: BaseException | None = None,
) -> ModelNotFoundError:
    """A ModelNotFoundError naming the model, where it was looked for and how to get it.

    `folder` set: a local folder was given (and `problem` says what is wrong with it).
    Otherwise `model` is a hub id, looked for in the hub cache; `download` is the command
    that fetches it (default: `hf download <model>`).
    """
    lines = [f"{what} '{model}' could not be loaded: its weights were not found."]
    if folder is not None:
        lines.append(f"Looked at the local path {folder}: {problem or 'it does not exist'}.")
        lines.append("Fix the path, or give a hub id; the expected layouts are described in the docs.")
    else:
        offline = hub_offline()
        state = "HF_HUB_OFFLINE is set, so nothing was downloaded" if offline else "the download failed"
        lines.append(f"Looked in the Hugging Face cache {hub_cache_dir()} ({state}).")
        command = download or f"hf download {model}"
        fix = f"To get it: on a machine with network run `{command}` (huggingface-cli download on older huggingface_hub) and copy the cache folder here"
        fix += ", or unset HF_HUB_OFFLINE to let it download." if offline else ", or check the id and your network/login."
        lines.append(fix)
    lines.append(OFFLINE_PRESETS_HINT)
    if cause is not None:
        first = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        lines.append(f"Cause: {type(cause).__name__}: {first}")
    return ModelNotFoundError("\n".join(lines))


def model_source(name: str, revision: str | None = None) -> tuple[str, dict, Path | None]:
    """Where from_pretrained reads `name`: (folder or hub id, its keyword arguments, the local folder or None)."""
    if looks_like_path(name):
        folder = Path(name).expanduser()
        return str(folder), {}, folder
    return name, hub_kwargs(revision), None


@contextlib.contextmanager
def weights_missing_reported(what: str, name: str, is_folder: bool) -> Iterator[None]:
    """Within this block, a part of `name` that fails to load raises a ModelNotFoundError saying why."""
    try:
        yield
    except WEIGHTS_MISSING_ERRORS as err:
        if is_folder:
            raise missing_weights_error(
                what, name, folder=Path(name).expanduser().absolute(), problem="a part failed to load", cause=err
            ) from err
        raise missing_weights_error(what, name, cause=err) from err


def check_model_folder(what: str, folder: Path, needed: list[str], layout: str) -> None:
    """Raise ModelNotFoundError if `folder` is absent or lacks a `needed` path (`layout` describes the layout)."""
    if not folder.is_dir():
        raise missing_weights_error(what, str(folder), folder=folder.absolute(), problem="it does not exist")
    missing = [n for n in needed if not (folder / n).exists()]
    if missing:
        problem = f"missing {', '.join(missing)} ({layout})"
        raise missing_weights_error(what, str(folder), folder=folder.absolute(), problem=problem)
