"""How well the inverse attacks undo a readable transform: cosine of the recovered features
to the victims' true plain features (`featurelock.attack_harness.inversion`).

Threat model: that of each inverted reading (the insider with the served transform's file;
the outsider with its own queries' answers and the plain features of its images). The
recovered features themselves are attacked by every identity, attribute, reconstruction and
linkability attack as readings `inverted-whitebox` / `inverted-blackbox`, and gated there;
this attack only reports how close they are, beside the served features' own cosine.
"""

from __future__ import annotations

import numpy as np

from ..attack import Attack, Outcome, TargetView, register
from ..inversion import cosines, offered


def _summary(cos: np.ndarray) -> dict:
    return {"mean": float(cos.mean()), "median": float(np.median(cos)),
            "p10": float(np.quantile(cos, 0.1)), "n": int(cos.size)}


@register
class InverseTransform(Attack):
    name = "inversion"
    holds = ("per inverted reading: the served transform's file and the model (white-box, zero "
             "queries), or its own queries' answers and the plain features of its images "
             "(black-box); the leaked outputs")
    columns = ()
    gated = False
    default_when = "readable"

    def run(self, view: TargetView) -> Outcome:
        readings = offered(view)
        if not readings:
            return Outcome(details={"status": "not applicable",
                                    "reason": "the scheme serves no readable transform of the "
                                              "features"})
        truth = view.victim_plain
        served = view.reading("float")[1]
        details: dict = {"status": "ran"}
        if served.shape == truth.shape:
            details["served (no inversion)"] = _summary(cosines(served, truth))
        for rep in readings:
            details[rep] = _summary(cosines(view.reading(rep)[1], truth))
        return Outcome(details=details)
