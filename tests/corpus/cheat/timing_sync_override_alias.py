# expect: harness.module-assign
# The same override through a chain of local aliases, done lazily inside run.
import torch
import triton
import triton.language as tl


@triton.jit
def _copy_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(out_ptr + offs, tl.load(x_ptr + offs, mask=mask), mask=mask)


def _noop(*args, **kwargs):
    return None


def run(x):
    t = torch
    cu = t.cuda
    cu.synchronize = _noop
    out = torch.empty_like(x)
    _copy_kernel[(triton.cdiv(x.numel(), 512),)](x, out, x.numel(), BLOCK=512)
    return out
