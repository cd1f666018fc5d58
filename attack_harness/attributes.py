"""Attack 1, attribute inference (Ni et al. 2021): per-attribute linear heads on a representation.

Ni et al. put one linear softmax head per attribute on the (normalised) feature and train with
"balanced" class weights. This attacker keeps the linear heads and the balancing but fits them
in closed form, so a scan can afford every representation of every endpoint on a CPU:

* inputs are standardised with the attacker's own training statistics and clipped to +-5 SD
  (ciphertext floats of 1e38 must not swamp the fit);
* each head is a kernel-form ridge regression (a linear model; the n x n Gram matrix, so 8192
  bit inputs cost no more than 256 floats) onto targets (1[y = c] - p_c) / p_c, whose argmax
  estimates argmax_c P(c | x) / p_c: the decision that maximises balanced accuracy;
* the ridge strength is chosen per attribute by 3-fold cross-validation over the attacker's
  IDENTITIES (images of one person share attributes; image-level folds would reward
  memorising people), on balanced accuracy.

Scored on the victims by balanced accuracy per attribute (chance = 1 / classes present) with
an identity-clustered bootstrap interval, plus the mean over attributes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .linear import KernelRidgeCV
from .metrics import (Interval, balanced_accuracy, balanced_accuracy_chance, cluster_bootstrap,
                      weighted_balanced_accuracy)

__all__ = ["AttributeAttackConfig", "RidgeHeads", "attribute_attack", "jsonable"]


@dataclass(frozen=True)
class AttributeAttackConfig:
    lambdas: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, 10.0)  # x mean Gram diagonal
    folds: int = 3
    clip: float = 5.0


# A class seen in fewer victim identities than this is left out of the score: the identity
# bootstrap cannot estimate its variance, and the gate's simultaneous intervals then come out
# too narrow (seen: aes-256-gcm "leaking" a binary attribute whose rare class had 4-6 victims).
MIN_IDS_PER_CLASS = 8


def _scorable(y: np.ndarray, victim_ids: np.ndarray) -> np.ndarray:
    """Victims with a known label in a class that MIN_IDS_PER_CLASS identities share."""
    mask = y >= 0
    for c in np.unique(y[mask]):
        in_class = mask & (y == c)
        if np.unique(victim_ids[in_class]).size < MIN_IDS_PER_CLASS:
            mask &= ~in_class
    return mask


def _targets(y: np.ndarray, k: int) -> np.ndarray:
    """(N, k) balanced regression targets; unknown labels (-1) get all-zero rows."""
    known = y >= 0
    prior = np.bincount(y[known], minlength=k) / max(known.sum(), 1)
    onehot = (y[:, None] == np.arange(k)[None, :]).astype(np.float64)
    t = np.where(prior > 0, (onehot - prior) / np.where(prior > 0, prior, 1.0), 0.0)
    t[~known] = 0.0
    return t


def _predict_classes(scores: np.ndarray, present: np.ndarray) -> np.ndarray:
    return np.where(present[None, :], scores, -np.inf).argmax(axis=1)


class RidgeHeads:
    """Linear heads for all attributes at once (kernel-form ridge, identity-grouped CV)."""

    def __init__(self, classes: tuple[int, ...],
                 config: AttributeAttackConfig = AttributeAttackConfig()) -> None:
        self.classes = classes
        self.config = config

    def fit(self, solver: KernelRidgeCV, y: np.ndarray) -> "RidgeHeads":
        y = np.asarray(y, np.int64)
        lambdas = solver.lambdas(self.config.lambdas)
        bounds = np.cumsum([0, *self.classes])
        n_attr = len(self.classes)
        cv = np.zeros((len(lambdas), n_attr))
        for f, tr, te in solver.splits():
            t_tr = np.concatenate([_targets(y[tr, a], k) for a, k in enumerate(self.classes)], 1)
            present = [np.bincount(y[tr, a][y[tr, a] >= 0], minlength=k) > 0
                       for a, k in enumerate(self.classes)]
            for li, scores in solver.cv_scores(f, t_tr, lambdas):
                for a in range(n_attr):
                    known = y[te, a] >= 0
                    if known.sum() < 2 or not present[a].any():
                        continue
                    pred = _predict_classes(scores[:, bounds[a]:bounds[a + 1]], present[a])
                    cv[li, a] += balanced_accuracy(y[te, a][known], pred[known])
        self.lambda_index = cv.argmax(axis=0)
        targets = np.concatenate([_targets(y[:, a], k) for a, k in enumerate(self.classes)], 1)
        lams = np.concatenate([[lambdas[self.lambda_index[a]]] * k
                               for a, k in enumerate(self.classes)])
        self._w = solver.fit_weights(targets, lams)
        self._std = solver.std
        self._present = [np.bincount(y[:, a][y[:, a] >= 0], minlength=k) > 0
                         for a, k in enumerate(self.classes)]
        self._bounds = bounds
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        """(N, A) predicted class per attribute."""
        scores = self._std(x) @ self._w
        return np.stack([_predict_classes(scores[:, self._bounds[a]:self._bounds[a + 1]],
                                          self._present[a]) for a in range(len(self.classes))],
                        axis=1)


def attribute_attack(solver: KernelRidgeCV | np.ndarray, y_train: np.ndarray,
                     train_ids: np.ndarray, x_victim: np.ndarray, y_victim: np.ndarray, victim_ids: np.ndarray,
                     names: tuple[str, ...], classes: tuple[int, ...],
                     config: AttributeAttackConfig = AttributeAttackConfig(), seed: int = 0,
                     level: float = 0.95, n_boot: int = 1000) -> dict:
    """Train on the attacker's pairs, score on the victims. `solver` is a KernelRidgeCV of
    the attacker's representation (or the raw training matrix).

    Returns {"attributes": {name: {"score": Interval, "chance", "n"} | {"skipped": why}},
    "mean": {...} | None}.
    """
    if not isinstance(solver, KernelRidgeCV):
        solver = KernelRidgeCV(solver, train_ids, config.folds, config.clip, seed)
    pred = RidgeHeads(classes, config).fit(solver, y_train).predict(x_victim)
    per_attr: dict[str, dict] = {}
    scored: dict[int, np.ndarray] = {}  # attribute -> mask of the victims it is scored on
    for a, name in enumerate(names):
        mask = _scorable(y_victim[:, a], victim_ids)
        yt, yp = y_victim[mask, a], pred[mask, a]
        if np.unique(yt).size < 2:  # balanced accuracy needs two classes to mean anything
            per_attr[name] = {"skipped": f"fewer than two classes with >= {MIN_IDS_PER_CLASS} "
                                         "victim identities"}
            continue
        scored[a] = mask
        stat = (lambda yt_, yp_: lambda w: weighted_balanced_accuracy(yt_, yp_, w))(yt, yp)
        interval = cluster_bootstrap(stat, yt.size, victim_ids[mask], level, n_boot, seed + a)
        per_attr[name] = {"score": interval, "chance": balanced_accuracy_chance(yt),
                          "n": int(yt.size)}
    mean = None
    if scored:
        def mean_stat(w: np.ndarray) -> np.ndarray:
            return np.mean([weighted_balanced_accuracy(y_victim[m, a], pred[m, a], w[:, m])
                            for a, m in scored.items()], axis=0)

        interval = cluster_bootstrap(mean_stat, len(y_victim), victim_ids, level, n_boot, seed)
        chance = float(np.mean([per_attr[names[a]]["chance"] for a in scored]))
        mean = {"score": interval, "chance": chance, "n": int(len(y_victim))}
    return {"attributes": per_attr, "mean": mean}


def jsonable(result):
    """A copy with Intervals as dicts and numpy scalars as Python numbers."""
    if isinstance(result, Interval):
        return result.to_dict()
    if isinstance(result, dict):
        return {k: jsonable(v) for k, v in result.items()}
    if isinstance(result, (list, tuple)):
        return [jsonable(v) for v in result]
    if isinstance(result, np.generic):
        return result.item()
    return result
