"""He et al. (ACSAC 2019) scaled down, on real data shipped offline: scikit-learn's 8x8 digits.

A LeNet-style classifier (conv1 5x5x8 -> ReLU -> pool -> conv2 5x5x16 -> ReLU2 -> pool -> fc1
64 -> ReLU -> fc2 10) is trained on half of the digits, upsampled to 28x28 like MNIST. The
network is split after conv1 (shallow), after ReLU2 (deep) or after fc1's ReLU (a fully-
connected cut), and three attacks invert the split output v = f1(x) of held-out victims:

* white-box rMLE: argmin_x ||f1(x) - v||^2 + lambda TV(x), from a grey image, Adam;
* black-box inverse network: a decoder trained on (f1(x), x) for the attacker's own
  same-distribution images (the half of the data the classifier was not trained on, minus the
  victims), Adam 1e-3, batch 32;
* query-free shadow model: the attacker trains its own f1' through the frozen later layers f2
  on its labelled same-distribution images, then runs rMLE on f1'.

PSNR (MAX 255) and SSIM on the victims, beside the trivial baseline (the attacker's mean
image). `python -m featurelock.attack_harness.digits` prints the markdown table with the
paper's MNIST numbers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .metrics import batch_psnr, batch_ssim
from .reconstruction import rmle

__all__ = ["DigitsConfig", "load_digits28", "LeNet", "run_digits", "digits_table", "PAPER"]

SPLITS = ("conv1", "relu2", "fc1")
ATTACKS = ("rmle", "inverse", "shadow")
# He et al. 2019, MNIST (PSNR dB, SSIM); None where the paper gives no MNIST number.
PAPER = {
    ("conv1", "rmle"): (39.69, 0.997), ("relu2", "rmle"): (15.10, 0.600),
    ("conv1", "inverse"): (40.72, 0.995), ("relu2", "inverse"): (20.81, 0.805),
}
PAPER_NOTES = {
    "shadow": "CIFAR only in the paper: SSIM 0.91 at the shallowest split, <= 0.27 deeper",
    "fc1": "paper: quality collapses once the split is at or after a fully-connected layer",
}


@dataclass(frozen=True)
class DigitsConfig:
    seed: int = 0
    n_victims: int = 64
    classifier_epochs: int = 30
    decoder_epochs: int = 40
    rmle_steps: tuple[int, int, int] = (500, 1500, 1500)  # conv1, relu2, fc1
    tv: float = 0.01
    shadow_epochs: int = 30


def load_digits28(seed: int = 0):
    """(images (N, 1, 28, 28) in [0, 1], labels) from sklearn's bundled 8x8 digits."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy(d.images.astype(np.float32) / 16.0).unsqueeze(1)
    x = F.interpolate(x, size=(28, 28), mode="bilinear", align_corners=False).clamp(0, 1)
    return x, torch.from_numpy(d.target.astype(np.int64))


class LeNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 5, padding=2)
        self.conv2 = nn.Conv2d(8, 16, 5, padding=2)
        self.fc1 = nn.Linear(16 * 7 * 7, 64)
        self.fc2 = nn.Linear(64, 10)

    def f1(self, x: torch.Tensor, split: str) -> torch.Tensor:
        h = self.conv1(x)
        if split == "conv1":
            return h
        h = F.relu(self.conv2(F.max_pool2d(F.relu(h), 2)))
        if split == "relu2":
            return h
        return F.relu(self.fc1(F.max_pool2d(h, 2).flatten(1)))

    def f2(self, h: torch.Tensor, split: str) -> torch.Tensor:
        if split == "conv1":
            h = F.relu(self.conv2(F.max_pool2d(F.relu(h), 2)))
        if split in ("conv1", "relu2"):
            h = F.relu(self.fc1(F.max_pool2d(h, 2).flatten(1)))
        return self.fc2(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.f2(self.f1(x, "fc1"), "fc1")


def _train_classifier(model: nn.Module, x, y, epochs: int, seed: int, params=None,
                      forward=None) -> None:
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(params if params is not None else model.parameters(), lr=2e-3)
    forward = forward or model
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        for s in range(0, len(x), 64):
            idx = order[s:s + 64]
            loss = F.cross_entropy(forward(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()


class _InverseNet(nn.Module):
    """Decoder from a split output to a 28x28 image: dense to 7x7x32, two x2 transposed convs."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.fc = nn.Linear(dim, 32 * 7 * 7)
        self.up = nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(32, 16, 4, 2, 1), nn.ReLU(),
                                nn.ConvTranspose2d(16, 8, 4, 2, 1), nn.ReLU(),
                                nn.Conv2d(8, 1, 3, padding=1))

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.up(self.fc(v.flatten(1)).view(-1, 32, 7, 7)))


def _inverse(v_train, x_train, v_test, epochs: int, seed: int) -> torch.Tensor:
    torch.manual_seed(seed)
    scale = v_train.flatten(1).std().clamp_min(1e-6)
    net = _InverseNet(v_train[0].numel())
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(len(v_train), generator=gen)
        for s in range(0, len(order), 32):
            idx = order[s:s + 32]
            loss = F.mse_loss(net(v_train[idx] / scale), x_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        return net(v_test / scale)


def _scores(recon: torch.Tensor, truth: torch.Tensor) -> tuple[float, float]:
    r = (recon.clamp(0, 1) * 255).permute(0, 2, 3, 1).numpy()
    t = (truth * 255).permute(0, 2, 3, 1).numpy()
    return float(batch_psnr(r, t).mean()), float(batch_ssim(r, t).mean())


def run_digits(config: DigitsConfig = DigitsConfig(), progress: bool = False) -> dict:
    """Every split x attack: PSNR / SSIM on the victims, with the baseline and the paper."""
    torch.manual_seed(config.seed)
    started = time.monotonic()
    x, y = load_digits28(config.seed)
    perm = torch.from_numpy(np.random.default_rng(config.seed).permutation(len(x)))
    half = len(x) // 2
    owner, attacker = perm[:half], perm[half:]
    victims, aux = attacker[:config.n_victims], attacker[config.n_victims:]
    model = LeNet()
    _train_classifier(model, x[owner], y[owner], config.classifier_epochs, config.seed)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    with torch.no_grad():
        accuracy = float((model(x[attacker]).argmax(1) == y[attacker]).float().mean())
    truth = x[victims]
    base = x[aux].mean(0, keepdim=True).expand_as(truth)
    rows: dict = {"baseline": _scores(base, truth)}
    for split, steps in zip(SPLITS, config.rmle_steps):
        with torch.no_grad():
            v_victims, v_aux = model.f1(truth, split), model.f1(x[aux], split)
        white = rmle(lambda im: model.f1(im, split), v_victims, (1, 28, 28), steps=steps,
                     lr=0.05, tv=config.tv, seed=config.seed)
        rows[(split, "rmle")] = _scores(white, truth)
        inv = _inverse(v_aux, x[aux], v_victims, config.decoder_epochs, config.seed)
        rows[(split, "inverse")] = _scores(inv, truth)
        shadow = LeNet()
        torch.manual_seed(config.seed + 1)
        shadow_params = [p for n, p in shadow.named_parameters()
                         if n.startswith("conv1") or (split != "conv1" and n.startswith("conv2"))
                         or (split == "fc1" and n.startswith("fc1"))]
        _train_classifier(shadow, x[aux], y[aux], config.shadow_epochs, config.seed,
                          params=shadow_params,
                          forward=lambda im: model.f2(shadow.f1(im, split), split))
        for p in shadow.parameters():
            p.requires_grad_(False)
        guess = rmle(lambda im: shadow.f1(im, split), v_victims, (1, 28, 28), steps=steps,
                     lr=0.05, tv=config.tv, seed=config.seed)
        rows[(split, "shadow")] = _scores(guess, truth)
        if progress:
            print(f"  {split}: done ({time.monotonic() - started:.0f}s)")
    return {"rows": rows, "classifier_accuracy": accuracy, "victims": int(len(victims)),
            "aux": int(len(aux)), "seconds": time.monotonic() - started, "config": config}


def digits_table(result: dict) -> str:
    """A README-ready markdown table: ours beside He et al.'s MNIST numbers."""
    names = {"rmle": "white-box rMLE", "inverse": "black-box inverse network",
             "shadow": "query-free shadow + rMLE"}
    bp, bs = result["rows"]["baseline"]
    lines = ["| split | attack | PSNR (dB) | SSIM | He et al. MNIST PSNR / SSIM |",
             "|---|---|---|---|---|"]
    for split in SPLITS:
        for attack in ATTACKS:
            p, s = result["rows"][(split, attack)]
            paper = PAPER.get((split, attack))
            ref = (f"{paper[0]:.2f} / {paper[1]:.3f}" if paper else
                   "n/a (" + PAPER_NOTES["shadow" if attack == "shadow" else "fc1"] + ")"
                   if attack == "shadow" or split == "fc1" else "n/a")
            lines.append(f"| {split} | {names[attack]} | {p:.2f} | {s:.3f} | {ref} |")
    lines.append(f"| - | baseline: attacker's mean image | {bp:.2f} | {bs:.3f} | - |")
    return "\n".join(lines)


def main() -> None:
    torch.set_num_threads(2)
    result = run_digits(progress=True)
    print(f"LeNet on sklearn digits (28x28): accuracy {result['classifier_accuracy']:.3f}; "
          f"{result['victims']} victims, {result['aux']} attacker images, "
          f"{result['seconds']:.0f}s\n")
    print(digits_table(result))


if __name__ == "__main__":
    main()
