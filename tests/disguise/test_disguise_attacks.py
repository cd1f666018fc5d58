"""The disguise attacks have teeth: known pairs place every block and recover a noise-free
projection (least squares once pairs outnumber the block dimension; a few pairs and a public
prior already go far); AES resists the same attack; the scan's verdicts follow."""

from __future__ import annotations

import json

import numpy as np
import pytest

from featurelock.attack_harness.disguise_attacks.jigsaw import solve_positions
from featurelock.attack_harness.disguise_attacks.known_plaintext import (apply_inverse,
                                                                          block_prior,
                                                                          fit_inverse,
                                                                          fit_prior_inverse,
                                                                          match_positions)
from featurelock.attack_harness.disguise_scan import (DisguiseScanConfig, disguise_data,
                                                       disguise_table, run_disguise_scan,
                                                       write_disguise_report)
from featurelock.attack_harness.disguise_view import assemble, centred_blocks
from featurelock.attack_harness.metrics import batch_ssim
from featurelock.middleware import DisguiseSpec, Keyset


@pytest.fixture(scope="module")
def data():
    # 32x16 pedestrians (every 4th pixel), block 4: block dimension d = 48.
    return disguise_data(0, victim_ids=16, per_id=4, public_images=240, public_ids=48,
                         downsample=4)


def _ls_ssim(data, spec: DisguiseSpec, k: int, prior: bool = False) -> tuple[float, float]:
    """(SSIM of the reconstructions, share of positions placed right): least squares, or
    with `prior` the pairs' subspace inverted and the rest filled from the public prior."""
    d = Keyset.generate("disguise").disguiser(spec)
    plain = data.public[:k]
    x, y = centred_blocks(plain, None, 4), centred_blocks(d.disguise(plain), spec, 4)
    source = match_positions(x, y)
    y_vic = centred_blocks(d.disguise(data.victims), spec, 4)
    if prior:
        blocks = fit_prior_inverse(x, y, source, block_prior(centred_blocks(data.public, None, 4)))(
            y_vic, source)
    else:
        blocks = apply_inverse(y_vic, fit_inverse(x, y, source, False), source)
    rec = assemble(blocks, data.victims.shape[1:], 4)
    matched = float(np.mean(source == d._derived()["inv"]))
    return float(batch_ssim(np.clip(rec, 0, 255), data.victims).mean()), matched


def test_known_pairs_recover_a_noise_free_projection(data):
    """Least squares is exact once k > d + 1 = 49; with 6 pairs it reaches SSIM 0.396, but
    every block is already placed and the prior fill reaches 0.517 (both over 5 keys, spread
    < 0.001: placed right, neither depends on the key)."""
    spec = DisguiseSpec(32, 16, 3, 4, "rmt")
    ssim_many, matched = _ls_ssim(data, spec, 200)
    ssim_few, matched_few = _ls_ssim(data, spec, 6)
    ssim_prior, _ = _ls_ssim(data, spec, 6, prior=True)
    assert matched == matched_few == 1.0
    assert ssim_many > 0.95
    assert ssim_few + 0.05 < ssim_prior < ssim_many


def test_aes_resists_the_same_attack(data):
    ssim_aes, matched = _ls_ssim(data, DisguiseSpec(32, 16, 3, 4, "aes"), 200)
    blind = float(batch_ssim(np.repeat(data.public.mean(0, keepdims=True), len(data.victims), 0),
                             data.victims).mean())
    assert ssim_aes < blind + 0.05
    assert matched < 0.3


def test_jigsaw_places_shuffled_blocks_from_the_population(data):
    spec = DisguiseSpec(32, 16, 3, 4, "shuffle")
    d = Keyset.generate("disguise").disguiser(spec)
    source = solve_positions(centred_blocks(data.public, None, 4),
                             centred_blocks(d.disguise(data.victims), spec, 4), content=True)
    assert np.mean(source == d._derived()["inv"]) > 0.15  # chance 1/32


def test_scan_verdicts_and_report(data, tmp_path):
    cfg = DisguiseScanConfig(block=4, known_pairs=(8, 64), chosen=200, inverse_epochs=15,
                             n_boot=100, attacks=("known-plaintext", "learned-inverse"))
    targets = {"rmt": DisguiseSpec(32, 16, 3, 4, "rmt"), "aes": DisguiseSpec(32, 16, 3, 4, "aes")}
    result = run_disguise_scan(targets, cfg, data, log=lambda _: None)
    cols = {n: {c: v["status"] for c, v in e["columns"].items()} for n, e in result["targets"].items()}
    assert cols["rmt"]["known-plaintext"] == "leaks"
    assert cols["aes"]["known-plaintext"] == "resists"
    assert cols["aes"]["learned-inverse"] == "resists"
    assert "resists" in disguise_table(result)
    paths = write_disguise_report(result, tmp_path)
    doc = json.loads(paths["json"].read_text())
    assert doc["targets"]["aes"]["attacks"]["known-plaintext"]["details"]["k_at_ssim_0.5"] is None
    assert doc["targets"]["rmt"]["picture_rows"][:2] == ["victims", "disguised"]
    assert paths["picture:rmt"].stat().st_size > 1000
