"""A scan: every attack, through every representation, against every target; one verdict each.

    result = run_scan({"plaintext": t0, "aes": t1}, ScanConfig(budget=600), evaluator=...)
    result.exit_status()   # 0 pass, 1 a protected target leaks

Per target the attacker (1) spends its query budget on its own auxiliary images, (2) receives
the leaked outputs of the victims (identities disjoint from its own; not charged to the
budget), then for each representation (float, bits, hamming, bytes) trains and scores:

* attributes   balanced accuracy per attribute and its mean, vs chance;
* reconstruction SSIM / PSNR gain over the mean-image baseline;
* identity     rank-1 retrieval of the victim's identity by the plaintext model from each
               reconstruction of a victim query, vs chance;

and, for plaintext targets, the white-box rMLE insider. A gated test LEAKS when the lower end
of its interval exceeds chance + margin. The intervals are simultaneous over every gated test
of the scan (Bonferroni: each at level 1 - (1 - confidence) / m), so a 48-test scan of a sound
scheme does not fail by luck. A target's verdict is its best attacker.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

import numpy as np
import torch

from .attributes import AttributeAttackConfig, attribute_attack, jsonable
from .data import AttackData
from .linear import KernelRidgeCV
from .metrics import Interval, batch_psnr, batch_ssim, rank1_hits
from .reconstruction import (DecoderConfig, baseline_image, identity_leakage,
                             reconstruction_attack, rmle)
from .representations import REPRESENTATIONS, represent
from .targets import PLAINTEXT, MeteredTarget, Target

__all__ = ["ScanConfig", "ScanResult", "run_scan", "GATED", "FAIL_IF"]

GATED = ("attributes", "identity", "ssim_gain", "psnr_gain")
FAIL_IF = ("protected-leak", "any-leak", "never")


@dataclass(frozen=True)
class ScanConfig:
    budget: int = 600
    seed: int = 0
    representations: tuple[str, ...] = REPRESENTATIONS
    attacks: tuple[str, ...] = ("attributes", "reconstruction", "rmle")
    confidence: float = 0.95
    margin: float = 0.05  # absolute, on accuracy / rank-1 / SSIM
    psnr_margin_db: float = 0.5
    rate_limit: float | None = None  # queries per second, all queries to a target
    batch_size: int = 32
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    attribute: AttributeAttackConfig = field(default_factory=AttributeAttackConfig)
    rmle_victims: int = 4
    rmle_steps: int = 200
    grid: int = 6  # victims shown in the report's image grids
    n_boot: int = 1000
    fail_if: str = "protected-leak"
    progress: bool = True

    def __post_init__(self) -> None:
        bad = set(self.representations) - set(REPRESENTATIONS)
        if bad or not self.representations:
            raise ValueError(f"representations must be among {', '.join(REPRESENTATIONS)}, "
                             f"got {', '.join(sorted(bad)) or 'none'}")
        bad = set(self.attacks) - {"attributes", "reconstruction", "rmle"}
        if bad:
            raise ValueError(f"unknown attacks: {', '.join(sorted(bad))}")
        if self.budget < 1:
            raise ValueError(f"budget must be >= 1, got {self.budget}")
        if not 0 < self.confidence < 1:
            raise ValueError(f"confidence must be in (0, 1), got {self.confidence}")
        if self.margin < 0 or self.psnr_margin_db < 0:
            raise ValueError("margins must be >= 0")
        if self.fail_if not in FAIL_IF:
            raise ValueError(f"fail_if must be one of {', '.join(FAIL_IF)}, got {self.fail_if!r}")

    def to_dict(self) -> dict:
        return jsonable(asdict(self))


@dataclass
class ScanResult:
    config: ScanConfig
    data: dict
    evaluator: str
    targets: dict[str, dict]  # name -> {"scheme", "queries", "representations": {...}, ...}
    tests: list[dict]  # every gated test with its simultaneous interval and verdict
    verdicts: dict[str, dict]
    images: dict[str, Any]  # name -> {"victims", "baseline", rep -> reconstructions} (uint8)
    seconds: float

    def leaking_targets(self) -> list[str]:
        return [name for name, v in self.verdicts.items() if v["leak"]]

    def exit_status(self) -> int:
        if self.config.fail_if == "never":
            return 0
        for name, v in self.verdicts.items():
            if v["leak"] and (self.config.fail_if == "any-leak" or v["scheme"] != PLAINTEXT):
                return 1
        return 0

    def to_dict(self) -> dict:
        return jsonable({"featurelock_scan": 1, "config": self.config.to_dict(),
                         "data": self.data, "evaluator": self.evaluator,
                         "targets": self.targets, "verdicts": self.verdicts,
                         "tests": self.tests, "exit_status": self.exit_status(),
                         "seconds": round(self.seconds, 1)})


def _bar(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    # disable=None: tqdm stays quiet when stderr is not a terminal (CI logs, pipes).
    return tqdm(total=total, desc=desc, file=sys.stderr, disable=None if enabled else True,
                leave=False, dynamic_ncols=True)


def _query_all(target: MeteredTarget, images: np.ndarray, charge: bool, batch: int,
               desc: str, progress: bool) -> list:
    out: list = []
    with _bar(len(images), desc, progress) as bar:
        for s in range(0, len(images), batch):
            out.extend(target.query(images[s:s + batch], charge=charge))
            bar.update(min(batch, len(images) - s))
    return out


def run_scan(targets: Mapping[str, Target], config: ScanConfig, data: AttackData,
             evaluator: Any) -> ScanResult:
    """Attack every target; `evaluator` is the plaintext model (embed, torch_forward)."""
    if not targets:
        raise ValueError("targets must name at least one target")
    if len(data.aux_images) < config.budget:
        raise ValueError(f"the data set has {len(data.aux_images)} attacker images, "
                         f"budget is {config.budget}")
    started = time.monotonic()
    torch.manual_seed(config.seed)
    aux = slice(0, config.budget)
    aux_images, aux_ids = data.aux_images[aux], data.aux_ids[aux]
    q = data.victim_is_query
    # Identity leakage: every victim's reconstruction searches all victims' plaintext
    # embeddings (itself and its identity's same-camera images excluded, Market-style).
    gallery_emb = evaluator.embed(data.victim_images)
    g_ids, g_cams = data.victim_ids, data.victim_cams
    grid = np.arange(min(config.grid, int(q.sum())))
    query_index = np.flatnonzero(q)
    raw: dict[str, dict] = {}
    images: dict[str, Any] = {}
    for name, target in targets.items():
        metered = MeteredTarget(target, config.budget, config.rate_limit)
        responses = _query_all(metered, aux_images, True, config.batch_size,
                               f"querying {name}", config.progress)
        leaked = _query_all(metered, data.victim_images, False, config.batch_size,
                            f"leaked outputs {name}", config.progress)
        scheme = metered.scheme or "unknown"
        entry: dict[str, Any] = {"scheme": scheme, "queries_charged": metered.used,
                                 "queries_total": metered.total, "representations": {}}
        imgs: dict[str, Any] = {"victims": data.victim_images[query_index[grid]],
                                "baseline": None, "reconstructions": {}}
        reps = config.representations
        with _bar(len(reps), f"training attacks on {name}", config.progress) as bar:
            for rep in reps:
                x_aux, x_vic = represent(responses, rep), represent(leaked, rep)
                r: dict[str, Any] = {"dim": int(x_aux.shape[1])}
                solver = KernelRidgeCV(x_aux, aux_ids, config.attribute.folds,
                                       config.attribute.clip, config.seed)
                if "attributes" in config.attacks:
                    r["attributes"] = attribute_attack(
                        solver, data.aux_attributes[aux], aux_ids, x_vic, data.victim_attributes,
                        data.victim_ids, data.attribute_names, data.attribute_classes,
                        config.attribute, config.seed, config.confidence, config.n_boot)
                if "reconstruction" in config.attacks:
                    rec = reconstruction_attack(solver if config.decoder.kind == "ridge"
                                                else x_aux, aux_images, aux_ids, x_vic,
                                                data.victim_images, data.victim_ids,
                                                config.decoder, config.seed, config.confidence,
                                                config.n_boot)
                    recon = rec.pop("reconstructions")
                    imgs["baseline"] = rec.pop("baseline_image")
                    imgs["reconstructions"][rep] = recon[query_index[grid]]
                    rec["identity"] = identity_leakage(evaluator.embed(recon), data.victim_ids,
                                                       data.victim_cams, gallery_emb, g_ids,
                                                       g_cams, config.confidence, config.n_boot,
                                                       config.seed)
                    r["reconstruction"] = rec
                entry["representations"][rep] = r
                bar.update(1)
        if "rmle" in config.attacks:
            entry["rmle"] = _rmle(scheme, leaked, data, evaluator, config, gallery_emb)
            if "images" in entry["rmle"]:
                imgs["rmle"] = entry["rmle"].pop("images")
        raw[name] = entry
        images[name] = imgs
    tests = _gate(raw, config)
    verdicts = _verdicts(raw, tests)
    return ScanResult(config, data.summary(), getattr(evaluator, "description", "?"), raw,
                      tests, verdicts, images, time.monotonic() - started)


def _rmle(scheme: str, leaked: list, data: AttackData, evaluator: Any, config: ScanConfig,
          gallery_emb: np.ndarray) -> dict:
    if scheme != PLAINTEXT:
        return {"status": "not applicable",
                "reason": "the insider holds the model but not the keys: a ciphertext is no "
                          "feature vector, so there is nothing for f(x) to match"}
    if not hasattr(evaluator, "torch_forward"):
        return {"status": "skipped", "reason": "the evaluator model is not differentiable"}
    idx = np.flatnonzero(data.victim_is_query)[:config.rmle_victims]
    target = torch.from_numpy(np.stack([np.asarray(leaked[i], np.float32).reshape(-1)
                                        for i in idx]))
    h, w = data.victim_images.shape[1:3]
    with torch.enable_grad():
        x = rmle(evaluator.torch_forward, target, (3, h, w), steps=config.rmle_steps,
                 seed=config.seed)
    recon = (x.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()
    truth = data.victim_images[idx]
    base = baseline_image(data.aux_images[:config.budget], full_resolution=True)
    hits, chance, valid = rank1_hits(evaluator.embed(recon), data.victim_ids[idx],
                                     data.victim_cams[idx], gallery_emb, data.victim_ids,
                                     data.victim_cams)
    return {"status": "ran", "victims": int(idx.size), "steps": config.rmle_steps,
            "ssim": float(batch_ssim(recon, truth).mean()),
            "ssim_baseline": float(batch_ssim(truth, base).mean()),
            "psnr": float(batch_psnr(recon, truth).mean()),
            "psnr_baseline": float(batch_psnr(truth, base).mean()),
            "rank1": float(hits[valid].mean()) if valid.any() else None,
            "rank1_chance": float(chance[valid].mean()) if valid.any() else None,
            "note": "white-box, a handful of victims: reported, not gated. Rank-1 re-embeds "
                    "with the very model inverted, so it can be high for images that look "
                    "nothing like the victim (SSIM tells)",
            "images": recon[: config.grid]}


def _gate(raw: dict[str, dict], config: ScanConfig) -> list[dict]:
    """Every gated test, with a simultaneous (Bonferroni) interval and a leak flag."""
    found: list[dict] = []
    for name, entry in raw.items():
        for rep, r in entry["representations"].items():
            for attr, res in (r.get("attributes") or {}).get("attributes", {}).items():
                found.append({"target": name, "representation": rep, "attack": "attributes",
                              "what": attr, **res})
            mean = (r.get("attributes") or {}).get("mean")
            if mean:
                found.append({"target": name, "representation": rep, "attack": "attributes",
                              "what": "mean", **mean})
            rec = r.get("reconstruction")
            if rec:
                for key in ("identity", "ssim_gain", "psnr_gain"):
                    found.append({"target": name, "representation": rep, "attack": key,
                                  "what": "rank1" if key == "identity" else key, **rec[key]})
    scored = [t for t in found if isinstance(t.get("score"), Interval)]
    m = max(len(scored), 1)
    level = 1 - (1 - config.confidence) / m
    out = []
    for t in scored:
        margin = config.psnr_margin_db if t["attack"] == "psnr_gain" else config.margin
        sim = t["score"].widened(level)
        out.append({"target": t["target"], "representation": t["representation"],
                    "attack": t["attack"], "what": t["what"], "score": t["score"].estimate,
                    "ci": [t["score"].low, t["score"].high], "ci_level": t["score"].level,
                    "simultaneous_ci": [sim.low, sim.high], "simultaneous_level": level,
                    "chance": t["chance"], "margin": margin, "n": t["n"],
                    "leak": bool(sim.low > t["chance"] + margin)})
    return out


def _verdicts(raw: dict[str, dict], tests: list[dict]) -> dict[str, dict]:
    """Per target and attack: the best attacker (largest simultaneous lower bound over
    chance), and the target's overall leak flag."""
    out = {}
    for name, entry in raw.items():
        mine = [t for t in tests if t["target"] == name]
        best: dict[str, dict] = {}
        for attack in GATED:
            cands = [t for t in mine if t["attack"] == attack]
            if not cands:
                continue
            if attack == "attributes":  # the table shows the mean; leak if any attribute leaks
                means = [t for t in cands if t["what"] == "mean"] or cands
                top = max(means, key=lambda t: t["simultaneous_ci"][0] - t["chance"])
                worst = max(cands, key=lambda t: t["simultaneous_ci"][0] - t["chance"])
                best[attack] = {**top, "leak": any(t["leak"] for t in cands),
                                "worst_attribute": worst["what"],
                                "worst_representation": worst["representation"],
                                "worst_score": worst["score"], "worst_chance": worst["chance"]}
            else:
                best[attack] = max(cands, key=lambda t: t["simultaneous_ci"][0] - t["chance"])
        out[name] = {"scheme": entry["scheme"], "leak": any(t["leak"] for t in mine),
                     "best": best, "rmle": {k: v for k, v in entry.get("rmle", {}).items()
                                            if k != "images"}}
    return out
