"""The committed default weights: small, weights-only, and far better than random init."""

import pytest
import torch

from featurelock.models.evaluation import evaluate
from featurelock.models.synthetic import make_splits
from featurelock.models.zoo import DEFAULT_WEIGHTS, load_model


def test_weights_file_is_small_and_weights_only():
    assert DEFAULT_WEIGHTS.is_file(), "run `featurelock train` to produce it"
    assert DEFAULT_WEIGHTS.stat().st_size < 5 * 1024 * 1024
    state = torch.load(DEFAULT_WEIGHTS, map_location="cpu", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())


def test_outputs_are_256d_unit_vectors():
    model = load_model()
    out = model(torch.randn(3, 3, 128, 64))
    assert out.shape == (3, 256)
    assert torch.allclose(out.norm(dim=1), torch.ones(3), atol=1e-5)


@pytest.mark.slow
def test_trained_beats_untrained_on_unseen_identities():
    # A different seed than training: new identities, new camera looks.
    s = make_splits(seed=123, n_train_ids=1, n_test_ids=60, images_per_id=6)
    trained = evaluate(load_model(), s.query, s.gallery)
    torch.manual_seed(0)
    untrained = evaluate(load_model(pretrained=False), s.query, s.gallery)
    assert trained["rank1"] > untrained["rank1"] + 0.4
    assert trained["mAP"] > untrained["mAP"] + 0.3
    assert trained["rank1"] > 0.6  # measured 0.81 (untrained 0.00)
