"""Inverse attacks on readable transforms: recover the plain feature a served one was made from.

A readable scheme serves T(f) for the model's feature f (Crafter: T is the CraftNet). Its
privacy rests on T being hard to undo; these attacks undo it, and then every identity,
attribute, reconstruction and linkability attack runs on the recovered features as two more
readings of the target (offered only where the scheme is readable):

    inverted-whitebox  the insider holds T's file (the CraftNet ships in every .mar) and the
                       model. Zero endpoint queries: it embeds its own images, applies T to
                       them itself, fits a ridge map T(f) -> f on those pairs as a start, then
                       refines each recovered f by minimising ||T(f) - served||^2 over unit
                       features (L-BFGS through T).
    inverted-blackbox  no file: a ridge map served -> plain, learned from its charged queries'
                       answers and the plain features of the same images (a plaintext
                       endpoint of the same model, as the scan's control is, or a copy of the
                       model); the ridge strength is chosen by identity-grouped CV.

In both readings the attacker's own rows are the plain features of its own images (it holds
them in both threat models) and the victims' rows are the inverted leaked outputs, so the
learned attacks train on true plain features and are tested on recovered ones.

A future readable transform plugs in by registering its scheme in `readable.READABLE` (the
black-box map needs nothing else) and by exposing `served_transform` on its target: a torch
module from (N, D) model features to (N, D) served features, which is what an insider holding
the served file can differentiate through.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from .linear import KernelRidgeCV

__all__ = ["INVERTED", "WHITEBOX", "BLACKBOX", "is_inverted", "offered", "ridge_inverse",
           "refine", "whitebox_inverse", "blackbox_inverse", "inverted_reading", "cosines"]

WHITEBOX, BLACKBOX = "inverted-whitebox", "inverted-blackbox"
INVERTED = (WHITEBOX, BLACKBOX)
LAMBDAS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)  # x mean Gram diagonal
REFINE_ITERS = 1000  # L-BFGS iterations: 0.95 -> 0.97 mean cosine from 300 (beta 0.3, README)


def is_inverted(reading: str) -> bool:
    return reading in INVERTED


def offered(view: Any) -> list[str]:
    """The inverted readings the attacker can compute against this target, in the scan's
    order: none unless the scheme is readable; the white-box one only with T's file."""
    from .readable import is_readable

    if not is_readable(view.scheme):
        return []
    wanted = getattr(view.config, "inverse_readings", INVERTED)
    have = {BLACKBOX} | ({WHITEBOX} if getattr(view, "transform", None) is not None else set())
    return [r for r in wanted if r in have]


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return (a * b).sum(axis=1) / np.maximum(den, 1e-12)


def ridge_inverse(served: np.ndarray, plain: np.ndarray, groups: np.ndarray, folds: int = 3,
                  seed: int = 0) -> Callable[[np.ndarray], np.ndarray]:
    """A linear map served -> plain from known pairs, its strength chosen by identity-grouped
    CV on the mean cosine of the held-out recovered features."""
    plain = np.asarray(plain, np.float64)
    solver = KernelRidgeCV(served, groups, folds, clip=np.inf, seed=seed)
    mean = plain.mean(axis=0)
    targets = plain - mean
    lambdas = solver.lambdas(LAMBDAS)
    score = np.zeros(len(lambdas))
    for f, tr, te in solver.splits():
        for li, pred in solver.cv_scores(f, targets[tr], lambdas):
            score[li] += cosines(pred + mean, plain[te]).mean()
    lam = lambdas[int(score.argmax())]
    weights = solver.fit_weights(targets, np.full(targets.shape[1], lam))

    def apply(x: np.ndarray) -> np.ndarray:
        return (solver.std(x) @ weights + mean).astype(np.float32)
    return apply


def _unit(x: np.ndarray) -> bool:
    norms = np.linalg.norm(np.asarray(x, np.float64), axis=1)
    return bool(norms.size and np.allclose(norms, 1.0, atol=1e-3))


def refine(transform: torch.nn.Module, served: np.ndarray, start: np.ndarray,
           iters: int = REFINE_ITERS, sphere: bool = True) -> np.ndarray:
    """argmin_f ||T(f) - served||^2 from `start` (per row; rows are independent, so one
    L-BFGS on the summed loss), over unit features when `sphere`."""
    target = torch.from_numpy(np.ascontiguousarray(served, np.float32))
    u = torch.from_numpy(np.ascontiguousarray(start, np.float32)).clone().requires_grad_(True)

    def feature(v: torch.Tensor) -> torch.Tensor:
        return F.normalize(v, dim=1) if sphere else v

    opt = torch.optim.LBFGS([u], lr=1.0, max_iter=iters, history_size=20,
                            line_search_fn="strong_wolfe", tolerance_grad=1e-9,
                            tolerance_change=1e-12)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = ((transform(feature(u)) - target) ** 2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return feature(u.detach()).numpy().astype(np.float32)


def whitebox_inverse(transform: torch.nn.Module, own_plain: np.ndarray, own_ids: np.ndarray,
                     served: np.ndarray, iters: int = REFINE_ITERS,
                     seed: int = 0) -> np.ndarray:
    """The insider's inverse of `served` rows: a ridge start from pairs it makes itself with
    T's file (zero queries), refined through T."""
    own_plain = np.asarray(own_plain, np.float32)
    with torch.inference_mode():
        own_served = transform(torch.from_numpy(own_plain)).numpy()
    start = ridge_inverse(own_served, own_plain, own_ids, seed=seed)(served)
    return refine(transform, served, start, iters, sphere=_unit(own_plain))


def blackbox_inverse(own_served: np.ndarray, own_plain: np.ndarray, own_ids: np.ndarray,
                     served: np.ndarray, seed: int = 0) -> np.ndarray:
    """The outsider's inverse: a ridge map learned on its own queries' (answer, plain) pairs."""
    return ridge_inverse(own_served, own_plain, own_ids, seed=seed)(served)


def inverted_reading(view: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(aux, victims) of an inverted reading: the attacker's plain features of its own images,
    and the victims' leaked outputs inverted."""
    from .representations import represent

    if name not in offered(view):
        raise ValueError(f"reading {name!r} is not offered for target {view.name!r} "
                         f"(scheme {view.scheme})")
    served_aux = represent(view.responses, "float")
    served_vic = represent(view.leaked, "float")
    plain = np.asarray(view.aux_plain, np.float32)
    seed = view.config.seed
    if name == WHITEBOX:
        vic = whitebox_inverse(view.transform, plain, view.data.aux_ids, served_vic,
                               seed=seed)
    else:
        vic = blackbox_inverse(served_aux, plain, view.data.aux_ids, served_vic, seed=seed)
    return plain, vic
