"""Patchify Conv3d of Wan2.1-T2V-14B as a Triton GEMM: out[token, o] = bias[o] + sum_k P[token, k] W[o, k] with
K = 16 channels x 2 x 2 = 64. Each program gathers the patch rows of BLOCK_S tokens straight from the latent
(no im2col buffer), multiplies by a BLOCK_O slice of the weight with tl.dot on fp32 operands, adds the bias and
writes bf16."""

import torch
import triton
import triton.language as tl


@triton.jit
def _patchify_kernel(
    lat_ptr,
    w_ptr,
    b_ptr,
    y_ptr,
    seq_len,
    dim,
    grid_h,
    grid_w,
    stride_c,
    stride_f,
    stride_h,
    K: tl.constexpr,
    BLOCK_S: tl.constexpr,
    BLOCK_O: tl.constexpr,
):
    pid_s, pid_o = tl.program_id(0), tl.program_id(1)
    s = pid_s * BLOCK_S + tl.arange(0, BLOCK_S)
    o = pid_o * BLOCK_O + tl.arange(0, BLOCK_O)
    k = tl.arange(0, K)
    s_mask, o_mask = s < seq_len, o < dim
    # Token s -> (frame, row, col); k -> (channel, i, j) in the weight's (C, 1, 2, 2) order.
    f = s // (grid_h * grid_w)
    r = (s // grid_w) % grid_h
    c = s % grid_w
    ch, i, j = k // 4, (k // 2) % 2, k % 2
    src = (
        ch[None, :] * stride_c
        + f[:, None] * stride_f
        + (2 * r[:, None] + i[None, :]) * stride_h
        + 2 * c[:, None]
        + j[None, :]
    )
    patches = tl.load(lat_ptr + src, mask=s_mask[:, None], other=0.0).to(tl.float32)
    w = tl.load(w_ptr + o[None, :] * K + k[:, None], mask=o_mask[None, :], other=0.0).to(tl.float32)
    acc = tl.dot(patches, w)
    acc += tl.load(b_ptr + o, mask=o_mask, other=0.0).to(tl.float32)[None, :]
    tl.store(
        y_ptr + s[:, None] * dim + o[None, :], acc.to(tl.bfloat16), mask=s_mask[:, None] & o_mask[None, :]
    )


def run(latent, weight, bias):
    latent, weight = latent.contiguous(), weight.contiguous()
    channels, frames, height, width = latent.shape
    dim = weight.shape[0]
    grid_h, grid_w = height // 2, width // 2
    seq_len = frames * grid_h * grid_w
    out = torch.empty((seq_len, dim), dtype=latent.dtype, device=latent.device)
    block_s, block_o = 32, 128
    grid = (triton.cdiv(seq_len, block_s), triton.cdiv(dim, block_o))
    _patchify_kernel[grid](
        latent,
        weight,
        bias,
        out,
        seq_len,
        dim,
        grid_h,
        grid_w,
        latent.stride(0),
        latent.stride(1),
        latent.stride(2),
        K=channels * 4,
        BLOCK_S=block_s,
        BLOCK_O=block_o,
        num_warps=4,
    )
    return out
