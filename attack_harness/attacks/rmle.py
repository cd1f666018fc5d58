"""White-box rMLE (He et al. 2019): the insider who holds the model file but not the keys.

It optimises an image to match a leaked feature (TV prior, grey start, Adam). On ciphertext
there is nothing to match, so it applies to plaintext targets only. A handful of victims:
reported beside He et al.'s figures, never gated.
"""

from __future__ import annotations

import numpy as np
import torch

from ..attack import Attack, Outcome, TargetView, register
from ..metrics import batch_psnr, batch_ssim, rank1_hits
from ..reconstruction import baseline_image, rmle
from ..targets import PLAINTEXT

HE_ET_AL = ("He et al. 2019 report SSIM 0.997 (MNIST conv1) down to 0.163 (CIFAR ReLU32), and "
            "collapse once the split is at or after a fully-connected layer")


@register
class WhiteBoxRmle(Attack):
    name = "rmle"
    holds = "the model file and the victims' leaked outputs (no keys)"
    columns = ()
    gated = False
    cost = 26.0

    def run(self, view: TargetView) -> Outcome:
        cfg, data = self.config, view.data
        if view.scheme != PLAINTEXT:
            return Outcome(not_applicable="the insider holds the model but not the keys: a "
                                          "ciphertext is no feature vector to match")
        if not hasattr(view.evaluator, "torch_forward"):
            return Outcome(not_applicable="the model file is not differentiable in process "
                                          "(ONNX)")
        idx = np.flatnonzero(data.victim_is_query)[:cfg.rmle_victims]
        if idx.size == 0:
            idx = np.arange(min(cfg.rmle_victims, len(data.victim_images)))
        target = torch.from_numpy(np.stack([np.asarray(view.leaked[i], np.float32).reshape(-1)
                                            for i in idx]))
        dim = view.victim_plain.shape[1]
        if target.shape[1] != dim:
            return Outcome(not_applicable=f"the endpoint answers {target.shape[1]}-d features, "
                                          f"the model file {dim}-d: not the served model")
        h, w = data.victim_images.shape[1:3]
        with torch.enable_grad():
            x = rmle(view.evaluator.torch_forward, target, (3, h, w), steps=cfg.rmle_steps,
                     seed=cfg.seed)
        recon = (x.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()
        truth = data.victim_images[idx]
        base = baseline_image(data.aux_images, full_resolution=True)
        hits, chance, valid = rank1_hits(view.evaluator.embed(recon), data.victim_ids[idx],
                                         data.victim_cams[idx], view.victim_plain,
                                         data.victim_ids, data.victim_cams)
        details = {"status": "ran", "victims": int(idx.size), "steps": cfg.rmle_steps,
                   "ssim": float(batch_ssim(recon, truth).mean()),
                   "ssim_baseline": float(batch_ssim(truth, base).mean()),
                   "psnr": float(batch_psnr(recon, truth).mean()),
                   "psnr_baseline": float(batch_psnr(truth, base).mean()),
                   "rank1": float(hits[valid].mean()) if valid.any() else None,
                   "rank1_chance": float(chance[valid].mean()) if valid.any() else None,
                   "paper": HE_ET_AL,
                   "note": "white-box, a handful of victims: reported, not gated. Rank-1 "
                           "re-embeds with the very model inverted, so it can be high for "
                           "images that look nothing like the victim (SSIM tells)"}
        return Outcome(details=details, images={"white-box rMLE": recon[:cfg.grid]})
