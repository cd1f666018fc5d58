"""A JSON decoder that refuses what an envelope never contains, for envelope.py only.

Python's json accepts duplicate keys (last one wins), NaN/Infinity, floats and integers of any
length; an envelope has none of these, so each is a ValueError here. The caller bounds the
text's size before decoding, and still has to compare the result with its canonical form:
this decoder alone does not make spellings unique (whitespace, key order, escapes).
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["loads"]

# Envelope integers are u32 (key id, dims) or a small version: 10 digits is enough.
_MAX_INT_DIGITS = 10


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    doc = dict(pairs)
    if len(doc) != len(pairs):
        raise ValueError("duplicate key")
    return doc


def _refuse(text: str) -> Any:
    raise ValueError("floats and NaN/Infinity are not allowed")


def _int(text: str) -> int:
    if len(text.lstrip("-")) > _MAX_INT_DIGITS:
        raise ValueError("integer too long")
    return int(text)


_DECODER = json.JSONDecoder(object_pairs_hook=_object, parse_float=_refuse,
                            parse_constant=_refuse, parse_int=_int)


def loads(text: str) -> Any:
    """Decode `text`; ValueError for duplicate keys, floats, NaN/Infinity or long integers,
    RecursionError for absurd nesting (the caller maps both to its own error)."""
    return _DECODER.decode(text)
