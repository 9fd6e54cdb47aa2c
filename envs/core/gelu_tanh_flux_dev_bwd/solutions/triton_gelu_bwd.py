"""Backward of the tanh-approximated GELU (FLUX.1-dev FF) in Triton: a flat elementwise kernel, fp32 math,
tanh written through exp so it needs no libdevice call.

For g(x) = 0.5 x (1 + t), t = tanh(u), u = c (x + a x^3): g'(x) = 0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3 a x^2).
"""

import torch
import triton
import triton.language as tl


@triton.jit
def _gelu_tanh_bwd_kernel(x_ptr, g_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    g = tl.load(g_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    c = 0.7978845608028654  # sqrt(2 / pi)
    a = 0.044715
    u = c * (x + a * x * x * x)
    # tanh(u) = 1 - 2 / (exp(2u) + 1): saturates cleanly to +-1 for large |u|.
    t = 1.0 - 2.0 / (tl.exp(2.0 * u) + 1.0)
    dgelu = 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * c * (1.0 + 3.0 * a * x * x)
    tl.store(out_ptr + offs, (g * dgelu).to(tl.bfloat16), mask=mask)


def run(x, grad_out):
    x, grad_out = x.contiguous(), grad_out.contiguous()
    out = torch.empty_like(x)
    n = x.numel()
    block = 1024
    _gelu_tanh_bwd_kernel[(triton.cdiv(n, block),)](x, grad_out, out, n, BLOCK=block, num_warps=4)
    return out
