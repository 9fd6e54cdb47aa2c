"""QK RMSNorm + 3-axis RoPE of FLUX.1-dev in Triton: one program per token normalises and rotates q and k for
all 24 heads as a (heads x 64 pairs) tile, reading each element once. Even and odd channels of a pair are loaded
separately, so the rotation needs no shuffle; the angle of pair j comes from the token's ids and the pair's axis
(widths 16, 56, 56), computed in fp32 in the kernel."""

import torch
import triton
import triton.language as tl


@triton.jit
def _norm_rotate(src_ptr, dst_ptr, w_ptr, offs, mask, j, head_dim, eps, cos, sin):
    a = tl.load(src_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    b = tl.load(src_ptr + offs + 1, mask=mask, other=0.0).to(tl.float32)
    rstd = 1.0 / tl.sqrt((tl.sum(a * a, axis=1) + tl.sum(b * b, axis=1)) / head_dim + eps)
    w_even = tl.load(w_ptr + 2 * j).to(tl.float32)[None, :]
    w_odd = tl.load(w_ptr + 2 * j + 1).to(tl.float32)[None, :]
    # Reference rounding: normalised value to bf16, times the bf16 weight, rounded again.
    a = ((a * rstd[:, None]).to(tl.bfloat16).to(tl.float32) * w_even).to(tl.bfloat16).to(tl.float32)
    b = ((b * rstd[:, None]).to(tl.bfloat16).to(tl.float32) * w_odd).to(tl.bfloat16).to(tl.float32)
    tl.store(dst_ptr + offs, (a * cos - b * sin).to(tl.bfloat16), mask=mask)
    tl.store(dst_ptr + offs + 1, (b * cos + a * sin).to(tl.bfloat16), mask=mask)


@triton.jit
def _qk_norm_rope_kernel(
    q_ptr,
    k_ptr,
    qw_ptr,
    kw_ptr,
    ids_ptr,
    qo_ptr,
    ko_ptr,
    seq_len,
    num_heads,
    eps,
    HEAD_DIM: tl.constexpr,
    AXIS0: tl.constexpr,
    AXIS1: tl.constexpr,
    BLOCK_H: tl.constexpr,
):
    token = tl.program_id(0)
    s = token % seq_len
    j = tl.arange(0, HEAD_DIM // 2)
    heads = tl.arange(0, BLOCK_H)
    # Pair j belongs to axis 0 (pairs [0, AXIS0/2)), 1 (next AXIS1/2) or 2 (the rest).
    in0 = j < AXIS0 // 2
    in1 = (j >= AXIS0 // 2) & (j < (AXIS0 + AXIS1) // 2)
    axis = tl.where(in0, 0, tl.where(in1, 1, 2))
    i = tl.where(in0, j, tl.where(in1, j - AXIS0 // 2, j - (AXIS0 + AXIS1) // 2)).to(tl.float32)
    width = tl.where(in0, AXIS0, tl.where(in1, AXIS1, HEAD_DIM - AXIS0 - AXIS1)).to(tl.float32)
    position = tl.load(ids_ptr + s * 3 + axis)
    angle = position * tl.exp(-(2.0 * i / width) * 9.210340371976184)  # theta = 10000
    cos = tl.cos(angle)[None, :]
    sin = tl.sin(angle)[None, :]
    offs = token * num_heads * HEAD_DIM + heads[:, None] * HEAD_DIM + 2 * j[None, :]
    mask = (heads < num_heads)[:, None]
    _norm_rotate(q_ptr, qo_ptr, qw_ptr, offs, mask, j, HEAD_DIM, eps, cos, sin)
    _norm_rotate(k_ptr, ko_ptr, kw_ptr, offs, mask, j, HEAD_DIM, eps, cos, sin)


def run(q, k, q_norm_weight, k_norm_weight, ids):
    q, k, ids = q.contiguous(), k.contiguous(), ids.contiguous()
    batch, seq_len, num_heads, head_dim = q.shape
    q_out, k_out = torch.empty_like(q), torch.empty_like(k)
    _qk_norm_rope_kernel[(batch * seq_len,)](
        q,
        k,
        q_norm_weight,
        k_norm_weight,
        ids,
        q_out,
        k_out,
        seq_len,
        num_heads,
        1e-6,
        HEAD_DIM=head_dim,
        AXIS0=16,
        AXIS1=56,
        BLOCK_H=triton.next_power_of_2(num_heads),
        num_warps=4,
    )
    return q_out, k_out
