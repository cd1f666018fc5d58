"""Linkability: follow a person across cameras on what the endpoint returns.

Threat model: the attacker holds the victims' leaked outputs from different cameras (query
vs gallery; identities disjoint from its own) and matches them, Market-1501 style.

* zero-query: no training at all; per reading a similarity between two responses: cosine of
  the z-scored reading (statistics of everything the attacker holds, no labels) for the
  ordered readings, and for `columns` the best column-to-column correlation (invariant to a
  fresh bit permutation per message);
* learned: trained on the attacker's own identities. Ordered readings: a linear projection
  (ridge onto identity indicators, strength chosen by identity-grouped CV on its own retrieval
  rank-1), then cosine in the projected space. `columns`: one weight per bit position, the
  sum of same-position column correlations weighted by how well each position separates
  the attacker's same-identity pairs from different-identity pairs (32 parameters: what a
  fixed key leaves in place, whatever the key).

Scored by rank-1 (gated; chance = true matches / candidates) and mAP (gated; chance = a
random ranking's expected AP), with identity-resampled intervals, and as the face field scores
a verifier: TAR at FMR 1e-3 over the query x gallery comparisons (gated; the threshold is set
on the impostor pairs of the attacker's own similarity, so chance is the FMR, 1e-3; the
interval resamples identities with that threshold held fixed). On plaintext the zero-query
float reading is the model's own re-ID metric.
"""

from __future__ import annotations

import numpy as np

from ..attack import Attack, Finding, Outcome, TargetView, register
from ..linear import KernelRidgeCV, Standardizer
from ..metrics import FMR_1E3, mean_interval, retrieval, threshold_at_fmr, verification_scores
from ..representations import column_similarity

LAMBDAS = (1e-2, 1e-1, 1.0, 10.0, 100.0)  # x mean Gram diagonal


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return a @ b.T


def _loo_rank1(z: np.ndarray, ids: np.ndarray) -> float:
    """Rank-1 of each row against all other rows (its own identity among them)."""
    sim = _cosine(z, z)
    np.fill_diagonal(sim, -np.inf)
    has_match = (ids[:, None] == ids[None, :]).sum(axis=1) > 1
    return float((ids[sim.argmax(axis=1)] == ids)[has_match].mean()) if has_match.any() else 0.0


def learned_projection(solver: KernelRidgeCV, ids: np.ndarray) -> np.ndarray:
    """(d, identities) weights onto centred identity indicators, ridge strength by CV."""
    onehot = (ids[:, None] == np.unique(ids)[None, :]).astype(np.float64)
    targets = onehot - onehot.mean(axis=0)
    lambdas = solver.lambdas(LAMBDAS)
    score = np.zeros(len(lambdas))
    for f, tr, te in solver.splits():
        for li, pred in solver.cv_scores(f, targets[tr], lambdas):
            score[li] += _loo_rank1(pred, ids[te])
    return solver.fit_weights(targets, np.full(targets.shape[1], lambdas[int(score.argmax())]))


def _position_agreement(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(32, Na, Nb): per bit position, the correlation of the two messages' columns."""
    a = a.reshape(a.shape[0], 32, -1).transpose(1, 0, 2)
    b = b.reshape(b.shape[0], 32, -1).transpose(1, 2, 0)
    return a @ b


def position_weights(columns: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """(32,) Fisher weights: (mean same-identity agreement - mean different) / variance."""
    agree = _position_agreement(columns, columns)
    same = ids[:, None] == ids[None, :]
    off = ~np.eye(len(ids), dtype=bool)
    pos, neg = agree[:, same & off], agree[:, ~same]
    if pos.shape[1] == 0:
        return np.zeros(32)
    var = 0.5 * (pos.var(axis=1) + neg.var(axis=1))
    return (pos.mean(axis=1) - neg.mean(axis=1)) / np.maximum(var, 1e-12)


def _tar_finding(sim: np.ndarray, ids_q: np.ndarray, ids_g: np.ndarray, valid: np.ndarray,
                 cfg, reading: str, what: str = "TAR@FMR1e-3") -> Finding | str:
    """TAR at FMR 1e-3 of a query x gallery similarity, or why it does not apply."""
    genuine, impostor = verification_scores(sim, ids_q, ids_g, valid)
    try:
        t = threshold_at_fmr(impostor, FMR_1E3)
    except ValueError as exc:
        return f"not applicable: {exc}"
    if genuine.size == 0:
        return "not applicable: no genuine pairs"
    same = (ids_q[:, None] == ids_g[None, :]) & valid
    hits = (np.asarray(sim, np.float64)[same] >= t).astype(np.float64)
    who = np.broadcast_to(ids_q[:, None], same.shape)[same]  # the genuine pair's identity
    score = mean_interval(hits, who, cfg.confidence, cfg.n_boot, cfg.seed)
    return Finding("linkability", what, score, FMR_1E3, int(hits.size), reading)


@register
class Linkability(Attack):
    name = "linkability"
    holds = ("the victims' leaked outputs from two cameras; for the learned variant also its "
             "own queries' responses, labelled by its own identities")
    columns = ("linkability",)
    needs = ("linkable victims",)
    cost = 3.0

    def run(self, view: TargetView) -> Outcome:
        data, cfg = view.data, self.config
        q = data.victim_is_query
        findings, details = [], {}
        own = retrieval(_cosine(view.victim_plain[q], view.victim_plain[~q]), data.victim_ids[q],
                        data.victim_cams[q], data.victim_ids[~q], data.victim_cams[~q])
        details["model rank-1"] = float(own["rank1"][own["valid"]].mean())  # the reference
        valid_pairs = ~((data.victim_ids[q][:, None] == data.victim_ids[~q][None, :])
                        & (data.victim_cams[q][:, None] == data.victim_cams[~q][None, :]))
        model_tar = _tar_finding(_cosine(view.victim_plain[q], view.victim_plain[~q]),
                                 data.victim_ids[q], data.victim_ids[~q], valid_pairs, cfg, "-")
        if isinstance(model_tar, Finding):
            details["model TAR@FMR1e-3"] = model_tar.score.estimate
        ordered = set(view.readings(ordered=True))
        for rep in view.readings():
            aux, vic = view.reading(rep)
            sims = {}
            if rep in ordered:
                z = Standardizer(np.concatenate([aux, vic]), cfg.attribute.clip)(vic)
                sims["zero-query"] = _cosine(z[q], z[~q])
                w = learned_projection(view.solver(rep), data.aux_ids)
                p = view.solver(rep).std(vic) @ w
                sims["learned"] = _cosine(p[q], p[~q])
            else:
                sims["zero-query"] = column_similarity(vic[q], vic[~q])
                w = position_weights(aux, data.aux_ids)
                sims["learned"] = np.tensordot(w, _position_agreement(vic[q], vic[~q]), 1)
            for how, sim in sims.items():
                r = retrieval(sim, data.victim_ids[q], data.victim_cams[q], data.victim_ids[~q],
                              data.victim_cams[~q])
                valid, ids = r["valid"], data.victim_ids[q][r["valid"]]
                for metric in ("rank1", "ap"):
                    values = r[metric][valid]
                    score = mean_interval(values, ids, cfg.confidence, cfg.n_boot, cfg.seed)
                    findings.append(Finding("linkability", f"{how} {'rank-1' if metric == 'rank1' else 'mAP'}",
                                            score, float(r[f"{metric}_chance"][valid].mean()),
                                            int(values.size), rep, summary=metric == "rank1"))
                details[f"{rep} {how}"] = {"rank1": float(r["rank1"][valid].mean()),
                                           "mAP": float(r["ap"][valid].mean())}
                tar = _tar_finding(sim, data.victim_ids[q], data.victim_ids[~q], valid_pairs,
                                   cfg, rep, f"{how} TAR@FMR1e-3")
                if isinstance(tar, Finding):
                    findings.append(tar)
                    details[f"{rep} {how}"]["TAR@FMR1e-3"] = tar.score.estimate
                else:
                    details[f"{rep} {how}"]["TAR@FMR1e-3"] = tar
        return Outcome(findings, details)
