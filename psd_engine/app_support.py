"""Non-UI helpers for the Gradio app (app.py): settings, input checks, run folders, stop handling, curves.

app.py only wires components; everything here works without Gradio and is tested on its own.
The one place that knows about Hugging Face ZeroGPU is `gpu_task()`.
"""
from __future__ import annotations

import contextlib
import math
import os
import secrets
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

import numpy as np
import pandas as pd

from .config import METHODS, ConfigError, RunConfig, list_presets, preset_info, resolve_config
from .events import ErrorEvent, FinalEvent, ProgressEvent, WarningEvent

F = TypeVar("F", bound=Callable[..., Any])

# The parameters of the public /generate endpoint, in order (the API contract).
API_PARAMETERS = (
    "prompt", "negative_prompt", "preset", "method", "guidance_scale",
    "preference_scale", "neg_lr", "steps", "preview_every", "seed",
)
RANDOM_SEED = -1  # a seed of -1 asks for a fresh random seed (recorded in config.json)
MAX_SEED = 2**31 - 1


class InputError(ValueError):
    """A request value is invalid; the message names the value and says how to fix it."""


# ----------------------------------------------------------------------------- settings

@dataclass
class ParamRange:
    """Allowed interval (and slider step) of one numeric request parameter."""

    minimum: float
    maximum: float
    step: float


def _default_ranges() -> dict[str, ParamRange]:
    return {
        "guidance_scale": ParamRange(0.0, 200.0, 0.5),  # SD-based DreamFusion runs use up to 100
        "preference_scale": ParamRange(0.0, 10.0, 0.1),
        "neg_lr": ParamRange(0.0, 0.01, 0.0001),
        "steps": ParamRange(1, 5000, 1),
        "preview_every": ParamRange(1, 500, 1),
        "resolution": ParamRange(16, 512, 16),
        "seed": ParamRange(RANDOM_SEED, MAX_SEED, 1),
    }


# environment variable -> AppSettings field
_ENV = {
    "PSD3D_OUTPUTS": "outputs_root",
    "PSD3D_KEEP_RUNS": "keep_runs",
    "PSD3D_MAX_AGE_HOURS": "max_age_hours",
    "PSD3D_QUEUE_SIZE": "queue_size",
    "PSD3D_MAX_PROMPT_CHARS": "max_prompt_chars",
    "PSD3D_DEFAULT_PRESET": "default_preset",
    "PSD3D_GPU_DURATION": "gpu_duration",
}


@dataclass
class AppSettings:
    """Settings of the web app (not of a run); each can be set by the environment variable in _ENV."""

    outputs_root: str = field(default_factory=lambda: os.path.join(tempfile.gettempdir(), "psd3d-outputs"))
    keep_runs: int = 20  # newest run folders kept under outputs_root ...
    max_age_hours: float = 24.0  # ... and none older than this
    queue_size: int = 16  # requests waiting beyond this are refused ("queue is full")
    max_prompt_chars: int = 300  # CLIP text encoders see 77 tokens; longer prompts are cut silently
    default_preset: str = ""  # "" = psd_engine.engine.default_preset()
    gpu_duration: int = 300  # seconds one run may hold a ZeroGPU device
    stop_wait_seconds: float = 10.0  # how long Stop waits for the run to wind down before answering
    preset_recheck_seconds: float = 60.0  # a preset found unavailable is checked again after this
    cache_sweep_seconds: int = 3600  # Gradio's own file cache is swept this often ...
    cache_max_age_seconds: int = 86400  # ... removing files older than this
    ranges: dict[str, ParamRange] = field(default_factory=_default_ranges)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> AppSettings:
        """Defaults overridden by PSD3D_* environment variables; a bad value raises InputError."""
        env = os.environ if environ is None else environ
        settings = cls()
        types = {f.name: f.type for f in fields(cls)}
        for var, name in _ENV.items():
            raw = env.get(var)
            if raw is None or raw == "":
                continue
            kind = {"int": int, "float": float}.get(str(types[name]), str)
            try:
                setattr(settings, name, kind(raw))
            except ValueError:
                wanted = {int: "a whole number", float: "a number"}.get(kind, "text")
                raise InputError(f"environment variable {var}={raw!r} must be {wanted}") from None
        return settings


# ----------------------------------------------------------------------------- ZeroGPU

def gpu_task(duration: int) -> Callable[[F], F]:
    """`spaces.GPU(duration=...)` on Hugging Face ZeroGPU Spaces, a no-op decorator elsewhere.

    ZeroGPU attaches a GPU only inside functions decorated this way; the `spaces` package is
    present only on Spaces, so import it lazily and fall back to the undecorated function.
    """
    try:
        import spaces  # type: ignore[import-not-found]
    except ImportError:
        return lambda fn: fn
    return spaces.GPU(duration=duration)


# ----------------------------------------------------------------------------- run folders

def make_run_dir(root: str | Path) -> str:
    """A new, empty folder for one request under `root` (created if needed)."""
    Path(root).mkdir(parents=True, exist_ok=True)
    return tempfile.mkdtemp(prefix=time.strftime("run-%Y%m%d-%H%M%S-"), dir=root)


def cleanup_outputs(
    root: str | Path, keep: int, max_age_hours: float, protect: set[str] | frozenset[str] = frozenset(),
    now: float | None = None,
) -> list[str]:
    """Delete run folders under `root` beyond the newest `keep` or older than `max_age_hours`; returns them.

    Folders in `protect` (runs still going) are never deleted.
    """
    base = Path(root)
    if not base.is_dir():
        return []
    now = time.time() if now is None else now
    protected = {str(Path(p).resolve()) for p in protect}
    folders = sorted((p for p in base.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True)
    removed = []
    for index, folder in enumerate(folders):
        too_old = now - folder.stat().st_mtime > max_age_hours * 3600.0
        if (index >= keep or too_old) and str(folder.resolve()) not in protected:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(str(folder))
    return removed


def files_in(folder: str | Path) -> dict[str, str]:
    """Files directly in `folder`, keyed by stem (metrics.jsonl -> 'metrics')."""
    base = Path(folder)
    if not base.is_dir():
        return {}
    return {p.stem: str(p) for p in sorted(base.iterdir()) if p.is_file()}


# ----------------------------------------------------------------------------- inputs

_preset_checks: dict[str, tuple[float, str | None]] = {}  # preset -> (checked at, problem or None)


def preset_problem(preset: str, recheck_after: float = 60.0) -> str | None:
    """None if the preset can run here, else what is missing and how to get it (engine.check_preset).

    A success is remembered for good (weights do not vanish while serving); a failure is
    re-checked after `recheck_after` seconds, since a failed check can take long (hub retries).
    """
    checked = _preset_checks.get(preset)
    if checked is not None and (checked[1] is None or time.monotonic() - checked[0] < recheck_after):
        return checked[1]
    from .engine import check_preset

    message = check_preset(preset)
    _preset_checks[preset] = (time.monotonic(), message)
    return message


def preset_choices() -> list[tuple[str, str]]:
    """(label, name) pairs for a preset dropdown; offline presets say so."""
    out = []
    for name in list_presets():
        offline = preset_info(name)["offline"]
        out.append((f"{name} (offline)" if offline else f"{name} (GPU + hub weights)", name))
    return out


def ranges_for(cfg: RunConfig, settings: AppSettings) -> dict[str, ParamRange]:
    """The settings' ranges, widened so that the preset's own defaults always lie inside."""
    defaults = ui_defaults(cfg)
    out = {}
    for name, r in settings.ranges.items():
        value = defaults.get(name)
        lo, hi = r.minimum, r.maximum
        if isinstance(value, (int, float)) and name != "seed":
            lo, hi = min(lo, value), max(hi, value)
        out[name] = ParamRange(lo, hi, r.step)
    return out


def ui_defaults(cfg: RunConfig) -> dict[str, Any]:
    """The request values a preset starts from."""
    g = cfg.guidance
    return {
        "method": g.method, "guidance_scale": g.guidance_scale, "preference_scale": g.preference_scale,
        "neg_lr": g.neg_lr, "steps": cfg.steps, "preview_every": cfg.preview_every,
        "resolution": cfg.render.resolution, "seed": cfg.seed,
    }


def _num(x: float) -> str:
    """A number for messages: whole numbers without exponent or '.0'."""
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _check_number(name: str, value: Any, r: ParamRange, whole: bool) -> float | int:
    span = f"between {_num(r.minimum)} and {_num(r.maximum)}"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"{name} must be a number {span}; got {value!r}")
    if not r.minimum <= value <= r.maximum:
        raise InputError(f"{name} must be {span}; got {_num(value)}")
    if whole:
        if float(value) != int(value):
            raise InputError(f"{name} must be a whole number {span}; got {_num(value)}")
        return int(value)
    return float(value)


def check_prompt(name: str, text: Any, settings: AppSettings, required: bool) -> str:
    """The stripped prompt, or InputError naming `name` if it is empty (when required) or too long."""
    if text is None:
        text = ""
    if not isinstance(text, str):
        raise InputError(f"The {name} must be text; got {type(text).__name__}")
    text = text.strip()
    if required and not text:
        raise InputError(f"The {name} is empty: describe the object to make, e.g. 'a red cube'.")
    if len(text) > settings.max_prompt_chars:
        raise InputError(
            f"The {name} is too long ({len(text)} characters); keep it to {settings.max_prompt_chars} characters "
            "(the text encoder reads only the first 77 tokens)."
        )
    return text


def build_run_config(
    settings: AppSettings,
    prompt: Any,
    negative_prompt: Any,
    preset: Any,
    method: Any,
    guidance_scale: Any = None,
    preference_scale: Any = None,
    neg_lr: Any = None,
    steps: Any = None,
    preview_every: Any = None,
    seed: Any = None,
    resolution: Any = None,
    out_dir: str = "",
) -> RunConfig:
    """Check one request (None = the preset's default) and resolve it into a RunConfig; raises InputError."""
    prompt = check_prompt("prompt", prompt, settings, required=True)
    negative_prompt = check_prompt("negative prompt", negative_prompt, settings, required=False)
    presets = list_presets()
    if preset not in presets:
        raise InputError(f"preset must be one of {', '.join(presets)}; got {preset!r}")
    base = resolve_config(preset)
    if method is None or method == "":
        method = base.guidance.method
    if method not in METHODS:
        raise InputError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    ranges = ranges_for(base, settings)
    defaults = ui_defaults(base)
    given = {
        "guidance_scale": guidance_scale, "preference_scale": preference_scale, "neg_lr": neg_lr,
        "steps": steps, "preview_every": preview_every, "seed": seed, "resolution": resolution,
    }
    whole = {"steps", "preview_every", "seed", "resolution"}
    values = {
        name: defaults[name] if value is None else _check_number(name, value, ranges[name], name in whole)
        for name, value in given.items()
    }
    if values["seed"] == RANDOM_SEED:
        values["seed"] = secrets.randbelow(MAX_SEED + 1)
    overrides = {
        "guidance": {
            "method": method,
            "guidance_scale": values["guidance_scale"],
            "preference_scale": values["preference_scale"],
            "neg_lr": values["neg_lr"],
        },
        "render": {"resolution": values["resolution"]},
    }
    try:
        return resolve_config(
            preset, overrides, prompt=prompt, negative_prompt=negative_prompt, seed=values["seed"],
            steps=values["steps"], preview_every=values["preview_every"], out_dir=out_dir,
        )
    except ConfigError as err:
        raise InputError(str(err)) from None


# ----------------------------------------------------------------------------- stopping runs

@dataclass(eq=False)  # compared (and hashed) by identity: two runs are never "equal"
class ActiveRun:
    """One run in progress: its stop flag, its folder, and how far it got."""

    key: str
    out_dir: str
    stop: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    step: int = 0
    total: int = 0


class RunRegistry:
    """Runs in progress keyed by '<session>:<slot>', so that a Stop press reaches only its own run.

    Gradio's cancels= stops iterating a generator but cannot interrupt the step in flight; the
    engine checks this Event every step, so setting it ends the run within one step.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[str, ActiveRun] = {}

    def start(self, key: str, out_dir: str) -> ActiveRun:
        """Register a new run under `key`, stopping any run the same key still had."""
        run = ActiveRun(key=key, out_dir=out_dir)
        with self._lock:
            old = self._runs.get(key)
            if old is not None:
                old.stop.set()
            self._runs[key] = run
        return run

    def get(self, key: str) -> ActiveRun | None:
        """The run registered under `key`, if any."""
        with self._lock:
            return self._runs.get(key)

    def stop(self, prefix: str) -> list[ActiveRun]:
        """Set the stop flag of every run whose key is `prefix` or starts with `prefix:`."""
        with self._lock:
            runs = [r for k, r in self._runs.items() if k == prefix or k.startswith(prefix + ":")]
        for run in runs:
            run.stop.set()
        return runs

    def finish(self, run: ActiveRun) -> None:
        """Mark `run` as ended and forget it (unless a newer run took its key)."""
        run.done.set()
        with self._lock:
            if self._runs.get(run.key) is run:
                del self._runs[run.key]

    def active_dirs(self) -> set[str]:
        """Output folders of runs still going (protected from cleanup)."""
        with self._lock:
            return {r.out_dir for r in self._runs.values()}


REGISTRY = RunRegistry()
_GPU_SECONDS = AppSettings.from_env().gpu_duration


@gpu_task(_GPU_SECONDS)
def run_on_device(cfg: RunConfig, run_key: str) -> Iterator[Any]:
    """The engine's events for `cfg`; the only function that touches the GPU (hence gpu_task).

    It takes the run's key rather than its Event so that its arguments stay picklable for
    ZeroGPU, which runs it in a worker process (there, Stop relies on Gradio's cancels=).
    """
    from .engine import generate

    run = REGISTRY.get(run_key)
    events = generate(cfg, run.stop if run is not None else None)
    with contextlib.closing(events):
        yield from events


# ----------------------------------------------------------------------------- curves and status

# metric key -> series name. "reward" scores the render itself (every method reports it, so the
# Compare tab plots it); the others score PSD's K noisy one-step samples of that step.
REWARD_SERIES = (("reward", "render"), ("reward_win", "winner"), ("reward_lose", "loser"), ("reward_samples", "mean"))
RENDER_REWARD = (("reward", "render reward"),)


def empty_curve_frame() -> pd.DataFrame:
    """An empty (step, value, series) table whose column types match a filled one (series is text)."""
    return pd.DataFrame({"step": pd.Series(dtype=float), "value": pd.Series(dtype=float),
                         "series": pd.Series(dtype=str)})


class MetricCurve:
    """Metrics of the progress events of one run, as rows and as long DataFrames for gr.LinePlot."""

    def __init__(self, name: str = "") -> None:
        self.name = name
        self.rows: list[dict[str, float]] = []

    def add(self, step: int, metrics: dict[str, Any]) -> None:
        """Append the finite numeric metrics of one step."""
        row: dict[str, float] = {"step": float(step)}
        for key, value in metrics.items():
            with contextlib.suppress(TypeError, ValueError):
                number = float(value)
                if math.isfinite(number):
                    row[key] = number
        self.rows.append(row)

    def frame(self, keys: tuple[tuple[str, str], ...]) -> pd.DataFrame:
        """Long table (step, value, series) of the given (metric key, series name) pairs."""
        prefix = f"{self.name}: " if self.name else ""
        records = [
            {"step": row["step"], "value": row[key], "series": prefix + series}
            for row in self.rows for key, series in keys if key in row
        ]
        return empty_curve_frame() if not records else pd.DataFrame(records, columns=["step", "value", "series"])

    def reward_frame(self) -> pd.DataFrame:
        """Reward of the render and of the winner / loser / mean noisy sample against step."""
        return self.frame(REWARD_SERIES)

    def loss_frame(self) -> pd.DataFrame:
        """Total loss against step."""
        return self.frame((("loss", "loss"),))


@dataclass
class RunUpdate:
    """What the UI shows at one moment of a run."""

    state: str  # "running", "done", "stopped" or "failed"
    step: int
    total: int
    images: list[np.ndarray]
    curve: MetricCurve
    status: str
    label: str
    seed: int
    outputs: dict[str, str] = field(default_factory=dict)  # files written (all of them at the end)
    message: str = ""  # why the run stopped or failed
    warnings: list[str] = field(default_factory=list)

    @property
    def fraction(self) -> float:
        """Share of the steps done, in [0, 1]."""
        return min(1.0, self.step / self.total) if self.total else 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-able summary for API clients (state, step, label, curve rows, ...)."""
        return {
            "state": self.state, "step": self.step, "total": self.total, "status": self.status,
            "label": self.label, "seed": self.seed, "message": self.message, "warnings": self.warnings[-5:],
            "curve": self.curve.rows,
        }


class _Rate:
    """Steps per second between the first and the latest progress event.

    The first event's elapsed time includes loading the models, so there is no honest rate
    (nor ETA) until the second event.
    """

    def __init__(self) -> None:
        self.first: tuple[int, float] | None = None

    def __call__(self, step: int, elapsed: float) -> float | None:
        if self.first is None:
            self.first = (step, elapsed)
            return None
        first_step, first_time = self.first
        if step > first_step and elapsed > first_time:
            return (step - first_step) / (elapsed - first_time)
        return None


def format_duration(seconds: float) -> str:
    """'42 s', '3 min 05 s' or '1 h 02 min'."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {(seconds % 3600) // 60:02d} min"


def format_progress(step: int, total: int, rate: float | None) -> str:
    """'Step 40/120 · 3.20 it/s · ETA 25 s' ('measuring speed…' while the rate is unknown)."""
    if rate is None or rate <= 0:
        return f"Step {step}/{total} · measuring speed…"
    return f"Step {step}/{total} · {rate:.2f} it/s · ETA {format_duration((total - step) / rate)}"


def stream_run(cfg: RunConfig, run: ActiveRun, curve: MetricCurve | None = None) -> Iterator[RunUpdate]:
    """Drive one engine run and turn its events into RunUpdates; always ends with a non-running one."""
    curve = curve if curve is not None else MetricCurve()
    rate = _Rate()
    images: list[np.ndarray] = []
    warnings: list[str] = []
    label = ""
    run.total = cfg.steps
    base = {"total": cfg.steps, "seed": cfg.seed, "curve": curve, "warnings": warnings}
    yield RunUpdate("running", 0, images=[], status="Loading models…", label="", **base)
    events = run_on_device(cfg, run.key)
    try:
        for event in events:
            if isinstance(event, ProgressEvent):
                run.step = event.step
                label = event.label or label
                images = list(event.images)
                if event.step == 0:  # the starting shape: no metrics, and no speed to measure yet
                    yield RunUpdate("running", 0, images=images, status="Starting shape shown · loading models…",
                                    label=label, **base)
                    continue
                curve.add(event.step, event.metrics)
                status = format_progress(event.step, event.total, rate(event.step, event.elapsed))
                if event.skipped_steps:
                    status += f" · {event.skipped_steps} steps skipped (NaN/Inf)"
                if warnings:
                    status += "\n\n⚠ " + warnings[0]  # e.g. the prompt is far from what the model knows
                yield RunUpdate("running", event.step, images=images, status=status, label=label, **base)
            elif isinstance(event, WarningEvent):
                warnings.append(event.message)
                yield RunUpdate("running", run.step, images=images, status="⚠ " + event.message, label=label, **base)
            elif isinstance(event, FinalEvent):
                label = event.label or label
                outputs = files_in(event.out_dir)
                outputs.update(
                    {"glb": event.glb, "video": event.video, "views": event.views,
                     "metrics": event.metrics, "config": event.config}
                )
                seconds = event.summary.get("seconds")
                status = f"Done: {cfg.steps} steps" + (f" in {format_duration(seconds)}" if seconds else "")
                yield RunUpdate("done", cfg.steps, images=images, status=status, label=label,
                                outputs=outputs, **base)
                return
            elif isinstance(event, ErrorEvent):
                label = event.label or label
                outputs = dict(event.outputs) or files_in(run.out_dir)
                if run.stop.is_set():
                    status = f"Stopped by user at step {event.step}/{cfg.steps}."
                    state = "stopped"
                else:
                    status = f"Failed at step {event.step}/{cfg.steps}: {event.message}"
                    state = "failed"
                yield RunUpdate(state, event.step, images=images, status=status, label=label,
                                outputs=outputs, message=event.message, **base)
                return
    except Exception as err:  # noqa: BLE001 - any engine crash must still show what was made
        message = f"{type(err).__name__}: {err}"
        yield RunUpdate("failed", run.step, images=images, status=f"Failed at step {run.step}/{cfg.steps}: {message}",
                        label=label, outputs=files_in(run.out_dir), message=message, **base)
        return
    finally:
        events.close()  # runs also when our consumer stops early (Stop, cancel, disconnect)
    # the engine ended without a final event (it was closed): report it as stopped
    yield RunUpdate("stopped", run.step, images=images, status=f"Stopped at step {run.step}/{cfg.steps}.",
                    label=label, outputs=files_in(run.out_dir), message="stopped", **base)
