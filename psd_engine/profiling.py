"""Per-step wall-clock accounting by section (render, encode, unet, reward, backward, optimiser)."""
from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager
from typing import Iterator

import torch

SECTIONS = ("render", "encode", "unet", "reward", "backward", "optimiser")
MODEL_SECTIONS = ("encode", "unet", "reward", "backward")  # model forward and backward


class StepTimer:
    """Accumulates seconds per named section; disabled timers cost one attribute check."""

    def __init__(self, enabled: bool = False, device: torch.device | None = None) -> None:
        self.enabled = enabled
        self.sync = enabled and device is not None and device.type == "cuda"
        self.totals: dict[str, float] = defaultdict(float)

    @contextmanager
    def section(self, name: str) -> Iterator[None]:
        """Time the enclosed block under `name` (nested sections are counted in both)."""
        if not self.enabled:
            yield
            return
        if self.sync:
            torch.cuda.synchronize()
        start = time.perf_counter()
        try:
            yield
        finally:
            if self.sync:
                torch.cuda.synchronize()
            self.totals[name] += time.perf_counter() - start

    def pop(self) -> dict[str, float]:
        """Return and reset the accumulated totals."""
        out = dict(self.totals)
        self.totals.clear()
        return out
