"""How long a user waits for the first previews of a run, in the app and in a cold CLI process.

Two waits each: for the starting shape (step 0, which the engine shows before it loads the
models) and for the first guided preview (after step 1, the first picture the prior has shaped).

app: a fresh process imports app.py and builds the UI as `python app.py` does (which checks
the default preset and so loads its models), then calls the Generate handler
(`app.run_single`, the function the button runs) and times it up to its first output that
carries preview images, and up to the first whose status is a step count (step >= 1). The
browser and network add a few ms on top. Repeated `--repeats` times in the same process, as
users press Generate again.

cli: `python -m psd_engine generate --preset shapes --method psd` in a fresh process, timed
from the moment the command starts to the moment `<out>/preview.png` exists (the starting
shape), and to the moment it is replaced by the step-1 preview (the CLI replaces the file
whole, so its inode changes): imports, model loading, step 1 and the preview render.

    python benchmarks/first_preview.py
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

APP_PROBE = r"""
import json, sys, time
t0 = time.perf_counter()
import app
demo = app.build_demo()
ready = time.perf_counter() - t0
from psd_engine.config import resolve_config
c = resolve_config("shapes")  # the sliders' values when the app shows the preset
g = c.guidance
waits, guided = [], []
for i in range(int(sys.argv[2])):
    start = time.perf_counter()
    outputs = app.run_single(sys.argv[1], "", "shapes", "psd", g.guidance_scale, g.preference_scale, g.neg_lr, c.steps,
                             c.preview_every, i, False, c.render.resolution, None)
    for value in outputs:
        if value[0] and len(waits) == i:  # the gallery's first images (the starting shape)
            waits.append(time.perf_counter() - start)
        if value[0] and value[4].startswith("Step "):  # the status of a guided step
            guided.append(time.perf_counter() - start)
            break
    outputs.close()  # the engine runs inside this generator: closing it ends the run (generate's finally)
print(json.dumps({"ready": ready, "waits": waits, "guided": guided}))
"""


def app_first_preview(prompt: str, repeats: int) -> dict:
    """Seconds to build the app, and from each Generate call to its first preview, in one fresh process."""
    with tempfile.TemporaryDirectory(prefix="psd3d-bench-") as outputs:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "PSD3D_OUTPUTS": outputs}
        done = subprocess.run([sys.executable, "-c", APP_PROBE, prompt, str(repeats)], cwd=ROOT, env=env,
                              capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the app probe failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def cli_first_preview(prompt: str) -> tuple[float, float]:
    """Seconds from starting the CLI in a fresh process to its first preview.png, and to the step-1 one."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        command = [sys.executable, "-m", "psd_engine", "generate", "--prompt", prompt, "--preset", "shapes",
                   "--method", "psd", "--out", str(out), "--quiet"]
        start = time.perf_counter()
        proc = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"},
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        preview = out / "preview.png"
        try:
            first_inode = None
            while True:
                with contextlib.suppress(FileNotFoundError):
                    inode = preview.stat().st_ino
                    if first_inode is None:
                        first_inode, first = inode, time.perf_counter() - start
                    elif inode != first_inode:
                        return first, time.perf_counter() - start
                if proc.poll() is not None:
                    raise SystemExit(f"the CLI ended before its step-1 preview:\n{proc.stderr.read()[-2000:]}")
                time.sleep(0.01)
        finally:
            proc.kill()
            proc.wait()


def _seconds(values) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


def main(argv: list[str] | None = None) -> int:
    """Print the app's and the cold CLI's first-preview times."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompt", default="a red cube")
    parser.add_argument("--repeats", type=int, default=3, help="Generate presses in the app process")
    parser.add_argument("--cli-runs", type=int, default=2)
    args = parser.parse_args(argv)
    result = app_first_preview(args.prompt, args.repeats)
    print(f"app: built in {result['ready']:.2f} s (imports + default preset's models); "
          f"Generate -> starting shape: {_seconds(result['waits'])} s; first guided preview: {_seconds(result['guided'])} s")
    cli = [cli_first_preview(args.prompt) for _ in range(args.cli_runs)]
    print(f"cli (cold process): command start -> preview.png of the starting shape: {_seconds(c[0] for c in cli)} s; "
          f"of step 1: {_seconds(c[1] for c in cli)} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
