"""`featurelock train` end to end on a tiny configuration."""

import json

import pytest
import torch

from featurelock.middleware.cli import main
from featurelock.models.zoo import load_model


@pytest.mark.slow
def test_tiny_training_run_saves_loadable_weights(tmp_path, capsys):
    out, metrics = tmp_path / "w.pt", tmp_path / "m.json"
    rc = main(["train", "--steps", "3", "--train-ids", "5", "--test-ids", "6",
               "--images-per-id", "4", "--out", str(out), "--metrics-json", str(metrics)])
    assert rc == 0
    summary = json.loads(metrics.read_text())
    assert summary["steps"] == 3 and 0 <= summary["trained"]["rank1"] <= 1
    assert "rank-1" in capsys.readouterr().out
    model = load_model("reid-compact", path=out)
    assert model(torch.zeros(1, 3, 128, 64)).shape == (1, 256)


def test_bad_arguments_exit_with_usage_error(tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--steps", "0", "--out", str(tmp_path / "x.pt")])
    assert exc.value.code == 2
