# expect: caching.identity-key
# The same memo keyed on id() through helper variables and a dict.get.
import torch
import triton
import triton.language as tl


@triton.jit
def _scale_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(out_ptr + offs, 2.0 * tl.load(x_ptr + offs, mask=mask), mask=mask)


_seen = dict()
_ident = id


def run(x):
    k = (_ident(x), x.shape)
    hit = _seen.get(k)
    if hit is not None:
        return hit
    out = torch.empty_like(x)
    _scale_kernel[(triton.cdiv(x.numel(), 1024),)](x, out, x.numel(), BLOCK=1024)
    _seen[k] = out
    return out
