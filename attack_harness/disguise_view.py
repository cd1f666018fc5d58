"""What an attacker on a Disguised-Nets deployment holds, and the scoring its attacks share.

The disguise protects INPUT images, so its attacks get a `DisguiseView`, not a `TargetView`:

    level 1  the server: the victims' disguised images (and the public spec: block size, variant)
    labels   the server's training set: labelled disguised images under the same key
             (`view.labelled_disguised()`: the public images disguised, with `public_ids` and
             `public_attributes`)
    level 2  k known (original, disguised) pairs: `view.known(k)`
    level 3  a chosen-plaintext oracle: `view.disguise(images)` on images it picks
    model    the plain re-ID model (any public one) and the model trained on disguised images

Its `Attack` subclasses set `target = "disguise"` and run in `disguise_scan.py`; the feature
scan never sees them. Victims' plain images and identities are for scoring only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from featurelock.middleware.disguise import RMT_SCALE, DisguiseSpec, to_blocks

from .metrics import Interval, batch_psnr, batch_ssim, mean_interval

_PSNR_CAP = 60.0  # dB

__all__ = ["DisguiseView", "ScoredImages", "score_images", "centred_blocks", "assemble"]


@dataclass
class DisguiseView:
    """One disguise target. `spec` is None for the plain control (no disguise at all)."""

    name: str
    spec: DisguiseSpec | None
    disguise: Callable[[np.ndarray], np.ndarray]  # the oracle: plain uint8 -> disguised uint8
    victims: np.ndarray  # (N, H, W, C) plain, for scoring only
    victim_ids: np.ndarray
    victim_cams: np.ndarray
    victims_disguised: np.ndarray  # what the server holds
    public: np.ndarray  # the attacker's own plain images (identities disjoint from victims')
    public_ids: np.ndarray
    config: Any  # DisguiseScanConfig
    plain_model: Any = None  # .embed(uint8 images) -> features: a model trained on plain images
    disguised_model: Any = None  # .embed(...) of the model the server trained on disguised images
    true_source: np.ndarray | None = None  # the secret: source of each disguised position (scoring only)
    public_attributes: np.ndarray | None = None  # (N, A) labels of the public images
    victim_attributes: np.ndarray | None = None  # (N, A), for scoring only
    attribute_names: tuple[str, ...] = ()
    _known: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    _labelled: np.ndarray | None = None
    _blind: tuple[float, float] | None = None  # chance SSIM / PSNR, computed once

    @property
    def block(self) -> int:
        return self.spec.block if self.spec else self.config.block

    def known(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """k (original, disguised) pairs: the attacker's first k public images, disguised."""
        if k not in self._known:
            plain = self.public[:k]
            self._known[k] = (plain, self.disguise(plain))
        return self._known[k]

    def labelled_disguised(self) -> np.ndarray:
        """The public images disguised under the target's key: with `public_ids` and
        `public_attributes`, the labelled training set of the server that trains on them."""
        if self._labelled is None:
            self._labelled = self.disguise(self.public)
        return self._labelled


@dataclass(frozen=True)
class ScoredImages:
    ssim: Interval
    psnr: Interval
    chance_ssim: float  # the attacker's blind guess (its mean public image) scored the same way
    chance_psnr: float
    n: int

    def to_dict(self) -> dict[str, Any]:
        return {"ssim": self.ssim.to_dict(), "psnr": self.psnr.to_dict(),
                "chance_ssim": round(self.chance_ssim, 4),
                "chance_psnr": round(self.chance_psnr, 3), "n": self.n}


def score_images(recon: np.ndarray, view: DisguiseView) -> ScoredImages:
    """SSIM/PSNR of reconstructions of the victims, with identity-resampled intervals, beside
    the chance level: the attacker's mean public image, which needs no access at all."""
    cfg = view.config
    truth = view.victims
    recon = np.clip(recon, 0, 255).astype(np.float64)
    if view._blind is None:  # SSIM dominates the attacks' cost: score the blind guess once
        blind = np.repeat(view.public.mean(axis=0, keepdims=True), len(truth), axis=0)
        view._blind = (float(batch_ssim(blind, truth).mean()),
                       float(np.minimum(batch_psnr(blind, truth), _PSNR_CAP).mean()))
    ssim = batch_ssim(recon, truth)
    psnr = np.minimum(batch_psnr(recon, truth), _PSNR_CAP)  # an exact recovery is finite
    return ScoredImages(
        mean_interval(ssim, view.victim_ids, cfg.confidence, cfg.n_boot, cfg.seed),
        mean_interval(psnr, view.victim_ids, cfg.confidence, cfg.n_boot, cfg.seed),
        *view._blind, len(truth))


def centred_blocks(images: np.ndarray, spec: DisguiseSpec | None, block: int) -> np.ndarray:
    """(N, n_blocks, d) float blocks in the plain domain's units (x/255 - 0.5); disguised RMT
    bytes are mapped back by the public affine scale (the spec is not secret)."""
    b = to_blocks(np.asarray(images), block).astype(np.float64)
    if spec is not None and spec.variant == "rmt":
        return (b - 127.5) / RMT_SCALE
    return b / 255.0 - 0.5


def assemble(blocks: np.ndarray, shape: tuple[int, int, int], block: int) -> np.ndarray:
    """Inverse of `centred_blocks` in the plain domain -> float images 0..255."""
    h, w, c = shape
    n = len(blocks)
    x = (blocks + 0.5) * 255.0
    x = x.reshape(n, h // block, w // block, block, block, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(n, h, w, c)
