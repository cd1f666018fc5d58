"""Synthetic pedestrian generator: determinism, shapes, label sanity, Market-style splits."""

import numpy as np
import pytest

from featurelock.models.synthetic import (ATTRIBUTES, IMAGE_SHAPE, make_pedestrians,
                                          make_splits)


@pytest.fixture(scope="module")
def splits():
    return make_splits(seed=3, n_train_ids=20, n_test_ids=10, images_per_id=8)


def test_same_seed_same_bytes_other_seed_differs():
    a = make_pedestrians(40, 10, seed=1)
    b = make_pedestrians(40, 10, seed=1)
    c = make_pedestrians(40, 10, seed=2)
    assert np.array_equal(a.images, b.images)
    assert np.array_equal(a.attributes, b.attributes)
    assert not np.array_equal(a.images, c.images)


def test_shapes_and_dtypes(splits):
    for part in (splits.train, splits.query, splits.gallery):
        n = len(part)
        assert part.images.shape == (n, *IMAGE_SHAPE) and part.images.dtype == np.uint8
        assert part.ids.shape == part.cams.shape == (n,)
        assert part.attributes.shape == (n, len(ATTRIBUTES))
        assert part.attribute_names == tuple(ATTRIBUTES)


def test_attribute_values_within_their_class_counts(splits):
    attrs = splits.train.attributes
    for j, (name, n_classes) in enumerate(ATTRIBUTES.items()):
        assert attrs[:, j].min() >= 0 and attrs[:, j].max() < n_classes, name


def test_attributes_are_per_identity(splits):
    # Every image of an identity carries that identity's labels.
    part = splits.train
    for pid in np.unique(part.ids):
        rows = part.attributes[part.ids == pid]
        assert (rows == rows[0]).all()


def test_attributes_vary_across_identities():
    data = make_pedestrians(300, 300, seed=0)
    for name in ATTRIBUTES:
        assert len(np.unique(data.attribute(name))) >= 2, name


def test_images_of_an_identity_vary_but_are_closer_than_strangers():
    data = make_pedestrians(400, 40, seed=5)
    x = data.images.reshape(len(data), -1).astype(np.float32)
    assert not np.array_equal(data.images[0], data.images[40])  # same id, different image
    # Mean colour of the central body region is closer within than across identities.
    body = data.images[:, 30:100, 20:44].reshape(len(data), -1, 3).mean(1)
    d = np.linalg.norm(body[:, None] - body[None], axis=2)
    same = data.ids[:, None] == data.ids[None]
    np.fill_diagonal(same, False)
    assert d[same].mean() < 0.85 * d[~same].mean()
    assert x.std() > 20  # not blank


def test_split_identities_disjoint_and_query_gallery_shared(splits):
    train_ids = set(splits.train.ids.tolist())
    query_ids = set(splits.query.ids.tolist())
    gallery_ids = set(splits.gallery.ids.tolist())
    assert train_ids.isdisjoint(query_ids | gallery_ids)
    assert query_ids == gallery_ids
    assert len(train_ids) == 20 and len(query_ids) == 10


def test_query_has_one_image_per_identity_and_camera(splits):
    pairs = list(zip(splits.query.ids.tolist(), splits.query.cams.tolist()))
    assert len(pairs) == len(set(pairs))
    # Every query has a true match from another camera in the gallery (Market protocol).
    for pid, cam in pairs:
        other = (splits.gallery.ids == pid) & (splits.gallery.cams != cam)
        assert other.any()


def test_invalid_arguments_are_rejected():
    with pytest.raises(ValueError, match="n_ids"):
        make_pedestrians(10, 0)
    with pytest.raises(ValueError, match="images_per_id"):
        make_splits(images_per_id=2)


def test_fast_enough():
    import time
    start = time.perf_counter()
    make_pedestrians(1000, 100, seed=0)
    assert time.perf_counter() - start < 10  # ~1 s on one idle core
