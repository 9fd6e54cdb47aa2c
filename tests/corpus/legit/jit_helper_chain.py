# A kernel calling @triton.jit helpers: every helper is reachable from run.
import torch
import triton
import triton.language as tl


@triton.jit
def _gelu(x):
    return 0.5 * x * (1.0 + tl.erf(x * 0.7071067811865476))


@triton.jit
def _load_row(ptr, row, N, BLOCK: tl.constexpr):
    cols = tl.arange(0, BLOCK)
    return tl.load(ptr + row * N + cols, mask=cols < N, other=0.0)


@triton.jit
def _gelu_rows(x_ptr, out_ptr, N, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    x = _load_row(x_ptr, row, N, BLOCK).to(tl.float32)
    cols = tl.arange(0, BLOCK)
    tl.store(out_ptr + row * N + cols, _gelu(x).to(out_ptr.dtype.element_ty), mask=cols < N)


def run(x):
    x2 = x.reshape(-1, x.shape[-1])
    out = torch.empty_like(x2)
    _gelu_rows[(x2.shape[0],)](x2, out, x2.shape[1], BLOCK=triton.next_power_of_2(x2.shape[1]))
    return out.reshape(x.shape)
