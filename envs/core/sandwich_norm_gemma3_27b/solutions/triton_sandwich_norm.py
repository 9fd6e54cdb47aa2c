"""Gemma 3 27B sandwich norms in Triton: one program per row applies post_attention_layernorm to the attention
output, adds the residual, and applies pre_feedforward_layernorm to the sum, all in registers. Every bf16 rounding
the reference makes (normed output, residual sum) is made here too; the (1 + weight) scale is applied in fp32."""

import torch
import triton
import triton.language as tl


@triton.jit
def _gemma_norm(x, w, n_cols, eps):
    rstd = 1.0 / tl.sqrt(tl.sum(x * x, axis=0) / n_cols + eps)
    return (x * rstd * (1.0 + w)).to(tl.bfloat16).to(tl.float32)


@triton.jit
def _sandwich_kernel(a_ptr, r_ptr, w1_ptr, w2_ptr, out_ptr, res_ptr, n_cols, eps, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    a = tl.load(a_ptr + row * n_cols + cols, mask=mask, other=0.0).to(tl.float32)
    r = tl.load(r_ptr + row * n_cols + cols, mask=mask, other=0.0).to(tl.float32)
    w1 = tl.load(w1_ptr + cols, mask=mask, other=0.0).to(tl.float32)
    w2 = tl.load(w2_ptr + cols, mask=mask, other=0.0).to(tl.float32)
    s = (r + _gemma_norm(a, w1, n_cols, eps)).to(tl.bfloat16).to(tl.float32)
    tl.store(res_ptr + row * n_cols + cols, s.to(tl.bfloat16), mask=mask)
    tl.store(out_ptr + row * n_cols + cols, _gemma_norm(s, w2, n_cols, eps).to(tl.bfloat16), mask=mask)


def run(attn_output, residual, post_attention_norm_weight, pre_feedforward_norm_weight):
    a, r = attn_output.contiguous(), residual.contiguous()
    n_rows, n_cols = a.shape
    mlp_input = torch.empty_like(a)
    residual_out = torch.empty_like(a)
    _sandwich_kernel[(n_rows,)](
        a,
        r,
        post_attention_norm_weight,
        pre_feedforward_norm_weight,
        mlp_input,
        residual_out,
        n_cols,
        1e-6,
        BLOCK=triton.next_power_of_2(n_cols),
        num_warps=16,
    )
    return mlp_input, residual_out
