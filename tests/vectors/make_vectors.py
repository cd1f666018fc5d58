"""Regenerate the test vectors in this folder: `python tests/vectors/make_vectors.py`.

ShuffleBits vectors come from the naive reference algorithm (tests/reference_shufflebits.py),
never from the implementation under test. Envelope vectors pin key material and nonces; the
keys here exist only for these vectors. Invalid vectors are valid envelopes broken on purpose.

envelopes.json holds the current envelope version (2) of the symmetric schemes.
envelopes_v1.json was written by featurelock 0.1 with this script and is frozen: it proves old
envelopes still decrypt. envelopes_sealed.json holds the sealed (HPKE, version 3) schemes: their
KEM draws a fresh ephemeral key that no API here can pin, so a sealed envelope cannot be
re-created byte for byte; the file is written once (when absent, or with --sealed) and its
vectors are opened, never re-sealed. envelopes_json.json holds the JSON text form of every
valid vector above and text that must be refused. The Python tests and the JS reader's tests
(js/test/) read the same files; docs/envelope-spec.md describes every field.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from reference_shufflebits import encrypt_words, seed_permutation  # noqa: E402

from featurelock.middleware import Context, Envelope, SCHEMES  # noqa: E402
from featurelock.middleware.envelope import _seal_envelope_with_nonce  # noqa: E402
from featurelock.middleware.hpke_sealed import PRIVATE  # noqa: E402

SPECIAL_WORDS = [
    0x00000000, 0x80000000,  # +0, -0
    0x7F800000, 0xFF800000,  # +inf, -inf
    0x7FC00000, 0x7FA5A5A5, 0xFFFFFFFF, 0x7F800001,  # quiet/signalling NaNs with payloads
    0x00000001, 0x007FFFFF, 0x80000001,  # subnormals
    0x3F800000, 0xBF800000, 0x7F7FFFFF, 0x00800000,  # 1, -1, max, min normal
]


def shufflebits_vectors() -> dict:
    rng = np.random.default_rng(2021)
    words = np.array(SPECIAL_WORDS + [int(w) for w in rng.integers(0, 2**32, 49)], dtype=np.uint32)
    cases = []
    for seed in (0, 1, 42):
        perm = seed_permutation(seed)
        cases.append({"seed": seed, "perm": perm,
                      "plaintext": [f"{int(w):08x}" for w in words],
                      "ciphertext": [f"{int(w):08x}" for w in encrypt_words(words, perm)]})
    return {"description": "ShuffleBits.from_seed(seed): 32-bit words in hex, MSB-first bit "
                           "order as in the authors' reference code", "cases": cases}


def envelope_vectors(sealed: bool = False) -> dict:
    """The symmetric schemes' vectors, or (sealed=True) the sealed schemes' (random KEM)."""
    rng = np.random.default_rng(9 if sealed else 7)
    context = Context(model="reid-compact", model_version="1", tenant="acme")
    features = rng.standard_normal((2, 3)).astype(np.float32)
    valid, invalid = [], []
    for name, cls in SCHEMES.items():
        if cls.sealed != sealed:
            continue
        key = bytes(rng.integers(0, 256, cls.key_size, dtype=np.uint8))
        if name == "shufflebits":
            key = bytes(seed_permutation(0)) + key[32:]
        if sealed:  # any bytes are a valid X25519 key and ML-KEM seed: tag them private
            key = PRIVATE + key[1:]
        nonce = bytes(rng.integers(0, 256, cls.nonce_size, dtype=np.uint8))
        key_id = 0x01020304
        env = bytes(_seal_envelope_with_nonce(cls(key), key_id, features, context.associated_data(), nonce))
        common = {"scheme": name, "key": key.hex(), "key_id": key_id,
                  "context": [context.model, context.model_version, context.tenant]}
        valid.append({**common, "nonce": nonce.hex(), "plaintext": features.tolist(),
                      "shape": list(features.shape), "envelope": env.hex()})
        version = env[3]
        broken = {
            "flipped payload bit": _flip(env, len(env) - cls.tag_size - 1),
            "flipped tag bit": _flip(env, len(env) - 1),
            "flipped key id": _flip(env, 6),
            "flipped shape": _flip(env, 13),
            "flipped scheme id": _flip(env, 4),
            "unknown version": env[:3] + b"\x09" + env[4:],
            f"version 1 label on a version {version} envelope": env[:3] + b"\x01" + env[4:],
            "bad magic": b"XLK" + env[3:],
            "truncated by one byte": env[:-1],
            "truncated header": env[:7],
            "trailing byte": env + b"\x00",
            "empty": b"",
        }
        if sealed:
            broken["version 2 label on a version 3 envelope"] = env[:3] + b"\x02" + env[4:]
            broken["flipped encapsulation bit"] = _flip(env, len(env) - cls.tag_size)
            broken["public key material instead of the private"] = env  # see "key" below
        if cls.nonce_size:
            broken["flipped nonce bit"] = _flip(env, len(env) - len(features.tobytes()) - cls.tag_size - 1)
        invalid += [{**common, "why": why, "envelope": data.hex()} for why, data in broken.items()]
        if sealed:  # the server's half opens nothing it sealed
            invalid[-1]["key"] = cls.public_material(key).hex()
        invalid.append({**common, "why": "wrong tenant in context", "envelope": env.hex(),
                        "context": [context.model, context.model_version, "other-tenant"]})
        invalid.append({**common, "why": "wrong model version in context", "envelope": env.hex(),
                        "context": [context.model, "2", context.tenant]})
    return {"valid": valid, "invalid": invalid}


def json_vectors(*vector_files: dict) -> dict:
    """The canonical JSON text of every valid vector, and text that must be refused: each
    invalid entry spells a valid envelope some other way or breaks one field."""
    valid = [{k: v for k, v in vector.items() if k != "envelope"}
             | {"json": Envelope.from_bytes(bytes.fromhex(vector["envelope"])).to_json()}
             for vectors in vector_files for vector in vectors["valid"]]
    invalid = []
    for vector in valid:
        text = vector["json"]
        doc = json.loads(text)
        common = {k: v for k, v in vector.items() if k in ("scheme", "key", "key_id", "context")}
        for why, bad in _json_breakages(text, doc).items():
            if bad == text:  # e.g. "without padding" of a payload that needs none
                continue
            invalid.append({**common, "why": why, "json": bad})
    return {"valid": valid, "invalid": invalid}


def _json_breakages(text: str, doc: dict) -> dict[str, str]:
    def edit(**fields) -> str:
        return json.dumps({**doc, **fields}, separators=(",", ":"))

    def b64_noncanonical(value: str) -> str:
        # Same bytes, last base64 character with non-zero padding bits (or one more char).
        if value.endswith("="):
            i = len(value.rstrip("=")) - 1
            alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
            return value[:i] + alphabet[alphabet.index(value[i]) ^ 1] + value[i + 1:]
        return value + "===="

    first_key = text.index(",")
    return {
        "spaces after separators (json.dumps default)": json.dumps(doc),
        "trailing newline": text + "\n",
        "leading space": " " + text,
        "keys reordered": json.dumps(dict(reversed(list(doc.items()))), separators=(",", ":")),
        "duplicate key": text[:-1] + ',"key_id":' + str(doc["key_id"]) + "}",
        "unicode escape in the scheme name": text.replace(
            f'"scheme":"{doc["scheme"][0]}', '"scheme":"\\u%04x' % ord(doc["scheme"][0]), 1),
        "extra field": edit(extra=1),
        "missing field": json.dumps({k: v for k, v in doc.items() if k != "tag"}, separators=(",", ":")),
        "version as a boolean": edit(featurelock=True),
        "version as a float": text.replace(f'"featurelock":{doc["featurelock"]}', f'"featurelock":{doc["featurelock"]}.0', 1),
        "version as a string": edit(featurelock=str(doc["featurelock"])),
        "unknown version": edit(featurelock=9),
        "version relabelled": edit(featurelock=1 if doc["featurelock"] != 1 else 2),
        "key id negative": edit(key_id=-1),
        "key id 2**32": edit(key_id=2**32),
        "key id in exponent form": text.replace(f'"key_id":{doc["key_id"]}', f'"key_id":{doc["key_id"]}e0', 1),
        "key id with 11 digits": edit(key_id=10**10),
        "other key id": edit(key_id=doc["key_id"] ^ 1),
        "unknown scheme": edit(scheme="rot13"),
        "dtype not carried": edit(dtype="int64"),
        "dtype numpy spelling": edit(dtype="<f4"),
        "shape empty": edit(shape=[]),
        "shape with a zero": edit(shape=[0] + doc["shape"][1:]),
        "shape of floats": text.replace(json.dumps(doc["shape"], separators=(",", ":")), "[" + ",".join(f"{d}.0" for d in doc["shape"]) + "]", 1),
        "shape as a string": edit(shape="x".join(map(str, doc["shape"]))),
        "shape of nine dims": edit(shape=doc["shape"] + [1] * 7),
        "shape swapped": edit(shape=list(reversed(doc["shape"]))),
        "payload truncated": edit(payload=doc["payload"][:-4]),
        "payload without padding": edit(payload=doc["payload"].rstrip("=")),
        "payload non-canonical base64": edit(payload=b64_noncanonical(doc["payload"])),
        "payload url-safe base64": edit(payload=doc["payload"].replace("+", "-").replace("/", "_")) if ("+" in doc["payload"] or "/" in doc["payload"]) else edit(payload="-" + doc["payload"][1:]),
        "tag zeroed": edit(tag="A" * (len(doc["tag"]) - 2) + "==" if doc["tag"].endswith("==") else "A" * len(doc["tag"])),
        "non-ASCII character": text.replace('"featurelock"', '"featurelock\u00e9"', 1),
        "not an object": "[" + text + "]",
        "truncated text": text[:first_key],
    }


def _flip(data: bytes, index: int) -> bytes:
    out = bytearray(data)
    out[index] ^= 0x01
    return bytes(out)


if __name__ == "__main__":
    (HERE / "shufflebits_reference.json").write_text(json.dumps(shufflebits_vectors(), indent=1) + "\n")
    (HERE / "envelopes.json").write_text(json.dumps(envelope_vectors(), indent=1) + "\n")
    sealed_file = HERE / "envelopes_sealed.json"
    if "--sealed" in sys.argv or not sealed_file.exists():
        sealed_file.write_text(json.dumps(envelope_vectors(sealed=True), indent=1) + "\n")
    vector_files = [json.loads((HERE / name).read_text())
                    for name in ("envelopes.json", "envelopes_v1.json", "envelopes_sealed.json")]
    (HERE / "envelopes_json.json").write_text(json.dumps(json_vectors(*vector_files), indent=1) + "\n")
    print("wrote", HERE / "shufflebits_reference.json", HERE / "envelopes.json",
          sealed_file, HERE / "envelopes_json.json")
