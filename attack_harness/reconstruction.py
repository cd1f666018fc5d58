"""Attack 2, image reconstruction (Ni et al. decoder; He et al. inverse network), and attack 3,
white-box rMLE (He et al.).

Black box: a decoder is trained on the attacker's (image, representation) pairs with pixel MSE
and applied to the victims' leaked outputs. Scored by SSIM and PSNR against the victims,
always beside the trivial baseline (the mean image of the attacker's data), and by identity
leakage: each reconstruction is re-embedded by the plaintext model and must retrieve its
victim's identity from a gallery (rank-1) more often than chance.

The decoder is Ni et al.'s shape scaled down for a CPU: Dense(256) -> Dense(4x2x128) -> four
x2 upsampling conv blocks (128, 64, 32, 16 filters) -> conv to 3 channels -> sigmoid, at half
the input resolution (64x32 for 128x64 crops); outputs are upsampled bilinearly to full size
before scoring, and the baseline is scored at full size too.

White box (`rmle`): the insider holds the model file but not the keys; it optimises an image
to match a leaked feature with a total-variation penalty. Ciphertext gives it nothing to match.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .linear import KernelRidgeCV, Standardizer
from .metrics import batch_psnr, batch_ssim, cluster_bootstrap, rank1_hits

__all__ = ["DecoderConfig", "Decoder", "train_decoder", "reconstruction_attack",
           "identity_leakage", "total_variation", "rmle"]


@dataclass(frozen=True)
class DecoderConfig:
    """kind "ridge": a linear decoder in closed form (kernel ridge onto the half-resolution
    pixels, ridge strength by identity-grouped 3-fold CV): seconds per fit, the default.
    kind "conv": the Ni et al.-style deconvolution network trained with Adam (minutes)."""

    kind: str = "ridge"
    lambdas: tuple[float, ...] = (1e-2, 1e-1, 1.0, 10.0, 100.0)
    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    hidden: int = 256
    base: int = 128


def _up(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                         nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout),
                         nn.LeakyReLU(0.2, inplace=True))


class Decoder(nn.Module):
    """(N, d) -> (N, 3, h, w) in [0, 1]; (h, w) = 16 * start (start = (4, 2) for 64x32)."""

    def __init__(self, dim: int, start: tuple[int, int] = (4, 2), hidden: int = 256,
                 base: int = 128, n_up: int = 4) -> None:
        super().__init__()
        self.start = start
        self.base = base
        self.fc = nn.Sequential(nn.Linear(dim, hidden), nn.LeakyReLU(0.2, inplace=True),
                                nn.Linear(hidden, base * start[0] * start[1]),
                                nn.LeakyReLU(0.2, inplace=True))
        widths = [base] + [max(base >> (i + 1), 16) for i in range(n_up)]
        self.ups = nn.Sequential(*[_up(widths[i], widths[i + 1]) for i in range(n_up)])
        self.out = nn.Conv2d(widths[-1], 3, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.fc(z).view(-1, self.base, *self.start)
        return torch.sigmoid(self.out(self.ups(x)))


def _to_tensor_images(images: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0
    if tuple(x.shape[2:]) != size:
        x = F.interpolate(x, size=size, mode="area")
    return x


def _to_uint8(x: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    if tuple(x.shape[2:]) != size:
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    return (x.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()


def train_ridge_decoder(solver: KernelRidgeCV, images: np.ndarray,
                        config: DecoderConfig = DecoderConfig()) -> Callable[[np.ndarray], np.ndarray]:
    """Linear decoder: kernel ridge from the standardised representation to the pixels at
    half resolution, ridge strength by identity-grouped CV on pixel MSE."""
    full = images.shape[1:3]
    half = (full[0] // 2, full[1] // 2)
    lambdas = solver.lambdas(config.lambdas)
    pixels = _to_tensor_images(images, half).flatten(1).double().numpy()
    err = np.zeros(len(lambdas))
    for f, tr, te in solver.splits():
        mean = pixels[tr].mean(axis=0)
        for li, pred in solver.cv_scores(f, pixels[tr] - mean, lambdas):
            err[li] += float(((np.clip(pred + mean, 0, 1) - pixels[te]) ** 2).sum())
    lam = lambdas[int(err.argmin())]
    mean = pixels.mean(axis=0)
    weights = solver.fit_weights(pixels - mean, np.full(pixels.shape[1], lam))
    std = solver.std

    def reconstruct(x_new: np.ndarray) -> np.ndarray:
        pred = std(x_new) @ weights + mean
        t = torch.from_numpy(pred.astype(np.float32)).view(-1, 3, *half)
        return _to_uint8(t, full)

    return reconstruct


def train_decoder(x: np.ndarray, images: np.ndarray, config: DecoderConfig = DecoderConfig(),
                  seed: int = 0, progress: Callable[[int], None] | None = None,
                  groups: np.ndarray | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """Fit a decoder; returns reconstruct(x_new) -> (N, H, W, 3) uint8 at the images' size."""
    if config.kind == "ridge":
        solver = x if isinstance(x, KernelRidgeCV) else KernelRidgeCV(
            x, np.arange(len(x)) if groups is None else groups, seed=seed)
        return train_ridge_decoder(solver, images, config)
    if isinstance(x, KernelRidgeCV):
        raise TypeError("the conv decoder trains on the representation matrix, not a solver")
    if config.kind != "conv":
        raise ValueError(f"decoder kind must be 'ridge' or 'conv', got {config.kind!r}")
    torch.manual_seed(seed)
    full = images.shape[1:3]
    half = (full[0] // 2, full[1] // 2)
    start = (max(half[0] // 16, 1), max(half[1] // 16, 1))
    out_size = (start[0] * 16, start[1] * 16)
    std = Standardizer(x)
    z = torch.from_numpy(std(x).astype(np.float32))
    target = _to_tensor_images(images, out_size)
    model = Decoder(z.shape[1], start, config.hidden, config.base)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    gen = torch.Generator().manual_seed(seed)
    n = z.shape[0]
    model.train()
    for epoch in range(config.epochs):
        order = torch.randperm(n, generator=gen)
        for s in range(0, n, config.batch_size):
            idx = order[s:s + config.batch_size]
            if idx.numel() < 2:
                continue
            loss = F.mse_loss(model(z[idx]), target[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        if progress is not None:
            progress(epoch + 1)
    model.eval()

    def reconstruct(x_new: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            zn = torch.from_numpy(std(x_new).astype(np.float32))
            return np.concatenate([_to_uint8(model(zn[i:i + 256]), full)
                                   for i in range(0, len(zn), 256)])

    return reconstruct


def baseline_image(images: np.ndarray, full_resolution: bool = False) -> np.ndarray:
    """The trivial reconstruction: the attacker's mean image (uint8), passed through the same
    half-resolution pipeline as the decoders' outputs unless full_resolution, so a decoder that
    outputs a constant scores exactly the baseline."""
    mean = torch.from_numpy(np.asarray(images, np.float32).mean(axis=0) / 255.0)
    if full_resolution:
        return (mean.numpy() * 255).round().astype(np.uint8)
    full = images.shape[1:3]
    x = _to_tensor_images(images, (full[0] // 2, full[1] // 2)).mean(dim=0, keepdim=True)
    return _to_uint8(x, full)[0]


def identity_leakage(recon_embeddings: np.ndarray, query_ids: np.ndarray,
                     query_cams: np.ndarray, gallery: np.ndarray, gallery_ids: np.ndarray,
                     gallery_cams: np.ndarray, level: float = 0.95, n_boot: int = 1000,
                     seed: int = 0) -> dict:
    """Rank-1 retrieval of each victim's identity from its reconstruction's embedding."""
    hits, chance, valid = rank1_hits(recon_embeddings, query_ids, query_cams, gallery,
                                     gallery_ids, gallery_cams)
    hits, chance, ids = hits[valid], chance[valid], query_ids[valid]
    if hits.size == 0:
        return {"skipped": "no victim query has a true match in the gallery"}
    interval = cluster_bootstrap(lambda w: (w @ hits) / w.sum(axis=1), hits.size, ids, level,
                                 n_boot, seed)
    return {"score": interval, "chance": float(chance.mean()), "n": int(hits.size)}


def reconstruction_attack(x_train: np.ndarray | KernelRidgeCV, train_images: np.ndarray, train_ids: np.ndarray,
                          x_victim: np.ndarray, victim_images: np.ndarray, victim_ids: np.ndarray,
                          config: DecoderConfig = DecoderConfig(), seed: int = 0,
                          level: float = 0.95, n_boot: int = 1000,
                          progress: Callable[[int], None] | None = None) -> dict:
    """Decoder attack: SSIM and PSNR of reconstructions vs the mean-image baseline.

    `ssim_gain` / `psnr_gain` are the paired per-victim differences reconstruction - baseline
    with identity-clustered intervals; chance for them is 0 (an attacker that learned nothing
    outputs the mean image). Returns the reconstructions too.
    """
    reconstruct = train_decoder(x_train, train_images, config, seed, progress, train_ids)
    recon = reconstruct(x_victim)
    base = baseline_image(train_images)
    s_rec, s_base = batch_ssim(recon, victim_images), batch_ssim(victim_images, base)
    p_rec, p_base = batch_psnr(recon, victim_images), batch_psnr(victim_images, base)
    out = {"ssim": float(s_rec.mean()), "ssim_baseline": float(s_base.mean()),
           "psnr": float(p_rec.mean()), "psnr_baseline": float(p_base.mean()),
           "reconstructions": recon, "baseline_image": base}
    for key, gain in (("ssim_gain", s_rec - s_base), ("psnr_gain", p_rec - p_base)):
        interval = cluster_bootstrap((lambda g: lambda w: (w @ g) / w.sum(axis=1))(gain),
                                     gain.size, victim_ids, level, n_boot, seed)
        out[key] = {"score": interval, "chance": 0.0, "n": int(gain.size)}
    return out


# ----------------------------------------------------------------------------- white box

def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Anisotropic TV: mean absolute difference of neighbouring pixels, per image summed."""
    return ((x[:, :, 1:, :] - x[:, :, :-1, :]).abs().mean(dim=(1, 2, 3))
            + (x[:, :, :, 1:] - x[:, :, :, :-1]).abs().mean(dim=(1, 2, 3))).sum()


def rmle(forward: Callable[[torch.Tensor], torch.Tensor], targets: torch.Tensor,
         shape: tuple[int, int, int], steps: int = 300, lr: float = 0.05, tv: float = 0.05,
         init: float = 0.5, seed: int = 0) -> torch.Tensor:
    """He et al.'s regularised maximum-likelihood inversion.

    x* = argmin_x ||forward(x) - target||^2 / ||target||^2 + tv * TV(x), x in [0, 1]^shape
    (parametrised through a sigmoid), started from a constant grey image. `forward` takes
    (N, C, H, W) images in [0, 1]. Returns (N, C, H, W) in [0, 1].
    """
    torch.manual_seed(seed)
    targets = targets.detach()
    p = torch.full((targets.shape[0], *shape), float(np.log(init / (1 - init))),
                   requires_grad=True)
    opt = torch.optim.Adam([p], lr=lr)
    norm = targets.flatten(1).pow(2).sum(1).clamp_min(1e-12)
    for _ in range(steps):
        x = torch.sigmoid(p)
        out = forward(x)
        loss = ((out - targets).flatten(1).pow(2).sum(1) / norm).sum() + tv * total_variation(x)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return torch.sigmoid(p).detach()
