# Kernels chosen from a module-level table keyed by dtype.
import torch
import triton
import triton.language as tl


@triton.jit
def _neg_f32(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(out_ptr + offs, -tl.load(x_ptr + offs, mask=mask), mask=mask)


@triton.jit
def _neg_lowp(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask).to(tl.float32)
    tl.store(out_ptr + offs, (-x).to(out_ptr.dtype.element_ty), mask=mask)


KERNELS = {torch.float32: _neg_f32, torch.float16: _neg_lowp, torch.bfloat16: _neg_lowp}


def run(x):
    out = torch.empty_like(x)
    kernel = KERNELS[x.dtype]
    kernel[(triton.cdiv(x.numel(), 1024),)](x, out, x.numel(), BLOCK=1024)
    return out
