"""Market-1501 loader against a tiny fake folder and a fake market_attribute.mat."""

import numpy as np
import pytest
import scipy.io
from PIL import Image

from featurelock.models.errors import ModelError
from featurelock.models.market1501 import (load_market1501, load_market_attributes,
                                           parse_name)
from featurelock.models.synthetic import ATTRIBUTES, LOWER_COLORS, UPPER_COLORS

TRAIN = ["0002_c1s1_000451_03.jpg", "0002_c3s1_000551_01.jpg", "0007_c2s3_070952_01.jpg"]
QUERY = ["0001_c1s1_001051_00.jpg", "0003_c4s2_000101_00.jpg"]
GALLERY = ["0001_c2s1_000301_01.jpg", "0003_c5s3_065187_04.jpg", "0000_c6s1_000001_01.jpg",
           "-1_c3s1_000076_04.jpg", "Thumbs.db"]


def _write(folder, names, size=(64, 128)):
    folder.mkdir(parents=True)
    for i, name in enumerate(names):
        if name.endswith(".jpg"):
            Image.new("RGB", size, (10 * i, 100, 200)).save(folder / name)
        else:
            (folder / name).write_bytes(b"junk")


def _split(pids, rng):
    fields = {"image_index": np.array([f"{p:04d}" for p in pids], dtype=object)}
    for name in ("gender", "hair", "up", "down", "clothes", "hat", "backpack", "bag", "handbag"):
        fields[name] = rng.integers(1, 3, (1, len(pids))).astype(np.float64)
    fields["age"] = rng.integers(1, 5, (1, len(pids))).astype(np.float64)
    for prefix, colours in (("up", UPPER_COLORS), ("down", LOWER_COLORS)):
        chosen = np.arange(len(pids)) % len(colours)
        for k, c in enumerate(colours):
            fields[prefix + c] = np.where(chosen == k, 2.0, 1.0)[None, :]
    for c in LOWER_COLORS:  # last identity: lower colour flags all "no" -> unknown (-1)
        fields["down" + c][0, -1] = 1.0
    return fields


@pytest.fixture()
def market(tmp_path):
    root = tmp_path / "Market-1501-v15.09.15"
    _write(root / "bounding_box_train", TRAIN)
    _write(root / "query", QUERY)
    _write(root / "bounding_box_test", GALLERY, size=(70, 140))  # resized on load
    rng = np.random.default_rng(0)
    mat = tmp_path / "market_attribute.mat"
    train, test = _split([2, 7], rng), _split([1, 3], rng)
    scipy.io.savemat(mat, {"market_attribute": {"train": train, "test": test}})
    return root, mat, train, test


def test_parse_name():
    assert parse_name("0002_c1s1_000451_03.jpg") == (2, 0)
    assert parse_name("-1_c3s1_000076_04.jpg") == (-1, 2)
    assert parse_name("Thumbs.db") is None


def test_folders_ids_cams_and_junk(market):
    root, _, _, _ = market
    s = load_market1501(root)
    assert s.train.ids.tolist() == [2, 2, 7] and s.train.cams.tolist() == [0, 2, 1]
    assert s.query.ids.tolist() == [1, 3]
    assert sorted(s.gallery.ids.tolist()) == [0, 1, 3]  # -1 junk dropped, 0 distractor kept
    assert s.gallery.images.shape == (3, 128, 64, 3) and s.gallery.images.dtype == np.uint8
    assert (s.train.attributes == -1).all()  # no .mat given
    assert 0 not in load_market1501(root, drop_distractors=True).gallery.ids


def test_attributes_joined_by_identity(market):
    root, mat, train, test = market
    s = load_market1501(root, attributes_mat=mat)
    names = list(ATTRIBUTES)
    row = s.train.attributes[s.train.ids.tolist().index(7)]  # identity 7 = train index 1
    assert row[names.index("gender")] == train["gender"][0, 1] - 1
    assert row[names.index("sleeve_length")] == train["up"][0, 1] - 1
    assert row[names.index("age")] == train["age"][0, 1] - 1
    assert row[names.index("upper_color")] == 1 % len(UPPER_COLORS)
    assert row[names.index("lower_color")] == -1  # its lower colour flags are all "no"
    q = s.query.attributes[s.query.ids.tolist().index(1)]  # test split, index 0
    assert q[names.index("lower_type")] == test["clothes"][0, 0] - 1
    assert q[names.index("lower_color")] == 0
    distractor = s.gallery.attributes[s.gallery.ids == 0]
    assert (distractor == -1).all()


def test_attribute_tables_cover_both_splits(market):
    _, mat, _, _ = market
    tables = load_market_attributes(mat)
    assert set(tables["train"]) == {2, 7} and set(tables["test"]) == {1, 3}


def test_missing_folder_and_bad_mat(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        load_market1501(tmp_path / "nope")
    bad = tmp_path / "bad.mat"
    scipy.io.savemat(bad, {"something_else": np.zeros(3)})
    with pytest.raises(ModelError, match="attribute file"):
        load_market_attributes(bad)
