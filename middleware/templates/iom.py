"""Index-of-Max hashing, Gaussian random projection variant (GRP-IoM; Jin, Lai, Hwang, Kim,
Teoh, IEEE TIFS 13(2), 2018).

Transform: the key seeds m independent Gaussian matrices W_j (q x dim); template
h_j = argmax_{1..q} (W_j x), j = 1..m (m small integers in [0, q)).
Matching: the fraction of equal indices (collision rate) between two templates.
Parameters: `hashes` = m (default 256), `q` = projections per hash (default 16).

Claimed to protect: irreversibility without the key (only the rank winner of each projection
group survives; magnitude-insensitive); unlinkability across keys; renewability.
NOT protected: a stolen key. With W known, the sum of the winning rows W_j[h_j] points toward
the embedding, and the key lets an attacker make unlimited (embedding, template) pairs.
URP-IoM is not implemented: its exact definition was not pinned down (research note 3.2).
Not randomised: the same embedding and key give the same template.
"""

from __future__ import annotations

import numpy as np

from ._base import TemplateScheme
from ._registry import register

__all__ = ["IndexOfMax"]


def _positive_int(value, name: str, low: int) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return int(value)


@register
class IndexOfMax(TemplateScheme):
    name = "iom"
    kind = "index"

    def __init__(self, secret: bytes, dim: int, hashes: int = 256, q: int = 16) -> None:
        super().__init__(secret, dim)
        self.hashes = _positive_int(hashes, "hashes", 1)
        self.q = _positive_int(q, "q", 2)
        # (dim, m * q): one matrix product protects a batch.
        self._w = self._rng().standard_normal((self.dim, self.hashes * self.q))

    def params(self) -> dict:
        return {"hashes": self.hashes, "q": self.q}

    def _protect(self, x: np.ndarray) -> np.ndarray:
        proj = (x @ self._w).reshape(len(x), self.hashes, self.q)
        return proj.argmax(axis=2).astype(np.uint8 if self.q <= 256 else np.uint16)

    def scores(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        a, b = np.asarray(a), np.asarray(b)
        # Equal indices = inner product of one-hot codes, one matrix product per block.
        out = np.zeros((len(a), len(b)), np.float64)
        for start in range(0, self.hashes, 32):
            sl = slice(start, min(start + 32, self.hashes))
            oa = _one_hot(a[:, sl], self.q)
            ob = _one_hot(b[:, sl], self.q)
            out += oa @ ob.T
        return out / self.hashes

    def estimate_from_key(self, templates: np.ndarray, init: np.ndarray | None = None) -> np.ndarray:
        t = np.asarray(templates, np.int64)
        cols = t + np.arange(self.hashes)[None, :] * self.q  # winning column per hash
        return self._w.T[cols].sum(axis=1)


def _one_hot(idx: np.ndarray, q: int) -> np.ndarray:
    n, m = idx.shape
    out = np.zeros((n, m * q), np.float32)
    out[np.arange(n)[:, None], np.asarray(idx, np.int64) + np.arange(m)[None, :] * q] = 1.0
    return out
