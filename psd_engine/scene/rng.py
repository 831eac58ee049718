"""Random draws that are reproducible from a torch.Generator whatever device the result lives on."""
from __future__ import annotations

import torch


def _draw(fn, shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device | str) -> torch.Tensor:
    # A generator can only fill tensors on its own device; drawing there and moving keeps a CPU
    # generator's sequence identical whether the scene runs on the CPU or a GPU.
    if generator is None:
        return fn(shape, device=device)
    return fn(shape, generator=generator, device=generator.device).to(device)


def uniform(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device | str) -> torch.Tensor:
    """U[0, 1) floats of `shape` on `device`, from `generator` (or torch's global RNG if None)."""
    return _draw(torch.rand, shape, generator, device)


def normal(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device | str) -> torch.Tensor:
    """N(0, 1) floats of `shape` on `device`, from `generator` (or torch's global RNG if None)."""
    return _draw(torch.randn, shape, generator, device)
