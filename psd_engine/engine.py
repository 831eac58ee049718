"""The streaming loop: `generate(config)` turns a prompt into a 3D asset and yields events as it works.

Usage:
    for event in generate(resolve_config("shapes", prompt="a red cube")):
        ...  # ProgressEvent at step 0 (the starting shape) and every preview_every steps, then FinalEvent (or ErrorEvent)

Closing the generator (or setting `stop_event`) stops the run within one step and frees its
memory. A step whose loss or gradients are NaN/Inf is skipped and reported; after
`optim.max_nonfinite_steps` such steps in a row the run ends with an ErrorEvent that still
names what was written.
"""
from __future__ import annotations

import functools
import gc
import json
import math
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import torch

from .config import ConfigError, RunConfig, preset_info, resolve_config, save_config
from .events import ErrorEvent, Event, FinalEvent, ProgressEvent, WarningEvent
from .export import ExportError, export_all
from .export.views import to_uint8
from .guidance import build_guidance
from .knowledge import prompt_warning, view_words_warning
from .models import load_prior
from .models.base import ModelNotFoundError
from .models.hub import local_files_only
from .profiling import StepTimer
from .prompts import PromptEmbeddings
from .rewards import load_reward
from .scene import build_field
from .scene.background import Background
from .scene.cameras import orbit_cameras, sample_cameras
from .scene.regularisers import entropy_loss, opacity_loss, orient_loss, tv_loss
from .scene.renderer import VolumeRenderer

TINY_RANDOM_LABEL = "tiny-random: random weights, a plumbing test - NOT a real generation"


def resolve_device(name: str) -> torch.device:
    """'auto' -> cuda if available, else mps, else cpu."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(name)


def run_label(cfg: RunConfig) -> str:
    """The label shown next to every output of this run (non-empty for test models)."""
    if cfg.offline_label:
        return cfg.offline_label
    if cfg.prior.tiny_random or cfg.reward.tiny_random:
        return TINY_RANDOM_LABEL
    return ""


def check_preset(name: str) -> str | None:
    """None if the preset's weights can be loaded here, else a message saying what is missing."""
    try:
        cfg = resolve_config(name)
        device = resolve_device(cfg.device)
        with local_files_only():  # "available" means here, now: never wait on a download
            load_prior(cfg.prior, device)
            if cfg.reward.kind != "none":
                load_reward(cfg.reward, device)
    except (ModelNotFoundError, ConfigError) as err:
        return str(err)
    return None


def default_preset() -> str:
    """The preset used when none is named: the shipped offline model unless a GPU and SD weights exist."""
    if torch.cuda.is_available() and check_preset("sd15-hpsv2") is None:
        return "sd15-hpsv2"
    return "shapes"


class Run:
    """Everything one run owns: models, scene, optimiser, RNG, output folder."""

    def __init__(self, cfg: RunConfig, profile: bool = False, load_models: bool = True) -> None:
        """The scene and output folder (the optimiser at first use); the models too unless load_models is False (then call it)."""
        self.cfg = cfg
        if cfg.threads > 0:
            torch.set_num_threads(cfg.threads)
        self.device = resolve_device(cfg.device)
        self.label = run_label(cfg)
        self.out_dir = Path(cfg.out_dir or "outputs/run")
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.timer = StepTimer(enabled=profile, device=self.device)
        torch.manual_seed(cfg.seed)
        self.generator = torch.Generator(device=self.device).manual_seed(cfg.seed)
        self.field = build_field(cfg.field).to(self.device)
        self.background = Background(cfg.render).to(self.device)
        self.renderer = VolumeRenderer(cfg.render)
        self.preview_cameras = orbit_cameras(
            cfg.camera.preview_views, cfg.camera.preview_elevation, cfg.camera.preview_distance,
            cfg.camera.preview_fovy, device=self.device,
        )
        self.metrics_path = self.out_dir / "metrics.jsonl"
        self.config_path = self.out_dir / "config.json"
        save_config(cfg, self.config_path)
        self.metrics_path.write_text("")
        if load_models:
            self.load_models()

    @functools.cached_property
    def optimizer(self) -> torch.optim.Optimizer:
        """Adam over the field and a learned background, built at first use: a cold process imports
        torch._dynamo for it (about 1 s here), which the starting-shape preview need not wait for."""
        o = self.cfg.optim
        groups = self.field.parameter_groups(o)
        bg_params = [p for p in self.background.parameters() if p.requires_grad]
        if bg_params:
            groups.append({"params": bg_params, "lr": o.background_lr})
        return torch.optim.Adam(groups, betas=o.betas, weight_decay=o.weight_decay)

    def load_models(self) -> None:
        """Load the prior and reward and build the prompts and guidance on them (the slow part of a cold start)."""
        cfg = self.cfg
        self.prior = load_prior(cfg.prior, self.device)
        self.reward = load_reward(cfg.reward, self.device) if cfg.reward.kind != "none" else None
        self.prompts = PromptEmbeddings(self.prior, cfg.prompt, cfg.negative_prompt, cfg.prompt_processing)
        self.guidance = build_guidance(cfg.guidance, self.prior, self.reward, self.prompts.negative, self.timer)

    def shading_at(self, step: int) -> str:
        """Albedo until render.shading_start of the run, then the configured shading."""
        if step < self.cfg.render.shading_start * self.cfg.steps:
            return "albedo"
        return self.cfg.render.shading

    def sharpens_at(self, step: int) -> bool:
        """Whether this step adds the high-resolution silhouette term (optim.sharpen_*)."""
        o = self.cfg.optim
        return (o.sharpen_resolution > 0 and (o.lambda_entropy > 0 or o.lambda_opacity > 0)
                and step >= o.sharpen_start * self.cfg.steps and step % o.sharpen_every == 0)

    def sharpen_loss(self) -> torch.Tensor:
        """Opacity regularisers on one random camera rendered at optim.sharpen_resolution."""
        o = self.cfg.optim
        cams = sample_cameras(self.cfg.camera, 1, self.generator, self.device)
        with self.timer.section("render"):  # opacity only: density lookups, no colour or background
            opacity = self.renderer.opacity(self.field, cams, o.sharpen_resolution, generator=self.generator,
                                            perturb=True)
        return o.sharpen_scale * (o.lambda_entropy * entropy_loss(opacity) + o.lambda_opacity * opacity_loss(opacity))

    def step(self, step: int) -> dict[str, Any]:
        """One optimisation step; returns metrics (with 'skipped' = 1.0 if NaN/Inf was caught)."""
        cfg = self.cfg
        self.guidance.update_step(step, cfg.steps)
        cams = sample_cameras(cfg.camera, cfg.camera.batch_size, self.generator, self.device)
        shading = self.shading_at(step)
        need_normals = cfg.optim.lambda_orient > 0 and shading != "albedo"
        with self.timer.section("render"):
            out = self.renderer.render(
                self.field, cams, cfg.render.resolution, background=self.background, shading=shading,
                generator=self.generator, perturb=True, need_normals=need_normals,
            )
        cond, view_prompts = self.prompts.for_cameras(cams.elevation_deg, cams.azimuth_deg)
        reward_prompts = view_prompts if cfg.reward.use_view_prompt else [cfg.prompt] * len(view_prompts)
        camera = self.prior.camera_condition(cams)
        result = self.guidance(out["rgb"], cond, reward_prompts, self.generator, step=step, camera=camera)
        losses = {k: v for k, v in result.items() if k.startswith("loss_")}
        o = cfg.optim
        if o.lambda_opacity > 0:
            losses["loss_opacity"] = o.lambda_opacity * opacity_loss(out["opacity"])
        if o.lambda_entropy > 0:
            losses["loss_entropy"] = o.lambda_entropy * entropy_loss(out["opacity"])
        if need_normals:
            losses["loss_orient"] = o.lambda_orient * orient_loss(out["weights"], out["normals"], out["dirs"])
        if o.lambda_tv > 0:
            losses["loss_tv"] = o.lambda_tv * tv_loss(self.field)
        if self.sharpens_at(step):
            losses["loss_sharpen"] = self.sharpen_loss()
        loss = sum(losses.values())
        metrics = {k: v for k, v in result.items() if not k.startswith("loss_")}
        metrics.update({k: float(v.detach()) for k, v in losses.items()})
        metrics["loss"] = float(loss.detach())
        self.optimizer.zero_grad(set_to_none=True)
        if not math.isfinite(metrics["loss"]):
            metrics["skipped"] = 1.0
            return metrics
        with self.timer.section("backward"):
            loss.backward()
        grads_ok = all(
            p.grad is None or bool(torch.isfinite(p.grad).all())
            for g in self.optimizer.param_groups for p in g["params"]
        )
        if not grads_ok:
            metrics["skipped"] = 1.0
            return metrics
        with self.timer.section("optimiser"):
            self.optimizer.step()
        metrics["skipped"] = 0.0
        return metrics

    @torch.no_grad()
    def preview(self) -> list:
        """Current multi-view renders as uint8 arrays."""
        out = self.renderer.render(
            self.field, self.preview_cameras, self.cfg.render.preview_resolution,
            background=self.background.display(), shading="albedo", perturb=False,
        )
        return to_uint8(out["rgb"])

    def log(self, step: int, metrics: dict[str, Any], elapsed: float) -> None:
        """Append one JSON row to metrics.jsonl."""
        row = {"step": step, "time": round(elapsed, 4)}
        row.update({k: (round(v, 6) if isinstance(v, float) else v) for k, v in metrics.items()})
        with self.metrics_path.open("a") as f:
            f.write(json.dumps(row) + "\n")

    def outputs(self) -> dict[str, str]:
        """Files written so far."""
        return {p.stem if p.suffix != ".jsonl" else "metrics": str(p) for p in sorted(self.out_dir.iterdir()) if p.is_file()}

    def close(self) -> None:
        """Drop references to models and tensors so their memory can be freed."""
        for name in ("guidance", "field", "optimizer", "background", "prompts", "prior", "reward"):
            if hasattr(self, name):
                setattr(self, name, None)
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()


def generate(
    cfg: RunConfig,
    stop_event: threading.Event | None = None,
    profile: bool = False,
) -> Iterator[Event]:
    """Run text-to-3D for `cfg`, yielding ProgressEvent/WarningEvent and finally FinalEvent or ErrorEvent."""
    started = time.perf_counter()
    label = run_label(cfg)
    try:
        run = Run(cfg, profile=profile, load_models=False)
    except (ConfigError, ValueError) as err:
        yield ErrorEvent(step=0, message=str(err), label=label)
        return
    try:
        if cfg.preview_start:  # the starting shape, while the models load (most of a cold start)
            yield ProgressEvent(step=0, total=cfg.steps, metrics={}, images=run.preview(),
                                elapsed=time.perf_counter() - started, label=run.label)
        try:
            run.load_models()
        except (ModelNotFoundError, ConfigError, ValueError) as err:
            yield ErrorEvent(step=0, message=str(err), outputs=run.outputs(), label=label)
            return
        for warning in (view_words_warning(cfg), prompt_warning(cfg, run.prior.text_encoder)):
            if warning:
                yield WarningEvent(step=0, message=warning)
        yield from _loop(run, cfg, stop_event, started)
    finally:
        run.close()


def _loop(run: Run, cfg: RunConfig, stop_event: threading.Event | None, started: float) -> Iterator[Event]:
    skipped_total = 0
    nonfinite_in_row = 0
    for step in range(cfg.steps):
        if stop_event is not None and stop_event.is_set():
            yield ErrorEvent(step=step, message=f"stopped by user at step {step}", outputs=run.outputs(), label=run.label)
            return
        metrics = run.step(step)
        done = step + 1
        elapsed = time.perf_counter() - started
        if metrics["skipped"]:
            skipped_total += 1
            nonfinite_in_row += 1
            yield WarningEvent(step=done, message=f"step {done}: non-finite loss or gradient, step skipped")
            if nonfinite_in_row >= cfg.optim.max_nonfinite_steps:
                run.log(done, metrics, elapsed)
                message = (
                    f"the run diverged: {nonfinite_in_row} steps in a row gave NaN/Inf (last at step {done}). "
                    "Try a lower optim.lr or guidance.guidance_scale, or set guidance.grad_clip."
                )
                yield _error_with_partial_export(run, done, message)
                return
        else:
            nonfinite_in_row = 0
        run.log(done, metrics, elapsed)
        if done % cfg.preview_every == 0 or done == cfg.steps or (done == 1 and cfg.preview_first_step):
            yield ProgressEvent(
                step=done, total=cfg.steps, metrics=metrics, images=run.preview(), elapsed=elapsed,
                label=run.label, skipped_steps=skipped_total,
            )
    try:
        paths = export_all(run.field, run.renderer, run.background, cfg, run.out_dir)
    except ExportError as err:
        yield ErrorEvent(step=cfg.steps, message=str(err), outputs=run.outputs(), label=run.label)
        return
    yield FinalEvent(
        out_dir=str(run.out_dir), glb=paths["glb"], video=paths["video"], views=paths["views"],
        metrics=str(run.metrics_path), config=str(run.config_path),
        summary={"steps": cfg.steps, "seconds": round(time.perf_counter() - started, 2), "skipped_steps": skipped_total},
        label=run.label,
    )


def _error_with_partial_export(run: Run, step: int, message: str) -> ErrorEvent:
    """An ErrorEvent after trying to export what the field holds, so nothing made is lost."""
    try:
        export_all(run.field, run.renderer, run.background, run.cfg, run.out_dir)
    except (ExportError, RuntimeError, ValueError) as err:
        message += f" (export of the partial result failed: {err})"
    return ErrorEvent(step=step, message=message, outputs=run.outputs(), label=run.label)


def describe_preset(name: str) -> dict[str, Any]:
    """Preset description plus whether it can run here ('available' and 'missing' message)."""
    info = preset_info(name)
    missing = check_preset(name)
    info.update({"available": missing is None, "missing": missing or ""})
    return info
