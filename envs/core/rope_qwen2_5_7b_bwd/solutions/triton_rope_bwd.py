"""RoPE backward of Qwen2.5 7B in Triton: one program per token rotates all heads of one gradient tensor back,
holding the token's cos/sin halves in registers: grad[:64] = g1*c1 + g2*s2, grad[64:] = g2*c2 - g1*s1."""

import torch
import triton
import triton.language as tl


@triton.jit
def _rope_bwd_kernel(g_ptr, cos_ptr, sin_ptr, out_ptr, n_heads, HALF: tl.constexpr, BLOCK_H: tl.constexpr):
    token = tl.program_id(0)
    heads = tl.arange(0, BLOCK_H)[:, None]
    cols = tl.arange(0, HALF)[None, :]
    mask = heads < n_heads
    base = token * n_heads * 2 * HALF + heads * 2 * HALF + cols
    g1 = tl.load(g_ptr + base, mask=mask, other=0.0).to(tl.float32)
    g2 = tl.load(g_ptr + base + HALF, mask=mask, other=0.0).to(tl.float32)
    c1 = tl.load(cos_ptr + token * 2 * HALF + cols).to(tl.float32)
    c2 = tl.load(cos_ptr + token * 2 * HALF + HALF + cols).to(tl.float32)
    s1 = tl.load(sin_ptr + token * 2 * HALF + cols).to(tl.float32)
    s2 = tl.load(sin_ptr + token * 2 * HALF + HALF + cols).to(tl.float32)
    tl.store(out_ptr + base, (g1 * c1 + g2 * s2).to(tl.bfloat16), mask=mask)
    tl.store(out_ptr + base + HALF, (g2 * c2 - g1 * s1).to(tl.bfloat16), mask=mask)


def _rope_bwd(grad, cos, sin):
    tokens, heads, dim = grad.shape
    out = torch.empty_like(grad)
    _rope_bwd_kernel[(tokens,)](
        grad, cos, sin, out, heads, HALF=dim // 2, BLOCK_H=triton.next_power_of_2(heads)
    )
    return out


def run(grad_q_embed, grad_k_embed, cos, sin):
    cos, sin = cos.contiguous(), sin.contiguous()
    return _rope_bwd(grad_q_embed.contiguous(), cos, sin), _rope_bwd(grad_k_embed.contiguous(), cos, sin)
