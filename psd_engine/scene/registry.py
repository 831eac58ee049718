"""Registry of 3D field kinds, so `FieldConfig.kind` picks the class and a new kind is one decorator away."""
from __future__ import annotations

from typing import Callable, TypeVar

from psd_engine.config import ConfigError, FieldConfig

_FIELDS: dict[str, type] = {}
T = TypeVar("T", bound=type)


def register_field(kind: str) -> Callable[[T], T]:
    """Class decorator: make the field class buildable as `FieldConfig(kind=kind)`."""

    def wrap(cls: T) -> T:
        if kind in _FIELDS and _FIELDS[kind] is not cls:
            raise ValueError(f"field kind '{kind}' is already registered by {_FIELDS[kind].__name__}")
        _FIELDS[kind] = cls
        return cls

    return wrap


def field_kinds() -> list[str]:
    """Names of the registered field kinds."""
    return sorted(_FIELDS)


def build_field(cfg: FieldConfig, **kwargs):
    """Build the field class registered under `cfg.kind` (keyword arguments go to its constructor)."""
    if cfg.kind not in _FIELDS:
        raise ConfigError(f"unknown field.kind '{cfg.kind}'. Available kinds: {', '.join(field_kinds())}")
    return _FIELDS[cfg.kind](cfg, **kwargs)
