"""The Beneš network compiled with numba: branch-free delta swaps, vectorised by LLVM.

Bit-identical to `_benes.apply_numpy` (tests/test_kernels.py). Two words travel in each uint64
lane (a stage's mask never crosses bit 31, so the halves do not mix); odd-sized or unaligned
arrays take the uint32 loop. Signatures are explicit, so importing this module compiles (or
loads from numba's cache) everything a request can need: nothing compiles on the request path.
"""

from __future__ import annotations

import numpy as np
from numba import njit, types

__all__ = ["benes64", "benes64_inplace", "benes32", "unit_images"]

_U64, _U32 = types.Array(types.uint64, 1, "C"), types.Array(types.uint32, 1, "C")
_U64_RO, _U32_RO = (types.Array(types.uint64, 1, "C", readonly=True),
                    types.Array(types.uint32, 1, "C", readonly=True))
_OPTS = dict(cache=True, nogil=True, boundscheck=False, error_model="numpy")


@njit(inline="always")
def _network(v, m0, m1, m2, m3, m4, m5, m6, m7, m8):
    t = ((v >> 1) ^ v) & m0
    v ^= t ^ (t << 1)
    t = ((v >> 2) ^ v) & m1
    v ^= t ^ (t << 2)
    t = ((v >> 4) ^ v) & m2
    v ^= t ^ (t << 4)
    t = ((v >> 8) ^ v) & m3
    v ^= t ^ (t << 8)
    t = ((v >> 16) ^ v) & m4
    v ^= t ^ (t << 16)
    t = ((v >> 8) ^ v) & m5
    v ^= t ^ (t << 8)
    t = ((v >> 4) ^ v) & m6
    v ^= t ^ (t << 4)
    t = ((v >> 2) ^ v) & m7
    v ^= t ^ (t << 2)
    t = ((v >> 1) ^ v) & m8
    v ^= t ^ (t << 1)
    return v


@njit([types.void(src, _U64, _U64) for src in (_U64, _U64_RO)], **_OPTS)
def benes64(x, out, m):
    """out[i] = network(x[i]) for uint64 lanes; m holds each 32-bit mask twice."""
    m0, m1, m2, m3, m4, m5, m6, m7, m8 = m[0], m[1], m[2], m[3], m[4], m[5], m[6], m[7], m[8]
    for i in range(x.size):
        out[i] = _network(x[i], m0, m1, m2, m3, m4, m5, m6, m7, m8)


@njit([types.void(_U64, _U64)], **_OPTS)
def benes64_inplace(v, m):
    # Its own loop: one array, so LLVM vectorises it (an aliased x/out pair would not be).
    m0, m1, m2, m3, m4, m5, m6, m7, m8 = m[0], m[1], m[2], m[3], m[4], m[5], m[6], m[7], m[8]
    for i in range(v.size):
        v[i] = _network(v[i], m0, m1, m2, m3, m4, m5, m6, m7, m8)


@njit([types.void(src, _U32, _U32) for src in (_U32, _U32_RO)], **_OPTS)
def benes32(x, out, m):
    """The same network one uint32 at a time (odd sizes, unaligned buffers, tails)."""
    m0, m1, m2, m3, m4, m5, m6, m7, m8 = (np.uint64(m[0]), np.uint64(m[1]), np.uint64(m[2]),
                                          np.uint64(m[3]), np.uint64(m[4]), np.uint64(m[5]),
                                          np.uint64(m[6]), np.uint64(m[7]), np.uint64(m[8]))
    for i in range(x.size):
        out[i] = np.uint32(_network(np.uint64(x[i]), m0, m1, m2, m3, m4, m5, m6, m7, m8))


@njit([types.void(_U32, _U32)], **_OPTS)
def unit_images(m, out):
    """out[j] = network(1 << j): where each input bit lands (32 words, no data-dependent access)."""
    for j in range(32):
        out[j] = np.uint32(1) << np.uint32(j)
    benes32(out, out, m)
