"""The streaming loop on the tiny-random preset: events, files, determinism, stop, NaN handling."""
from __future__ import annotations

import gc
import json
import threading

import numpy as np
import pytest
import torch

from psd_engine.config import load_config, resolve_config
from psd_engine.engine import TINY_RANDOM_LABEL, generate
from psd_engine.events import ErrorEvent, FinalEvent, ProgressEvent, WarningEvent
from psd_engine.guidance.sds import SDSGuidance
from psd_engine.scene.field import GridField


def tiny_cfg(tmp_path, method="psd", steps=6, preview_every=2, seed=0, **top):
    """A small tiny-random run writing into tmp_path."""
    return resolve_config(
        "tiny-random", [f"guidance.method={method}"], prompt="a red cube", steps=steps,
        preview_every=preview_every, seed=seed, out_dir=str(tmp_path), **top,
    )


def rows(path):
    return [json.loads(line) for line in open(path)]


def test_generate_streams_progress_and_writes_all_files(tmp_path):
    events = list(generate(tiny_cfg(tmp_path)))
    progress = [e for e in events if isinstance(e, ProgressEvent)]
    # step 0 (the starting shape, before the models load) and step 1 too: the first pictures come at once
    assert [e.step for e in progress] == [0, 1, 2, 4, 6]
    for e in progress:
        assert e.total == 6 and e.label == TINY_RANDOM_LABEL
        assert len(e.images) == 4
        assert all(im.dtype == np.uint8 and im.ndim == 3 and im.shape[2] == 3 for im in e.images)
    assert progress[0].metrics == {}
    for e in progress[1:]:
        assert {"loss", "reward", "reward_win", "reward_lose", "grad_norm"} <= set(e.metrics)
    final = events[-1]
    assert isinstance(final, FinalEvent) and final.label == TINY_RANDOM_LABEL
    for path in (final.glb, final.video, final.views, final.metrics, final.config):
        assert (tmp_path / path.split("/")[-1]).stat().st_size > 0
    logged = rows(final.metrics)
    assert [r["step"] for r in logged] == [1, 2, 3, 4, 5, 6]
    assert all(r["reward_win"] >= r["reward_lose"] for r in logged)
    assert "neg_reward" in logged[0]  # psd adapts the negative embedding at step 0
    # The saved config reproduces the run's configuration.
    assert load_config(final.config) == tiny_cfg(tmp_path)


def test_same_seed_same_metrics(tmp_path):
    def metrics(folder, seed):
        list(generate(tiny_cfg(folder, steps=4, seed=seed)))
        return [{k: v for k, v in r.items() if k != "time"} for r in rows(folder / "metrics.jsonl")]

    a = metrics(tmp_path / "a", 1)
    b = metrics(tmp_path / "b", 1)
    c = metrics(tmp_path / "c", 2)
    assert a == b
    assert a != c


def test_closing_the_generator_stops_the_run_and_frees_it(tmp_path):
    cfg = tiny_cfg(tmp_path, steps=50, preview_every=3)
    cfg.preview_start = cfg.preview_first_step = False
    gen = generate(cfg)
    first = next(gen)
    assert isinstance(first, ProgressEvent) and first.step == 3
    gen.close()
    assert len(rows(tmp_path / "metrics.jsonl")) == 3  # no step ran after the close
    assert not (tmp_path / "model.glb").exists()
    gc.collect()
    assert not [o for o in gc.get_objects() if isinstance(o, GridField)]


def test_stop_event_ends_within_one_step(tmp_path):
    stop = threading.Event()
    gen = generate(tiny_cfg(tmp_path, steps=50, preview_every=2), stop_event=stop)
    assert next(gen).step == 0
    assert next(gen).step == 1
    assert next(gen).step == 2
    stop.set()
    event = next(gen)
    assert isinstance(event, ErrorEvent)
    assert event.message == "stopped by user at step 2"
    assert "config" in event.outputs and "metrics" in event.outputs
    with pytest.raises(StopIteration):
        next(gen)


def _nan_on(steps):
    original = SDSGuidance.__call__

    def patched(self, images, cond, prompts, generator, step=0, camera=None):
        out = original(self, images, cond, prompts, generator, step, camera)
        if step in steps:
            out["loss_sds"] = out["loss_sds"] * float("nan")
        return out

    return patched


def test_nan_step_is_skipped_and_reported(tmp_path, monkeypatch):
    monkeypatch.setattr(SDSGuidance, "__call__", _nan_on({1}))
    cfg = tiny_cfg(tmp_path, method="sds", steps=4)
    events = list(generate(cfg))
    warnings = [e for e in events if isinstance(e, WarningEvent)]
    assert len(warnings) == 1 and warnings[0].step == 2 and "skipped" in warnings[0].message
    assert isinstance(events[-1], FinalEvent)
    logged = rows(tmp_path / "metrics.jsonl")
    assert [r["skipped"] for r in logged] == [0.0, 1.0, 0.0, 0.0]


def test_persistent_nan_ends_with_clear_error_keeping_outputs(tmp_path, monkeypatch):
    monkeypatch.setattr(SDSGuidance, "__call__", _nan_on(set(range(100))))
    cfg = tiny_cfg(tmp_path, method="sds", steps=20)
    cfg.optim.max_nonfinite_steps = 3
    events = list(generate(cfg))
    error = events[-1]
    assert isinstance(error, ErrorEvent)
    assert "diverged" in error.message and "3 steps in a row" in error.message
    assert error.step == 3
    assert {"config", "metrics", "views"} <= set(error.outputs)


def test_missing_model_gives_clear_error_event(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = tiny_cfg(tmp_path)
    cfg.prior.tiny_random = False
    cfg.prior.model = str(tmp_path / "no-such-model")
    start, error = list(generate(cfg))  # the starting shape comes before the models load
    assert isinstance(start, ProgressEvent) and start.step == 0
    assert isinstance(error, ErrorEvent) and error.step == 0
    assert str(tmp_path / "no-such-model") in error.message
    assert "tiny-random" in error.message
    assert set(error.outputs) == {"config", "metrics"}  # nothing else was made


def test_renders_change_as_the_field_is_optimised(tmp_path):
    events = [e for e in generate(tiny_cfg(tmp_path, method="sds", steps=6, preview_every=3)) if isinstance(e, ProgressEvent)]
    assert [e.step for e in events] == [0, 1, 3, 6]
    first, last = (np.stack(e.images).astype(float) for e in (events[0], events[-1]))
    assert np.abs(first - last).mean() > 0.1
    assert torch.get_num_threads() >= 1


def test_sharpening_term_runs_on_schedule_and_only_with_opacity_regularisers(tmp_path):
    cfg = resolve_config(
        "tiny-random", ["guidance.method=sds", "optim.lambda_entropy=1", "optim.sharpen_resolution=24",
                        "optim.sharpen_every=2", "optim.sharpen_start=0.5"],
        prompt="a red cube", steps=8, preview_every=8, seed=0, out_dir=str(tmp_path),
    )
    assert isinstance(list(generate(cfg))[-1], FinalEvent)
    sharpened = [r["step"] for r in rows(tmp_path / "metrics.jsonl") if "loss_sharpen" in r]
    # 0-based steps 4 and 6 (>= 0.5 * 8, every 2nd) are logged as steps 5 and 7.
    assert sharpened == [5, 7]
    assert all(r["loss_sharpen"] > 0 for r in rows(tmp_path / "metrics.jsonl") if "loss_sharpen" in r)

    off = resolve_config("tiny-random", ["guidance.method=sds", "optim.sharpen_resolution=24"], prompt="a red cube",
                         steps=4, preview_every=4, out_dir=str(tmp_path / "off"))
    list(generate(off))  # no opacity regulariser: nothing to sharpen with
    assert not [r for r in rows(tmp_path / "off" / "metrics.jsonl") if "loss_sharpen" in r]


def test_bad_sharpen_settings_are_refused_with_the_field_named():
    from psd_engine.config import ConfigError

    with pytest.raises(ConfigError, match="optim.sharpen_resolution must be 0 \\(off\\) or in \\[8, 1024\\]"):
        resolve_config("tiny-random", ["optim.sharpen_resolution=4"])
    with pytest.raises(ConfigError, match="optim.sharpen_every must be >= 1"):
        resolve_config("tiny-random", ["optim.sharpen_every=0"])
    with pytest.raises(ConfigError, match="field.blob_norm must be >= 1"):  # before any model loads
        resolve_config("tiny-random", ["field.blob_norm=0.5"])


@pytest.mark.parametrize("camera_input", ["features", "map"])
def test_a_camera_conditioned_prior_gets_each_render_camera(tmp_path, monkeypatch, camera_input):
    """The engine hands the prior the features (or map) of the cameras it rendered from (every prior call)."""
    from psd_engine.models.tiny import build_tiny_pixel
    from psd_engine.models.unet_prior import UNetPrior

    if camera_input == "map":
        folder = build_tiny_pixel(tmp_path / "prior", camera_map=True)
    else:
        folder = build_tiny_pixel(tmp_path / "prior", camera_harmonics=(1, 2))
    seen = []
    original = UNetPrior.predict_noise

    def recording(self, z_t, t, text_emb, camera=None):
        seen.append(camera)
        return original(self, z_t, t, text_emb, camera=camera)

    monkeypatch.setattr(UNetPrior, "predict_noise", recording)
    cfg = resolve_config(
        "tiny-random", ["guidance.method=psd", "prior.kind=pixel", f"prior.model={folder}", "prior.tiny_random=false",
                        "camera.batch_size=2", "guidance.num_samples=2"],
        prompt="a red cube", steps=2, preview_every=2, out_dir=str(tmp_path / "run"),
    )
    assert isinstance(list(generate(cfg))[-1], FinalEvent)
    shape = (6,) if camera_input == "features" else (3, 32, 32)
    assert seen and all(c is not None and tuple(c.shape[1:]) == shape for c in seen)
    cfg_noise_calls = [c for c in seen if c.shape[0] == 2 * 2 * 2]  # (cond + negative) x K samples x batch
    assert cfg_noise_calls
    for c in cfg_noise_calls:
        torch.testing.assert_close(c[:4], c[4:])  # the negative half sees the same cameras
        torch.testing.assert_close(c[2:4], c[:2])  # each of the K samples of a render too
        assert not torch.allclose(c[0], c[1])  # the batch's two cameras differ
        if camera_input == "features":
            elevation = torch.rad2deg(torch.atan2(c[:, 0], c[:, 1]))
        else:
            # The map's centre ray points at the origin; the pixel above it has the camera's up direction.
            up = torch.nn.functional.normalize(c[:, :, 0, 16] - c[:, :, 31, 16], dim=1)
            elevation = torch.rad2deg(torch.acos(up[:, 1].clamp(-1, 1)))
        lo, hi = cfg.camera.elevation_range
        assert bool(((elevation >= lo - 0.5) & (elevation <= hi + 0.5)).all())
