"""Image reconstruction (Ni et al. decoder; He et al. inverse network) and identity leakage.

Threat model: the black-box API (its own images, within the budget) and the victims' leaked
outputs. A decoder trained on the attacker's (image, reading) pairs reconstructs each victim;
scored by SSIM and PSNR gain over the attacker's mean image (chance 0), by identity: each
reconstruction, re-embedded by the plaintext model, must retrieve its victim from the victims'
gallery (rank-1 vs chance), and by template inversion, the face field's measure: the share of
reconstructions the system itself accepts as their victim at its FMR 1e-3 threshold (chance:
the mean image's acceptance, at least 1e-3). See `featurelock.attack_harness.reconstruction`.
"""

from __future__ import annotations

import numpy as np

from ..attack import Attack, Finding, Outcome, TargetView, register
from ..metrics import SsimTruth
from ..readable import is_readable
from ..reconstruction import identity_leakage, reconstruction_attack, template_inversion


@register
class ImageReconstruction(Attack):
    name = "reconstruction"
    holds = "its own queries' responses with its images; the leaked outputs"
    columns = ("identity", "template_inversion", "ssim_gain", "psnr_gain")
    cost = 48.0

    def run(self, view: TargetView) -> Outcome:
        cfg, data = self.config, view.data
        grid = np.flatnonzero(data.victim_is_query)[:cfg.grid]
        findings, details, images, why = [], {}, {}, None
        truth = getattr(self, "_truth", None)
        if truth is None or truth.truth is not data.victim_images:  # the same for every target
            truth = self._truth = SsimTruth(data.victim_images)
        for rep in view.readings(ordered=True):
            x_aux, x_vic = view.reading(rep)
            rec = reconstruction_attack(view.solver(rep) if cfg.decoder.kind == "ridge" else x_aux,
                                        data.aux_images, data.aux_ids, x_vic, data.victim_images,
                                        data.victim_ids, cfg.decoder, cfg.seed, cfg.confidence,
                                        cfg.n_boot, truth=truth)
            recon = rec.pop("reconstructions")
            # The smoothed images score SSIM best; the unsmoothed ones carry more identity.
            for_identity = rec.pop("identity_reconstructions", recon)
            baseline = rec.pop("baseline_image")
            images["baseline (mean image)"] = np.repeat(baseline[None], grid.size, 0)
            images[f"decoder [{rep}]"] = recon[grid]
            rec_emb = view.evaluator.embed(for_identity)
            ident = identity_leakage(rec_emb, data.victim_ids, data.victim_cams,
                                     view.victim_plain, data.victim_ids, data.victim_cams,
                                     cfg.confidence, cfg.n_boot, cfg.seed)
            if "score" in ident:
                findings.append(Finding("identity", "rank-1", ident["score"], ident["chance"],
                                        ident["n"], rep, summary=True))
            else:
                why = ident["skipped"]
            inv = template_inversion(rec_emb, view.evaluator.embed(baseline[None])[0],
                                     view.victim_plain, data.victim_ids, level=cfg.confidence,
                                     n_boot=cfg.n_boot, seed=cfg.seed)
            if "score" in inv:
                findings.append(Finding("template_inversion", "success rate @FMR1e-3",
                                        inv.pop("score"), inv["chance"], inv["n"], rep,
                                        summary=True))
            else:  # e.g. too few impostor pairs for an FMR 1e-3 threshold: say so
                why = why or inv["skipped"].removeprefix("not applicable: ")
            details[f"{rep} template inversion"] = inv
            margins = {"ssim_gain": cfg.ssim_margin, "psnr_gain": cfg.psnr_margin_db}
            for key, margin in margins.items():
                r = rec[key]
                findings.append(Finding(key, key, r["score"], r["chance"], r["n"], rep,
                                        summary=True, margin=margin))
            details[rep] = {k: rec[k] for k in ("ssim", "ssim_baseline", "psnr", "psnr_baseline",
                                                "decoder") if k in rec}
        if is_readable(view.scheme):  # its decoder learned from the defence's own answers
            details["role"] = ("the ADAPTIVE attacker: decoder fitted on the crafted answers "
                               "to its own queries")
        return Outcome(findings, details, images, not_applicable=why)
