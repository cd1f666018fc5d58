"""BioHashing (Teoh, Ngo et al., Pattern Recognition 2004): random orthonormal projection + sign.

Transform: the key seeds a Gaussian matrix R (dim x m, m <= dim), orthonormalised by QR into Q;
template b = [x . Q > 0] (m bits; threshold tau = 0 on the unit-normalised embedding).
Matching: 1 - normalised Hamming distance.
Parameters: `bits` = m (default: dim, the most bits an orthonormal projection gives).

Claimed to protect: irreversibility without the key (only signs of m projections remain, no
magnitude); unlinkability across keys (different Q); renewability (new secret, new Q).
NOT protected: a stolen key. With Q known, Q (2b - 1) estimates the embedding's direction
(the 1-bit compressed-sensing view of Topcu et al. 2016): measured in `templates eval`.
Known (embedding, template) pairs likewise train a regression back to the embedding.
Not randomised: the same embedding and key give the same template.
"""

from __future__ import annotations

import numpy as np

from ._base import TemplateScheme, hamming_similarity
from ._registry import register

__all__ = ["BioHashing"]


@register
class BioHashing(TemplateScheme):
    name = "biohash"
    kind = "binary"

    def __init__(self, secret: bytes, dim: int, bits: int | None = None) -> None:
        super().__init__(secret, dim)
        bits = self.dim if bits is None else bits
        if not isinstance(bits, (int, np.integer)) or isinstance(bits, bool):
            raise TypeError("bits must be an int")
        if not 1 <= bits <= self.dim:
            raise ValueError(f"bits must be in 1..dim ({self.dim}), got {bits}")
        self.bits = int(bits)
        q, _ = np.linalg.qr(self._rng().standard_normal((self.dim, self.bits)))
        self._q = q

    def params(self) -> dict:
        return {"bits": self.bits}

    def _protect(self, x: np.ndarray) -> np.ndarray:
        return (x @ self._q > 0).astype(np.uint8)

    def scores(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return hamming_similarity(a, b)

    def estimate_from_key(self, templates: np.ndarray, init: np.ndarray | None = None) -> np.ndarray:
        return (2.0 * np.asarray(templates, np.float64) - 1.0) @ self._q.T
