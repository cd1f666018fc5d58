"""A learner with labels: the server that trains on disguised images reads them with metric and
linear readers learned on its own labelled disguised images (level 1 plus labels).

Whoever trains a model on disguised images holds labelled disguised images under the key
(identities, attributes): that is the training set. Every reader here is learned on those and
applied to the victims' disguised images (people it never saw labelled):

* whitening: PCA of the disguised pixel vectors, scaled to unit variance. A permutation of
  blocks and an orthogonal projection per block are one orthogonal map of the whole vector,
  and PCA whitening is invariant to any orthogonal map (up to signs), so the whitened
  coordinates are those of the plain images, noise aside;
* `learned-reid`: LDA on 256 whitened coordinates (within-identity whitening shrunk 10 %
  towards isotropic, then the 16 directions that best separate identities), cosine
  similarity (settings: the best of a small grid on plain images, seed 0; README);
  rank-1 among the victims across cameras (Market-1501 junk rule; chance = a random pick);
* `learned-linkability`: for each victim image, is its learned similarity to another image of
  the same person (another camera) higher than to a random other person's image? A two-
  alternative forced choice (an AUC estimate); chance 0.5;
* `attributes`: per-attribute linear heads (the feature harness's kernel ridge with
  identity-grouped CV, balanced class weights) on the whitened coordinates; balanced
  accuracy per attribute and their mean (chance 1 / classes present).

Control: the same readers on plain images (no disguise), where they must leak. The disguise
cannot hide from this attacker what a linear reader sees in plain pixels.
"""

from __future__ import annotations

import numpy as np

from ..attack import Attack, Finding, Outcome, register
from ..attributes import attribute_attack
from ..disguise_view import DisguiseView, centred_blocks
from ..metrics import mean_interval
from ._common import rank1_finding

__all__ = ["LabelledReader", "Whitener", "lda_projection", "forced_choice_hits"]


class Whitener:
    """PCA whitening fitted on the attacker's images (via the n x n Gram matrix: D >> n)."""

    def __init__(self, x: np.ndarray, components: int = 256) -> None:
        self.mean = x.mean(axis=0)
        xc = x - self.mean
        evals, evecs = np.linalg.eigh((xc @ xc.T).astype(np.float64))
        keep = np.argsort(evals)[::-1][:min(components, len(x) - 1)]
        evals, evecs = np.maximum(evals[keep], 1e-12), evecs[:, keep]
        # Principal axes in pixel space, scaled so the coordinates have unit variance.
        self.basis = ((xc.T @ evecs.astype(x.dtype)) / evals * np.sqrt(len(x) - 1)).astype(x.dtype)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) @ self.basis).astype(np.float64)


def lda_projection(z: np.ndarray, ids: np.ndarray, dims: int = 16,
                   shrink: float = 0.1) -> np.ndarray:
    """(k, dims) LDA map: whiten the within-identity scatter (shrunk towards its mean
    eigenvalue), then keep the directions of largest between-identity spread."""
    classes, inverse = np.unique(ids, return_inverse=True)
    means = np.zeros((classes.size, z.shape[1]))
    np.add.at(means, inverse, z)
    means /= np.bincount(inverse)[:, None]
    within = z - means[inverse]
    sw = within.T @ within / len(z)
    sw = (1 - shrink) * sw + shrink * np.trace(sw) / len(sw) * np.eye(len(sw))
    ew, vw = np.linalg.eigh(sw)
    w_half = vw / np.sqrt(np.maximum(ew, 1e-12))
    mb = (means - means.mean(axis=0)) @ w_half
    _, _, vt = np.linalg.svd(mb, full_matrices=False)
    return w_half @ vt[:dims].T


def forced_choice_hits(sim: np.ndarray, ids: np.ndarray, cams: np.ndarray,
                       rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per image: 1 if it is more similar to a random same-identity image from another camera
    than to a random other identity's image (0.5 on a tie); and a mask of scorable images."""
    n = len(ids)
    hits = np.zeros(n)
    valid = np.zeros(n, bool)
    for i in range(n):
        same = np.flatnonzero((ids == ids[i]) & (cams != cams[i]))
        other = np.flatnonzero(ids != ids[i])
        if not same.size or not other.size:
            continue
        a, b = sim[i, rng.choice(same)], sim[i, rng.choice(other)]
        hits[i], valid[i] = (a > b) + 0.5 * (a == b), True
    return hits, valid


def _pixels(images: np.ndarray, view: DisguiseView) -> np.ndarray:
    """Flattened pixel vectors in the plain domain's units (RMT bytes by the public scale);
    float32: the n x D products dominate the cost."""
    return centred_blocks(images, view.spec, view.block).reshape(len(images), -1).astype(np.float32)


@register
class LabelledReader(Attack):
    name = "labelled-reader"
    target = "disguise"
    control = "plain"
    attacker = "learner with labels"
    holds = ("labelled disguised images under the same key (the server's training set: "
             "identities, attributes) and the victims' disguised images")
    columns = ("learned-reid", "learned-linkability", "attributes")

    def run(self, view: DisguiseView) -> Outcome:  # type: ignore[override]
        cfg = self.config
        train = _pixels(view.labelled_disguised(), view)
        whiten = Whitener(train)
        z_train, z_vic = whiten(train), whiten(_pixels(view.victims_disguised, view))
        proj = lda_projection(z_train, view.public_ids)
        f = z_vic @ proj
        findings = [rank1_finding("learned-reid", "LDA on whitened pixels", f, f, view)]
        unit = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
        hits, valid = forced_choice_hits(unit @ unit.T, view.victim_ids, view.victim_cams,
                                         np.random.default_rng(cfg.seed))
        findings.append(Finding("learned-linkability", "same vs other person (2AFC)",
                                mean_interval(hits[valid], view.victim_ids[valid], cfg.confidence,
                                              cfg.n_boot, cfg.seed),
                                0.5, int(valid.sum()), "LDA", summary=True))
        details: dict = {"train_images": len(train)}
        if view.public_attributes is not None and view.victim_attributes is not None:
            names = view.attribute_names
            classes = tuple(int(max(view.public_attributes[:, a].max(),
                                    view.victim_attributes[:, a].max())) + 1
                            for a in range(len(names)))
            res = attribute_attack(z_train, view.public_attributes, view.public_ids, z_vic,
                                   view.victim_attributes, view.victim_ids, names, classes,
                                   seed=cfg.seed, level=cfg.confidence, n_boot=cfg.n_boot)
            for name, r in res["attributes"].items():
                if "score" in r:
                    findings.append(Finding("attributes", name, r["score"], r["chance"], r["n"],
                                            "ridge (balanced accuracy)"))
            if res["mean"] is not None:
                m = res["mean"]
                findings.append(Finding("attributes", "mean", m["score"], m["chance"], m["n"],
                                        "ridge (balanced accuracy)", summary=True))
            details["attributes"] = {n: round(r["score"].estimate, 4)
                                     for n, r in res["attributes"].items() if "score" in r}
        return Outcome(findings, details)
