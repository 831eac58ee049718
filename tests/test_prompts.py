"""View-dependent prompting: DreamFusion's words and the azimuth sectors, mirroring, config checks."""
from __future__ import annotations

import json

import pytest

from psd_engine.config import ConfigError, PromptConfig, load_config, resolve_config, save_config
from psd_engine.knowledge import view_words_warning
from psd_engine.prompts import all_views, azimuth_sector, mirror_view, view_direction, view_prompt
from psd_engine.shapes.world import AZIMUTH_VIEWS

SECTORS = PromptConfig(azimuth_views=AZIMUTH_VIEWS)


@pytest.mark.parametrize("azimuth, name", [
    (0.0, "front"), (22.0, "front"), (-22.0, "front"), (23.0, "front-right"), (45.0, "front-right"),
    (90.0, "right"), (135.0, "back-right"), (180.0, "back"), (-180.0, "back"), (-170.0, "back"),
    (-90.0, "left"), (-45.0, "front-left"), (315.0, "front-left"), (400.0, "front-right"),
])
def test_azimuth_sectors_are_45_degrees_wide_and_centred_on_the_front(azimuth, name):
    assert view_direction(15.0, azimuth, SECTORS) == name
    assert view_direction(70.0, azimuth, SECTORS) == f"overhead {name}"


def test_sector_prompts_and_every_view():
    assert view_prompt("a red cube", "front-right", SECTORS) == "a red cube, front-right view"
    assert view_prompt("a red cube", "overhead left", SECTORS) == "a red cube, left view from above"
    views = all_views(SECTORS)
    assert len(views) == 16 and len({view_prompt("x", v, SECTORS) for v in views}) == 16
    off = PromptConfig(azimuth_views=AZIMUTH_VIEWS, view_dependent=False)
    assert view_prompt("a red cube", "front-right", off) == "a red cube"
    assert azimuth_sector(-22.4, 8) == 0 and azimuth_sector(22.6, 8) == 1


def test_dreamfusion_words_are_unchanged_without_sectors():
    cfg = PromptConfig()
    assert all_views(cfg) == ("front", "side", "back", "overhead")
    assert [view_direction(10.0, a, cfg) for a in (0.0, 60.0, -60.0, 170.0)] == ["front", "side", "side", "back"]
    assert view_direction(70.0, 0.0, cfg) == "overhead"
    assert view_prompt("a red cube", "side", cfg) == "a red cube, side view"


def test_mirroring_swaps_left_and_right_sectors_only():
    assert mirror_view("front-right", SECTORS) == "front-left"
    assert mirror_view("left", SECTORS) == "right"
    assert mirror_view("back-left", SECTORS) == "back-right"
    assert mirror_view("front", SECTORS) == "front" and mirror_view("back", SECTORS) == "back"
    assert mirror_view("overhead front-left", SECTORS) == "overhead front-right"
    for azimuth in range(-180, 180, 7):  # the mirror image is the view from the negated azimuth
        assert mirror_view(view_direction(20.0, azimuth + 0.5, SECTORS), SECTORS) == \
            view_direction(20.0, -azimuth - 0.5, SECTORS)
    assert mirror_view("side", PromptConfig()) == "side"


def test_sectors_are_set_on_the_command_line_and_survive_a_config_round_trip(tmp_path):
    cfg = resolve_config("tiny-random", ["prompt_processing.azimuth_views=front, right, back, left"])
    assert cfg.prompt_processing.azimuth_views == ("front", "right", "back", "left")
    save_config(cfg, tmp_path / "config.json")
    assert json.loads((tmp_path / "config.json").read_text())["prompt_processing"]["azimuth_views"] == \
        ["front", "right", "back", "left"]
    assert load_config(tmp_path / "config.json").prompt_processing.azimuth_views == ("front", "right", "back", "left")


@pytest.mark.parametrize("override, message", [
    ("prompt_processing.azimuth_views=front,front", "must be distinct, non-empty names"),
    ("prompt_processing.view_format=, view", "view_format must hold one '{}'"),
])
def test_bad_sector_settings_are_refused(override, message):
    with pytest.raises(ConfigError, match=message):
        resolve_config("tiny-random", ["prompt_processing.azimuth_views=front,back", override])


def test_a_run_with_other_view_words_than_the_prior_is_warned(tmp_path):
    (tmp_path / "psd_prior.json").write_text(json.dumps({"kind": "pixel", "views": {
        "azimuth_views": list(AZIMUTH_VIEWS), "view_format": ", {} view", "overhead_view_format": ", {} view from above"}}))
    prior = [f"prior.model={tmp_path}"]
    same = resolve_config("tiny-random", prior + ["prompt_processing.azimuth_views=" + ",".join(AZIMUTH_VIEWS)])
    assert view_words_warning(same) is None
    warning = view_words_warning(resolve_config("tiny-random", prior))
    assert warning is not None and "prompt_processing.azimuth_views=front,front-right,right" in warning
    assert view_words_warning(resolve_config("tiny-random", prior + ["prompt_processing.view_dependent=false"])) is None
    (tmp_path / "psd_prior.json").write_text(json.dumps({"kind": "pixel"}))
    assert view_words_warning(resolve_config("tiny-random", prior)) is None, "a prior that does not say is trusted"
