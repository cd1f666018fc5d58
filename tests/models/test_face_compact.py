"""face-compact: the committed weights load safely and verify fresh synthetic faces."""

import numpy as np
import pytest
import torch

from featurelock.attack_harness.metrics import (FMR_1E3, equal_error_rate, tar_at_fmr,
                                                verification_scores)
from featurelock.models.synthetic_faces import make_faces
from featurelock.models.zoo import FACE_COMPACT_WEIGHTS, get_spec, load_model

# Measured on make_faces(240, 40, seed) for seeds 1000..1009 (10 seeds) with the committed
# weights: TAR@FMR1e-3 min 0.358, mean 0.391, sd 0.022; EER max 0.052, mean 0.046. The floors
# sit 0.11 (5 sd) below the worst TAR and 0.03 above the worst EER seen.
TAR_FLOOR = 0.25
EER_CEILING = 0.08


@pytest.fixture(scope="module")
def model():
    return load_model("face-compact")


def test_weights_are_a_float16_state_dict_loaded_weights_only(model):
    state = torch.load(FACE_COMPACT_WEIGHTS, map_location="cpu", weights_only=True)
    assert all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())
    spec = get_spec("face-compact")
    assert (spec.profile.height, spec.profile.width, spec.output_dim) == (112, 112, 128)
    out = model.embed(np.zeros((2, 112, 112, 3), np.uint8))
    assert out.shape == (2, 128) and np.allclose(np.linalg.norm(out, axis=1), 1, atol=1e-5)


def test_verifies_fresh_identities_at_fmr_1e3(model):
    """Identities the model never saw (seed 1001; training used seed 0): TAR at FMR 1e-3 and
    EER clear floors set below the minimum over 10 seeds."""
    faces = make_faces(240, 40, seed=1001)
    emb = model.embed(faces.images)
    genuine, impostor = verification_scores(emb @ emb.T, faces.ids)
    tar, _ = tar_at_fmr(genuine, impostor, FMR_1E3)
    assert tar > TAR_FLOOR
    assert equal_error_rate(genuine, impostor) < EER_CEILING


def test_train_faces_cli_writes_float16_weights_and_face_metrics(tmp_path, capsys):
    import json

    from featurelock.middleware.cli import main

    out, metrics = tmp_path / "face.pt", tmp_path / "m.json"
    assert main(["train", "--faces", "--steps", "2", "--train-ids", "4", "--test-ids", "20",
                 "--images-per-id", "4", "--out", str(out), "--metrics-json", str(metrics)]) == 0
    assert "TAR@FMR1e-3" in capsys.readouterr().out
    summary = json.loads(metrics.read_text())
    assert summary["model"] == "face-compact" and summary["steps"] == 2
    assert summary["trained"]["impostor_pairs"] >= 1000
    assert 0 <= summary["trained"]["tar_at_fmr_1e-3"] <= 1
    assert load_model("face-compact", out).output_dim == 128
