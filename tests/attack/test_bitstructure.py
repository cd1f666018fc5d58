"""The ciphertext-only structure attack: from shufflebits ciphertexts alone it finds the sign
and exponent positions, decodes the features and links the victims; on plaintext it finds the
identity layout; on random or AES words it is never confident and never returns NaN/inf."""

import json

import numpy as np
import pytest

from featurelock.attack_harness.bitstructure import (
    BitLayout, decode, infer_layout, true_layout)
from featurelock.attack_harness.data import synthetic_data
from featurelock.attack_harness.metrics import rank1_hits
from featurelock.attack_harness.reference import ZooEvaluator
from featurelock.attack_harness.representations import payload_words
from featurelock.middleware import Context, FeatureProtector, Keyset, ShuffleBits

KEYS = (0, 3, 11, 2024)


@pytest.fixture(scope="module")
def victims():
    """The default re-ID model's features of 160 synthetic victims (40 identities)."""
    data = synthetic_data(8, 40, 4, seed=0)
    return data, ZooEvaluator().embed(data.victim_images)


def _exponents(words: np.ndarray, positions) -> np.ndarray:
    return sum(((words >> np.uint32(31 - p)) & 1).astype(np.int64) << (7 - j)
               for j, p in enumerate(positions))


def _rank1(data, features: np.ndarray) -> tuple[float, float]:
    x = features.astype(np.float64)
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-300)
    q = data.victim_is_query
    hits, chance, valid = rank1_hits(x[q], data.victim_ids[q], data.victim_cams[q], x[~q],
                                     data.victim_ids[~q], data.victim_cams[~q])
    return float(hits[valid].mean()), float(chance[valid].mean())


def _check_layout(layout: BitLayout, words: np.ndarray, truth: BitLayout,
                  features: np.ndarray) -> None:
    assert layout.confident, layout
    assert layout.sign == truth.sign
    # Exponent positions that never change in these messages may come in any order: what
    # must hold is that every word decodes to its true exponent.
    assert np.array_equal(_exponents(words, layout.exponent), _exponents(words, truth.exponent))
    assert layout.mantissa[:4] == truth.mantissa[:4]
    decoded = decode(words, layout)
    assert np.corrcoef(decoded.ravel(), features.ravel())[0, 1] > 0.9999
    assert np.allclose(decoded, features, rtol=2.0 ** -8, atol=0)


@pytest.mark.parametrize("seed", KEYS)
def test_recovers_the_layout_of_random_keys(victims, seed):
    _, features = victims
    perm = np.random.default_rng(seed).permutation(32)
    words = ShuffleBits(perm).encrypt_array(features).view(np.uint32)
    _check_layout(infer_layout(words), words, true_layout(perm), features)


def test_decoded_victims_are_as_linkable_as_plaintext(victims):
    data, features = victims
    perm = np.random.default_rng(5).permutation(32)
    words = ShuffleBits(perm).encrypt_array(features).view(np.uint32)
    plain, chance = _rank1(data, features)
    decoded, _ = _rank1(data, decode(words, infer_layout(words)))
    assert plain > 10 * chance  # the model links these victims at all
    assert decoded >= plain - 0.02
    # The ciphertext read as floats, as a naive attacker would, links far less.
    as_floats = np.nan_to_num(words.view(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    assert _rank1(data, as_floats)[0] < decoded - 0.2


def test_a_few_messages_suffice_to_decode_all(victims):
    _, features = victims
    perm = np.random.default_rng(9).permutation(32)
    words = ShuffleBits(perm).encrypt_array(features).view(np.uint32)
    layout = infer_layout(words[::5])  # 32 messages
    assert layout.messages == 32
    _check_layout(layout, words, true_layout(perm), features)
    assert np.array_equal(decode(words[:1], layout), decode(words, layout)[:1])


def test_shufflebits_envelopes_from_the_wire(victims):
    _, features = victims
    protector = FeatureProtector(Keyset.generate("shufflebits", allow_leaky=True))
    responses = [bytes(protector.protect(f[None], Context("m"))) for f in features]
    words = payload_words(responses)
    layout = infer_layout(words)
    assert layout.confident
    assert np.corrcoef(decode(words, layout).ravel(), features.ravel())[0, 1] > 0.9999


def test_plaintext_words_give_the_identity_layout(victims):
    _, features = victims
    words = features.view(np.uint32)
    layout = infer_layout(words)
    _check_layout(layout, words, true_layout(np.arange(32)), features)
    assert set(layout.exponent) == set(range(1, 9)) and layout.mantissa == tuple(range(9, 17))


def test_non_negative_features_have_a_constant_sign(victims):
    _, features = victims
    positive = np.abs(features)
    positive /= np.linalg.norm(positive, axis=1, keepdims=True)
    perm = np.random.default_rng(4).permutation(32)
    words = ShuffleBits(perm).encrypt_array(positive).view(np.uint32)
    layout = infer_layout(words)
    assert layout.confident and layout.sign_evidence == np.inf
    assert ((words >> np.uint32(31 - layout.sign)) & 1).max() == 0  # the sign, or a twin
    assert np.allclose(decode(words, layout), positive, rtol=2.0 ** -8, atol=0)
    assert json.dumps(layout.to_dict(), allow_nan=False)


@pytest.mark.parametrize("source", ["random", "aes-256-gcm", "shufflebits-masked"])
def test_random_words_give_no_confident_layout(victims, source):
    _, features = victims
    features = features[:48]
    if source == "random":
        words = np.random.default_rng(1).integers(0, 2**32, features.shape, dtype=np.uint64)
        words = words.astype(np.uint32)
        words[0, :6] = [0x7FC00001, 0xFFFFFFFF, 0x7F800000, 0xFF800000, 0, 0x80000000]
    else:
        protector = FeatureProtector(Keyset.generate(source, allow_leaky=True))
        words = payload_words([bytes(protector.protect(f[None], Context("m")))
                               for f in features])
    assert words.shape == features.shape
    layout = infer_layout(words)
    assert not layout.confident
    assert layout.norm_error > 1.0 and layout.sign_evidence < 8
    decoded = decode(words, layout)
    assert decoded.dtype == np.float32 and np.isfinite(decoded).all()
    assert abs(np.corrcoef(decoded.ravel().astype(np.float64), features.ravel())[0, 1]) < 0.2


def test_too_few_messages_are_never_confident(victims):
    _, features = victims
    words = ShuffleBits(np.random.default_rng(2).permutation(32)).encrypt_array(
        features[:4]).view(np.uint32)
    layout = infer_layout(words)
    assert layout.messages == 4 and not layout.confident


def test_rejects_bad_input():
    with pytest.raises(TypeError, match="uint32"):
        infer_layout(np.zeros((4, 8), np.float32))
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        infer_layout(np.zeros(8, np.uint32))
    with pytest.raises(ValueError, match="n_mantissa"):
        infer_layout(np.zeros((4, 8), np.uint32), n_mantissa=24)
    with pytest.raises(ValueError, match="norm"):
        infer_layout(np.zeros((4, 8), np.uint32), norm=0.0)
