"""The readers that use what the disguise keeps: a learner with labels reads RMT as it reads
plain pixels (and AES not at all); Gram matrices place every block from a few pairs; covariance
spectra place blocks with no pairs at all.

Margins were measured over fresh keys (keys come from the OS, so every run draws new ones):
see each test's docstring."""

from __future__ import annotations

import numpy as np
import pytest

from featurelock.attack_harness.disguise_attacks.jigsaw import solve_positions
from featurelock.attack_harness.disguise_attacks.known_plaintext import (block_prior,
                                                                          fit_prior_inverse,
                                                                          match_positions)
from featurelock.attack_harness.disguise_scan import (DisguiseScanConfig, disguise_data,
                                                       run_disguise_scan)
from featurelock.attack_harness.disguise_view import assemble, centred_blocks
from featurelock.attack_harness.metrics import batch_ssim
from featurelock.middleware import DisguiseSpec, Keyset

RMT = DisguiseSpec(32, 16, 3, 4, "rmt", noise=0.05)  # block dimension 48, 32 positions


@pytest.fixture(scope="module")
def data():
    # 32x16 pedestrians (every 4th pixel): 240 victims of 40 people, 480 labelled public images.
    return disguise_data(0, victim_ids=40, per_id=6, public_images=480, public_ids=80,
                         downsample=4)


def test_a_learner_with_labels_reads_rmt_like_plain_pixels_and_aes_not_at_all(data):
    """Over 6 keys (noise 0.05): learned re-ID rank-1 0.250-0.317 on rmt (interval low end
    >= 0.154; plain control 0.275; chance 0.018), aes 0.008-0.029; linkability 0.79-0.83 on
    rmt, 0.46-0.54 on aes; attribute accuracy low end >= 0.59 on rmt (chance 0.5)."""
    cfg = DisguiseScanConfig(block=4, n_boot=100, attacks=("labelled-reader",))
    result = run_disguise_scan({"rmt": RMT, "aes": RMT.with_(variant="aes", noise=0.0)}, cfg,
                               data, log=lambda _: None)
    rmt, aes = (result["targets"][t]["columns"] for t in ("rmt", "aes"))
    for column in ("learned-reid", "learned-linkability", "attributes"):
        assert rmt[column]["status"] == "leaks", column
        assert aes[column]["status"] == "resists", column  # the plain control leaked
    reid, ctrl = rmt["learned-reid"]["best"], rmt["learned-reid"]["control_best"]
    assert reid["score"]["estimate"] > ctrl["score"]["estimate"] - 0.1  # as well as plain
    assert aes["learned-reid"]["best"]["score"]["estimate"] < 0.08
    assert result["targets"]["rmt"]["attackers"]["learner with labels"] == "leaks"
    assert result["targets"]["aes"]["attackers"]["learner with labels"] == "resists"


def test_gram_matrices_place_every_block_from_a_few_pairs(data):
    """Over 10 keys: 8 pairs placed all 32 positions at noise 0.05, 16 pairs at noise 0.2
    (4 pairs: 31-32). Placed right, the prior-filled inverse does not depend on the key."""
    for noise, k in ((0.05, 8), (0.2, 16)):
        spec = RMT.with_(noise=noise)
        d = Keyset.generate("disguise").disguiser(spec)
        plain = data.public[:k]
        x, y = centred_blocks(plain, None, 4), centred_blocks(d.disguise(plain), spec, 4)
        source = match_positions(x, y, noise)
        assert np.array_equal(source, d._derived()["inv"]), noise
    # noise 0.2, 16 pairs: SSIM 0.44 (one key; chance 0.07 = the mean public image)
    prior = block_prior(centred_blocks(data.public, None, 4))
    rec = assemble(fit_prior_inverse(x, y, source, prior, noise)(
        centred_blocks(d.disguise(data.victims), spec, 4), source), data.victims.shape[1:], 4)
    blind = np.repeat(data.public.mean(0, keepdims=True), len(data.victims), 0)
    gain = (batch_ssim(np.clip(rec, 0, 255), data.victims).mean()
            - batch_ssim(blind, data.victims).mean())
    assert gain > 0.2


def test_gram_matrices_place_nothing_under_aes(data):
    spec = RMT.with_(variant="aes", noise=0.0)
    d = Keyset.generate("disguise").disguiser(spec)
    plain = data.public[:16]
    source = match_positions(centred_blocks(plain, None, 4),
                             centred_blocks(d.disguise(plain), spec, 4))
    assert np.mean(source == d._derived()["inv"]) < 0.25  # chance 1/32


def test_covariance_spectra_place_rmt_blocks_with_no_pairs(data):
    """Over 10 keys: 5-9 of 32 positions placed (0.156-0.281; chance 1/32 = 0.031)."""
    d = Keyset.generate("disguise").disguiser(RMT)
    source = solve_positions(centred_blocks(data.public, None, 4),
                             centred_blocks(d.disguise(data.victims), RMT, 4), False, RMT.noise)
    assert np.sum(source == d._derived()["inv"]) >= 3
