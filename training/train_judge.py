"""Train the fidelity judge: a small CNN naming the shape and colour of a shapes-world render.

The judge sees every shape-colour pair (it judges, it does not generate), rendered with the
world's random cameras and lights, and augmented with the artefacts of 3D-field renders and
diffusion samples (fog, floaters, blur, mild desaturation, shifts, zoom, brightness, pixel
noise) so that it still reads the object through them. Accuracy is measured on fresh renders
(another seed), clean and augmented, for the training and the held-out pairs of the prior.

    <out>/judge.safetensors   JudgeNet state_dict (float32)
    <out>/judge.json          JudgeConfig, with the accuracies and seeds under "extra"

Usage: python training/train_judge.py [--minutes 2.5 (CPU minutes)] [--out assets/shapes-judge]
       python training/train_judge.py --smoke --out /tmp/judge-smoke   (a few steps, for tests)
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from psd_engine.shapes import degrade, world  # noqa: E402
from psd_engine.shapes.judge import JudgeConfig, JudgeNet, load_judge, save_judge  # noqa: E402
from training.common import apply_set_overrides, output_folder, recorded_command, replace_given  # noqa: E402


@dataclass
class JudgeTrainConfig:
    """Everything that defines a training run of the judge."""

    resolution: int = 32
    channels: tuple[int, ...] = (32, 64, 96)
    render_resolution: int = 48  # renders are made larger and resized, like engine views are
    dataset_size: int = 8000
    test_size: int = 600  # per split (training pairs / held-out pairs of the prior)
    batch_size: int = 128
    lr: float = 3e-3
    lr_final_fraction: float = 0.02
    weight_decay: float = 1e-4
    steps: int = 1200
    minutes: float = 2.5  # CPU minutes of this process (time.process_time): a busy machine does not cut it short
    augment_prob: float = 0.7  # share of training images that get artefacts
    noise_std: tuple[float, float] = (0.0, 0.08)  # Gaussian pixel noise (diffusion samples)
    ink_gain: tuple[float, float] = (0.9, 1.2)  # scale the distance from white (lighter or darker shading)
    hflip: bool = True
    data_seed: int = 0
    test_seed: int = 2000
    seed: int = 0
    threads: int = 2
    log_every: int = 100


SMOKE_OVERRIDES = dict(channels=(8, 16), dataset_size=40, test_size=10, batch_size=8, steps=3, minutes=1.0,
                       log_every=1, render_resolution=32)

# Milder artefacts than the reward model's: the object must stay recognisable to a person.
AUGMENT = degrade.DegradeConfig(
    fog_strength=(0.2, 0.8), floater_count=(1, 4), desaturate=(0.0, 0.35), washout=(0.0, 0.3),
    shift=(0.0, 0.15), shrink=(0.55, 0.95), blur_sigma=(0.005, 0.03), max_artefacts=2,
)


def render(
    n: int, seed: int, pairs: list[tuple[str, str]], res: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Clean renders (N, H, W, 3) float32, alpha (N, H, W), shape index and colour index."""
    rng = np.random.default_rng(seed)
    specs = world.sample_specs(n, rng, pairs=pairs)
    images, alpha = [], []
    for start in range(0, n, 1000):
        im, a = world.render_specs(specs[start : start + 1000], res, return_alpha=True)
        images.append(im)
        alpha.append(a)
    shapes = np.array([world.SHAPES.index(s.shape) for s in specs])
    colors = np.array([list(world.COLORS).index(s.color) for s in specs])
    return np.concatenate(images), np.concatenate(alpha), shapes, colors


def augment(images: np.ndarray, alpha: np.ndarray, rng: np.random.Generator, cfg: JudgeTrainConfig) -> np.ndarray:
    """Random artefacts, brightness, flips and pixel noise on a batch (returns a new array)."""
    out = images.copy()
    for i in range(len(out)):
        if rng.random() < cfg.augment_prob:
            artefacts = degrade.draw_artefacts(rng, AUGMENT)
            out[i] = degrade.apply_artefacts(images[i : i + 1], artefacts, rng, alpha[i : i + 1], AUGMENT)[0]
    gain = rng.uniform(*cfg.ink_gain, size=(len(out), 1, 1, 1))
    out = 1.0 - np.clip((1.0 - out) * gain, 0.0, 1.0)  # the white background stays white
    if cfg.hflip:
        flip = rng.random(len(out)) < 0.5
        out[flip] = out[flip, :, ::-1]
    noise = rng.normal(size=out.shape) * rng.uniform(*cfg.noise_std, size=(len(out), 1, 1, 1))
    return np.clip(out + noise, 0.0, 1.0).astype(np.float32)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) numpy -> (N, 3, H, W) torch."""
    return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))


def accuracy(judge, images: np.ndarray, shapes: np.ndarray, colors: np.ndarray) -> dict:
    """Shape, colour and both-correct accuracy of a judge on labelled images."""
    shape_p, color_p = judge.probs(images)
    s_ok = shape_p.argmax(1) == shapes
    c_ok = color_p.argmax(1) == colors
    return {"shape": float(s_ok.mean()), "color": float(c_ok.mean()), "both": float((s_ok & c_ok).mean())}


def train(cfg: JudgeTrainConfig, out: Path, command: str, smoke: bool = False) -> dict:
    """Render, train within the budget, save, reload and measure accuracy on fresh renders."""
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed + 1)
    t_start = time.time()
    images, alpha, shapes, colors = render(cfg.dataset_size, cfg.data_seed, world.all_pairs(), cfg.render_resolution)
    print(f"rendered {len(images)} training images in {time.time() - t_start:.0f} s", flush=True)

    jcfg = JudgeConfig(resolution=cfg.resolution, channels=tuple(cfg.channels))
    net = JudgeNet(jcfg).train()
    n_params = sum(p.numel() for p in net.parameters())
    optimizer = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    t_loop, c_loop = time.time(), time.process_time()
    budget = cfg.minutes * 60.0
    step, history = 0, []
    while step < cfg.steps and (time.process_time() - c_loop) < budget:
        progress = max(step / cfg.steps, (time.process_time() - c_loop) / budget)
        cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
        lr = cfg.lr * (cfg.lr_final_fraction + (1 - cfg.lr_final_fraction) * cosine)
        for group in optimizer.param_groups:
            group["lr"] = lr
        idx = rng.integers(0, len(images), size=cfg.batch_size)
        x = to_tensor(augment(images[idx], alpha[idx], rng, cfg))
        shape_logits, color_logits = net(x)
        s_t, c_t = torch.from_numpy(shapes[idx]), torch.from_numpy(colors[idx])
        loss = F.cross_entropy(shape_logits, s_t) + F.cross_entropy(color_logits, c_t)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        acc = float(((shape_logits.argmax(1) == s_t) & (color_logits.argmax(1) == c_t)).float().mean())
        history.append((float(loss.detach()), acc))
        step += 1
        if step % cfg.log_every == 0 or step == 1:
            recent = np.mean(history[-cfg.log_every:], axis=0)
            print(f"step {step:5d}  loss {recent[0]:.4f}  batch acc {recent[1]:.3f}  lr {lr:.2e}  "
                  f"{(time.process_time() - c_loop) / step:.2f} cpu-s/step", flush=True)
    train_minutes = (time.process_time() - c_loop) / 60.0
    wall_minutes = (time.time() - t_loop) / 60.0

    extra = {
        "command": command, "smoke": smoke,
        "label": "plumbing test only (a few steps)" if smoke else "trained shapes-world fidelity judge",
        "steps": step, "cpu_minutes": round(train_minutes, 2), "wall_minutes": round(wall_minutes, 2),
        "threads": cfg.threads, "parameters": n_params,
        "dataset_size": cfg.dataset_size, "data_seed": cfg.data_seed, "test_seed": cfg.test_seed, "seed": cfg.seed,
        "final_loss": round(float(np.mean([h[0] for h in history[-50:]])), 5),
        "config": json.loads(json.dumps(dataclasses.asdict(cfg))),
    }
    jcfg.extra = extra
    save_judge(out, net, jcfg)

    judge = load_judge(out)  # measure what ships
    eval_rng = np.random.default_rng(cfg.test_seed + 7)
    results = {}
    for split, pairs, seed in (("train_pairs", world.train_pairs(), cfg.test_seed),
                               ("held_out_pairs", world.held_out_pairs(), cfg.test_seed + 1)):
        t_img, t_alpha, t_shapes, t_colors = render(cfg.test_size, seed, pairs, cfg.render_resolution)
        results[split] = {
            "clean": accuracy(judge, t_img, t_shapes, t_colors),
            "augmented": accuracy(judge, augment(t_img, t_alpha, eval_rng, cfg), t_shapes, t_colors),
        }
    extra["accuracy"] = results
    extra["accuracy_note"] = (f"{cfg.test_size} fresh renders per split (test seeds), "
                              "clean and with the training augmentations")
    extra["total_minutes"] = round((time.time() - t_start) / 60.0, 2)
    jcfg.extra = extra
    (out / "judge.json").write_text(json.dumps(jcfg.to_json(), indent=2) + "\n")
    print(f"saved {out}: {json.dumps(results)}", flush=True)
    return extra


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; every JudgeTrainConfig field can also be set with --set name=value."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=None, help="CPU-minute budget of the training loop")
    ap.add_argument("--steps", type=int, default=None, help="maximum optimiser steps")
    ap.add_argument("--out", default=None,
                    help="output folder (default assets/shapes-judge; a temp folder with --smoke)")
    ap.add_argument("--smoke", action="store_true", help="a few steps of a tiny judge on tiny data (for tests)")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="any JudgeTrainConfig field")
    return ap.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> JudgeTrainConfig:
    """Build the run's JudgeTrainConfig from defaults, --smoke, --set and the named options."""
    cfg = JudgeTrainConfig()
    if args.smoke:
        cfg = dataclasses.replace(cfg, **SMOKE_OVERRIDES)
    cfg = apply_set_overrides(cfg, args.set)
    cfg = replace_given(cfg, minutes=args.minutes, steps=args.steps)
    if cfg.steps < 1 or cfg.minutes <= 0 or cfg.batch_size < 1:
        raise SystemExit("--steps and batch_size must be >= 1 and --minutes > 0")
    return cfg


def main(argv: list[str] | None = None) -> dict:
    """Entry point: parse options, train, save; returns the training facts."""
    args = parse_args(argv)
    cfg = config_from_args(args)
    out = output_folder(args.out, args.smoke, ROOT / "assets" / "shapes-judge", "judge-smoke-")
    return train(cfg, out, recorded_command("training/train_judge.py", argv), smoke=args.smoke)


if __name__ == "__main__":
    main()
