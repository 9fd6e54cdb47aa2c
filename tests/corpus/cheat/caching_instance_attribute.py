# expect: caching.state-result
# The previous output kept on an instance of a local class.
import torch
import triton
import triton.language as tl


@triton.jit
def _scale_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(out_ptr + offs, 2.0 * tl.load(x_ptr + offs, mask=mask), mask=mask)


class _Memo:
    def __init__(self):
        self.out = None


_memo = _Memo()


def run(x):
    if _memo.out is not None and _memo.out.shape == x.shape:
        return _memo.out
    out = torch.empty_like(x)
    _scale_kernel[(triton.cdiv(x.numel(), 1024),)](x, out, x.numel(), BLOCK=1024)
    _memo.out = out
    return out
