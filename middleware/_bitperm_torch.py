"""Bit permutation of 32-bit words on a torch tensor's own device (CPU or CUDA).

Same tables and bit order as `_bitperm`; results are bit-identical to the numpy path. Lets a GPU
server encrypt features before they are copied to host memory.
"""

from __future__ import annotations

import numpy as np
import torch

from ._bitperm import WordPermutation

__all__ = ["permute_words", "xor_words", "float32_words"]


def float32_words(features: torch.Tensor) -> torch.Tensor:
    """The raw bits of a float32 tensor as int32 (no copy when already contiguous)."""
    if features.dtype != torch.float32:
        raise TypeError(f"features must be float32, got {features.dtype}")
    return features.detach().contiguous().view(torch.int32)


def permute_words(words: torch.Tensor, perm: WordPermutation) -> torch.Tensor:
    """Permute the bits of every int32 element of `words`, on the tensor's device."""
    table = torch.from_numpy(perm.byte_table().view(np.int32)).to(words.device)
    octets = words.reshape(-1).view(torch.uint8).reshape(-1, 4).long()  # little-endian bytes
    octets += torch.arange(0, 1024, 256, device=words.device)
    gathered = table[octets]
    out = gathered[:, 0] | gathered[:, 1]
    out |= gathered[:, 2]
    out |= gathered[:, 3]
    return out.reshape(words.shape)


def xor_words(words: torch.Tensor, mask: np.ndarray) -> torch.Tensor:
    """words XOR mask, where mask is a host uint32 keystream of the same number of elements."""
    device_mask = torch.from_numpy(mask.view(np.int32)).to(words.device).reshape(words.shape)
    return words ^ device_mask
