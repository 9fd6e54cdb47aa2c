"""RMSNorm of Llama 3.1 8B in Triton, written naively: one program per row with a single warp, walking the
row twice in chunks of 128 (sum of squares, then normalise and scale). Correct, and slower than the
register-resident version beside it: the reward should tell them apart."""

import torch
import triton
import triton.language as tl


@triton.jit
def _rmsnorm_naive_kernel(x_ptr, w_ptr, y_ptr, stride, n_cols, eps, CHUNK: tl.constexpr):
    row = tl.program_id(0)
    acc = tl.zeros((CHUNK,), dtype=tl.float32)
    for start in range(0, n_cols, CHUNK):
        cols = start + tl.arange(0, CHUNK)
        x = tl.load(x_ptr + row * stride + cols, mask=cols < n_cols, other=0.0).to(tl.float32)
        acc += x * x
    rstd = 1.0 / tl.sqrt(tl.sum(acc, axis=0) / n_cols + eps)
    for start in range(0, n_cols, CHUNK):
        cols = start + tl.arange(0, CHUNK)
        mask = cols < n_cols
        x = tl.load(x_ptr + row * stride + cols, mask=mask, other=0.0).to(tl.float32)
        normed = (x * rstd).to(tl.bfloat16).to(tl.float32)
        w = tl.load(w_ptr + cols, mask=mask, other=0.0).to(tl.float32)
        tl.store(y_ptr + row * stride + cols, (normed * w).to(tl.bfloat16), mask=mask)


def run(hidden_states, weight):
    rows, cols = hidden_states.shape
    out = torch.empty_like(hidden_states)
    _rmsnorm_naive_kernel[(rows,)](
        hidden_states, weight, out, hidden_states.stride(0), cols, 1e-5, CHUNK=128, num_warps=1
    )
    return out
