"""DeepSeek-V3 FP8 block-scaled GEMM (q_b_proj) in Triton: a tiled GEMM whose K step is one 128-wide scale block
and whose N tile is one 128-row weight block, so each step applies one activation scale per row and one weight
scale per tile: acc += (x_blk @ w_blk^T) * x_scale[:, k] * w_scale[n, k]. Operands are widened from e4m3 to fp32
before tl.dot (exact: every e4m3 value is an fp32 value)."""

import torch
import triton
import triton.language as tl


@triton.jit
def _fp8_block_gemm_kernel(
    x_ptr,
    xs_ptr,
    w_ptr,
    ws_ptr,
    out_ptr,
    M,
    N,
    K,
    k_blocks,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    ks = tl.arange(0, BLOCK_K)
    rmask = rows < M
    acc = tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.float32)
    for kb in range(k_blocks):
        kk = kb * BLOCK_K + ks
        a = tl.load(x_ptr + rows[:, None] * K + kk[None, :], mask=rmask[:, None], other=0.0).to(tl.float32)
        b = tl.load(w_ptr + cols[None, :] * K + kk[:, None]).to(tl.float32)
        a_scale = tl.load(xs_ptr + rows * k_blocks + kb, mask=rmask, other=0.0)
        b_scale = tl.load(ws_ptr + pid_n * k_blocks + kb)
        acc += tl.dot(a, b) * (a_scale[:, None] * b_scale)
    tl.store(out_ptr + rows[:, None] * N + cols[None, :], acc.to(tl.bfloat16), mask=rmask[:, None])


def run(x, x_scale, weight, weight_scale):
    x, x_scale = x.contiguous(), x_scale.contiguous()
    weight, weight_scale = weight.contiguous(), weight_scale.contiguous()
    M, K = x.shape
    N = weight.shape[0]
    out = torch.empty((M, N), dtype=torch.bfloat16, device=x.device)
    block_m = 16
    # BLOCK_N and BLOCK_K must equal the 128x128 scale block for one scale per tile and step.
    grid = (triton.cdiv(M, block_m), N // 128)
    _fp8_block_gemm_kernel[grid](
        x,
        x_scale,
        weight,
        weight_scale,
        out,
        M,
        N,
        K,
        K // 128,
        BLOCK_M=block_m,
        BLOCK_N=128,
        BLOCK_K=128,
        num_warps=4,
    )
    return out
