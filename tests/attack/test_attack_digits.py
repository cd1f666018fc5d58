"""He et al.'s trend on real digits: a shallow split inverts well, a deeper cut does not."""

import pytest

from featurelock.attack_harness.digits import DigitsConfig, digits_table, run_digits


@pytest.mark.slow
def test_shallow_split_reconstructs_better_than_deep_and_fc():
    config = DigitsConfig(n_victims=16, classifier_epochs=8, decoder_epochs=12,
                          rmle_steps=(150, 300, 300), shadow_epochs=6)
    result = run_digits(config)
    rows = result["rows"]
    assert result["classifier_accuracy"] > 0.85
    for attack in ("rmle", "inverse", "shadow"):
        conv1, fc1 = rows[("conv1", attack)][1], rows[("fc1", attack)][1]
        assert conv1 > fc1, attack  # SSIM falls from the shallow split to the FC cut
    assert rows[("conv1", "rmle")][1] > 0.8  # white-box on a shallow split: near-perfect
    # Query-free shadow at the FC cut is no better than the mean image.
    assert rows[("fc1", "shadow")][1] < rows["baseline"][1] + 0.1
    table = digits_table(result)
    assert table.startswith("| split |") and "39.69 / 0.997" in table
