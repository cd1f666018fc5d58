"""Attribute inference (Ni et al. 2021): per-attribute heads on each ordered reading.

Threat model: the black-box API (its own labelled images, within the budget) and the victims'
leaked outputs. The heads are linear, class-balanced and fitted in closed form
(`featurelock.attack_harness.attributes`). Each attribute is its own gated test; the mean over
attributes is the column's headline. Attributes the model does not encode show up as such in
the plaintext control, and the scan judges them inconclusive rather than safe.
"""

from __future__ import annotations

from ..attack import Attack, Finding, Outcome, TargetView, register
from ..attributes import MIN_IDS_PER_CLASS, attribute_attack


@register
class AttributeInference(Attack):
    name = "attributes"
    holds = "its own queries' responses with its images' attribute labels; the leaked outputs"
    columns = ("attributes",)
    utility_if_readable = True  # against Crafter: the attributes it must keep readable
    needs = ("attributes",)
    cost = 0.6

    def run(self, view: TargetView) -> Outcome:
        cfg, data = self.config, view.data
        findings, skipped = [], {}
        for rep in view.readings(ordered=True):
            res = attribute_attack(view.solver(rep), data.aux_attributes, data.aux_ids,
                                   view.reading(rep)[1], data.victim_attributes, data.victim_ids,
                                   data.attribute_names, data.attribute_classes, cfg.attribute,
                                   cfg.seed, cfg.confidence, cfg.n_boot)
            for attr, r in res["attributes"].items():
                if "skipped" in r:
                    skipped[attr] = r["skipped"]
                else:
                    findings.append(Finding("attributes", attr, r["score"], r["chance"], r["n"],
                                            rep))
            if res["mean"]:
                m = res["mean"]
                findings.append(Finding("attributes", "mean", m["score"], m["chance"], m["n"],
                                        rep, summary=True))
        why = None if findings else ("no attribute has two classes with >= "
                                     f"{MIN_IDS_PER_CLASS} victim identities")
        return Outcome(findings, {"skipped": skipped} if skipped else {}, not_applicable=why)
