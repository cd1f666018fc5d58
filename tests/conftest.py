"""Shared fixtures. Tests generate their own keys; none are stored in the repo."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))  # test helpers: reference_shufflebits, softhsm
sys.path.insert(0, str(TESTS / "handlers"))  # fl_serving_helpers, for every engine's tests
# Ray clusters started by tests live on 127.0.0.1 (read when ray is first imported).
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

settings.register_profile("ci", max_examples=200, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


class _ProcessState:
    """Process-wide state a test may change: the environment, numpy's error handling, torch's
    thread count (float sums depend on it, so a leak changes later tests' numbers) and
    logging levels. Taken before and given back after, so no test depends on the order."""

    def __init__(self) -> None:
        self.env = dict(os.environ)
        self.np_err = np.geterr()
        torch = sys.modules.get("torch")
        self.threads = torch.get_num_threads() if torch is not None else None
        self.levels = {name: lg.level for name, lg in logging.root.manager.loggerDict.items()
                       if isinstance(lg, logging.Logger)}
        self.root_level = logging.root.level

    def restore(self) -> None:
        if os.environ != self.env:
            os.environ.clear()
            os.environ.update(self.env)
        np.seterr(**self.np_err)
        torch = sys.modules.get("torch")
        if torch is not None:
            threads = self.threads if self.threads is not None else _TORCH_DEFAULT_THREADS
            if threads and torch.get_num_threads() != threads:
                torch.set_num_threads(threads)
        for name, level in self.levels.items():
            logging.getLogger(name).setLevel(level)
        logging.root.setLevel(self.root_level)


def _torch_default_threads() -> int | None:
    try:
        import torch
    except ImportError:
        return None
    return torch.get_num_threads()


# torch's thread count as the process starts, before any test can change it.
_TORCH_DEFAULT_THREADS = _torch_default_threads()


@pytest.fixture(autouse=True, scope="module")
def _module_process_state():
    """Module fixtures (a server, a trained model) may change the state too."""
    state = _ProcessState()
    yield
    state.restore()


@pytest.fixture(autouse=True)
def _test_process_state():
    state = _ProcessState()
    yield
    state.restore()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


def has_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    if has_cuda():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)
