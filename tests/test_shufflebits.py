"""ShuffleBits (raw layer): bit-compatible with the authors' reference algorithm."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from vector_files import load_vectors
from reference_shufflebits import encrypt_words, seed_permutation

from featurelock.middleware import ShuffleBits

VECTORS = load_vectors("shufflebits_reference.json")["cases"]


def _words(hexes: list[str]) -> np.ndarray:
    return np.array([int(h, 16) for h in hexes], dtype=np.uint32)


@pytest.mark.parametrize("case", VECTORS, ids=lambda c: f"seed{c['seed']}")
def test_from_seed_matches_reference_vectors(case):
    cipher = ShuffleBits.from_seed(case["seed"])
    assert list(cipher.permutation_bytes()) == case["perm"]
    plain = _words(case["plaintext"]).view(np.float32)
    expected = _words(case["ciphertext"])
    assert np.array_equal(cipher.encrypt_array(plain).view(np.uint32), expected)
    assert np.array_equal(cipher.decrypt_array(expected.view(np.float32)).view(np.uint32),
                          plain.view(np.uint32))


def test_seed_zero_is_the_reference_default_permutation():
    perm = np.arange(32)
    np.random.default_rng(0).shuffle(perm)
    assert list(ShuffleBits.from_seed(0).permutation_bytes()) == perm.tolist()
    assert list(ShuffleBits.from_seed().permutation_bytes()) == perm.tolist()


u32 = st.integers(0, 2**32 - 1)


@given(words=arrays(np.uint32, st.integers(1, 300), elements=u32), seed=st.integers(0, 2**16))
def test_matches_reference_on_arbitrary_bit_patterns(words, seed):
    cipher = ShuffleBits.from_seed(seed)
    out = cipher.encrypt_array(words.view(np.float32)).view(np.uint32)
    assert np.array_equal(out, encrypt_words(words, seed_permutation(seed)))


@given(words=arrays(np.uint32, st.tuples(st.integers(0, 5), st.integers(0, 40)), elements=u32))
def test_round_trip_is_bit_exact_for_any_shape(words):
    cipher = ShuffleBits.generate()
    x = words.view(np.float32)
    c = cipher.encrypt_array(x)
    assert c.shape == x.shape and c.dtype == np.float32
    assert np.array_equal(cipher.decrypt_array(c).view(np.uint32), words)


def test_large_arrays_take_the_wide_table_path_and_stay_exact(rng):
    words = rng.integers(0, 2**32, size=(64, 2048), dtype=np.uint64).astype(np.uint32)
    cipher = ShuffleBits.from_seed(3)
    out = cipher.encrypt_array(words.view(np.float32)).view(np.uint32)
    sample = rng.choice(words.size, 500, replace=False)
    assert np.array_equal(out.ravel()[sample], encrypt_words(words.ravel()[sample], seed_permutation(3)))
    assert np.array_equal(cipher.decrypt_array(out.view(np.float32)).view(np.uint32), words)


def test_special_values_survive_bit_exactly():
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -1e-45, 3.4e38],
                       dtype=np.float32)
    special = np.concatenate([special, np.array([0x7FA5A5A5, 0xFFC00001], np.uint32).view(np.float32)])
    cipher = ShuffleBits.from_seed(0)
    back = cipher.decrypt_array(cipher.encrypt_array(special))
    assert np.array_equal(back.view(np.uint32), special.view(np.uint32))


def test_deterministic_by_design():
    cipher = ShuffleBits.from_seed(0)
    x = np.linspace(-1, 1, 64, dtype=np.float32)
    assert np.array_equal(cipher.encrypt_array(x).view(np.uint32),
                          cipher.encrypt_array(x.copy()).view(np.uint32))


def test_seed_zero_ciphertexts_are_mostly_negative_as_the_research_note_says(rng):
    # Output sign bit = input bit 2 (an exponent bit) for seed 0: ~99% negative for |x| < 2.
    x = rng.uniform(-1, 1, 10000).astype(np.float32)
    c = ShuffleBits.from_seed(0).encrypt_array(x)
    assert np.mean(np.signbit(c)) > 0.95


@pytest.mark.parametrize("perm, error", [
    (list(range(31)), ValueError), (list(range(31)) + [0], ValueError),
    ([0.5] * 32, ValueError), (list(range(1, 33)), ValueError)])
def test_invalid_permutations_are_refused(perm, error):
    with pytest.raises(error):
        ShuffleBits(perm)


def test_only_float32_arrays_are_accepted():
    cipher = ShuffleBits.from_seed(0)
    with pytest.raises(TypeError):
        cipher.encrypt_array(np.zeros(4, dtype=np.float64))
    with pytest.raises(TypeError):
        cipher.encrypt_array([1.0, 2.0])


def test_key_is_not_printable_or_picklable():
    import pickle

    cipher = ShuffleBits.from_seed(0)
    assert "secret" in repr(cipher)
    assert str(list(cipher.permutation_bytes())) not in repr(cipher)
    with pytest.raises(TypeError):
        pickle.dumps(cipher)
