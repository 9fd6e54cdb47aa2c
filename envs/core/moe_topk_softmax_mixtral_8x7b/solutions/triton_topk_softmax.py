"""Mixtral router top-2 in Triton: each program takes BLOCK_T tokens x 8 experts, finds the two largest logits
(softmax is monotonic, so the top-2 of the probabilities are the top-2 of the logits) and renormalises their
probabilities: w1 = 1 / (1 + exp(l2 - l1)), w2 = 1 - w1, which is p1 / (p1 + p2) without the full softmax."""

import torch
import triton
import triton.language as tl


@triton.jit
def _topk_softmax_kernel(
    logits_ptr, w_ptr, ids_ptr, n_tokens, N_EXPERTS: tl.constexpr, BLOCK_T: tl.constexpr
):
    rows = tl.program_id(0) * BLOCK_T + tl.arange(0, BLOCK_T)
    experts = tl.arange(0, N_EXPERTS)
    rmask = rows < n_tokens
    x = tl.load(logits_ptr + rows[:, None] * N_EXPERTS + experts[None, :], mask=rmask[:, None], other=0.0)
    l1 = tl.max(x, axis=1)
    # The lowest index among equal maxima, as torch.topk picks on CPU and GPU.
    id1 = tl.min(tl.where(x == l1[:, None], experts[None, :], N_EXPERTS), axis=1)
    x2 = tl.where(experts[None, :] == id1[:, None], float("-inf"), x)
    l2 = tl.max(x2, axis=1)
    id2 = tl.min(tl.where(x2 == l2[:, None], experts[None, :], N_EXPERTS), axis=1)
    w1 = 1.0 / (1.0 + tl.exp(l2 - l1))
    tl.store(w_ptr + rows * 2, w1, mask=rmask)
    tl.store(w_ptr + rows * 2 + 1, 1.0 - w1, mask=rmask)
    tl.store(ids_ptr + rows * 2, id1.to(tl.int64), mask=rmask)
    tl.store(ids_ptr + rows * 2 + 1, id2.to(tl.int64), mask=rmask)


def run(router_logits):
    logits = router_logits.contiguous()
    n_tokens, n_experts = logits.shape
    weights = torch.empty((n_tokens, 2), dtype=torch.float32, device=logits.device)
    ids = torch.empty((n_tokens, 2), dtype=torch.int64, device=logits.device)
    block = 128
    _topk_softmax_kernel[(triton.cdiv(n_tokens, block),)](
        logits, weights, ids, n_tokens, N_EXPERTS=n_experts, BLOCK_T=block
    )
    return weights, ids
