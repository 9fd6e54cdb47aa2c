"""Cross-entropy backward over the Llama 3 vocabulary in Triton.

A one-program kernel counts the valid labels (the mean's divisor). Then one program per row makes two passes
over the 128256 logits in blocks: an online max / sum-of-exp pass, then a pass that writes
(softmax - onehot) * grad_loss / n_valid, or zeros for an ignored row."""

import torch
import triton
import triton.language as tl


@triton.jit
def _count_valid(labels_ptr, count_ptr, n_rows, ignore_index, BLOCK: tl.constexpr):
    total = tl.zeros([BLOCK], dtype=tl.float32)
    for start in range(0, n_rows, BLOCK):
        offs = start + tl.arange(0, BLOCK)
        labels = tl.load(labels_ptr + offs, mask=offs < n_rows, other=ignore_index)
        total += tl.where(labels != ignore_index, 1.0, 0.0)
    tl.store(count_ptr, tl.sum(total, axis=0))


@triton.jit
def _ce_bwd_kernel(
    logits_ptr, labels_ptr, grad_loss_ptr, count_ptr, grad_ptr, n_cols, ignore_index, BLOCK: tl.constexpr
):
    row = tl.program_id(0)
    base = row.to(tl.int64) * n_cols
    label = tl.load(labels_ptr + row)
    m = tl.full([BLOCK], float("-inf"), tl.float32)
    s = tl.zeros([BLOCK], dtype=tl.float32)
    for start in range(0, n_cols, BLOCK):
        cols = start + tl.arange(0, BLOCK)
        x = tl.load(logits_ptr + base + cols, mask=cols < n_cols, other=float("-inf"))
        m_new = tl.maximum(m, x)
        # Lanes that have only seen -inf keep s = 0 (avoid exp(-inf - -inf) = nan).
        s = tl.where(m_new == float("-inf"), 0.0, s * tl.exp(m - m_new) + tl.exp(x - m_new))
        m = m_new
    row_max = tl.max(m, axis=0)
    total = tl.sum(tl.where(m == float("-inf"), 0.0, s * tl.exp(m - row_max)), axis=0)
    scale = tl.load(grad_loss_ptr) / tl.load(count_ptr)
    scale = tl.where(label == ignore_index, 0.0, scale)
    for start in range(0, n_cols, BLOCK):
        cols = start + tl.arange(0, BLOCK)
        mask = cols < n_cols
        x = tl.load(logits_ptr + base + cols, mask=mask, other=float("-inf"))
        p = tl.exp(x - row_max) / total
        grad = (p - tl.where(cols == label, 1.0, 0.0)) * scale
        tl.store(grad_ptr + base + cols, grad, mask=mask)


def run(logits, labels, grad_loss):
    logits, labels = logits.contiguous(), labels.contiguous()
    n_rows, n_cols = logits.shape
    grad = torch.empty_like(logits)
    count = torch.empty((1,), dtype=torch.float32, device=logits.device)
    _count_valid[(1,)](labels, count, n_rows, -100, BLOCK=1024)
    _ce_bwd_kernel[(n_rows,)](logits, labels, grad_loss, count, grad, n_cols, -100, BLOCK=4096, num_warps=8)
    return grad
