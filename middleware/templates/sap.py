"""Scale-And-Perturb (SAP), the approximate distance-comparison-preserving encryption (DCPE) of
Fuchsbauer, Ghosal, Hauke, O'Neill (SCN 2022), as IronCore's Cloaked AI uses it.

Transform: the key fixes a scaling factor s (here 2^u, u uniform in [10, 20), drawn from the
key); each template draws a fresh perturbation lambda = (u / ||u||) * (s * beta / 4) * x'^(1/d),
u ~ N(0, I_d), x' ~ U(0, 1); template c = s * x + lambda (float32). The paper's ciphertext also
carries a nonce so the key holder can decrypt; a template here keeps only c (compare, not open).
Then, with `shuffle` (default on), a key-derived permutation of the coordinates: IronCore's
shuffle helper, NOT part of the paper's core scheme; without it two keys differ only in s, so a
wrong key still matches and cosine links the same person across applications.
Matching: cosine similarity (key-free: scale-invariant; on unit-normalised embeddings it orders
like the Euclidean distance SAP preserves).
Parameters: `beta`, the approximation factor (default 0.5: perturbation norm about beta/4 of a
unit embedding); `shuffle` (default True).

Claimed to protect (the paper): real-or-replaced indistinguishability and one-wayness for
Gaussian plaintexts, for an attacker WITHOUT the key. Randomised: two templates of the same
embedding differ.
NOT protected, by design: approximate distance comparisons leak to anyone holding templates;
across keys only s (and the permutation) change: the multiset of coordinates survives, which an
attacker who sorts them compares (`templates eval` measures D<->sys with that linker too); a
stolen key gives c / s = x + noise of norm <= beta / 4, i.e. the embedding.
"""

from __future__ import annotations

import os

import numpy as np

from ._base import TemplateScheme, cosine_similarity
from ._registry import register

__all__ = ["ScaleAndPerturb"]


@register
class ScaleAndPerturb(TemplateScheme):
    name = "sap"
    kind = "real"

    def __init__(self, secret: bytes, dim: int, beta: float = 0.5, shuffle: bool = True,
                 rng: np.random.Generator | None = None) -> None:
        super().__init__(secret, dim)
        if not isinstance(beta, (int, float, np.floating)) or isinstance(beta, bool):
            raise TypeError("beta must be a number")
        if not 0.0 < beta < 16.0:
            raise ValueError(f"beta must be in (0, 16), got {beta}")
        if not isinstance(shuffle, (bool, np.bool_)):
            raise TypeError("shuffle must be a bool")
        self.beta, self.shuffle = float(beta), bool(shuffle)
        key_rng = self._rng()
        self._scale = float(2.0 ** key_rng.uniform(10.0, 20.0))
        self._perm = key_rng.permutation(self.dim) if self.shuffle else np.arange(self.dim)
        # Perturbations come from the OS unless a test injects a generator.
        self._noise = rng if rng is not None else np.random.default_rng(
            int.from_bytes(os.urandom(32), "little"))

    def params(self) -> dict:
        return {"beta": self.beta, "shuffle": self.shuffle}

    def _protect(self, x: np.ndarray) -> np.ndarray:
        n, d = x.shape
        u = self._noise.standard_normal((n, d))
        radius = self._scale * self.beta / 4.0 * self._noise.uniform(0.0, 1.0, (n, 1)) ** (1.0 / d)
        lam = u / np.linalg.norm(u, axis=1, keepdims=True) * radius
        return (self._scale * x + lam)[:, self._perm].astype(np.float32)

    def scores(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return cosine_similarity(a, b)

    def estimate_from_key(self, templates: np.ndarray, init: np.ndarray | None = None) -> np.ndarray:
        out = np.empty((len(templates), self.dim))
        out[:, self._perm] = np.asarray(templates, np.float64) / self._scale
        return out
