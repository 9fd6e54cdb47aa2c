"""DeepSeek-V3 noaux_tc router in Triton: one program per BLOCK_T tokens computes the 256 gate logits with an fp32
GEMM (ieee precision: tf32 would flip expert choices), then does the whole selection in registers: sigmoid,
bias, per-group top-2 sums, the best 4 of 8 groups, and the best 8 experts, each top-k as repeated
max-and-mask (largest first, lowest index on ties), and finally the renormalised, scaled weights."""

import torch
import triton
import triton.language as tl


@triton.jit
def _grouped_topk_kernel(
    x_ptr,
    w_ptr,
    bias_ptr,
    ids_ptr,
    weights_ptr,
    n_tokens,
    hidden,
    N_EXPERTS: tl.constexpr,
    N_GROUP: tl.constexpr,
    TOPK_GROUP: tl.constexpr,
    TOP_K: tl.constexpr,
    SCALE: tl.constexpr,
    BLOCK_T: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    GROUP_SIZE: tl.constexpr = N_EXPERTS // N_GROUP
    rows = tl.program_id(0) * BLOCK_T + tl.arange(0, BLOCK_T)
    rmask = rows < n_tokens
    experts = tl.arange(0, N_EXPERTS)
    ks = tl.arange(0, BLOCK_K)
    logits = tl.zeros([BLOCK_T, N_EXPERTS], dtype=tl.float32)
    for k0 in range(0, hidden, BLOCK_K):
        kk = k0 + ks
        kmask = kk < hidden
        x = tl.load(
            x_ptr + rows[:, None] * hidden + kk[None, :], mask=rmask[:, None] & kmask[None, :], other=0.0
        )
        w = tl.load(w_ptr + experts[None, :] * hidden + kk[:, None], mask=kmask[:, None], other=0.0)
        logits += tl.dot(x.to(tl.float32), w, input_precision="ieee")
    scores = 1.0 / (1.0 + tl.exp(-logits))
    choice = scores + tl.load(bias_ptr + experts)[None, :]

    # Group score: the sum of the two largest choice values in each group of 32 experts.
    grouped = tl.reshape(choice, [BLOCK_T, N_GROUP, GROUP_SIZE])
    members = tl.arange(0, GROUP_SIZE)[None, None, :]
    top1 = tl.max(grouped, axis=2)
    first = tl.min(tl.where(grouped == top1[:, :, None], members, GROUP_SIZE), axis=2)
    top2 = tl.max(tl.where(members == first[:, :, None], float("-inf"), grouped), axis=2)
    group_scores = top1 + top2

    groups = tl.arange(0, N_GROUP)[None, :]
    keep = tl.zeros([BLOCK_T, N_GROUP], dtype=tl.int32)
    for _ in tl.static_range(TOPK_GROUP):
        best = tl.max(group_scores, axis=1)
        pick = tl.min(tl.where(group_scores == best[:, None], groups, N_GROUP), axis=1)
        chosen = groups == pick[:, None]
        keep = tl.where(chosen, 1, keep)
        group_scores = tl.where(chosen, float("-inf"), group_scores)
    keep_experts = tl.reshape(
        tl.broadcast_to(keep[:, :, None], [BLOCK_T, N_GROUP, GROUP_SIZE]), [BLOCK_T, N_EXPERTS]
    )
    choice = tl.where(keep_experts != 0, choice, 0.0)

    slots = tl.arange(0, TOP_K)[None, :]
    ids = tl.zeros([BLOCK_T, TOP_K], dtype=tl.int32)
    weights = tl.zeros([BLOCK_T, TOP_K], dtype=tl.float32)
    for i in tl.static_range(TOP_K):
        best = tl.max(choice, axis=1)
        pick = tl.min(tl.where(choice == best[:, None], experts[None, :], N_EXPERTS), axis=1)
        chosen = experts[None, :] == pick[:, None]
        weight = tl.sum(tl.where(chosen, scores, 0.0), axis=1)
        ids = tl.where(slots == i, pick[:, None], ids)
        weights = tl.where(slots == i, weight[:, None], weights)
        choice = tl.where(chosen, float("-inf"), choice)
    weights = weights / (tl.sum(weights, axis=1)[:, None] + 1e-20) * SCALE
    out = rows[:, None] * TOP_K + slots
    tl.store(ids_ptr + out, ids.to(tl.int64), mask=rmask[:, None])
    tl.store(weights_ptr + out, weights, mask=rmask[:, None])


def run(hidden_states, weight, e_score_correction_bias):
    x, w = hidden_states.contiguous(), weight.contiguous()
    n_tokens, hidden = x.shape
    n_experts = w.shape[0]
    ids = torch.empty((n_tokens, 8), dtype=torch.int64, device=x.device)
    weights = torch.empty((n_tokens, 8), dtype=torch.float32, device=x.device)
    block_t = 16
    _grouped_topk_kernel[(triton.cdiv(n_tokens, block_t),)](
        x,
        w,
        e_score_correction_bias,
        ids,
        weights,
        n_tokens,
        hidden,
        N_EXPERTS=n_experts,
        N_GROUP=8,
        TOPK_GROUP=4,
        TOP_K=8,
        SCALE=2.5,
        BLOCK_T=block_t,
        BLOCK_K=64,
        num_warps=8,
    )
    return ids, weights
