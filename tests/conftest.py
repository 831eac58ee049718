"""Fixtures shared by the test modules that load tiny random models (priors and rewards)."""
from __future__ import annotations

import pytest
import torch

from psd_engine.models import clear_cache as clear_prior_cache
from psd_engine.rewards import clear_cache as clear_reward_cache


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models on a shared 2-core machine: one intra-op thread avoids OpenMP spin-waits (60x)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    """A private PSD3D_CACHE for this module (restored afterwards), and clean prior and reward caches."""
    path = tmp_path_factory.mktemp("psd-cache")
    mp = pytest.MonkeyPatch()
    mp.setenv("PSD3D_CACHE", str(path))
    clear_prior_cache()
    clear_reward_cache()
    yield path
    clear_prior_cache()
    clear_reward_cache()
    mp.undo()
