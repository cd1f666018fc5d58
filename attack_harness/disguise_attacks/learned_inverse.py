"""A learned inverse network for the chosen-plaintext attacker (level 3): the generic attack.

The attacker has n images of its choice disguised, then trains a decoder disguised -> plain:
PCA of the disguised images (the encoder, fitted in closed form), a linear layer started at
its ridge solution plus an MLP residual trained by Adam, to the PCA coefficients of the plain
images, and the plain PCA basis back to pixels. It uses no knowledge of the transform, so a
permutation or orthogonal projection of the pixels costs it nothing; its ceiling is what n
images teach about images at all (the plain control). Against AES it should learn no better
than the mean image.
Control: the plain images (the decoder must reproduce its input).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..attack import Attack, Outcome, register
from ..disguise_view import DisguiseView, score_images
from ._common import ssim_finding

__all__ = ["LearnedInverse", "train_inverse"]


def _pca(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mean = x.mean(axis=0)
    _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
    scale = s[:k] / np.sqrt(len(x))
    return mean, vt[:k], np.maximum(scale, 1e-6)


def train_inverse(disguised: np.ndarray, plain: np.ndarray, epochs: int, seed: int,
                  components: int = 512, ridge: float = 30.0):
    """A function disguised uint8 images -> reconstructed float images (0..255)."""
    torch.manual_seed(seed)
    n = len(plain)
    dx = disguised.reshape(n, -1).astype(np.float64)
    px = plain.reshape(n, -1).astype(np.float64)
    k = min(components, n - 1)
    m_in, b_in, s_in = _pca(dx, k)
    m_out, b_out, s_out = _pca(px, k)
    z_in, z_out = (dx - m_in) @ b_in.T / s_in, (px - m_out) @ b_out.T / s_out
    # The linear layer starts at its ridge solution (closed form); the MLP learns what is left.
    w = np.linalg.solve(z_in.T @ z_in + ridge * np.eye(k), z_in.T @ z_out)
    linear = nn.Linear(k, k)
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(w.T.astype(np.float32)))
        linear.bias.zero_()
    residual = nn.Sequential(nn.Linear(k, 512), nn.ReLU(), nn.Linear(512, k))
    nn.init.zeros_(residual[2].weight)
    nn.init.zeros_(residual[2].bias)
    params = [*linear.parameters(), *residual.parameters()]
    opt = torch.optim.Adam(params, lr=1e-3, weight_decay=1e-4)
    xin = torch.from_numpy(z_in.astype(np.float32))
    xout = torch.from_numpy(z_out.astype(np.float32))
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(n, generator=gen)
        for s in range(0, n, 64):
            idx = order[s:s + 64]
            loss = ((linear(xin[idx]) + residual(xin[idx]) - xout[idx]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()

    def invert(images: np.ndarray) -> np.ndarray:
        z = (images.reshape(len(images), -1).astype(np.float64) - m_in) @ b_in.T / s_in
        with torch.no_grad():
            t = torch.from_numpy(z.astype(np.float32))
            out = (linear(t) + residual(t)).numpy().astype(np.float64)
        return (out * s_out @ b_out + m_out).reshape(images.shape)

    return invert


@register
class LearnedInverse(Attack):
    name = "learned-inverse"
    target = "disguise"
    control = "plain"
    attacker = "chosen-plaintext oracle"
    holds = "n chosen plaintexts disguised for it (an oracle) and the victims' disguised images"
    columns = ("learned-inverse",)

    def run(self, view: DisguiseView) -> Outcome:  # type: ignore[override]
        cfg = self.config
        plain = view.public[:cfg.chosen]
        with torch.random.fork_rng():
            invert = train_inverse(view.disguise(plain), plain, cfg.inverse_epochs, cfg.seed)
        rec = invert(view.victims_disguised)
        scored = score_images(rec, view)
        return Outcome([ssim_finding("learned-inverse", f"n={len(plain)}", scored, view, True)],
                       {"n": len(plain), **scored.to_dict()},
                       {f"learned inverse, n={len(plain)}": np.clip(rec[:cfg.grid], 0, 255).astype(np.uint8)})
