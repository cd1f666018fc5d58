"""Coverage-guided fuzz target for FeatureReader.read (issue 9): `make fuzz`, or

    python tests/fuzz/fuzz_reader.py -runs=1000000      # needs the `fuzz` extra (atheris)

Each input is read in every envelope form it can take: the bytes; the text, when it is UTF-8;
the dict, when it is a JSON object (decoded leniently, so non-canonical dicts reach the reader).
Under warnings-as-errors, two properties must hold:
  (a) reading raises DecryptionError or returns, never anything else;
  (b) whatever decrypts is canonical: it re-serialises exactly to the input, and it is one of
      the seeds (nothing else can be a valid envelope under these fresh keys).
Seeds are valid envelopes of every scheme in both forms, under keys generated at start and
never stored, plus inputs that once crashed the reader. tests/test_fuzz_reader.py runs the same
target over a seeded mutator, without atheris.
"""

from __future__ import annotations

import contextlib
import json
import random
import shutil
import sys
import warnings
from pathlib import Path
from typing import Any, Iterator

if __name__ == "__main__":  # instrument featurelock for coverage before anything imports it
    import atheris

    _instrumenting: Any = atheris.instrument_imports(include=["featurelock"])
else:
    _instrumenting = contextlib.nullcontext()

with _instrumenting:
    import numpy as np

    from featurelock.middleware import (SCHEMES, Context, DecryptionError, Envelope,
                                        FeatureProtector, FeatureReader, Keyset)
    from featurelock.middleware.envelope import _header
    from featurelock.middleware.protect import parse_envelope

__all__ = ["Target", "crashers", "mutate"]

CTX = Context("reid-compact", "1", "acme")
U32_MAX = 2**32 - 1


def crashers(key_id: int) -> dict[str, bytes]:
    """Inputs that once escaped as other exceptions (issue 9), for a keyset holding an
    aes-256-gcm key `key_id` (the allocation only happened after the key lookup)."""
    doc = (b'{"featurelock":2,"scheme":"aes-256-gcm","key_id":%d,"dtype":"%s","shape":[1],'
           b'"nonce":"AAAAAAAAAAAAAAAA","payload":"AAAAAA==","tag":"AAAAAAAAAAAAAAAAAAAAAA=="}')
    return {
        # shape (0, huge, huge, huge): "ValueError: array is too big" from numpy
        "zero-beside-huge": _header(SCHEMES["aes-256-gcm"], key_id, np.dtype("<f4"),
                                    (0, U32_MAX, U32_MAX, U32_MAX), 0) + bytes(12 + 16),
        # client dtype text reached np.dtype(): SyntaxError; DeprecationWarning for "a"
        "dtype-syntax": doc % (key_id, b",float32"),
        "dtype-deprecated": doc % (key_id, b"a"),
    }


# Tokens for mutation (the seeded mutator here; libFuzzer's -dict in main()).
TOKENS = [b'"featurelock"', b'"scheme"', b'"key_id"', b'"dtype"', b'"shape"', b'"nonce"',
          b'"payload"', b'"tag"', b'"float32"', b'"float16"', b'"float64"', b'">f4"', b'"single"',
          b"true", b"false", b"null", b"NaN", b"-Infinity", b"1.0", b"2e0", b"-0", b"0",
          b"4294967295", b"4294967296", b"==", b"=", b" ", b"\n", b"\\u0066", b",", b":",
          b"[", b"]", b"{", b"}", b"FLK", b"\x00", b"\xff\xff\xff\xff"]


def _canonical(message: bytes | str | dict) -> bytes | str:
    """The canonical serialisation of the envelope `message` parses to, in its own form."""
    envelope = parse_envelope(message)
    if isinstance(message, dict):  # json.dumps tells True from 1 and 2.0 from 2
        return json.dumps(envelope.to_json_dict(), sort_keys=True, separators=(",", ":"))
    if isinstance(message, str) or message[:1] == b"{":
        text = envelope.to_json()
        return text if isinstance(message, str) else text.encode("ascii")
    return envelope.to_bytes()


def _as_compared(message: bytes | str | dict) -> bytes | str:
    if isinstance(message, dict):
        return json.dumps(message, sort_keys=True, separators=(",", ":"))
    return message


class Target:
    """The fuzz target: fresh keys of every scheme, the seeds sealed under them, a reader."""

    def __init__(self) -> None:
        keyset = Keyset()
        self.seeds: list[bytes] = []
        rng = np.random.default_rng(9)
        for name in SCHEMES:
            keyset.promote(keyset.add(name, allow_leaky=True))
            for shape in ((2, 3), (5,)):
                x = rng.standard_normal(shape).astype(np.float32)
                env = bytes(FeatureProtector(keyset).protect(x, CTX))
                self.seeds += [env, Envelope.from_bytes(env).to_json().encode("ascii")]
        self.aes_key_id = keyset.add("aes-256-gcm")
        keyset.promote(self.aes_key_id)
        for dtype in (np.float16, np.float64):  # aes-256-gcm carries every dtype
            env = bytes(FeatureProtector(keyset).protect(np.ones((1, 4), dtype), CTX))
            self.seeds += [env, Envelope.from_bytes(env).to_json().encode("ascii")]
        self.reader = FeatureReader(keyset)
        self._valid = {_as_compared(m) for seed in self.seeds for m in _forms(seed)}

    def __call__(self, data: bytes) -> int:
        """Check properties (a) and (b) on `data` in each form; the number of forms that
        decrypted. AssertionError on a violation; any other exception escapes as found."""
        decrypted = 0
        for message in _forms(data):
            try:
                self.reader.read(message, CTX)
            except DecryptionError:
                continue
            decrypted += 1
            compared = _as_compared(message)  # raise, not assert: -O must not skip this
            if _canonical(message) != compared:
                raise AssertionError(f"non-canonical input decrypted: {data!r}")
            if compared not in self._valid:
                raise AssertionError(f"decrypted but is no seed: {data!r}")
        return decrypted


def _forms(data: bytes) -> Iterator[bytes | str | dict]:
    yield data
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return
    yield text
    try:
        doc = json.loads(text)  # lenient on purpose: duplicates, NaN, floats all get through
    except (ValueError, RecursionError):
        return
    if isinstance(doc, dict):
        yield doc


def mutate(data: bytes, pool: list[bytes], rng: random.Random) -> bytes:
    """One to four random edits of `data`: bit flips, byte and token insertions, deletions,
    duplications and splices with another input of `pool`."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        pos = rng.randint(0, len(out))
        op = rng.randrange(6)
        if op == 0 and out:
            out[min(pos, len(out) - 1)] ^= 1 << rng.randrange(8)
        elif op == 1:
            out[pos:pos] = bytes([rng.randrange(256)])
        elif op == 2:
            out[pos:pos + rng.randint(1, 8)] = rng.choice(TOKENS)
        elif op == 3:
            del out[pos:pos + rng.randint(1, 16)]
        elif op == 4:
            out[pos:pos] = out[pos:pos + rng.randint(1, 16)]
        else:
            other = rng.choice(pool)
            cut = rng.randint(0, len(other))
            out[pos:] = other[cut:]
    return bytes(out)


def _dict_entry(token: bytes) -> str:
    """A libFuzzer dictionary line: quoted, with anything but plain ASCII as \\xNN."""
    return '"' + "".join(chr(b) if 0x20 <= b < 0x7f and b not in b'"\\' else f"\\x{b:02x}"
                         for b in token) + '"'


def main(argv: list[str]) -> None:
    warnings.simplefilter("error")
    target = Target()
    work = Path("out/fuzz")
    corpus = work / "corpus"  # the seeds only decrypt under this run's keys: start afresh
    shutil.rmtree(corpus, ignore_errors=True)
    corpus.mkdir(parents=True)
    for i, seed in enumerate(target.seeds + list(crashers(target.aes_key_id).values())):
        (corpus / f"seed-{i:03d}").write_bytes(seed)
    tokens = work / "tokens.dict"
    tokens.write_text("".join(f"{_dict_entry(t)}\n" for t in TOKENS))
    flags = [a for a in argv[1:] if a.startswith("-")]
    defaults = [f"-dict={tokens}", f"-artifact_prefix={work}/", "-max_len=4096"]
    flags += [d for d in defaults if d.split("=")[0] not in {f.split("=")[0] for f in flags}]

    def test_one_input(data: bytes) -> None:
        target(data)

    atheris.Setup([argv[0], *flags, str(corpus)], test_one_input)
    atheris.Fuzz()  # exits the process: 0 after -runs, non-zero on a finding


if __name__ == "__main__":
    main(sys.argv)
