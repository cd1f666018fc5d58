"""The Beneš network on a torch tensor's own device (CPU or CUDA).

The same 9 delta swaps as `_benes.apply_numpy`, on int32 words, bit-identical to it (tested on
CPU). Lets a GPU server encrypt features before they are copied to host memory. Right shifts
of int32 are arithmetic, but every stage's mask clears the bits they fill, so the result is
the logical one.
"""

from __future__ import annotations

import numpy as np
import torch

from ._benes import SHIFTS
from ._kernels import Network

__all__ = ["permute_words", "float32_words"]


def float32_words(features: torch.Tensor) -> torch.Tensor:
    """The raw bits of a float32 tensor as int32 (no copy when already contiguous)."""
    if features.dtype != torch.float32:
        raise TypeError(f"features must be float32, got {features.dtype}")
    return features.detach().contiguous().view(torch.int32)


def permute_words(words: torch.Tensor, network: Network) -> torch.Tensor:
    """Permute the bits of every int32 element of `words`, on the tensor's device."""
    masks = network.masks.view(np.int32).tolist()
    v = words.clone()
    t = torch.empty_like(v)
    for shift, mask in zip(SHIFTS, masks):
        torch.bitwise_right_shift(v, shift, out=t)
        t ^= v
        t &= mask
        v ^= t
        t <<= shift
        v ^= t
    return v
