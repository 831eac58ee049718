"""Side-by-side comparison of sds, reward-grad, psd-fixed-neg and psd, with ground truth.

For each prompt x seed x method, at equal step count and at equal wall-clock budget, the
final 3D asset is rendered from several views and measured: learned reward, ground-truth
taste, prompt fidelity (fidelity judge), floater count, the reward-hacking gap, time per
step and peak memory. Writes a markdown table (means with 95% confidence intervals), a
plot of reward curves per method, the raw rows as JSON, and the command, into --out.

    python benchmarks/compare_methods.py --out docs/results            # the full set
    python benchmarks/compare_methods.py --quick --out /tmp/compare     # < 10 min on 2 CPU cores
    python benchmarks/compare_methods.py --sweep --out docs/results     # lambda x neg_lr grid for psd

Reward-hacking gap: for each (prompt, seed, budget), the method's learned-reward gain over
`sds` minus its taste gain over `sds`, each divided by that metric's standard deviation
over all runs of the budget. Positive = the learned reward rose more than the ground truth.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from benchmarks.report import reproduce_command, write_report  # noqa: E402
from psd_engine.config import METHODS, resolve_config  # noqa: E402
from psd_engine.engine import Run  # noqa: E402
from psd_engine.evaluation import EvalConfig, render_views, score_views  # noqa: E402
from psd_engine.shapes.judge import load_judge  # noqa: E402  (cached per process)

FULL_PROMPTS = [
    "a red cube", "a blue sphere", "a green cone", "a yellow torus", "a purple cylinder", "an orange cube",
    # held-out shape-colour pairs (never seen by the prior in training)
    "a purple cube", "a red sphere", "a blue cone", "a green torus",
]
QUICK_PROMPTS = ["a red cube", "a yellow torus", "a blue cone"]
METRICS = ("taste", "reward", "fidelity", "floaters", "hacking_gap", "sec_per_step", "peak_mb")


class PeakMemory:
    """Peak resident memory (MB) of this process while the block runs (CUDA: peak allocated)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.peak = 0.0
        self._stop = threading.Event()

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
            return self
        import psutil

        proc = psutil.Process()

        def sample() -> None:
            while not self._stop.is_set():
                self.peak = max(self.peak, proc.memory_info().rss / 2**20)
                self._stop.wait(0.05)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            self.peak = torch.cuda.max_memory_allocated() / 2**20
            return
        self._stop.set()
        self._thread.join()


def run_one(preset: str, method: str, prompt: str, seed: int, steps: int, overrides: list[str], ev: EvalConfig) -> dict:
    """Optimise one asset and measure it; returns a row of metrics plus the reward curve."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = resolve_config(preset, [f"guidance.method={method}", *overrides], prompt=prompt, seed=seed,
                             steps=steps, out_dir=tmp)
        run = Run(cfg)
        curve = []
        with PeakMemory(run.device) as mem:
            start = time.perf_counter()
            for step in range(steps):
                m = run.step(step)
                curve.append(m.get("reward", float("nan")))
            seconds = time.perf_counter() - start
        views = render_views(run.field, run.renderer, ev, run.device)
        scores = score_views(views, prompt, reward=run.reward, judge=load_judge())
        run.close()
    return {"method": method, "prompt": prompt, "seed": seed, "steps": steps, **scores,
            "sec_per_step": seconds / steps, "peak_mb": mem.peak, "curve": curve}


def add_hacking_gap(rows: list[dict]) -> None:
    """Set row['hacking_gap'] against the sds row of the same prompt, seed and budget."""
    for budget in {r["budget"] for r in rows}:
        group = [r for r in rows if r["budget"] == budget]
        sd_r = statistics.pstdev(r["reward"] for r in group) or 1.0
        sd_t = statistics.pstdev(r["taste"] for r in group) or 1.0
        base = {(r["prompt"], r["seed"]): r for r in group if r["method"] == "sds"}
        for r in group:
            b = base.get((r["prompt"], r["seed"]))
            r["hacking_gap"] = ((r["reward"] - b["reward"]) / sd_r - (r["taste"] - b["taste"]) / sd_t) if b else float("nan")


def mean_ci(values: list[float]) -> tuple[float, float]:
    """Mean and half-width of the 95% confidence interval (Student t)."""
    vals = [v for v in values if not math.isnan(v)]
    if not vals:
        return float("nan"), float("nan")
    mean = statistics.fmean(vals)
    if len(vals) < 2:
        return mean, float("nan")
    from scipy.stats import t

    return mean, float(t.ppf(0.975, len(vals) - 1)) * statistics.stdev(vals) / math.sqrt(len(vals))


def table(rows: list[dict], group_key: str = "method") -> str:
    """Markdown table of metric means +- 95% CI per method and budget."""
    lines = ["| budget | " + group_key + " | n | " + " | ".join(METRICS) + " |", "|---" * (len(METRICS) + 3) + "|"]
    for budget in sorted({r["budget"] for r in rows}):
        for key in sorted({r[group_key] for r in rows if r["budget"] == budget}, key=str):
            sel = [r for r in rows if r["budget"] == budget and r[group_key] == key]
            cells = []
            for metric in METRICS:
                mean, half = mean_ci([float(r.get(metric, float("nan"))) for r in sel])
                cells.append(f"{mean:.3f} ± {half:.3f}" if not math.isnan(half) else f"{mean:.3f}")
            lines.append(f"| {budget} | {key} | {len(sel)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_curves(rows: list[dict], path: Path) -> None:
    """Mean reward-vs-step curve per method (equal-steps runs)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    for method in METHODS:
        curves = [r["curve"] for r in rows if r["method"] == method and r["budget"] == "equal-steps"]
        if not curves:
            continue
        n = min(len(c) for c in curves)
        mean = [statistics.fmean(c[i] for c in curves) for i in range(n)]
        ax.plot(range(1, n + 1), mean, label=method)
    ax.set_xlabel("step")
    ax.set_ylabel("learned reward of the render")
    ax.set_title("Reward during optimisation (mean over prompts and seeds)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def parse_grid(entries: list[str]) -> list[tuple[str, list[str]]]:
    """`KEY=v1,v2,...` entries -> [(KEY, [v1, v2, ...])]; a clear error for a malformed entry."""
    grid = []
    for entry in entries:
        key, sep, values = entry.partition("=")
        if not sep or not key or not values:
            raise SystemExit(f"--grid {entry!r}: expected KEY=v1,v2,... e.g. guidance.reward_grad_scale=10,100")
        grid.append((key.strip(), [v.strip() for v in values.split(",") if v.strip()]))
    return grid


def grid_points(grid: list[tuple[str, list[str]]]) -> list[list[str]]:
    """Every combination of the grid as a list of `KEY=value` overrides."""
    points: list[list[str]] = [[]]
    for key, values in grid:
        points = [[*p, f"{key}={v}"] for p in points for v in values]
    return points


def point_label(point: list[str]) -> str:
    """Short label of a grid point: the last part of each key with its value."""
    return " ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, _, v in (o.partition("=") for o in point))


def _init_worker(threads: int) -> None:
    """Each worker process computes on its own `threads` threads."""
    torch.set_num_threads(threads)


def run_tasks(tasks: list[tuple], jobs: int, threads: int) -> Iterator[dict]:
    """run_one over `tasks`, in this process (jobs=1) or in `jobs` worker processes; rows in task order."""
    if not tasks:
        return
    if jobs <= 1:
        yield from (run_one(*t) for t in tasks)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_init_worker, initargs=(threads,)) as pool:
        yield from pool.map(run_one, *zip(*tasks))


def main(argv: list[str] | None = None) -> int:
    """Run the comparison (or a sweep) and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="shapes")
    parser.add_argument("--quick", action="store_true", help="3 prompts x 1 seed, fewer steps, equal steps only")
    parser.add_argument("--sweep", action="store_true", help="a grid of settings of one method (--sweep-method, --grid) next to sds")
    parser.add_argument("--sweep-method", default="psd", choices=METHODS)
    parser.add_argument("--grid", action="append", default=[], metavar="KEY=v1,v2",
                        help="sweep: a setting and its values (repeatable); default: psd's preference_scale x neg_lr")
    parser.add_argument("--lambdas", nargs="+", type=float, default=[0.0, 1.0, 4.0, 16.0], help="sweep: preference_scale values")
    parser.add_argument("--neg-lrs", nargs="+", type=float, default=[0.0, 1e-3, 1e-2, 1e-1], help="sweep: neg_lr values")
    parser.add_argument("--sweep-prompts", type=int, default=4, help="sweep: how many prompts of the set")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=0, help="steps per run (0 = the preset's)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--prompts", nargs="+", default=None, help="prompt set (default: 10 prompts, 4 held out; --quick: 3)")
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel worker processes (each with --threads threads)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads per run (0 = all cores / jobs)")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--out", default="docs/results")
    parser.add_argument("--name", default="", help="output file stem (default: compare, quick, sweep or sweep_<method>)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    threads = args.threads or max(torch.get_num_threads() // max(args.jobs, 1), 1)
    torch.set_num_threads(threads)
    ev = EvalConfig()
    preset_steps = resolve_config(args.preset).steps
    steps = args.steps or (preset_steps // 2 if args.quick else preset_steps)
    prompts = args.prompts or (QUICK_PROMPTS if args.quick else FULL_PROMPTS)
    seeds = list(range(1 if args.quick else args.seeds))
    rows: list[dict] = []
    started = time.perf_counter()

    def record(batch: Iterable[dict], labels: list[dict]) -> None:
        for row, extra in zip(batch, labels):
            row.update(extra)
            rows.append(row)
            print(f"[{time.perf_counter() - started:7.1f}s] {row['budget']} {row['method']:<13} {row['prompt']:<18} "
                  f"seed={row['seed']} steps={row['steps']} taste={row['taste']:.3f} "
                  f"reward={row.get('reward', float('nan')):.3f} fidelity={row.get('fidelity', float('nan')):.2f} "
                  f"{row['sec_per_step'] * 1000:.0f} ms/step", flush=True)

    def run_budget(budget: str, plan: list[tuple[str, str, int, int, list[str], str]]) -> None:
        """plan: (method, prompt, seed, steps, overrides, label) runs, executed and recorded."""
        tasks = [(args.preset, m, p, s, n, [*args.overrides, *o], ev) for m, p, s, n, o, _ in plan]
        labels = [{"budget": budget, "method": label} for *_, label in plan]
        record(run_tasks(tasks, args.jobs, threads), labels)

    if args.sweep:
        grid = parse_grid(args.grid) or [("guidance.preference_scale", [f"{v:g}" for v in args.lambdas]),
                                        ("guidance.neg_lr", [f"{v:g}" for v in args.neg_lrs])]
        sweep_prompts = prompts[: args.sweep_prompts]
        plan = [(args.sweep_method, p, 0, steps, point, f"{args.sweep_method} {point_label(point)}")
                for point in grid_points(grid) for p in sweep_prompts]
        plan += [("sds", p, 0, steps, [], "sds") for p in sweep_prompts]
        run_budget("sweep", plan)
        add_hacking_gap(rows)
        text = table(rows)
        name = args.name or (f"sweep_{args.sweep_method}" if args.grid else "sweep")
    else:
        pairs = [(p, s) for p in prompts for s in seeds]
        run_budget("equal-steps", [(m, p, s, steps, [], m) for p, s in pairs for m in args.methods])
        if not args.quick:
            # Equal wall-clock: every method gets the time sds took, at its own measured speed.
            per_step = {m: statistics.fmean(r["sec_per_step"] for r in rows if r["method"] == m) for m in args.methods}
            budget_s = steps * per_step.get("sds", min(per_step.values()))
            budget_steps = {m: max(int(budget_s / per_step[m]), 1) for m in args.methods}
            # A method whose budget is the equal-steps count would repeat that run exactly (same
            # config and seed, deterministic): its row is reused rather than recomputed.
            done = {(r["method"], r["prompt"], r["seed"]): r for r in rows}
            again = [(m, p, s, budget_steps[m], [], m) for p, s in pairs for m in args.methods if budget_steps[m] != steps]
            run_budget("equal-time", again)
            for p, s in pairs:
                for m in args.methods:
                    if budget_steps[m] == steps:
                        rows.append({**done[(m, p, s)], "budget": "equal-time", "reused": True})
        add_hacking_gap(rows)
        text = table(rows)
        name = args.name or ("quick" if args.quick else "compare")
        plot_curves(rows, out / f"{name}_reward_curves.png")
    body = (f"preset `{args.preset}`, {steps} steps (equal-steps), "
            f"{len(prompts)} prompts x {len(seeds)} seeds, views: {ev.views} at {ev.resolution} px. "
            f"Total {time.perf_counter() - started:.0f} s, {args.jobs} job(s) x {threads} thread(s).\n\n{text}\n")
    (out / f"{name}_rows.json").write_text(json.dumps(rows, indent=1))
    write_report(out, name, name, reproduce_command("compare_methods.py", argv), body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
