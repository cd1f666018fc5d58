"""The scan's face data: 112x112 faces for face models, never pedestrians resized."""

import numpy as np
import pytest

from featurelock.attack_harness.data import (check_domain, default_dataset, load_dataset)
from featurelock.models.profiles import FACE_COMPACT_112, REID_128x64


def test_synthetic_faces_are_112x112_with_disjoint_identities_and_attributes():
    data = load_dataset("synthetic-faces", budget=16, n_victim_ids=3)
    assert data.aux_images.shape[1:] == data.victim_images.shape[1:] == (112, 112, 3)
    assert not set(data.aux_ids) & set(data.victim_ids)
    assert data.attribute_names[0] == "gender" and len(data.attribute_classes) == 9
    assert data.victim_is_query.any() and (~data.victim_is_query).any()
    assert "synthetic faces" in data.description


def test_the_default_set_follows_the_model_and_other_domains_are_refused():
    assert default_dataset(FACE_COMPACT_112) == "synthetic-faces"
    assert default_dataset(REID_128x64) == default_dataset(None) == "synthetic"
    with pytest.raises(ValueError, match="use --dataset synthetic-faces"):
        check_domain("synthetic", FACE_COMPACT_112, "face-compact")
    with pytest.raises(ValueError, match="use --dataset synthetic$"):
        check_domain("synthetic-faces", REID_128x64, "reid-compact")
    check_domain("synthetic-faces", FACE_COMPACT_112, "face-compact")  # same domain: fine
    check_domain("market1501:/x", FACE_COMPACT_112, "face-compact")  # a user's set: not judged


def test_scan_cli_refuses_pedestrians_for_a_face_model(tmp_path, capsys):
    from featurelock.middleware.cli import main

    rc = main(["scan", "--model", "face-compact", "--dataset", "synthetic", "--local",
               "plaintext", "--budget", "16", "--no-progress", "--report", str(tmp_path)])
    assert rc == 2 and "synthetic-faces" in capsys.readouterr().err
    assert not np.any([p.name == "report.json" for p in tmp_path.iterdir()])
