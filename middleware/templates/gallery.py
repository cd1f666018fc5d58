"""A consumer's gallery of protected templates: enrol, 1:1 verify, 1:N top-k search, persist.

The gallery holds templates of ONE template scheme and key; embeddings are protected on the way
in and never stored. The threshold comes from a target false-match rate on impostor scores
(`calibrate`): the smallest threshold whose impostor score rate strictly above it is <= fmr.

Persistence is one `.npz` (no pickle: `allow_pickle=False` on load) with the templates, labels,
the scheme's name, public parameters, the key id (a fingerprint, never the secret) and the
threshold. `Gallery.load(path, scheme)` refuses a scheme of another name, parameters or key.
"""

from __future__ import annotations

import json
import os
from typing import Sequence

import numpy as np

from ._base import TemplateScheme

__all__ = ["Gallery", "threshold_at_fmr"]

_FORMAT = 1


def threshold_at_fmr(impostor_scores: np.ndarray, fmr: float) -> float:
    """The lowest threshold t with mean(impostor > t) <= fmr (accept when score > t)."""
    s = np.sort(np.asarray(impostor_scores, np.float64).ravel())
    if s.size == 0:
        raise ValueError("need at least one impostor score")
    if not 0.0 <= fmr < 1.0:
        raise ValueError(f"fmr must be in [0, 1), got {fmr}")
    allowed = int(np.floor(fmr * s.size))  # impostors that may lie strictly above t
    return float(s[s.size - 1 - allowed])


class Gallery:
    """Enrolled templates with their labels, for one template scheme and key."""

    def __init__(self, scheme: TemplateScheme, threshold: float | None = None) -> None:
        if not isinstance(scheme, TemplateScheme):
            raise TypeError("scheme must be a TemplateScheme")
        self.scheme = scheme
        self.threshold = threshold
        self._templates: np.ndarray | None = None
        self._labels: list[str] = []

    def __len__(self) -> int:
        return len(self._labels)

    @property
    def labels(self) -> list[str]:
        return list(self._labels)

    def enrol(self, labels: Sequence[str], features: np.ndarray) -> None:
        """Protect `features` (N, dim) and add them under `labels` (N strings)."""
        labels = [str(label) for label in labels]
        templates = self.scheme.protect(features)
        if len(labels) != len(templates):
            raise ValueError(f"got {len(labels)} labels for {len(templates)} embeddings")
        self._add(labels, templates)

    def _add(self, labels: list[str], templates: np.ndarray) -> None:
        self._templates = templates if self._templates is None else np.concatenate(
            [self._templates, templates])
        self._labels.extend(labels)

    def calibrate(self, labels: Sequence[str], features: np.ndarray, fmr: float = 1e-3) -> float:
        """Set the threshold from impostor scores (pairs of different labels) among a
        calibration set, not the enrolled people; returns it."""
        labels = np.asarray([str(label) for label in labels])
        t = self.scheme.protect(features)
        s = self.scheme.scores(t, t)
        impostor = s[labels[:, None] != labels[None, :]]
        self.threshold = threshold_at_fmr(impostor, fmr)
        return self.threshold

    def _require(self) -> np.ndarray:
        if self._templates is None:
            raise ValueError("the gallery is empty")
        return self._templates

    def _threshold(self, threshold: float | None) -> float:
        t = self.threshold if threshold is None else threshold
        if t is None:
            raise ValueError("no threshold: call calibrate() or pass one")
        return float(t)

    def verify(self, label: str, features: np.ndarray,
               threshold: float | None = None) -> tuple[bool, float]:
        """1:1: does the probe match `label`'s best template? (decision, score)."""
        gallery = self._require()
        rows = [i for i, lab in enumerate(self._labels) if lab == str(label)]
        if not rows:
            raise ValueError(f"no templates enrolled for {label!r}")
        score = float(self.scheme.scores(self.scheme.protect(features)[:1], gallery[rows]).max())
        return score > self._threshold(threshold), score

    def search(self, features: np.ndarray, k: int = 5,
               threshold: float | None = None) -> list[list[tuple[str, float]]]:
        """1:N: per probe, the top-k labels by their best template's score, best first; with a
        threshold (passed or calibrated) only candidates above it."""
        gallery = self._require()
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        limit = self.threshold if threshold is None else threshold
        scores = self.scheme.scores(self.scheme.protect(features), gallery)
        # Best template per label: group the columns by label, one reduceat.
        uniq, inverse = np.unique(np.asarray(self._labels), return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        starts = np.r_[0, np.flatnonzero(np.diff(inverse[order])) + 1]
        best = np.maximum.reduceat(scores[:, order], starts, axis=1)
        out = []
        for row in best:
            order = np.argsort(-row, kind="stable")[:k]
            out.append([(str(uniq[j]), float(row[j])) for j in order
                        if limit is None or row[j] > limit])
        return out

    # -- persistence ------------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> None:
        """Write the gallery to `path` (.npz; no pickle, no secret)."""
        meta = {"featurelock_template_gallery": _FORMAT, "scheme": self.scheme.name,
                "dim": self.scheme.dim, "params": self.scheme.params(),
                "key_id": self.scheme.key_id(), "threshold": self.threshold,
                "labels": self._labels}
        templates = self._templates if self._templates is not None else np.zeros((0, 0))
        with open(path, "wb") as fh:
            np.savez(fh, templates=templates, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8))

    @classmethod
    def load(cls, path: str | os.PathLike, scheme: TemplateScheme) -> "Gallery":
        """Read a gallery saved by `save`; ValueError if `scheme` is not the one it was built
        with (name, dim, parameters, key)."""
        with np.load(path, allow_pickle=False) as data:
            templates = data["templates"]
            meta = json.loads(data["meta"].tobytes().decode())
        if meta.get("featurelock_template_gallery") != _FORMAT:
            raise ValueError(f"{path}: not a featurelock template gallery")
        if (meta["scheme"], meta["dim"], meta["params"]) != (
                scheme.name, scheme.dim, json.loads(json.dumps(scheme.params()))):
            raise ValueError(f"{path}: built with scheme {meta['scheme']} dim {meta['dim']} "
                             f"{meta['params']}, not {scheme.name} dim {scheme.dim} "
                             f"{scheme.params()}")
        if meta["key_id"] != scheme.key_id():
            raise ValueError(f"{path}: built with another key (key id {meta['key_id']})")
        labels = meta["labels"]
        if labels and (templates.ndim != 2 or len(templates) != len(labels)):
            raise ValueError(f"{path}: {len(labels)} labels for templates of shape "
                             f"{templates.shape}")
        gallery = cls(scheme, meta["threshold"])
        if labels:
            gallery._add(list(meta["labels"]), templates)
        return gallery
