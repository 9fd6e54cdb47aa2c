"""Llama 3.1 70B decode attention over an FP8 (e4m3) KV cache in Triton: one program per (sequence, KV head)
streams that head's cache once in BLOCK_S-token tiles, widens e4m3 to fp32 and applies the per-tensor scales
(k_scale folded into the query, v_scale applied once at the end), and serves all 8 query heads of the group with
an online softmax in fp32."""

import torch
import triton
import triton.language as tl


@triton.jit
def _fp8_kv_decode_kernel(
    q_ptr,
    k_ptr,
    ks_ptr,
    v_ptr,
    vs_ptr,
    out_ptr,
    kv_len,
    n_kv_heads,
    sm_scale,
    GROUP: tl.constexpr,
    HEAD_DIM: tl.constexpr,
    BLOCK_S: tl.constexpr,
):
    b = tl.program_id(0)
    kvh = tl.program_id(1)
    g = tl.arange(0, GROUP)
    d = tl.arange(0, HEAD_DIM)
    s_offs = tl.arange(0, BLOCK_S)
    q_base = (b * n_kv_heads + kvh) * GROUP * HEAD_DIM
    # (q . (k * k_scale)) * sm_scale == ((q * k_scale * sm_scale) . k): the scale is applied to 8 rows, not the cache.
    q_scale = tl.load(ks_ptr) * sm_scale
    q = tl.load(q_ptr + q_base + g[:, None] * HEAD_DIM + d[None, :]).to(tl.float32) * q_scale
    m = tl.full([GROUP], float("-inf"), tl.float32)
    denom = tl.zeros([GROUP], dtype=tl.float32)
    acc = tl.zeros([GROUP, HEAD_DIM], dtype=tl.float32)
    row_stride = n_kv_heads * HEAD_DIM
    for start in range(0, kv_len, BLOCK_S):
        pos = start + s_offs
        smask = pos < kv_len
        kv_offs = (
            b.to(tl.int64) * kv_len * row_stride + pos[:, None] * row_stride + kvh * HEAD_DIM + d[None, :]
        )
        k = tl.load(k_ptr + kv_offs, mask=smask[:, None], other=0.0).to(tl.float32)
        v = tl.load(v_ptr + kv_offs, mask=smask[:, None], other=0.0).to(tl.float32)
        scores = tl.sum(q[:, None, :] * k[None, :, :], axis=2)
        scores = tl.where(smask[None, :], scores, float("-inf"))
        m_new = tl.maximum(m, tl.max(scores, axis=1))
        alpha = tl.exp(m - m_new)
        p = tl.exp(scores - m_new[:, None])
        denom = denom * alpha + tl.sum(p, axis=1)
        acc = acc * alpha[:, None] + tl.sum(p[:, :, None] * v[None, :, :], axis=1)
        m = m_new
    out = acc * (tl.load(vs_ptr) / denom[:, None])
    tl.store(out_ptr + q_base + g[:, None] * HEAD_DIM + d[None, :], out.to(tl.bfloat16))


def run(q, k_cache, k_scale, v_cache, v_scale):
    q, k_cache, v_cache = q.contiguous(), k_cache.contiguous(), v_cache.contiguous()
    batch, n_heads, head_dim = q.shape
    kv_len, n_kv_heads = k_cache.shape[1], k_cache.shape[2]
    out = torch.empty_like(q)
    _fp8_kv_decode_kernel[(batch, n_kv_heads)](
        q,
        k_cache,
        k_scale,
        v_cache,
        v_scale,
        out,
        kv_len,
        n_kv_heads,
        head_dim**-0.5,
        GROUP=n_heads // n_kv_heads,
        HEAD_DIM=head_dim,
        BLOCK_S=16,
    )
    return out
