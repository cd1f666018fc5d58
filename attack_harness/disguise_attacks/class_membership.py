"""Class membership against the model trained on disguised images (the authors' second
attack, as implemented here; the paper's exact protocol was not available).

The attacker holds plain images of a person and black-box access to the served model, but no
disguise key. It asks whether the model puts its plain image with that person's disguised
images: rank-1 of the model's embedding of each victim's PLAIN image among the model's
embeddings of the victims' DISGUISED images. Control: the plain model on plain images, where
membership is the model's job. Skipped (no finding) when the view has no disguised model.
"""

from __future__ import annotations

import numpy as np

from ..attack import Attack, Outcome, register
from ..disguise_view import DisguiseView
from ._common import rank1_finding


@register
class ClassMembership(Attack):
    name = "class-membership"
    target = "disguise"
    control = "plain"
    attacker = "keyless client of the served model"
    holds = "plain images of the people it looks for; black-box use of the disguised model"
    columns = ("class-membership",)

    def run(self, view: DisguiseView) -> Outcome:  # type: ignore[override]
        model = view.disguised_model
        if model is None:
            return Outcome(details={"skipped": "no model trained on this disguise"})
        query = np.asarray(model.embed(view.victims), np.float64)
        gallery = np.asarray(model.embed(view.victims_disguised), np.float64)
        return Outcome([rank1_finding("class-membership", "plain query", query, gallery, view)])
