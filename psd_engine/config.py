"""Run configuration: dataclass configs for every part, presets, dotted overrides, JSON I/O.

A run is fully described by one `RunConfig`. `resolve_config()` builds it from a preset
plus overrides; `save_config()` / `load_config()` round-trip it as JSON so that a run can
be reproduced from its `config.json`.
"""
from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PRESET_DIR = Path(__file__).parent / "presets"
ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"  # shipped weights; "{assets}" in presets
METHODS = ("sds", "reward-grad", "psd-fixed-neg", "psd")


class ConfigError(ValueError):
    """A configuration value or override is invalid; the message says how to fix it."""


AUTOCAST_MODES = ("off", "bfloat16", "auto")


@dataclass
class PriorConfig:
    """The frozen text-to-image diffusion prior."""

    kind: str = "latent"  # "latent" (Stable Diffusion layout) or "pixel" (UNet on RGB)
    model: str = "stable-diffusion-v1-5/stable-diffusion-v1-5"  # hub id or local folder
    revision: str | None = None
    dtype: str = "auto"  # "auto" (fp16 on CUDA, fp32 on CPU), "float32", "float16"
    # UNet forwards of a float32 prior under CPU bfloat16 autocast: "off", "bfloat16", or "auto"
    # (bfloat16 only where the CPU computes it natively: AVX512-BF16 or AMX; emulated it is slower)
    autocast: str = "off"
    # image side the prior sees; renders are resized to it. 0 = the model's native side
    # (SD 1.5: 512, SD 2.1: 768, a pixel prior: psd_prior.json "resolution" or the UNet's sample_size)
    resolution: int = 0
    attention_slicing: bool = False
    cpu_offload: bool = False
    channels_last: bool = False
    tiny_random: bool = False  # built from tiny configs with random weights (plumbing only)


@dataclass
class RewardConfig:
    """The 2D preference reward model R(image, prompt) -> score."""

    kind: str = "hpsv2"  # "hpsv2", "pickscore", "clip", "openclip", "none"
    model: str = ""  # checkpoint file / hub id / folder ("" = the kind's default)
    arch: str = "ViT-H-14"  # open_clip architecture name or path to a model-config JSON
    version: str = "v2.1"  # HPSv2 checkpoint version: "v2.0" or "v2.1"
    processor: str = ""  # PickScore processor id/folder ("" = the kind's default)
    resolution: int = 224  # the reward model's input side; 0 = take it from the model (else must match it)
    score_scale: float = 1.0  # multiply raw scores (e.g. CLIP logit scale) for reporting
    use_view_prompt: bool = False  # score with the view-suffixed prompt (default: the plain prompt)
    tiny_random: bool = False
    dtype: str = "auto"  # "auto" (fp16 on CUDA, fp32 on CPU), "float32", "float16"


@dataclass
class PromptConfig:
    """Prompt processing: view-dependent suffixes as in DreamFusion."""

    view_dependent: bool = True
    front_suffix: str = ", front view"
    side_suffix: str = ", side view"
    back_suffix: str = ", back view"
    overhead_suffix: str = ", overhead view"
    front_threshold_deg: float = 45.0  # |azimuth| below this is "front"
    back_threshold_deg: float = 45.0  # |azimuth - 180| below this is "back"
    overhead_threshold_deg: float = 60.0  # elevation above this is "overhead"
    # Azimuth sectors (this project's refinement of DreamFusion's words): when names are given, the
    # azimuth circle is cut into that many equal sectors, the first centred on the front (azimuth 0)
    # and the next towards positive azimuth, and a camera's suffix names its sector by view_format
    # (overhead_view_format above overhead_threshold_deg). Sectors narrower than 90 degrees tell how
    # a cube is turned, which front / side / back cannot. Empty: front / side / back / overhead.
    azimuth_views: tuple[str, ...] = ()
    view_format: str = ", {} view"
    overhead_view_format: str = ", {} view from above"
    known_similarity_warn: float = 0.45  # warn when a prompt is less similar than this to all known concepts


@dataclass
class GuidanceConfig:
    """Score distillation guidance; see ../shared/psd-method.md for each field's role."""

    method: str = "psd"  # one of METHODS
    guidance_scale: float = 100.0  # CFG scale s
    weighting: str = "sds"  # w(t): "sds" = 1 - alpha_bar_t, "uniform" = 1
    t_min: float = 0.02  # fraction of the training timesteps
    t_max: float = 0.98
    t_max_end: float = 0.98  # t_max is annealed linearly to this ...
    t_min_end: float = 0.02
    t_anneal_start: float = 0.0  # ... between these fractions of the run
    t_anneal_end: float = 1.0
    grad_clip: float = 0.0  # clip |grad| per element (0 = off)
    # Camera-conditioned priors only: true = the negative (unconditional) half gets "camera
    # unknown", so CFG amplifies the camera along with the prompt (as Zero-1-to-3 guides on its
    # camera); false = both halves see the camera and CFG contrasts the prompt alone. With the
    # camera-map prior tried so far it left the cube's round top as it was (training/README.md).
    camera_cfg: bool = False
    # reward-grad baseline
    reward_grad_scale: float = 1.0  # lambda_r
    # PSD
    preference_scale: float = 1.0  # lambda
    tau: float = 0.05  # reward gap at which reward-based scaling saturates
    reward_scaling: bool = True
    num_samples: int = 2  # K noisy samples per step
    neg_lr: float = 1e-3  # eta, Adam learning rate of the negative embedding
    neg_update_every: int = 1  # k
    neg_beta: float = 0.1  # beta, pull of n back to n_0
    neg_update_start: int = 0  # first step at which n is adapted


DENSITY_ACTIVATIONS = ("softplus", "exp", "relu")
# trilinear lookup kernels of the grid field (scene/field.py)
SAMPLERS = ("auto", "grid_sample_3d", "atlas_2d")


@dataclass
class FieldConfig:
    """The 3D field: density and colour on a dense voxel grid."""

    kind: str = "grid"
    resolution: int = 48
    bound: float = 1.0  # the field lives in [-bound, bound]^3
    density_activation: str = "softplus"  # "softplus" or "exp" or "relu"
    density_scale: float = 1.0
    blob_density: float = 5.0  # density-blob initialisation (DreamFusion/Magic3D)
    blob_radius: float = 0.5
    # The blob's distance is this p-norm of the position: 2 = a ball, larger = a box with rounder
    # edges the lower it is (0 = the max-norm, a box). A box did not square the shapes preset's
    # cube (docs/results/shape_basin.md).
    blob_norm: float = 2.0
    init_density: float = -4.0  # raw density bias far from the blob (-4: softplus 0.02, no initial haze)
    init_color: float = 0.0  # raw colour logit at init (0 = grey)
    color_noise: float = 0.0  # std of random colour logits at init
    # trilinear lookup: "auto" (2D-atlas kernel on CPU, 5D grid_sample elsewhere), "grid_sample_3d", "atlas_2d".
    # The atlas exists because PyTorch's CPU grid_sample is vectorised for 2D inputs only (~2x faster).
    sampler: str = "auto"
    # Normals are -grad/|grad| of the raw density (difference between neighbouring voxels); below this
    # length they shorten instead, so flat regions do not amplify gradients by 1/|grad|.
    normal_eps: float = 1e-3


@dataclass
class CameraConfig:
    """Random training cameras (spherical, looking at the origin) and preview views."""

    batch_size: int = 1
    distance_range: tuple[float, float] = (2.0, 2.6)
    elevation_range: tuple[float, float] = (-10.0, 45.0)
    # With this probability a camera's elevation is drawn from overhead_range instead (0 = never),
    # like the shapes world's own high views; 0 keeps the random draws of runs without it.
    overhead_prob: float = 0.0
    overhead_range: tuple[float, float] = (60.0, 80.0)
    azimuth_range: tuple[float, float] = (-180.0, 180.0)
    fovy_range: tuple[float, float] = (40.0, 50.0)
    preview_views: int = 4
    preview_elevation: float = 15.0
    preview_distance: float = 2.4
    preview_fovy: float = 45.0


@dataclass
class RenderConfig:
    """The volume renderer."""

    resolution: int = 64  # training render side (pixels)
    preview_resolution: int = 96
    samples_per_ray: int = 64
    background: str = "white"  # "white", "random", "learned"
    shading: str = "albedo"  # "albedo", "lambertian", "textureless", "random"
    shading_start: float = 0.0  # fraction of the run after which non-albedo shading is used
    ambient: float = 0.3
    near: float = 0.5
    far: float = 4.0
    # Added by the scene module:
    shading_probs: tuple[float, float, float] = (0.2, 0.4, 0.4)  # "random" shading: P(albedo, lambertian, textureless)
    textureless_albedo: float = 0.8  # grey, not white, so lit textureless shapes stay visible on a white background
    light_jitter: float = 0.5  # training only: std of the noise added to the camera-direction light
    learned_background_logit: float = 0.0  # "learned" background starts at sigmoid(this) grey
    # Rays are marched only through the box around voxels denser than this (0 = the whole field box).
    # Such thin density adds under 4% opacity along the longest ray, and skipping it saves render time.
    skip_density: float = 0.01


@dataclass
class OptimConfig:
    """Optimisation of the 3D parameters and regulariser weights."""

    lr: float = 0.05
    color_lr: float = 0.05
    background_lr: float = 0.01
    betas: tuple[float, float] = (0.9, 0.99)
    weight_decay: float = 0.0
    lambda_opacity: float = 0.0  # L1 sparsity of the rendered opacity
    lambda_entropy: float = 0.0  # binary-entropy of the rendered opacity (crisp silhouette)
    lambda_orient: float = 0.0  # orientation loss (used with shading)
    lambda_tv: float = 0.0  # total variation of the density grid (fewer floaters)
    # Silhouette sharpening: the prior only sees render.resolution, so nothing pushes the opacity
    # binary below that pixel size. When > 0, one random camera is also rendered at this resolution
    # every `sharpen_every` steps from `sharpen_start` (fraction of the run), and only the opacity
    # regularisers (lambda_entropy, lambda_opacity, times sharpen_scale) act on it - no prior or reward call.
    sharpen_resolution: int = 0
    sharpen_every: int = 2
    sharpen_start: float = 0.33
    sharpen_scale: float = 1.0
    max_nonfinite_steps: int = 5  # consecutive NaN/Inf steps before the run ends


@dataclass
class ExportConfig:
    """Mesh, turntable and views export."""

    mesh_resolution: int = 96
    density_threshold: float = 5.0
    keep_largest_component: bool = True
    video_frames: int = 36
    video_fps: int = 12
    video_resolution: int = 128
    views_resolution: int = 128
    video_format: str = "mp4"  # "mp4" (falls back to "gif" if no ffmpeg) or "gif"
    # Added by the export module:
    render_batch: int = 4  # views rendered per renderer call (bounds memory at video_resolution)
    mesh_chunk: int = 262144  # lattice points evaluated per chunk during marching cubes
    material_metallic: float = 0.0  # GLB PBR material; white base colour so vertex colours show as they are
    material_roughness: float = 1.0
    # Vertex colours: a head-on volume-render ray per vertex along its inward normal (export.mesh.vertex_colours),
    # from this far outside the surface to this far inside (world units; a field voxel is 2*bound/resolution).
    colour_ray_outside: float = 0.1
    colour_ray_inside: float = 0.3
    colour_ray_samples: int = 32  # 1 = the field's colour at the vertex itself


@dataclass
class RunConfig:
    """Everything that defines one text-to-3D run."""

    prompt: str = ""
    negative_prompt: str = ""
    preset: str = "tiny-random"
    seed: int = 0
    steps: int = 300
    preview_every: int = 25
    preview_start: bool = True  # preview the starting shape (step 0, empty metrics) before the models load
    preview_first_step: bool = True  # also preview after step 1, so the first guided picture comes at once
    out_dir: str = ""
    device: str = "auto"  # "auto", "cpu", "cuda", "cuda:1", "mps"
    threads: int = 0  # torch CPU threads (0 = leave as is)
    offline_label: str = ""  # shown with outputs, e.g. "tiny-random: plumbing test, not a real model"
    prior: PriorConfig = dataclasses.field(default_factory=PriorConfig)
    reward: RewardConfig = dataclasses.field(default_factory=RewardConfig)
    prompt_processing: PromptConfig = dataclasses.field(default_factory=PromptConfig)
    guidance: GuidanceConfig = dataclasses.field(default_factory=GuidanceConfig)
    field: FieldConfig = dataclasses.field(default_factory=FieldConfig)
    camera: CameraConfig = dataclasses.field(default_factory=CameraConfig)
    render: RenderConfig = dataclasses.field(default_factory=RenderConfig)
    optim: OptimConfig = dataclasses.field(default_factory=OptimConfig)
    export: ExportConfig = dataclasses.field(default_factory=ExportConfig)


# ----------------------------------------------------------------------------- conversion

def config_to_dict(cfg: Any) -> dict[str, Any]:
    """Turn a (nested) config dataclass into plain JSON-able dicts."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Convert a JSON/CLI value to the annotated field type, or raise ConfigError."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], where)
    if origin is tuple:
        if isinstance(value, str):
            value = [v.strip() for v in value.strip("()[] ").split(",") if v.strip()]
        if len(args) == 2 and args[1] is Ellipsis:  # tuple[X, ...]: any length
            if not isinstance(value, (list, tuple)):
                raise ConfigError(f"{where}: expected a list like 'a,b,c', got {value!r}")
            return tuple(_coerce(v, args[0], where) for v in value)
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ConfigError(f"{where}: expected {len(args)} values like 'a,b', got {value!r}")
        return tuple(_coerce(v, a, where) for v, a in zip(value, args))
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("0", "false", "no", "off"):
            return False
        if isinstance(value, (int, float)) and value in (0, 1):
            return bool(value)
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if tp in (int, float):
        try:
            out = tp(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected a {tp.__name__}, got {value!r}") from None
        if tp is int and isinstance(value, float) and not value.is_integer():
            raise ConfigError(f"{where}: expected a whole number, got {value!r}")
        return out
    if tp is str:
        return "" if value is None else str(value)
    return value


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def update_config(cfg: Any, values: dict[str, Any], where: str = "") -> Any:
    """Recursively set fields of `cfg` from a nested dict; unknown keys raise ConfigError."""
    types = _field_types(type(cfg))
    for key, value in values.items():
        path = f"{where}{key}"
        if key not in types:
            known = ", ".join(sorted(types))
            raise ConfigError(f"unknown config key '{path}'. Known keys here: {known}")
        current = getattr(cfg, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"'{path}' is a section; set its fields as '{path}.NAME=VALUE'")
            update_config(current, value, f"{path}.")
        else:
            setattr(cfg, key, _coerce(value, types[key], path))
    return cfg


def parse_override(text: str) -> dict[str, Any]:
    """Turn 'guidance.guidance_scale=50' into {'guidance': {'guidance_scale': '50'}}."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like section.key=value, e.g. guidance.guidance_scale=50")
    key, value = text.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"override {text!r} has an empty key part")
    nested: dict[str, Any] = {}
    node = nested
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value.strip()
    return nested


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def parse_overrides(texts: list[str]) -> dict[str, Any]:
    """Several dotted overrides merged into one nested dict."""
    merged: dict[str, Any] = {}
    for text in texts:
        merged = _merge(merged, parse_override(text))
    return merged


# ----------------------------------------------------------------------------- presets

def list_presets() -> list[str]:
    """Names of the presets shipped in psd_engine/presets/."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.json"))


def load_preset(name: str) -> dict[str, Any]:
    """The override dict of a named preset (a JSON file in psd_engine/presets/)."""
    path = PRESET_DIR / f"{name}.json"
    if not path.is_file():
        raise ConfigError(f"unknown preset '{name}'. Available presets: {', '.join(list_presets())}")
    data = json.loads(path.read_text().replace("{assets}", ASSETS_DIR.as_posix()))
    data.pop("description", None)
    data.pop("offline", None)
    return data


def preset_info(name: str) -> dict[str, Any]:
    """The preset's description and metadata (description, offline flag)."""
    path = PRESET_DIR / f"{name}.json"
    if not path.is_file():
        raise ConfigError(f"unknown preset '{name}'. Available presets: {', '.join(list_presets())}")
    data = json.loads(path.read_text())
    return {"name": name, "description": data.get("description", ""), "offline": bool(data.get("offline", False))}


def resolve_config(
    preset: str | None = None,
    overrides: list[str] | dict[str, Any] | None = None,
    **top: Any,
) -> RunConfig:
    """Build a RunConfig from a preset, then dotted overrides, then top-level keyword values."""
    cfg = RunConfig()
    name = preset or top.get("preset") or cfg.preset
    update_config(cfg, load_preset(name))
    cfg.preset = name
    update_config(cfg, overrides if isinstance(overrides, dict) else parse_overrides(overrides or []))
    update_config(cfg, {k: v for k, v in top.items() if v is not None and k != "preset"})
    validate_config(cfg)
    return cfg


def _check_range(name: str, values: tuple[float, float], low: float | None = None, high: float | None = None) -> None:
    lo, hi = values
    if lo > hi:
        raise ConfigError(f"camera.{name} must be (min, max) with min <= max; got {values}")
    if (low is not None and lo < low) or (high is not None and hi > high):
        raise ConfigError(f"camera.{name} must lie within [{low}, {high}]; got {values}")


def check_autocast(mode: str) -> None:
    """Raise ConfigError unless `mode` is a prior.autocast choice (validate_config and the prior loaders)."""
    if mode not in AUTOCAST_MODES:
        raise ConfigError(f"prior.autocast must be one of {', '.join(AUTOCAST_MODES)}; got '{mode}'")


def check_camera(cfg: CameraConfig) -> None:
    """Raise ConfigError naming the first camera range or probability that is out of bounds."""
    _check_range("distance_range", cfg.distance_range, low=1e-3)
    _check_range("elevation_range", cfg.elevation_range, low=-90.0, high=90.0)
    _check_range("fovy_range", cfg.fovy_range, low=1e-3, high=179.0)
    _check_range("azimuth_range", cfg.azimuth_range)
    if not 0.0 <= cfg.overhead_prob <= 1.0:
        raise ConfigError(f"camera.overhead_prob must lie within [0, 1]; got {cfg.overhead_prob}")
    _check_range("overhead_range", cfg.overhead_range, low=-90.0, high=90.0)


def check_field(cfg: FieldConfig) -> None:
    """Raise ConfigError naming the FieldConfig value that cannot build a grid field."""
    if cfg.resolution < 4:
        raise ConfigError(f"field.resolution must be >= 4; got {cfg.resolution}")
    if cfg.bound <= 0:
        raise ConfigError(f"field.bound must be > 0; got {cfg.bound}")
    if cfg.density_activation not in DENSITY_ACTIVATIONS:
        choices = ", ".join(DENSITY_ACTIVATIONS)
        raise ConfigError(f"field.density_activation must be one of {choices}; got '{cfg.density_activation}'")
    if cfg.sampler not in SAMPLERS:
        raise ConfigError(f"field.sampler must be one of {', '.join(SAMPLERS)}; got '{cfg.sampler}'")
    if cfg.blob_density != 0 and cfg.blob_radius <= 0:
        raise ConfigError(f"field.blob_radius must be > 0 when field.blob_density is set; got {cfg.blob_radius}")
    if cfg.blob_norm != 0 and cfg.blob_norm < 1:
        raise ConfigError(f"field.blob_norm must be >= 1 (a p-norm) or 0 (the max-norm, a box); got {cfg.blob_norm}")


def check_prompt_processing(cfg: PromptConfig) -> None:
    """Raise ConfigError naming the view-word setting that cannot name every camera."""
    names = cfg.azimuth_views
    if names and (len(set(names)) != len(names) or not all(n.strip() for n in names)):
        raise ConfigError(f"prompt_processing.azimuth_views must be distinct, non-empty names; got {list(names)}")
    for key in ("view_format", "overhead_view_format"):
        if names and getattr(cfg, key).count("{}") != 1:
            raise ConfigError(f"prompt_processing.{key} must hold one '{{}}' where the view's name goes, "
                              f"e.g. ', {{}} view'; got {getattr(cfg, key)!r}")


def validate_config(cfg: RunConfig) -> None:
    """Check ranges and choices; raise ConfigError naming the field and the allowed values."""
    g = cfg.guidance
    if g.method not in METHODS:
        raise ConfigError(f"guidance.method must be one of {', '.join(METHODS)}; got '{g.method}'")
    checks = [
        (cfg.steps >= 1, "steps must be >= 1"),
        (cfg.preview_every >= 1, "preview_every must be >= 1"),
        (0.0 <= g.t_min < g.t_max <= 1.0, "guidance.t_min < guidance.t_max must lie in [0, 1]"),
        (0.0 <= g.t_min_end < g.t_max_end <= 1.0, "guidance.t_min_end < guidance.t_max_end must lie in [0, 1]"),
        (g.num_samples >= 2, "guidance.num_samples (K) must be >= 2"),
        (g.neg_update_every >= 1, "guidance.neg_update_every must be >= 1"),
        (g.tau > 0, "guidance.tau must be > 0"),
        (g.guidance_scale >= 0, "guidance.guidance_scale must be >= 0"),
        (g.weighting in ("sds", "uniform"), "guidance.weighting must be 'sds' or 'uniform'"),
        (cfg.render.background in ("white", "random", "learned"), "render.background must be white, random or learned"),
        (cfg.render.shading in ("albedo", "lambertian", "textureless", "random"),
         "render.shading must be albedo, lambertian, textureless or random"),
        (8 <= cfg.render.resolution <= 1024, "render.resolution must be in [8, 1024]"),
        (cfg.render.samples_per_ray >= 4, "render.samples_per_ray must be >= 4"),
        (cfg.optim.sharpen_resolution == 0 or 8 <= cfg.optim.sharpen_resolution <= 1024,
         "optim.sharpen_resolution must be 0 (off) or in [8, 1024]"),
        (cfg.optim.sharpen_every >= 1, "optim.sharpen_every must be >= 1"),
        (0.0 <= cfg.optim.sharpen_start <= 1.0, "optim.sharpen_start must lie in [0, 1]"),
        (cfg.optim.sharpen_scale >= 0, "optim.sharpen_scale must be >= 0"),
        (cfg.camera.batch_size >= 1, "camera.batch_size must be >= 1"),
        (cfg.prior.kind in ("latent", "pixel"), "prior.kind must be 'latent' or 'pixel'"),
        (cfg.reward.kind in ("hpsv2", "pickscore", "clip", "openclip", "none"),
         "reward.kind must be hpsv2, pickscore, clip, openclip or none"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
    check_autocast(cfg.prior.autocast)
    check_camera(cfg.camera)
    check_field(cfg.field)
    check_prompt_processing(cfg.prompt_processing)
    if g.method != "sds" and cfg.reward.kind == "none":
        raise ConfigError(f"method '{g.method}' needs a reward model; set reward.kind or use method 'sds'")


def save_config(cfg: RunConfig, path: str | Path) -> None:
    """Write the resolved config as JSON."""
    Path(path).write_text(json.dumps(config_to_dict(cfg), indent=2) + "\n")


def load_config(path: str | Path) -> RunConfig:
    """Load a RunConfig saved by save_config (unknown keys are an error)."""
    cfg = RunConfig()
    update_config(cfg, json.loads(Path(path).read_text()))
    validate_config(cfg)
    return cfg
