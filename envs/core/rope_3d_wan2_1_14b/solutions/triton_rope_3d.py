"""3D RoPE of Wan2.1-T2V-14B in Triton: one program per token rotates q and k for all 40 heads at once as a
(heads x 64 pairs) tile. The angle of pair j comes from the token's (frame, row, col) and the pair's axis split
[22, 21, 21], computed in fp32 in the kernel (no table in memory)."""

import torch
import triton
import triton.language as tl


@triton.jit
def _rotate(src_ptr, dst_ptr, offs, mask, cos, sin):
    a = tl.load(src_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    b = tl.load(src_ptr + offs + 1, mask=mask, other=0.0).to(tl.float32)
    tl.store(dst_ptr + offs, (a * cos - b * sin).to(tl.bfloat16), mask=mask)
    tl.store(dst_ptr + offs + 1, (a * sin + b * cos).to(tl.bfloat16), mask=mask)


@triton.jit
def _rope_3d_kernel(
    q_ptr,
    k_ptr,
    pos_ptr,
    qo_ptr,
    ko_ptr,
    num_heads,
    stride_s,
    stride_h,
    PAIRS: tl.constexpr,
    SPLIT_T: tl.constexpr,
    SPLIT_H: tl.constexpr,
    BLOCK_H: tl.constexpr,
):
    s = tl.program_id(0)
    j = tl.arange(0, PAIRS)
    heads = tl.arange(0, BLOCK_H)
    # Axis of each pair and its index / width within that axis.
    in_t = j < SPLIT_T
    in_h = (j >= SPLIT_T) & (j < SPLIT_T + SPLIT_H)
    axis = tl.where(in_t, 0, tl.where(in_h, 1, 2))
    i = tl.where(in_t, j, tl.where(in_h, j - SPLIT_T, j - SPLIT_T - SPLIT_H)).to(tl.float32)
    width = tl.where(in_t, 2 * SPLIT_T, 2 * SPLIT_H).to(
        tl.float32
    )  # the row and column axes are equally wide
    position = tl.load(pos_ptr + s * 3 + axis).to(tl.float32)
    freq = tl.exp(-(2.0 * i / width) * 9.210340371976184)  # ln(10000)
    angle = position * freq
    cos = tl.cos(angle)[None, :]
    sin = tl.sin(angle)[None, :]
    offs = s * stride_s + heads[:, None] * stride_h + 2 * j[None, :]
    mask = (heads < num_heads)[:, None]
    _rotate(q_ptr, qo_ptr, offs, mask, cos, sin)
    _rotate(k_ptr, ko_ptr, offs, mask, cos, sin)


def run(q, k, positions):
    q, k, positions = q.contiguous(), k.contiguous(), positions.contiguous()
    seq_len, num_heads, head_dim = q.shape
    pairs = head_dim // 2
    q_out, k_out = torch.empty_like(q), torch.empty_like(k)
    _rope_3d_kernel[(seq_len,)](
        q,
        k,
        positions,
        q_out,
        k_out,
        num_heads,
        q.stride(0),
        q.stride(1),
        PAIRS=pairs,
        SPLIT_T=pairs - 2 * (pairs // 3),
        SPLIT_H=pairs // 3,
        BLOCK_H=triton.next_power_of_2(num_heads),
        num_warps=4,
    )
    return q_out, k_out
