"""Command-line plumbing shared by the training scripts: --set overrides, output folder, recorded command."""
from __future__ import annotations

import dataclasses
import shlex
import sys
import tempfile
from pathlib import Path
from typing import Any, TypeVar

Config = TypeVar("Config")


def apply_set_overrides(cfg: Config, items: list[str]) -> Config:
    """Apply --set NAME=VALUE items to the config dataclass, reading each value as its field's current type."""
    fields = {f.name for f in dataclasses.fields(cfg)}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or name not in fields:
            raise SystemExit(f"--set {item!r}: expected NAME=VALUE with NAME one of {', '.join(sorted(fields))}")
        current = getattr(cfg, name)
        try:
            if isinstance(current, tuple):
                # An empty default tuple has no element to take the type from: read numbers as int.
                kind = type(current[0]) if current else int
                parsed = tuple(kind(v.strip()) for v in value.strip("()").split(",") if v.strip())
            elif isinstance(current, bool):
                parsed = value.lower() in ("1", "true", "yes", "on")
            else:
                parsed = type(current)(value)
        except ValueError:
            raise SystemExit(f"--set {item!r}: could not read {name} from {value!r}") from None
        cfg = dataclasses.replace(cfg, **{name: parsed})
    return cfg


def replace_given(cfg: Config, **values: Any) -> Config:
    """The config with each named option that was given on the command line (not None) set."""
    return dataclasses.replace(cfg, **{name: value for name, value in values.items() if value is not None})


def output_folder(out: str | None, smoke: bool, default: Path, smoke_prefix: str) -> Path:
    """--out if given, else a fresh temporary folder for a --smoke run, else `default`."""
    if out:
        return Path(out)
    if smoke:
        return Path(tempfile.mkdtemp(prefix=smoke_prefix))
    return default


def recorded_command(script: str, argv: list[str] | None) -> str:
    """The command line that reproduces this run, as stored next to the trained weights."""
    given = argv if argv is not None else sys.argv[1:]
    return f"python {script} " + " ".join(shlex.quote(a) for a in given)
