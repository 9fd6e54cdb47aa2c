"""Qwen3 8B QK-norm + RoPE in Triton: one program per token normalises every head of q (or k) over head_dim,
applies the norm weight with the reference's bf16 roundings, and rotates the two halves in fp32:
out[:64] = x1*c1 - x2*s1, out[64:] = x2*c2 + x1*s2, rounded once to bf16."""

import torch
import triton
import triton.language as tl


@triton.jit
def _qk_norm_rope_kernel(
    x_ptr, w_ptr, cos_ptr, sin_ptr, out_ptr, n_heads, eps, HALF: tl.constexpr, BLOCK_H: tl.constexpr
):
    token = tl.program_id(0)
    heads = tl.arange(0, BLOCK_H)[:, None]
    cols = tl.arange(0, HALF)[None, :]
    mask = heads < n_heads
    base = token * n_heads * 2 * HALF + heads * 2 * HALF + cols
    x1 = tl.load(x_ptr + base, mask=mask, other=0.0).to(tl.float32)
    x2 = tl.load(x_ptr + base + HALF, mask=mask, other=0.0).to(tl.float32)
    rstd = 1.0 / tl.sqrt((tl.sum(x1 * x1, axis=1) + tl.sum(x2 * x2, axis=1)) / (2 * HALF) + eps)
    w1 = tl.load(w_ptr + cols).to(tl.float32)
    w2 = tl.load(w_ptr + HALF + cols).to(tl.float32)
    # The reference rounds the normalised head to bf16, then the bf16 weight product to bf16.
    n1 = ((x1 * rstd[:, None]).to(tl.bfloat16).to(tl.float32) * w1).to(tl.bfloat16).to(tl.float32)
    n2 = ((x2 * rstd[:, None]).to(tl.bfloat16).to(tl.float32) * w2).to(tl.bfloat16).to(tl.float32)
    c1 = tl.load(cos_ptr + token * 2 * HALF + cols).to(tl.float32)
    c2 = tl.load(cos_ptr + token * 2 * HALF + HALF + cols).to(tl.float32)
    s1 = tl.load(sin_ptr + token * 2 * HALF + cols).to(tl.float32)
    s2 = tl.load(sin_ptr + token * 2 * HALF + HALF + cols).to(tl.float32)
    tl.store(out_ptr + base, (n1 * c1 - n2 * s1).to(tl.bfloat16), mask=mask)
    tl.store(out_ptr + base + HALF, (n2 * c2 + n1 * s2).to(tl.bfloat16), mask=mask)


def _norm_rope(x, weight, cos, sin):
    tokens, heads, dim = x.shape
    out = torch.empty_like(x)
    _qk_norm_rope_kernel[(tokens,)](
        x, weight, cos, sin, out, heads, 1e-6, HALF=dim // 2, BLOCK_H=triton.next_power_of_2(heads)
    )
    return out


def run(q, k, q_norm_weight, k_norm_weight, cos, sin):
    cos, sin = cos.contiguous(), sin.contiguous()
    return _norm_rope(q.contiguous(), q_norm_weight, cos, sin), _norm_rope(
        k.contiguous(), k_norm_weight, cos, sin
    )
