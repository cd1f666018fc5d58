"""Tiny Crafter parts shared by the tests: a small random generator, a transparent encoder."""

from __future__ import annotations

import pytest
import torch

from featurelock.attack_harness.reference import PixelEmbedder
from featurelock.models.crafter import Generator, Inverter, train_inverter
from featurelock.models.crafter.inverter import InverterConfig


@pytest.fixture(scope="package")
def tiny():
    """(G, enc, inverter, f0): a width-16 G, the pixel embedder as Enc, an inverter trained
    60 steps, and 8 features of out-of-prior latents (4 sigma) to craft."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same float sums on any machine; restored for later tests
    torch.manual_seed(0)
    G = Generator(width=16)
    with torch.no_grad():  # batch-norm statistics of its own outputs: varied images, untrained
        for _ in range(10):
            G(torch.randn(64, G.latent))
    G.eval()
    for p in G.parameters():
        p.requires_grad_(False)
    enc = PixelEmbedder(dim=64).torch_forward
    inv = train_inverter(G, enc, 64, InverterConfig(steps=60, batch=32), seed=0)
    with torch.no_grad():
        f0 = enc(G(torch.randn(8, G.latent, generator=torch.Generator().manual_seed(5)) * 4))
    yield G, enc, inv, f0
    torch.set_num_threads(threads)
