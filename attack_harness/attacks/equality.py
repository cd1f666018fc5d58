"""Equality probe: the same image sent twice — are the two responses (nearly) identical?

Threat model: any API client (a handful of queries). A deterministic scheme answers equal
inputs with equal outputs, so whoever sees two responses learns whether they are of the same
image (a person seen twice, a replayed photo) without reading either. A server may batch the
two requests differently and compute features that differ in their last bits (measured over
TorchServe: 10-12% of a response's bits), so "equal" is "fewer than a quarter of the bits
differ": randomised ciphertexts differ in about half.
"""

from __future__ import annotations

import numpy as np

from ..attack import Attack, Finding, Outcome, TargetView, register
from ..metrics import mean_interval
from ..representations import raw_bytes

PROBES = 8
NEAR = 0.25  # share of differing bits below which two responses count as equal


def differing_bits(a: bytes, b: bytes) -> float:
    """Share of the bits that differ between two byte strings (length differences count)."""
    n = max(len(a), len(b))
    if n == 0:
        return 0.0
    m = min(len(a), len(b))
    x = np.frombuffer(a[:m], np.uint8) ^ np.frombuffer(b[:m], np.uint8)
    return float(np.unpackbits(x).sum() + 8 * (n - m)) / (8 * n)


@register
class EqualityProbe(Attack):
    name = "equality"
    holds = f"{PROBES} extra queries: images it already sent, sent again"
    columns = ("equality",)
    extra_queries = PROBES
    cost = 0.1

    def run(self, view: TargetView) -> Outcome:
        ids = view.data.aux_ids
        # One image of each of PROBES identities, so the interval resamples distinct people.
        first = np.unique(ids, return_index=True)[1][:PROBES]
        again = view.probe(view.data.aux_images[first])
        diff = np.array([differing_bits(raw_bytes(a), raw_bytes(view.responses[i]))
                         for a, i in zip(again, first)])
        same = (diff < NEAR).astype(np.float64)
        score = mean_interval(same, ids[first], self.config.confidence, self.config.n_boot,
                              self.config.seed)
        return Outcome([Finding("equality", "equal responses", score, 0.0, int(same.size),
                                summary=True)],
                       {"probes": int(same.size), "equal": int(same.sum()),
                        "bit_identical": int((diff == 0).sum()),
                        "differing_bits": [round(float(d), 4) for d in diff]})
