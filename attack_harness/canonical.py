"""A permutation-invariant canonical form of a message, and equality on it with a tolerance.

A bit permutation applied to every word of a message (one per message, as `shufflebits-otp`
draws, or one for all) moves whole bit columns (bit k of every element) and changes none of
them. So the SET of a message's 32 columns is the same for every encryption of the same
features: the same image sent twice is recognised by its columns, whatever the permutations.

A server may batch two requests differently and compute features that differ in their last
bits (measured over TorchServe: 10-12 % of a response's bits), which scrambles the low
mantissa columns only. So two messages are "equal" when enough of the first one's
informative columns (neither side's minority share below `INFORMATIVE`) have a twin in the
second within `TOLERANCE` of their bits: sign, exponent and top mantissa columns are kept
exactly by such noise, and a column of a different image, or of random ciphertext, almost
never falls that close.
"""

from __future__ import annotations

import numpy as np

__all__ = ["canonical_columns", "twin_share", "equal_share_matrix", "TOLERANCE", "EQUAL",
           "INFORMATIVE"]

TOLERANCE = 0.02  # share of a column's bits two twins may differ in
INFORMATIVE = 0.05  # minority share below which a column carries too little to compare
EQUAL = 0.25  # share of informative columns with a twin from which two messages are equal
_SHIFTS = (31 - np.arange(32)).astype(np.uint32)


def canonical_columns(words: np.ndarray) -> np.ndarray:
    """(N, 32, D) float32 in {-1, +1}: each message's bit columns, sorted by their number of
    ones (a canonical order: any bit permutation of the words gives the same array up to
    ties)."""
    words = np.asarray(words, dtype=np.uint32)
    if words.ndim != 2:
        raise ValueError(f"words must be (N, D), got shape {words.shape}")
    cols = ((words[:, None, :] >> _SHIFTS[None, :, None]) & 1).astype(np.float32)
    order = np.argsort(cols.sum(axis=2), axis=1, kind="stable")
    return 2.0 * np.take_along_axis(cols, order[:, :, None], axis=1) - 1.0


def _informative(cols: np.ndarray) -> np.ndarray:
    share = (cols.mean(axis=-1) + 1.0) / 2.0
    return np.minimum(share, 1.0 - share) >= INFORMATIVE


def equal_share_matrix(a: np.ndarray, b: np.ndarray, block: int = 64) -> np.ndarray:
    """(Na, Nb): for canonical columns of two sets of messages, the share of each `a`
    message's informative columns with a twin among the `b` message's columns."""
    d = a.shape[2]
    limit = d * (1.0 - 2.0 * TOLERANCE)  # +-1 dot product of columns differing in TOLERANCE
    info_a = _informative(a)
    flat_b = b.reshape(-1, d)
    out = np.zeros((a.shape[0], b.shape[0]), np.float32)
    for s in range(0, a.shape[0], block):
        dots = a[s:s + block].reshape(-1, d) @ flat_b.T
        twin = (dots.reshape(-1, 32, b.shape[0], 32) >= limit).any(axis=3)  # (k, 32, Nb)
        info = info_a[s:s + block, :, None]
        out[s:s + block] = (twin & info).sum(axis=1) / np.maximum(info.sum(axis=1), 1)
    return out


def twin_share(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N,): row i of words `a` against row i of words `b`, as `equal_share_matrix`."""
    ca, cb = canonical_columns(a), canonical_columns(b)
    return np.array([equal_share_matrix(ca[i:i + 1], cb[i:i + 1])[0, 0] for i in range(len(ca))])
