"""Attack 2, image reconstruction (Ni et al. decoder; He et al. inverse network), and attack 3,
white-box rMLE (He et al.).

Black box: a decoder is trained on the attacker's (image, representation) pairs and applied to
the victims' leaked outputs. Scored by SSIM and PSNR against the victims, always beside the
trivial baseline: the attacker's mean image, rendered through the decoder's own output
pipeline, so a decoder that learned nothing scores exactly the baseline. Also scored by
identity leakage: each reconstruction is re-embedded by the plaintext model and must retrieve
its victim's identity from a gallery (rank-1) more often than chance.

The default decoder ("ridge") is a closed-form kernel ridge from the standardised reading to
the half-resolution pixels (64x32 for 128x64 crops), output as mean + shrink x prediction,
upsampled bilinearly and blurred with a Gaussian. Ridge strength, blur and shrink are chosen
by identity-grouped CV on the attacker's own data, maximising the SSIM gain over the equally
rendered mean image. Why: SSIM punishes structure that is not in the truth, and a re-ID
feature carries colours and layout, not a crop's background clutter. The unsmoothed ridge
prediction (the earlier default) shows the victims' clothing colours yet scored BELOW the mean
image: SSIM gain -0.049 at budget 300 and +0.001 at 1000 (PSNR +1.6 / +2.5 dB). A smooth image
is no evidence by itself (the mean image blurred with sigma 8 beats the raw mean by +0.013
SSIM while knowing nothing), hence the baseline through the same blur. Measured on
reid-compact plaintext features (committed weights), synthetic data seed 0, 60 victim
identities / 240 images, identity-clustered 95% intervals; "noise" = Gaussian readings, or the
attacker's rows shuffled against its images:

    budget  SSIM gain               PSNR gain (dB)        noise: SSIM / PSNR gain
    300     +0.016 [+0.014, +0.018]  +1.27 [+1.17, +1.36]  -0.0001 / -0.00 (both controls)
    1000    +0.029 [+0.026, +0.032]  +2.40 [+2.22, +2.58]  -0.0000 / +0.00 (both controls)

(seed 1: +0.018 and +0.030 SSIM.) Small in absolute terms because SSIM mostly scores fine
structure: even the victim's own image reduced to 8x4 pixels gains only +0.044 over the mean
image, 16x8 pixels +0.13; a gate margin of 0.05 SSIM is out of reach of any colour-level
reconstruction. The blur and shrink that help SSIM cost the re-ID model (rank-1 0.03 for the
scored images vs 0.13 unsmoothed at budget 300; 0.10 vs 0.27 at 1000; chance 0.01), so
`Reconstructor.unsmoothed` and the "identity_reconstructions" of `reconstruction_attack` keep
the plain ridge prediction (MSE-chosen strength) for the identity test. Kernel ridge with an
RBF kernel on the normalised readings, similarity-weighted nearest-neighbour averaging,
per-pixel shrinkage, PCA-truncated outputs and lower output resolutions (32x16 .. 8x4) were
measured too and did no better than the linear kernel with a blur.

kind "conv" is Ni et al.'s shape scaled down for a CPU: Dense(256) -> Dense(4x2x128) -> four
x2 upsampling conv blocks (128, 64, 32, 16 filters) -> conv to 3 channels -> sigmoid, at half
resolution, upsampled bilinearly: 20-30 s per fit, SSIM -0.033 / PSNR +1.21 dB at budget 300
(on noise -0.10 / -1.6: it memorises), scored against the plain half-resolution mean image.

White box (`rmle`): the insider holds the model file but not the keys; it optimises an image
to match a leaked feature with a total-variation penalty. Ciphertext gives it nothing to match.
On reid-compact it does not beat the mean image, as He et al. predict for a split at or after a
fully-connected layer (reid-compact ends conv stages -> global average pool -> Linear(192,
256) -> BatchNorm -> L2 norm). Grey start, Adam, victims 0-3 of seed-0 synthetic data (mean
image: SSIM 0.365, PSNR 13.83 dB; a constant grey image: 0.374, 12.58 dB):

    tv    lr    SSIM @200/500/1000 steps    PSNR (dB) @200/500/1000
    0     0.05  0.045 / 0.044 / 0.044      11.41 / 11.38 / 11.37
    0.05  0.05  0.061 / 0.108 / 0.167      11.72 / 12.09 / 12.28   (the earlier default)
    1     0.05  0.237 / 0.268 / 0.281      12.38 / 12.39 / 12.47
    10    0.05  0.315 / 0.324 / 0.332      12.51 / 12.74 / 13.12
    10    0.1   0.308 / 0.321 / 0.328      12.59 / 12.99 / 13.50   (default; 1500: 0.335, 13.87)
    30    0.05  0.334 / 0.339 / 0.342      12.60 / 12.81 / 13.09   (feature fit loosens)

Victims 4-7 with the defaults: SSIM 0.354 vs 0.384, PSNR 13.50 vs 14.37 dB. Up to tv 10 every
setting matches the feature (cosine of the re-embedded image >= 0.985, rank-1 1.0 by the very
model inverted) with an image no closer to the victim than the mean: the TV prior only pulls
the image toward a flat one (tv 30: cosine 0.97). About 16 s per 4 victims for 1000 steps on
one thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .linear import KernelRidgeCV, Standardizer
from .metrics import (FMR_1E3, SsimTruth, batch_psnr, gaussian_kernel, mean_interval,
                      rank1_hits, threshold_at_fmr, verification_scores)

__all__ = ["DecoderConfig", "Decoder", "Reconstructor", "train_decoder", "train_ridge_decoder",
           "baseline_image", "reconstruction_attack", "identity_leakage", "template_inversion",
           "total_variation", "rmle"]

KINDS = ("ridge", "conv")


@dataclass(frozen=True)
class DecoderConfig:
    """kind "ridge" (the default): kernel ridge onto the half-resolution pixels, rendered as
    mean + shrink x prediction through a Gaussian blur; the ridge strength (`lambdas`, times
    the mean Gram diagonal), the blur (`blurs`, sigma in output pixels, 0 = none) and the
    shrink toward the mean image (`shrinks`, 0 = output the mean image) are chosen jointly by
    identity-grouped CV on SSIM gain, scored on at most `cv_images` held-out images. About
    2.5 s per fit at budget 300 and 6 s at 1000 on one thread, 256 or 8192 input dimensions.
    kind "conv": the Ni et al.-style deconvolution network trained with Adam for `epochs`
    (`batch_size`, `lr`, `hidden`, `base`); minutes per fit, no CV."""

    kind: str = "ridge"
    lambdas: tuple[float, ...] = (0.1, 0.3, 1.0, 3.0, 10.0, 100.0)
    blurs: tuple[float, ...] = (0.0, 1.5, 3.0, 4.5, 6.0)
    shrinks: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
    cv_images: int = 240
    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    hidden: int = 256
    base: int = 128

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        for name in ("lambdas", "blurs", "shrinks"):
            values = getattr(self, name)
            if not isinstance(values, tuple) or not values:
                raise TypeError(f"{name} must be a non-empty tuple of numbers, got {values!r}")
        if min(self.lambdas) <= 0:
            raise ValueError(f"lambdas must be > 0, got {self.lambdas}")
        if min(self.blurs) < 0:
            raise ValueError(f"blurs must be >= 0, got {self.blurs}")
        if min(self.shrinks) < 0 or max(self.shrinks) > 1:
            raise ValueError(f"shrinks must be in [0, 1], got {self.shrinks}")
        for name in ("cv_images", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


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


class Reconstructor:
    """A fitted decoder: reconstruct(x_new) -> (N, H, W, 3) uint8 at the training images' size.

    `baseline` is the attacker's mean image through the same output pipeline (a decoder that
    learned nothing outputs exactly it); `unsmoothed(x_new)` is the prediction before the
    CV-chosen blur (the image to re-identify: blur costs the re-ID model more than it helps
    SSIM); `chosen` records the CV-chosen settings."""

    def __init__(self, predict: Callable[[np.ndarray, bool], np.ndarray], baseline: np.ndarray,
                 chosen: dict | None = None) -> None:
        self._predict = predict
        self.baseline = baseline
        self.chosen = dict(chosen or {})

    def __call__(self, x_new: np.ndarray) -> np.ndarray:
        return self._predict(x_new, False)

    def unsmoothed(self, x_new: np.ndarray) -> np.ndarray:
        return self._predict(x_new, True)


def _interp_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """(n_out, n_in): 1-D bilinear resampling exactly as F.interpolate(align_corners=False)."""
    eye = torch.eye(n_in).view(n_in, 1, n_in, 1)
    return F.interpolate(eye, size=(n_out, 1), mode="bilinear", align_corners=False)[:, 0, :, 0].T


def _blur_matrix(n: int, sigma: float) -> torch.Tensor:
    """(n, n): 1-D Gaussian blur (radius 3 sigma), edges replicated; identity for sigma 0."""
    if sigma <= 0:
        return torch.eye(n)
    r = max(int(3 * sigma + 0.5), 1)
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    m = np.zeros((n, n))
    for i in range(n):
        np.add.at(m[i], np.clip(np.arange(i - r, i + r + 1), 0, n - 1), k)
    return torch.from_numpy(m).float()


class _Renderer:
    """Half-resolution pixel vectors -> full-size float images in [0, 1]: bilinear upsampling
    then a Gaussian blur, both separable, so one matrix per axis."""

    def __init__(self, half: tuple[int, int], full: tuple[int, int], sigma: float) -> None:
        self.half = half
        self.rows = _blur_matrix(full[0], sigma) @ _interp_matrix(half[0], full[0])
        self.cols = (_blur_matrix(full[1], sigma) @ _interp_matrix(half[1], full[1])).T

    def __call__(self, flat: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.asarray(flat, np.float32)).view(-1, 3, *self.half)
        return (self.rows @ x @ self.cols).clamp_(0, 1)


class _ShrinkSSIM:
    """Per-image SSIM (metrics.batch_ssim's definition: Gaussian window sigma 1.5, valid
    positions) of the images a0 + s * P against the truth, for every shrink s at once, for CV.

    The window filter is linear, so the local moments of a0 + s * P are polynomials in s of the
    filtered a0, P, a0 * P, P * P, P * truth: four filterings of P serve every s. Filters are
    banded matrices in float32 torch, evaluated at every `stride`-th window position in each
    direction (stride 3 estimates the same mean from a ninth of the positions; on the data
    measured it picked the same settings as stride 2); no clipping to [0, 255] (it seldom
    binds). With stride 1 this agrees with batch_ssim to ~1e-5."""

    def __init__(self, size: tuple[int, int], stride: int = 3) -> None:
        k = torch.from_numpy(gaussian_kernel(1.5)).float()

        def band(n: int) -> torch.Tensor:
            m = torch.zeros(n - k.numel() + 1, n)
            for i in range(m.shape[0]):
                m[i, i:i + k.numel()] = k
            return m[::stride].contiguous()

        self.rows, self.cols = band(size[0]), band(size[1]).T.contiguous()
        self.c1, self.c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def _f(self, x: torch.Tensor) -> torch.Tensor:
        return self.rows @ (x @ self.cols)

    def truth(self, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu = self._f(b)
        return b, mu, self._f(b * b) - mu * mu

    def mean_image(self, a0: torch.Tensor, truth: tuple) -> tuple:
        b = truth[0]
        return a0, self._f(a0), self._f(a0 * a0), self._f(a0 * b)

    def __call__(self, p: torch.Tensor | None, shrinks: tuple[float, ...], base: tuple,
                 truth: tuple) -> np.ndarray:
        """(len(shrinks), N) SSIM of base + s * p (p None: of the base alone)."""
        b, mu_b, var_b = truth
        a0, m0, e00, e0b = base
        if p is None:
            mp = e0p = epp = epb = 0.0
            shrinks = (0.0,)
        else:
            mp, e0p, epp, epb = self._f(p), self._f(a0 * p), self._f(p * p), self._f(p * b)
        out = []
        for s in shrinks:
            mu = m0 + s * mp
            var = e00 + 2 * s * e0p + s * s * epp - mu * mu
            cov = e0b + s * epb - mu * mu_b
            v = ((2 * mu * mu_b + self.c1) * (2 * cov + self.c2)
                 / ((mu * mu + mu_b * mu_b + self.c1) * (var + var_b + self.c2)))
            out.append(v.flatten(1).mean(dim=1).numpy())
        return np.stack(out)


def _to_uint8_images(x: torch.Tensor) -> np.ndarray:
    return (x * 255).round().byte().permute(0, 2, 3, 1).numpy()


def train_ridge_decoder(solver: KernelRidgeCV, images: np.ndarray,
                        config: DecoderConfig = DecoderConfig(), seed: int = 0) -> Reconstructor:
    """Kernel ridge from the standardised representation to the half-resolution pixels.

    Output: mean + shrink * prediction, upsampled and blurred; (ridge strength, blur, shrink)
    maximise the identity-grouped CV SSIM gain over the mean image rendered the same way, on
    the attacker's own data only. `unsmoothed` uses the ridge strength with the least CV pixel
    MSE, no blur, no shrinkage (the earlier decoder; the better image to re-identify)."""
    full = images.shape[1:3]
    half = (full[0] // 2, full[1] // 2)
    pixels = _to_tensor_images(images, half).flatten(1).double().numpy()
    lambdas = solver.lambdas(config.lambdas)
    renderers = [_Renderer(half, full, b) for b in config.blurs]
    ssim = _ShrinkSSIM(full)
    # SSIM costs: score at most cv_images held-out images (every image counts for the MSE).
    scored = np.zeros(len(pixels), bool)
    scored[np.random.default_rng(seed).permutation(len(pixels))[:config.cv_images]] = True
    gains, mse = [], np.zeros(len(lambdas))
    for f, tr, te in solver.splits():
        mean = pixels[tr].mean(axis=0)
        keep = scored[te]
        truth = ssim.truth(torch.from_numpy(images[te][keep]).permute(0, 3, 1, 2).float())
        bases = [ssim.mean_image(r(mean[None]) * 255, truth) for r in renderers]
        base_ssim = [ssim(None, (), base, truth)[0] for base in bases]
        g = np.zeros((len(lambdas), len(renderers), len(config.shrinks), int(keep.sum())))
        for li, pred in solver.cv_scores(f, pixels[tr] - mean, lambdas):
            mse[li] += float(((np.clip(pred + mean, 0, 1) - pixels[te]) ** 2).sum())
            if not keep.any():
                continue
            for bi, render in enumerate(renderers):
                p = (render.rows @ torch.from_numpy(pred[keep].astype(np.float32)).view(
                    -1, 3, *half) @ render.cols) * 255
                g[li, bi] = ssim(p, config.shrinks, bases[bi], truth) - base_ssim[bi]
        gains.append(g)
    if not gains:
        raise ValueError("the ridge decoder chooses its settings by identity-grouped CV: the "
                         "attacker's images must come from at least 2 identities")
    score = np.concatenate(gains, axis=-1).mean(axis=-1)
    li, bi, si = (int(i) for i in np.unravel_index(int(score.argmax()), score.shape))
    lm = int(mse.argmin())
    mean = pixels.mean(axis=0)
    evals, evecs = np.linalg.eigh(solver.gram)
    proj = evecs.T @ (pixels - mean)
    alpha = config.shrinks[si] * (evecs @ (proj / (evals + lambdas[li])[:, None]))
    alpha_mse = evecs @ (proj / (evals + lambdas[lm])[:, None])
    z, std = solver.z, solver.std
    render, sharp = renderers[bi], _Renderer(half, full, 0.0)

    def reconstruct(x_new: np.ndarray, unsmoothed: bool) -> np.ndarray:
        r, a = (sharp, alpha_mse) if unsmoothed else (render, alpha)
        out = [_to_uint8_images(r(mean + (std(x_new[i:i + 256]) @ z.T) @ a))
               for i in range(0, len(x_new), 256)]
        return np.concatenate(out) if out else np.zeros((0, *full, 3), np.uint8)

    chosen = {"lambda": config.lambdas[li], "blur": config.blurs[bi],
              "shrink": config.shrinks[si], "cv_ssim_gain": float(score[li, bi, si]),
              "lambda_unsmoothed": config.lambdas[lm]}
    return Reconstructor(reconstruct, _to_uint8_images(render(mean[None]))[0], chosen)


def train_decoder(x: np.ndarray | KernelRidgeCV, images: np.ndarray,
                  config: DecoderConfig = DecoderConfig(), seed: int = 0,
                  progress: Callable[[int], None] | None = None,
                  groups: np.ndarray | None = None) -> Reconstructor:
    """Fit a decoder; returns reconstruct(x_new) -> (N, H, W, 3) uint8 at the images' size,
    with `.baseline`, the mean image through the same output pipeline.

    `x` is the representation matrix or, for "ridge", its KernelRidgeCV solver (shared with
    the attribute attack); `groups` (identities) define the CV folds."""
    if config.kind == "ridge":
        solver = x if isinstance(x, KernelRidgeCV) else KernelRidgeCV(
            x, np.arange(len(x)) if groups is None else groups, seed=seed)
        return train_ridge_decoder(solver, images, config, seed)
    torch.manual_seed(seed)
    full = images.shape[1:3]
    half = (full[0] // 2, full[1] // 2)
    start = (max(half[0] // 16, 1), max(half[1] // 16, 1))
    out_size = (start[0] * 16, start[1] * 16)
    std = x.std if isinstance(x, KernelRidgeCV) else Standardizer(x)
    z = torch.from_numpy((x.z if isinstance(x, KernelRidgeCV) else std(x)).astype(np.float32))
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

    def reconstruct(x_new: np.ndarray, unsmoothed: bool = False) -> np.ndarray:
        with torch.no_grad():
            zn = torch.from_numpy(std(x_new).astype(np.float32))
            return np.concatenate([_to_uint8(model(zn[i:i + 256]), full)
                                   for i in range(0, len(zn), 256)])

    return Reconstructor(reconstruct, baseline_image(images))


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
    return {"score": mean_interval(hits, ids, level, n_boot, seed), "chance": float(chance.mean()), "n": int(hits.size)}


def template_inversion(recon_embeddings: np.ndarray, baseline_embedding: np.ndarray,
                       templates: np.ndarray, template_ids: np.ndarray, fmr: float = FMR_1E3,
                       level: float = 0.95, n_boot: int = 1000, seed: int = 0) -> dict:
    """Template-inversion success rate: the share of reconstructions the system ACCEPTS as
    the victim whose template they were made from (Mai et al. 2018's type-I attack), at the
    threshold where the system's own impostor comparisons (the victims' plaintext templates,
    every pair of different identities) pass at rate `fmr`.

    Chance is what an attacker who learned nothing gets: its mean image (the decoder's
    baseline) accepted against each template, and never less than `fmr` itself. Also reports
    the type-II rate (accepted against the victim's OTHER images' templates) as a detail.
    """
    sim = templates @ templates.T
    _, impostor = verification_scores(sim, template_ids)
    try:
        t = threshold_at_fmr(impostor, fmr)
    except ValueError as exc:
        return {"skipped": f"not applicable: {exc}"}
    own = np.einsum("ij,ij->i", recon_embeddings, templates)
    hits = (own >= t).astype(np.float64)
    base = (templates @ np.asarray(baseline_embedding, np.float64).ravel() >= t).mean()
    cross = recon_embeddings @ templates.T
    others = (template_ids[:, None] == template_ids[None, :]) & ~np.eye(len(templates), dtype=bool)
    type2 = float((cross[others] >= t).mean()) if others.any() else float("nan")
    return {"score": mean_interval(hits, template_ids, level, n_boot, seed),
            "chance": float(max(fmr, base)), "n": int(hits.size), "threshold": t,
            "type2_rate": type2, "baseline_acceptance": float(base)}


def reconstruction_attack(x_train: np.ndarray | KernelRidgeCV, train_images: np.ndarray,
                          train_ids: np.ndarray, x_victim: np.ndarray,
                          victim_images: np.ndarray, victim_ids: np.ndarray,
                          config: DecoderConfig = DecoderConfig(), seed: int = 0,
                          level: float = 0.95, n_boot: int = 1000,
                          progress: Callable[[int], None] | None = None,
                          truth: SsimTruth | None = None) -> dict:
    """Decoder attack: SSIM and PSNR of reconstructions vs the mean-image baseline.

    `ssim_gain` / `psnr_gain` are the paired per-victim differences reconstruction - baseline
    with identity-clustered intervals; chance for them is 0 (an attacker that learned nothing
    outputs the baseline: the mean image through the decoder's output pipeline). Returns the
    scored reconstructions, the baseline image, and "identity_reconstructions": the unsmoothed
    prediction, the attacker's better image to re-identify (for `identity_leakage`).
    `truth`: the victims' SSIM statistics, shared by every reading and target of a scan.
    """
    reconstruct = train_decoder(x_train, train_images, config, seed, progress, train_ids)
    recon = reconstruct(x_victim)
    base = reconstruct.baseline
    if truth is None or truth.truth is not victim_images:
        truth = SsimTruth(victim_images)
    s_rec, s_base = truth(recon), truth(base)
    p_rec, p_base = batch_psnr(recon, victim_images), batch_psnr(victim_images, base)
    out = {"ssim": float(s_rec.mean()), "ssim_baseline": float(s_base.mean()),
           "psnr": float(p_rec.mean()), "psnr_baseline": float(p_base.mean()),
           "decoder": reconstruct.chosen, "reconstructions": recon, "baseline_image": base,
           "identity_reconstructions": reconstruct.unsmoothed(x_victim)}
    for key, gain in (("ssim_gain", s_rec - s_base), ("psnr_gain", p_rec - p_base)):
        out[key] = {"score": mean_interval(gain, victim_ids, level, n_boot, seed), "chance": 0.0,
                    "n": int(gain.size)}
    return out


# ----------------------------------------------------------------------------- white box

def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Anisotropic TV: mean absolute difference of neighbouring pixels, per image summed."""
    return ((x[:, :, 1:, :] - x[:, :, :-1, :]).abs().mean(dim=(1, 2, 3))
            + (x[:, :, :, 1:] - x[:, :, :, :-1]).abs().mean(dim=(1, 2, 3))).sum()


def rmle(forward: Callable[[torch.Tensor], torch.Tensor], targets: torch.Tensor,
         shape: tuple[int, int, int], steps: int = 1000, lr: float = 0.1, tv: float = 10.0,
         init: float = 0.5, seed: int = 0) -> torch.Tensor:
    """He et al.'s regularised maximum-likelihood inversion.

    x* = argmin_x ||forward(x) - target||^2 / ||target||^2 + tv * TV(x), x in [0, 1]^shape
    (parametrised through a sigmoid), started from a constant grey image, Adam. `forward` takes
    (N, C, H, W) images in [0, 1]. Returns (N, C, H, W) in [0, 1].

    Defaults: the best of the settings measured on reid-compact (module docstring) within
    ~30 s for 4 victims on one thread; TV is a mean per pixel, so tv=10 is a strong prior.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if lr <= 0 or tv < 0:
        raise ValueError(f"lr must be > 0 and tv >= 0, got lr={lr}, tv={tv}")
    if not 0 < init < 1:
        raise ValueError(f"init must be in (0, 1), got {init}")
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
