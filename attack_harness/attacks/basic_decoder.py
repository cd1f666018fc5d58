"""The basic black-box decoder: trained on PLAIN public pairs, applied to the leaked outputs.

Threat model: the insider with the model file (it embeds its own images in plaintext, no
queries needed) and the victims' leaked outputs. This is the non-adaptive attacker of the
Crafter paper: a decoder fitted to (Enc(x), x) pairs, which a defence that perturbs features
can fool. The `reconstruction` attack, which fits its decoder on the endpoint's own answers to
its queries, is the ADAPTIVE one. On plaintext both see the same features, so the adaptive
attacker must do at least as well there (a test checks it).
"""

from __future__ import annotations

import numpy as np

from ..attack import Attack, Outcome, TargetView, register
from ..inversion import offered
from ..linear import KernelRidgeCV
from ..prior_inversion import identity_finding
from ..reconstruction import reconstruction_attack


@register
class BasicDecoder(Attack):
    name = "basic-decoder"
    holds = "the model file (plain features of its own images); the leaked outputs"
    columns = ("identity",)
    default_when = "readable"
    cost = 5.0

    def run(self, view: TargetView) -> Outcome:
        cfg, data = self.config, view.data
        plain = view.aux_plain
        if view.reading("float")[1].shape[1] != plain.shape[1]:  # e.g. ciphertext words
            return Outcome(not_applicable="the leaked outputs are not model-sized features")
        x_train = KernelRidgeCV(plain, data.aux_ids, cfg.attribute.folds, cfg.attribute.clip,
                                cfg.seed) if cfg.decoder.kind == "ridge" else plain
        grid = np.flatnonzero(data.victim_is_query)[:cfg.grid]
        findings, details, images = [], {}, {}
        for rep in ["float", *offered(view)]:  # the leaked outputs as served, then inverted
            rec = reconstruction_attack(x_train, data.aux_images, data.aux_ids,
                                        view.reading(rep)[1], data.victim_images,
                                        data.victim_ids, cfg.decoder, cfg.seed, cfg.confidence,
                                        cfg.n_boot)
            recon = rec.get("identity_reconstructions", rec["reconstructions"])
            found = identity_finding(view, recon, "rank-1 (basic decoder)", rep)
            findings += [found] if found else []
            details[rep] = {"ssim_gain": rec["ssim_gain"]["score"].estimate}
            label = "" if rep == "float" else f" [{rep}]"
            images[f"basic decoder (plain pairs){label}"] = rec["reconstructions"][grid]
        return Outcome(findings, details, images)
