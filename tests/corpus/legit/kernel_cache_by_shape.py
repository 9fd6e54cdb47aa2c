# Compiled kernels cached by (feature size, dtype): the cache holds callables, the output is fresh.
import torch
import triton
import triton.language as tl


@triton.jit
def _scale_kernel(x_ptr, out_ptr, n, scale, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(out_ptr + offs, tl.load(x_ptr + offs, mask=mask) * scale, mask=mask)


_KERNELS = {}


def _get_kernel(n, dtype):
    key = (n, dtype)
    kernel = _KERNELS.get(key)
    if kernel is None:
        block = 1024 if n >= 1024 else triton.next_power_of_2(n)
        kernel = _KERNELS[key] = (_scale_kernel, block)
    return kernel


def run(x):
    out = torch.empty_like(x)
    kernel, block = _get_kernel(x.numel(), x.dtype)
    kernel[(triton.cdiv(x.numel(), block),)](x, out, x.numel(), 0.5, BLOCK=block)
    return out
