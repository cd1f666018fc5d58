"""Visual re-identification of disguised images (the authors' first attack), two ways.

* `plain model`: a re-ID model trained on plain images (anyone's) embeds the victims'
  disguised images; rank-1 among them. Control: the same model on the plain images.
* `linkability`: the server links disguised images of one person (a) with the re-ID model it
  trained on disguised images — that is the service, so this leaks by design: the disguise
  hides appearance, not who-is-who, from the server — and (b) with no model at all, by cosine
  similarity of the centred disguised pixel vectors (an orthogonal per-position projection
  preserves inner products, so RMT keeps exactly plain-pixel linkability).

Threat model: level 1 (the server holds disguised images only).
"""

from __future__ import annotations

import numpy as np

from ..attack import Attack, Outcome, register
from ..disguise_view import DisguiseView
from ._common import rank1_finding


@register
class VisualReid(Attack):
    name = "visual-reid"
    target = "disguise"
    control = "plain"
    # The server's trained model is a learner with labels (it trained on them).
    attacker = {"visual-reid": "viewer with a plain model", "linkability": "learner with labels"}
    holds = "the victims' disguised images and a re-ID model trained on plain images (level 1)"
    columns = ("visual-reid", "linkability")

    def run(self, view: DisguiseView) -> Outcome:  # type: ignore[override]
        findings = []
        if view.plain_model is not None:
            f = np.asarray(view.plain_model.embed(view.victims_disguised), np.float64)
            findings.append(rank1_finding("visual-reid", "plain model", f, f, view))
        if view.disguised_model is not None:
            f = np.asarray(view.disguised_model.embed(view.victims_disguised), np.float64)
            findings.append(rank1_finding("linkability", "server's model", f, f, view))
        v = view.victims_disguised.reshape(len(view.victims_disguised), -1).astype(np.float64)
        v -= v.mean(axis=0, keepdims=True)  # the server's own mean over what it holds
        findings.append(rank1_finding("linkability", "pixels", v, v, view))
        return Outcome(findings)
