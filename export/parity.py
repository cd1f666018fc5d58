"""Parity of an exported model with its torch reference: max |diff| and min cosine similarity.

Cosine is the metric that matters for embeddings (rankings, and what encryption protects);
max |diff| is reported for diagnosis. A check below the threshold raises ParityError.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .errors import ParityError

__all__ = ["ParityResult", "DEFAULT_MIN_COSINE", "compare", "require"]

DEFAULT_MIN_COSINE = 0.9999


@dataclass(frozen=True)
class ParityResult:
    backend: str  # "onnxruntime", "torchscript", ...
    batch_size: int
    max_abs_diff: float
    min_cosine: float
    threshold: float

    @property
    def passed(self) -> bool:
        return self.min_cosine >= self.threshold

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


def compare(reference: np.ndarray, candidate: np.ndarray, backend: str,
            threshold: float = DEFAULT_MIN_COSINE) -> ParityResult:
    """Row-wise comparison of two (N, D) output arrays."""
    if reference.shape != candidate.shape:
        raise ParityError(f"{backend}: output shape {candidate.shape} != reference {reference.shape}")
    ref = reference.astype(np.float64)
    cand = candidate.astype(np.float64)
    if not np.isfinite(cand).all():
        return ParityResult(backend, ref.shape[0], float("inf"), float("-inf"), threshold)
    denom = np.maximum(np.linalg.norm(ref, axis=1) * np.linalg.norm(cand, axis=1), 1e-12)
    cosine = np.sum(ref * cand, axis=1) / denom
    return ParityResult(backend, ref.shape[0], float(np.max(np.abs(ref - cand))),
                        float(np.min(cosine)), threshold)


def require(results: list[ParityResult]) -> None:
    """Raise ParityError naming the first result below its threshold."""
    for r in results:
        if not r.passed:
            raise ParityError(f"{r.backend} parity failed at batch {r.batch_size}: min cosine "
                              f"{r.min_cosine:.6f} < {r.threshold} (max |diff| {r.max_abs_diff:.3g})")
