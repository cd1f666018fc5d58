"""Synthetic face generator: determinism, shapes, label sanity, rendering follows labels."""

import numpy as np
import pytest

from featurelock.models.synthetic_faces import (FACE_ATTRIBUTES, FACE_IMAGE_SHAPE,
                                                make_face_splits, make_faces)


@pytest.fixture(scope="module")
def faces():
    return make_faces(160, 80, seed=7)


def test_same_seed_same_bytes_other_seed_differs():
    a, b, c = (make_faces(12, 4, seed=s) for s in (1, 1, 2))
    assert np.array_equal(a.images, b.images) and np.array_equal(a.attributes, b.attributes)
    assert not np.array_equal(a.images, c.images)


def test_shapes_ranges_and_per_identity_labels(faces):
    n = len(faces)
    assert faces.images.shape == (n, *FACE_IMAGE_SHAPE) and faces.images.dtype == np.uint8
    assert faces.attributes.shape == (n, len(FACE_ATTRIBUTES))
    for j, (name, classes) in enumerate(FACE_ATTRIBUTES.items()):
        values = faces.attributes[:, j]
        assert values.min() >= 0 and values.max() < classes, name
        assert np.unique(values).size >= 2, name  # every attribute varies across 80 people
    for pid in np.unique(faces.ids):
        rows = faces.attributes[faces.ids == pid]
        assert (rows == rows[0]).all()
    assert not np.array_equal(faces.images[0], faces.images[80])  # same person, new image


def test_labels_are_consistent(faces):
    female, beard = faces.attribute("gender") == 1, faces.attribute("beard")
    assert (beard[female] == 0).all()
    young = faces.attribute("age") == 0
    assert (faces.attribute("hair_style")[young] != 0).all()  # no bald children


def test_sunglasses_darken_the_eye_band(faces):
    """The label is drawn: dark lenses over the eyes, whatever the skin and light."""
    band = faces.images[:, 42:58, 36:76].astype(np.float32).mean(axis=(1, 2, 3))
    shades = faces.attribute("glasses") == 2
    assert shades.sum() >= 5
    assert np.median(band[shades]) < np.median(band[~shades]) - 15


def test_splits_keep_train_and_test_identities_apart():
    s = make_face_splits(seed=0, n_train_ids=6, n_test_ids=5, images_per_id=4)
    assert not set(s.train.ids) & set(s.query.ids) | set(s.gallery.ids) & set(s.train.ids)
    assert set(s.query.ids) == set(s.gallery.ids) == set(range(6, 11))
    with pytest.raises(ValueError, match="images_per_id"):
        make_face_splits(images_per_id=2)
