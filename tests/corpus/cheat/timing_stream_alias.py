# expect: timing.stream
# The same side stream, reached through an import alias and a local alias of the class.
import torch
import triton
import triton.language as tl
from torch import cuda as c


@triton.jit
def _relu_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(out_ptr + offs, tl.maximum(tl.load(x_ptr + offs, mask=mask), 0.0), mask=mask)


S = c.Stream
ctx = c.stream


def run(x):
    out = torch.empty_like(x)
    s = S()
    with ctx(s):
        _relu_kernel[(triton.cdiv(x.numel(), 1024),)](x, out, x.numel(), BLOCK=1024)
    return out
