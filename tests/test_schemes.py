"""The checklist every scheme passes, through the recipe layer and the test vectors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from vector_files import load_vectors

from featurelock.middleware import (SCHEMES, Context, DecryptionError, EncryptionError, Envelope,
                                    FeatureProtector, FeatureReader, Keyset)
from featurelock.middleware.envelope import _seal_envelope_with_nonce

ALL_SCHEMES = list(SCHEMES)
VECTORS = load_vectors("envelopes.json")
V1_VECTORS = load_vectors("envelopes_v1.json")  # written by featurelock 0.1, frozen
SEALED_VECTORS = load_vectors("envelopes_sealed.json")  # HPKE: opened, never re-sealed
JSON_VECTORS = load_vectors("envelopes_json.json")  # the JSON text form (js/test reads them too)
CTX = Context(model="reid-compact", model_version="1", tenant="acme")


def _ctx(fields: list[str]) -> Context:
    return Context(*fields)


def _vector_keyset(vector: dict) -> Keyset:
    """A keyset holding exactly the vector's key, built the way storage.py loads one."""
    import base64

    return Keyset._from_document({"primary": vector["key_id"], "keys": [{
        "id": vector["key_id"], "scheme": vector["scheme"], "status": "enabled", "created": 0,
        "material": base64.b64encode(bytes.fromhex(vector["key"])).decode()}]})


@pytest.mark.parametrize("vector", VECTORS["valid"], ids=lambda v: v["scheme"])
def test_valid_vectors_decrypt_and_reencrypt_identically(vector):
    keyset = _vector_keyset(vector)
    plain = np.array(vector["plaintext"], dtype=np.float32)
    envelope = bytes.fromhex(vector["envelope"])
    out = FeatureReader(keyset).read(envelope, _ctx(vector["context"]))
    assert out.shape == tuple(vector["shape"]) and out.dtype == np.float32
    assert np.array_equal(out, plain)
    cipher = SCHEMES[vector["scheme"]](bytes.fromhex(vector["key"]))
    again = _seal_envelope_with_nonce(cipher, vector["key_id"], plain,
                                      _ctx(vector["context"]).associated_data(),
                                      bytes.fromhex(vector["nonce"]))
    assert bytes(again) == envelope


@pytest.mark.parametrize("vector", V1_VECTORS["valid"], ids=lambda v: v["scheme"])
def test_version_1_envelopes_still_decrypt(vector):
    out = FeatureReader(_vector_keyset(vector)).read(bytes.fromhex(vector["envelope"]),
                                                     _ctx(vector["context"]))
    assert np.array_equal(out, np.array(vector["plaintext"], dtype=np.float32))
    assert Envelope.from_bytes(bytes.fromhex(vector["envelope"])).version == 1


@pytest.mark.parametrize("vector", SEALED_VECTORS["valid"], ids=lambda v: v["scheme"])
def test_sealed_vectors_open_to_the_exact_features(vector):
    out = FeatureReader(_vector_keyset(vector)).read(bytes.fromhex(vector["envelope"]),
                                                     _ctx(vector["context"]))
    assert np.array_equal(out, np.array(vector["plaintext"], dtype=np.float32))


@pytest.mark.parametrize("vector", JSON_VECTORS["valid"], ids=lambda v: v["scheme"])
def test_json_text_vectors_decrypt(vector):
    out = FeatureReader(_vector_keyset(vector)).read(vector["json"], _ctx(vector["context"]))
    assert np.array_equal(out, np.array(vector["plaintext"], dtype=np.float32))


@pytest.mark.parametrize("vector", JSON_VECTORS["invalid"], ids=lambda v: f"{v['scheme']}: {v['why']}")
def test_invalid_json_text_vectors_raise_the_one_opaque_error(vector):
    for form in (vector["json"], vector["json"].encode("utf-8")):
        with pytest.raises(DecryptionError):
            FeatureReader(_vector_keyset(vector)).read(form, _ctx(vector["context"]))


@pytest.mark.parametrize("vector", VECTORS["invalid"] + V1_VECTORS["invalid"] + SEALED_VECTORS["invalid"],
                         ids=lambda v: f"{v['scheme']}: {v['why']}")
def test_invalid_vectors_raise_the_one_opaque_error(vector):
    with pytest.raises(DecryptionError) as info:
        FeatureReader(_vector_keyset(vector)).read(bytes.fromhex(vector["envelope"]),
                                                   _ctx(vector["context"]))
    assert str(info.value) == "decryption failed"
    err = info.value
    assert err.__cause__ is None and (err.__context__ is None or err.__suppress_context__)


@pytest.mark.parametrize("scheme", ALL_SCHEMES)
@given(words=arrays(np.uint32, st.tuples(st.integers(1, 4), st.integers(1, 64)),
                    elements=st.integers(0, 2**32 - 1)))
def test_round_trip_is_bit_exact_on_arbitrary_bit_patterns(scheme, words):
    keyset = _keysets[scheme]
    x = words.view(np.float32)
    out = FeatureReader(keyset).read(FeatureProtector(keyset).protect(x, CTX), CTX)
    assert out.shape == x.shape and np.array_equal(out.view(np.uint32), words)


_keysets = {name: Keyset.generate(name, allow_leaky=True) for name in ALL_SCHEMES}


@pytest.mark.parametrize("scheme", ALL_SCHEMES)
@pytest.mark.parametrize("form", ["binary", "json-text", "json-dict"])
def test_both_envelope_forms_round_trip(scheme, form, rng):
    keyset = _keysets[scheme]
    x = rng.standard_normal((3, 7)).astype(np.float32)
    env = FeatureProtector(keyset).protect(x, CTX)
    message = {"binary": bytes(env), "json-text": Envelope.from_bytes(env).to_json(),
               "json-dict": Envelope.from_bytes(env).to_json_dict()}[form]
    assert np.array_equal(FeatureReader(keyset).read(message, CTX), x)


@pytest.mark.parametrize("scheme", ALL_SCHEMES)
def test_wrong_key_wrong_context_and_wrong_tenant_fail(scheme, rng):
    keyset = _keysets[scheme]
    x = rng.standard_normal(16).astype(np.float32)
    env = bytes(FeatureProtector(keyset).protect(x, CTX))
    for bad in (Context("reid-compact", "1", "other"), Context("reid-compact", "2", "acme"),
                Context("other-model", "1", "acme")):
        with pytest.raises(DecryptionError):
            FeatureReader(keyset).read(env, bad)
    with pytest.raises(DecryptionError):
        FeatureReader(Keyset.generate(scheme, allow_leaky=True)).read(env, CTX)


@pytest.mark.parametrize("scheme", ALL_SCHEMES)
def test_every_single_bit_flip_is_detected(scheme, rng):
    keyset = _keysets[scheme]
    env = bytes(FeatureProtector(keyset).protect(rng.standard_normal(4).astype(np.float32), CTX))
    for i in range(len(env)):
        for bit in (0x01, 0x80):
            bad = bytearray(env)
            bad[i] ^= bit
            with pytest.raises(DecryptionError):
                FeatureReader(keyset).read(bytes(bad), CTX)


@pytest.mark.parametrize("scheme", ["aes-256-gcm", "shufflebits-otp", "shufflebits-masked"])
def test_randomised_schemes_give_fresh_ciphertexts(scheme, rng):
    keyset = _keysets[scheme]
    x = rng.standard_normal(64).astype(np.float32)
    a = Envelope.from_bytes(FeatureProtector(keyset).protect(x, CTX))
    b = Envelope.from_bytes(FeatureProtector(keyset).protect(x, CTX))
    assert a.nonce != b.nonce and bytes(a.payload) != bytes(b.payload)


def test_deterministic_shufflebits_repeats_itself(rng):
    keyset = _keysets["shufflebits"]
    x = rng.standard_normal(64).astype(np.float32)
    a = Envelope.from_bytes(FeatureProtector(keyset).protect(x, CTX))
    b = Envelope.from_bytes(FeatureProtector(keyset).protect(x, CTX))
    assert bytes(a.payload) == bytes(b.payload)


@pytest.mark.parametrize("scheme", ["shufflebits", "shufflebits-otp", "shufflebits-masked"])
def test_shufflebits_family_is_size_preserving_float32(scheme, rng):
    x = rng.standard_normal((5, 9)).astype(np.float32)
    env = Envelope.from_bytes(FeatureProtector(_keysets[scheme]).protect(x, CTX))
    c = np.frombuffer(env.payload, dtype=np.float32).reshape(env.shape)
    assert c.shape == x.shape and c.nbytes == x.nbytes


def test_hamming_weights_leak_through_pure_permutations_but_not_the_mask(rng):
    x = rng.standard_normal(4096).astype(np.float32)
    popcount = lambda a: np.unpackbits(a.view(np.uint8)).reshape(-1, 32).sum(1)  # noqa: E731
    weights = {}
    for scheme in ("shufflebits-otp", "shufflebits-masked"):
        env = Envelope.from_bytes(FeatureProtector(_keysets[scheme]).protect(x, CTX))
        weights[scheme] = popcount(np.frombuffer(env.payload, dtype=np.uint32))
    assert np.array_equal(weights["shufflebits-otp"], popcount(x.view(np.uint32)))
    assert abs(np.corrcoef(weights["shufflebits-masked"], popcount(x.view(np.uint32)))[0, 1]) < 0.1


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_aes_gcm_carries_every_float_dtype(dtype, rng):
    x = rng.standard_normal((2, 3)).astype(dtype)
    out = FeatureReader(_keysets["aes-256-gcm"]).read(
        FeatureProtector(_keysets["aes-256-gcm"]).protect(x, CTX), CTX)
    assert out.dtype == dtype and np.array_equal(out, x)


@pytest.mark.parametrize("scheme", ["shufflebits", "shufflebits-otp", "shufflebits-masked"])
def test_shufflebits_family_refuses_non_float32(scheme):
    with pytest.raises(EncryptionError):
        FeatureProtector(_keysets[scheme]).protect(np.zeros(3, np.float64), CTX)


@pytest.mark.parametrize("bad", [np.zeros(3, np.int32), np.array(["a"]), np.zeros((1,) * 9, np.float32)])
def test_unsupported_features_fail_closed_with_encryption_error(bad):
    with pytest.raises(EncryptionError):
        FeatureProtector(_keysets["aes-256-gcm"]).protect(bad, CTX)


def test_encryption_failure_never_returns_plaintext(monkeypatch, rng):
    keyset = Keyset.generate("aes-256-gcm")
    _, cipher = keyset.encryption_key()

    def broken(*args, **kwargs):
        raise RuntimeError("backend exploded")

    monkeypatch.setattr(cipher, "seal_into", broken)
    with pytest.raises(EncryptionError) as info:
        FeatureProtector(keyset).protect(rng.standard_normal(4).astype(np.float32), CTX)
    assert "exploded" not in str(info.value)


torch = pytest.importorskip("torch")


@pytest.mark.parametrize("scheme", ALL_SCHEMES)
def test_torch_tensors_encrypt_to_the_same_plaintext(scheme, rng):
    keyset = _keysets[scheme]
    x = rng.standard_normal((4, 32)).astype(np.float32)
    env = FeatureProtector(keyset).protect(torch.from_numpy(x), CTX)
    assert np.array_equal(FeatureReader(keyset).read(env, CTX), x)


def test_torch_and_numpy_payloads_are_identical_for_deterministic_shufflebits(rng):
    keyset = _keysets["shufflebits"]
    x = rng.standard_normal((4, 32)).astype(np.float32)
    a, b = (Envelope.from_bytes(FeatureProtector(keyset).protect(f, CTX))
            for f in (torch.from_numpy(x), x))
    assert bytes(a.payload) == bytes(b.payload) and a.nonce != b.nonce


@pytest.mark.parametrize("scheme", ["shufflebits-otp", "shufflebits-masked"])
def test_torch_and_numpy_agree_under_a_pinned_nonce(scheme, rng):
    cipher = SCHEMES[scheme](SCHEMES[scheme].generate_key())
    x = rng.standard_normal((3, 50)).astype(np.float32)
    nonce = bytes(range(cipher.nonce_size))
    a = _seal_envelope_with_nonce(cipher, 7, x, b"ctx", nonce)
    b = _seal_envelope_with_nonce(cipher, 7, torch.from_numpy(x), b"ctx", nonce)
    assert bytes(a) == bytes(b)


@pytest.mark.gpu
@pytest.mark.parametrize("scheme", ALL_SCHEMES)
def test_cuda_tensors_encrypt_on_device(scheme, rng):
    keyset = _keysets[scheme]
    x = rng.standard_normal((64, 2048)).astype(np.float32)
    env = FeatureProtector(keyset).protect(torch.from_numpy(x).cuda(), CTX)
    assert np.array_equal(FeatureReader(keyset).read(env, CTX), x)


@pytest.mark.parametrize("scheme", ["shufflebits", "shufflebits-otp"])
def test_the_accelerator_path_gives_the_numpy_result(scheme, rng):
    """CUDA tensors go through the torch network; run that same code on CPU here."""
    from featurelock.middleware._bitperm_torch import float32_words, permute_words

    cipher = SCHEMES[scheme](SCHEMES[scheme].generate_key())
    x = rng.standard_normal((3, 70)).astype(np.float32)
    network = cipher._network(bytes(range(cipher.nonce_size)))
    on_device = permute_words(float32_words(torch.from_numpy(x)).reshape(-1), network)
    assert np.array_equal(on_device.numpy().view(np.uint32), network.apply(x.reshape(-1).view(np.uint32)))
