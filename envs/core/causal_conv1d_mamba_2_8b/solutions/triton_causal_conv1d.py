"""Depthwise causal conv1d + SiLU of Mamba 2.8B in Triton: each program owns a tile of channels x time steps
of one sequence and sums the 4 taps from shifted loads (masked to zero before t = 0), in fp32."""

import torch
import triton
import triton.language as tl


@triton.jit
def _causal_conv1d_kernel(
    x_ptr,
    w_ptr,
    b_ptr,
    y_ptr,
    channels,
    seqlen,
    stride_b,
    stride_d,
    WIDTH: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BLOCK_T: tl.constexpr,
):
    pid_b, pid_d, pid_t = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
    t = pid_t * BLOCK_T + tl.arange(0, BLOCK_T)
    d_mask = d < channels
    base = x_ptr + pid_b * stride_b + d[:, None] * stride_d
    acc = (
        tl.zeros((BLOCK_D, BLOCK_T), dtype=tl.float32)
        + tl.load(b_ptr + d, mask=d_mask, other=0.0).to(tl.float32)[:, None]
    )
    for k in tl.static_range(WIDTH):
        src = t - (WIDTH - 1) + k
        mask = d_mask[:, None] & (src[None, :] >= 0) & (src[None, :] < seqlen)
        xv = tl.load(base + src[None, :], mask=mask, other=0.0).to(tl.float32)
        wv = tl.load(w_ptr + d * WIDTH + k, mask=d_mask, other=0.0).to(tl.float32)
        acc += wv[:, None] * xv
    y = acc / (1.0 + tl.exp(-acc))
    out_mask = d_mask[:, None] & (t[None, :] < seqlen)
    tl.store(y_ptr + pid_b * stride_b + d[:, None] * stride_d + t[None, :], y.to(tl.bfloat16), mask=out_mask)


def run(x, weight, bias):
    x, weight = x.contiguous(), weight.contiguous()
    batch, channels, seqlen = x.shape
    out = torch.empty_like(x)
    block_d, block_t = 16, 64
    grid = (batch, triton.cdiv(channels, block_d), triton.cdiv(seqlen, block_t))
    _causal_conv1d_kernel[grid](
        x,
        weight,
        bias,
        out,
        channels,
        seqlen,
        x.stride(0),
        x.stride(1),
        WIDTH=weight.shape[1],
        BLOCK_D=block_d,
        BLOCK_T=block_t,
        num_warps=4,
    )
    return out
