"""Market-1501 re-ID metrics: rank-1 (CMC top-1) and mean average precision.

Protocol as in Market-1501: for each query, gallery images of the same identity taken by the
same camera are ignored (they would make the task trivial); queries with no remaining true
match are skipped. Similarity is the dot product of L2-normalised embeddings (cosine).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["reid_metrics", "evaluate"]


def reid_metrics(query: np.ndarray, query_ids: np.ndarray, query_cams: np.ndarray,
                 gallery: np.ndarray, gallery_ids: np.ndarray,
                 gallery_cams: np.ndarray) -> dict[str, float]:
    """{'rank1', 'mAP', 'n_queries'} for (Q, D) query and (G, D) gallery embeddings."""
    if query.ndim != 2 or gallery.ndim != 2 or query.shape[1] != gallery.shape[1]:
        raise ValueError(f"embeddings must be (Q, D) and (G, D), got {query.shape}, {gallery.shape}")
    sim = query @ gallery.T
    order = np.argsort(-sim, axis=1, kind="stable")
    ranked_ids, ranked_cams = gallery_ids[order], gallery_cams[order]
    match = ranked_ids == query_ids[:, None]
    valid = ~(match & (ranked_cams == query_cams[:, None]))
    rank1, aps = [], []
    for q in range(query.shape[0]):
        hits = match[q][valid[q]]
        if not hits.any():
            continue
        rank1.append(float(hits[0]))
        positions = np.flatnonzero(hits)  # 0-based ranks of the true matches
        aps.append(float(np.mean(np.arange(1, positions.size + 1) / (positions + 1))))
    if not aps:
        raise ValueError("no query has a true match in the gallery from another camera")
    return {"rank1": float(np.mean(rank1)), "mAP": float(np.mean(aps)), "n_queries": len(aps)}


def evaluate(model: Any, query: Any, gallery: Any, batch_size: int = 256) -> dict[str, float]:
    """Embed two PedestrianSets with `model.embed` and score them with `reid_metrics`."""
    q = model.embed(query.images, batch_size)
    g = model.embed(gallery.images, batch_size)
    return reid_metrics(q, query.ids, query.cams, g, gallery.ids, gallery.cams)
