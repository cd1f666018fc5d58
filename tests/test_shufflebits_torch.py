"""The torch path of ShuffleBits is bit-identical to numpy, on CPU and (when present) CUDA."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from featurelock.middleware import ShuffleBits

u32 = st.integers(0, 2**32 - 1)
torch = pytest.importorskip("torch")


@given(words=arrays(np.uint32, st.integers(1, 500), elements=u32), seed=st.integers(0, 1000))
def test_torch_cpu_is_bit_identical_to_numpy(words, seed):
    cipher = ShuffleBits.from_seed(seed)
    t = torch.from_numpy(words.view(np.float32).copy())
    enc = cipher.encrypt_tensor(t)
    assert enc.dtype == torch.float32 and enc.device == t.device
    assert np.array_equal(enc.numpy().view(np.uint32), cipher.encrypt_array(words.view(np.float32)).view(np.uint32))
    assert np.array_equal(cipher.decrypt_tensor(enc).numpy().view(np.uint32), words)


@given(words=arrays(np.uint32, st.integers(1, 300), elements=u32), stream=st.binary(min_size=36, max_size=36))
def test_torch_network_matches_numpy_on_random_networks(words, stream):
    from featurelock.middleware._benes import masks_from_stream
    from featurelock.middleware._bitperm_torch import permute_words
    from featurelock.middleware._kernels import Network

    network = Network(masks_from_stream(stream))
    out = permute_words(torch.from_numpy(words.view(np.int32).copy()), network)
    assert np.array_equal(out.numpy().view(np.uint32), network.apply(words))


@pytest.mark.gpu
def test_torch_cuda_is_bit_identical_to_numpy(rng):
    words = rng.integers(0, 2**32, size=(64, 2048), dtype=np.uint64).astype(np.uint32)
    cipher = ShuffleBits.from_seed(0)
    t = torch.from_numpy(words.view(np.float32).copy()).cuda()
    enc = cipher.encrypt_tensor(t)
    assert enc.is_cuda
    assert np.array_equal(enc.cpu().numpy().view(np.uint32),
                          cipher.encrypt_array(words.view(np.float32)).view(np.uint32))
    assert np.array_equal(cipher.decrypt_tensor(enc).cpu().numpy().view(np.uint32), words)
