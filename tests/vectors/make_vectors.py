"""Regenerate the test vectors in this folder: `python tests/vectors/make_vectors.py`.

ShuffleBits vectors come from the naive reference algorithm (tests/reference_shufflebits.py),
never from the implementation under test. Envelope vectors pin key material and nonces; the
keys here exist only for these vectors. Invalid vectors are valid envelopes broken on purpose.

envelopes.json holds the current envelope version (2). envelopes_v1.json was written by
featurelock 0.1 with this script and is frozen: it proves old envelopes still decrypt.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from reference_shufflebits import encrypt_words, seed_permutation  # noqa: E402

from featurelock.middleware import Context, SCHEMES  # noqa: E402
from featurelock.middleware.envelope import _seal_envelope_with_nonce  # noqa: E402

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


def envelope_vectors() -> dict:
    rng = np.random.default_rng(7)
    context = Context(model="reid-compact", model_version="1", tenant="acme")
    features = rng.standard_normal((2, 3)).astype(np.float32)
    valid, invalid = [], []
    for name, cls in SCHEMES.items():
        key = bytes(rng.integers(0, 256, cls.key_size, dtype=np.uint8))
        if name == "shufflebits":
            key = bytes(seed_permutation(0)) + key[32:]
        nonce = bytes(rng.integers(0, 256, cls.nonce_size, dtype=np.uint8))
        key_id = 0x01020304
        env = bytes(_seal_envelope_with_nonce(cls(key), key_id, features, context.associated_data(), nonce))
        common = {"scheme": name, "key": key.hex(), "key_id": key_id,
                  "context": [context.model, context.model_version, context.tenant]}
        valid.append({**common, "nonce": nonce.hex(), "plaintext": features.tolist(),
                      "shape": list(features.shape), "envelope": env.hex()})
        broken = {
            "flipped payload bit": _flip(env, len(env) - cls.tag_size - 1),
            "flipped tag bit": _flip(env, len(env) - 1),
            "flipped key id": _flip(env, 6),
            "flipped shape": _flip(env, 13),
            "flipped scheme id": _flip(env, 4),
            "unknown version": env[:3] + b"\x09" + env[4:],
            "version 1 label on a version 2 envelope": env[:3] + b"\x01" + env[4:],
            "bad magic": b"XLK" + env[3:],
            "truncated by one byte": env[:-1],
            "truncated header": env[:7],
            "trailing byte": env + b"\x00",
            "empty": b"",
        }
        if cls.nonce_size:
            broken["flipped nonce bit"] = _flip(env, len(env) - len(features.tobytes()) - cls.tag_size - 1)
        invalid += [{**common, "why": why, "envelope": data.hex()} for why, data in broken.items()]
        invalid.append({**common, "why": "wrong tenant in context", "envelope": env.hex(),
                        "context": [context.model, context.model_version, "other-tenant"]})
        invalid.append({**common, "why": "wrong model version in context", "envelope": env.hex(),
                        "context": [context.model, "2", context.tenant]})
    return {"valid": valid, "invalid": invalid}


def _flip(data: bytes, index: int) -> bytes:
    out = bytearray(data)
    out[index] ^= 0x01
    return bytes(out)


if __name__ == "__main__":
    (HERE / "shufflebits_reference.json").write_text(json.dumps(shufflebits_vectors(), indent=1) + "\n")
    (HERE / "envelopes.json").write_text(json.dumps(envelope_vectors(), indent=1) + "\n")
    print("wrote", HERE / "shufflebits_reference.json", HERE / "envelopes.json")
