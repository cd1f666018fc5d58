"""The disguise transform and its keys: round trips, wrong keys, determinism, key handling."""

from __future__ import annotations

import os

import numpy as np
import pytest

from featurelock.middleware import DisguiseError, DisguiseSpec, Keyset, KeysetError, KeyStoreError
from featurelock.middleware.disguise import Disguiser
from featurelock.middleware.registry import KeyRegistry, check_server_keyset
from featurelock.middleware.kek import LocalKek
from featurelock.middleware.storage import unwrap_keyset, wrap_keyset

SPECS = [DisguiseSpec(32, 16, 3, 4, "rmt"), DisguiseSpec(32, 16, 3, 4, "rmt", shared=True),
         DisguiseSpec(32, 16, 3, 4, "aes"), DisguiseSpec(32, 16, 3, 4, "shuffle"),
         DisguiseSpec(28, 28, 1, 4, "aes"), DisguiseSpec(28, 28, 1, 7, "rmt")]


def _images(spec: DisguiseSpec, n: int = 6, seed: int = 0) -> np.ndarray:
    # Smooth images in mid-range: RMT output of natural-looking blocks rarely clips.
    rng = np.random.default_rng(seed)
    base = rng.uniform(60, 190, (n, 1, 1, spec.channels))
    ramp = np.linspace(-30, 30, spec.width)[None, None, :, None]
    return np.clip(base + ramp + rng.normal(0, 8, (n, *spec.shape)), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def keyset() -> Keyset:
    return Keyset.generate("disguise")


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s.variant}-{s.block}-{s.channels}{'-shared' if s.shared else ''}")
def test_round_trip_where_invertible(keyset, spec):
    x = _images(spec)
    d = keyset.disguiser(spec)
    y = d.disguise(x)
    assert y.shape == x.shape and y.dtype == np.uint8
    assert not np.array_equal(y, x)
    back = d.undisguise(y)
    if spec.variant == "rmt":  # quantisation of y to bytes: under one grey level on average
        err = np.abs(back.astype(int) - x)
        assert err.mean() < 1.0 and err.max() <= 6
    else:
        assert np.array_equal(back, x)


@pytest.mark.parametrize("spec", SPECS[:3], ids=lambda s: s.variant)
def test_wrong_key_does_not_undisguise(keyset, spec):
    x = _images(spec)
    y = keyset.disguiser(spec).disguise(x)
    wrong = Keyset.generate("disguise").disguiser(spec).undisguise(y)
    # Unrelated to the original: far worse than quantisation, near the error of a random guess.
    assert np.abs(wrong.astype(int) - x).mean() > 20


def test_deterministic_for_the_key_except_noise(keyset):
    spec = DisguiseSpec(32, 16, 3, 4, "rmt")
    x = _images(spec)
    assert np.array_equal(keyset.disguiser(spec).disguise(x), keyset.disguiser(spec).disguise(x))
    noisy = keyset.disguiser(spec.with_(noise=0.1))
    a, b = noisy.disguise(x), noisy.disguise(x)
    assert not np.array_equal(a, b)  # fresh noise per image
    pinned = noisy._disguise(x, np.random.default_rng(5)), noisy._disguise(x, np.random.default_rng(5))
    assert np.array_equal(*pinned)
    # The spec is part of the derivation: another block size gives another permutation.
    other = keyset.disguiser(spec.with_(variant="shuffle"))
    assert not np.array_equal(other.disguise(x), keyset.disguiser(spec.with_(block=8, variant="shuffle")).disguise(x))


def test_aes_equal_blocks_at_one_position_are_equal_ciphertext(keyset):
    # Documented ECB-like behaviour (codebook leak): equal inputs, equal outputs, per position.
    spec = DisguiseSpec(32, 16, 3, 4, "aes")
    x = np.full((2, *spec.shape), 100, np.uint8)
    x[1, :4, :4] = 7  # one block differs
    y = keyset.disguiser(spec).disguise(x)
    differs = (y[0] != y[1]).reshape(8, 4, 4, 4, 3).any(axis=(1, 3, 4))
    assert differs.sum() == 1


def test_spec_validation_names_the_rule():
    with pytest.raises(ValueError, match="block must divide"):
        DisguiseSpec(30, 16, 3, 4)
    with pytest.raises(ValueError, match="multiple of 16"):
        DisguiseSpec(28, 28, 1, 2, "aes")
    with pytest.raises(ValueError, match="only to the rmt"):
        DisguiseSpec(32, 16, 3, 4, "aes", noise=0.1)
    with pytest.raises(TypeError, match="block must be an int"):
        DisguiseSpec(32, 16, 3, 4.0)
    assert DisguiseSpec.from_dict(SPECS[1].to_dict()) == SPECS[1]


def test_wrong_shape_is_a_disguise_error(keyset):
    with pytest.raises(DisguiseError, match=r"\(32, 16, 3\)"):
        keyset.disguiser(SPECS[0]).disguise(np.zeros((2, 16, 16, 3), np.uint8))


def test_disguise_keys_cannot_encrypt_features_nor_mix(keyset):
    with pytest.raises(KeysetError, match="cannot encrypt"):
        keyset.encryption_key()
    with pytest.raises(KeysetError, match="one purpose"):
        keyset.add("aes-256-gcm")
    features = Keyset.generate()
    with pytest.raises(KeysetError, match="not a disguise key"):
        features.disguiser(SPECS[0])


def test_rotation_and_storage_keep_the_disguise(tmp_path):
    ks = Keyset.generate("disguise")
    old = ks.primary_id
    x = _images(SPECS[2])
    y_old = ks.disguiser(SPECS[2]).disguise(x)
    new = ks.add(make_primary=True)
    kek = LocalKek(os.urandom(32), "test:")
    again = unwrap_keyset(wrap_keyset(ks, kek, "owner"), kek, "owner")
    assert again.primary_id == new
    assert np.array_equal(again.disguiser(SPECS[2], key_id=old).undisguise(y_old), x)
    assert not np.array_equal(again.disguiser(SPECS[2]).disguise(x), y_old)
    ks.disable(old)
    with pytest.raises(KeysetError, match="disabled"):
        ks.disguiser(SPECS[2], key_id=old)


def test_server_registry_refuses_disguise_keys(tmp_path, keyset):
    with pytest.raises(KeyStoreError, match="data owner"):
        check_server_keyset(keyset, "owner")
    registry = KeyRegistry(tmp_path, None, allow_cleartext=True)
    with pytest.raises(KeyStoreError, match="data owner"):
        registry.create("owner", "disguise")


def test_no_key_bytes_in_reprs_or_errors(keyset):
    material = keyset._keys[keyset.primary_id].material
    d = keyset.disguiser(SPECS[0])
    texts = [repr(d), str(d), repr(keyset)]
    try:
        d.disguise(np.zeros((1, 8, 8, 3), np.uint8))
    except DisguiseError as exc:
        texts.append(str(exc))
    for text in texts:
        assert material.hex() not in text and str(list(material[:4])) not in text
    assert d.fingerprint.startswith("dk:") and material.hex()[:16] not in d.fingerprint
    with pytest.raises(TypeError):
        import pickle
        pickle.dumps(d)
