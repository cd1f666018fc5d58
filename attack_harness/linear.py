"""Kernel-form ridge regression with identity-grouped cross-validation, shared by the
attribute heads and the linear decoder of one representation.

Inputs are standardised with the attacker's training statistics and clipped to +-5 SD (NaN
and inf are already sanitised by the representation). With the n x n Gram matrix, 8192 bit
inputs cost no more than 256 floats. Each fold's eigendecomposition is computed once and
reused for every ridge strength and every target column.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Standardizer", "KernelRidgeCV"]


class Standardizer:
    """z-scores with the attacker's training statistics (float64), clipped to +-clip."""

    def __init__(self, x: np.ndarray, clip: float = 5.0) -> None:
        x = np.asarray(x, np.float64)
        self.mean = x.mean(axis=0)
        sd = x.std(axis=0)
        self.scale = np.where(sd > 1e-12, sd, np.inf)  # constant inputs carry nothing: 0
        self.clip = clip

    def __call__(self, x: np.ndarray) -> np.ndarray:
        z = (np.asarray(x, np.float64) - self.mean) / self.scale
        return np.clip(z, -self.clip, self.clip)


class KernelRidgeCV:
    """Linear ridge in dual form on standardised inputs, folds over groups (identities)."""

    def __init__(self, x: np.ndarray, groups: np.ndarray, folds: int = 3, clip: float = 5.0,
                 seed: int = 0) -> None:
        self.std = Standardizer(x, clip)
        self.z = self.std(x)
        self.gram = self.z @ self.z.T
        self.scale = max(float(np.mean(np.diag(self.gram))), 1e-12)
        groups = np.asarray(groups)
        uniq = np.unique(groups)
        order = np.random.default_rng(seed).permutation(uniq.size) % folds
        self.fold = order[np.searchsorted(uniq, groups)]
        self.folds = folds
        self._eig: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def _eigh(self, f: int) -> tuple[np.ndarray, np.ndarray]:
        """Eigendecomposition of the Gram matrix of fold f's training part (-1: everything)."""
        if f not in self._eig:
            tr = self.fold != f
            self._eig[f] = np.linalg.eigh(self.gram[np.ix_(tr, tr)])
        return self._eig[f]

    def splits(self):
        """(fold, train mask, test mask) for the folds that have both parts."""
        for f in range(self.folds):
            tr, te = self.fold != f, self.fold == f
            if tr.any() and te.any():
                yield f, tr, te

    def cv_scores(self, f: int, targets_train: np.ndarray, lambdas: list[float]):
        """Yield (lambda index, predictions on fold f's test part) for each ridge strength."""
        tr, te = self.fold != f, self.fold == f
        evals, evecs = self._eigh(f)
        proj = evecs.T @ targets_train
        cross = self.gram[np.ix_(te, tr)] @ evecs
        for li, lam in enumerate(lambdas):
            yield li, cross @ (proj / (evals + lam)[:, None])

    def fit_weights(self, targets: np.ndarray, lams: np.ndarray) -> np.ndarray:
        """Primal weights (d, k) for all training data; lams: one ridge strength per column."""
        evals, evecs = self._eigh(-1)
        proj = evecs.T @ targets
        alpha = evecs @ (proj / (evals[:, None] + np.asarray(lams)[None, :]))
        return self.z.T @ alpha

    def lambdas(self, relative: tuple[float, ...]) -> list[float]:
        return [r * self.scale for r in relative]
