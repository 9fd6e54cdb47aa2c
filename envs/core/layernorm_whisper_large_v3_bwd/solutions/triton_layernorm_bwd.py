"""LayerNorm backward of Whisper large-v3 (fp16) in Triton, in two passes.

Pass 1: each program walks ROWS_PER_PROGRAM tokens in tiles of TILE_ROWS, recomputes mean / rstd in fp32, writes grad_x and keeps
running fp32 sums of grad_out * x_hat and grad_out for its rows; it stores those partial sums (one row per
program). Pass 2 reduces the partial sums over programs, column block by column block, and rounds to fp16.
grad_x = rstd * (w*dy - mean(w*dy) - x_hat * mean(w*dy * x_hat)).
"""

import torch
import triton
import triton.language as tl


@triton.jit
def _rows_kernel(
    x_ptr,
    w_ptr,
    dy_ptr,
    dx_ptr,
    dw_part_ptr,
    db_part_ptr,
    n_rows,
    n_cols,
    eps,
    ROWS_PER_PROGRAM: tl.constexpr,
    TILE_ROWS: tl.constexpr,
    BLOCK: tl.constexpr,
):
    pid = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    col_mask = cols < n_cols
    w = tl.load(w_ptr + cols, mask=col_mask, other=0.0).to(tl.float32)[None, :]
    dw_acc = tl.zeros((BLOCK,), dtype=tl.float32)
    db_acc = tl.zeros((BLOCK,), dtype=tl.float32)
    for tile in range(ROWS_PER_PROGRAM // TILE_ROWS):
        rows = pid * ROWS_PER_PROGRAM + tile * TILE_ROWS + tl.arange(0, TILE_ROWS)
        mask = (rows < n_rows)[:, None] & col_mask[None, :]
        offs = rows[:, None] * n_cols + cols[None, :]
        x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        dy = tl.load(dy_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        mean = tl.sum(x, axis=1) / n_cols
        centered = tl.where(mask, x - mean[:, None], 0.0)
        rstd = 1.0 / tl.sqrt(tl.sum(centered * centered, axis=1) / n_cols + eps)
        x_hat = centered * rstd[:, None]
        wdy = w * dy
        c1 = tl.sum(wdy * x_hat, axis=1) / n_cols
        c2 = tl.sum(wdy, axis=1) / n_cols
        dx = (wdy - (x_hat * c1[:, None] + c2[:, None])) * rstd[:, None]
        tl.store(dx_ptr + offs, dx.to(tl.float16), mask=mask)
        dw_acc += tl.sum(dy * x_hat, axis=0)
        db_acc += tl.sum(dy, axis=0)
    tl.store(dw_part_ptr + pid * n_cols + cols, dw_acc, mask=col_mask)
    tl.store(db_part_ptr + pid * n_cols + cols, db_acc, mask=col_mask)


@triton.jit
def _reduce_kernel(
    dw_part_ptr, db_part_ptr, dw_ptr, db_ptr, n_parts, n_cols, BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr
):
    cols = tl.program_id(0) * BLOCK_C + tl.arange(0, BLOCK_C)
    col_mask = cols < n_cols
    dw = tl.zeros((BLOCK_C,), dtype=tl.float32)
    db = tl.zeros((BLOCK_C,), dtype=tl.float32)
    for start in range(0, n_parts, BLOCK_P):
        parts = start + tl.arange(0, BLOCK_P)
        mask = (parts < n_parts)[:, None] & col_mask[None, :]
        offs = parts[:, None] * n_cols + cols[None, :]
        dw += tl.sum(tl.load(dw_part_ptr + offs, mask=mask, other=0.0), axis=0)
        db += tl.sum(tl.load(db_part_ptr + offs, mask=mask, other=0.0), axis=0)
    tl.store(dw_ptr + cols, dw.to(tl.float16), mask=col_mask)
    tl.store(db_ptr + cols, db.to(tl.float16), mask=col_mask)


def run(x, weight, bias, grad_out):
    x, grad_out = x.contiguous(), grad_out.contiguous()
    n_cols = x.shape[-1]
    n_rows = x.numel() // n_cols
    rows_per_program = 64
    n_parts = triton.cdiv(n_rows, rows_per_program)
    grad_x = torch.empty_like(x)
    dw_part = torch.empty((n_parts, n_cols), dtype=torch.float32, device=x.device)
    db_part = torch.empty((n_parts, n_cols), dtype=torch.float32, device=x.device)
    _rows_kernel[(n_parts,)](
        x,
        weight,
        grad_out,
        grad_x,
        dw_part,
        db_part,
        n_rows,
        n_cols,
        1e-5,
        ROWS_PER_PROGRAM=rows_per_program,
        TILE_ROWS=4,
        BLOCK=triton.next_power_of_2(n_cols),
        num_warps=8,
    )
    grad_weight = torch.empty_like(weight)
    grad_bias = torch.empty_like(bias)
    block_c = 128
    _reduce_kernel[(triton.cdiv(n_cols, block_c),)](
        dw_part, db_part, grad_weight, grad_bias, n_parts, n_cols, BLOCK_P=32, BLOCK_C=block_c, num_warps=4
    )
    return grad_x, grad_weight, grad_bias
