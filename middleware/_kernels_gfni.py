"""The network as GF(2) byte matrices: 16 words per AVX-512 instruction sequence (GFNI + VBMI).

A bit permutation is linear over GF(2), so output byte b' is the XOR over the four input bytes
b of (8x8 bit matrix M[b', b]) x (byte b). GF2P8AFFINEQB applies one 8x8 matrix per 64-bit lane,
so the 16 words of a 64-byte block are first transposed (VPERMB) into lanes that each hold one
byte position of 8 words; four rounds of (rotate lanes, GF2P8AFFINEQB, XOR) then realise every
M[b', b], and a second VPERMB transposes back. The matrices sit in registers: no table indexed
by data, no branch, fixed timing for any key.

The matrices are computed from the Beneš masks (`gfni_matrices`), so the Beneš network stays
the one definition of a permutation. Import this module only where the CPU has AVX-512 VBMI
and GFNI (`_kernels.py` checks); tails shorter than a block take the Beneš loop.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from ._kernels_numba import _OPTS, benes32, unit_images

__all__ = ["gfni_matrices", "gfni_apply", "gfni_apply_once", "TRANSPOSES"]

_BLOCK = 16  # words: one 64-byte vector
_V64 = ir.VectorType(ir.IntType(8), 64)
_V8Q = ir.VectorType(ir.IntType(64), 8)
_U8 = types.Array(types.uint8, 1, "C")
_U32, _U32_RO = types.Array(types.uint32, 1, "C"), types.Array(types.uint32, 1, "C", readonly=True)


def _transposes() -> np.ndarray:
    """VPERMB indices: into lanes (lane 4g+b holds byte b of words 8g..8g+7), and back."""
    into, back = np.zeros(64, np.uint8), np.zeros(64, np.uint8)
    for lane in range(8):
        group, byte = divmod(lane, 4)
        for e in range(8):
            into[8 * lane + e] = 4 * (8 * group + e) + byte
    for word in range(16):
        for byte in range(4):
            back[4 * word + byte] = 8 * (4 * (word // 8) + byte) + word % 8
    return np.concatenate([into, back])


TRANSPOSES = _transposes()


@njit([types.void(_U32, _U8)], **_OPTS)
def gfni_matrices(masks, out):
    """out (256 bytes): for round r, lane 4g+b', the matrix M[b', (b'+r) % 4] in GFNI layout
    (byte 7-k of the lane is the row of output bit k). Loops over fixed ranges only."""
    images = np.empty(32, np.uint32)
    unit_images(masks, images)
    for r in range(4):
        for b_out in range(4):  # lanes b_out and 4 + b_out hold the same matrix
            b_in = (b_out + r) % 4
            for k_out in range(8):
                row = np.uint32(0)
                for k_in in range(8):
                    hit = (images[8 * b_in + k_in] >> np.uint32(8 * b_out + k_out)) & np.uint32(1)
                    row |= hit << np.uint32(k_in)
                out[64 * r + 8 * b_out + 7 - k_out] = np.uint8(row)
                out[64 * r + 8 * (b_out + 4) + 7 - k_out] = np.uint8(row)


def _vector_at(context, builder, arrty, arr, offset):
    """A pointer to the 64 bytes of array `arr` from element `offset` on."""
    data = context.make_array(arrty)(context, builder, arr).data
    return builder.bitcast(builder.gep(data, [offset]), _V64.as_pointer())


@intrinsic
def _permute_blocks(typingctx, x, out, matrices, transposes, blocks):
    """For each of `blocks` 64-byte blocks of x: transpose, four affine rounds, transpose back
    into out. Matrices and transposes are loaded once, before the loop, into registers."""

    def codegen(context, builder, signature, args):
        x_, out_, mats_, trans_, blocks_ = args
        arrs = signature.args
        vpermb = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(_V64, [_V64, _V64]), "llvm.x86.avx512.permvar.qi.512")
        affine = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(_V64, [_V64, _V64, ir.IntType(8)]),
            "llvm.x86.vgf2p8affineqb.512")
        at = lambda n: ir.Constant(ir.IntType(64), n)  # noqa: E731
        load = lambda arr, i, n: builder.load(_vector_at(context, builder, arrs[i], arr, n), align=1)  # noqa: E731
        into, back = load(trans_, 3, at(0)), load(trans_, 3, at(64))
        matrix = [load(mats_, 2, at(64 * r)) for r in range(4)]
        # lane 4g+b' takes lane 4g+(b'+r)%4 in round r: the source byte of that round
        rotations = [ir.Constant(ir.VectorType(ir.IntType(32), 8),
                                 [4 * (lane // 4) + (lane % 4 + r) % 4 for lane in range(8)])
                     for r in range(4)]
        with cgutils.for_range(builder, blocks_) as loop:
            offset = builder.mul(loop.index, at(_BLOCK))
            lanes = builder.call(vpermb, [load(x_, 0, offset), into])
            quads = builder.bitcast(lanes, _V8Q)
            acc = None
            for r in range(4):
                src = lanes if r == 0 else builder.bitcast(
                    builder.shuffle_vector(quads, quads, rotations[r]), _V64)
                part = builder.call(affine, [src, matrix[r], ir.Constant(ir.IntType(8), 0)])
                acc = part if acc is None else builder.xor(acc, part)
            builder.store(builder.call(vpermb, [acc, back]),
                          _vector_at(context, builder, arrs[1], out_, offset), align=1)
        return context.get_dummy_value()

    return types.void(x, out, matrices, transposes, blocks), codegen


@njit([types.void(src, _U32, _U8, _U32) for src in (_U32, _U32_RO)], **_OPTS)
def gfni_apply(x, out, matrices, masks):
    """Permute the uint32 words x into out (may be x itself)."""
    full = x.size - x.size % _BLOCK
    _permute_blocks(x, out, matrices, TRANSPOSES, full // _BLOCK)
    if full < x.size:
        benes32(x[full:], out[full:], masks)


@njit([types.void(src, _U32, _U32) for src in (_U32, _U32_RO)], **_OPTS)
def gfni_apply_once(x, out, masks):
    """gfni_apply for a network used once (one message): matrices built in the same call."""
    matrices = np.empty(256, np.uint8)
    gfni_matrices(masks, matrices)
    gfni_apply(x, out, matrices, masks)
