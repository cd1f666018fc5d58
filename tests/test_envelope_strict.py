"""Strict, canonical envelope parsing: one accepted encoding per envelope and form; every other
input is the one DecryptionError, raised before any large allocation. Regressions of issue 9."""

from __future__ import annotations

import json
import random
import tracemalloc
import warnings

import numpy as np
import pytest

from featurelock.middleware import (Context, DecryptionError, EncryptionError, Envelope,
                                    FeatureProtector, FeatureReader, Keyset)
from featurelock.middleware import _strict_json
from featurelock.middleware.envelope import _header
from featurelock.middleware.schemes import SCHEMES

CTX = Context("m", "1", "t")
KEYSET = Keyset.generate("aes-256-gcm")
FEATURES = np.arange(6, dtype=np.float32).reshape(2, 3)
GOOD = bytes(FeatureProtector(KEYSET).protect(FEATURES, CTX))
GOOD_JSON = Envelope.from_bytes(GOOD).to_json()
AES = SCHEMES["aes-256-gcm"]
U32_MAX = 2**32 - 1


def _read(message, max_bytes: int | None = None) -> np.ndarray:
    reader = FeatureReader(KEYSET) if max_bytes is None else FeatureReader(KEYSET, max_bytes=max_bytes)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning must not escape either
        return reader.read(message, CTX)


def _refused(message, max_bytes: int | None = None) -> None:
    with pytest.raises(DecryptionError) as info:
        _read(message, max_bytes)
    assert str(info.value) == "decryption failed"


def _doc(**changes) -> dict:
    return {**json.loads(GOOD_JSON), **changes}


def _text(**changes) -> str:
    return json.dumps(_doc(**changes), separators=(",", ":"))


# -- the canonical forms are accepted ---------------------------------------------------------
@pytest.mark.parametrize("form", ["binary", "bytearray", "json-text", "json-bytes",
                                  "json-bytearray", "json-dict"])
def test_the_canonical_spelling_of_each_form_decrypts(form):
    message = {"binary": GOOD, "bytearray": bytearray(GOOD), "json-text": GOOD_JSON,
               "json-bytes": GOOD_JSON.encode(), "json-bytearray": bytearray(GOOD_JSON.encode()),
               "json-dict": json.loads(GOOD_JSON)}[form]
    assert np.array_equal(_read(message), FEATURES)


def test_size_bounds_are_not_tighter_than_the_envelope():
    for message in (GOOD, GOOD_JSON, json.loads(GOOD_JSON)):
        assert np.array_equal(_read(message, max_bytes=len(GOOD)), FEATURES)
        _refused(message, max_bytes=len(GOOD) - 1)


# -- bug 1: zero-size shapes beside huge dimensions (ValueError: array is too big) -------------
ZERO_BESIDE_HUGE = (0, U32_MAX, U32_MAX, U32_MAX)


def _binary_with_shape(shape: tuple[int, ...]) -> bytes:
    return _header(AES, KEYSET.primary_id, np.dtype("<f4"), shape, 0) + bytes(12 + 16)


def test_zero_dimension_beside_huge_ones_is_refused_before_allocation():
    _refused(_binary_with_shape(ZERO_BESIDE_HUGE))
    _refused(_text(shape=list(ZERO_BESIDE_HUGE), payload=""))
    _refused(_doc(shape=list(ZERO_BESIDE_HUGE), payload=""))


@pytest.mark.parametrize("shape", [(0,), (3, 0), (0, 0), (), (1,) * 9, (U32_MAX, U32_MAX)])
def test_empty_scalar_too_deep_and_too_large_shapes_are_refused(shape):
    _refused(_binary_with_shape(shape))
    _refused(_doc(shape=list(shape), payload=""))


@pytest.mark.parametrize("features", [np.zeros((0,), np.float32), np.zeros((4, 0), np.float32),
                                      np.float32(1.0).reshape(())])
def test_the_writer_refuses_shapes_the_reader_would_refuse(features):
    with pytest.raises(EncryptionError):
        FeatureProtector(KEYSET).protect(features, CTX)


# -- bug 2: client dtype text reached np.dtype() (SyntaxError, DeprecationWarning) -------------
@pytest.mark.parametrize("dtype", [",float32", "a", ">f4", "<f4", "f4", "=f4", "single", "float",
                                   "FLOAT32", " float32", "float32 ", "float32\x00", "f", "O",
                                   "float32,float32", "(2,)f4", "np.float32", ""])
def test_only_exact_dtype_names_are_accepted(dtype):
    _refused(_text(dtype=dtype))
    _refused(_doc(dtype=dtype))


def test_random_dtype_strings_only_ever_raise_decryption_error():
    rng = random.Random(426)
    alphabet = "afbcdeiuOSUVmMf248<>=|,()[]{}: '\"0123456789.-_x"
    accepted = set()
    for _ in range(3000):
        dtype = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8)))
        try:
            _read(_doc(dtype=dtype))
            accepted.add(dtype)
        except DecryptionError:
            pass
    assert accepted <= {"float32"}


# -- bug 3: non-canonical spellings of a valid envelope decrypted -----------------------------
def _dup(text: str) -> str:  # the same key twice, same value
    key_id = f'"key_id":{KEYSET.primary_id},'
    return text.replace(key_id, key_id + key_id)


B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _bad_padding_bits(b64: str) -> str:  # same bytes to a lenient decoder, other text
    body = b64.rstrip("=")
    last = B64_ALPHABET[B64_ALPHABET.index(body[-1]) ^ 1]  # flips a bit the padding drops
    return body[:-1] + last + b64[len(body):]


NON_CANONICAL_TEXT = {
    "duplicate key": _dup(GOOD_JSON),
    "featurelock true": GOOD_JSON.replace('"featurelock":2', '"featurelock":true'),
    "featurelock 2.0": GOOD_JSON.replace('"featurelock":2', '"featurelock":2.0'),
    "featurelock 2e0": GOOD_JSON.replace('"featurelock":2', '"featurelock":2e0'),
    "featurelock string": GOOD_JSON.replace('"featurelock":2', '"featurelock":"2"'),
    "key_id float": GOOD_JSON.replace(f'"key_id":{KEYSET.primary_id}',
                                      f'"key_id":{KEYSET.primary_id}.0'),
    "shape float": GOOD_JSON.replace('"shape":[2,3]', '"shape":[2.0,3]'),
    "shape bool": _text(shape=[2, 3]).replace("[2,3]", "[2,3,true]"),
    "NaN": GOOD_JSON.replace('"featurelock":2', '"featurelock":NaN'),
    "Infinity": GOOD_JSON.replace('"featurelock":2', '"featurelock":Infinity'),
    "dtype alias": _text(dtype=">f4"),
    "dtype escaped": GOOD_JSON.replace('"float32"', '"\\u0066loat32"'),
    "leading space": " " + GOOD_JSON,
    "trailing newline": GOOD_JSON + "\n",
    "spaced separators": json.dumps(json.loads(GOOD_JSON)),
    "keys reordered": json.dumps(dict(sorted(json.loads(GOOD_JSON).items())), separators=(",", ":")),
    "unknown field": GOOD_JSON[:-1] + ',"x":1}',
    "tag padding bits": _text(tag=_bad_padding_bits(_doc()["tag"])),
    "tag without padding": _text(tag=_doc()["tag"].rstrip("=")),
    "tag with whitespace": _text(tag=_doc()["tag"][:4] + "\n" + _doc()["tag"][4:]),
    "nonce urlsafe alphabet": _text(nonce="-_" + _doc()["nonce"][2:]),
    "utf-16": GOOD_JSON.encode("utf-16-le"),
}


def test_the_non_canonical_cases_differ_from_the_canonical_text():
    assert all(message != GOOD_JSON for message in NON_CANONICAL_TEXT.values())
    assert _doc()["tag"].endswith("==")  # so the padding-bits case changes padding bits


@pytest.mark.parametrize("name", NON_CANONICAL_TEXT)
def test_non_canonical_json_text_is_refused(name):
    message = NON_CANONICAL_TEXT[name]
    _refused(message)
    if isinstance(message, str):
        _refused(message.encode("utf-8"))


NON_CANONICAL_DICT = {
    "featurelock True": {"featurelock": True}, "featurelock 2.0": {"featurelock": 2.0},
    "key_id float": {"key_id": float(KEYSET.primary_id)}, "shape float": {"shape": [2.0, 3]},
    "shape bool": {"shape": [True, 3]}, "shape tuple": {"shape": (2, 3)},
    "dtype alias": {"dtype": ">f4"}, "dtype single": {"dtype": "single"},
    "tag padding bits": {"tag": _bad_padding_bits(_doc()["tag"])},
    "tag without padding": {"tag": _doc()["tag"].rstrip("=")},
    "payload whitespace": {"payload": " " + _doc()["payload"]},
    "nonce as bytes": {"nonce": _doc()["nonce"].encode()}, "unknown field": {"x": 1},
}


@pytest.mark.parametrize("name", NON_CANONICAL_DICT)
def test_non_canonical_json_dicts_are_refused(name):
    _refused(_doc(**NON_CANONICAL_DICT[name]))


def test_huge_leading_whitespace_is_refused_by_the_size_bound_before_parsing(monkeypatch):
    def never(text):
        raise AssertionError("parsed text over the size bound")

    monkeypatch.setattr(_strict_json, "loads", never)
    padded = " " * (2 * len(GOOD_JSON)) + GOOD_JSON
    _refused(padded, max_bytes=len(GOOD))
    _refused(padded.encode(), max_bytes=len(GOOD))


def test_deep_nesting_is_the_one_error_not_recursion_error():
    for text in ("[" * 200_000, '{"shape":' + "[" * 200_000, "{" * 100_000):
        _refused(text)


def test_strict_decoder_refuses_duplicates_constants_floats_and_long_integers():
    for text in ('{"a":1,"a":1}', '{"a":NaN}', '{"a":-Infinity}', '{"a":1.0}', '{"a":1e3}',
                 '{"a":12345678901}'):
        with pytest.raises(ValueError):
            _strict_json.loads(text)
    assert _strict_json.loads('{"a":[4294967295,-1]}') == {"a": [4294967295, -1]}


# -- bug 4: a decoded dict had no size bound ------------------------------------------------
def test_oversized_base64_in_a_dict_is_refused_before_decoding():
    huge = "A" * (32 * 1024 * 1024)
    doc = _doc(payload=huge)
    tracemalloc.start()
    try:
        _refused(doc)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1024 * 1024  # decoding would have allocated ~24 MiB


# -- binary form ------------------------------------------------------------------------------
def _binary_mutations() -> dict[str, bytes]:
    env = Envelope.from_bytes(GOOD)
    head = bytearray(env.header)
    def with_header(**at: int) -> bytes:
        h = bytearray(head)
        for pos, value in at.items():
            h[int(pos[1:])] = value
        return bytes(h) + GOOD[len(head):]
    return {
        "trailing byte": GOOD + b"\0",
        "missing byte": GOOD[:-1],
        "version 0": with_header(p3=0),
        "version 3": with_header(p3=3),
        "unknown scheme": with_header(p4=99),
        "unknown dtype": with_header(p9=0),
        "ndim 0": with_header(p10=0),
        "only the magic": GOOD[:3],
        "empty": b"",
    }


@pytest.mark.parametrize("name", list(_binary_mutations()))
def test_malformed_binary_envelopes_are_refused(name):
    _refused(_binary_mutations()[name])


def test_a_dtype_the_scheme_cannot_carry_is_refused_while_parsing():
    keyset = Keyset.generate("shufflebits", allow_leaky=True)
    env = bytearray(FeatureProtector(keyset).protect(FEATURES, CTX))
    env[9] = 2  # float16: shufflebits carries float32 only
    with pytest.raises(DecryptionError):
        Envelope.from_bytes(env)
