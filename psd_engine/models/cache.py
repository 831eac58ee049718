"""An in-process cache of loaded models, shared by the prior and reward loaders."""
from __future__ import annotations

import gc
import threading
from typing import Callable, Generic, Hashable, TypeVar

import torch

Model = TypeVar("Model")


class ModelCache(Generic[Model]):
    """Models loaded once per process, keyed by everything that defines them; safe across threads."""

    def __init__(self) -> None:
        self._models: dict[Hashable, Model] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, load: Callable[[], Model]) -> Model:
        """The model cached under `key`, loaded with `load()` the first time."""
        with self._lock:  # the app may start runs from several threads; load each model once
            if key not in self._models:
                self._models[key] = load()
            return self._models[key]

    def clear(self) -> None:
        """Drop every cached model and free its memory (the next get loads from disk again)."""
        with self._lock:
            self._models.clear()
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
