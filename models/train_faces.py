"""Training of face-compact on synthetic faces with an additive angular margin (ArcFace).

Recipe (Deng et al. 2019, scaled down to minutes on a CPU): a cosine classifier over the
training identities, logits s * cos(theta + m) for the true identity and s * cos(theta) for the
others (s 30, m 0.3 here: fewer classes and steps than the paper's s 64, m 0.5, which does not
converge in a few hundred steps), AdamW with warm-up and cosine decay, flip and shift
augmentation (the generator already varies pose, light, expression and occlusion).

Evaluated on held-out identities the way the face field reports a model: verification TAR at
FMR 1e-3 and EER over every pair of test images, and rank-1 identification (query vs gallery
from other capture sessions).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .evaluation import reid_metrics
from .face_compact import FaceCompact
from .imaging import preprocess
from .profiles import FACE_COMPACT_112
from .synthetic_faces import FaceSet, make_face_splits

__all__ = ["FaceTrainConfig", "FaceTrainResult", "train_faces", "face_metrics", "ArcMarginHead"]


@dataclass(frozen=True)
class FaceTrainConfig:
    seed: int = 0
    n_train_ids: int = 300
    n_test_ids: int = 100
    images_per_id: int = 12
    steps: int = 400
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 5e-4
    scale: float = 30.0  # ArcFace s
    margin: float = 0.3  # ArcFace m (radians)
    time_limit_s: float | None = None  # stop early (cosine schedule is cut, not rescaled)


@dataclass(frozen=True)
class FaceTrainResult:
    model: FaceCompact
    metrics: dict[str, float]  # trained network on the held-out identities
    baseline: dict[str, float]  # the same network at its random initialisation
    steps_done: int
    seconds: float
    config: FaceTrainConfig


class ArcMarginHead(nn.Module):
    """Cosine classifier with ArcFace's additive angular margin on the true class."""

    def __init__(self, embed_dim: int, n_classes: int, scale: float, margin: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_classes, embed_dim) * 0.01)
        self.scale, self.margin = scale, margin

    def forward(self, feats: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cos = F.linear(F.normalize(feats), F.normalize(self.weight)).clamp(-1 + 1e-7, 1 - 1e-7)
        theta = torch.acos(cos)
        # Past pi - m, cos(theta + m) would increase again: use the linear fallback there.
        target = torch.where(theta + self.margin < math.pi, torch.cos(theta + self.margin),
                             cos - self.margin * math.sin(self.margin))
        onehot = F.one_hot(labels, cos.shape[1]).bool()
        return self.scale * torch.where(onehot, target, cos)


def face_metrics(embed: Callable[[np.ndarray], np.ndarray], query: FaceSet,
                 gallery: FaceSet) -> dict[str, Any]:
    """Verification (TAR at FMR 1e-3, EER over all pairs of the test images) and rank-1."""
    from featurelock.attack_harness.metrics import (FMR_1E3, equal_error_rate, tar_at_fmr,
                                                    verification_scores)

    q, g = embed(query.images), embed(gallery.images)
    both, ids = np.concatenate([q, g]), np.concatenate([query.ids, gallery.ids])
    genuine, impostor = verification_scores(both @ both.T, ids)
    tar, threshold = tar_at_fmr(genuine, impostor, FMR_1E3)
    rank = reid_metrics(q, query.ids, query.cams, g, gallery.ids, gallery.cams)
    return {"tar_at_fmr_1e-3": tar, "threshold_at_fmr_1e-3": threshold,
            "eer": equal_error_rate(genuine, impostor), "rank1": rank["rank1"],
            "mAP": rank["mAP"], "genuine_pairs": int(genuine.size),
            "impostor_pairs": int(impostor.size)}


def train_faces(config: FaceTrainConfig = FaceTrainConfig(),
                log: Callable[[str], None] = print) -> FaceTrainResult:
    from .zoo import as_embedding_model

    start = time.monotonic()
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    splits = make_face_splits(config.seed, config.n_train_ids, config.n_test_ids,
                              config.images_per_id)
    log(f"data: {len(splits.train)} train, {len(splits.query)} query, "
        f"{len(splits.gallery)} gallery faces ({time.monotonic() - start:.1f}s)")
    model = FaceCompact()
    served = as_embedding_model("face-compact", model)  # shares the parameters being trained
    baseline = face_metrics(served.embed, splits.query, splits.gallery)
    log(f"untrained: TAR@FMR1e-3 {baseline['tar_at_fmr_1e-3']:.3f}  rank-1 {baseline['rank1']:.3f}")

    head = ArcMarginHead(model.embed_dim, config.n_train_ids, config.scale, config.margin)
    opt = torch.optim.AdamW(list(model.parameters()) + list(head.parameters()), lr=config.lr,
                            weight_decay=config.weight_decay)
    warmup = max(1, config.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / warmup, 0.5 * (
        1 + math.cos(math.pi * min(s / config.steps, 1.0)))))
    model.train()
    step = 0
    for step in range(1, config.steps + 1):
        index = rng.choice(len(splits.train), min(config.batch_size, len(splits.train)),
                           replace=False)
        x = _augment(rng, preprocess(splits.train.images[index], FACE_COMPACT_112))
        y = torch.as_tensor(splits.train.ids[index])
        loss = F.cross_entropy(head(model(x), y), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % 50 == 0 or step == 1:
            log(f"step {step}/{config.steps}  arcface {loss.item():.3f}  "
                f"({time.monotonic() - start:.0f}s)")
        if config.time_limit_s is not None and time.monotonic() - start > config.time_limit_s:
            log(f"time limit reached after {step} steps")
            break
    model.eval()
    metrics = face_metrics(served.embed, splits.query, splits.gallery)
    log(f"trained:   TAR@FMR1e-3 {metrics['tar_at_fmr_1e-3']:.3f}  EER {metrics['eer']:.3f}  "
        f"rank-1 {metrics['rank1']:.3f}")
    return FaceTrainResult(model, metrics, baseline, step, time.monotonic() - start, config)


def _augment(rng: np.random.Generator, x: torch.Tensor) -> torch.Tensor:
    n, _, h, w = x.shape
    flip = torch.as_tensor(rng.random(n) < 0.5)
    x = torch.where(flip.view(n, 1, 1, 1), x.flip(3), x)
    pad = 4  # random shift: pad, then crop back at a random offset per image
    padded = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    dy, dx = rng.integers(0, 2 * pad + 1, n), rng.integers(0, 2 * pad + 1, n)
    return torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])
