"""The fidelity judge: a small CNN that names the shape and colour of the object in a render.

It measures prompt fidelity in the offline shapes setting ("is this a red cube?"), the role
VQAScore or a person plays with real models. It is trained by training/train_judge.py on
shapes-world renders of every shape-colour pair (it judges, it does not generate, so it may
see the pairs held out from the prior), with fog, floaters, blur, noise and framing
augmentations so that it also reads 3D-field renders and noisy diffusion samples.

    judge = load_judge()                      # assets/shapes-judge/{judge.safetensors, judge.json}
    judge.predict(images) -> [("cube", "red"), ...]
    fidelity(images, "a red cube, front view") -> fraction of views that show a red cube
"""
from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..config import ASSETS_DIR
from .taste import as_numpy_images
from .world import COLORS, SHAPES, parse_prompt

DEFAULT_FOLDER = ASSETS_DIR / "shapes-judge"
WEIGHTS_FILE = "judge.safetensors"
CONFIG_FILE = "judge.json"


@dataclass
class JudgeConfig:
    """Architecture of the judge network and its label sets (saved as judge.json)."""

    resolution: int = 32  # input side; images are resized to it (antialiased bilinear)
    channels: tuple[int, ...] = (32, 64, 96)  # two 3x3 convs per stage, 2x max-pool between stages
    shapes: tuple[str, ...] = SHAPES
    colors: tuple[str, ...] = tuple(COLORS)
    extra: dict = field(default_factory=dict)  # training facts (accuracy, seeds), not used by the network

    def to_json(self) -> dict:
        """JSON-able dict (tuples as lists)."""
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_json(cls, data: dict) -> "JudgeConfig":
        """Inverse of to_json; unknown keys are an error."""
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"judge.json has unknown keys {sorted(unknown)}; known keys: {sorted(known)}")
        out = dict(data)
        for key in ("channels", "shapes", "colors"):
            if key in out:
                out[key] = tuple(out[key])
        return cls(**out)


class JudgeNet(nn.Module):
    """Conv stages -> global average pool -> a shape head and a colour head (logits)."""

    def __init__(self, cfg: JudgeConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for i, c in enumerate(cfg.channels):
            if i:
                layers.append(nn.MaxPool2d(2))
            for _ in range(2):
                layers += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
                c_in = c
        self.features = nn.Sequential(*layers)
        self.shape_head = nn.Linear(c_in, len(cfg.shapes))
        self.color_head = nn.Linear(c_in, len(cfg.colors))
        self.resolution = cfg.resolution

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> resized to the judge's side and centred on 0."""
        if images.shape[-2:] != (self.resolution, self.resolution):
            images = F.interpolate(images, size=(self.resolution, self.resolution), mode="bilinear",
                                   align_corners=False, antialias=True)
        return images * 2.0 - 1.0

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Shape logits (B, n_shapes) and colour logits (B, n_colors) of [0, 1] images."""
        h = self.features(self.preprocess(images)).mean(dim=(2, 3))
        return self.shape_head(h), self.color_head(h)


class Judge:
    """A trained JudgeNet with its label names; inputs are numpy (N, H, W, 3) or torch (B, 3, H, W)."""

    def __init__(self, net: JudgeNet, cfg: JudgeConfig, device: str | torch.device = "cpu") -> None:
        self.cfg = cfg
        self.device = torch.device(device)
        self.net = net.to(self.device).eval().requires_grad_(False)

    def _tensor(self, images) -> torch.Tensor:
        arr = as_numpy_images(images)
        return torch.from_numpy(np.ascontiguousarray(arr.transpose(0, 3, 1, 2))).to(self.device)

    @torch.no_grad()
    def probs(self, images, batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """Class probabilities: shapes (N, len(cfg.shapes)) and colours (N, len(cfg.colors))."""
        x = self._tensor(images)
        shapes, colors = [], []
        for i in range(0, len(x), batch):
            s, c = self.net(x[i : i + batch])
            shapes.append(s.softmax(-1).cpu())
            colors.append(c.softmax(-1).cpu())
        return torch.cat(shapes).numpy(), torch.cat(colors).numpy()

    def predict(self, images) -> list[tuple[str, str]]:
        """The most likely (shape, colour) of each image."""
        shape_p, color_p = self.probs(images)
        return [(self.cfg.shapes[s], self.cfg.colors[c]) for s, c in zip(shape_p.argmax(1), color_p.argmax(1))]


_CACHE: dict[tuple[str, str], Judge] = {}
_LOCK = threading.Lock()


def save_judge(folder: str | Path, net: JudgeNet, cfg: JudgeConfig) -> Path:
    """Write judge.safetensors (float32 state_dict) and judge.json to `folder`."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}, str(folder / WEIGHTS_FILE))
    (folder / CONFIG_FILE).write_text(json.dumps(cfg.to_json(), indent=2) + "\n")
    return folder


def load_judge(folder: str | Path | None = None, device: str | torch.device = "cpu") -> Judge:
    """The judge saved in `folder` (default assets/shapes-judge), loaded once per process."""
    folder = Path(folder) if folder else DEFAULT_FOLDER
    key = (str(folder.resolve()), str(device))
    with _LOCK:
        if key not in _CACHE:
            _CACHE[key] = _load(folder, device)
        return _CACHE[key]


def _load(folder: Path, device: str | torch.device) -> Judge:
    from safetensors.torch import load_file

    weights, config = folder / WEIGHTS_FILE, folder / CONFIG_FILE
    if not weights.is_file() or not config.is_file():
        raise FileNotFoundError(
            f"no fidelity judge in {folder} (expected {WEIGHTS_FILE} and {CONFIG_FILE}); "
            "train one with: python training/train_judge.py"
        )
    cfg = JudgeConfig.from_json(json.loads(config.read_text()))
    net = JudgeNet(cfg)
    net.load_state_dict(load_file(str(weights)))
    return Judge(net, cfg, device)


def fidelity(images, prompt: str, judge: Judge | None = None) -> float:
    """Fraction of images (views) whose predicted shape and colour match those named in `prompt`.

    Only what the prompt names is checked (a prompt with just a colour checks the colour);
    a prompt naming neither a shape nor a colour of the shapes world is an error.
    """
    shape, color = parse_prompt(prompt)
    if shape is None and color is None:
        raise ValueError(
            f"prompt {prompt!r} names no shape ({', '.join(SHAPES)}) and no colour ({', '.join(COLORS)}) "
            "of the shapes world, so the fidelity judge cannot check it"
        )
    judge = judge or load_judge()
    predicted = judge.predict(images)
    hits = [(shape is None or s == shape) and (color is None or c == color) for s, c in predicted]
    return float(np.mean(hits))


__all__ = ["JudgeConfig", "JudgeNet", "Judge", "save_judge", "load_judge", "fidelity", "DEFAULT_FOLDER"]
