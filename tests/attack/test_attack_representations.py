"""Representations of responses: bit-exact bits, sanitised floats, popcounts, raw bytes."""

import numpy as np
import pytest

from featurelock.attack_harness.representations import (
    REPRESENTATIONS, bits_view, bytes_view, float_view, hamming_view, payload_words, represent,
    words_from_bits)
from featurelock.middleware import Context, FeatureProtector, Keyset, ShuffleBits

SPECIAL = np.array([0x7FC00001, 0xFFC12345, 0x7F800000, 0xFF800000, 0x80000000, 0x00000001,
                    0x3F800000, 0xBF800000], dtype=np.uint32)  # NaNs, +-inf, -0, subnormal, +-1


def test_bits_are_msb_first_and_bit_exact(rng):
    words = rng.integers(0, 2**32, (5, 7), dtype=np.uint64).astype(np.uint32)
    words[0, : SPECIAL.size] = SPECIAL[:7]
    bits = bits_view(words)
    assert bits.shape == (5, 7 * 32) and set(np.unique(bits)) <= {0, 1}
    assert np.array_equal(words_from_bits(bits), words)
    one = bits_view(np.array([[0x80000001]], dtype=np.uint32))[0]
    assert one[0] == 1 and one[31] == 1 and one[1:31].sum() == 0  # index 0 is the sign bit


def test_bits_match_the_shufflebits_convention():
    # Output bit i of ShuffleBits is input bit perm[i], MSB-first: the bits view must agree.
    perm = np.roll(np.arange(32), 3)
    x = np.array([[0.375, -1.5e-3, 7.0]], dtype=np.float32)
    c = ShuffleBits(perm).encrypt_array(x)
    assert np.array_equal(bits_view(c.view(np.uint32)), bits_view(x.view(np.uint32))[:, np.r_[
        [perm + 32 * k for k in range(3)]].reshape(-1)])


def test_float_view_sanitises_nan_and_inf():
    f = float_view(SPECIAL[None, :])
    assert np.isfinite(f).all()
    assert f[0, 0] == 0 and f[0, 1] == 0  # NaN payloads -> 0
    assert f[0, 2] == np.finfo(np.float32).max and f[0, 3] == -np.finfo(np.float32).max
    assert f[0, 6] == 1.0 and f[0, 7] == -1.0


def test_hamming_is_popcount():
    h = hamming_view(SPECIAL[None, :])[0]
    assert h.tolist() == [bin(int(w)).count("1") for w in SPECIAL]


def test_envelopes_expose_payload_and_raw_bytes(rng):
    feats = rng.standard_normal((1, 16)).astype(np.float32)
    env = bytes(FeatureProtector(Keyset.generate("shufflebits", shufflebits_seed=0,
                                                     allow_leaky=True)).protect(
        feats, Context("m")))
    words = payload_words([env])
    assert words.shape == (1, 16)
    assert np.array_equal(words[0].view(np.float32), ShuffleBits.from_seed(0).encrypt_array(feats)[0])
    assert np.array_equal(bytes_view([env])[0], np.frombuffer(env, np.uint8))
    # Plaintext responses: the payload is the float32 bytes themselves.
    assert np.array_equal(payload_words([feats[0]]), feats.view(np.uint32))
    assert bytes_view([feats[0]]).shape == (1, 64)


def test_aes_payload_is_the_same_size_as_the_features(rng):
    feats = rng.standard_normal((1, 16)).astype(np.float32)
    env = bytes(FeatureProtector(Keyset.generate("aes-256-gcm")).protect(feats, Context("m")))
    assert payload_words([env]).shape == (1, 16)


def test_represent_shapes_and_unknown_name(rng):
    resp = [rng.standard_normal(8).astype(np.float32) for _ in range(3)]
    dims = {name: represent(resp, name).shape for name in REPRESENTATIONS}
    assert dims == {"float": (3, 8), "bits": (3, 256), "hamming": (3, 8), "bytes": (3, 32),
                    "structure": (3, 8), "columns": (3, 256), "recovered": (3, 8)}
    assert all(represent(resp, n).dtype == np.float32 for n in REPRESENTATIONS)
    with pytest.raises(ValueError, match="unknown representation"):
        represent(resp, "pixels")


def test_column_similarity_ignores_a_fresh_bit_permutation_per_message(rng):
    from featurelock.attack_harness.representations import column_similarity, columns_view
    from featurelock.middleware import ShuffleBits

    feats = rng.standard_normal((6, 64)).astype(np.float32)
    words = feats.view(np.uint32)
    permuted = np.stack([ShuffleBits(rng.permutation(32)).encrypt_array(f).view(np.uint32)
                         for f in feats])
    plain = column_similarity(columns_view(words), columns_view(words))
    mixed = column_similarity(columns_view(permuted), columns_view(words))
    # Each message's columns are all still there: self-similarity stays maximal (1) ...
    assert np.allclose(np.diag(mixed), 1.0, atol=1e-5) and np.allclose(np.diag(plain), 1.0, atol=1e-5)
    # ... while different messages correlate far less.
    assert (mixed[~np.eye(6, dtype=bool)] < 0.9).all()
