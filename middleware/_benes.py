"""A bit permutation of 32-bit words as a Beneš network, and its numpy reference executor.

A Beneš network on 32 bits is 9 delta swaps with shifts 1, 2, 4, 8, 16, 8, 4, 2, 1. Stage s
swaps bit i with bit i + shift for every set bit i of its 32-bit mask:

    t = ((v >> shift) ^ v) & mask;  v ^= t ^ (t << shift)

Every permutation of 32 bits is some choice of the 9 masks, and applying the stages in reverse
order undoes them (each delta swap is its own inverse, and the shifts read the same backwards).
The network has no branches and no table lookups, so its running time and memory accesses do
not depend on the key or the data (unlike lookup tables indexed by data through key-dependent
tables, which leak through the cache).

The 9 masks are the one description of a permutation here; the numpy code below is the
reference, and the compiled kernels (`_kernels_numba.py`) and the torch path must match it
bit for bit.

Bit indices: the ShuffleBits reference numbers bits most significant first (0 is a float32's
sign); this module works least significant first. `src_from_msb_perm` converts.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["SHIFTS", "STAGES", "ALLOWED", "MASK_BYTES", "validate_permutation", "src_from_msb_perm",
           "route", "masks_from_stream", "inverse_masks_from_stream", "inverse_masks", "apply_numpy"]

SHIFTS = (1, 2, 4, 8, 16, 8, 4, 2, 1)
STAGES = len(SHIFTS)
MASK_BYTES = 4 * STAGES  # keystream bytes that set one random network
# Stage s may only set bits i whose partner i + shift is in the word and not itself a set bit.
ALLOWED = np.array([sum(1 << i for i in range(32) if not i & s) for s in SHIFTS], dtype=np.uint32)

_ALLOWED_REVERSED = np.ascontiguousarray(ALLOWED[::-1])
_WORD = np.dtype("<u4")

# numpy path: large arrays are processed in cache-sized slices.
_CHUNK = 8192


def validate_permutation(perm: Sequence[int] | np.ndarray) -> np.ndarray:
    """Return `perm` as an int64 array, or raise if it is not a permutation of 0..31."""
    arr = np.asarray(perm)
    if arr.shape != (32,) or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"perm must be 32 integers, got shape {arr.shape} of {arr.dtype}")
    if not np.array_equal(np.sort(arr), np.arange(32)):
        raise ValueError("perm must contain each of 0..31 exactly once")
    return arr.astype(np.int64)


def src_from_msb_perm(perm: np.ndarray) -> list[int]:
    """ShuffleBits' perm (output bit i = input bit perm[i], MSB first) as LSB-first sources."""
    src = [0] * 32
    for i, p in enumerate(perm):
        src[31 - i] = 31 - int(p)
    return src


def route(src: Sequence[int]) -> np.ndarray:
    """The 9 stage masks of the network whose output bit j is input bit src[j] (LSB first).

    The looping algorithm (Beneš 1964; Hacker's Delight 7-8): at level d the outer stages pair
    positions that differ in bit d, and each pair sends one element through each half of the
    inner network. Runs once per fixed key (Python, ~100 µs); random per-message networks come
    from `masks_from_stream` instead and need no routing.
    """
    dest_of = [0] * 32  # element now at position p must end at dest_of[p]
    for j, s in enumerate(src):
        dest_of[s] = j
    masks = [0] * STAGES
    for d in range(4):
        bit = 1 << d
        at = {q: p for p, q in enumerate(dest_of)}  # destination -> current position
        half = [-1] * 32
        for start in range(32):
            p, h = start, 0
            while half[p] < 0:
                half[p], half[p ^ bit] = h, 1 - h
                # p's mate goes through the other half, so the element bound for the output
                # mate of the mate's destination must go through half h.
                p = at[dest_of[p ^ bit] ^ bit]
        inner = [0] * 32
        for p in range(32):
            q, h = dest_of[p], half[p]
            if not p & bit and h:
                masks[d] |= 1 << p
            if not q & bit and h:
                masks[STAGES - 1 - d] |= 1 << q
            inner[(p & ~bit) | (h << d)] = (q & ~bit) | (h << d)
        dest_of = inner
    for p in range(32):
        if not p & 16 and dest_of[p] != p:
            masks[4] |= 1 << p
    return np.array(masks, dtype=np.uint32)


def masks_from_stream(stream: bytes | np.ndarray) -> np.ndarray:
    """A random network from MASK_BYTES of keystream: each switch set by one keystream bit.

    Every permutation is reachable and each input bit lands on every position with equal
    probability; the distribution over whole permutations is not uniform (144 switch bits
    for 32! ≈ 2^118 permutations).
    """
    words = np.frombuffer(stream, dtype=_WORD, count=STAGES) if isinstance(stream, bytes) \
        else np.asarray(stream, dtype=np.uint32)[:STAGES]
    return words & ALLOWED


def inverse_masks_from_stream(stream: bytes) -> np.ndarray:
    """inverse_masks(masks_from_stream(stream)), in one step (a per-message hot path)."""
    return np.frombuffer(stream, dtype=_WORD, count=STAGES)[::-1] & _ALLOWED_REVERSED


def inverse_masks(masks: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(masks[::-1])


def apply_numpy(words: np.ndarray, masks: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Permute every uint32 of `words` through the network into `out` (new if None)."""
    if words.dtype != np.uint32:
        raise TypeError(f"words must be uint32, got {words.dtype}")
    if out is None:
        out = np.empty(words.shape, dtype=np.uint32)
    flat = out.reshape(-1)
    flat[...] = words.reshape(-1)
    # Two words per uint64 lane halve the passes; a stage's mask never crosses bit 31, so the
    # halves do not mix.
    wide = flat.size % 2 == 0 and flat.ctypes.data % 8 == 0
    lanes = flat.view(np.uint64) if wide else flat
    stage_masks = (masks.astype(np.uint64) * np.uint64(0x1_0000_0001)) if wide else masks
    tmp = np.empty(min(_CHUNK, lanes.size), dtype=lanes.dtype)
    for start in range(0, lanes.size, _CHUNK):
        v = lanes[start:start + _CHUNK]
        t = tmp[: v.size]
        for shift, mask in zip(SHIFTS, stage_masks):
            shift = lanes.dtype.type(shift)
            np.right_shift(v, shift, out=t)
            t ^= v
            t &= mask
            v ^= t
            t <<= shift
            v ^= t
    return out
