"""Typed events yielded by `psd_engine.engine.generate()` while a run streams."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class ProgressEvent:
    """At the start (step 0: the starting shape, no metrics), every `preview_every` steps and at the last step."""

    step: int  # number of optimisation steps done (0: the starting shape, shown while the models load)
    total: int
    metrics: dict[str, float]  # this step's loss/reward/diagnostics
    images: list[np.ndarray]  # current multi-view renders, uint8 (H, W, 3)
    elapsed: float  # seconds since the run started
    label: str = ""  # e.g. "tiny-random: plumbing test, random weights - not a real generation"
    skipped_steps: int = 0  # steps skipped so far because of NaN/Inf


@dataclass
class WarningEvent:
    """Something the user should know that does not end the run (a skipped NaN step, a far prompt)."""

    step: int
    message: str


@dataclass
class FinalEvent:
    """The run finished: paths of everything written."""

    out_dir: str
    glb: str
    video: str
    views: str
    metrics: str  # metrics.jsonl
    config: str  # config.json
    summary: dict[str, Any] = field(default_factory=dict)
    label: str = ""


@dataclass
class ErrorEvent:
    """The run ended early with an error; `outputs` names what was written before it."""

    step: int
    message: str
    outputs: dict[str, str] = field(default_factory=dict)
    label: str = ""


Event = ProgressEvent | WarningEvent | FinalEvent | ErrorEvent
