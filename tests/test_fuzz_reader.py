"""A short run of the fuzz target (tests/fuzz/fuzz_reader.py) on a seeded mutator, no atheris
needed; `make fuzz` runs it coverage-guided on a million inputs."""

from __future__ import annotations

import random
import warnings

import pytest

from featurelock.middleware import Envelope
from fuzz.fuzz_reader import Target, crashers, mutate

TARGET = Target()


def test_every_seed_decrypts_in_each_of_its_forms():
    for seed in TARGET.seeds:
        assert TARGET(seed) == (1 if seed[:1] != b"{" else 3)  # binary; or bytes, text, dict


@pytest.mark.parametrize("name", ["zero-beside-huge", "dtype-syntax", "dtype-deprecated"])
def test_the_inputs_that_crashed_the_reader_are_refused(name):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert TARGET(crashers(TARGET.aes_key_id)[name]) == 0


def test_the_target_catches_a_non_canonical_acceptance(monkeypatch):
    # A reader that ignores leading whitespace must fail the target, or the target is blind.
    lenient = Envelope.from_json.__func__

    def from_json(cls, document, max_bytes=2**28):
        return lenient(cls, document.lstrip() if isinstance(document, str) else document, max_bytes)

    monkeypatch.setattr(Envelope, "from_json", classmethod(from_json))
    text_seed = next(s for s in TARGET.seeds if s[:1] == b"{")
    with pytest.raises(AssertionError, match="non-canonical"):
        TARGET(b" " + text_seed)


def test_a_short_fuzz_run_finds_nothing():
    rng = random.Random(20261123)
    pool = TARGET.seeds + list(crashers(TARGET.aes_key_id).values())
    decrypted = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(4000):
            decrypted += TARGET(mutate(rng.choice(pool), pool, rng))
    # Mutations that leave an envelope intact still decrypt: proof the run reached decryption.
    assert decrypted > 0
