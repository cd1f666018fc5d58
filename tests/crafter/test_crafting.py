"""Crafter's optimiser: the implicit hypergradient, the objective's two terms, Crafter-z."""

from __future__ import annotations

import pytest
import torch

from featurelock.models.crafter import (CraftConfig, craft, critic_separation,
                                        neumann_hypergradient)


def test_neumann_hypergradient_matches_the_exact_solution_of_a_quadratic_inner_problem():
    # inner: ||A z - f||^2 + lam ||z||^2, so z*(f) = M^-1 A^T f with M = A^T A + lam I and
    # d <c, z*(f)> / df = A M^-1 c exactly.
    g = torch.Generator().manual_seed(0)
    A = torch.randn(6, 4, generator=g, dtype=torch.float64)
    lam = 0.5
    f = torch.randn(1, 6, generator=g, dtype=torch.float64)
    c = torch.randn(1, 4, generator=g, dtype=torch.float64)
    M = A.T @ A + lam * torch.eye(4, dtype=torch.float64)
    z_star = torch.linalg.solve(M, A.T @ f.T).T
    exact = (A @ torch.linalg.solve(M, c.T)).T

    def inner(z, ff):
        return ((z @ A.T - ff) ** 2).sum() + lam * (z ** 2).sum()

    alpha = 0.9 / (2 * torch.linalg.eigvalsh(M).max().item())
    approx = neumann_hypergradient(inner, z_star, f, c, alpha, terms=400)
    assert torch.allclose(approx, exact, rtol=1e-4, atol=1e-6)
    # Truncation matters: two terms are far from the answer, so the test can fail.
    crude = neumann_hypergradient(inner, z_star, f, c, alpha, terms=2)
    assert (crude - exact).norm() > 0.1 * exact.norm()


def test_crafter_z_lowers_an_independent_critics_separation(tiny):
    """Crafter-z (what the served CraftNets are distilled from) leaves inversions that fresh,
    independent critics separate less well from the prior. Four judges (seeds 0-3), because
    one critic's estimate on 8 samples is mostly noise: single judges gave after/before ratios
    of 0.55-1.09; the four summed gave 0.82 (crafting seed 1, asserted here) and 0.86 (seed 2).
    The implicit optimiser at this tiny budget (12 outer steps) did NOT lower it: 1.01-1.18
    over 7 (judge, seed) pairs, so this test claims nothing for it."""
    G, enc, inv, f0 = tiny
    judges = range(4)
    before = sum(critic_separation(G, enc, inv, f0, steps=100, refine=5, seed=j) for j in judges)
    cfg = CraftConfig(beta=0.01, method="z", outer_steps=12, critic_steps=3, critic_lr=1e-3,
                      refine=5, neumann_terms=5, lr=0.05, lr_z=0.1)
    crafted = craft(G, enc, inv, f0, cfg, seed=1).features
    after = sum(critic_separation(G, enc, inv, crafted, steps=100, refine=5, seed=j)
                for j in judges)
    assert after < 0.95 * before, after / before


def test_beta_bounds_the_distance_to_the_plaintext_features(tiny):
    G, enc, inv, f0 = tiny
    dist = {}
    for beta in (0.0, 100.0):
        cfg = CraftConfig(beta=beta, method="implicit", outer_steps=8, critic_steps=2,
                          refine=3, neumann_terms=3, lr=0.05)
        dist[beta] = craft(G, enc, inv, f0, cfg, seed=1).distance
    # Without the utility term F drifts anywhere; beta holds it near F0.
    assert dist[100.0] < 0.01 * dist[0.0]


def test_crafter_z_releases_the_encoding_of_a_generated_image(tiny):
    G, enc, inv, f0 = tiny
    res = craft(G, enc, inv, f0, CraftConfig(beta=1.0, outer_steps=3, critic_steps=1,
                                            refine=2), seed=0)
    with torch.no_grad():
        assert torch.allclose(res.features, enc(G(res.latents)), atol=1e-6)
    assert not torch.allclose(res.features, f0, atol=1e-3)


def test_crafting_is_deterministic_for_a_seed(tiny):
    G, enc, inv, f0 = tiny
    cfg = CraftConfig(beta=1.0, outer_steps=3, critic_steps=1, refine=2)
    a = craft(G, enc, inv, f0, cfg, seed=4).features
    b = craft(G, enc, inv, f0, cfg, seed=4).features
    c = craft(G, enc, inv, f0, cfg, seed=5).features
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_craft_config_validates():
    with pytest.raises(ValueError, match="method"):
        CraftConfig(method="magic")
    with pytest.raises(ValueError, match="beta"):
        CraftConfig(beta=-1)
