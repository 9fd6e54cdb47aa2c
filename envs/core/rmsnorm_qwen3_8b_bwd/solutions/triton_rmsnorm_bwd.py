"""RMSNorm backward of Qwen3 8B in Triton, in two passes.

Pass 1: each program owns ROWS consecutive rows; per row it recomputes rstd from x, writes
grad_x = rstd * (dn - n * mean(dn * n)) with n = x * rstd and dn = grad * w, and accumulates grad * n into an
fp32 row of partial weight gradients. Pass 2: one program per column block sums the partial rows in fp32 and
rounds once to bf16. Rows live in registers (4096 fp32 per row)."""

import torch
import triton
import triton.language as tl


@triton.jit
def _rmsnorm_bwd_rows(
    x_ptr, w_ptr, g_ptr, dx_ptr, partial_ptr, n_rows, n_cols, eps, ROWS: tl.constexpr, BLOCK: tl.constexpr
):
    pid = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    cmask = cols < n_cols
    w = tl.load(w_ptr + cols, mask=cmask, other=0.0).to(tl.float32)
    dw = tl.zeros([BLOCK], dtype=tl.float32)
    for i in range(ROWS):
        row = pid * ROWS + i
        mask = cmask & ((cols * 0 + row) < n_rows)
        x = tl.load(x_ptr + row * n_cols + cols, mask=mask, other=0.0).to(tl.float32)
        g = tl.load(g_ptr + row * n_cols + cols, mask=mask, other=0.0).to(tl.float32)
        rstd = 1.0 / tl.sqrt(tl.sum(x * x, axis=0) / n_cols + eps)
        n = x * rstd
        dn = g * w
        c = tl.sum(dn * n, axis=0) / n_cols
        tl.store(dx_ptr + row * n_cols + cols, (rstd * (dn - n * c)).to(tl.bfloat16), mask=mask)
        dw += g * n
    tl.store(partial_ptr + pid * n_cols + cols, dw, mask=cmask)


@triton.jit
def _sum_partials(partial_ptr, dw_ptr, n_parts, n_cols, BLOCK: tl.constexpr):
    cols = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = cols < n_cols
    acc = tl.zeros([BLOCK], dtype=tl.float32)
    for p in range(n_parts):
        acc += tl.load(partial_ptr + p * n_cols + cols, mask=mask, other=0.0)
    tl.store(dw_ptr + cols, acc.to(tl.bfloat16), mask=mask)


def run(hidden_states, weight, grad_output):
    x, g = hidden_states.contiguous(), grad_output.contiguous()
    n_rows, n_cols = x.shape
    rows = 16
    n_parts = triton.cdiv(n_rows, rows)
    grad_x = torch.empty_like(x)
    partial = torch.empty((n_parts, n_cols), dtype=torch.float32, device=x.device)
    grad_w = torch.empty_like(weight)
    _rmsnorm_bwd_rows[(n_parts,)](
        x,
        weight,
        g,
        grad_x,
        partial,
        n_rows,
        n_cols,
        1e-6,
        ROWS=rows,
        BLOCK=triton.next_power_of_2(n_cols),
        num_warps=8,
    )
    block = 256
    _sum_partials[(triton.cdiv(n_cols, block),)](partial, grad_w, n_parts, n_cols, BLOCK=block)
    return grad_x, grad_w
