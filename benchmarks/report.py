"""The Markdown report every benchmark writes (a title, the command that reproduces it, then its text) and its picture."""
from __future__ import annotations

import shlex
import sys
from pathlib import Path

import numpy as np


def reproduce_command(script: str, argv: list[str] | None) -> str:
    """The command line that re-runs benchmarks/<script> with these arguments (default: this process's)."""
    return f"python benchmarks/{script} {shlex.join(argv if argv is not None else sys.argv[1:])}".rstrip()


def write_report(out: Path, name: str, title: str, command: str, body: str) -> str:
    """Write <out>/<name>.md ('# title', 'Reproduce: `command`', body), print it and return it."""
    report = f"# {title}\n\nReproduce: `{command}`\n\n{body}"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.md").write_text(report)
    print(report)
    return report


def write_picture(out: Path, filename: str, image: np.ndarray) -> Path:
    """Save a float (H, W, 3) picture in [0, 1] (clipped) as <out>/<filename> and return its path."""
    import imageio.v3 as iio

    from psd_engine.shapes import world

    out.mkdir(parents=True, exist_ok=True)
    path = out / filename
    iio.imwrite(path, world.to_uint8(image))
    return path
