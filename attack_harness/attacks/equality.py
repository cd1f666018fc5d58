"""Equality probe: the same image sent twice — are the two responses identical?

Threat model: any API client (a handful of queries). A deterministic scheme answers equal
inputs with equal outputs, so whoever sees two responses learns whether they are of the same
image (a person seen twice, a replayed photo) without reading either.
"""

from __future__ import annotations

import numpy as np

from ..attack import Attack, Finding, Outcome, TargetView, register
from ..metrics import cluster_bootstrap
from ..representations import raw_bytes

PROBES = 8


@register
class EqualityProbe(Attack):
    name = "equality"
    holds = f"{PROBES} extra queries: images it already sent, sent again"
    columns = ("equality",)
    extra_queries = PROBES

    def run(self, view: TargetView) -> Outcome:
        ids = view.data.aux_ids
        # One image of each of PROBES identities, so the interval resamples distinct people.
        first = np.unique(ids, return_index=True)[1][:PROBES]
        again = view.probe(view.data.aux_images[first])
        same = np.array([raw_bytes(a) == raw_bytes(view.responses[i])
                         for a, i in zip(again, first)], np.float64)
        score = cluster_bootstrap(lambda w: (w @ same) / w.sum(axis=1), same.size, ids[first],
                                  self.config.confidence, self.config.n_boot, self.config.seed)
        return Outcome([Finding("equality", "identical responses", score, 0.0, int(same.size),
                                summary=True)],
                       {"probes": int(same.size), "identical": int(same.sum())})
