"""Training of the default re-ID model (ReidCompact) on synthetic pedestrians.

Recipe: the "bag of tricks" baseline (Luo et al. 2019) scaled down to minutes on a CPU —
P x K identity-balanced batches, identity cross-entropy with label smoothing on the BNNeck
output plus batch-hard triplet loss on the pre-neck features, AdamW with warm-up and cosine
decay, flip / shift / brightness / random-erasing augmentation.

Disguised-Nets: `disguise` (the data owner's `Disguiser.disguise`) is applied to every image,
train, query and gallery alike, so the network only ever sees disguised images. The
augmentation is then off: flips, shifts and erasing act on a spatial layout the block
permutation has scrambled, and would teach the network images no client ever sends.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .evaluation import evaluate
from .imaging import preprocess
from .profiles import REID_128x64
from .reid_compact import ReidCompact
from .synthetic import make_splits
from .zoo import as_embedding_model

__all__ = ["TrainConfig", "TrainResult", "train_reid", "save_weights"]


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 0
    n_train_ids: int = 300
    n_test_ids: int = 100
    images_per_id: int = 12
    steps: int = 600
    p_ids: int = 16  # identities per batch
    k_per_id: int = 4  # images per identity per batch
    lr: float = 2e-3
    weight_decay: float = 5e-4
    margin: float = 0.3
    label_smoothing: float = 0.1
    time_limit_s: float | None = None  # stop early (cosine schedule is cut, not rescaled)


@dataclass(frozen=True)
class TrainResult:
    model: ReidCompact
    metrics: dict[str, float]  # trained network on the synthetic query/gallery split
    baseline: dict[str, float]  # the same network at its random initialisation
    steps_done: int
    seconds: float
    config: TrainConfig


def train_reid(config: TrainConfig = TrainConfig(),
               log: Callable[[str], None] = print,
               disguise: Callable[[np.ndarray], np.ndarray] | None = None) -> TrainResult:
    start = time.monotonic()
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    splits = make_splits(config.seed, config.n_train_ids, config.n_test_ids, config.images_per_id)
    if disguise is not None:
        splits = type(splits)(*(replace(s, images=disguise(s.images))
                                for s in (splits.train, splits.query, splits.gallery)))
    augment = _augment if disguise is None else (lambda _rng, x: x)
    log(f"data: {len(splits.train)} train, {len(splits.query)} query, "
        f"{len(splits.gallery)} gallery images ({time.monotonic() - start:.1f}s)")

    model = ReidCompact()
    served = as_embedding_model("reid-compact", model)  # shares the parameters being trained
    baseline = evaluate(served, splits.query, splits.gallery)
    log(f"untrained: rank-1 {baseline['rank1']:.3f}  mAP {baseline['mAP']:.3f}")

    classifier = nn.Linear(model.embed_dim, config.n_train_ids, bias=False)
    nn.init.normal_(classifier.weight, std=0.001)
    params = list(model.parameters()) + list(classifier.parameters())
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    warmup = max(1, config.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / warmup, 0.5 * (
        1 + math.cos(math.pi * min(s / config.steps, 1.0)))))
    by_id = [np.flatnonzero(splits.train.ids == i) for i in range(config.n_train_ids)]

    model.train()
    step = 0
    for step in range(1, config.steps + 1):
        index = _pk_batch(rng, by_id, min(config.p_ids, len(by_id)), config.k_per_id)
        x = augment(rng, preprocess(splits.train.images[index], REID_128x64))
        y = torch.as_tensor(splits.train.ids[index])
        feats = model.forward_features(x)
        logits = classifier(model.neck(feats))
        loss_id = F.cross_entropy(logits, y, label_smoothing=config.label_smoothing)
        loss_tri = _batch_hard_triplet(feats, y, config.margin)
        opt.zero_grad(set_to_none=True)
        (loss_id + loss_tri).backward()
        opt.step()
        sched.step()
        if step % 50 == 0 or step == 1:
            log(f"step {step}/{config.steps}  id {loss_id.item():.3f}  "
                f"triplet {loss_tri.item():.3f}  ({time.monotonic() - start:.0f}s)")
        if config.time_limit_s is not None and time.monotonic() - start > config.time_limit_s:
            log(f"time limit reached after {step} steps")
            break
    model.eval()
    metrics = evaluate(served, splits.query, splits.gallery)
    log(f"trained:   rank-1 {metrics['rank1']:.3f}  mAP {metrics['mAP']:.3f}")
    return TrainResult(model, metrics, baseline, step, time.monotonic() - start, config)


def save_weights(model: nn.Module, path: str | Path, half: bool = False) -> Path:
    """torch.save of the plain state dict: loadable with torch.load(weights_only=True).

    half=True stores floating-point tensors as float16 (half the size; the loader computes in
    float32)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: (v.detach().half() if half and v.is_floating_point() else v.detach()).clone()
                for k, v in model.state_dict().items()}, p)
    return p


def _pk_batch(rng: np.random.Generator, by_id: list[np.ndarray], p: int, k: int) -> np.ndarray:
    ids = rng.choice(len(by_id), size=p, replace=False)
    return np.concatenate([rng.choice(by_id[i], size=k, replace=len(by_id[i]) < k) for i in ids])


def _augment(rng: np.random.Generator, x: torch.Tensor) -> torch.Tensor:
    n, _, h, w = x.shape
    flip = torch.as_tensor(rng.random(n) < 0.5)
    x = torch.where(flip.view(n, 1, 1, 1), x.flip(3), x)
    pad = 6  # random shift: pad, then crop back at a random offset per image
    padded = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    dy, dx = rng.integers(0, 2 * pad + 1, n), rng.integers(0, 2 * pad + 1, n)
    x = torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])
    x = x * torch.as_tensor(rng.uniform(0.8, 1.2, (n, 1, 1, 1)), dtype=torch.float32)
    for i in np.flatnonzero(rng.random(n) < 0.5):  # random erasing (occlusion robustness)
        eh, ew = int(rng.integers(h // 8, h // 2)), int(rng.integers(w // 8, w // 2))
        y0, x0 = int(rng.integers(0, h - eh)), int(rng.integers(0, w - ew))
        x[i, :, y0:y0 + eh, x0:x0 + ew] = torch.randn(3, 1, 1)
    return x


def _batch_hard_triplet(feats: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
    dist = torch.cdist(feats, feats).clamp_min(1e-12)
    same = labels[:, None] == labels[None, :]
    hardest_pos = (dist * same).max(dim=1).values
    hardest_neg = dist.masked_fill(same, float("inf")).min(dim=1).values
    return F.relu(hardest_pos - hardest_neg + margin).mean()


