"""PolyProtect (Krivokuca Hahn & Marcel, IEEE TBIOM 4(1), 2022; arXiv 2110.00434).

Transform: the embedding V = [v1..vn] (unit-normalised first: the 2026 follow-up reports it
helps accuracy) is cut into windows of `window` = m consecutive elements, successive windows
overlapping by `overlap` = o elements, the last incomplete window zero-padded; each window
gives one output p = c1*v1^e1 + ... + cm*vm^em. The key seeds the coefficients C (m distinct
non-zero integers in [-50, 50]) and the exponents E (a permutation of 1..m). This polynomial
form and these ranges are the usual statement of the paper; the note could not retrieve the
paper's own text, so treat them as to-verify.
Difference from the paper: the paper draws C, E per SUBJECT (verification); here they are per
APPLICATION (one key per tenant), which 1:N search needs. Per-subject keys are stronger.
Matching: cosine similarity (the paper used Euclidean; the follow-up compares both).
Parameters: `window` m (default 5), `overlap` o in 0..m-1 (default 2); k = number of windows.

Claimed to protect: irreversibility (k < n outputs of a non-linear map; larger o gives larger k,
better accuracy, easier inversion), unlinkability across keys, renewability.
NOT protected: a fully-informed attacker (stolen C, E) runs a numerical solver: the paper's own
threat model. `estimate_from_key` is such a solver (Gauss-Newton, minimum-norm steps).
Not randomised.
"""

from __future__ import annotations

import numpy as np

from ._base import TemplateScheme, cosine_similarity
from ._registry import register

__all__ = ["PolyProtect"]


@register
class PolyProtect(TemplateScheme):
    name = "polyprotect"
    kind = "real"

    def __init__(self, secret: bytes, dim: int, window: int = 5, overlap: int = 2) -> None:
        super().__init__(secret, dim)
        for value, name in ((window, "window"), (overlap, "overlap")):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
                raise TypeError(f"{name} must be an int")
        # 100 distinct non-zero coefficients exist in [-50, 50].
        if not 2 <= window <= min(self.dim, 100):
            raise ValueError(f"window must be in 2..{min(self.dim, 100)}, got {window}")
        if not 0 <= overlap <= window - 1:
            raise ValueError(f"overlap must be in 0..window-1 ({window - 1}), got {overlap}")
        self.window, self.overlap = int(window), int(overlap)
        step = self.window - self.overlap
        self.k = 1 + max(0, -(-(self.dim - self.window) // step))
        self._padded = (self.k - 1) * step + self.window
        # (k, m) indices into the zero-padded embedding.
        self._idx = np.arange(self.k)[:, None] * step + np.arange(self.window)[None, :]
        rng = self._rng()
        nonzero = np.r_[np.arange(-50, 0), np.arange(1, 51)]
        self._c = rng.choice(nonzero, self.window, replace=False).astype(np.float64)
        self._e = rng.permutation(self.window) + 1

    def params(self) -> dict:
        return {"window": self.window, "overlap": self.overlap}

    def _windows(self, x: np.ndarray) -> np.ndarray:
        pad = np.zeros((len(x), self._padded))
        pad[:, :self.dim] = x
        return pad[:, self._idx]  # (N, k, m)

    def _protect(self, x: np.ndarray) -> np.ndarray:
        return (self._c * self._windows(x) ** self._e).sum(axis=2).astype(np.float32)

    def scores(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return cosine_similarity(a, b)

    def estimate_from_key(self, templates: np.ndarray, init: np.ndarray | None = None,
                          iterations: int = 40) -> np.ndarray:
        """A numerical solver: damped Gauss-Newton with minimum-norm steps, from `init` (e.g. a
        regression's guess) or 0, then unit-normalised."""
        p = np.asarray(templates, np.float64)
        n = len(p)
        v = np.zeros((n, self._padded))
        if init is not None:
            v[:, :self.dim] = np.asarray(init, np.float64)
        rows = np.repeat(np.arange(self.k), self.window)
        cols = self._idx.ravel()
        keep = cols < self.dim  # padding is fixed at zero, not a variable
        rows, cols = rows[keep], cols[keep]
        for _ in range(iterations):
            w = v[:, self._idx]
            resid = (self._c * w ** self._e).sum(axis=2) - p  # (N, k)
            dw = (self._c * self._e * w ** (self._e - 1)).reshape(n, -1)[:, keep]
            jac = np.zeros((n, self.k, self.dim))
            jac[:, rows, cols] = dw
            gram = jac @ jac.transpose(0, 2, 1)
            mu = 1e-6 * np.trace(gram, axis1=1, axis2=2)[:, None, None] / self.k + 1e-12
            step = np.linalg.solve(gram + mu * np.eye(self.k), resid[:, :, None])
            v[:, :self.dim] -= (jac.transpose(0, 2, 1) @ step)[:, :, 0]
        est = v[:, :self.dim]
        return est / np.maximum(np.linalg.norm(est, axis=1, keepdims=True), 1e-12)
