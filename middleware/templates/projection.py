"""The deliberately WEAK control: a random orthonormal projection WITHOUT binarisation.

Transform: BioHashing's Q (dim x m, keyed), template t = x . Q as float32 (no sign).
Matching: cosine similarity. Parameters: `dims` = m (default: dim).

Claimed to protect: nothing worth having. It exists so the harness shows its attacks have
teeth: with the key, Q t returns the embedding exactly (m = dim); without the key, m + a few
known (embedding, template) pairs solve Q by least squares; and the cosine between two
templates of the same key equals the plaintext cosine. Never use it for real templates.
"""

from __future__ import annotations

import numpy as np

from ._base import TemplateScheme, cosine_similarity
from ._registry import register

__all__ = ["RandomProjection"]


@register
class RandomProjection(TemplateScheme):
    name = "projection"
    kind = "real"
    leaks = ("the embedding itself: the key inverts it exactly and about dim known "
             "(embedding, template) pairs solve the key by least squares")

    def __init__(self, secret: bytes, dim: int, dims: int | None = None) -> None:
        super().__init__(secret, dim)
        dims = self.dim if dims is None else dims
        if not isinstance(dims, (int, np.integer)) or isinstance(dims, bool):
            raise TypeError("dims must be an int")
        if not 1 <= dims <= self.dim:
            raise ValueError(f"dims must be in 1..dim ({self.dim}), got {dims}")
        self.dims = int(dims)
        q, _ = np.linalg.qr(self._rng().standard_normal((self.dim, self.dims)))
        self._q = q

    def params(self) -> dict:
        return {"dims": self.dims}

    def _protect(self, x: np.ndarray) -> np.ndarray:
        return (x @ self._q).astype(np.float32)

    def scores(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return cosine_similarity(a, b)

    def estimate_from_key(self, templates: np.ndarray, init: np.ndarray | None = None) -> np.ndarray:
        return np.asarray(templates, np.float64) @ self._q.T
