"""FP8 e4m3 GEMM with per-token activation scales and per-channel weight scales (SD3 Medium attn.to_out) in
Triton: a tiled GEMM over K in steps of BLOCK_K; the scales and the bias are applied once to the fp32
accumulator in the epilogue. Operands are widened to fp32 before tl.dot so the kernel is also exact under
the CPU interpreter."""

import torch
import triton
import triton.language as tl


@triton.jit
def _fp8_gemm_kernel(
    x_ptr,
    xs_ptr,
    w_ptr,
    ws_ptr,
    b_ptr,
    y_ptr,
    m,
    n,
    k,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    pid_m, pid_n = tl.program_id(0), tl.program_id(1)
    rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    row_mask, col_mask = rows < m, cols < n
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for start in range(0, k, BLOCK_K):
        kk = start + tl.arange(0, BLOCK_K)
        k_mask = kk < k
        a = tl.load(
            x_ptr + rows[:, None] * k + kk[None, :], mask=row_mask[:, None] & k_mask[None, :], other=0.0
        )
        b = tl.load(
            w_ptr + cols[None, :] * k + kk[:, None], mask=col_mask[None, :] & k_mask[:, None], other=0.0
        )
        acc += tl.dot(a.to(tl.float32), b.to(tl.float32))
    x_scale = tl.load(xs_ptr + rows, mask=row_mask, other=0.0)
    w_scale = tl.load(ws_ptr + cols, mask=col_mask, other=0.0)
    bias = tl.load(b_ptr + cols, mask=col_mask, other=0.0).to(tl.float32)
    y = acc * x_scale[:, None] * w_scale[None, :] + bias[None, :]
    tl.store(
        y_ptr + rows[:, None] * n + cols[None, :],
        y.to(tl.bfloat16),
        mask=row_mask[:, None] & col_mask[None, :],
    )


def run(x_fp8, x_scale, w_fp8, w_scale, bias):
    x_fp8, w_fp8, x_scale = x_fp8.contiguous(), w_fp8.contiguous(), x_scale.contiguous()
    m, k = x_fp8.shape
    n = w_fp8.shape[0]
    out = torch.empty((m, n), dtype=torch.bfloat16, device=x_fp8.device)
    block_m, block_n, block_k = 64, 128, 64
    grid = (triton.cdiv(m, block_m), triton.cdiv(n, block_n))
    _fp8_gemm_kernel[grid](
        x_fp8,
        x_scale,
        w_fp8,
        w_scale,
        bias,
        out,
        m,
        n,
        k,
        BLOCK_M=block_m,
        BLOCK_N=block_n,
        BLOCK_K=block_k,
        num_warps=8,
    )
    return out
