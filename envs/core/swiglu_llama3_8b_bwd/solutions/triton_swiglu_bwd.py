"""SwiGLU backward of Llama 3.1 8B in Triton: one elementwise pass over the flattened tensors that reads gate, up
and grad_output once and writes both gradients, with the sigmoid and products in fp32."""

import torch
import triton
import triton.language as tl


@triton.jit
def _swiglu_bwd_kernel(gate_ptr, up_ptr, grad_ptr, grad_gate_ptr, grad_up_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    a = tl.load(gate_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    b = tl.load(up_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    g = tl.load(grad_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    s = 1.0 / (1.0 + tl.exp(-a))
    tl.store(grad_gate_ptr + offs, (g * b * s * (1.0 + a * (1.0 - s))).to(tl.bfloat16), mask=mask)
    tl.store(grad_up_ptr + offs, (g * a * s).to(tl.bfloat16), mask=mask)


def run(gate, up, grad_output):
    gate, up, grad_output = gate.contiguous(), up.contiguous(), grad_output.contiguous()
    grad_gate = torch.empty_like(gate)
    grad_up = torch.empty_like(up)
    n = gate.numel()
    block = 1024
    _swiglu_bwd_kernel[(triton.cdiv(n, block),)](gate, up, grad_output, grad_gate, grad_up, n, BLOCK=block)
    return grad_gate, grad_up
