"""Keysets: statuses, rotation, rewrap, and keysets at rest under env/file KEKs."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from featurelock.middleware import (Context, DecryptionError, FeatureProtector, FeatureReader,
                                    Keyset, KeysetError, KeyStatus, KeyStoreError, LocalKek,
                                    generate_kek_material, kek_from_uri, load_keyset, rewrap,
                                    save_keyset)
from featurelock.middleware.envelope import Envelope
from featurelock.middleware.registry import KeyRegistry
from featurelock.middleware.schemes import SCHEMES, leaky_schemes, scheme_leak

CTX = Context("reid", "1", "acme")


@pytest.fixture
def features(rng):
    return rng.standard_normal((3, 8)).astype(np.float32)


def test_a_new_keyset_has_one_enabled_primary():
    keyset = Keyset.generate()
    [info] = keyset.info()
    assert info.primary and info.status is KeyStatus.ENABLED and info.scheme == "aes-256-gcm"
    assert info.key_id == keyset.primary_id


def test_rotation_without_downtime(features):
    keyset = Keyset.generate("shufflebits", allow_leaky=True)
    old_id = keyset.primary_id
    old_env = bytes(FeatureProtector(keyset).protect(features, CTX))
    new_id = keyset.add("aes-256-gcm")
    assert keyset.primary_id == old_id  # adding does not switch encryption yet
    keyset.promote(new_id)
    new_env = FeatureProtector(keyset).protect(features, CTX)
    assert Envelope.from_bytes(new_env).key_id == new_id
    reader = FeatureReader(keyset)
    assert np.array_equal(reader.read(old_env, CTX), features)  # old data still readable
    rewrapped = rewrap(keyset, old_env, CTX)
    assert Envelope.from_bytes(rewrapped).key_id == new_id
    keyset.disable(old_id)
    with pytest.raises(DecryptionError):
        reader.read(old_env, CTX)
    assert np.array_equal(reader.read(rewrapped, CTX), features)
    keyset.enable(old_id)
    assert np.array_equal(reader.read(old_env, CTX), features)
    keyset.destroy(old_id)
    with pytest.raises(DecryptionError):
        reader.read(old_env, CTX)
    with pytest.raises(KeysetError):
        keyset.enable(old_id)


def test_the_primary_cannot_be_disabled_or_destroyed():
    keyset = Keyset.generate()
    for action in (keyset.disable, keyset.destroy):
        with pytest.raises(KeysetError, match="primary"):
            action(keyset.primary_id)


def test_only_enabled_keys_can_be_promoted():
    keyset = Keyset.generate()
    other = keyset.add()
    keyset.disable(other)
    with pytest.raises(KeysetError, match="disabled"):
        keyset.promote(other)


def test_unknown_key_ids_are_keyset_errors():
    with pytest.raises(KeysetError, match="no key with id"):
        Keyset.generate().promote(42)


def test_unknown_scheme_is_refused():
    with pytest.raises(ValueError, match="unknown scheme"):
        Keyset.generate("rot13")


# -- leaky schemes ---------------------------------------------------------------------------
LEAKY = ["shufflebits", "shufflebits-otp"]


def test_exactly_the_measured_leaky_schemes_declare_a_leak():
    assert sorted(leaky_schemes()) == LEAKY
    for name, cls in SCHEMES.items():
        assert isinstance(cls.leaks, str) and scheme_leak(name) == cls.leaks
        assert bool(cls.leaks) == (name in LEAKY)
    assert "bit column" in scheme_leak("shufflebits-otp")
    assert "deterministic" in scheme_leak("shufflebits")


@pytest.mark.parametrize("scheme", LEAKY)
def test_leaky_schemes_are_refused_without_allow_leaky(scheme):
    with pytest.raises(KeysetError) as info:
        Keyset.generate(scheme)
    message = str(info.value)
    assert scheme in message and scheme_leak(scheme) in message
    assert "allow_leaky=True" in message and "--allow-leaky-scheme" in message
    keyset = Keyset.generate()
    with pytest.raises(KeysetError, match="allow_leaky=True"):
        keyset.add(scheme, make_primary=True)
    assert len(keyset.info()) == 1 and keyset.info()[0].scheme == "aes-256-gcm"  # nothing added


@pytest.mark.parametrize("scheme", LEAKY)
def test_leaky_schemes_with_allow_leaky(scheme, features):
    keyset = Keyset.generate(scheme, allow_leaky=True)
    with pytest.raises(KeysetError, match="allow_leaky"):
        keyset.add()  # the default is the primary's scheme: still leaky, still refused
    keyset.add(allow_leaky=True)
    other = Keyset.generate()
    other.promote(other.add(scheme, allow_leaky=True))
    assert [k.scheme for k in keyset.info()] == [scheme, scheme]
    env = FeatureProtector(other).protect(features, CTX)
    assert Envelope.from_bytes(env).scheme == scheme


def test_registry_create_passes_allow_leaky_through(tmp_path, env_kek):
    registry = KeyRegistry(tmp_path, env_kek)
    with pytest.raises(KeysetError, match="shufflebits-otp"):
        registry.create("acme", "shufflebits-otp")
    assert not registry.path("acme").exists()
    registry.create("acme", "shufflebits-otp", allow_leaky=True)
    assert KeyRegistry(tmp_path, env_kek).keyset("acme").info()[0].scheme == "shufflebits-otp"


@pytest.mark.parametrize("scheme", LEAKY)
def test_a_stored_leaky_keyset_loads_and_rotates_away_without_the_flag(scheme, tmp_path, env_kek,
                                                                     features):
    path = tmp_path / "acme.keyset.json"
    leaky = Keyset.generate(scheme, allow_leaky=True)
    old_env = bytes(FeatureProtector(leaky).protect(features, CTX))
    save_keyset(path, leaky, env_kek, "acme")
    keyset = load_keyset(path, env_kek, "acme")  # no flag on load
    old_id = keyset.primary_id
    keyset.promote(keyset.add("aes-256-gcm"))
    rewrapped = rewrap(keyset, old_env, CTX)
    keyset.disable(old_id)
    keyset.destroy(old_id)
    save_keyset(path, keyset, env_kek, "acme")
    again = load_keyset(path, env_kek, "acme")
    assert np.array_equal(FeatureReader(again).read(rewrapped, CTX), features)
    assert {(k.scheme, k.status) for k in again.info()} == {
        (scheme, KeyStatus.DESTROYED), ("aes-256-gcm", KeyStatus.ENABLED)}


def test_rewrap_never_hands_back_plaintext(features):
    keyset = Keyset.generate()
    env = FeatureProtector(keyset).protect(features, CTX)
    keyset.promote(keyset.add("shufflebits-masked"))
    out = rewrap(keyset, env, CTX)
    assert isinstance(out, (bytes, bytearray))
    assert features.tobytes() not in bytes(out)
    assert Envelope.from_bytes(out).scheme == "shufflebits-masked"


def test_rewrap_of_a_tampered_envelope_fails_opaquely(features):
    keyset = Keyset.generate()
    env = bytearray(FeatureProtector(keyset).protect(features, CTX))
    env[-1] ^= 1
    with pytest.raises(DecryptionError):
        rewrap(keyset, bytes(env), CTX)


def test_keysets_refuse_pickling_and_hide_material():
    keyset = Keyset.generate("shufflebits", allow_leaky=True)
    with pytest.raises(TypeError):
        pickle.dumps(keyset)
    _, cipher = keyset.encryption_key()
    with pytest.raises(TypeError):
        pickle.dumps(cipher)
    material = keyset._keys[keyset.primary_id].material
    for text in (repr(keyset), str(keyset), repr(cipher), repr(keyset.info())):
        assert material.hex() not in text and repr(material) not in text


# -- at rest --------------------------------------------------------------------------------
@pytest.fixture
def env_kek(monkeypatch):
    monkeypatch.setenv("TEST_FEATURELOCK_KEK", generate_kek_material())
    return kek_from_uri("env:TEST_FEATURELOCK_KEK")


def test_save_and_load_under_an_env_kek(tmp_path, env_kek, features):
    keyset = Keyset.generate("shufflebits-otp", allow_leaky=True)
    keyset.add("aes-256-gcm")
    path = tmp_path / "acme.keyset.json"
    save_keyset(path, keyset, env_kek, "acme")
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    text = path.read_text()
    material = keyset._keys[keyset.primary_id].material
    assert material.hex() not in text and "material" not in text
    loaded = load_keyset(path, env_kek, "acme")
    env = FeatureProtector(keyset).protect(features, CTX)
    assert np.array_equal(FeatureReader(loaded).read(env, CTX), features)
    assert [(k.key_id, k.status, k.primary) for k in loaded.info()] == \
        [(k.key_id, k.status, k.primary) for k in keyset.info()]


def test_a_wrong_kek_or_a_swapped_tenant_cannot_load(tmp_path, env_kek):
    path = tmp_path / "acme.keyset.json"
    save_keyset(path, Keyset.generate(), env_kek, "acme")
    other = LocalKek(os.urandom(32), "test:other")
    with pytest.raises(KeyStoreError, match="cannot be unwrapped"):
        load_keyset(path, other, "acme")
    with pytest.raises(KeyStoreError):
        load_keyset(path, env_kek, "globex")
    doc = path.read_text().replace('"acme"', '"globex"')
    (tmp_path / "globex.keyset.json").write_text(doc)
    with pytest.raises(KeyStoreError, match="cannot be unwrapped"):
        load_keyset(tmp_path / "globex.keyset.json", env_kek, "globex")


def test_cleartext_only_with_the_insecure_flag(tmp_path):
    path = tmp_path / "dev.keyset.json"
    with pytest.raises(KeyStoreError, match="cleartext"):
        save_keyset(path, Keyset.generate(), None, "dev")
    save_keyset(path, Keyset.generate(), None, "dev", insecure_cleartext=True)
    with pytest.raises(KeyStoreError, match="insecure"):
        load_keyset(path, None, "dev")
    assert load_keyset(path, None, "dev", allow_cleartext=True).primary_id


def test_file_kek_must_be_private(tmp_path, features):
    kek_file = tmp_path / "kek"
    kek_file.write_text(generate_kek_material())
    kek_file.chmod(0o644)
    with pytest.raises(KeyStoreError, match="chmod 600"):
        kek_from_uri(f"file:{kek_file}")
    kek_file.chmod(0o600)
    kek = kek_from_uri(f"file:{kek_file}")
    save_keyset(tmp_path / "k.json", Keyset.generate(), kek, "t")
    assert load_keyset(tmp_path / "k.json", kek, "t").primary_id


@pytest.mark.parametrize("uri, error, match", [
    ("env:NOT_SET_ANYWHERE_42", KeyStoreError, "not set"),
    ("file:/nonexistent/kek", KeyStoreError, "cannot read"),
    ("vault:secret", ValueError, "unknown KEK scheme"),
    ("no-scheme", ValueError, "must look like"),
])
def test_bad_kek_uris(uri, error, match):
    with pytest.raises(error, match=match):
        kek_from_uri(uri)


def test_kek_material_must_be_32_base64_bytes(monkeypatch):
    monkeypatch.setenv("SHORT_KEK", "c2hvcnQ=")
    with pytest.raises(KeyStoreError, match="32 bytes"):
        kek_from_uri("env:SHORT_KEK")
    monkeypatch.setenv("BAD_KEK", "not base64!")
    with pytest.raises(KeyStoreError, match="base64"):
        kek_from_uri("env:BAD_KEK")


def test_kek_objects_hide_their_bytes(env_kek):
    assert "TEST_FEATURELOCK_KEK" in repr(env_kek)
    assert os.environ["TEST_FEATURELOCK_KEK"] not in repr(env_kek)
    with pytest.raises(TypeError):
        pickle.dumps(env_kek)


@pytest.mark.parametrize("doc", [
    {"primary": 1, "keys": []},
    {"primary": 1, "keys": [{"id": 1, "scheme": "aes-256-gcm", "status": "destroyed",
                             "created": 0, "material": None}]},
    {"primary": 1, "keys": [{"id": 1, "scheme": "aes-256-gcm", "status": "enabled",
                             "created": 0, "material": "AAAA"}]},
    {"keys": "nope"},
])
def test_malformed_keyset_documents_are_refused(doc):
    with pytest.raises(KeysetError, match="malformed"):
        Keyset._from_document(doc)
