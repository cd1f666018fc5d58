"""Sealed responses (HPKE): the server holds only the consumer's public key."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from softhsm import make_softhsm_token

from featurelock.middleware import (Context, Envelope, FeatureProtector, FeatureReader,
                                    KeyRegistry, Keyset, generate_kek_material, kek_from_uri)
from featurelock.middleware.cli import main
from featurelock.middleware.errors import DecryptionError, KeysetError, KeyStoreError
from featurelock.middleware.storage import (load_public_keyset, public_fingerprint,
                                            save_public_keyset)

SEALED = ["hpke-x25519", "hpke-mlkem768-x25519"]
CTX = Context("reid-compact", "1", "acme")
VECTORS = json.loads((Path(__file__).parent / "vectors" / "hpke_rfc9180.json").read_text())["vectors"]


# -- the library against RFC 9180 -------------------------------------------------------------
@pytest.mark.parametrize("v", VECTORS, ids=lambda v: v["name"])
def test_the_hpke_library_derives_rfc9180_keys(v):
    """The library's single-shot API fixes aad to empty, so the RFC's ciphertexts (aad
    "Count-0") can't be replayed through it. Instead: check the vector's own key schedule
    output (key, base_nonce) reproduces the RFC ciphertext, then seal the plaintext with that key
    and nonce and empty aad: the library opens it only if its KEM and key schedule derive
    exactly the RFC's key and nonce from skRm, enc and info."""
    h = bytes.fromhex
    aead = {"AES_128_GCM": AESGCM, "CHACHA20_POLY1305": ChaCha20Poly1305}[v["aead"]](h(v["key"]))
    assert aead.encrypt(h(v["base_nonce"]), h(v["pt"]), h(v["aad"])) == h(v["ct"])  # transcription
    sk = x25519.X25519PrivateKey.from_private_bytes(h(v["skRm"]))
    assert sk.public_key().public_bytes_raw() == h(v["pkRm"])
    suite = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, getattr(hpke.AEAD, v["aead"]))
    message = h(v["enc"]) + aead.encrypt(h(v["base_nonce"]), h(v["pt"]), b"")
    assert suite.decrypt(message, sk, info=h(v["info"])) == h(v["pt"])
    with pytest.raises(Exception):
        suite.decrypt(message, sk, info=h(v["info"]) + b"!")


# -- sealing and opening ------------------------------------------------------------------------
@pytest.mark.parametrize("scheme", SEALED)
def test_the_server_seals_with_the_public_half_and_cannot_open(scheme, rng):
    consumer = Keyset.generate(scheme)
    server = consumer.public()
    assert server.is_public() and not server.holds_private_sealed_keys()
    assert consumer.holds_private_sealed_keys() and not consumer.is_public()
    x = rng.standard_normal((2, 2048)).astype(np.float32)
    env = FeatureProtector(server).protect(x, CTX)
    assert np.array_equal(FeatureReader(consumer).read(env, CTX), x)
    with pytest.raises(DecryptionError):
        FeatureReader(server).read(env, CTX)  # what the server holds opens nothing it sent
    with pytest.raises(DecryptionError):
        FeatureReader(Keyset.generate(scheme)).read(env, CTX)  # another consumer


@pytest.mark.parametrize("scheme", SEALED)
def test_every_message_has_a_fresh_encapsulation(scheme, rng):
    server = Keyset.generate(scheme).public()
    x = rng.standard_normal(64).astype(np.float32)
    a, b = (Envelope.from_bytes(FeatureProtector(server).protect(x, CTX)) for _ in range(2))
    assert a.version == b.version == 3 and a.nonce == b""
    assert bytes(a.tag) != bytes(b.tag) and bytes(a.payload) != bytes(b.payload)


@pytest.mark.parametrize("scheme", SEALED)
def test_sealed_envelopes_have_exactly_one_version(scheme, rng):
    consumer = Keyset.generate(scheme)
    env = bytearray(FeatureProtector(consumer).protect(rng.standard_normal(8).astype(np.float32), CTX))
    for version in (1, 2, 4):
        bad = bytearray(env)
        bad[3] = version
        with pytest.raises(DecryptionError):
            FeatureReader(consumer).read(bytes(bad), CTX)
    aes = Keyset.generate()
    aes_env = bytearray(FeatureProtector(aes).protect(np.ones(4, np.float32), CTX))
    aes_env[3] = 3  # a symmetric scheme never reads the sealed layout
    with pytest.raises(DecryptionError):
        FeatureReader(aes).read(bytes(aes_env), CTX)


def test_the_hybrid_tag_needs_the_wide_length_field(rng):
    env = Envelope.from_bytes(FeatureProtector(Keyset.generate("hpke-mlkem768-x25519").public())
                              .protect(rng.standard_normal(4).astype(np.float32), CTX))
    assert len(env.tag) == 1088 + 32 + 16 > 255


# -- where the keys live --------------------------------------------------------------------------
@pytest.fixture
def kek(monkeypatch):
    monkeypatch.setenv("HPKE_TEST_KEK", generate_kek_material())
    monkeypatch.setenv("FEATURELOCK_KEK", "env:HPKE_TEST_KEK")
    return kek_from_uri("env:HPKE_TEST_KEK")


def test_a_registry_refuses_private_sealed_keys(tmp_path, kek):
    registry = KeyRegistry(tmp_path / "reg", kek)
    with pytest.raises(KeyStoreError, match="public"):
        registry.create("acme", "hpke-x25519")
    assert not (tmp_path / "reg" / "acme.keyset.json").exists()
    consumer = Keyset.generate("hpke-x25519")
    registry.create("acme", public_keyset=consumer.public())
    assert KeyRegistry(tmp_path / "reg", kek).keyset("acme").is_public()


def test_public_keyset_files_hold_no_private_material(tmp_path):
    consumer = Keyset.generate("hpke-x25519")
    save_public_keyset(tmp_path / "pub.json", consumer)
    loaded = load_public_keyset(tmp_path / "pub.json")
    assert loaded.is_public() and public_fingerprint(loaded) == public_fingerprint(consumer.public())
    doc = json.loads((tmp_path / "pub.json").read_text())
    doc["keyset"]["keys"][0]["material"] = json.loads(
        json.dumps(consumer._to_document()))["keys"][0]["material"]  # smuggle the private half
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    with pytest.raises(KeyStoreError, match="private"):
        load_public_keyset(tmp_path / "bad.json")
    with pytest.raises(KeysetError, match="symmetric"):
        Keyset.generate().public()


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_consumer_and_operator_cli_story(tmp_path, monkeypatch, capsys, kek):
    """Consumer makes the keys; operator registers the public half; rotation by re-import."""
    monkeypatch.chdir(tmp_path)
    x = np.random.default_rng(0).standard_normal((1, 2048)).astype(np.float32)
    np.save("x.npy", x)
    consumer = ("--keyset", "mine.json", "--tenant", "acme")
    server = ("--registry", "reg", "--tenant", "acme")
    assert run(capsys, "keys", "create", *consumer, "--scheme", "hpke-x25519")[0] == 0
    code, out, _ = run(capsys, "keys", "export-public", *consumer, "--out", "acme.pub")
    fingerprint = out.split()[3]
    assert code == 0 and fingerprint.startswith("sha256:")
    code, _, err = run(capsys, "keys", "create", *server, "--scheme", "hpke-x25519")
    assert code == 1 and "public" in err and not Path("reg/acme.keyset.json").exists()
    assert run(capsys, "keys", "create", *server, "--public-key", "acme.pub")[0] == 0
    code, out, _ = run(capsys, "keys", "list", *server)
    assert code == 0 and fingerprint in out
    assert run(capsys, "encrypt", *server, "x.npy", "x.flk")[0] == 0          # the server seals
    assert run(capsys, "decrypt", *server, "x.flk", "y.npy")[0] == 1          # and cannot open
    assert run(capsys, "decrypt", *consumer, "x.flk", "y.npy")[0] == 0
    assert np.array_equal(np.load("y.npy"), x)
    # Rotation: the consumer adds and promotes a key, the operator imports the new public half.
    code, out, _ = run(capsys, "keys", "add", *consumer, "--primary")
    new_id = int(out.split()[2])
    assert run(capsys, "keys", "export-public", *consumer, "--out", "acme.pub")[0] == 0
    assert run(capsys, "keys", "import-public", *server, "--public-key", "acme.pub")[0] == 0
    assert run(capsys, "encrypt", *server, "x.npy", "x2.flk")[0] == 0
    assert Envelope.from_bytes(Path("x2.flk").read_bytes()).key_id == new_id
    assert run(capsys, "decrypt", *consumer, "x2.flk", "y2.npy")[0] == 0
    assert run(capsys, "decrypt", *consumer, "x.flk", "y.npy")[0] == 0       # old key still reads
    # import-public never overwrites a keyset with secret keys in it
    assert run(capsys, "keys", "create", "--registry", "reg", "--tenant", "sym")[0] == 0
    code, _, err = run(capsys, "keys", "import-public", "--registry", "reg", "--tenant", "sym",
                       "--public-key", "acme.pub")
    assert code == 1 and "secret" in err


@pytest.mark.e2e
def test_the_private_key_can_stay_under_a_softhsm2_token(tmp_path, monkeypatch, capsys, kek):
    """The consumer's keyset is wrapped under a non-extractable KEK on a PKCS#11 token."""
    monkeypatch.chdir(tmp_path)
    token = make_softhsm_token(tmp_path, monkeypatch)
    x = np.random.default_rng(1).standard_normal((1, 512)).astype(np.float32)
    np.save("x.npy", x)
    consumer = ("--keyset", "mine.json", "--tenant", "acme", "--kek", token.uri)
    assert run(capsys, "keys", "new-kek", "--kek", token.uri)[0] == 0
    assert run(capsys, "keys", "create", *consumer, "--scheme", "hpke-mlkem768-x25519")[0] == 0
    assert run(capsys, "keys", "export-public", *consumer, "--out", "acme.pub")[0] == 0
    server = ("--registry", "reg", "--tenant", "acme")
    assert run(capsys, "keys", "create", *server, "--public-key", "acme.pub")[0] == 0
    assert run(capsys, "encrypt", *server, "x.npy", "x.flk")[0] == 0
    assert run(capsys, "decrypt", *consumer, "x.flk", "y.npy")[0] == 0
    assert np.array_equal(np.load("y.npy"), x)


@pytest.mark.parametrize("scheme", SEALED)
def test_low_order_and_garbage_encapsulations_are_the_one_opaque_error(scheme):
    """X25519 low-order points make an all-zero shared secret, which HPKE must refuse."""
    consumer = Keyset.generate(scheme)
    env = bytes(FeatureProtector(consumer).protect(np.ones(4, np.float32), CTX))
    x25519_at = len(env) - 16 - 32  # the encapsulation ends with the X25519 share
    for share in (bytes(32), b"\x01" + bytes(31), b"\xff" * 32,
                  bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800")):
        bad = env[:x25519_at] + share + env[x25519_at + 32:]
        with pytest.raises(DecryptionError):
            FeatureReader(consumer).read(bad, CTX)
