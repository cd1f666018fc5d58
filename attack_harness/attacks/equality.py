"""Equality probe: the same image sent twice — are the two responses (nearly) identical?

Threat model: any API client (a handful of queries). A deterministic scheme answers equal
inputs with equal outputs, so whoever sees two responses learns whether they are of the same
image (a person seen twice, a replayed photo) without reading either. A server may batch the
two requests differently and compute features that differ in their last bits (measured over
TorchServe: 10-12% of a response's bits), so "equal" is "fewer than a quarter of the bits
differ": randomised ciphertexts differ in about half.

Two readers, each its own test: the raw bytes (a deterministic scheme), and the messages'
canonical forms (`featurelock.attack_harness.canonical`): a fresh bit permutation per
message (shufflebits-otp) changes half the bits but keeps every bit column, so the same image
twice shares its columns up to the low mantissa bits that batching scrambles. The canonical
test is calibrated on the victims' leaked outputs: how many pairs of DISTINCT images it would
call equal (reported as `false_matches`).
"""

from __future__ import annotations

import numpy as np

from ..attack import Attack, Finding, Outcome, TargetView, register
from ..canonical import EQUAL, canonical_columns, equal_share_matrix, twin_share
from ..metrics import mean_interval
from ..representations import payload_words, raw_bytes

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
        twins = twin_share(payload_words(again), payload_words([view.responses[i] for i in first]))
        cfg, groups = self.config, ids[first]
        findings = []
        for what, reading, same in (("equal responses", "bytes", diff < NEAR),
                                    ("equal canonical forms", "columns", twins >= EQUAL)):
            score = mean_interval(same.astype(np.float64), groups, cfg.confidence, cfg.n_boot,
                                  cfg.seed)
            findings.append(Finding("equality", what, score, 0.0, int(same.size), reading,
                                    summary=True))
        return Outcome(findings,
                       {"probes": int(diff.size), "equal": int((diff < NEAR).sum()),
                        "bit_identical": int((diff == 0).sum()),
                        "differing_bits": [round(float(d), 4) for d in diff],
                        "canonical_equal": int((twins >= EQUAL).sum()),
                        "canonical_twin_share": [round(float(t), 3) for t in twins],
                        **_false_matches(view.leaked)})


def _false_matches(leaked) -> dict:
    """Pairs of distinct leaked outputs (distinct images) the canonical test calls equal."""
    cols = canonical_columns(payload_words(leaked))
    share = equal_share_matrix(cols, cols)
    np.fill_diagonal(share, 0.0)
    n = len(cols)
    return {"false_matches": int((share >= EQUAL).sum() // 2), "distinct_pairs": n * (n - 1) // 2}
