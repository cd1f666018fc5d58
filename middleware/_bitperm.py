"""Fast permutation of the 32 bits of every word in an array (numpy).

Bit indices follow the ShuffleBits reference: index 0 is the most significant bit (a float32's
sign), 31 the least significant. Output bit i = input bit perm[i].

A permutation is applied through lookup tables: each input byte (or 16-bit half) maps to the
output bits it contributes, and the contributions are OR-ed. 8-bit tables are cheap to build
(fresh per-message permutations use them); 16-bit tables halve the gathers for large arrays.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["WordPermutation", "validate_permutation"]

# Build 16-bit tables only when an array is large enough to repay the ~0.2 ms they take.
_WIDE_TABLE_MIN_WORDS = 16384
# Process large arrays in slices that keep temporaries in cache.
_CHUNK_WORDS = 32768

_BYTE_BITS = ((np.arange(256)[:, None] >> np.arange(8)) & 1).astype(np.float64)  # (256, 8)
_POW2 = np.ldexp(1.0, np.arange(32))
_ARANGE32 = np.arange(32)


def validate_permutation(perm: Sequence[int] | np.ndarray) -> np.ndarray:
    """Return `perm` as an int64 array, or raise if it is not a permutation of 0..31."""
    arr = np.asarray(perm)
    if arr.shape != (32,) or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"perm must be 32 integers, got shape {arr.shape} of {arr.dtype}")
    if not np.array_equal(np.sort(arr), np.arange(32)):
        raise ValueError("perm must contain each of 0..31 exactly once")
    return arr.astype(np.int64)


class WordPermutation:
    """Applies one bit permutation to uint32 words. Immutable; tables are built lazily."""

    __slots__ = ("_perm", "_byte_table", "_wide_tables", "_long_lived")

    def __init__(self, perm: Sequence[int] | np.ndarray, *, long_lived: bool = False,
                 _trusted: bool = False) -> None:
        # long_lived: a fixed key used for many messages, so the 16-bit tables always pay off.
        # _trusted: perm is known-good (argsort output), skip validation on the hot path.
        self._perm = np.asarray(perm, dtype=np.int64) if _trusted else validate_permutation(perm)
        self._byte_table: np.ndarray | None = None
        self._wide_tables: tuple[np.ndarray, np.ndarray] | None = None
        self._long_lived = long_lived

    def inverse(self) -> "WordPermutation":
        return WordPermutation(np.argsort(self._perm), long_lived=self._long_lived, _trusted=True)

    def byte_table(self) -> np.ndarray:
        """1024 uint32 entries: table[256*b + v] = output bits contributed by byte b == v."""
        if self._byte_table is None:
            # Input bit j (LSB-first) is MSB-first bit 31-j; it lands at MSB-first position
            # inv[31-j], i.e. LSB-first position 31 - inv[31-j].
            inv = np.empty(32, dtype=np.int64)
            inv[self._perm] = _ARANGE32
            weights = _POW2[31 - inv[::-1]].reshape(4, 8)  # (byte, bit) -> 2**dest
            # Sums of distinct powers of two below 2**32 are exact in float64.
            self._byte_table = (weights @ _BYTE_BITS.T).astype(np.uint32).reshape(-1)
        return self._byte_table

    def _wide(self) -> tuple[np.ndarray, np.ndarray]:
        if self._wide_tables is None:
            t = self.byte_table()
            v = np.arange(65536, dtype=np.intp)
            lo_byte, hi_byte = v & 0xFF, v >> 8
            low = t[lo_byte] | t[256 + hi_byte]
            high = t[512 + lo_byte] | t[768 + hi_byte]
            self._wide_tables = (low, high)
        return self._wide_tables

    def apply(self, words: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Permute the bits of every element of a uint32 array into `out` (new if None)."""
        if words.dtype != np.uint32:
            raise TypeError(f"words must be uint32, got {words.dtype}")
        flat = np.ascontiguousarray(words).reshape(-1)
        if out is None:
            out = np.empty(words.shape, dtype=np.uint32)
        if out.dtype != np.uint32 or out.size != flat.size or not out.flags.c_contiguous:
            raise ValueError("out must be a contiguous uint32 array of the same size")
        flat_out = out.reshape(-1)
        # 16-bit tables: always for a fixed key; for a per-message permutation only when the
        # array is large enough to repay building them.
        if self._long_lived or flat.size >= _WIDE_TABLE_MIN_WORDS:
            self._apply_wide(flat, flat_out)
        elif flat.size:
            self._apply_bytes(flat, flat_out)
        return out

    def _apply_bytes(self, flat: np.ndarray, out: np.ndarray) -> None:
        tables = self.byte_table().reshape(4, 256)
        octets = flat.view(np.uint8).reshape(-1, 4)  # little-endian: column b is byte b
        tables[0].take(octets[:, 0], out=out, mode="clip")
        for b in (1, 2, 3):
            out |= tables[b].take(octets[:, b], mode="clip")

    def _apply_wide(self, flat: np.ndarray, out: np.ndarray) -> None:
        low, high = self._wide()
        halves = flat.view(np.uint16).reshape(-1, 2)  # little-endian: [:, 0] is the low half
        if flat.size <= _CHUNK_WORDS:
            low.take(halves[:, 0], out=out, mode="clip")
            out |= high.take(halves[:, 1], mode="clip")
            return
        tmp = np.empty(min(_CHUNK_WORDS, flat.size), dtype=np.uint32)
        for start in range(0, flat.size, _CHUNK_WORDS):
            stop = min(start + _CHUNK_WORDS, flat.size)
            part = tmp[: stop - start]
            low.take(halves[start:stop, 0], out=out[start:stop], mode="clip")
            high.take(halves[start:stop, 1], out=part, mode="clip")
            out[start:stop] |= part

    def __repr__(self) -> str:
        return "WordPermutation(<secret>)"

    def __reduce__(self):
        raise TypeError("permutations are key material and cannot be pickled")
