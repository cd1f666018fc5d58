"""Which executor runs the Beneš network here, and the `Network` object schemes hold.

Executors, fastest first, all bit-identical to the numpy reference (`_benes.apply_numpy`):

    gfni    numba + AVX-512 VBMI/GFNI byte matrices (`_kernels_gfni.py`)
    benes   numba delta swaps, any CPU (`_kernels_numba.py`)
    numpy   the reference; needs nothing beyond numpy

The fastest one this machine has is chosen once per process, after a bit-exact self-test
against the reference. FEATURELOCK_KERNEL=numpy|benes|gfni forces one (an unavailable choice
is an error, never a silent fallback). numba comes with the `fast` extra; without it the numpy
path serves. Call `warm()` when a worker starts so compiling never lands on a request.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Callable

import numpy as np

from ._benes import STAGES, apply_numpy, inverse_masks

__all__ = ["Network", "KERNELS", "kernel_name", "warm"]

log = logging.getLogger("featurelock.kernels")

KERNELS = ("gfni", "benes", "numpy")
_ENV = "FEATURELOCK_KERNEL"
_UINT32, _UINT64 = np.dtype(np.uint32), np.dtype(np.uint64)
_lock = threading.Lock()
_chosen: "_Executor | None" = None


class _Executor:
    """Runs a network over flat contiguous uint32 arrays: fills out, which is words' own
    buffer when in_place and otherwise does not overlap it."""

    name: str

    def apply(self, words: np.ndarray, out: np.ndarray, network: "Network", in_place: bool) -> None:
        raise NotImplementedError


class _Numpy(_Executor):
    name = "numpy"

    def apply(self, words, out, network, in_place):
        apply_numpy(words, network.masks, out)


class _Benes(_Executor):
    name = "benes"

    def __init__(self) -> None:
        from . import _kernels_numba

        self._k = _kernels_numba

    def apply(self, words, out, network, in_place):
        if words.size % 2:
            self._k.benes32(words, out, network.masks)
            return
        lanes, out_lanes = words.view(_UINT64), out.view(_UINT64)
        if not (lanes.flags.aligned and out_lanes.flags.aligned):
            self._k.benes32(words, out, network.masks)
        elif in_place:
            self._k.benes64_inplace(out_lanes, network.wide_masks())
        else:
            self._k.benes64(lanes, out_lanes, network.wide_masks())


class _Gfni(_Executor):
    name = "gfni"

    def __init__(self) -> None:
        if not _cpu_has("avx512f", "avx512bw", "avx512vbmi", "gfni"):
            raise RuntimeError("this CPU lacks AVX-512 VBMI or GFNI")
        from . import _kernels_gfni

        self._k = _kernels_gfni

    def apply(self, words, out, network, in_place):
        if network.long_lived:
            self._k.gfni_apply(words, out, network.matrices(), network.masks)
        else:  # one message: build the matrices inside the same compiled call
            self._k.gfni_apply_once(words, out, network.masks)


def _cpu_has(*features: str) -> bool:
    import llvmlite.binding as llvm

    host = llvm.get_host_cpu_features()
    return all(host.get(f, False) for f in features)


_EXECUTORS: dict[str, Callable[[], _Executor]] = {"gfni": _Gfni, "benes": _Benes, "numpy": _Numpy}


def _self_test(executor: _Executor) -> bool:
    rng = np.random.default_rng()
    from ._benes import route

    masks = route(rng.permutation(32))
    words = rng.integers(0, 2**32, 1000 + 17, dtype=np.uint32)
    expected = apply_numpy(words, masks)
    for size in (words.size, words.size - 1):  # odd and even
        for long_lived in (True, False):
            network = Network(masks, long_lived=long_lived)
            out = np.empty(size, dtype=np.uint32)
            executor.apply(words[:size], out, network, False)
            in_place = words[:size].copy()
            executor.apply(in_place, in_place, network, True)
            if not (np.array_equal(out, expected[:size]) and np.array_equal(in_place, expected[:size])):
                return False
    return True


def _choose() -> _Executor:
    forced = os.environ.get(_ENV, "").strip().lower()
    if forced and forced not in _EXECUTORS:
        raise ValueError(f"{_ENV}={forced!r}: choose one of {', '.join(KERNELS)}")
    for name in ([forced] if forced else KERNELS):
        try:
            executor = _EXECUTORS[name]()
            if _self_test(executor):
                return executor
            reason = "its output differs from the reference"
        except Exception as exc:  # ImportError (no numba), no CPU support, compile failure
            reason = f"{type(exc).__name__}: {exc}"
        if forced:
            raise RuntimeError(f"{_ENV}={forced}: kernel unavailable ({reason})")
        log.info("bit-permutation kernel %s unavailable here: %s", name, reason)
    raise AssertionError("the numpy kernel always works")


def _executor() -> _Executor:
    global _chosen
    if _chosen is None:
        with _lock:
            if _chosen is None:
                _chosen = _choose()
                log.info("bit-permutation kernel: %s", _chosen.name)
    return _chosen


def warm() -> str:
    """Choose, compile and self-test the kernel now (worker start); returns its name."""
    return _executor().name


def kernel_name() -> str:
    return _executor().name


class Network:
    """One bit permutation of 32-bit words (9 Beneš masks) and what executors derive from it.

    long_lived: a key's fixed network, used for many messages, so derived forms are cached;
    a per-message network derives them inside the call that uses it. Key material: no repr,
    no pickling.
    """

    __slots__ = ("masks", "long_lived", "_wide", "_matrices")

    def __init__(self, masks: np.ndarray, *, long_lived: bool = False) -> None:
        if masks.shape != (STAGES,) or masks.dtype != np.uint32:
            raise ValueError("a network is 9 uint32 masks")
        self.masks = np.ascontiguousarray(masks)
        self.long_lived = long_lived
        self._wide: np.ndarray | None = None
        self._matrices: np.ndarray | None = None

    @classmethod
    def trusted(cls, masks: np.ndarray, long_lived: bool = False) -> "Network":
        """A network from masks known to be 9 contiguous uint32 (hot path: no checks)."""
        network = cls.__new__(cls)
        network.masks, network.long_lived = masks, long_lived
        network._wide = network._matrices = None
        return network

    def inverse(self) -> "Network":
        return Network.trusted(inverse_masks(self.masks), self.long_lived)

    def wide_masks(self) -> np.ndarray:
        """Each mask twice in a uint64, for two words per lane."""
        if self._wide is None:
            self._wide = self.masks.astype(np.uint64) * np.uint64(0x1_0000_0001)
        return self._wide

    def matrices(self) -> np.ndarray:
        """The 256 bytes of GF(2) matrices the gfni kernel applies."""
        if self._matrices is None:
            from ._kernels_gfni import gfni_matrices

            out = np.empty(256, dtype=np.uint8)
            gfni_matrices(self.masks, out)
            self._matrices = out
        return self._matrices

    def apply(self, words: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Permute every uint32 of `words` (any shape) into `out`: new if None, `words` itself
        (in place), or a contiguous uint32 array of the same size that does not overlap it."""
        if words.dtype != _UINT32:
            raise TypeError(f"words must be uint32, got {words.dtype}")
        flat = words.reshape(-1) if words.flags.c_contiguous else np.ascontiguousarray(words).reshape(-1)
        if out is None:
            out = np.empty(words.shape, dtype=np.uint32)
        elif out.dtype != _UINT32 or out.size != flat.size or not out.flags.c_contiguous:
            raise ValueError("out must be a contiguous uint32 array of the same size")
        if flat.size:
            _executor().apply(flat, out.reshape(-1), self, out is words)
        return out

    def __repr__(self) -> str:
        return "Network(<secret>)"

    def __reduce__(self):
        raise TypeError("bit permutations are key material and cannot be pickled")
