"""`python -m psd_engine`: generate with each method, presets listing, config overrides."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from psd_engine.cli import main
from psd_engine.config import ConfigError, load_preset, parse_override, resolve_config, save_config, load_config
from psd_engine.export import read_glb

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("method", ["sds", "reward-grad", "psd-fixed-neg", "psd"])
def test_each_method_runs_through_the_cli(tmp_path, method):
    code = main(["generate", "--prompt", "a red cube", "--preset", "tiny-random", "--method", method,
                 "--steps", "4", "--preview-every", "2", "--out", str(tmp_path), "--quiet"])
    assert code == 0
    for name in ("model.glb", "views.png", "metrics.jsonl", "config.json"):
        assert (tmp_path / name).stat().st_size > 0
    assert list(tmp_path.glob("turntable.*"))
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["guidance"]["method"] == method and config["steps"] == 4


def test_cli_keeps_the_latest_preview_on_disk(tmp_path, capsys):
    code = main(["generate", "--prompt", "a red cube", "--preset", "tiny-random", "--steps", "4",
                 "--preview-every", "2", "--out", str(tmp_path)])
    assert code == 0
    assert f"preview: {tmp_path / 'preview.png'} (rewritten every 2 steps)" in capsys.readouterr().out
    import imageio.v3 as iio

    preview = iio.imread(tmp_path / "preview.png")
    cfg = resolve_config("tiny-random")
    side = cfg.render.preview_resolution
    assert preview.shape == (2 * side, 2 * side, 3)  # 4 views in a 2x2 grid
    assert not list(tmp_path.glob("*.partial.png"))


@pytest.mark.slow
def test_acceptance_run_tiny_random_psd(tmp_path):
    """The issue's reviewer command, as a user runs it (a subprocess, offline)."""
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    proc = subprocess.run(
        [sys.executable, "-m", "psd_engine", "generate", "--prompt", "a red cube", "--preset", "tiny-random",
         "--method", "psd", "--steps", "30", "--preview-every", "10", "--out", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "NOT a real generation" in proc.stdout + proc.stderr
    mesh, colours = read_glb(tmp_path / "model.glb")
    assert len(mesh.faces) > 0
    assert colours.shape == (len(mesh.vertices), 4)
    rows = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    assert len(rows) >= 3
    assert all(r["reward_win"] >= r["reward_lose"] for r in rows)
    assert {"step", "loss", "reward"} <= set(rows[0])


def test_presets_command_lists_offline_status(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    assert "tiny-random: available here (offline)" in out
    assert "sd15-hpsv2: NOT available here" in out
    assert "missing:" in out


def test_bad_override_and_method_give_clear_errors(capsys, tmp_path):
    code = main(["generate", "--prompt", "x", "--preset", "tiny-random", "--set", "guidance.no_such_key=1",
                 "--out", str(tmp_path)])
    assert code == 2
    assert "unknown config key 'guidance.no_such_key'" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="unknown preset 'nope'. Available presets: .*tiny-random"):
        resolve_config("nope")
    with pytest.raises(ConfigError, match="expected a float"):
        resolve_config("tiny-random", ["guidance.guidance_scale=abc"])
    with pytest.raises(ConfigError, match="guidance.method must be one of"):
        resolve_config("tiny-random", ["guidance.method=foo"])
    # Camera ranges are checked with the config, before any model loads: a message, no traceback.
    code = main(["generate", "--prompt", "x", "--preset", "tiny-random", "--set", "camera.overhead_prob=2",
                 "--out", str(tmp_path)])
    assert code == 2
    assert capsys.readouterr().err == "error: camera.overhead_prob must lie within [0, 1]; got 2.0\n"
    with pytest.raises(ConfigError, match=r"camera.elevation_range must be \(min, max\) with min <= max"):
        resolve_config("tiny-random", ["camera.elevation_range=40,10"])


def test_overrides_presets_and_json_round_trip(tmp_path):
    assert parse_override("guidance.guidance_scale=50") == {"guidance": {"guidance_scale": "50"}}
    cfg = resolve_config("tiny-random", ["guidance.guidance_scale=50", "camera.elevation_range=0,30",
                                         "render.background=random"], prompt="a cone", steps=7)
    assert cfg.guidance.guidance_scale == 50.0
    assert cfg.camera.elevation_range == (0.0, 30.0)
    assert cfg.render.background == "random" and cfg.steps == 7
    assert cfg.prior.tiny_random and load_preset("tiny-random")["prior"]["tiny_random"]
    save_config(cfg, tmp_path / "c.json")
    assert load_config(tmp_path / "c.json") == cfg
    shapes = resolve_config("shapes")
    assert shapes.prior.model.startswith(str(ROOT / "assets"))


def test_config_json_reproduces_a_run(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    assert main(["generate", "--prompt", "a cone", "--preset", "tiny-random", "--steps", "3", "--seed", "4",
                 "--out", str(first), "--quiet"]) == 0
    assert main(["generate", "--config", str(first / "config.json"), "--out", str(second), "--quiet"]) == 0

    def rows(folder):
        return [{k: v for k, v in json.loads(line).items() if k != "time"} for line in open(folder / "metrics.jsonl")]

    assert rows(first) == rows(second) and len(rows(first)) == 3
    saved = json.loads((second / "config.json").read_text())
    assert saved["prompt"] == "a cone" and saved["seed"] == 4


def test_empty_prompt_is_refused(capsys, tmp_path):
    assert main(["generate", "--prompt", "  ", "--preset", "tiny-random", "--out", str(tmp_path)]) == 2
    assert "--prompt is empty" in capsys.readouterr().err


def test_module_entry_point_returns_the_exit_code_and_flushes_its_message(tmp_path):
    """`python -m psd_engine` ends with os._exit (psd_engine.cli.exit_now): its code and output must survive."""
    proc = subprocess.run(
        [sys.executable, "-m", "psd_engine", "generate", "--prompt", " ", "--preset", "tiny-random", "--out",
         str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert "error: --prompt is empty" in proc.stderr
    listing = subprocess.run([sys.executable, "-m", "psd_engine", "presets"], cwd=ROOT, capture_output=True,
                             text=True, timeout=120)
    assert listing.returncode == 0 and "shapes" in listing.stdout and "tiny-random" in listing.stdout


@pytest.mark.slow
def test_quiet_run_prints_no_progress_bars(tmp_path):
    """--quiet silences the step bar and the libraries' weight-loading bars alike."""
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_DISABLE_PROGRESS_BARS"}
    env["HF_HUB_OFFLINE"] = "1"
    proc = subprocess.run(
        [sys.executable, "-m", "psd_engine", "generate", "--prompt", "a red cube", "--preset", "tiny-random",
         "--method", "sds", "--steps", "2", "--out", str(tmp_path), "--quiet"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "done in" in proc.stdout and (tmp_path / "model.glb").is_file()
    assert "Loading weights" not in proc.stderr and "step/s" not in proc.stderr, proc.stderr
