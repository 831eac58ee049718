"""Train the shapes-world reward model the way HPSv2 was trained: CLIP first, then preferences.

1. Contrastive (CLIP loss) pre-training of a small open_clip model on shapes-world renders and
   their captions (with and without the view suffix, sometimes with synonyms), on the
   training shape-colour pairs only. Renders carry random artefacts part of the time so the
   image features see every kind of flaw, as web images do for CLIP.
2. Preference fine-tuning on pairwise comparisons, as HPSv2 learned from people: two
   versions of the same render with different artefacts (or the same artefacts at different
   levels, or one clean), labelled by which has the higher ``taste`` (psd_engine.shapes.taste).
   Score s = cos(image, text); loss = -log sigmoid(logit_scale * (s_win - s_lose))
   (Bradley-Terry), plus a small CLIP loss so the text stays grounded.

Evaluated on comparisons from fresh renders (other seeds) of the training pairs and of the
held-out shape-colour pairs. Writes what psd_engine.rewards' "openclip" loader reads:

    <out>/model_config.json            open_clip model config (embed_dim, vision_cfg, text_cfg)
    <out>/open_clip_model.safetensors  state_dict (float16 to keep the asset small)
    <out>/open_clip_config.json        {"model_cfg", "preprocess_cfg"}: the open_clip folder layout
    <out>/training.json                command, seeds, steps, minutes, accuracies

Usage: python training/train_reward.py [--minutes 17 (CPU minutes)] [--out assets/shapes-reward]
       python training/train_reward.py --smoke --out /tmp/reward-smoke   (a few steps, for tests)
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

from psd_engine.config import PromptConfig  # noqa: E402
from psd_engine.shapes import degrade, world  # noqa: E402
from psd_engine.shapes.taste import taste_2d  # noqa: E402
from training.common import apply_set_overrides, output_folder, recorded_command  # noqa: E402

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)  # open_clip's default preprocessing, used by the loader
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
CONFIG_FILE = "model_config.json"
WEIGHTS_FILE = "open_clip_model.safetensors"


@dataclass
class RewardTrainConfig:
    """Everything that defines a training run of the shapes reward model."""

    # Model (open_clip CLIP). The token embedding (49408 x text_width) dominates the size.
    resolution: int = 64
    embed_dim: int = 64
    vision_width: int = 128
    vision_layers: int = 4
    vision_head_width: int = 32
    vision_mlp_ratio: float = 2.0
    patch_size: int = 8
    text_width: int = 64
    text_heads: int = 4
    text_layers: int = 4
    text_mlp_ratio: float = 2.0
    context_length: int = 32
    vocab_size: int = 49408  # open_clip's default BPE tokenizer (bundled, works offline)
    # Data
    renders: int = 4000  # clean renders of the training pairs
    variants: int = 3  # artefact versions per render, besides the clean one
    same_kinds_prob: float = 0.5  # a later variant reuses the first one's artefacts at new levels
    test_renders: int = 300  # per test split: training pairs (new seed) and held-out pairs
    no_view_prob: float = 0.3  # captions without the view suffix
    paraphrase_prob: float = 0.15  # captions with synonyms ("a crimson box")
    hflip: bool = True  # every shape is mirror-symmetric; views keep their names
    tie_margin: float = 0.01  # comparisons whose taste differs by less are ties: not used, not scored
    # Phase 1: contrastive
    clip_batch: int = 128
    clip_lr: float = 1e-3
    clip_steps: int = 3000
    clip_minutes: float = 10.0  # CPU minutes of this process (see run_phase)
    clip_clean_prob: float = 0.5  # fraction of clean renders in contrastive batches
    # Phase 2: Bradley-Terry preference fine-tuning
    bt_pairs: int = 64
    bt_lr: float = 2e-4
    bt_steps: int = 2000
    bt_minutes: float = 7.0  # CPU minutes
    bt_clip_weight: float = 0.3  # CLIP loss kept during fine-tuning so scores stay prompt-aware
    warmup_steps: int = 50
    lr_final_fraction: float = 0.05
    weight_decay: float = 0.05
    grad_clip: float = 1.0
    save_dtype: str = "float16"  # "float16" or "float32"
    data_seed: int = 0
    test_seed: int = 1000
    seed: int = 0
    threads: int = 2
    log_every: int = 50


SMOKE_OVERRIDES = dict(
    resolution=32, vision_width=32, vision_layers=1, text_width=32, text_heads=2, text_layers=1, embed_dim=32,
    renders=12, variants=2, test_renders=4, clip_batch=8, clip_steps=3, bt_pairs=4, bt_steps=3,
    clip_minutes=1.0, bt_minutes=1.0, log_every=1, warmup_steps=1,
)


def model_config(cfg: RewardTrainConfig) -> dict:
    """The open_clip model config (the content of model_config.json)."""
    return {
        "embed_dim": cfg.embed_dim,
        "vision_cfg": {
            "image_size": cfg.resolution, "layers": cfg.vision_layers, "width": cfg.vision_width,
            "head_width": cfg.vision_head_width, "mlp_ratio": cfg.vision_mlp_ratio, "patch_size": cfg.patch_size,
        },
        "text_cfg": {
            "context_length": cfg.context_length, "vocab_size": cfg.vocab_size, "width": cfg.text_width,
            "heads": cfg.text_heads, "layers": cfg.text_layers, "mlp_ratio": cfg.text_mlp_ratio,
        },
    }


# ----------------------------------------------------------------------------- data

@dataclass
class ComparisonSet:
    """Renders with artefact variants, their taste, and the non-tied comparisons between them."""

    images: np.ndarray  # (R, V, H, W, 3) uint8, variant 0 clean
    taste: np.ndarray  # (R, V)
    specs: list  # R ShapeSpecs
    notes: list[list[str]]  # artefact description per render and variant
    pairs: np.ndarray  # (P, 3): render, winner variant, loser variant

    def image_tensor(self, render: np.ndarray, variant: np.ndarray) -> torch.Tensor:
        """Float (B, 3, H, W) in [0, 1] for the given render/variant indices."""
        x = torch.from_numpy(self.images[render, variant]).permute(0, 3, 1, 2).float() / 255.0
        return x


def build_comparisons(
    cfg: RewardTrainConfig, n: int, pairs: list[tuple[str, str]], seed: int, resolution: int | None = None,
) -> ComparisonSet:
    """Render n objects, give each `cfg.variants` artefact versions, rate them all with taste."""
    rng = np.random.default_rng(seed)
    res = resolution or cfg.resolution
    specs = world.sample_specs(n, rng, pairs=pairs)
    v_total = cfg.variants + 1
    images = np.empty((n, v_total, res, res, 3), dtype=np.uint8)
    notes: list[list[str]] = []
    chunk = 500
    for start in range(0, n, chunk):
        clean, alpha = world.render_specs(specs[start : start + chunk], res, return_alpha=True)
        for k in range(len(clean)):
            i = start + k
            images[i, 0] = world.to_uint8(clean[k])
            row = ["clean"]
            first: list[tuple[str, float]] = []
            for v in range(1, v_total):
                if first and rng.random() < cfg.same_kinds_prob:
                    artefacts = [(kind, float(rng.random())) for kind, _ in first]
                else:
                    artefacts = degrade.draw_artefacts(rng)
                first = first or artefacts
                out = degrade.apply_artefacts(clean[k : k + 1], artefacts, rng, alpha[k : k + 1])
                images[i, v] = world.to_uint8(out[0])
                row.append(degrade.describe(artefacts))
            notes.append(row)
    taste = taste_2d(images.reshape(-1, res, res, 3).astype(np.float32) / 255.0).reshape(n, v_total)
    comparisons = []
    for r in range(n):
        for a in range(v_total):
            for b in range(a + 1, v_total):
                if abs(taste[r, a] - taste[r, b]) < cfg.tie_margin:
                    continue
                win, lose = (a, b) if taste[r, a] > taste[r, b] else (b, a)
                comparisons.append((r, win, lose))
    return ComparisonSet(images, taste, specs, notes, np.array(comparisons, dtype=np.int64).reshape(-1, 3))


class Captions:
    """Captions of renders: canonical with view, without view, or with synonyms."""

    def __init__(self, cfg: RewardTrainConfig) -> None:
        self.cfg = cfg
        self.prompt_cfg = PromptConfig()

    # The shipped reward's captions name the view by the camera's own azimuth (world.view_of), as
    # the world did when it was trained; kept so that its recorded command reproduces it. The
    # reward scores the plain prompt in a run (reward.use_view_prompt false), so the words matter little.
    relative_views = False

    def view(self, spec: world.ShapeSpec) -> str:
        """The engine's view name of a spec's camera."""
        return world.view_of(spec, self.prompt_cfg, relative=self.relative_views)

    def pick(self, spec: world.ShapeSpec, rng: np.random.Generator) -> tuple[str, str]:
        """(caption, view key): key "none" when the caption has no view suffix."""
        with_view = rng.random() >= self.cfg.no_view_prob
        if rng.random() < self.cfg.paraphrase_prob:
            text = world.paraphrase(spec, rng, with_view=with_view, relative=self.relative_views)
        else:
            text = world.caption(spec, with_view=with_view, relative=self.relative_views)
        return text, self.view(spec) if with_view else "none"


def compatibility(specs: list, views: list[str], keys: list[tuple[str, str, str]]) -> torch.Tensor:
    """(B_img, B_txt) 1 where caption j truthfully describes image i (same object; same view or none)."""
    out = torch.zeros(len(specs), len(keys))
    for i, (spec, view) in enumerate(zip(specs, views)):
        for j, (shape, color, key_view) in enumerate(keys):
            if shape == spec.shape and color == spec.color and key_view in ("none", view):
                out[i, j] = 1.0
    return out


def clip_loss(img: torch.Tensor, txt: torch.Tensor, scale: torch.Tensor, match: torch.Tensor) -> torch.Tensor:
    """Symmetric CLIP loss with soft targets: repeated captions in a batch are all positives."""
    logits = scale * img @ txt.T
    to_txt = match / match.sum(1, keepdim=True)
    to_img = (match / match.sum(0, keepdim=True)).T
    image_to_text = -(to_txt * F.log_softmax(logits, 1)).sum(1).mean()
    text_to_image = -(to_img * F.log_softmax(logits.T, 1)).sum(1).mean()
    return 0.5 * (image_to_text + text_to_image)


# ----------------------------------------------------------------------------- model

def build_model(cfg: RewardTrainConfig):
    """A randomly initialised open_clip CLIP with this run's model config."""
    import open_clip

    return open_clip.model.CLIP(**model_config(cfg))


def get_tokenizer(cfg: RewardTrainConfig):
    """open_clip's default BPE tokenizer at the model's context length."""
    import open_clip

    return open_clip.tokenizer.SimpleTokenizer(context_length=cfg.context_length)


def normalise(images: torch.Tensor) -> torch.Tensor:
    """[0, 1] images -> the model's input, as the reward loader preprocesses them."""
    mean = torch.tensor(OPENAI_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(OPENAI_STD).view(1, 3, 1, 1)
    return (images - mean) / std


def learning_rate(base: float, cfg: RewardTrainConfig, step: int, progress: float) -> float:
    """Linear warm-up, then cosine decay over the phase's progress (steps or time, whichever is further)."""
    if step < cfg.warmup_steps:
        return base * (step + 1) / cfg.warmup_steps
    cosine = 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return base * (cfg.lr_final_fraction + (1.0 - cfg.lr_final_fraction) * cosine)


def make_optimizer(model, lr: float, cfg: RewardTrainConfig) -> torch.optim.Optimizer:
    """AdamW without weight decay on gains, biases, embeddings and the logit scale."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim < 2 or "embedding" in name or "logit_scale" in name else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.98), eps=1e-6)


def maybe_flip(x: torch.Tensor, rng: np.random.Generator, enabled: bool) -> torch.Tensor:
    """Mirror a random half of the batch horizontally."""
    if not enabled:
        return x
    flip = torch.from_numpy(rng.random(x.shape[0]) < 0.5)
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


# ----------------------------------------------------------------------------- phases

def run_phase(name: str, model, optimizer, base_lr: float, steps: int, minutes: float, step_fn, cfg) -> dict:
    """Step- and CPU-time-bounded loop; step_fn() returns (loss tensor, dict of logged floats).

    The budget is CPU time of this process (time.process_time, all threads), not wall time,
    so that other jobs on a shared machine do not cut the training short.
    """
    t0, c0 = time.time(), time.process_time()
    budget = minutes * 60.0
    step, history = 0, []
    while step < steps and (time.process_time() - c0) < budget:
        progress = max(step / steps, (time.process_time() - c0) / budget)
        lr = learning_rate(base_lr, cfg, step, progress)
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss, logs = step_fn()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0.0, math.log(100.0))
        history.append(logs)
        step += 1
        if step % cfg.log_every == 0 or step == 1:
            recent = {k: np.mean([h[k] for h in history[-cfg.log_every:]]) for k in logs}
            text = "  ".join(f"{k} {v:.4f}" for k, v in recent.items())
            cpu = time.process_time() - c0
            print(f"[{name}] step {step:5d}  {text}  lr {lr:.2e}  {cpu / step:.2f} cpu-s/step  "
                  f"{(time.time() - t0) / 60:.1f} min", flush=True)
    last = {k: float(np.mean([h[k] for h in history[-50:]])) for k in history[-1]} if history else {}
    return {"steps": step, "cpu_minutes": round((time.process_time() - c0) / 60.0, 2),
            "wall_minutes": round((time.time() - t0) / 60.0, 2), "final": last}


def contrastive_phase(model, tokenizer, data: ComparisonSet, cfg: RewardTrainConfig, rng) -> dict:
    """Phase 1: CLIP loss on (render, caption) batches drawn from the training comparison set."""
    captions = Captions(cfg)
    optimizer = make_optimizer(model, cfg.clip_lr, cfg)
    n, v_total = data.taste.shape

    def step_fn():
        render = rng.integers(0, n, size=cfg.clip_batch)
        degraded = rng.integers(1, v_total, cfg.clip_batch)
        variant = np.where(rng.random(cfg.clip_batch) < cfg.clip_clean_prob, 0, degraded)
        specs = [data.specs[r] for r in render]
        picked = [captions.pick(s, rng) for s in specs]
        keys = [(s.shape, s.color, key) for s, (_, key) in zip(specs, picked)]
        match = compatibility(specs, [captions.view(s) for s in specs], keys)
        x = maybe_flip(data.image_tensor(render, variant), rng, cfg.hflip)
        img = model.encode_image(normalise(x), normalize=True)
        txt = model.encode_text(tokenizer([t for t, _ in picked]), normalize=True)
        loss = clip_loss(img, txt, model.logit_scale.exp(), match)
        return loss, {"clip_loss": float(loss.detach())}

    return run_phase("clip", model, optimizer, cfg.clip_lr, cfg.clip_steps, cfg.clip_minutes, step_fn, cfg)


def preference_phase(model, tokenizer, data: ComparisonSet, cfg: RewardTrainConfig, rng) -> dict:
    """Phase 2: Bradley-Terry loss on taste-labelled comparisons, plus a small CLIP loss."""
    captions = Captions(cfg)
    optimizer = make_optimizer(model, cfg.bt_lr, cfg)
    if len(data.pairs) == 0:
        raise SystemExit("no non-tied comparisons in the training set; lower tie_margin or raise renders")

    def step_fn():
        chosen = data.pairs[rng.integers(0, len(data.pairs), size=cfg.bt_pairs)]
        render = np.concatenate([chosen[:, 0], chosen[:, 0]])
        variant = np.concatenate([chosen[:, 1], chosen[:, 2]])
        specs = [data.specs[r] for r in chosen[:, 0]]
        picked = [captions.pick(s, rng) for s in specs]
        x = maybe_flip(data.image_tensor(render, variant), rng, cfg.hflip)
        img = model.encode_image(normalise(x), normalize=True)
        txt = model.encode_text(tokenizer([t for t, _ in picked]), normalize=True)
        scale = model.logit_scale.exp()
        k = len(chosen)
        s_win = (img[:k] * txt).sum(-1)
        s_lose = (img[k:] * txt).sum(-1)
        bt = F.softplus(-scale * (s_win - s_lose)).mean()  # = -log sigmoid(scale * (s_w - s_l))
        all_specs = specs + specs
        keys = [(s.shape, s.color, key) for s, (_, key) in zip(specs, picked)]
        match = compatibility(all_specs, [captions.view(s) for s in all_specs], keys)
        aux = clip_loss(img, txt, scale, match)
        loss = bt + cfg.bt_clip_weight * aux
        acc = float((s_win > s_lose).float().mean())
        return loss, {"bt_loss": float(bt.detach()), "clip_loss": float(aux.detach()), "batch_acc": acc}

    return run_phase("pref", model, optimizer, cfg.bt_lr, cfg.bt_steps, cfg.bt_minutes, step_fn, cfg)


# ----------------------------------------------------------------------------- evaluation

@torch.no_grad()
def score(model, tokenizer, images: torch.Tensor, prompts: list[str], batch: int = 256) -> np.ndarray:
    """Cosine(image, prompt) per image, (N,)."""
    out = []
    for i in range(0, len(images), batch):
        img = model.encode_image(normalise(images[i : i + batch]), normalize=True)
        txt = model.encode_text(tokenizer(prompts[i : i + batch]), normalize=True)
        out.append((img * txt).sum(-1))
    return torch.cat(out).numpy()


@torch.no_grad()
def evaluate(model, tokenizer, data: ComparisonSet, cfg: RewardTrainConfig) -> dict:
    """Pairwise accuracy against taste (with view prompts and base prompts) and zero-shot recognition."""
    model.eval()
    n, v_total = data.taste.shape
    flat = torch.from_numpy(data.images.reshape(-1, *data.images.shape[2:])).permute(0, 3, 1, 2).float() / 255.0
    result: dict = {"comparisons": int(len(data.pairs))}
    for label, with_view in (("view_prompt", True), ("base_prompt", False)):
        prompts = [world.caption(s, with_view=with_view) for s in data.specs for _ in range(v_total)]
        s = score(model, tokenizer, flat, prompts).reshape(n, v_total)
        r, w, l = data.pairs.T
        correct = s[r, w] > s[r, l]
        gap = data.taste[r, w] - data.taste[r, l]
        clean_involved = (w == 0) | (l == 0)
        result[f"accuracy_{label}"] = float(correct.mean()) if len(correct) else float("nan")
        if label == "view_prompt":
            mixed = clean_involved.any()
            result["accuracy_clean_vs_degraded"] = float(correct[clean_involved].mean()) if mixed else None
            result["accuracy_degraded_vs_degraded"] = (
                float(correct[~clean_involved].mean()) if (~clean_involved).any() else None
            )
            big = gap >= 0.05
            result["accuracy_taste_gap_ge_0.05"] = float(correct[big].mean()) if big.any() else None
    # Zero-shot: which of the 30 base prompts fits each clean render best.
    pairs = world.all_pairs()
    texts = [world.base_prompt(*p) for p in pairs]
    txt = model.encode_text(tokenizer(texts), normalize=True)
    img = model.encode_image(normalise(flat.reshape(n, v_total, *flat.shape[1:])[:, 0]), normalize=True)
    guess = (img @ txt.T).argmax(-1).numpy()
    truth = np.array([pairs.index((s.shape, s.color)) for s in data.specs])
    result["zero_shot_accuracy"] = float((guess == truth).mean())
    model.train()
    return result


# ----------------------------------------------------------------------------- saving

def save_reward(out: Path, model, cfg: RewardTrainConfig, info: dict) -> None:
    """Write model_config.json, the weights, open_clip_config.json and training.json."""
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    dtype = {"float16": torch.float16, "float32": torch.float32}[cfg.save_dtype]
    state = {k: v.detach().to(dtype).contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out / WEIGHTS_FILE))
    mcfg = model_config(cfg)
    (out / CONFIG_FILE).write_text(json.dumps(mcfg, indent=2) + "\n")
    preprocess = {"size": cfg.resolution, "mean": list(OPENAI_MEAN), "std": list(OPENAI_STD),
                  "interpolation": "bicubic", "resize_mode": "shortest"}
    folder_cfg = {"model_cfg": mcfg, "preprocess_cfg": preprocess}
    (out / "open_clip_config.json").write_text(json.dumps(folder_cfg, indent=2) + "\n")
    (out / "training.json").write_text(json.dumps(info, indent=2) + "\n")


def load_saved(out: Path):
    """Load a saved reward folder back into an fp32 open_clip model (as the engine's loader does)."""
    import open_clip
    from safetensors.torch import load_file

    mcfg = json.loads((out / CONFIG_FILE).read_text())
    model = open_clip.model.CLIP(**mcfg)
    model.load_state_dict({k: v.float() for k, v in load_file(str(out / WEIGHTS_FILE)).items()})
    return model.eval()


# ----------------------------------------------------------------------------- main

def train(cfg: RewardTrainConfig, out: Path, command: str, smoke: bool = False) -> dict:
    """Build the data, run both phases, evaluate the saved weights, write the folder."""
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed + 1)
    t_start, c_start = time.time(), time.process_time()
    train_set = build_comparisons(cfg, cfg.renders, world.train_pairs(), cfg.data_seed)
    test_seen = build_comparisons(cfg, cfg.test_renders, world.train_pairs(), cfg.test_seed)
    test_held = build_comparisons(cfg, cfg.test_renders, world.held_out_pairs(), cfg.test_seed + 1)
    data_minutes = (time.time() - t_start) / 60.0
    data_cpu_minutes = (time.process_time() - c_start) / 60.0
    print(f"data: {cfg.renders} renders x {cfg.variants + 1} versions, {len(train_set.pairs)} training comparisons, "
          f"{len(test_seen.pairs)} + {len(test_held.pairs)} test comparisons, {data_minutes:.1f} min", flush=True)

    model = build_model(cfg).train()
    tokenizer = get_tokenizer(cfg)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {n_params / 1e6:.2f} M parameters", flush=True)
    clip_info = contrastive_phase(model, tokenizer, train_set, cfg, rng)
    after_clip = {"train_pairs": evaluate(model, tokenizer, test_seen, cfg),
                  "held_out_pairs": evaluate(model, tokenizer, test_held, cfg)}
    print(f"after CLIP phase: {json.dumps(after_clip)}", flush=True)
    pref_info = preference_phase(model, tokenizer, train_set, cfg, rng)

    info = {
        "command": command,
        "smoke": smoke,
        "label": "plumbing test only (a few steps)" if smoke else "trained shapes-world reward (HPSv2-style)",
        "model_config": model_config(cfg),
        "parameters": n_params,
        "data": {"renders": cfg.renders, "versions_per_render": cfg.variants + 1,
                 "training_comparisons": int(len(train_set.pairs)), "wall_minutes": round(data_minutes, 2),
                 "cpu_minutes": round(data_cpu_minutes, 2)},
        "contrastive": clip_info,
        "preference": pref_info,
        "eval_after_contrastive": after_clip,
        "train_pairs": [list(p) for p in world.train_pairs()],
        "held_out_pairs": [list(p) for p in world.held_out_pairs()],
        "data_seed": cfg.data_seed,
        "test_seeds": [cfg.test_seed, cfg.test_seed + 1],
        "seed": cfg.seed,
        "config": json.loads(json.dumps(dataclasses.asdict(cfg))),
    }
    save_reward(out, model, cfg, info)
    # Report what ships: the saved (possibly float16) weights, reloaded.
    shipped = load_saved(out)
    info["eval"] = {"train_pairs": evaluate(shipped, tokenizer, test_seen, cfg),
                    "held_out_pairs": evaluate(shipped, tokenizer, test_held, cfg),
                    "note": "comparisons from fresh renders (test seeds); ties (taste gap < tie_margin) excluded"}
    info["total_wall_minutes"] = round((time.time() - t_start) / 60.0, 2)
    info["total_cpu_minutes"] = round((time.process_time() - c_start) / 60.0, 2)
    info["threads"] = cfg.threads
    info["size_bytes"] = (out / WEIGHTS_FILE).stat().st_size
    (out / "training.json").write_text(json.dumps(info, indent=2) + "\n")
    print(f"saved {out}: {json.dumps(info['eval'])}", flush=True)
    return info


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; every RewardTrainConfig field can also be set with --set name=value."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=None,
                    help="CPU-minute budget of both phases, split in the default 10:7 ratio")
    ap.add_argument("--out", default=None,
                    help="output folder (default assets/shapes-reward; a temp folder with --smoke)")
    ap.add_argument("--smoke", action="store_true", help="a few steps of a tiny model on tiny data (for tests)")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="any RewardTrainConfig field")
    return ap.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> RewardTrainConfig:
    """Build the run's RewardTrainConfig from defaults, --smoke, --set and --minutes."""
    cfg = RewardTrainConfig()
    if args.smoke:
        cfg = dataclasses.replace(cfg, **SMOKE_OVERRIDES)
    cfg = apply_set_overrides(cfg, args.set)
    if args.minutes is not None:
        if args.minutes <= 0:
            raise SystemExit("--minutes must be > 0")
        total = cfg.clip_minutes + cfg.bt_minutes
        cfg = dataclasses.replace(cfg, clip_minutes=args.minutes * cfg.clip_minutes / total,
                                  bt_minutes=args.minutes * cfg.bt_minutes / total)
    if cfg.save_dtype not in ("float16", "float32"):
        raise SystemExit(f"save_dtype must be float16 or float32, got {cfg.save_dtype!r}")
    if cfg.variants < 1 or cfg.renders < 1 or cfg.test_renders < 1:
        raise SystemExit("variants, renders and test_renders must be >= 1")
    return cfg


def main(argv: list[str] | None = None) -> dict:
    """Entry point: parse options, train, save; returns the training info."""
    args = parse_args(argv)
    cfg = config_from_args(args)
    out = output_folder(args.out, args.smoke, ROOT / "assets" / "shapes-reward", "reward-smoke-")
    return train(cfg, out, recorded_command("training/train_reward.py", argv), smoke=args.smoke)


if __name__ == "__main__":
    main()
