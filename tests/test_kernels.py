"""The Beneš network and its executors: every kernel is bit-identical to the numpy reference."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from featurelock.middleware import _kernels
from featurelock.middleware._benes import (ALLOWED, apply_numpy, inverse_masks,
                                           inverse_masks_from_stream, masks_from_stream, route)
from featurelock.middleware._kernels import Network

u32 = st.integers(0, 2**32 - 1)
permutations = st.permutations(list(range(32)))


def _executor(name: str):
    try:
        executor = _kernels._EXECUTORS[name]()
    except Exception as exc:  # no numba, or no AVX-512 GFNI on this CPU
        pytest.skip(f"kernel {name} unavailable here: {exc}")
    return executor


def _naive(words: np.ndarray, src: list[int]) -> np.ndarray:
    """Output bit j = input bit src[j], one bit at a time."""
    bits = (words[:, None] >> np.arange(32, dtype=np.uint32)) & 1
    return (bits[:, src].astype(np.uint64) << np.arange(32, dtype=np.uint64)).sum(1).astype(np.uint32)


@given(src=permutations, words=arrays(np.uint32, st.integers(1, 50), elements=u32))
def test_routing_realises_any_permutation(src, words):
    masks = route(src)
    assert not np.any(masks & ~ALLOWED)
    assert np.array_equal(apply_numpy(words, masks), _naive(words, src))
    assert np.array_equal(apply_numpy(apply_numpy(words, masks), inverse_masks(masks)), words)


def test_routing_the_identity_sets_no_switch():
    assert not route(list(range(32))).any()


@given(stream=st.binary(min_size=36, max_size=36), words=arrays(np.uint32, st.integers(0, 40), elements=u32))
def test_random_networks_are_bijections_and_invert(stream, words):
    masks = masks_from_stream(stream)
    assert np.array_equal(inverse_masks_from_stream(stream), inverse_masks(masks))
    images = apply_numpy(np.array([1 << j for j in range(32)], dtype=np.uint32), masks)
    assert sorted(int(w).bit_length() - 1 for w in images) == list(range(32))  # one bit each
    assert np.array_equal(apply_numpy(apply_numpy(words, masks), inverse_masks(masks)), words)


def test_random_networks_send_each_bit_everywhere(rng):
    # Each input bit should land on every position about equally often (the marginal is uniform).
    counts = np.zeros((32, 32), dtype=int)
    units = np.array([1 << j for j in range(32)], dtype=np.uint32)
    for _ in range(2000):
        images = apply_numpy(units, masks_from_stream(rng.bytes(36)))
        counts[np.arange(32), np.log2(images).astype(int)] += 1
    assert counts.min() > 2000 / 32 * 0.4 and counts.max() < 2000 / 32 * 1.8


@pytest.mark.parametrize("name", _kernels.KERNELS)
@pytest.mark.parametrize("long_lived", [True, False])
@settings(max_examples=60)
@given(src=permutations, words=arrays(np.uint32, st.integers(0, 200), elements=u32),
       offset=st.integers(0, 3))
def test_every_kernel_matches_the_reference(name, long_lived, src, words, offset):
    executor = _executor(name)
    network = Network(route(src), long_lived=long_lived)
    expected = apply_numpy(words, network.masks)
    # An offset start gives buffers that are not 8-byte aligned.
    backing = np.zeros(words.size + 4, dtype=np.uint32)
    x = backing[offset:offset + words.size]
    x[:] = words
    out = np.empty(words.size + 1, dtype=np.uint32)[1:]
    if words.size:
        executor.apply(x, out, network, False)
        assert np.array_equal(out, expected)
        readonly = np.frombuffer(words.tobytes(), dtype=np.uint32)
        executor.apply(readonly, out, network, False)
        assert np.array_equal(out, expected)
        executor.apply(x, x, network, True)
        assert np.array_equal(x, expected)


@pytest.mark.parametrize("name", _kernels.KERNELS)
def test_every_kernel_is_exact_on_a_large_batch(name, rng):
    executor = _executor(name)
    words = rng.integers(0, 2**32, size=64 * 2048 + 5, dtype=np.uint64).astype(np.uint32)
    network = Network(masks_from_stream(rng.bytes(36)))
    out = np.empty_like(words)
    executor.apply(words, out, network, False)
    assert np.array_equal(out, apply_numpy(words, network.masks))
    back = np.empty_like(words)
    executor.apply(out, back, network.inverse(), False)
    assert np.array_equal(back, words)


def test_the_chosen_kernel_is_named_and_networks_hide_their_masks():
    import pickle

    assert _kernels.warm() in _kernels.KERNELS
    network = Network(route(list(range(31, -1, -1))))
    assert "secret" in repr(network)
    with pytest.raises(TypeError):
        pickle.dumps(network)


def _run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **env})


def test_without_numba_everything_works_on_the_numpy_path():
    """The `fast` extra is optional: block numba's import and run every scheme, v1 included."""
    code = """
        import sys, json, base64, pathlib
        sys.modules["numba"] = None  # import numba -> ImportError, as when it is not installed
        import numpy as np
        from featurelock.middleware import (SCHEMES, Context, FeatureProtector, FeatureReader,
                                            Keyset, kernel_name)
        ctx = Context("m", "1", "t")
        x = np.random.default_rng(0).standard_normal((3, 2048)).astype(np.float32)
        for name in SCHEMES:
            ks = Keyset.generate(name, allow_leaky=True)
            assert np.array_equal(FeatureReader(ks).read(FeatureProtector(ks).protect(x, ctx), ctx), x)
        v1 = json.loads(pathlib.Path(VECTORS).read_text())["valid"]
        for v in v1:
            ks = Keyset._from_document({"primary": v["key_id"], "keys": [{
                "id": v["key_id"], "scheme": v["scheme"], "status": "enabled", "created": 0,
                "material": base64.b64encode(bytes.fromhex(v["key"])).decode()}]})
            out = FeatureReader(ks).read(bytes.fromhex(v["envelope"]), Context(*v["context"]))
            assert np.array_equal(out, np.array(v["plaintext"], dtype=np.float32))
        assert "numba" not in [m for m in sys.modules if sys.modules[m] is not None]
        print(kernel_name())
    """
    vectors = os.path.join(os.path.dirname(__file__), "vectors", "envelopes_v1.json")
    result = _run_python(code.replace("VECTORS", repr(vectors)), FEATURELOCK_KERNEL="")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "numpy"


def test_forcing_a_kernel_is_obeyed_and_an_unknown_one_refused():
    probe = "from featurelock.middleware import kernel_name; print(kernel_name())"
    assert _run_python(probe, FEATURELOCK_KERNEL="numpy").stdout.strip() == "numpy"
    bad = _run_python(probe, FEATURELOCK_KERNEL="quantum")
    assert bad.returncode != 0 and "FEATURELOCK_KERNEL" in bad.stderr
