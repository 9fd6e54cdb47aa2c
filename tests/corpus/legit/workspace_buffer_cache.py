# A cached workspace buffer keyed by device and size: scratch space, never returned.
import torch
import triton
import triton.language as tl

_WORKSPACE = {}


@triton.jit
def _two_pass_kernel(x_ptr, ws_ptr, out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    v = tl.load(x_ptr + offs, mask=mask)
    tl.store(ws_ptr + offs, v * 2.0, mask=mask)
    tl.store(out_ptr + offs, tl.load(ws_ptr + offs, mask=mask) + 1.0, mask=mask)


def _workspace(device, numel):
    key = (device, numel)
    buf = _WORKSPACE.get(key)
    if buf is None:
        buf = _WORKSPACE[key] = torch.empty(numel, device=device, dtype=torch.float32)
    return buf


def run(x):
    out = torch.empty_like(x)
    ws = _workspace(x.device, x.numel())
    _two_pass_kernel[(triton.cdiv(x.numel(), 1024),)](x, ws, out, x.numel(), BLOCK=1024)
    return out
