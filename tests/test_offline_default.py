"""The shipped offline default (preset `shapes`): loads offline, makes the prompted object, warns off-world."""
from __future__ import annotations

import pytest

from psd_engine.config import resolve_config
from psd_engine.engine import Run, check_preset, default_preset
from psd_engine.evaluation import EvalConfig, render_views, score_views
from psd_engine.export import extract_mesh, write_glb
from psd_engine.export.raster import render_glb
from psd_engine.knowledge import known_concepts, prompt_warning, view_words_warning
from psd_engine.scene.cameras import orbit_cameras
from psd_engine.shapes.judge import load_judge
from psd_engine.shapes.world import AZIMUTH_VIEWS, parse_prompt


def test_shapes_preset_is_available_offline_and_the_default(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert check_preset("shapes") is None
    assert default_preset() == "shapes"  # no GPU here


def test_the_preset_names_its_views_as_the_shipped_prior_was_captioned():
    cfg = resolve_config("shapes", prompt="a red cube")
    assert view_words_warning(cfg) is None
    assert cfg.prompt_processing.azimuth_views == AZIMUTH_VIEWS
    other = resolve_config("shapes", ["prompt_processing.azimuth_views=front,right,back,left"], prompt="a red cube")
    assert "prompt_processing.azimuth_views=front,front-right,right,back-right" in view_words_warning(other)


def test_prompt_warning_for_far_prompts_only():
    cfg = resolve_config("shapes", prompt="a red cube")
    assert "a red cube" in known_concepts(cfg) and len(known_concepts(cfg)) >= 30
    assert prompt_warning(cfg) is None
    assert prompt_warning(resolve_config("shapes", prompt="a blue ball")) is None
    warning = prompt_warning(resolve_config("shapes", prompt="a cat sitting on a sofa"))
    assert warning is not None
    assert "only knows simple coloured shapes" in warning and "nearest:" in warning


def _optimise(prompt: str, steps: int, tmp_path, method: str = "psd", glb: bool = False):
    cfg = resolve_config("shapes", [f"guidance.method={method}"], prompt=prompt, steps=steps, seed=0,
                         out_dir=str(tmp_path))
    run = Run(cfg)
    for step in range(steps):
        run.step(step)
    eval_cfg = EvalConfig(views=4)
    judge = load_judge()
    views = render_views(run.field, run.renderer, eval_cfg, run.device)
    scores = score_views(views, prompt, reward=run.reward, judge=judge)
    predicted = judge.predict(views)
    if glb:  # the mesh users download, written and read back as a file, seen from the same cameras
        path = write_glb(extract_mesh(run.field, cfg.export), tmp_path / "model.glb", cfg.export)
        cams = orbit_cameras(eval_cfg.views, eval_cfg.elevation, eval_cfg.distance, eval_cfg.fovy)
        mesh_views = render_glb(path, cams, eval_cfg.resolution)
        scores["glb"] = score_views(mesh_views, prompt, judge=judge)
        scores["glb_predicted"] = judge.predict(mesh_views)
    run.close()
    return scores, predicted


@pytest.mark.slow
def test_short_run_makes_the_prompted_shape_and_colour(tmp_path):
    scores, predicted = _optimise("a red cube", 200, tmp_path, glb=True)
    assert scores["fidelity"] >= 0.75, predicted  # at least 3 of 4 views: a red cube
    assert sum(p == parse_prompt("a red cube") for p in predicted) >= 3
    # The exported GLB too: a red cube from at least 3 of 4 views, with nothing floating beside it.
    assert scores["glb"]["fidelity"] >= 0.75, scores["glb_predicted"]
    assert scores["glb"]["floaters"] == 0.0


@pytest.mark.slow
def test_held_out_pair_comes_out_right(tmp_path):
    scores, predicted = _optimise("a blue cone", 200, tmp_path)
    assert scores["fidelity"] >= 0.75, predicted
