"""Per-step time profile of the engine for a preset and method(s).

Prints, per method, the mean seconds per step (mean, not median: the negative-embedding
update runs only every k-th step, and its cost must be counted) split into render / encode / UNet / reward /
backward / optimiser / other, and the engine overhead ratio: everything but model forward
(encode/decode, UNet, reward) and backward, over the whole step.

    python benchmarks/step_profile.py --preset tiny-random --method sds psd --steps 20
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from psd_engine.config import METHODS, resolve_config  # noqa: E402
from psd_engine.engine import Run  # noqa: E402
from psd_engine.profiling import MODEL_SECTIONS, SECTIONS  # noqa: E402


def profile_method(preset: str, method: str, steps: int, warmup: int, prompt: str, overrides: list[str]) -> dict[str, float]:
    """Mean seconds per section over `steps` steps after `warmup` steps."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = resolve_config(preset, [f"guidance.method={method}", *overrides], prompt=prompt,
                             steps=warmup + steps, out_dir=tmp)
        run = Run(cfg, profile=True)
        rows = []
        for step in range(warmup + steps):
            start = time.perf_counter()
            run.step(step)
            total = time.perf_counter() - start
            sections = run.timer.pop()
            if step >= warmup:
                sections["total"] = total
                rows.append(sections)
        run.close()
    out = {name: statistics.fmean(r.get(name, 0.0) for r in rows) for name in (*SECTIONS, "total")}
    out["other"] = max(out["total"] - sum(out[s] for s in SECTIONS), 0.0)
    out["overhead_ratio"] = 1.0 - sum(out[s] for s in MODEL_SECTIONS) / out["total"]
    return out


def main(argv: list[str] | None = None) -> int:
    """Print the profile table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny-random")
    parser.add_argument("--method", nargs="+", default=["sds", "psd"], choices=METHODS)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--prompt", default="a red cube")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args(argv)
    cols = (*SECTIONS, "other", "total")
    print(f"preset={args.preset} steps={args.steps} (mean ms per step)")
    print("| method | " + " | ".join(cols) + " | overhead |")
    print("|---" * (len(cols) + 2) + "|")
    results = {}
    for method in args.method:
        r = profile_method(args.preset, method, args.steps, args.warmup, args.prompt, args.overrides)
        results[method] = r
        cells = " | ".join(f"{1000 * r[c]:.1f}" for c in cols)
        print(f"| {method} | {cells} | {100 * r['overhead_ratio']:.0f}% |")
    if "sds" in results:
        for method, r in results.items():
            if method != "sds":
                print(f"{method} / sds step time: {r['total'] / results['sds']['total']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
