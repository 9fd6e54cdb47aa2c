# expect: caching.state-result
# outputs: out
# Destination style: copies a stored result into the output buffer.
import torch
import triton
import triton.language as tl


@triton.jit
def _scale_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(out_ptr + offs, 2.0 * tl.load(x_ptr + offs, mask=mask), mask=mask)


_by_shape = {}


def run(x, out):
    key = tuple(x.shape)
    if key in _by_shape:
        out.copy_(_by_shape[key])
        return None
    _scale_kernel[(triton.cdiv(x.numel(), 1024),)](x, out, x.numel(), BLOCK=1024)
    _by_shape[key] = out.clone()
    return None
