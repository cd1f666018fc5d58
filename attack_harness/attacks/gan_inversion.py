"""White-box GAN-prior inversion: the insider with the model file and the public prior.

Threat model: the model file (Enc), a generator G and an amortised inverter trained on
public people (`featurelock crafter train`; never the victims), and the victims' leaked
outputs. Each leaked feature is inverted to z* = argmin ||F - Enc(G(z))||^2 and G(z*) is
scored by identity. Outputs that are not model-sized features (ciphertext) are skipped:
there is nothing to invert. Needs the prior file (ScanConfig.crafter_prior or the packaged
one); without it the attack reports that it did not run.
"""

from __future__ import annotations

import numpy as np

from ..attack import Attack, Outcome, TargetView, register
from ..inversion import offered
from ..prior_inversion import identity_finding, load_attacker_prior, prior_inversion


@register
class GanInversion(Attack):
    name = "gan-inversion"
    holds = "the model file, the public GAN prior and its inverter; the leaked outputs"
    columns = ("identity",)
    default_when = "readable"
    cost = 10.0

    def run(self, view: TargetView) -> Outcome:
        cfg, data = self.config, view.data
        prior = load_attacker_prior(getattr(cfg, "crafter_prior", None))
        if prior is None or not hasattr(view.evaluator, "torch_forward"):
            return Outcome(not_applicable="no GAN prior file (featurelock crafter train)")
        width = view.reading("float")[1].shape[1]
        if width != view.victim_plain.shape[1]:
            return Outcome(not_applicable="the leaked outputs are not model-sized features")
        G, inv = prior
        expects = getattr(inv.net[0], "in_features", width)
        if expects != width:
            return Outcome(not_applicable=f"the GAN prior's inverter takes {expects}-d features, "
                                          f"the model gives {width}-d")
        grid = np.flatnonzero(data.victim_is_query)[:cfg.grid]
        findings, images = [], {}
        for rep in ["float", *offered(view)]:  # the leaked outputs as served, then inverted
            recon = prior_inversion(G, inv, view.evaluator.torch_forward, view.reading(rep)[1],
                                    data.victim_images.shape[1:3],
                                    getattr(cfg, "inversion_steps", 20))
            found = identity_finding(view, recon, "rank-1 (GAN inversion)", rep)
            findings += [found] if found else []
            images["GAN-prior inversion" + ("" if rep == "float" else f" [{rep}]")] = recon[grid]
        return Outcome(findings, {}, images)
