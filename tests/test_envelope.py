"""Envelope parsing: anything malformed is the one opaque DecryptionError, never another type."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from featurelock.middleware import (Context, DecryptionError, Envelope, FeatureProtector,
                                    FeatureReader, Keyset)
from featurelock.middleware.protect import parse_envelope

CTX = Context("m", "1", "t")
KEYSET = Keyset.generate("aes-256-gcm")
GOOD = bytes(FeatureProtector(KEYSET).protect(np.arange(6, dtype=np.float32).reshape(2, 3), CTX))


def _read(message) -> None:
    FeatureReader(KEYSET).read(message, CTX)


@given(st.binary(max_size=300))
def test_random_bytes_only_ever_raise_decryption_error(data):
    with pytest.raises(DecryptionError):
        _read(data)


@given(st.integers(0, len(GOOD) - 1), st.binary(min_size=1, max_size=8))
def test_spliced_envelopes_only_ever_raise_decryption_error(pos, junk):
    with pytest.raises(DecryptionError):
        _read(GOOD[:pos] + junk + GOOD[pos + len(junk):] if GOOD[pos:pos + len(junk)] != junk
              else GOOD[:pos])


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                    lambda children: st.lists(children, max_size=4)
                    | st.dictionaries(st.text(max_size=8), children, max_size=4), max_leaves=12))
def test_random_json_documents_only_ever_raise_decryption_error(doc):
    with pytest.raises(DecryptionError):
        _read(json.dumps(doc))


@pytest.mark.parametrize("mutate", [
    lambda d: d.pop("tag"),
    lambda d: d.update(extra=1),
    lambda d: d.update(featurelock=9),
    lambda d: d.update(featurelock=1),  # relabelled: the version is authenticated
    lambda d: d.update(featurelock=True),
    lambda d: d.update(featurelock=2.0),
    lambda d: d.update(scheme="rot13"),
    lambda d: d.update(dtype="object"),
    lambda d: d.update(dtype="int64"),
    lambda d: d.update(shape=[2, 4]),
    lambda d: d.update(shape=[-2, -3]),
    lambda d: d.update(shape="2x3"),
    lambda d: d.update(shape=[2.0, 3.0]),
    lambda d: d.update(key_id=-1),
    lambda d: d.update(key_id=True),
    lambda d: d.update(nonce="!!!not base64!!!"),
    lambda d: d.update(payload=d["payload"][:-4]),
    lambda d: d.update(tag=base64.b64encode(b"\0" * 16).decode()),
], ids=lambda f: "")
def test_malformed_json_fields_raise_decryption_error(mutate):
    doc = Envelope.from_bytes(GOOD).to_json_dict()
    mutate(doc)
    with pytest.raises(DecryptionError):
        _read(json.dumps(doc))


def test_oversized_envelopes_are_refused_before_parsing():
    with pytest.raises(DecryptionError):
        FeatureReader(KEYSET, max_bytes=len(GOOD) - 1).read(GOOD, CTX)
    assert FeatureReader(KEYSET, max_bytes=len(GOOD)).read(GOOD, CTX).shape == (2, 3)


def test_header_fields_are_visible_and_json_preserves_them():
    env = Envelope.from_bytes(GOOD)
    assert (env.scheme, env.key_id, env.dtype, env.shape) == ("aes-256-gcm", KEYSET.primary_id,
                                                              np.dtype("<f4"), (2, 3))
    again = Envelope.from_json(env.to_json())
    assert again.to_bytes() == GOOD


def test_json_never_carries_floats():
    doc = json.loads(Envelope.from_bytes(GOOD).to_json())
    assert all(not isinstance(v, float) for v in doc.values())


def test_unknown_message_types_are_refused():
    with pytest.raises(DecryptionError):
        parse_envelope(12345)  # type: ignore[arg-type]
