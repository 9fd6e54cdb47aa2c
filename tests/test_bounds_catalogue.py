"""A catalogue of references in the ways model code writes them, each counted by hand: the MACs per precision
class and the bytes moved (every input read once, every output written once at its dtype). These are the
shapes of problem a bound must generalise to beyond the dev set: norms, pooling, resampling, losses,
scans, sorting, scatters, convolutions of every kind, attention variants, loops, quantized products."""

from __future__ import annotations

import pytest

from solgym.value_range import distinct_drawn
from tests.test_bounds import make_problem, one

HEAD = "import math\nimport torch\nimport torch.nn.functional as F\n"
BF, F16, F32 = "bfloat16", "float16", "float32"


def case(body: str, inputs: dict, outputs: dict, axes: dict, macs: dict, nbytes: float | None) -> tuple:
    """`axes` maps each axis to a const size; the workload sets the var axis V (present in every case) to
    the value given for it, so the problem has one var axis as a dev problem would."""
    return body, inputs, outputs, axes, macs, nbytes


B, M, L = 4, 64, 128  # batch, rows, sequence
CATALOGUE = {
    "layer_norm": case(
        "def run(x, w, b):\n    return F.layer_norm(x, (x.shape[-1],), w, b, 1e-5)\n",
        {"x": (["V", 256], BF), "w": ([256], BF), "b": ([256], BF)},
        {"y": (["V", 256], BF)},
        {"V": M},
        {},
        (M * 256 * 2 + 2 * 256) * 2,
    ),
    "group_norm_silu": case(
        "def run(x, w, b):\n    return F.silu(F.group_norm(x, 8, w, b))\n",
        {"x": (["V", 32, 16, 16], F16), "w": ([32], F16), "b": ([32], F16)},
        {"y": (["V", 32, 16, 16], F16)},
        {"V": B},
        {},
        (B * 32 * 256 * 2 + 64) * 2,
    ),
    "conv_batch_norm_relu": case(
        "def run(x, w, g, b, m, v):\n"
        "    return F.relu(F.batch_norm(F.conv2d(x, w, padding=1), m, v, g, b, False, 0.1, 1e-5))\n",
        {"x": (["V", 16, 8, 8], BF), "w": ([32, 16, 3, 3], BF), **{n: ([32], F32) for n in "gbmv"}},
        {"y": (["V", 32, 8, 8], BF)},
        {"V": B},
        {"bf16": B * 32 * 64 * 16 * 9},
        (B * 16 * 64 + 32 * 16 * 9 + B * 32 * 64) * 2 + 4 * 32 * 4,
    ),
    "max_pool": case(
        "def run(x):\n    return F.max_pool2d(x, 3, 2, 1)\n",
        {"x": (["V", 8, 16, 16], BF)},
        {"y": (["V", 8, 8, 8], BF)},
        {"V": B},
        {},
        B * 8 * (256 + 64) * 2,
    ),
    "adaptive_avg_pool": case(
        "def run(x):\n    return F.adaptive_avg_pool2d(x, 1).flatten(1)\n",
        {"x": (["V", 64, 7, 7], F32)},
        {"y": (["V", 64], F32)},
        {"V": B},
        {},
        B * 64 * 50 * 4,
    ),
    "avg_pool_3d": case(
        "def run(x):\n    return F.avg_pool3d(x, 2)\n",
        {"x": (["V", 4, 4, 8, 8], BF)},
        {"y": (["V", 4, 2, 4, 4], BF)},
        {"V": B},
        {},
        B * 4 * (256 + 32) * 2,
    ),
    "bilinear_upsample": case(
        "def run(x):\n    return F.interpolate(x, scale_factor=2, mode='bilinear', align_corners=False)\n",
        {"x": (["V", 4, 8, 8], F16)},
        {"y": (["V", 4, 16, 16], F16)},
        {"V": B},
        {},
        B * 4 * (64 + 256) * 2,
    ),
    "nearest_upsample_conv": case(
        "def run(x, w, b):\n    return F.conv2d(F.interpolate(x, scale_factor=2.0, mode='nearest'), w, b, padding=1)\n",
        {"x": (["V", 8, 8, 8], BF), "w": ([8, 8, 3, 3], BF), "b": ([8], BF)},
        {"y": (["V", 8, 16, 16], BF)},
        {"V": B},
        {"bf16": B * 8 * 256 * 8 * 9},
        (B * 8 * 64 + 8 * 8 * 9 + 8 + B * 8 * 256) * 2,
    ),
    "reflect_pad": case(
        "def run(x):\n    return F.pad(x, (3, 3, 3, 3), mode='reflect')\n",
        {"x": (["V", 4, 16, 16], F32)},
        {"y": (["V", 4, 22, 22], F32)},
        {"V": B},
        {},
        B * 4 * (256 + 484) * 4,
    ),
    "pixel_shuffle": case(
        "def run(x):\n    return F.pixel_shuffle(x, 2)\n",
        {"x": (["V", 16, 8, 8], BF)},
        {"y": (["V", 4, 16, 16], BF)},
        {"V": B},
        {},
        B * 16 * 64 * 2 * 2,
    ),
    "cross_entropy": case(
        "def run(logits, target):\n    return F.cross_entropy(logits.float(), target, label_smoothing=0.1)\n",
        {"logits": (["V", 1000], BF), "target": (["V"], "int64")},
        {"loss": ([], F32)},
        {"V": M},
        {},
        M * 1000 * 2 + M * 8 + 4,
    ),
    "kl_divergence": case(
        "def run(p, q):\n    return F.kl_div(F.log_softmax(p.float(), -1), F.log_softmax(q.float(), -1),"
        " reduction='batchmean', log_target=True)\n",
        {"p": (["V", 512], BF), "q": (["V", 512], BF)},
        {"loss": ([], F32)},
        {"V": M},
        {},
        2 * M * 512 * 2 + 4,
    ),
    "cumsum": case(
        "def run(x):\n    return torch.cumsum(x, dim=-1)\n",
        {"x": (["V", 512], F32)},
        {"y": (["V", 512], F32)},
        {"V": M},
        {},
        M * 512 * 4 * 2,
    ),
    "logcumsumexp_var_mean": case(
        "def run(x):\n    v, m = torch.var_mean(x, -1)\n    return torch.logcumsumexp(x, -1)[..., -1] + v + m\n",
        {"x": (["V", 512], F32)},
        {"y": (["V"], F32)},
        {"V": M},
        {},
        M * 512 * 4 + M * 4,
    ),
    "topk": case(
        "def run(x):\n    return torch.topk(x, 8, dim=-1)\n",
        {"x": (["V", 256], F32)},
        {"v": (["V", 8], F32), "i": (["V", 8], "int64")},
        {"V": M},
        {},
        M * (256 * 4 + 8 * 4 + 8 * 8),
    ),
    "sort_median_quantile": case(
        "def run(x):\n    return torch.sort(x, -1).values[..., 0] + torch.median(x, -1).values"
        " + torch.quantile(x, 0.9, dim=-1)\n",
        {"x": (["V", 256], F32)},
        {"y": (["V"], F32)},
        {"V": M},
        {},
        M * 256 * 4 + M * 4,
    ),
    "index_add": case(
        "def run(src, idx):\n    out = torch.zeros(128, src.shape[1], dtype=src.dtype, device=src.device)\n"
        "    return out.index_add(0, idx, src)\n",
        {"src": (["V", 32], F32), "idx": (["V"], "int64")},
        {"y": ([128, 32], F32)},
        {"V": 256},
        {},
        256 * 32 * 4 + 256 * 8 + 128 * 32 * 4,
    ),
    "embedding_sum": case(
        "def run(w, idx):\n    return F.embedding(idx, w).sum(1)\n",
        {"w": ([100000, 16], F32), "idx": (["V", 4], "int64")},
        {"y": (["V", 16], F32)},
        {"V": M},
        {},
        # Random integer inputs lie in [0, 64): the 256 lookups address at most 64 distinct rows, and as
        # uniform draws repeat, about 64 (1 - (63/64)^256) of them (less three standard deviations).
        M * 4 * 8 + distinct_drawn(M * 4, 1, 64) * 16 * 4 + M * 16 * 4,
    ),
    "rope_position_ids": case(
        "def run(x, cos, sin, pos):\n    c, s = cos[pos][:, None], sin[pos][:, None]\n"
        "    x1, x2 = x.chunk(2, -1)\n    return torch.cat([x1 * c - x2 * s, x2 * c + x1 * s], -1)\n",
        {
            "x": ([2, 4, "V", 32], BF),
            "cos": ([4096, 16], F32),
            "sin": ([4096, 16], F32),
            "pos": ([2, "V"], "int64"),
        },
        {"y": ([2, 4, "V", 32], BF)},
        {"V": 16},
        {},
        # 32 positions drawn from [0, 64): the distinct rows of cos and sin they name.
        2 * 2 * 4 * 16 * 32 * 2 + 2 * distinct_drawn(32, 1, 64) * 16 * 4 + 2 * 16 * 8,
    ),
    # Message passing: a gather of the source rows the edges name, its index expanded over the features.
    "gather_expanded_index": case(
        "def run(x, src):\n    return x.gather(0, src[:, None].expand(-1, x.shape[1])) * 2\n",
        {"x": ([1000, 32], F32), "src": (["V"], "int64")},
        {"y": (["V", 32], F32)},
        {"V": 4096},
        {},
        # 4096 ids drawn from [0, 64): the distinct rows of x they name, not 4096 lookups.
        4096 * 8 + distinct_drawn(4096, 1, 64) * 32 * 4 + 4096 * 32 * 4,
    ),
    # PointNet++'s grouping: a batch index beside each batch's own draws.
    "gather_batch_and_point_indices": case(
        "def run(points, idx):\n    b = torch.arange(points.shape[0]).view(-1, 1, 1).expand_as(idx)\n"
        "    return points[b, idx, :]\n",
        {"points": ([4, 4096, 16], F32), "idx": ([4, "V", 8], "int64")},
        {"y": ([4, "V", 8, 16], F32)},
        {"V": 64},
        {},
        4 * 64 * 8 * 8 + 4 * distinct_drawn(64 * 8, 1, 64) * 16 * 4 + 4 * 64 * 8 * 16 * 4,
    ),
    # The same on data (a ball query whose balls hold every point): the distinct (batch, point) pairs.
    "gather_batch_and_point_indices_on_data": case(
        "def run(points, d):\n    B, N, C = points.shape\n"
        "    idx = torch.arange(N).view(1, 1, N).repeat(B, d.shape[1], 1)\n"
        "    if bool((d > 100).any()):\n        idx[d > 100] = N - 1\n"
        "    idx = idx.sort(-1)[0][:, :, :32]\n"
        "    b = torch.arange(B).view(B, 1, 1).expand_as(idx)\n    return points[b, idx]\n",
        {"points": ([2, 256, 8], F32), "d": ([2, "V", 256], F32)},
        {"y": ([2, "V", 32, 8], F32)},
        {"V": 4},
        {},
        2 * 4 * 256 * 4 + 2 * 32 * 8 * 4 + 2 * 4 * 32 * 8 * 4,
    ),
    "take_along_batches": case(
        "def run(points, idx):\n    B, C = points.shape[0], points.shape[2]\n"
        "    return torch.gather(points, 1, idx.reshape(B, -1, 1).expand(-1, -1, C))\n",
        {"points": ([4, 4096, 16], F32), "idx": ([4, "V", 8], "int64")},
        {"y": ([4, "V", 16], F32)},
        {"V": 64},
        {},
        4 * 64 * 8 * 8 + 4 * distinct_drawn(64 * 8, 1, 64) * 16 * 4 + 4 * 64 * 8 * 16 * 4,
    ),
    # A Gaussian-process solve: the factor reads the lower triangle of K, n^3/6 MACs; its two triangular
    # solves take n^2 MACs per right-hand side.
    "cholesky_solve": case(
        "def run(K, y):\n    return torch.cholesky_solve(y, torch.linalg.cholesky(K))\n",
        {"K": ([256, 256], F32), "y": ([256, "V"], F32)},
        {"x": ([256, "V"], F32)},
        {"V": 8},
        {"fp32": 256**3 / 6 + 256 * 256 * 8},
        256 * 257 / 2 * 4 + 2 * 256 * 8 * 4,
    ),
    # The largest eigenvalue of a symmetric matrix: all of its lower triangle, and the whole reduction.
    "top_eigenvalue": case(
        "def run(C):\n    return torch.linalg.eigvalsh(C)[-1:] * C.shape[0]\n",
        {"C": (["V", "V"], F32)},
        {"y": ([1], F32)},
        {"V": 128},
        {"fp32": 2 * 128**3 / 3},
        128 * 129 / 2 * 4 + 4,
    ),
    # Losses that pick: NLL of log-probabilities reads the target's class of each row; CTC, at each step
    # of each sequence, the blank and that sequence's labels (here 10 distinct labels each).
    "nll_of_log_probs": case(
        "def run(logp, target):\n    return F.nll_loss(logp, target)\n",
        {"logp": (["V", 32000], F32), "target": (["V"], "int64")},
        {"loss": ([], F32)},
        {"V": 512},
        {},
        512 * 4 + 512 * 8 + 4,
    ),
    "ctc_of_log_probs": case(
        "def run(logp):\n    T, B, C = logp.shape\n"
        "    targets = torch.arange(B * 10).view(B, 10) % (C - 1) + 1\n"
        "    lengths = torch.full((B,), T, dtype=torch.long)\n"
        "    return F.ctc_loss(logp, targets, lengths, torch.full((B,), 10, dtype=torch.long))\n",
        {"logp": (["V", 2, 20], F32)},
        {"loss": ([], F32)},
        {"V": 50},
        {},
        50 * 2 * 11 * 4 + 4,
    ),
    # A row statistic broadcast back over its row is needed in every row kept, whatever columns are kept:
    # the log-probability of the taken token needs each row's whole logsumexp, so all of the logits.
    "log_prob_of_taken_token": case(
        "def run(h, w, ids):\n    logits = (h @ w.T).float()\n"
        "    logp = logits - torch.logsumexp(logits, -1, keepdim=True)\n"
        "    return logp.gather(-1, ids[:, None]).squeeze(-1)\n",
        {"h": (["V", 128], BF), "w": ([1000, 128], BF), "ids": (["V"], "int64")},
        {"y": (["V"], F32)},
        {"V": 64},
        {"bf16": 64 * 1000 * 128},
        (64 * 128 + 1000 * 128) * 2 + 64 * 8 + 64 * 4,
    ),
    # InfoNCE's loss from a diagonal view: every row of the log-softmax keeps one element, so every row
    # of the logits, and all of the product behind them, is needed.
    "log_softmax_diagonal": case(
        "def run(a, b):\n    logits = (a @ b.T).float() / 0.07\n"
        "    return -F.log_softmax(logits, -1).diagonal().mean()\n",
        {"a": (["V", 64], BF), "b": (["V", 64], BF)},
        {"loss": ([], F32)},
        {"V": 256},
        {"bf16": 256 * 256 * 64},
        2 * 256 * 64 * 2 + 4,
    ),
    # Row-wise ops along an axis other than the last need, of their input, the lines along that axis that
    # the demanded part of the result meets: every pixel's channels for one channel's map, half of them for
    # half the image, a column's values for the smallest of each column.
    "channel_softmax_one_class": case(
        "def run(x):\n    return torch.softmax(x, dim=1)[:, 1]\n",
        {"x": (["V", 4, 16, 16], F32)},
        {"y": (["V", 16, 16], F32)},
        {"V": 2},
        {},
        2 * 4 * 256 * 4 + 2 * 256 * 4,
    ),
    "channel_softmax_cropped": case(
        "def run(x):\n    return torch.softmax(x, dim=1)[:, :, :8]\n",
        {"x": (["V", 4, 16, 16], F32)},
        {"y": (["V", 4, 8, 16], F32)},
        {"V": 2},
        {},
        2 * (2 * 4 * 8 * 16 * 4),
    ),
    "column_sort_smallest": case(
        "def run(x):\n    return x.sort(dim=0).values[0]\n",
        {"x": (["V", 32], F32)},
        {"y": ([32], F32)},
        {"V": 64},
        {},
        64 * 32 * 4 + 32 * 4,
    ),
    # A cumulative op along an axis other than the last needs, of each line along that axis the demand
    # meets, the prefix up to the last position demanded: all of a line for its last value, the first
    # quarter of each for the first quarter of the result, one channel's lines for one channel's total.
    "running_total_last_step": case(
        "def run(x):\n    return x.cumsum(1)[:, -1]\n",
        {"x": (["V", 16, 8], F32)},
        {"y": (["V", 8], F32)},
        {"V": 4},
        {},
        4 * 16 * 8 * 4 + 4 * 8 * 4,
    ),
    "running_total_first_quarter": case(
        "def run(x):\n    return x.cumsum(1)[:, :4]\n",
        {"x": (["V", 16, 8], F32)},
        {"y": (["V", 4, 8], F32)},
        {"V": 4},
        {},
        2 * (4 * 4 * 8 * 4),
    ),
    "running_product_one_channel": case(
        "def run(x):\n    return x.cumprod(1)[:, -1, 0]\n",
        {"x": (["V", 16, 8], F32)},
        {"y": (["V"], F32)},
        {"V": 4},
        {},
        4 * 16 * 4 + 4 * 4,
    ),
    # A complex product counts four real multiply-adds for each complex one, at the precision of its parts:
    # a correlator X X^H of complex64 samples stored as float32 pairs.
    "complex_correlator": case(
        "def run(x):\n"
        "    xc = torch.view_as_complex(x)\n"
        "    return torch.view_as_real(xc @ xc.conj().transpose(0, 1))\n",
        {"x": (["V", 64, 2], F32)},
        {"y": (["V", "V", 2], F32)},
        {"V": 32},
        {"fp32": 4 * 32 * 32 * 64},
        32 * 64 * 8 + 32 * 32 * 8,
    ),
    # Downsampling by interpolation reads the source positions its taps weigh: every fourth row and column
    # for nearest x0.25 (a mask resized to a feature map), two of every four for bilinear x0.25.
    "mask_resized_nearest": case(
        "def run(feat, mask):\n    return feat * F.interpolate(mask, size=feat.shape[-2:], mode='nearest')\n",
        {"feat": (["V", 8, 16, 16], F32), "mask": (["V", 1, 64, 64], F32)},
        {"y": (["V", 8, 16, 16], F32)},
        {"V": 2},
        {},
        2 * (2 * 8 * 256 * 4) + 2 * 256 * 4,
    ),
    "bilinear_quarter": case(
        "def run(x):\n    return F.interpolate(x, scale_factor=0.25, mode='bilinear')\n",
        {"x": (["V", 3, 64, 64], F32)},
        {"y": (["V", 3, 16, 16], F32)},
        {"V": 2},
        {},
        2 * 3 * 32 * 32 * 4 + 2 * 3 * 16 * 16 * 4,
    ),
    # A convolution's demanded part needs its input over the windows of the positions kept (all channels of
    # their group) and its weight in the rows of the channels kept: a class picked per row after a 1x1
    # predictor reads every feature (and so do the layers before it); a channel slice needs all of x; a
    # pyramid level (blur, then every other row and column) all of x, where the 5x5 windows overlap.
    "class_picked_after_predictor": case(
        "def run(x, w1, wp, labels):\n"
        "    x = F.relu(F.conv2d(x, w1, padding=1))\n"
        "    p = torch.sigmoid(F.conv2d(x, wp))\n"
        "    return p[torch.arange(p.shape[0], device=p.device), labels]\n",
        {
            "x": (["V", 16, 8, 8], BF),
            "w1": ([16, 16, 3, 3], BF),
            "wp": ([64, 16, 1, 1], BF),
            "labels": (["V"], "int64"),
        },
        {"y": (["V", 8, 8], BF)},
        {"V": 1},
        {"bf16": 16 * 64 * 16 * 9 + 64 * 16},
        16 * 64 * 2 + 16 * 16 * 9 * 2 + 16 * 2 + 8 + 64 * 2,
    ),
    "channel_slice_of_conv": case(
        "def run(x, w):\n    return F.conv2d(x, w, padding=1)[:, :4]\n",
        {"x": (["V", 8, 8, 8], F32), "w": ([16, 8, 3, 3], F32)},
        {"y": (["V", 4, 8, 8], F32)},
        {"V": 2},
        {"fp32": 2 * 4 * 64 * 8 * 9},
        2 * 8 * 64 * 4 + 4 * 8 * 9 * 4 + 2 * 4 * 64 * 4,
    ),
    "pyramid_level": case(
        "def run(x, k):\n    return F.conv2d(x, k, padding=2, groups=x.shape[1])[:, :, ::2, ::2]\n",
        {"x": (["V", 3, 16, 16], F32), "k": ([3, 1, 5, 5], F32)},
        {"y": (["V", 3, 8, 8], F32)},
        {"V": 2},
        {"fp32": 2 * 3 * 64 * 25},
        2 * 3 * 256 * 4 + 3 * 25 * 4 + 2 * 3 * 64 * 4,
    ),
    # A real input cast to complex has no imaginary part: two real multiply-adds per complex one.
    "real_times_complex": case(
        "def run(u, br, bi):\n    return torch.view_as_real(u.to(torch.complex64) @ torch.complex(br, bi))\n",
        {"u": (["V", 64], F32), "br": ([64, 16], F32), "bi": ([64, 16], F32)},
        {"y": (["V", 16, 2], F32)},
        {"V": 32},
        {"fp32": 2 * 32 * 16 * 64},
        32 * 64 * 4 + 2 * 64 * 16 * 4 + 32 * 16 * 8,
    ),
    # A 1x1 convolution of stride 2 reads every other row and column of what feeds it, as a view: the 1x1
    # and 3x3 convolutions before it compute those positions only, and the 3x3 windows around them cover
    # all of x. A max-pool of stride 1 cut to every other row and column needs all of x too.
    "stride_in_1x1_after_block": case(
        "def run(x, w1, w2, w3):\n"
        "    y = F.relu(F.conv2d(x, w1, padding=1))\n"
        "    y = F.relu_(F.conv2d(y, w2))\n"
        "    return F.conv2d(y, w3, stride=2)\n",
        {
            "x": (["V", 8, 8, 8], F32),
            "w1": ([8, 8, 3, 3], F32),
            "w2": ([8, 8, 1, 1], F32),
            "w3": ([8, 8, 1, 1], F32),
        },
        {"y": (["V", 8, 4, 4], F32)},
        {"V": 2},
        {"fp32": 2 * 8 * 16 * 8 * 9 + 2 * (2 * 8 * 16 * 8)},
        (2 * 8 * 64 + 8 * 8 * 9 + 2 * 8 * 8 + 2 * 8 * 16) * 4,
    ),
    "dilation_then_every_other": case(
        "def run(x):\n    return F.max_pool2d(x, 3, 1, 1)[:, :, ::2, ::2]\n",
        {"x": (["V", 4, 16, 16], F32)},
        {"y": (["V", 4, 8, 8], F32)},
        {"V": 2},
        {},
        (2 * 4 * 256 + 2 * 4 * 64) * 4,
    ),
    "centred_then_cut": case(
        "def run(x):\n    return (x - x.mean(-1, keepdim=True))[:, :64]\n",
        {"x": (["V", 1024], F32)},
        {"y": (["V", 64], F32)},
        {"V": 32},
        {},
        32 * 1024 * 4 + 32 * 64 * 4,
    ),
    "conv_transpose_2d": case(
        "def run(x, w):\n    return F.conv_transpose2d(x, w, stride=2)\n",
        {"x": (["V", 16, 8, 8], BF), "w": ([16, 8, 2, 2], BF)},
        {"y": (["V", 8, 16, 16], BF)},
        {"V": B},
        {"bf16": B * 16 * 64 * 8 * 4},
        (B * 16 * 64 + 16 * 8 * 4 + B * 8 * 256) * 2,
    ),
    "strided_1x1_downsample": case(  # a ResNet shortcut: every other row and column is never read
        "def run(x, w):\n    return F.conv2d(x, w, stride=2)\n",
        {"x": (["V", 16, 16, 16], BF), "w": ([32, 16, 1, 1], BF)},
        {"y": (["V", 32, 8, 8], BF)},
        {"V": 2},
        {"bf16": 2 * 32 * 64 * 16},
        2 * 16 * 64 * 2 + 32 * 16 * 2 + 2 * 32 * 64 * 2,
    ),
    "pool_floor_tail": case(  # LLaVA-Video's 27 x 27 patch grid pooled by 2: row and column 26 unread
        "def run(x):\n    return F.avg_pool2d(x, 2)\n",
        {"x": (["V", 96, 27, 27], BF)},
        {"y": (["V", 96, 13, 13], BF)},
        {"V": 4},
        {},
        (4 * 96 * 26 * 26 + 4 * 96 * 169) * 2,
    ),
    "temporal_stride_conv_floor_tail": case(  # 17 frames, pairs of frames: the 17th is never read
        "def run(x, w):\n    return F.conv3d(x, w, stride=(2, 1, 1))\n",
        {"x": (["V", 16, 17, 8, 8], BF), "w": ([16, 16, 2, 1, 1], BF)},
        {"y": (["V", 16, 8, 8, 8], BF)},
        {"V": 2},
        {"bf16": 2 * 16 * 8 * 64 * 16 * 2},
        (2 * 16 * 16 * 64 + 16 * 16 * 2 + 2 * 16 * 8 * 64) * 2,
    ),
    "dilated_strided_grouped_conv": case(  # taps 2o + 2t - 2 touch the 9 even rows and columns of 17
        "def run(x, w):\n    return F.conv2d(x, w, stride=2, padding=2, dilation=2, groups=4)\n",
        {"x": (["V", 16, 17, 17], BF), "w": ([8, 4, 3, 3], BF)},
        {"y": (["V", 8, 9, 9], BF)},
        {"V": 2},
        {"bf16": 2 * 8 * 81 * 4 * 9},
        2 * 16 * 81 * 2 + 8 * 4 * 9 * 2 + 2 * 8 * 81 * 2,
    ),
    "conv_3d": case(
        "def run(x, w):\n    return F.conv3d(x, w, stride=(1, 2, 2), padding=1)\n",
        {"x": (["V", 4, 4, 8, 8], BF), "w": ([8, 4, 3, 3, 3], BF)},
        {"y": (["V", 8, 4, 4, 4], BF)},
        {"V": 2},
        {"bf16": 2 * 8 * 64 * 4 * 27},
        (2 * 4 * 256 + 8 * 4 * 27 + 2 * 8 * 64) * 2,
    ),
    "causal_depthwise_conv_1d": case(
        "def run(x, w, b):\n    n = x.shape[-1]\n"
        "    return F.silu(F.conv1d(x, w.unsqueeze(1), b, padding=3, groups=x.shape[1])[..., :n])\n",
        {"x": ([2, 64, "V"], BF), "w": ([64, 4], BF), "b": ([64], BF)},
        {"y": ([2, 64, "V"], BF)},
        {"V": L},
        {"bf16": 2 * 64 * L * 4},  # the kept positions of the padded output, 4 taps each
        # The windows of the kept positions cover all of x; every channel is kept (all of w and b).
        (2 * 64 * L + 64 * 4 + 64) * 2 + 2 * 64 * L * 2,
    ),
    "im2col_product": case(
        "def run(x, w):\n    cols = F.unfold(x, 3, padding=1)\n"
        "    return (w.view(w.shape[0], -1) @ cols).view(x.shape[0], w.shape[0], x.shape[2], x.shape[3])\n",
        {"x": (["V", 8, 8, 8], F32), "w": ([16, 8, 3, 3], F32)},
        {"y": (["V", 16, 8, 8], F32)},
        {"V": B},
        {"fp32": B * 16 * 64 * 8 * 9},
        (B * 8 * 64 + 16 * 72 + B * 16 * 64) * 4,
    ),
    "tensordot": case(
        "def run(a, b):\n    return torch.tensordot(a, b, dims=([1, 2], [0, 1]))\n",
        {"a": (["V", 4, 16], F16), "b": ([4, 16, 32], F16)},
        {"y": (["V", 32], F16)},
        {"V": M},
        {"fp16": M * 32 * 64},
        (M * 64 + 64 * 32 + M * 32) * 2,
    ),
    "baddbmm_scaled": case(
        "def run(c, a, b):\n    return torch.baddbmm(c, a, b, beta=0.5, alpha=2.0)\n",
        {"c": (["V", 32, 32], F16), "a": (["V", 32, 16], F16), "b": (["V", 16, 32], F16)},
        {"y": (["V", 32, 32], F16)},
        {"V": B},
        {"fp16": B * 32 * 32 * 16},
        B * (1024 * 2 + 512 * 2) * 2,
    ),
    "three_operand_einsum": case(  # shapes where left to right is also the cheapest order
        "def run(a, b, c):\n    return torch.einsum('bij,bjk,bkl->bil', a, b, c)\n",
        {"a": (["V", 4, 8], F16), "b": (["V", 8, 16], F16), "c": (["V", 16, 32], F16)},
        {"y": (["V", 4, 32], F16)},
        {"V": B},
        {"fp16": B * (4 * 16 * 8 + 4 * 32 * 16)},
        B * (32 + 128 + 512 + 128) * 2,
    ),
    "gru_loop": case(
        "def run(x, h, wi, wh):\n    outs = []\n    for t in range(x.shape[1]):\n"
        "        ir, iz, inn = (x[:, t] @ wi.T).chunk(3, -1)\n        hr, hz, hn = (h @ wh.T).chunk(3, -1)\n"
        "        r, z = torch.sigmoid(ir + hr), torch.sigmoid(iz + hz)\n"
        "        h = (1 - z) * torch.tanh(inn + r * hn) + z * h\n        outs.append(h)\n"
        "    return torch.stack(outs, 1)\n",
        {"x": (["V", 6, 16], F32), "h": (["V", 32], F32), "wi": ([96, 16], F32), "wh": ([96, 32], F32)},
        {"y": (["V", 6, 32], F32)},
        {"V": B},
        {"fp32": B * 6 * 96 * (16 + 32)},
        (B * 6 * 16 + B * 32 + 96 * 48 + B * 6 * 32) * 4,
    ),
    "linear_backward_by_autograd": case(
        "def run(x, w, g):\n    with torch.enable_grad():\n"
        "        x, w = x.detach().requires_grad_(), w.detach().requires_grad_()\n"
        "        return torch.autograd.grad(F.gelu(x @ w.T), (x, w), g)\n",
        {"x": (["V", 32], BF), "w": ([64, 32], BF), "g": (["V", 64], BF)},
        {"dx": (["V", 32], BF), "dw": ([64, 32], BF)},
        {"V": M},
        {"bf16": 3 * M * 64 * 32},  # the forward (gelu's derivative needs it), dx and dw
        (M * 32 + 64 * 32 + M * 64 + M * 32 + 64 * 32) * 2,
    ),
    "causal_attention_backward_by_autograd": case(
        "def run(q, k, v, g):\n    with torch.enable_grad():\n"
        "        q, k, v = (t.detach().requires_grad_() for t in (q, k, v))\n"
        "        o = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)\n"
        "        return torch.autograd.grad(o, (q, k, v), g)\n",
        {
            "q": ([1, 4, "V", 32], BF),
            "k": ([1, 2, "V", 32], BF),
            "v": ([1, 2, "V", 32], BF),
            "g": ([1, 4, "V", 32], BF),
        },
        {"dq": ([1, 4, "V", 32], BF), "dk": ([1, 2, "V", 32], BF), "dv": ([1, 2, "V", 32], BF)},
        {"V": L},
        # QKᵀ again, dV, dP, dQ and dK, over the causal triangle, for each query head
        {"bf16": 5 * 4 * (L * (L + 1) // 2) * 32},
        (2 * 4 + 2 * 2 + 4 + 2 * 2) * L * 32 * 2,  # q, k, v and g read; dq, dk and dv written
    ),
    "attention_backward_kernel_by_name": case(
        "def run(g, q, k, v, o, lse):\n"
        "    return torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward(\n"
        "        g, q, k, v, o, lse, 0.0, True)\n",
        {**{n: ([1, 4, "V", 32], BF) for n in ("g", "q", "k", "v", "o")}, "lse": ([1, 4, "V"], F32)},
        {n: ([1, 4, "V", 32], BF) for n in ("dq", "dk", "dv")},
        {"V": L},
        {"bf16": 5 * 4 * (L * (L + 1) // 2) * 32},
        (8 * 4 * L * 32) * 2 + 4 * L * 4,
    ),
    "tokens_per_expert_by_length": case(
        "def run(x, w):\n    idx = torch.topk(F.linear(x, w), 2, -1)[1]\n"
        "    return torch.tensor([len(torch.where(idx == e)[0]) for e in range(8)])\n",
        {"x": (["V", 64], BF), "w": ([8, 64], BF)},
        {"y": ([8], "int64")},
        {"V": M},
        {"bf16": M * 8 * 64},  # every count depends on every logit
        (M * 64 + 8 * 64) * 2 + 8 * 8,
    ),
    "tokens_of_an_expert_by_nonzero_column": case(
        "def run(x, w):\n    idx = torch.topk(F.linear(x, w), 2, -1)[1]\n"
        "    tok = (idx == 0).nonzero()[:, 0]\n    y = torch.zeros_like(x)\n    y[tok] = x[tok]\n    return y\n",
        {"x": (["V", 64], BF), "w": ([8, 64], BF)},
        {"y": (["V", 64], BF)},
        {"V": M},
        {"bf16": M * 8 * 64},
        (2 * M * 64 + 8 * 64) * 2,
    ),
    "linear_under_inference_mode": case(
        "@torch.inference_mode()\ndef run(x, w, b):\n    return F.gelu(F.linear(x, w, b))\n",
        {"x": (["V", 64], BF), "w": ([32, 64], BF), "b": ([32], BF)},
        {"y": (["V", 32], BF)},
        {"V": M},
        {"bf16": M * 32 * 64},
        (M * 64 + 32 * 64 + 32 + M * 32) * 2,
    ),
    "parametrized_weight": case(
        "class Half(torch.nn.Module):\n    def forward(self, w):\n        return w * 0.5\n"
        "def run(x, w):\n    lin = torch.nn.Linear(64, 32, bias=False, device=x.device, dtype=x.dtype)\n"
        "    lin.weight.requires_grad_(False).copy_(w)\n"
        "    torch.nn.utils.parametrize.register_parametrization(lin, 'weight', Half())\n"
        "    return lin(x).detach()\n",
        {"x": (["V", 64], BF), "w": ([32, 64], BF)},
        {"y": (["V", 32], BF)},
        {"V": M},
        {"bf16": M * 32 * 64},
        (M * 64 + 32 * 64 + M * 32) * 2,
    ),
    "every_other_column_of_a_product": case(
        "def run(x, w):\n    return (x @ w.t())[:, ::2]\n",
        {"x": (["V", 64], BF), "w": ([32, 64], BF)},
        {"y": (["V", 16], BF)},
        {"V": M},
        {"bf16": M * 16 * 64},  # the rows of w that make the columns kept, and every row of x
        (M * 64 + 16 * 64 + M * 16) * 2,
    ),
    "unsigned_8_bit_codes_multiplied_in_float": case(
        "def run(a, b, zero):\n    return (a.float() - zero) @ b.float().T\n",
        {"a": (["V", 64], "uint8"), "b": ([32, 64], "int8"), "zero": ([], F32)},
        {"y": (["V", 32], F32)},
        {"V": M},
        {"int8": M * 32 * 64},  # an integer tensor core takes unsigned and signed 8-bit operands
        M * 64 + 32 * 64 + 4 + M * 32 * 4,
    ),
    "last_query_of_attention": case(
        "def run(q, k, v):\n    return F.scaled_dot_product_attention(q, k, v)[:, :, -1]\n",
        dict.fromkeys("qkv", ([2, 4, "V", 32], BF)),
        {"o": ([2, 4, 32], BF)},
        {"V": L},
        {"bf16": 2 * 4 * L * (32 + 32)},  # one query a head, against every key
        (2 * 4 * 32 + 2 * 2 * 4 * L * 32 + 2 * 4 * 32) * 2,
    ),
    "a_row_of_products_joined": case(
        "def run(a, v1, v2):\n    return torch.cat([a @ v1, a @ v2], -1)[:1]\n",
        {"a": (["V", 64], BF), "v1": ([64, 32], BF), "v2": ([64, 32], BF)},
        {"y": ([1, 64], BF)},
        {"V": M},
        {"bf16": 64 * 64},
        (64 + 2 * 64 * 32 + 64) * 2,
    ),
    "batches_of_a_batched_product": case(
        "def run(a, b):\n    return torch.bmm(a, b)[:2]\n",
        {"a": ([8, "V", 32], BF), "b": ([8, 32, 16], BF)},
        {"y": ([2, "V", 16], BF)},
        {"V": M},
        {"bf16": 2 * M * 32 * 16},
        (2 * M * 32 + 2 * 32 * 16 + 2 * M * 16) * 2,
    ),
    "rms_norm_fp8_quantize": case(
        "def run(x, w):\n    y = x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + 1e-6) * w.float()\n"
        "    s = y.abs().amax(-1, keepdim=True).clamp(min=1e-12) / 448.0\n"
        "    return (y / s).to(torch.float8_e4m3fn), s\n",
        {"x": (["V", 256], BF), "w": ([256], BF)},
        {"q": (["V", 256], "float8_e4m3fn"), "s": (["V", 1], F32)},
        {"V": M},
        {},
        M * 256 * 2 + 256 * 2 + M * 256 + M * 4,
    ),
    "fp8_scaled_mm": case(
        "def run(a, b, sa, sb):\n"
        "    return torch._scaled_mm(a, b.t(), scale_a=sa, scale_b=sb, out_dtype=torch.bfloat16)\n",
        {
            "a": (["V", 64], "float8_e4m3fn"),
            "b": ([32, 64], "float8_e4m3fn"),
            "sa": ([], F32),
            "sb": ([], F32),
        },
        {"c": (["V", 32], BF)},
        {"V": M},
        {"fp8": M * 32 * 64},
        M * 64 + 32 * 64 + 2 * 4 + M * 32 * 2,
    ),
    "fp8_block_dequantized_576_rows": case(  # DeepSeek's kv_a_proj: 576 rows, scales of 128 cut to fit
        "def run(x, w, s):\n"
        "    d = s.repeat_interleave(128, 0).repeat_interleave(128, 1)[: w.shape[0], : w.shape[1]]\n"
        "    return F.linear(x, (w.float() * d).to(torch.bfloat16))\n",
        {"x": (["V", 512], BF), "w": ([576, 512], "float8_e4m3fn"), "s": ([5, 4], F32)},
        {"y": (["V", 576], BF)},
        {"V": 64},
        {"fp8": 64 * 576 * 512},
        # All of the scale: its fifth row of blocks covers rows 512 to 575 (before 2026-11-29, the share of its
        # repeated rows kept, 576 of 640: 72 of its 80 bytes).
        64 * 512 * 2 + 576 * 512 + 80 + 64 * 576 * 2,
    ),
    "fp8_block_dequantized_by_expand_reshape": case(
        "def run(x, w, s):\n"
        "    d = s[:, None, :, None].expand(-1, 128, -1, 128).reshape(w.shape)\n"
        "    return F.linear(x, (w.float() * d).to(torch.bfloat16))\n",
        {"x": (["V", 512], BF), "w": ([640, 512], "float8_e4m3fn"), "s": ([5, 4], F32)},
        {"y": (["V", 640], BF)},
        {"V": 64},
        {"fp8": 64 * 640 * 512},
        64 * 512 * 2 + 640 * 512 + 80 + 64 * 640 * 2,
    ),
    "w8a8_written_in_float": case(  # both operands int8-valued: an int8 tensor core computes it exactly
        "def run(x, w, ws):\n    xs = x.float().abs().amax(-1, keepdim=True).clamp(min=1e-8) / 127.0\n"
        "    xq = torch.round(x.float() / xs).clamp(-128, 127).to(torch.int8)\n"
        "    return ((xq.float() @ w.float().t()) * xs * ws).to(torch.bfloat16)\n",
        {"x": (["V", 512], BF), "w": ([256, 512], "int8"), "ws": ([256], F32)},
        {"y": (["V", 256], BF)},
        {"V": 32},
        {"int8": 32 * 256 * 512},
        32 * 512 * 2 + 256 * 512 + 256 * 4 + 32 * 256 * 2,
    ),
    "int4_weight_only_product": case(
        "def run(x, qw, scales):\n    lo, hi = (qw & 0xF).to(torch.bfloat16) - 8, (qw >> 4).to(torch.bfloat16) - 8\n"
        "    w = torch.stack([lo, hi], -1).reshape(qw.shape[0], -1) * scales.repeat_interleave(32, -1)\n"
        "    return x @ w.T\n",
        {"x": (["V", 128], BF), "qw": ([64, 64], "uint8"), "scales": ([64, 4], BF)},
        {"y": (["V", 64], BF)},
        {"V": 16},
        {"bf16": 16 * 64 * 128},  # the weights are unpacked to bf16: a bf16 tensor-core product
        16 * 128 * 2 + 64 * 64 + 64 * 4 * 2 + 16 * 64 * 2,
    ),
    "alibi_causal_attention": case(
        "def run(q, k, v, slopes):\n    n = q.shape[2]\n    i = torch.arange(n, device=q.device)\n"
        "    bias = (i[None, :] - i[:, None]).float()[None] * slopes[:, None, None]\n"
        "    s = q.float() @ k.float().transpose(-1, -2) / 8 + bias\n"
        "    s = s.masked_fill(i[None, :] > i[:, None], float('-inf'))\n"
        "    return (torch.softmax(s, -1) @ v.float()).to(q.dtype)\n",
        {n: ([1, 4, "V", 16], BF) for n in "qkv"} | {"slopes": ([4], F32)},
        {"o": ([1, 4, "V", 16], BF)},
        {"V": 64},
        {"fp32": 4 * (64 * 65 // 2) * (16 + 16)},
        # The slopes, broadcast over the masked scores' rows and columns, are read whole.
        4 * 4 * 64 * 16 * 2 + 4 * 4,
    ),
    "softcapped_causal_attention": case(
        "def run(q, k, v):\n    s = q @ k.transpose(-1, -2) * 0.25\n    s = 30.0 * torch.tanh(s / 30.0)\n"
        "    n = q.shape[2]\n    s = s + torch.triu(torch.full((n, n), float('-inf'), device=q.device), 1)\n"
        "    return torch.softmax(s.float(), -1).to(q.dtype) @ v\n",
        {n: ([1, 4, "V", 16], BF) for n in "qkv"},
        {"o": ([1, 4, "V", 16], BF)},
        {"V": 64},
        {"bf16": 4 * (64 * 65 // 2) * (16 + 16)},
        4 * 4 * 64 * 16 * 2,  # every query and key takes part in some kept score: read whole
    ),
    "stable_softmax_causal_attention": case(  # the row max subtracted from -inf keeps it -inf
        "def run(q, k, v):\n    n = q.shape[2]\n    s = (q @ k.transpose(-1, -2)).float() * 0.25\n"
        "    s = s.masked_fill(torch.ones(n, n, dtype=torch.bool, device=q.device).triu(1), float('-inf'))\n"
        "    p = torch.exp(s - s.amax(-1, keepdim=True))\n"
        "    return (p / p.sum(-1, keepdim=True)).to(q.dtype) @ v\n",
        {n: ([1, 4, "V", 16], BF) for n in "qkv"},
        {"o": ([1, 4, "V", 16], BF)},
        {"V": 64},
        {"bf16": 4 * (64 * 65 // 2) * (16 + 16)},
        4 * 4 * 64 * 16 * 2,
    ),
    "causal_attention_backward_from_lse": case(  # P = exp(S - lse): five products over the triangle
        "def run(q, k, v, o, do, lse):\n    n = q.shape[2]\n"
        "    s = torch.where(torch.ones(n, n, dtype=torch.bool, device=q.device).triu(1), float('-inf'),\n"
        "                    q.float() @ k.float().transpose(-1, -2) * 0.25)\n"
        "    p = torch.exp2((s - lse.unsqueeze(-1)) * 1.4426950408889634)\n"
        "    dv = p.transpose(-1, -2) @ do.float()\n"
        "    ds = p * (do.float() @ v.float().transpose(-1, -2) - (do.float() * o.float()).sum(-1, keepdim=True))\n"
        "    return (ds @ k.float() * 0.25).to(q.dtype), (ds.transpose(-1, -2) @ q.float() * 0.25).to(k.dtype), dv.to(v.dtype)\n",
        {**{n: ([1, 4, "V", 16], BF) for n in ("q", "k", "v", "o", "do")}, "lse": ([1, 4, "V"], F32)},
        {n: ([1, 4, "V", 16], BF) for n in ("dq", "dk", "dv")},
        {"V": 64},
        {"fp32": 5 * 4 * (64 * 65 // 2) * 16},
        # Every key takes part in some kept score, every query row keeps one: all five read whole.
        (5 * 4 * 64 * 16 * 2 + 4 * 64 * 4) + 3 * 4 * 64 * 16 * 2,
    ),
    "gpt2_baddbmm_causal_attention": case(  # the -inf mask is the product's own added term
        "def run(q, k, v):\n    n = q.shape[1]\n"
        "    mask = torch.full((n, n), float('-inf'), device=q.device, dtype=q.dtype).triu(1)\n"
        "    s = torch.baddbmm(mask.expand(q.shape[0], n, n), q, k.transpose(1, 2), alpha=0.25)\n"
        "    return torch.bmm(torch.softmax(s.float(), -1).to(q.dtype), v)\n",
        {n: ([4, "V", 16], F16) for n in "qkv"},
        {"o": ([4, "V", 16], F16)},
        {"V": 64},
        {"fp16": 4 * (64 * 65 // 2) * (16 + 16)},
        4 * 4 * 64 * 16 * 2,
    ),
    "attention_with_sink_logits": case(  # gpt-oss: a per-head logit appended to each row, then dropped
        "def run(q, k, v, sinks):\n    n = q.shape[2]\n"
        "    s = q @ k.transpose(-1, -2) * 0.25 + torch.triu(torch.full((n, n), float('-inf'), device=q.device), 1)\n"
        "    s = torch.cat([s, sinks.reshape(1, -1, 1, 1).expand(q.shape[0], -1, n, 1)], -1)\n"
        "    return torch.softmax(s.float(), -1)[..., :-1].to(q.dtype) @ v\n",
        {**{n: ([1, 4, "V", 16], BF) for n in "qkv"}, "sinks": ([4], BF)},
        {"o": ([1, 4, "V", 16], BF)},
        {"V": 64},
        # P·V and QKᵀ over the triangle, the sinks whole: the softmax needs every row it keeps a column of
        # whole (before 2026-11-27, QKᵀ and the sinks counted at the 64 of 65 columns the slice keeps).
        {"bf16": 4 * (64 * 65 // 2) * 16 * 2},
        4 * 4 * 64 * 16 * 2 + 4 * 2,
    ),
    "attention_with_sink_logits_first": case(  # the band moves one column right
        "def run(q, k, v, sinks):\n    n = q.shape[2]\n"
        "    s = q @ k.transpose(-1, -2) * 0.25 + torch.triu(torch.full((n, n), float('-inf'), device=q.device), 1)\n"
        "    s = torch.cat([sinks.reshape(1, -1, 1, 1).expand(q.shape[0], -1, n, 1), s], -1)\n"
        "    return torch.softmax(s.float(), -1)[..., 1:].to(q.dtype) @ v\n",
        {**{n: ([1, 4, "V", 16], BF) for n in "qkv"}, "sinks": ([4], BF)},
        {"o": ([1, 4, "V", 16], BF)},
        {"V": 64},
        {"bf16": 4 * (64 * 65 // 2) * 16 * 2},
        4 * 4 * 64 * 16 * 2 + 4 * 2,
    ),
    "gqa_causal_sdpa": case(
        "def run(q, k, v):\n    return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)\n",
        {"q": ([1, 8, "V", 16], BF), "k": ([1, 2, "V", 16], BF), "v": ([1, 2, "V", 16], BF)},
        {"o": ([1, 8, "V", 16], BF)},
        {"V": 64},
        {"bf16": 8 * (64 * 65 // 2) * 32},
        (2 * 8 + 2 * 2) * 64 * 16 * 2,
    ),
    "decode_with_a_length_mask_from_an_input": case(
        "def run(q, kc, vc, lens):\n    n = kc.shape[2]\n"
        "    k, v = kc.repeat_interleave(4, 1), vc.repeat_interleave(4, 1)\n"
        "    s = (q @ k.transpose(-1, -2)) / 4.0\n    pos = torch.arange(n, device=q.device)\n"
        "    s = s.masked_fill(pos[None, None, None, :] >= lens[:, None, None, None], float('-inf'))\n"
        "    return torch.softmax(s.float(), -1).to(q.dtype) @ v\n",
        {
            "q": (["V", 8, 1, 16], BF),
            "kc": (["V", 2, 256, 16], BF),
            "vc": (["V", 2, 256, 16], BF),
            "lens": (["V"], "int64"),
        },
        {"o": (["V", 8, 1, 16], BF)},
        {"V": B},
        # The lengths are data: nothing is known masked, every score and the whole cache count.
        {"bf16": B * 8 * 256 * 32},
        B * (8 * 16 * 2 * 2 + 2 * 2 * 256 * 16 * 2 + 8),
    ),
    "relative_position_bias": case(
        "def run(q, k, table):\n    n = q.shape[2]\n    i = torch.arange(n, device=q.device)\n"
        "    rel = (i[None, :] - i[:, None]).clamp(-15, 15) + 15\n"
        "    return torch.softmax((q @ k.transpose(-1, -2)).float() + table[rel].permute(2, 0, 1)[None], -1)\n",
        {"q": ([1, 4, "V", 16], BF), "k": ([1, 4, "V", 16], BF), "table": ([31, 4], F32)},
        {"p": ([1, 4, "V", "V"], F32)},
        {"V": 32},
        {"bf16": 4 * 32 * 32 * 16},
        2 * 4 * 32 * 16 * 2 + 31 * 4 * 4 + 4 * 32 * 32 * 4,
    ),
    "mla_absorbed_decode": case(
        "def run(qn, qp, ckv, kpe, wk, wv):\n    ql = torch.einsum('bhd,hdc->bhc', qn, wk)\n"
        "    s = torch.einsum('bhc,btc->bht', ql, ckv) + torch.einsum('bhr,btr->bht', qp, kpe)\n"
        "    o = torch.einsum('bht,btc->bhc', torch.softmax(s.float(), -1).to(ckv.dtype), ckv)\n"
        "    return torch.einsum('bhc,hcd->bhd', o, wv)\n",
        {
            "qn": (["V", 4, 16], BF),
            "qp": (["V", 4, 8], BF),
            "ckv": (["V", 64, 32], BF),
            "kpe": (["V", 64, 8], BF),
            "wk": ([4, 16, 32], BF),
            "wv": ([4, 32, 16], BF),
        },
        {"o": (["V", 4, 16], BF)},
        {"V": B},
        {"bf16": B * 4 * (16 * 32 + 64 * 32 + 64 * 8 + 64 * 32 + 32 * 16)},
        (B * (4 * 16 + 4 * 8 + 64 * 32 + 64 * 8 + 4 * 16) + 2 * 4 * 16 * 32) * 2,
    ),
    "diffusion_resblock": case(
        "def run(x, temb, g1, b1, w1, c1, wt, bt, g2, b2, w2, c2):\n"
        "    h = F.conv2d(F.silu(F.group_norm(x, 4, g1, b1)), w1, c1, padding=1)\n"
        "    h = h + (F.silu(temb) @ wt.T + bt)[:, :, None, None]\n"
        "    return x + F.conv2d(F.silu(F.group_norm(h, 4, g2, b2)), w2, c2, padding=1)\n",
        {
            "x": (["V", 16, 8, 8], BF),
            "temb": (["V", 32], BF),
            **{n: ([16], BF) for n in ("g1", "b1")},
            "w1": ([16, 16, 3, 3], BF),
            "c1": ([16], BF),
            "wt": ([16, 32], BF),
            **{n: ([16], BF) for n in ("bt", "g2", "b2")},
            "w2": ([16, 16, 3, 3], BF),
            "c2": ([16], BF),
        },
        {"y": (["V", 16, 8, 8], BF)},
        {"V": B},
        {"bf16": 2 * B * 16 * 64 * 16 * 9 + B * 16 * 32},
        (2 * B * 16 * 64 + B * 32 + 16 * 32 + 7 * 16 + 2 * 16 * 16 * 9) * 2,
    ),
    "adaptive_layer_norm_modulation": case(
        "def run(x, c, w, b):\n    shift, scale, gate = (F.silu(c) @ w.T + b).chunk(3, -1)\n"
        "    h = F.layer_norm(x, (x.shape[-1],)) * (1 + scale[:, None]) + shift[:, None]\n"
        "    return x + gate[:, None] * h\n",
        {"x": (["V", 32, 64], BF), "c": (["V", 64], BF), "w": ([192, 64], BF), "b": ([192], BF)},
        {"y": (["V", 32, 64], BF)},
        {"V": 2},
        {"bf16": 2 * 192 * 64},
        (2 * 2 * 32 * 64 + 2 * 64 + 192 * 64 + 192) * 2,
    ),
    # Rows or columns picked by index after a product or a row-wise op: the kept rows need every column
    # of the weight, the kept columns every row of the activations, and a softmax's kept columns whole rows.
    "tokens_picked_after_projection": case(
        "def run(x, w):\n    y = F.gelu(x @ w.t())\n"
        "    return y[:, torch.arange(0, x.shape[1], 4, device=x.device)]\n",
        {"x": (["V", 128, 256], BF), "w": ([512, 256], BF)},
        {"y": (["V", 32, 512], BF)},
        {"V": B},
        {"bf16": B * 32 * 512 * 256},
        (B * 32 * 256 + 512 * 256 + B * 32 * 512) * 2,
    ),
    "top_tokens_gathered_after_linear": case(
        "def run(x, w, b, s):\n    h = F.linear(x, w, b)\n    ids = s.topk(32, dim=1).indices\n"
        "    return h.gather(1, ids[..., None].expand(-1, -1, h.shape[-1]))\n",
        {"x": (["V", 128, 256], BF), "w": ([512, 256], BF), "b": ([512], BF), "s": (["V", 128], F32)},
        {"y": (["V", 32, 512], BF)},
        {"V": B},
        {"bf16": B * 32 * 512 * 256},
        (B * 32 * 256 + 512 * 256 + 512 + B * 32 * 512) * 2 + B * 128 * 4,
    ),
    "channels_picked_after_projection": case(
        "def run(x, w):\n    y = x @ w.t()\n    return y[..., torch.arange(0, w.shape[0], 4, device=x.device)]\n",
        {"x": (["V", 128, 256], BF), "w": ([512, 256], BF)},
        {"y": (["V", 128, 128], BF)},
        {"V": B},
        {"bf16": B * 128 * 128 * 256},
        (B * 128 * 256 + 128 * 256 + B * 128 * 128) * 2,
    ),
    "classes_picked_after_softmax": case(
        "def run(logits):\n    ids = torch.arange(0, logits.shape[-1], 4, device=logits.device)\n"
        "    return -logits.softmax(-1)[:, ids]\n",
        {"logits": (["V", 92], F32)},
        {"y": (["V", 23], F32)},
        {"V": 100},
        {},
        (100 * 92 + 100 * 23) * 4,
    ),
    # A constant pad maps the kept part of its result back to the input by position: rows padded to a
    # multiple of 128 for a product and cut back read all of the input; a crop of the padded tensor reads
    # what the crop keeps of the input; a padded tail chunk, the input's tail.
    "rows_padded_to_128_and_cut_back": case(
        "def run(x, w):\n    M = x.shape[0]\n    xp = F.pad(x, (0, 0, 0, (M + 127) // 128 * 128 - M))\n"
        "    return (xp @ w.t())[:M]\n",
        {"x": (["V", 256], BF), "w": ([512, 256], BF)},
        {"y": (["V", 512], BF)},
        {"V": 200},
        {"bf16": 200 * 512 * 256},
        (200 * 256 + 512 * 256 + 200 * 512) * 2,
    ),
    # The same for an FP8 product: each row scaled by its maximum, quantized and multiplied by
    # `torch._scaled_mm` with row-wise scales. All 200 rows of x are read (before 2026-11-29: the kept share
    # of the padded rows, 200/256 of x).
    "rows_padded_for_a_rowwise_scaled_mm_and_cut_back": case(
        "def run(x, w, sw):\n    M = x.shape[0]\n    xp = F.pad(x.float(), (0, 0, 0, (M + 127) // 128 * 128 - M))\n"
        "    sx = xp.abs().amax(dim=-1, keepdim=True) / 448.0 + 1e-6\n"
        "    xq = (xp / sx).to(torch.float8_e4m3fn)\n"
        "    return torch._scaled_mm(xq, w.t(), scale_a=sx, scale_b=sw, out_dtype=torch.bfloat16)[:M]\n",
        {"x": (["V", 256], BF), "w": ([512, 256], "float8_e4m3fn"), "sw": ([1, 512], F32)},
        {"y": (["V", 512], BF)},
        {"V": 200},
        {"fp8": 200 * 512 * 256},
        200 * 256 * 2 + 512 * 256 + 512 * 4 + 200 * 512 * 2,
    ),
    "padded_tail_chunk": case(
        "def run(x):\n    xp = F.pad(x, (0, 64 - x.shape[-1] % 64))\n"
        "    return xp.view(x.shape[0], -1, 64)[:, -1].sum(-1)\n",
        {"x": (["V", 1000], F32)},
        {"y": (["V"], F32)},
        {"V": 8},
        {},
        (8 * 40 + 8) * 4,
    ),
    "padded_then_shifted_crop": case(
        "def run(x):\n    return F.pad(x, (2, 2, 2, 2))[:, :, 4:, 4:]\n",
        {"x": (["V", 4, 32, 32], F32)},
        {"y": (["V", 4, 32, 32], F32)},
        {"V": 2},
        {},
        (2 * 4 * 30 * 30 + 2 * 4 * 32 * 32) * 4,
    ),
    # A norm cut to its first token (a ViT pooler): that row of x, and all of the weight and bias.
    "layer_norm_of_the_class_token": case(
        "def run(x, w, b):\n    return F.layer_norm(x, (256,), w, b)[:, 0]\n",
        {"x": (["V", 16, 256], F32), "w": ([256], F32), "b": ([256], F32)},
        {"y": (["V", 256], F32)},
        {"V": B},
        {},
        (B * 256 + 2 * 256 + B * 256) * 4,
    ),
    # Mamba-2's chunked scan (`ssd_minimal`, its plain segsum): one group of B and C broadcast to 4 heads,
    # contracted with the decay and x in one four-operand einsum: C·Bᵀ once for the group over each chunk's triangle, then the
    # triangle of every head times x. Written with `.repeat` of the unit group axis, the same.
    **{
        f"ssd_chunk_einsum_{how}": case(
            "def segsum(x):\n"
            "    T = x.size(-1)\n"
            "    x_cumsum = torch.cumsum(x, dim=-1)\n"
            "    x_segsum = x_cumsum[..., :, None] - x_cumsum[..., None, :]\n"
            "    return x_segsum.masked_fill(~torch.tril(torch.ones(T, T, dtype=torch.bool)), -torch.inf)\n"
            "def run(x, a, b, c):\n"
            f"    C, B = {spread}\n"
            "    return torch.einsum('bclhn,bcshn,bhcls,bcshp->bclhp', C, B, torch.exp(segsum(a)), x)\n",
            {
                "x": (["V", 2, 64, 4, 16], F32),
                "a": (["V", 4, 2, 64], F32),
                "b": (["V", 2, 64, 1, 32], F32),
                "c": (["V", 2, 64, 1, 32], F32),
            },
            {"y": (["V", 2, 64, 4, 16], F32)},
            {"V": 1},
            {"fp32": 2 * (64 * 65 // 2) * (32 + 4 * 16)},
            (2 * 64 * 4 * 16 * 2 + 4 * 2 * 64 + 2 * 2 * 64 * 32) * 4,
        )
        for how, spread in (
            ("expanded", "c.expand(-1, -1, -1, 4, -1), b.expand(-1, -1, -1, 4, -1)"),
            ("repeated", "c.repeat(1, 1, 1, 4, 1), b.repeat(1, 1, 1, 4, 1)"),
        )
    },
    # torchscale's retention: the decay mask filled with +inf above the diagonal, times a negative decay per
    # head (log(1 - 2^(-5 - h))), through `exp` and `nan_to_num`: zero there, so both products count their
    # triangle.
    "retention_with_an_inf_fill_and_a_negative_decay": case(
        "def run(q, k, v):\n"
        "    L = q.shape[-2]\n"
        "    decay = torch.log(1 - 2 ** (-5 - torch.arange(4, dtype=torch.float, device=q.device)))\n"
        "    i = torch.arange(L, device=q.device).to(decay)\n"
        "    causal = torch.tril(torch.ones(L, L, device=q.device)).bool()\n"
        "    m = torch.masked_fill(i[:, None] - i[None, :], ~causal, float('inf'))\n"
        "    m = torch.nan_to_num(torch.exp(m * decay[:, None, None]))\n"
        "    m = m / m.sum(dim=-1, keepdim=True).sqrt()\n"
        "    return ((q @ k.transpose(-1, -2)) * m) @ v\n",
        {n: (["V", 4, 64, 32], F32) for n in "qkv"},
        {"o": (["V", 4, 64, 32], F32)},
        {"V": 1},
        {"fp32": 2 * 4 * (64 * 65 // 2) * 32},
        4 * 4 * 64 * 32 * 4,
    ),
    # `F.bilinear` reaches ATen as `_trilinear`: x1 x W summed over i, then x x2 over j, as the einsum
    # `ni,oij,nj->no` taken left to right; and its bias.
    "bilinear_layer": case(
        "def run(x1, x2, w, b):\n    return F.bilinear(x1, x2, w, b)\n",
        {"x1": (["V", 64], BF), "x2": (["V", 48], BF), "w": ([32, 64, 48], BF), "b": ([32], BF)},
        {"y": (["V", 32], BF)},
        {"V": M},
        {"bf16": M * 32 * 64 * 48 + M * 32 * 48},
        (M * 64 + M * 48 + 32 * 64 * 48 + 32 + M * 32) * 2,
    ),
    # The trace of a matrix reads its diagonal; of a product, it needs the diagonal's dot products, which
    # read every row of the first operand and every column of the second.
    "trace_of_a_matrix": case(
        "def run(m):\n    return torch.trace(m)\n",
        {"m": (["V", "V"], F32)},
        {"t": ([], F32)},
        {"V": 256},
        {},
        256 * 4 + 4,
    ),
    "trace_of_a_product": case(
        "def run(a, b):\n    return (a @ b).trace()\n",
        {"a": (["V", 64], F32), "b": ([64, "V"], F32)},
        {"t": ([], F32)},
        {"V": 256},
        {"fp32": 256 * 64},
        2 * 256 * 64 * 4 + 4,
    ),
    # SAM's decomposed relative positions: `rel_w[:, :, :, None, :]` added to scores over padded rows that are
    # cut off afterwards: only the rows of rel_w that feed kept rows are made.
    "row_broadcast_along_the_second_last_axis_of_padded_rows_cut_back": case(
        "def run(x, w):\n    n = x.shape[0]\n    r = F.pad(x, (0, 0, 0, 0, 0, n)) @ w\n"
        "    s = torch.zeros(2 * n, 8, 8, 8, dtype=x.dtype, device=x.device) + r[:, :, None, :]\n"
        "    return s[:n]\n",
        {"x": (["V", 8, 16], BF), "w": ([16, 8], BF)},
        {"s": (["V", 8, 8, 8], BF)},
        {"V": B},
        {"bf16": B * 8 * 8 * 16},
        (B * 8 * 16 + 16 * 8 + B * 8 * 8 * 8) * 2,
    ),
    # gpt-oss's eager attention (transformers): the sink logit put beside the causal scores, the row maximum
    # of both taken off (finite in every row), softmax, the sink column sliced off: the triangle only.
    "attention_sink_with_the_row_maximum_taken_off": case(
        "def run(q, k, v, sinks):\n    S = q.shape[2]\n"
        "    mask = torch.full((S, S), float('-inf'), device=q.device, dtype=q.dtype).triu(1)\n"
        "    w = q @ k.transpose(2, 3) + mask\n"
        "    w = torch.cat([w, sinks.reshape(1, -1, 1, 1).expand(q.shape[0], -1, S, -1)], dim=-1)\n"
        "    w = w - w.max(dim=-1, keepdim=True).values\n"
        "    p = F.softmax(w, dim=-1, dtype=w.dtype)[..., :-1]\n"
        "    return p @ v\n",
        {**{n: ([1, 4, "V", 32], BF) for n in "qkv"}, "sinks": ([4], BF)},
        {"o": ([1, 4, "V", 32], BF)},
        {"V": 64},
        {"bf16": 2 * 4 * (64 * 65 // 2) * 32},
        4 * 4 * 64 * 32 * 2 + 4 * 2,
    ),
    # Diff Transformer's mask: a -inf constant cast to the scores' dtype before `triu`.
    "mask_constant_cast_before_triu": case(
        "def run(q, k, v):\n    S = q.shape[-2]\n"
        "    mask = torch.triu(torch.zeros([S, S]).float().fill_(float('-inf')).type_as(q), 1)\n"
        "    return torch.softmax(q @ k.transpose(-1, -2) + mask, -1) @ v\n",
        {n: ([2, "V", 32], BF) for n in "qkv"},
        {"o": ([2, "V", 32], BF)},
        {"V": 64},
        {"bf16": 2 * 2 * (64 * 65 // 2) * 32},
        4 * 2 * 64 * 32 * 2,
    ),
    # GP predictive variances, `(k.T @ kinv_k).diagonal()` per batch: all of both operands.
    "diagonal_of_a_batched_product": case(
        "def run(a, b):\n    return torch.bmm(a, b).diagonal(dim1=-2, dim2=-1)\n",
        {"a": ([4, "V", 32], F32), "b": ([4, 32, "V"], F32)},
        {"d": ([4, "V"], F32)},
        {"V": 128},
        {"fp32": 4 * 128 * 32},
        2 * 4 * 128 * 32 * 4 + 4 * 128 * 4,
    ),
    # Windows of a large image, more than a thousand, set one by one into a full minimum (Qwen2.5-VL's
    # vision attention) and as `block_diag`: the scores within the windows only.
    "windows_over_a_thousand_set_by_slice": case(
        "def run(q, k):\n    S = q.shape[1]\n"
        "    m = torch.full((S, S), torch.finfo(q.dtype).min, dtype=q.dtype)\n"
        "    for a in range(0, S, 2):\n        m[a:a + 2, a:a + 2] = 0\n"
        "    return torch.softmax(q @ k.transpose(-1, -2) + m, -1) @ k\n",
        {"q": ([1, "V", 8], BF), "k": ([1, "V", 8], BF)},
        {"o": ([1, "V", 8], BF)},
        {"V": 2200},
        {"bf16": 1100 * 4 * 8 * 2},
        3 * 2200 * 8 * 2,
    ),
    "windows_over_a_thousand_by_block_diag": case(
        "def run(q, k):\n"
        "    mask = torch.block_diag(*[torch.ones(2, 2, dtype=torch.bool) for _ in range(q.shape[2] // 2)])\n"
        "    return F.scaled_dot_product_attention(q, k, k, attn_mask=mask)\n",
        {"q": ([1, 1, "V", 8], BF), "k": ([1, 1, "V", 8], BF)},
        {"o": ([1, 1, "V", 8], BF)},
        {"V": 2200},
        {"bf16": 1100 * 4 * 8 * 2},
        3 * 2200 * 8 * 2,
    ),
    # Packed documents of equal length, their ids by `bucketize` against the offsets, causal within each.
    "document_mask_by_bucketize": case(
        "def run(q, k, v):\n    S = q.shape[2]\n"
        "    cu_seqlens = torch.arange(0, S + 1, 16)\n    pos = torch.arange(S)\n"
        "    doc = torch.bucketize(pos, cu_seqlens[1:], right=True)\n"
        "    keep = (doc[:, None] == doc[None, :]) & (pos[:, None] >= pos[None, :])\n"
        "    s = (q @ k.transpose(-1, -2)).masked_fill(~keep, float('-inf'))\n"
        "    return s.softmax(-1) @ v\n",
        {n: ([1, 2, "V", 16], BF) for n in "qkv"},
        {"o": ([1, 2, "V", 16], BF)},
        {"V": 64},
        {"bf16": 2 * 4 * (16 * 17 // 2) * 16 * 2},
        4 * 2 * 64 * 16 * 2,
    ),
    # Frames of positions taken from a slice of a longer arange (positions 8 on): blocks of 16 from there.
    "frames_of_a_sliced_arange": case(
        "def run(q, k):\n    S = q.shape[1]\n    f = torch.arange(S + 8)[8:] // 16\n"
        "    s = (q @ k.transpose(-1, -2)).masked_fill(f[:, None] != f[None, :], float('-inf'))\n"
        "    return s.softmax(-1) @ k\n",
        {"q": ([1, "V", 8], F32), "k": ([1, "V", 8], F32)},
        {"o": ([1, "V", 8], F32)},
        {"V": 64},
        {"fp32": (8 * 8 + 3 * 16 * 16 + 8 * 8) * 8 * 2},
        3 * 64 * 8 * 4,
    ),
    # A beam search's candidates read one by one, stopping at the second of each row: every row of the
    # scores is read whole, as the top-k that ranks them needs it.
    "top_k_candidates_read_one_by_one": case(
        "def run(x):\n    vals, idx = torch.topk(x, 4, dim=1)\n    out = torch.zeros(x.shape[0], 4)\n"
        "    for b in range(x.shape[0]):\n        for j in range(4):\n"
        "            if idx[b, j].item() < 0:\n                continue\n"
        "            out[b, j] = vals[b, j]\n            if j == 1:\n                break\n"
        "    return out\n",
        {"x": (["V", 64], F32)},
        {"out": (["V", 4], F32)},
        {"V": 6},
        {},
        (6 * 64 + 6 * 4) * 4,
    ),
    # A prefix sum written as a product with a triangle of ones made in the reference: the triangle's
    # zeros need no products.
    "prefix_sum_by_a_triangle_of_ones": case(
        "def run(x):\n    T = x.shape[-1]\n    return x @ torch.triu(torch.ones(T, T, device=x.device))\n",
        {"x": (["V", 128], F32)},
        {"y": (["V", 128], F32)},
        {"V": 16},
        {"fp32": 16 * 128 * 129 // 2},
        2 * 16 * 128 * 4,
    ),
    # One item table looked up by two independent draws of ids (a user's item and a candidate): the rows
    # of all 96 draws together, not of each apart.
    "two_lookups_of_one_table": case(
        "def run(t, u, c):\n    return (t[u] * t[c]).sum(-1)\n",
        {"t": ([64, 32], F32), "u": (["V"], "int64"), "c": (["V"], "int64")},
        {"o": (["V"], F32)},
        {"V": 48},
        {},
        2 * 48 * 8 + distinct_drawn(96, 1, 64) * 32 * 4 + 48 * 4,
    ),
    # The same lookups written twice (a mean and a max bag of one set of ids): their rows once.
    "one_lookup_written_twice": case(
        "def run(t, ids):\n    return t[ids].sum(1) + t[ids].amax(1)\n",
        {"t": ([64, 32], F32), "ids": (["V", 4], "int64")},
        {"o": (["V", 32], F32)},
        {"V": 8},
        {},
        32 * 8 + distinct_drawn(32, 1, 64) * 32 * 4 + 8 * 32 * 4,
    ),
    # A feature volume sampled at 256 points (NeRF-style trilinear lookups): 8 corners a point, of 32^3
    # positions, at the distinct count of that many random taps, not the whole volume.
    "grid_sample_of_a_feature_volume": case(
        "def run(volume, pts):\n    grid = torch.tanh(pts).view(1, 1, 1, -1, 3)\n"
        "    return F.grid_sample(volume, grid, align_corners=True).view(volume.shape[1], -1)\n",
        {"volume": ([1, 16, 32, 32, 32], F32), "pts": (["V", 3], F32)},
        {"o": ([16, "V"], F32)},
        {"V": 256},
        {},
        (16 * distinct_drawn(256 * 8, 8, 32**3) + 256 * 3 + 16 * 256) * 4,
    ),
    # Discounted returns as a product with a matrix of gamma^(k - t), zero for k < t: its offsets cast to
    # float before the power and the mask keep their diagonals.
    "discounted_returns_by_a_decay_matrix": case(
        "def run(r):\n    T = r.shape[-1]\n    i = torch.arange(T, device=r.device)\n"
        "    e = (i[:, None] - i[None, :]).float()\n    d = (0.99 ** e).masked_fill(e < 0, 0.0)\n"
        "    return r @ d\n",
        {"r": (["V", 128], F32)},
        {"y": (["V", 128], F32)},
        {"V": 16},
        {"fp32": 16 * 128 * 129 // 2},
        2 * 16 * 128 * 4,
    ),
    # Qwen3-Next's gated delta rule: a strictly lower triangle of products plus the identity is unit lower
    # triangular, and the product with it counts that triangle (the first product's row 0 and column S - 1
    # keep nothing: k and q at 63 of 64 rows).
    "unit_lower_triangle_by_adding_eye": case(
        "def run(k, q, v):\n    S = k.shape[0]\n"
        "    a = (k @ q.T).masked_fill(torch.triu(torch.ones(S, S, dtype=torch.bool), 0), 0)\n"
        "    return (a + torch.eye(S)) @ v\n",
        {"k": (["V", 32], F32), "q": (["V", 32], F32), "v": (["V", 32], F32)},
        {"o": (["V", 32], F32)},
        {"V": 64},
        {"fp32": 64 * 63 // 2 * 32 + 64 * 65 // 2 * 32},
        (2 * 63 * 32 + 64 * 32 + 64 * 32) * 4,
    ),
    # MiniMax's lightning attention decay: a -inf filled tensor chosen by `where` outside the causal band,
    # then `exp`, times the scores: the products count the band.
    "decay_by_where_with_a_full_like_of_minus_inf": case(
        "def run(q, k, v):\n    S = q.shape[0]\n    i = torch.arange(S, dtype=torch.float32)\n"
        "    d = i[:, None] - i[None, :]\n"
        "    decay = torch.exp(torch.where(d >= 0, -0.1 * d, torch.full_like(d, float('-inf'))))\n"
        "    return ((q @ k.T) * decay) @ v\n",
        {"q": (["V", 32], F32), "k": (["V", 32], F32), "v": (["V", 32], F32)},
        {"o": (["V", 32], F32)},
        {"V": 64},
        {"fp32": 2 * 64 * 65 // 2 * 32},
        4 * 64 * 32 * 4,
    ),
    # Mamba-2 in a hybrid block (Falcon-H1): one C·Bᵀ for all heads times each head's causal decay; the
    # product counts its causal triangle, once.
    "shared_scores_times_each_heads_decay": case(
        "def run(C, B, x, a):\n    S = C.shape[0]\n    cs = torch.cumsum(a, 0)\n"
        "    seg = (cs[:, None] - cs[None, :]).permute(2, 0, 1)\n"
        "    L = torch.exp(seg.masked_fill(torch.triu(torch.ones(S, S, dtype=torch.bool), 1), float('-inf')))\n"
        "    G = C @ B.T\n"
        "    return torch.einsum('hij,jhp->ihp', G[None] * L, x) + torch.einsum('hij,jhp->ihp', G * L, x)\n",
        {"C": (["V", 16], F32), "B": (["V", 16], F32), "x": (["V", 4, 16], F32), "a": (["V", 4], F32)},
        {"y": (["V", 4, 16], F32)},
        {"V": 64},
        {"fp32": 64 * 65 // 2 * 16 * (1 + 2 * 4)},
        (2 * 64 * 16 + 64 * 4 * 16 + 64 * 4 + 64 * 4 * 16) * 4,
    ),
    # The same matrix chosen by `where` against a tensor of zeros, on either side.
    "discounted_returns_by_where_with_zeros": case(
        "def run(r):\n    T = r.shape[-1]\n    i = torch.arange(T, device=r.device)\n"
        "    e = (i[:, None] - i[None, :]).float()\n"
        "    d = torch.where(e >= 0, 0.99 ** e.clamp(min=0), torch.zeros_like(e))\n"
        "    u = torch.where(e < 0, torch.zeros(T, T, device=r.device), 0.99 ** e.clamp(min=0))\n"
        "    return r @ d + r @ u\n",
        {"r": (["V", 128], F32)},
        {"y": (["V", 128], F32)},
        {"V": 16},
        {"fp32": 2 * 16 * 128 * 129 // 2},
        2 * 16 * 128 * 4,
    ),
    # Qwen3-Next's chunked gated delta rule: a strictly lower triangle solved row by row in place (each
    # write inside the triangle), then the identity added: a unit lower triangle times the values.
    "triangle_solved_row_by_row_in_place": case(
        "def run(k, kb, v):\n    C = k.shape[-2]\n"
        "    upper = torch.triu(torch.ones(C, C, dtype=torch.bool, device=k.device), 0)\n"
        "    attn = -(k @ kb.transpose(-1, -2)).masked_fill(upper, 0)\n"
        "    for i in range(1, C):\n"
        "        row = attn[..., i, :i].clone()\n        sub = attn[..., :i, :i].clone()\n"
        "        attn[..., i, :i] = row + (row.unsqueeze(-1) * sub).sum(-2)\n"
        "    return (attn + torch.eye(C, device=k.device)) @ v\n",
        {n: ([4, "V", 16], F32) for n in ("k", "kb", "v")},
        {"y": ([4, "V", 16], F32)},
        {"V": 32},
        {"fp32": 4 * 16 * (32 * 31 // 2 + 32 * 33 // 2)},
        4 * 16 * (31 + 31 + 32 + 32) * 4,
    ),
    # ... and a block written over masked positions: kept from then on.
    "block_written_over_a_masked_triangle": case(
        "def run(k, kb, v):\n    C = k.shape[-2]\n"
        "    upper = torch.triu(torch.ones(C, C, dtype=torch.bool, device=k.device), 0)\n"
        "    attn = (k @ kb.transpose(-1, -2)).masked_fill(upper, 0)\n"
        "    attn[..., 2:4, 20:] = attn[..., 4:6, :12] * 2\n"
        "    return attn @ v\n",
        {n: ([4, "V", 16], F32) for n in ("k", "kb", "v")},
        {"y": ([4, "V", 16], F32)},
        {"V": 32},
        {"fp32": 4 * 16 * (32 * 31 + 2 * 12)},
        4 * 16 * (31 + 31 + 32 + 32) * 4,
    ),
    # Packed FP4 codes decoded through a table of E2M1's values (vLLM's NVFP4 reference): FP4 operands.
    "fp4_codes_decoded_by_a_table": case(
        "LUT = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0]\n"
        "def dq(q):\n    lut = torch.tensor(LUT, device=q.device)\n"
        "    pair = torch.stack([lut[(q & 0xF).long()], lut[(q >> 4).long()]], -1)\n"
        "    return pair.reshape(q.shape[0], -1)\n"
        "def run(a, b):\n    return (dq(a) @ dq(b).t()).to(torch.bfloat16)\n",
        {"a": (["V", 32], "uint8"), "b": ([64, 32], "uint8")},
        {"y": (["V", 64], BF)},
        {"V": 16},
        {"fp4": 16 * 64 * 64},
        16 * 32 + 64 * 32 + 16 * 64 * 2,
    ),
    # ... and through a table of NF4's values, which are no FP4 values: the product at the table's class.
    "nf4_codes_decoded_by_a_table": case(
        "LUT = [-1.0, -0.6962, -0.5251, -0.3949, -0.2844, -0.1848, -0.0911, 0.0,\n"
        "       0.0796, 0.1609, 0.2461, 0.3379, 0.4407, 0.5626, 0.723, 1.0]\n"
        "def run(a, x):\n    lut = torch.tensor(LUT, device=a.device, dtype=torch.bfloat16)\n"
        "    w = torch.stack([lut[(a & 0xF).long()], lut[(a >> 4).long()]], -1).reshape(a.shape[0], -1)\n"
        "    return x @ w.t()\n",
        {"a": ([64, 32], "uint8"), "x": (["V", 64], BF)},
        {"y": (["V", 64], BF)},
        {"V": 16},
        {"bf16": 16 * 64 * 64},
        64 * 32 + 16 * 64 * 2 * 2,
    ),
    # Keys and values padded with zeros to a multiple of 64, the padded keys masked: no product with the
    # padding counts, and all of k and v is read.
    "keys_padded_with_zeros_then_masked": case(
        "def run(q, k, v):\n    n = k.shape[0]\n    n_pad = (n + 63) // 64 * 64\n"
        "    kp, vp = F.pad(k, (0, 0, 0, n_pad - n)), F.pad(v, (0, 0, 0, n_pad - n))\n"
        "    s = (q @ kp.T).float().masked_fill(torch.arange(n_pad, device=q.device) >= n, float('-inf'))\n"
        "    return torch.softmax(s, -1).to(v.dtype) @ vp\n",
        {"q": ([32, 128], BF), "k": (["V", 128], BF), "v": (["V", 128], BF)},
        {"y": ([32, 128], BF)},
        {"V": 65},
        {"bf16": 2 * 32 * 65 * 128},
        (32 + 65 + 65 + 32) * 128 * 2,
    ),
    "values_padded_with_zeros": case(
        "def run(p, v):\n    return p @ F.pad(v, (0, 0, 0, p.shape[1] - v.shape[0]))\n",
        {"p": ([32, 128], BF), "v": (["V", 128], BF)},
        {"y": ([32, 128], BF)},
        {"V": 65},
        {"bf16": 32 * 65 * 128},
        (32 * 128 + 65 * 128 + 32 * 128) * 2,
    ),
    # DeepSeek-V3.2's lightning indexer: per-head scores summed with per-head weights (a batch of
    # matrix-vector products), then masked causally: the first product is needed in the triangle too.
    "causal_mask_after_a_weighted_sum_of_heads": case(
        "def run(q, k, w):\n    S = q.shape[0]\n"
        "    logits = torch.einsum('shd,td->sht', q, k)\n"
        "    scores = torch.einsum('sht,sh->st', logits, w)\n"
        "    causal = torch.triu(torch.ones(S, S, dtype=torch.bool, device=q.device), 1)\n"
        "    return scores.masked_fill(causal, float('-inf')).softmax(-1)\n",
        {"q": (["V", 4, 32], F32), "k": (["V", 32], F32), "w": (["V", 4], F32)},
        {"p": (["V", "V"], F32)},
        {"V": 64},
        {"fp32": 4 * 33 * 64 * 65 // 2},
        (64 * 4 * 32 + 64 * 32 + 64 * 4 + 64 * 64) * 4,
    ),
    "causal_mask_after_a_weighted_sum_of_batched_heads": case(
        "def run(q, k, w):\n    S = q.shape[1]\n"
        "    logits = F.relu(torch.einsum('bshd,btd->bsht', q, k).float())\n"
        "    scores = torch.einsum('bsht,bsh->bst', logits, w) * 0.125\n"
        "    causal = torch.triu(torch.ones(S, S, dtype=torch.bool, device=q.device), 1)\n"
        "    return scores.masked_fill(causal, float('-inf')).softmax(-1)\n",
        {"q": ([1, "V", 4, 32], BF), "k": ([1, "V", 32], BF), "w": ([1, "V", 4], F32)},
        {"p": ([1, "V", "V"], F32)},
        {"V": 128},
        {"bf16": 4 * 32 * 128 * 129 // 2, "fp32": 4 * 128 * 129 // 2},
        (128 * 4 * 32 + 128 * 32) * 2 + (128 * 4 + 128 * 128) * 4,
    ),
}


@pytest.mark.parametrize("name", CATALOGUE)
def test_a_reference_counts_as_by_hand(tmp_path, name):
    body, inputs, outputs, axes, macs, nbytes = CATALOGUE[name]
    sizes = {"V": None} | {k: v for k, v in axes.items() if k != "V"}
    p = make_problem(tmp_path, HEAD + body, inputs, outputs, sizes, [{"axes": {"V": axes["V"]}}])
    b = one(p, floor=False)
    assert b.macs_by_precision == pytest.approx(macs), name
    assert b.bytes_read + b.bytes_written == pytest.approx(nbytes), name
