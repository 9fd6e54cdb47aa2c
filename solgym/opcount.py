"""Op counting: run a reference under a dispatch mode and count what it must do.

A reference is run once under `TorchDispatchMode`, on meta tensors where it can be (shapes only, no data,
no generators run) or on real CPU data where its control flow reads values. Every ATen op is recorded with
the storages it reads and writes. A backward pass from the returned outputs then assigns each op the
fraction of its result that reaches an output (its *demand*), which removes work the reference computes and
discards, and assigns each graph input the bytes that are actually addressed: a gather, an index or a paged
read demands only the rows its indices name, and a cast or elementwise op passes on exactly the part of its
result that is demanded. A second walk keeps only what every correct kernel provably has to read (the
needed reads: operands of dense ops that no possible zero or infinity of another operand makes moot).
`count(problem, workload)` returns the totals as `OpCounts`.

Multiply-accumulates are counted for the contractions (mm, bmm, addmm, baddbmm, mv, dot, `_scaled_mm`,
convolutions with their groups, and scaled-dot-product attention with its causal triangle); einsum, matmul
and linear reach ATen as these. Everything else that computes is reported as "other" FLOPs: one per output
element for pointwise ops, one per input element for reductions, 5 N log2 N for FFTs.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import gc
import hashlib
import itertools
import math
import operator
import re
import weakref
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from solgym import band, value_range
from solgym.dtypes import DTYPES, of_torch
from solgym.problem import Problem, ProblemError, Workload

# Precision classes of a quantized operand, narrowest first. A tensor cast from one of these keeps it as
# its provenance through views, casts and scaling, so that a dequantize-then-matmul reference is recognised
# as a quantized contraction.
QUANTIZED = ("fp4", "fp8")

# Largest input+output footprint traced on data as is; larger workloads are traced shrunk and extrapolated.
DATA_TRACE_BYTES = 1 << 24
# ... and the largest traced as is where the shrunk traces' counts follow no fit (`_count_on_data`).
DATA_TRACE_UNFITTED_BYTES = 1 << 28

# ATen ops that never read their destination (they overwrite it), and ops that create tensors from nothing.
_WRITE_ONLY = {
    "copy_",
    "fill_",
    "zero_",
    "normal_",
    "uniform_",
    "random_",
    "bernoulli_",
    "exponential_",
}
_NO_FLOPS = {
    "copy_",
    "fill_",
    "zero_",
    "clone",
    "_to_copy",
    "to",
    "contiguous",
    "empty",
    "empty_like",
    "empty_strided",
    "zeros",
    "zeros_like",
    "ones",
    "ones_like",
    "full",
    "full_like",
    "new_empty",
    "new_zeros",
    "new_ones",
    "new_full",
    "new_empty_strided",
    "scalar_tensor",
    "lift_fresh",
    "lift_fresh_copy",
    "_local_scalar_dense",
    "arange",
    "linspace",
    "cat",
    "stack",
    "index",
    "index_select",
    "gather",
    "embedding",
    "take",
    "index_put_",
    "index_put",
    "scatter",
    "scatter_",
    "repeat",
    "masked_select",
    "nonzero",
    "constant_pad_nd",
    "flip",
    "roll",
    "tril",
    "triu",
    "_unsafe_view",
    "slice_scatter",
    "select_scatter",
    "diagonal_scatter",
    "as_strided_scatter",
    "detach",
    "alias",
    "sort",
    "argsort",
    "topk",
    "where",
    "masked_fill",
    "masked_fill_",
    "fill",
    "resize_",
    "split_with_sizes_copy",
    "unbind_copy",
    "_unsafe_index",
    "repeat_interleave",
    "bernoulli",
    "rand",
    "randn",
    "randint",
    "rand_like",
    "randn_like",
    "randperm",
    "one_hot",
}
_REDUCTIONS = {
    "sum",
    "mean",
    "amax",
    "amin",
    "max",
    "min",
    "prod",
    "var",
    "std",
    "var_mean",
    "std_mean",
    "logsumexp",
    "norm",
    "linalg_vector_norm",
    "_softmax",
    "_safe_softmax",
    "_log_softmax",
    "softmax",
    "log_softmax",
    "cumsum",
    "cumprod",
    "argmax",
    "argmin",
    "all",
    "any",
    "native_layer_norm",
    "native_group_norm",
    "native_batch_norm",
    "_native_batch_norm_legit_no_training",
    "_fused_rms_norm",
    "topk",
    "sort",
    "aminmax",
    "count_nonzero",
}
_FACTORIES_CONST = {
    "zero_",
    "zeros",
    "zeros_like",
    "new_zeros",
    "full",
    "full_like",
    "ones",
    "ones_like",
    "new_full",
    "new_ones",
    "fill_",
    "scalar_tensor",
}
# The most blocks set into one constant matrix that its mask follows.
_MAX_BLOCKS = 8192
# ... and into a mask of another making, each nesting its region one level deeper.
_MAX_NESTED_BLOCKS = 64
# Ops whose result has the shape of their (broadcast) operands, element by element, besides pointwise ones.
_ALIGNED = {"_to_copy", "clone", "copy_", "constant_pad_nd"}
# Ops after which masked scores stay masked (-inf) or masked probabilities stay zero.
_MASK_PRESERVING = {
    "_softmax",
    "_safe_softmax",  # the softmax of SDPA's math path (inside `F.multi_head_attention_forward`)
    "softmax",
    "_log_softmax",
    "_to_copy",
    "clone",
    "copy_",
    "contiguous",
    "mul",
    "div",
    "exp",
    "native_dropout",
    "_unsafe_view",
}
# The most tiles a tiled mask is followed in (`_Recorder._tiled_mask`): query heads per key head.
_MAX_TILES = 64
# Elementwise arithmetic of a constant tensor and a number whose result is a constant too.
_CONSTANT_ARITHMETIC = {"mul": torch.mul, "div": torch.div, "add": torch.add, "sub": torch.sub}
# Backward ops that scale the gradient, their first argument, by a factor of the forward's values
# (`tanh_backward(g, t)` is g (1 - t²)): zero wherever the gradient is.
_GRADIENT_SCALINGS = {
    "tanh_backward",
    "sigmoid_backward",
    "gelu_backward",
    "silu_backward",
    "threshold_backward",
    "hardtanh_backward",
    "softplus_backward",
    "leaky_relu_backward",
}
# Window ops whose strides may skip input positions (`_touched_share`).
_WINDOWED = set(
    """convolution max_pool1d max_pool2d max_pool3d max_pool2d_with_indices max_pool3d_with_indices avg_pool1d
    avg_pool2d avg_pool3d""".split()
)
# Resampling by interpolation, (input, output_size, [align_corners,] scales...): a downsampling one reads
# only the source positions its taps fall on (`_sampled_share`).
_RESAMPLED = {
    "upsample_nearest1d": "nearest",
    "upsample_nearest2d": "nearest",
    "upsample_nearest3d": "nearest",
    "_upsample_nearest_exact1d": "nearest-exact",
    "_upsample_nearest_exact2d": "nearest-exact",
    "_upsample_nearest_exact3d": "nearest-exact",
    "upsample_linear1d": "linear",
    "upsample_bilinear2d": "linear",
    "upsample_trilinear3d": "linear",
    "upsample_bicubic2d": "cubic",
}
# Products with an added term, which may be a mask.
_BIASED = {"baddbmm", "addmm"}
# Sums and differences, after which -inf scores stay -inf where the other term is finite.
_SHIFTS = {"add", "add_", "sub", "sub_"}
_FFT = {"_fft_r2c", "_fft_c2r", "_fft_c2c"}
# Ops whose every output element depends on every element they read that lands in it (generically: unless
# another operand holds exact zeros or infinities there): reading all of each operand is necessary for the
# part of the result that is needed. Anything outside this set proves nothing about its reads.
_DENSE = (
    set(
        """abs add add_ addcdiv addcmul atan atan2 bmm baddbmm addmm mm mv dot cat stack clamp clamp_min
        clamp_max clone contiguous copy_ _to_copy cos cosh div div_ elu erf erfc exp exp2 expm1 gelu
        addmm_ baddbmm_ addbmm addbmm_ addmv addmv_
        hardswish hardsigmoid leaky_relu lerp log log1p log2 logit mish mul mul_ neg pow reciprocal relu
        rsqrt rsub sigmoid silu sin sinh softplus sqrt square sub sub_ tan tanh flip roll repeat
        constant_pad_nd convolution _scaled_mm _int_mm _cdist_forward _euclidean_dist
        scaled_dot_product_attention gelu_backward sigmoid_backward tanh_backward silu_backward
        native_layer_norm_backward _softmax_backward_data eq ne lt le gt ge""".split()
    )
    | (_REDUCTIONS - {"all", "any", "count_nonzero"})
    | _FFT
)
# Pointwise arithmetic that a zero or infinite Python scalar can make independent of its tensor operands.
_SCALAR_SENSITIVE = set("mul mul_ div div_ add add_ sub sub_ rsub pow addcmul addcdiv lerp".split())
# Ops whose result may hold exact zeros or infinities by construction (masks, padding, rectifiers,
# rounding, scatters into buffers): an operand combined with such a tensor is not provably needed in full.
_STRUCTURED = set(
    """where masked_fill masked_fill_ masked_scatter masked_scatter_ relu relu_ threshold threshold_backward
    clamp clamp_ clamp_min clamp_max hardtanh native_dropout native_dropout_backward triu tril
    constant_pad_nd scatter scatter_ scatter_add scatter_add_ scatter_reduce index_put index_put_ index_add
    index_add_ index_copy index_copy_ index_fill index_fill_ slice_scatter select_scatter diagonal_scatter
    as_strided_scatter floor ceil round trunc sign frac one_hot eq ne lt le gt ge isinf isnan
    nan_to_num""".split()
)
# How exact zeros and infinities pass through arithmetic (anything else: either makes either).
_ADDITIVE = set("add add_ sub sub_ rsub cat stack".split())
_MULTIPLICATIVE = set("mul mul_ addcmul".split())
# Products fused with dequantization or grouping (`_arithmetic`).
_FUSED_PRODUCTS = set(
    """_weight_int8pack_mm _weight_int4pack_mm _weight_int4pack_mm_for_cpu _weight_int4pack_mm_with_scales_and_zeros
    _scaled_mm_v2 _scaled_grouped_mm _scaled_grouped_mm_v2 _grouped_mm""".split()
)
_CONTRACTING = _FUSED_PRODUCTS | set(
    """mm bmm mv dot addmm addmm_ baddbmm baddbmm_ addbmm addbmm_ addmv addmv_ _scaled_mm _int_mm
    _cdist_forward _euclidean_dist convolution scaled_dot_product_attention""".split()
)
# Structured ops whose zeros fall element by element, not in whole rows or columns.
_SCATTERED_ZEROS = set(
    """relu relu_ threshold threshold_backward native_dropout native_dropout_backward clamp clamp_
    clamp_min clamp_max hardtanh floor ceil round trunc sign frac""".split()
)
_NORMAL_DRAWS = {"randn", "randn_like", "normal", "normal_"}
# Ops that move or reshape values without changing them (a cast that overflows aside).
_COPIES = set("_unsafe_view clone _to_copy contiguous copy copy_ lift_fresh_copy".split())
_NONZERO = set("exp exp_ exp2 cos cosh sigmoid softplus erfc".split())
# In-place ops that overwrite (part of) their destination without reading what was there.
_OVERWRITES = _WRITE_ONLY | set(
    "index_put_ index_copy_ index_fill_ masked_fill_ masked_scatter_ scatter_".split()
)
# In-place writes at indexed positions: the destination's other elements stay as they were, unread (a KV
# cache row written with `index_copy_`); an accumulating `index_put_` or a reducing `scatter_` reads it.
_PLACED = {"index_put_", "index_copy_", "index_fill_", "masked_scatter_", "scatter_"}
_CONTRACTIONS = {"mm", "bmm", "addmm", "baddbmm", "convolution", "_scaled_mm"}
# With `add` (and `baddbmm`), (self, a, b): the product added to self, in place with `_`.
_MATRIX_PRODUCTS = set("mm bmm addmm addmm_ baddbmm baddbmm_ addbmm addbmm_ _scaled_mm _int_mm".split())
# Attention kernels below `scaled_dot_product_attention`'s Python entry (`_arithmetic`), forward and
# backward, in the (batch, heads, sequence, head dim) layout.
_ATTENTION_KERNELS = set(
    """_scaled_dot_product_flash_attention_for_cpu _scaled_dot_product_flash_attention
    _scaled_dot_product_efficient_attention _scaled_dot_product_cudnn_attention
    _scaled_dot_product_fused_attention_overrideable""".split()
)
_ATTENTION_KERNELS |= {f"{name}_backward" for name in _ATTENTION_KERNELS}
# Ops whose MACs are those of a matrix product.
_PRODUCT_MACS = _MATRIX_PRODUCTS | {"mv", "addmv", "addmv_", "dot", "vdot", "matmul"}
_EMBEDDINGS = {"embedding", "_embedding_bag", "_embedding_bag_forward_only"}
# Ops along one axis (`dim`) whose every result element needs its operand's whole row along it.
_CUMULATIVE = {"cumsum", "cumprod", "logcumsumexp", "cummax", "cummin"}
_ALONG_DIM = {
    "_softmax",
    "_safe_softmax",
    "_log_softmax",
    "softmax",
    "log_softmax",
    "sort",
    "topk",
} | _CUMULATIVE
_DIM_AFTER_K = {"topk"}  # ops whose `dim` follows a count: topk(x, k, dim=-1)
# Losses that read their (log-)probabilities only where the targets point: one class of each row, or, for
# CTC, the blank and each sequence's labels at each of its steps.
_PICKING_LOSSES = {"nll_loss_forward", "nll_loss2d_forward", "_ctc_loss"}
_GATHERS = (
    {"index", "_unsafe_index", "index_select", "gather", "take", "masked_select"}
    | _EMBEDDINGS
    | _PICKING_LOSSES
)
# Gathers whose every result element is one element of their source (`_few_values`).
_PICKS = {"index", "_unsafe_index", "index_select", "gather", "take", "masked_select", "embedding"}


@dataclass
class OpCounts:
    """What a reference does for one workload, before pricing.

    `macs` maps an operand precision class (see `solgym.dtypes`; "fp8"/"fp4" also for operands dequantized
    from those) to multiply-accumulates. `read_bytes`/`read_elements` give, per tensor input, the part the
    reference addresses; `write_bytes`/`write_elements` the size of each output. `needed_read_bytes` /
    `needed_read_elements` give, per tensor input, the part that any correct kernel provably has to read
    (see `_needed`): a lower bound of the addressed part. `traced_on` is "meta" or says which data and
    scaling were used; `notes` explain anything approximated."""

    macs: dict[str, float] = field(default_factory=dict)
    flops_other: float = 0.0
    read_bytes: dict[str, float] = field(default_factory=dict)
    read_elements: dict[str, float] = field(default_factory=dict)
    write_bytes: dict[str, float] = field(default_factory=dict)
    write_elements: dict[str, float] = field(default_factory=dict)
    needed_read_bytes: dict[str, float] = field(default_factory=dict)
    needed_read_elements: dict[str, float] = field(default_factory=dict)
    traced_on: str = "meta"
    notes: list[str] = field(default_factory=list)
    op_count: int = 0

    def scaled(self, factor_of: Any) -> OpCounts:
        """A copy with every quantity `q` under key path `k` replaced by `factor_of(k, q)`."""
        return OpCounts(
            macs={k: factor_of(("macs", k), v) for k, v in self.macs.items()},
            flops_other=factor_of(("flops_other",), self.flops_other),
            read_bytes={k: factor_of(("read_bytes", k), v) for k, v in self.read_bytes.items()},
            read_elements={k: factor_of(("read_elements", k), v) for k, v in self.read_elements.items()},
            write_bytes=dict(self.write_bytes),
            write_elements=dict(self.write_elements),
            needed_read_bytes=dict(self.needed_read_bytes),
            needed_read_elements=dict(self.needed_read_elements),
            traced_on=self.traced_on,
            notes=list(self.notes),
            op_count=self.op_count,
        )


class DataDependent(RuntimeError):
    """The reference reads tensor values to decide what to do, so it cannot run on meta tensors."""


class _Undecided(DataDependent):
    """A value read on meta that no range decides."""


class _SmallValues(_Undecided):
    """A value no range decides, of a tensor small enough to stay on data in a mixed trace (a loss's
    targets), where it is traced at full size first (`count`)."""


class _TooLong(DataDependent):
    """A meta trace stopped after `META_OPS_WITH_READS` ops past a decided value read: at a smaller size the
    same reference may finish on meta."""


# A meta trace whose reads were decided by value ranges stops after this many ops, and the workload is
# counted from shrunk sizes instead (`count_on_data`, whose traces try meta first): a reference that loops
# this long (per head, per expert) is cheaper to trace at a few smaller sizes than once at full size.
META_OPS_WITH_READS = 8_000


# In mixed mode, tensors above this size live on meta.
MIXED_BYTES = 64 << 20
# Ops whose result's shape depends on the values they read.
_VALUE_SHAPED = set(
    """nonzero argwhere masked_select unique _unique _unique2 unique_dim unique_consecutive bincount
    repeat_interleave histc""".split()
)


@functools.cache
def _composite(func: Any) -> bool:
    """Whether an op has a decomposition into other ATen ops (CompositeImplicitAutograd)."""
    return torch._C._dispatch_has_kernel_for_dispatch_key(
        func.name(), torch._C.DispatchKey.CompositeImplicitAutograd
    )


def _sizing_argument(func: Any, name: str, args: tuple) -> torch.Tensor | None:
    """The tensor whose values decide the size of a value-shaped op's result: the condition of `nonzero`
    and `masked_select`, the values of `unique` and `bincount`, the counts of `repeat_interleave`."""
    if name not in _VALUE_SHAPED or name == "histc" or not args:
        return None
    position = 0
    if name == "masked_select" or func._overloadname == "self_Tensor":
        position = 1
    found = args[position] if len(args) > position else None
    return found if isinstance(found, torch.Tensor) else None


def _bool_index(name: str, tensors: list[torch.Tensor]) -> bool:
    return name in ("index", "_unsafe_index", "index_put", "index_put_") and any(
        t.dtype in (torch.bool, torch.uint8) for t in tensors
    )


def _tensor_args(args: tuple, kwargs: dict) -> list[torch.Tensor]:
    """The tensors among an ATen op's arguments (a flat walk: cheaper than a pytree flatten per op)."""
    return [t for t in _leaves((args, tuple(kwargs.values()))) if isinstance(t, torch.Tensor)]


def _holds_inf(dtype: torch.dtype) -> bool:
    """Whether a dtype can encode an infinity (float8_e4m3fn, e8m0 and packed fp4 cannot)."""
    return dtype.is_floating_point and dtype not in _NO_INF


def _holds_non_finite(dtype: torch.dtype) -> bool:
    """Whether a dtype can encode an infinity or a NaN (integers, bools and packed fp4 cannot)."""
    return dtype.is_floating_point and dtype != _FP4 or dtype.is_complex


# By name: older torch builds lack some of these dtypes.
_FP4 = getattr(torch, "float4_e2m1fn_x2", None)
_NO_INF = tuple(
    getattr(torch, n)
    for n in ("float8_e4m3fn", "float8_e4m3fnuz", "float8_e8m0fnu", "float4_e2m1fn_x2")
    if hasattr(torch, n)
)


# ------------------------------------------------------------------------------------------------ recording


def _key(t: torch.Tensor) -> int:
    # The StorageImpl's address identifies a storage for as long as the recorder holds a tensor on it.
    return t.untyped_storage()._cdata


def _spread(t: torch.Tensor, unique: int, out: torch.Tensor) -> str | None:
    """Along which of out's last two axes `t` (of `unique` distinct elements), an operand of an elementwise
    op making `out`, is broadcast (of size 1 there, absent, or expanded): "columns" (one value per row,
    as a row statistic), "rows" (one per column, as a norm's weight), "both", or None."""
    if unique >= out.numel():
        return None
    along = [
        d for d in (-1, -2) if out.shape[d] > 1 and (t.dim() < -d or t.shape[d] == 1 or t.stride(d) == 0)
    ]
    if not along:
        return None
    return "both" if len(along) == 2 else "columns" if along[0] == -1 else "rows"


def _touched_share(name: str, args: tuple, out: torch.Tensor) -> float:
    """The share of its input a strided window op reads: a convolution or pooling whose windows skip input
    rows (a 1x1 convolution of stride 2 reads every other row and column; a dilated one, every other
    row where its stride matches), or whose last window ends before the input does (floor mode). Per
    spatial axis, the distinct input positions o * stride + t * dilation - padding over output positions o
    and taps t, of the input's size."""
    x = args[0]
    spatial = out.dim() - 2
    if spatial < 1 or x.dim() != out.dim():
        return 1.0

    def per_axis(value: Any, default: int) -> list[int]:
        if value is None or (isinstance(value, list | tuple) and not value):
            return [default] * spatial
        values = list(value) if isinstance(value, list | tuple) else [value]
        return values * spatial if len(values) == 1 else values

    if name == "convolution":
        if len(args) < 7 or args[6]:
            return 1.0  # transposed: every input element is read
        kernel = list(args[1].shape[2:])
        stride, padding, dilation = per_axis(args[3], 1), per_axis(args[4], 0), per_axis(args[5], 1)
    else:  # pooling(self, kernel_size, stride, padding, dilation, ...)
        kernel = per_axis(args[1], 1)
        stride = per_axis(args[2] if len(args) > 2 else None, 0)
        stride = [s or k for s, k in zip(stride, kernel, strict=True)]
        padding = per_axis(args[3] if len(args) > 3 else None, 0)
        dilation = per_axis(args[4] if len(args) > 4 and name.startswith("max") else None, 1)
    if not len(kernel) == len(stride) == len(padding) == len(dilation) == spatial:
        return 1.0
    share = 1.0
    for d in range(spatial):
        size, n, k = x.shape[2 + d], out.shape[2 + d], kernel[d]
        if not size or not n:
            continue
        if (k - 1) * dilation[d] + 1 >= stride[d] and dilation[d] == 1:
            # Windows that meet or overlap read every position from the first window's start to the last
            # one's end: a tail the last window stops short of (a 27-wide axis pooled by 2) is not read.
            first, last = -padding[d], (n - 1) * stride[d] + k - 1 - padding[d]
            share *= max(0, min(last, size - 1) - max(first, 0) + 1) / size
            continue
        if n * k > 1 << 16:
            return 1.0  # a long axis: not worth enumerating
        rows = {o * stride[d] + t * dilation[d] - padding[d] for o in range(n) for t in range(k)}
        share *= sum(1 for r in rows if 0 <= r < size) / size if size else 1.0
    return share


def _sampled_share(mode: str, args: tuple, kwargs: dict) -> float:
    """The share of its input an interpolation reads: per resampled axis, the distinct source positions
    its taps with a nonzero weight fall on, computed in float32 as PyTorch's kernels compute them (a
    nearest x0.25 reads every fourth row and column, a bilinear one two of every four; upsampling reads
    them all), of the input's size."""
    x, sizes = args[0], args[1] if len(args) > 1 else kwargs.get("output_size")
    if not isinstance(sizes, list | tuple) or not sizes or x.dim() < len(sizes):
        return 1.0
    rest = list(args[2:])
    align = bool(rest.pop(0)) if mode in ("linear", "cubic") and rest else False
    scales = [*rest, *(None for _ in sizes)][: len(sizes)]
    share = 1.0
    for size, n, scale in zip(x.shape[x.dim() - len(sizes) :], sizes, scales, strict=True):
        if not size or not n or n >= size or n > 1 << 16:
            continue  # nothing to read, or every source position (no downsampling), or too long to list
        if align:
            step = np.float32((size - 1) / (n - 1) if n > 1 else 0.0)
        else:
            step = np.float32(1.0 / scale if isinstance(scale, float) and scale > 0 else size / n)
        o = np.arange(n, dtype=np.float32)
        if mode in ("nearest", "nearest-exact"):
            taps = np.floor((o + np.float32(0.5 if mode == "nearest-exact" else 0.0)) * step)
        else:
            src = o * step if align else (o + np.float32(0.5)) * step - np.float32(0.5)
            if mode == "linear":
                src = np.maximum(src, np.float32(0.0))
            first = np.floor(src)
            offsets = (0, 1) if mode == "linear" else (-1, 0, 1, 2)
            # On a source position (no fraction) only that position weighs anything.
            taps = np.concatenate([first + d for d in offsets])
            weighed = np.concatenate([(src != first) | (d == 0) for d in offsets])
            taps = taps[weighed]
        share *= np.unique(np.clip(taps, 0, size - 1)).size / size
    return share


def _grid_share(args: tuple) -> float:
    """The share of its input a grid sample reads (`grid_sampler_2d(input, grid, mode, ...)`): each point of
    the grid reads its taps of every channel (one nearest, two along each axis bilinear, four bicubic) at
    positions its values give, which a trace does not follow; counted as the distinct positions that many
    taps, drawn at random among the input's, would name (`value_range.distinct_drawn`, which errs low), of
    each batch's positions."""
    x, grid = args[0], args[1]
    mode = args[2] if len(args) > 2 else 0
    taps = {0: 2, 1: 1, 2: 4}.get(mode) if isinstance(mode, int) else None
    if taps is None or x.dim() < 3 or grid.dim() != x.dim():
        return 1.0
    taps **= x.dim() - 2
    positions, points = math.prod(x.shape[2:]), math.prod(grid.shape[1:-1])
    if not positions or points * taps >= positions << 6:
        return 1.0  # nothing to read, or so many taps that no position is left out
    return value_range.distinct_drawn(points * taps, taps, positions) / positions


def _unique_elements(t: torch.Tensor) -> int:
    """Distinct elements a view addresses: expanded (stride 0) dimensions add none."""
    n = 1
    for size, stride in zip(t.shape, t.stride(), strict=True):
        if stride != 0:
            n *= size
    return n if t.numel() else 0


def _footprint(sig: tuple) -> int:
    """Distinct elements the view of a signature (`_signature`, its axes by stride) addresses in memory:
    its unique elements less those that overlapping windows share (`x.unfold(-1, 400, 160)`: the samples
    from the first window's start to the last one's end, once each)."""
    count = extent = 1
    for stride, size in sig[2]:
        reach = (size - 1) * stride + extent
        if stride >= extent:
            count *= size
        elif count == extent:
            count = reach  # windows of a contiguous run that overlap or touch: one longer run
        else:
            count = min(count * size, reach)
        extent = reach
    return count


def _signature(t: torch.Tensor) -> tuple:
    """The set of addresses a view covers, independent of how its dimensions are ordered or split."""
    return _laid_out(t.shape, t.stride(), t.storage_offset(), t.element_size())


def _laid_out(shape: Iterable[int], strides: Iterable[int], offset: int, itemsize: int) -> tuple:
    """The signature (`_signature`) of a view of these sizes, strides and offset."""
    dims = sorted(
        (stride, size) for size, stride in zip(shape, strides, strict=True) if size > 1 and stride != 0
    )
    merged: list[list[int]] = []
    for stride, size in dims:
        if merged and merged[-1][0] * merged[-1][1] == stride:
            merged[-1][1] *= size
        else:
            merged.append([stride, size])
    return (offset, itemsize, tuple(map(tuple, merged)))


@dataclass
class _Read:
    key: int
    sig: tuple
    nbytes: float  # bytes of the view that a full read addresses
    rows: Any = None  # for a gather source: (dim, row_bytes, row count estimate, index values or None)
    necessary: bool = False  # every element of the read reaches the op's result (see `_DENSE`)
    # The shares of the rows and of the columns of its last two axes that what the op demands of the read
    # meets (a mask keeps some positions of each): a matrix product that made it needs those shares of
    # its two operands, whole where the mask keeps some of every row and column (a causal band).
    covering: tuple[float, float] | None = None
    # Of a matrix product's operands: "rows" (the first, and its scales), "columns" (the second, and its
    # scales), or "all" (a single scale)
    side: str | None = None
    # Of a gather source: the rows (all axes but the last) it addresses (`_Recorder._lines_gathered`).
    lines: tuple | str | None = None
    # The read is broadcast along the last two axes of the op's (elementwise) result (`_spread`): a row
    # statistic broadcast along the columns is needed in every row demanded, a norm's weight broadcast
    # along the rows in every column demanded.
    spread: str | None = None
    # Of a read spread along the rows that has the result's leading axes (`r[:, :, None, :]` added to scores
    # of [.., s, n]): the result rows each of its rows feeds (s), so a block of the result's rows needs
    # the block of its rows they come from.
    group: int = 0
    # Of a gather source: the axes along which its indices keep part (an arange over all of an axis keeps
    # it whole), or None where they address elements (`take`, a bool mask).
    axes: frozenset | None = None
    # Of a gather source whose index holds uniform random draws, without their values (`_Drawn`): several
    # such gathers of one storage name the rows of all their draws together.
    drawn: _Drawn | None = None


@dataclass(frozen=True)
class _Drawn:
    """The index of a gather, as draws: which tensor it is (its storage and view), what it draws from
    (`value_range.Drawn`'s draws and per_row), its lookups and the most rows they can name otherwise."""

    index: tuple
    draws: tuple
    per_row: int
    extra: int
    values: float
    lookups: float
    most: float


@dataclass
class _Op:
    name: str
    reads: list[_Read]
    writes: list[tuple[int, float]]  # (storage, bytes written of it)
    write_sigs: list[tuple] = field(default_factory=list)  # the view written, per entry of `writes`
    overwrites: bool = False  # writes its destination without reading what was there
    # Of `writes`, the indices of views written whole without being read (`copy_`, `fill_`, `out=`): what
    # is demanded of them afterwards is what the op writes, not what they held before.
    replaces: tuple[int, ...] = ()
    macs: float = 0.0
    precision: str = ""
    flops: float = 0.0
    # Of a batched product whose operands repeat along its batch axis: the batches that make the same
    # products, counted once (`_Recorder._batch_repeats`).
    shared: int = 1
    aligned: bool = False  # each result element comes from the operands' elements at its place
    # (rows, columns, bytes of an element) of the result as a matrix of its trailing axes, for a matrix
    # product and an op over whole rows (softmax, cumsum, sort, norms, FFTs), whose operand reads follow
    # the rows and columns demanded of it.
    matrix: tuple[int, int, int] | None = None
    # Of a row-wise op along an axis other than the last (`softmax(x, dim=1)`), the extent of the axes after
    # it: `matrix` is then (the axes before, that axis x those after), and what it reads of its operand is the
    # lines along the axis that the demanded part of its result meets (`_demanded_lines`).
    inner: int = 1
    # Any demand of its result needs all of its work and reads: a factorization of one matrix, whose every
    # result element depends on all of it (the last eigenvector, a determinant).
    whole: bool = False
    # Of a convolution: its geometry (`_ConvGeometry`), by which what its result's demanded views keep
    # maps to the input positions and the weight rows they need.
    conv: Any = None
    # Of a write at indexed positions that are no block (`cache.index_copy_(0, slots, k)`): (the index in
    # `writes` of its destination, the most bytes of it the write can replace: its distinct positions' rows).
    thinned: tuple[int, float] | None = None
    # ... and on data, its distinct positions along the axis it writes them on (a tensor).
    placed: torch.Tensor | None = None
    # Of a matrix product whose result has one column or one row per matrix (`einsum('sht,sh->st', ...)`,
    # a batch of matrix-vector products): the sides ("rows", "columns") of which each element of the result
    # takes a line of its own, so that the share of its elements demanded is the share of those lines.
    lone_sides: tuple[str, ...] = ()
    # Of a matrix product with a factor zero in whole rows of the first or columns of the second (keys
    # padded with zeros): the share of its result not zero by construction, which bounds its work however
    # much of it is demanded.
    nonzero: float = 1.0


class _Recorder(TorchDispatchMode):
    """Records every ATen op with its reads, writes and arithmetic."""

    def __init__(self, with_data: bool):
        super().__init__()
        self.with_data = with_data
        self.ops: list[_Op] = []
        self.keep: list[torch.Tensor] = []  # holds storages alive so that their keys stay unique
        self.tags: dict[int, str] = {}  # storage -> quantized provenance ("fp8"/"fp4")
        self.tables: dict[int, list[float]] = {}  # small constants made from Python numbers on meta: values
        self.suspended = 0
        self.storage_bytes: dict[int, int] = {}
        self.constant: dict[int, Any] = {}  # storages filled with one value -> the value (None: unknown)
        # A mask, nonzero on a band of diagonals (`solgym.band`): storage -> (fraction of positions outside
        # the band, the value inside it, the band)
        self.mask_of: dict[int, tuple[float, Any, band.Region]] = {}
        self.follow_masks = True  # off: masks are not recorded, and what they mask out counts in full
        # Off: the values of a small tensor that decide what is read (a length per row, labels that may be
        # ignored) are not asked for on meta (`_SmallValues`), and every position counts as kept.
        self.small_values = True
        self.exact_products = False  # on data: products computed, not stood in by noise (`_stand_in`)
        self.windows: set[int] = set()  # the storages of window inputs (`window`), smaller than their tensors
        # On meta: the storages of integer inputs that a custom entry point makes (`_ask_positions`)
        self.made_indices: set[int] = set()
        # storage -> ((rows, cols, column stride), the (size, stride) of its axes over 1) as made
        self.mask_layout: dict[int, tuple] = {}
        self.aranges: dict[int, tuple[float, float]] = {}  # storage -> (first value, step) of an arange
        # storage -> (F, s) of floor(arange / F) for an arange of step 1 from s: floor((i + s) / F)
        self.frame_of: dict[int, tuple[int, int]] = {}
        self.abs_lines: dict[int, tuple[float, float]] = {}  # storage -> (first, step) of |arange + c|
        # storage -> (axis, first, step, layout) of a position line repeated along other axes (`_positions`)
        self.grids: dict[int, tuple] = {}
        # storage -> (c, s, absolute, rows, cols) of a tensor holding c + s (j - i) (or its absolute value)
        self.diagonals: dict[int, tuple[float, int, bool, int, int]] = {}
        # storage -> (F, r, c) of a diagonal entry whose j - i is the frames' difference floor((j + c) / F) -
        # floor((i + r) / F): two frame indices subtracted (NeMo's chunked attention, video frame windows)
        self.frame_diagonals: dict[int, tuple[int, int, int]] = {}
        # A tensor with masked positions -> (fraction not masked, what the masked ones hold: "-inf" or "0",
        # the band not masked where known)
        self.masked: dict[int, tuple[float, str, band.Region | None]] = {}
        # ... and the strides of the two axes its band lies on (a permuted view of it holds the band on others)
        self.masked_axes: dict[int, tuple[int, ...]] = {}
        # A storage whose values repeat along an axis, as a copy of an expanded view: storage -> the axes,
        # as (stride, size) of the result that holds them.
        self.repeated: dict[int, frozenset[tuple[int, int]]] = {}
        # storage -> the most distinct values it holds, where fewer than its elements (`_few_values`)
        self.few: dict[int, int] = {}
        # A storage filled whole with one value (`self.constant`) -> the tensor the fill made, and -> the
        # blocks since filled into it with another value (`_filled_block`) or, of a tensor with masked
        # positions, copied over them (`_written_into_masked`)
        self.made_as: dict[int, torch.Tensor] = {}
        self.blocks_filled: dict[int, int] = {}
        # A mask of blocks set into a constant (`_filled_block`) -> (its value, the blocks as (first row,
        # last row, first column, last column), the positions they hold, whether it holds its value around
        # them rather than in them)
        self.block_sets: dict[int, tuple[Any, tuple, int, bool, int]] = {}
        self.zeros: set[int] = set()  # storages that may hold exact zeros by construction
        self.blocks: set[int] = set()  # ... and whole zero rows or columns
        self.infinite: set[int] = set()  # storages that may hold infinities by construction
        self.real_valued: set[int] = set()  # complex storages cast from real values (no imaginary parts)
        # On meta: storage -> (dtype, value range) where known (`solgym.value_range`); reads it decides.
        self.ranges: dict[int, tuple[torch.dtype, value_range.Range]] = {}
        self.decided = 0
        # With `unread`, an undecided float read returns NaN instead of raising (a custom entry point's
        # scales); `trusted` then keeps the ranges known before the first such read.
        self.unread = False
        self.trusted: dict[int, tuple[torch.dtype, value_range.Range]] | None = None
        # Mixed (`count_on_data` where the const-size tensors do not fit memory): tensors over MIXED_BYTES
        # live on meta, the rest on the CPU with values; an op touching both runs on meta. `stale` holds the
        # CPU storages whose values an op on meta should have changed: no shape may depend on them.
        self.mixed = False
        self.stale: set[int] = set()
        # The bytes of the CPU storages it keeps alive, and the most it may (`trace_budget`; None: no limit).
        self.held = 0
        self.held_limit: float | None = None

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        if _composite(func):
            # Under `torch.inference_mode()` composite ops (`linear`, `einsum`, `cross_entropy_loss`) reach
            # the mode whole; their decomposition is what autograd's dispatch would have shown.
            with self:
                out = func.decompose(*args, **kwargs)
            if out is not NotImplemented:
                return out
        name = func.overloadpacket.__name__
        if (
            name == "_local_scalar_dense"
            and (not self.with_data or self.mixed)
            and args[0].device.type == "meta"
        ):
            return self._read(func, args, kwargs)
        if self.mixed:
            out = self._mixed_op(func, name, args, kwargs)
            if out is not None:
                if not self.suspended:
                    self._record(func, name, args, kwargs, out)
                return out
        try:
            if self.with_data and name in _CONTRACTIONS and not self.suspended and not self.exact_products:
                out = _stand_in(func, name, args, kwargs)
            elif self.with_data and name in ("index_add", "index_add_") and args[0].dim():
                out = _index_add(name, args, kwargs)
            elif not self.with_data:
                out = _on_meta_cached(func, args, kwargs)
            else:
                out = func(*args, **kwargs)
        except (NotImplementedError, RuntimeError, ValueError) as e:
            if name == "_scaled_mm":
                out = _stand_in(func, name, args, kwargs)
            elif not self.with_data:
                raise DataDependent(_without_data(func, name, e)) from None
            else:
                raise
        if self.stale and any(_key(t) in self.stale for t in _tensor_args(args, kwargs)):
            self.stale.update(_key(t) for t in _tensors(out))
        if (
            not self.with_data
            and isinstance(out, torch.Tensor)
            and out.device.type == "cpu"
            and any(t.device.type == "meta" for t in _tensor_args(args, kwargs))
        ):
            # torch lets some ops write a CPU tensor from meta ones (`torch.zeros(E).scatter_add_(0, ids,
            # ones)`, counts made without `device=`), leaving its values as they were: wrong, and a loop
            # over them would count other work.
            raise DataDependent(f"{func} writes a tensor made on the CPU from tensors on meta")
        if self.suspended:
            return out
        self._record(func, name, args, kwargs, out)
        return out

    def _mixed_op(self, func: Any, name: str, args: tuple, kwargs: dict) -> Any:
        """In mixed mode: run on meta an op that reads a meta tensor (CPU operands as meta stand-ins of the
        same layout, `_on_meta`) or would make a tensor over MIXED_BYTES, and return its result; None for an
        op the CPU runs. An op on meta that writes a CPU tensor leaves its values stale."""
        tensors = _tensor_args(args, kwargs)
        if not any(t.device.type == "meta" for t in tensors):
            stale = [t for t in tensors if _key(t) in self.stale]
            if stale and (name in _VALUE_SHAPED or name == "_local_scalar_dense" or _bool_index(name, stale)):
                raise DataDependent(f"{func} depends on values that were counted without data")
            makes = name.startswith("new_") or _is_factory(name) and not name.endswith("_like")
            if makes:
                out = func(*args, **{**kwargs, "device": torch.device("meta")})
                return out if _over_mixed(out) else None
            if func.is_view or name in _VALUE_SHAPED or not _may_grow(func, tensors):
                return None
            # An op of small CPU tensors may still make a large one (a block scale repeated to its
            # operand's size): where it would, it is made on meta.
            try:
                out = _on_meta_cached(func, _on_meta(args), _on_meta(kwargs))
            except (NotImplementedError, RuntimeError, ValueError):
                return None
            if not _over_mixed(out) or _mutated(func, args, kwargs):
                return None
            return out
        out = _on_meta_cached(func, _on_meta(args), _on_meta(kwargs))
        written = [w for w in _mutated(func, args, kwargs) if w.device.type != "meta"]
        if written:
            self.stale.update(_key(w) for w in written)
            return written[0] if len(written) == 1 else tuple(written)
        return out

    def _read(self, func: Any, args: tuple, kwargs: dict) -> Any:
        """A tensor value read on meta: answered where its range decides it, else it needs data (or, with
        `unread`, is NaN)."""
        t = args[0]
        value = value_range.decided(self.range_of(t), t.dtype)
        if value is None:
            if not (self.unread and t.is_floating_point()):
                raise _Undecided(f"the reference reads a tensor value ({func})")
            if self.trusted is None:
                self.trusted = dict(self.ranges)
            value = math.nan
        else:
            self.decided += 1
        self._record(func, "_local_scalar_dense", args, kwargs, value)
        return value

    def range_of(self, v: Any) -> value_range.Range | None:
        """The range of a tensor's values: the one carried for its storage, else its dtype's (finite
        unless an op may have put an infinity in); or of a Python number."""
        if not isinstance(v, torch.Tensor):
            return value_range.of_number(v)
        key = _key(v)
        known = self.ranges.get(key)
        if known is not None and known[0] == v.dtype:
            return known[1]
        return value_range.unknown(v.dtype, infinite=key in self.infinite and _holds_inf(v.dtype))

    def _sign(self, v: Any) -> int | None:
        """1 or -1 where every value of a number or tensor is positive or negative (its range, or its data),
        else None."""
        if (
            isinstance(v, torch.Tensor)
            and v.device.type != "meta"
            and v.numel()
            and _key(v) not in self.stale
        ):
            return 1 if bool((v > 0).all()) else -1 if bool((v < 0).all()) else None
        r = self.range_of(v) if isinstance(v, torch.Tensor) else value_range.of_number(v)
        if r is None or r[2] or r[0] > r[1]:
            return None
        return 1 if r[0] > 0 else -1 if r[1] < 0 else None

    def _carry_range(self, name: str, args: tuple, kwargs: dict, outs: list, written: list) -> None:
        if not outs or not isinstance(outs[0], torch.Tensor):
            return
        r = value_range.transfer(name, args, kwargs, outs[0], self.range_of)
        for t in written:
            # A write to part of a storage keeps what the rest held.
            key = _key(t)
            if r is not None and t.numel() * t.element_size() < self.storage_bytes.get(key, 0):
                old = self.range_of(t)
                r = None if old is None else value_range.joined(old, r)
            if r is None:
                self.ranges.pop(key, None)
        if r is not None:
            self.ranges[_key(outs[0])] = (outs[0].dtype, r)

    def _remember(self, t: torch.Tensor) -> int:
        key = _key(t)
        if key not in self.storage_bytes:
            self.storage_bytes[key] = t.untyped_storage().nbytes()
            self.keep.append(t)
            if t.device.type == "cpu":
                self.held += self.storage_bytes[key]
                if self.held_limit is not None and self.held > self.held_limit:
                    raise _Overgrown(self.held, self.held_limit)
        return key

    def _record(self, func: Any, name: str, args: tuple, kwargs: dict, out: Any) -> None:
        if func.is_view or name in ("detach", "alias", "lift_fresh", "set_"):
            # A view shares its base's storage: nothing to record but the base (kept alive, so that its key
            # stays unique) and its quantized provenance. Most ops of a loop of small ops are views. `set_`
            # points a tensor at a storage (its own, as `parametrize` does): it moves no data either.
            base = args[0] if args and isinstance(args[0], torch.Tensor) else None
            if base is not None:
                self._remember(base)
                tag = self.tags.get(_key(base)) or _provenance_of(base.dtype)
                if tag:
                    outs = out if isinstance(out, list | tuple) else (out,)
                    self._propagate_tag([base], [t for t in outs if isinstance(t, torch.Tensor)])
            return
        leaves = _leaves((args, tuple(kwargs.values())))
        tensors_in = [t for t in leaves if isinstance(t, torch.Tensor)]
        tensors_out = [t for t in _leaves(out) if isinstance(t, torch.Tensor)]
        for t in (*tensors_in, *tensors_out):
            self._remember(t)
        written = _mutated(func, args, kwargs)
        aligned = _elementwise(func)
        if aligned and self.made_indices and any(_key(t) in self.made_indices for t in tensors_in):
            # Integers computed element by element from an entry point's (`ids.clamp(min=0)`): as made.
            integers = (t for t in tensors_out if not (t.is_floating_point() or t.is_complex()))
            self.made_indices.update(_key(t) for t in integers)
        wide = tensors_out[0] if aligned and tensors_out and tensors_out[0].dim() >= 2 else None
        reads = []
        placed = name in _PLACED and "reduce" not in kwargs
        masked_put = False
        if placed and name == "index_put_":
            placed = not kwargs.get("accumulate", len(args) > 3 and args[3] is True)
            # A value put where a mask built in the reference is (`s[..., causal] = float("-inf")`): a fill
            # of the destination as `masked_fill_` makes it, read where the mask keeps it (`_mask_result`).
            masked_put = placed and self._mask_put(args) is not None
            placed = placed and not masked_put
        outs_kw = kwargs.get("out")
        outs_kw = outs_kw if isinstance(outs_kw, list | tuple) else (outs_kw,)
        # An `out=` result written whole, unless the op reads it too (`addmm(gw, a, b, out=gw)` accumulates).
        whole = [
            w
            for w in written
            if name in _WRITE_ONLY or (any(w is o for o in outs_kw) and not any(w is a for a in args))
        ]
        # An in-place elementwise op (`s += mask`, `s *= scale`) writes all of its destination too, from
        # what it read there: demand after it is of its result, and it reads the destination for its own.
        renewing = aligned or name in ("masked_fill_", "clamp_") or masked_put
        renewed = [*whole, *(w for w in written if renewing and not any(w is o for o in whole))]
        # `ones_like(loss)` (autograd's seed) and `x.new_zeros(...)` take only their operand's shape.
        shaped = name.endswith("_like") or name.startswith("new_")
        # A result on its operand's storage, unannotated (`_unsafe_view`, which `reshape` of a copy ends
        # in), relabels it: neither read nor written, so that a slice of it demands only the slice.
        aliased = {_key(t) for t in tensors_out} & {_key(t) for t in tensors_in} - {_key(w) for w in written}
        unread = _unread_arguments(name, args)
        for i, t in enumerate(tensors_in):
            if shaped or _key(t) in aliased or any(t is w for w in whole):
                continue
            if placed and any(t is w for w in written):
                continue
            if name in _GATHERS and i == 0 or any(t is u for u in unread):
                continue
            unique, sig = _unique_elements(t), _signature(t)
            # Overlapping windows of a signal (`unfold`, `as_strided` frames) read each sample once: what
            # they address, not their elements (a window input stands for all of its elements).
            addressed = unique if not unique or _key(t) in self.windows else _footprint(sig)
            read = _Read(_key(t), sig, addressed * t.element_size())
            read.spread = _spread(t, unique, wide) if wide is not None else None
            if read.spread == "rows" and t.dim() == wide.dim() and unique * wide.shape[-2] == wide.numel():
                read.group = wide.shape[-2]  # broadcast along that axis alone
            reads.append(read)
        if name in _MATRIX_PRODUCTS:
            added = name.startswith(("add", "baddbmm"))
            operands = [*zip(args[1:3] if added else args[:2], ("rows", "columns"), strict=True)]
            bias = args[0] if added and isinstance(args[0], torch.Tensor) else None
            if bias is not None and bias.dim() and bias.numel() == bias.shape[-1] > 1:
                operands.append((bias, "columns"))  # a bias row: what any row of the result adds
            if name == "_scaled_mm":  # its scales: the first operand's rows', the second's columns'
                for scale, side in zip(args[2:4], ("rows", "columns"), strict=False):
                    if isinstance(scale, torch.Tensor):
                        operands.append((scale, "all" if _unique_elements(scale) == 1 else side))
            for operand, side in operands:
                for read in reads:
                    if isinstance(operand, torch.Tensor) and read.key == _key(operand) and read.side is None:
                        read.side = side
                        if side == "columns" and name in ("bmm", "baddbmm") and operand.dim() == 3:
                            # Each matrix of a batched product's second operand makes one group of rows
                            # of the result: a block of them needs the matrices of the batches it meets.
                            read.group = operands[0][0].shape[-2]
                        break
        if name in _GATHERS:
            reads.extend(self._gather_reads(name, args, kwargs))
        factored = _factored(name, args, kwargs)
        if factored is not None:
            matrix = args[factored[0]]
            for read in reads:
                if read.key == _key(matrix) and read.sig == _signature(matrix):
                    if factored[1]:  # of a triangular factor or a symmetric matrix, only the triangle is read
                        read.nbytes *= (matrix.shape[-1] + 1) / (2 * max(matrix.shape[-1], 1))
                    if name in _SOLVES and matrix.dim() == 2:
                        read.side = "all"  # any column of the solution needs all of the matrix
        geometry = None  # of a convolution or pooling: what its demanded outputs need (`_ConvGeometry`)
        if name in _WINDOWED and reads and tensors_out:
            reads[0].nbytes *= _touched_share(name, args, tensors_out[0])
            if name in _POOLS or name == "convolution" and len(args) > 8 and not args[6]:
                geometry = _ConvGeometry.of(name, args, tensors_out[0])
            strided = geometry.taps_view() if geometry is not None else None
            if strided is not None and reads[0].key == _key(args[0]):
                # One tap per window, windows apart: the positions read are a strided view of the input,
                # which tells later demand which ones (a 1x1 convolution of stride 2 reads every other row).
                reads[0].sig, reads[0].nbytes = strided
        if name in _RESAMPLED and reads and reads[0].key == _key(args[0]):
            reads[0].nbytes *= _sampled_share(_RESAMPLED[name], args, kwargs)
        if name in ("grid_sampler_2d", "grid_sampler_3d") and reads and reads[0].key == _key(args[0]):
            reads[0].nbytes *= _grid_share(args)
        if name == "convolution_backward" and len(args) > 7:
            # The weight gradient reads the input where the forward's windows touch it.
            forward = (args[1], args[2], None, *args[4:8])
            for read in reads:
                if read.key == _key(args[1]) and read.sig == _signature(args[1]):
                    read.nbytes *= _touched_share("convolution", forward, args[0])
        outs = [t for t in tensors_out if not any(t is w for w in written)]
        made = [t for t in (*outs, *written) if _key(t) not in aliased]
        writes = [(_key(t), _unique_elements(t) * t.element_size()) for t in made]
        op = _Op(name, reads, writes, [_signature(t) for t in made])
        op.overwrites = bool(written) and name in _OVERWRITES
        trailing = 1 if name in _MATRIX_PRODUCTS else _trailing_axes(name, args, kwargs)
        if made and trailing and made[0].dim() >= trailing:
            cols = math.prod(made[0].shape[-trailing:])
            op.matrix = (made[0].numel() // max(cols, 1), cols, made[0].element_size())
            if name in _MATRIX_PRODUCTS:
                op.lone_sides = tuple(
                    side for side, n in (("rows", cols), ("columns", _matrix_shape(made[0])[0])) if n == 1
                )
            if name not in _MATRIX_PRODUCTS and reads and reads[0].key == _key(args[0]):
                reads[0].side = "rows"  # a row demanded anywhere needs the whole row of the operand
            if name in _NORMS:
                # A norm's weight and bias: what every row adds in each column demanded (`LN(x)[:, 0]`).
                for t in args[2:4]:
                    for read in reads[1:]:
                        if isinstance(t, torch.Tensor) and t.numel() == cols and read.key == _key(t):
                            read.side = read.side or "columns"
        elif made and _last_axis_reduction(name, args, kwargs):
            # A reduction over the last axis (a row maximum, sum or mean): one result per row, from the whole
            # row, so that the rows demanded of it are those it reads (`amax(x_padded, -1)[:m]`).
            op.matrix = (made[0].numel(), 1, made[0].element_size())
            if reads and reads[0].key == _key(args[0]):
                reads[0].side = "rows"
        elif made and (line := _line_axis(name, args, kwargs, made[0])) is not None:
            outer, length, op.inner = line
            op.matrix = (outer, length * op.inner, made[0].element_size())
            if reads and reads[0].key == _key(args[0]):
                reads[0].side = "rows"
        elif name == "cat" and made and (rows := _rows_joined(args, kwargs, made[0])):
            # Joined along an axis after the first: each row of the result (the axes before it) is the same
            # row of every part, so the rows demanded pass to each (`cat([a @ v1, a @ v2], -1)[0]`).
            op.matrix = (rows, made[0].numel() // rows, made[0].element_size())
            for read in reads:
                read.side = "rows"
        elif aligned and made and made[0].dim() >= 2 and made[0].is_contiguous():
            # An elementwise result as a matrix of its last axis: the rows and columns demanded of it pass on
            # to its operands laid out as it is (`(x @ w).float()[:, -1]` reads one row of x, all of w).
            cols = made[0].shape[-1]
            op.matrix = (made[0].numel() // max(cols, 1), cols, made[0].element_size())
        if placed and written:
            # Rows written at positions an arange gives (HF's StaticCache: `k_cache.index_copy_(2,
            # cache_position, k)`): a block of the destination, written whole, as a slice assignment is.
            block = self._placed_block(name, args, kwargs, written[0])
            i = next(i for i, t in enumerate(made) if t is written[0])
            if block is not None:
                op.writes[i] = (op.writes[i][0], _unique_elements(block) * block.element_size())
                op.write_sigs[i] = _signature(block)
                renewed.append(written[0])
            else:
                replaced, op.placed = self._placed_rows(name, args, written[0])
                if replaced:
                    op.thinned = (i, replaced)
        op.replaces = tuple(i for i, t in enumerate(made) if any(t is w for w in renewed))
        op.aligned = aligned
        op.whole = factored is not None and name not in _SOLVES and args[0].dim() == 2
        if name == "constant_pad_nd" and reads and tensors_out and reads[0].key == _key(args[0]):
            geometry = _ConvGeometry.of_pad(args, tensors_out[0])
        op.conv = geometry
        self._necessity(op, name, args, leaves, [*outs, *written])
        self._arithmetic(op, name, args, kwargs, tensors_in, tensors_out)
        if (
            name == "_to_copy"
            and tensors_out
            and tensors_out[0].is_complex()
            and not tensors_in[0].is_complex()
        ):
            self.real_valued.add(_key(tensors_out[0]))
        if op.macs and any(t.is_complex() for t in tensors_in):
            # A complex multiply-add is four real ones (the standard product, as cuBLAS's cgemm), two where
            # one factor has no imaginary part (a real input cast to complex).
            complex_valued = [t for t in tensors_in if t.is_complex() and _key(t) not in self.real_valued]
            op.macs *= 4 if len(complex_valued) > 1 else 2 if complex_valued else 1
        self._propagate_tag(tensors_in, tensors_out, name)
        if name in _TABLE_LOOKUPS and self._fp4_table(args[0]):
            for t in tensors_out:
                self.tags[_key(t)] = "fp4"
        if kwargs.get("alpha", 1) == 1 or name in _BIASED:  # `add(x, y, alpha=2)` makes no mask or arange
            self._causal(op, name, args, kwargs, tensors_in, tensors_out)
        if self.repeated or name == "repeat" or any(0 in t.stride() for t in tensors_in):
            self._repeats(op.aligned, name, tensors_in, tensors_out)
        if name in _PICKS or self.few and any(_key(t) in self.few for t in (*outs, *written)):
            self._few_values(aligned, name, args, tensors_in, [*outs, *written])
        elif aligned and any(_key(t) in self.few or _key(t) in self.constant for t in tensors_in):
            self._few_values(aligned, name, args, tensors_in, [*outs, *written])
        self.ops.append(op)
        sizing = _sizing_argument(func, name, args)
        if sizing is not None:
            # The size of its result is read on the host (`len(torch.where(m)[0])`, a loop skipping an
            # expert with no token), as `.item()` reads a value: the whole of what decides it is needed.
            self._record(_SCALAR_READ, "_local_scalar_dense", (sizing,), {}, None)
        if not self.with_data or self.mixed:
            if written or value_range.covers(name):
                self._carry_range(name, args, kwargs, [*written, *outs], written)
            if name == "topk" and len(outs) == 2:
                # The positions a top-k picks in each row of values no range orders (a router's logits):
                # k distinct ones per row, taken as drawn at random (`value_range.Drawn`).
                dim = args[2] if len(args) > 2 else kwargs.get("dim", -1)
                size = args[0].shape[dim] if args[0].dim() else 1
                self.ranges[_key(outs[1])] = (outs[1].dtype, value_range.Drawn(0, size - 1, int(args[1])))
            for t in (*outs, *written) if self.ranges else ():
                # A finite range (carried here, or by the storage this result aliases) rules out what the
                # op-by-op taint assumes, e.g. a clamped quotient by a possible zero.
                known = self.ranges.get(_key(t))
                if known is not None and known[0] == t.dtype and value_range.finite(known[1]):
                    self.infinite.discard(_key(t))
            if self.decided and len(self.ops) > META_OPS_WITH_READS:
                raise _TooLong(
                    f"more than {META_OPS_WITH_READS} ops after a value read on meta: traced on data instead"
                )

    def _placed_block(self, name: str, args: tuple, kwargs: dict, dest: torch.Tensor) -> torch.Tensor | None:
        """The block of `dest` an indexed write fills, where its positions along one axis are an arange of
        step 1 (`index_copy_(dim, arange(s, s + n), src)`, `index_put_` with one such index): the view
        `dest.narrow(dim, s, n)`; else None."""
        indexed = _one_index(name, args)
        start = self._arange_start(indexed[1]) if indexed is not None else None
        if start is None or not isinstance(indexed[0], int):
            return None
        dim, n = indexed[0] % max(dest.dim(), 1), indexed[1].numel()
        if start < 0 or start + n > dest.shape[dim]:
            return None
        return dest.narrow(dim, start, n)

    def _placed_rows(self, name: str, args: tuple, dest: torch.Tensor) -> tuple[float, torch.Tensor | None]:
        """The most bytes of `dest` an indexed write along one axis can replace (`index_copy_`,
        `index_fill_`, `index_put_` with one index tensor): its distinct positions' slices of the axis, taken
        from the index's values on data and, on meta, as many as it can name (`_named` at its upper side:
        fewer where its values are drawn at random and so repeat); 0 where the write is of another kind.
        And on data, those positions."""
        indexed = (args[1], args[2]) if name == "index_fill_" and len(args) > 2 else _one_index(name, args)
        if indexed is None or not isinstance(indexed[0], int) or not isinstance(indexed[1], torch.Tensor):
            return 0.0, None
        dim, index = indexed[0] % max(dest.dim(), 1), indexed[1]
        if index.dtype == torch.bool or not dest.dim() or not dest.shape[dim] or 0 in dest.stride():
            return 0.0, None
        size, placed = dest.shape[dim], None
        if self._valued(index):
            with torch._C.DisableTorchFunction():
                placed = torch.unique(index.reshape(-1) % size)
            positions = float(placed.numel())
        else:
            positions = float(self._named(index, index.numel(), size, most=True))
        return positions * (dest.numel() // size) * dest.element_size(), placed

    def _arange_start(self, index: Any) -> int | None:
        """The first value of an index tensor that is an arange of step 1, as made (one axis, contiguous
        from its start); None for any other."""
        if not isinstance(index, torch.Tensor) or index.dim() != 1:
            return None
        start, step = self.aranges.get(_key(index), (None, None))
        if step != 1 or start != int(start) or index.storage_offset():
            return None
        return int(start) if index.numel() < 2 or index.stride(0) == 1 else None

    def _necessity(self, op: _Op, name: str, args: tuple, leaves: list, outs: list) -> None:
        """Mark the reads that every correct kernel must make for the op's result, and track which results
        may hold exact zeros by construction (`self.zeros`: anywhere, as rectifiers and dropout make them;
        `self.blocks`: also whole rows or columns, as masks, padding and scatters make them) or
        infinities (`self.infinite`). A product with a possible zero does not need the other factor
        there, a contraction with a possible zero row does not need the matching row of the other
        operand, a sum with a possible infinity does not need the other term."""
        reads = [r for r in op.reads if r.rows is None]
        zeros = any(r.key in self.zeros for r in reads)
        blocks = any(r.key in self.blocks for r in reads)
        inf = any(r.key in self.infinite for r in reads)
        scalars = [v for v in leaves if isinstance(v, int | float) and not isinstance(v, bool)]
        degenerate = name in _SCALAR_SENSITIVE and any(v == 0 or not math.isfinite(v) for v in scalars)
        if name in _NORMAL_DRAWS:
            # Continuous: no exact zero or infinity, as the random inputs of an evaluation.
            out_zeros = out_blocks = out_inf = False
        elif (
            degenerate
            or (name in _STRUCTURED and name not in _SCATTERED_ZEROS)
            or _is_factory(name)
            or name in _FACTORIES_CONST
            or any(not t.is_floating_point() or _quantized_of(t.dtype) for t in outs)
        ):
            out_zeros = out_blocks = out_inf = True
        elif name in _SCATTERED_ZEROS:
            out_zeros, out_blocks, out_inf = True, blocks, inf
        elif name in _ADDITIVE:
            out_zeros = bool(reads) and all(r.key in self.zeros for r in reads)
            out_blocks = bool(reads) and all(r.key in self.blocks for r in reads)
            out_inf = inf
        elif name in _MULTIPLICATIVE:
            out_zeros, out_blocks, out_inf = zeros, blocks, inf
        elif name in _CONTRACTING:
            out_zeros = out_blocks = blocks
            out_inf = inf
        elif name in _NONZERO:
            out_zeros, out_blocks, out_inf = inf, blocks and inf, inf
        elif name in ("_softmax", "_safe_softmax", "softmax"):
            out_zeros, out_blocks, out_inf = zeros or inf, blocks, False
        elif name in _COPIES:
            out_zeros, out_blocks, out_inf = zeros, blocks, inf
        else:
            out_zeros = out_inf = zeros or inf
            out_blocks = blocks
        for flag, tainted in ((out_zeros, self.zeros), (out_blocks, self.blocks)):
            if flag:
                tainted.update(_key(t) for t in outs)
        if out_inf:
            self.infinite.update(_key(t) for t in outs if _holds_non_finite(t.dtype))
        if name in ("where", "masked_fill", "masked_fill_"):
            # Only the condition is needed everywhere: which of the other operands is, depends on it.
            condition = args[0] if name == "where" else args[1]
            for r in op.reads:
                r.necessary = r.rows is None and r.key == _key(condition)
            return
        if name in _GATHERS:
            for r in op.reads:
                r.necessary = True  # indices in full; the source at the rows they name (with data)
            return
        if name not in _DENSE or degenerate:
            return
        infinite = {o.key for o in op.reads if o.key in self.infinite}
        if name in _ADDITIVE:
            blocking = infinite
        elif name in _CONTRACTING:
            blocking = infinite | {o.key for o in op.reads if o.key in self.blocks}
        else:
            blocking = infinite | {o.key for o in op.reads if o.key in self.zeros}
        bias = _key(args[0]) if name.startswith(("add", "baddbmm")) and name in _CONTRACTING else None
        if bias is not None:
            # The added term is blocked only by an infinite product, and blocks the factors only when
            # it may be infinite itself.
            blocking -= {bias} - infinite
        for r in op.reads:
            others = blocking - {r.key}
            r.necessary = not (others & infinite if r.key == bias else others)

    def _causal(self, op: _Op, name: str, args: tuple, kwargs: dict, ins: list, outs: list) -> None:
        """Follow a mask built in the reference so that, as a flash kernel does, masked scores are neither
        computed nor multiplied. A mask is a band of diagonals (`solgym.band`: causal, sliding window):
        `triu`/`tril` of a constant, a comparison of an arange along the rows with one along the columns or
        of their difference with a number, and these negated, combined (`&`, `|`, `*`), cast, compared with
        zero or filled into a constant (`_transformed_mask`, `_combined_mask`). Applied to a tensor (added as
        -inf, `masked_fill`, `where`), the tensor is demanded only where not masked; where the masked
        positions become zero, a product with it demands its other factor only there, and a contraction
        with it counts only the unmasked part (`_masked_through`). A recorder that does not follow masks
        records none."""
        if not self.follow_masks:
            return
        key_outs = [_key(t) for t in outs]
        if name in _FACTORIES_CONST:
            value = _fill_value(name, args)
            for t, key in zip(outs, key_outs, strict=True):
                if _unique_elements(t) * t.element_size() == self.storage_bytes.get(key):
                    self.constant[key], self.made_as[key] = value, t
                    self.mask_of.pop(key, None)
                elif not (name == "fill_" and self._filled_block(t, self._number_of(args[1]))):
                    self.constant.pop(key, None)  # a fill of part of a storage
                    self.mask_of.pop(key, None)
            return
        if (
            name == "copy_"
            and len(ins) == 2
            and ins[0] is args[0]
            and _key(ins[1]) in self.constant
            and (key_outs[0] in self.constant or key_outs[0] in self.mask_of)
        ):
            whole = _unique_elements(ins[0]) * ins[0].element_size() == self.storage_bytes.get(key_outs[0])
            if not whole:  # a number set into part of a constant or mask (`mask[a:b, a:b] = True`)
                if not self._filled_block(ins[0], self.constant[_key(ins[1])]):
                    self.constant.pop(key_outs[0], None)
                    self.mask_of.pop(key_outs[0], None)
                return
        if (
            name == "block_diag"
            and outs
            and outs[0].dim() == 2
            and self._diagonal_blocks(args, key_outs, outs[0])
        ):
            return
        if (
            name == "_to_copy"
            and len(ins) == 1
            and _key(ins[0]) in self.constant
            and len(outs) == 1
            and _unique_elements(outs[0]) * outs[0].element_size() == self.storage_bytes.get(key_outs[0])
        ):
            # A constant cast whole (`full(-inf).type_as(w)` before `triu`, as Diff Transformer writes its
            # mask): the same constant, rounded to the new dtype.
            value = self.constant[_key(ins[0])]
            if _number(value) and not outs[0].is_complex():
                value = _rounded(value, outs[0].dtype)
            self.constant[key_outs[0]], self.made_as[key_outs[0]] = value, outs[0]
            self.mask_of.pop(key_outs[0], None)
            return
        scaled = self._scaled_constant(name, args, kwargs, ins, outs)
        if scaled is not None:
            # A constant times or plus a number (`torch.ones(S, S) * float("-inf")` before `triu`): the
            # same constant, its value the op's.
            self.constant[key_outs[0]], self.made_as[key_outs[0]] = scaled, outs[0]
            self.mask_of.pop(key_outs[0], None)
            return
        first = _key(args[0]) if ins and args[0] is ins[0] else None
        constant, filled = first in self.constant, self.constant.get(first)
        if name != "_unsafe_view":  # (a reshaped copy's own storage: its values stay)
            for key in key_outs:
                self.constant.pop(key, None)  # written into by another op
        tracked = (
            self.mask_of,
            self.aranges,
            self.diagonals,
            self.masked,
            self.frame_of,
            self.abs_lines,
            self.grids,
        )
        if name == "nll_loss_backward" and self._ignored_rows(args, outs):
            return
        touched = constant or any(_key(t) in d for t in ins for d in tracked)
        if name == "constant_pad_nd" and not touched and self._zero_padded(args, outs):
            return
        if not outs or not touched and name not in ("arange", "triu", "tril", "triu_", "tril_", "eye"):
            return  # nothing here is or makes a mask (most ops)
        if name == "eye" and outs[0].dim() == 2:
            self._mask(key_outs, outs[0], band.diagonal(0, 0), True if outs[0].dtype == torch.bool else 1)
            return
        if name in ("triu", "tril", "triu_", "tril_") and ins[0].dim() >= 2:
            cut = band.triangle(name.rstrip("_"), args[1] if len(args) > 1 else 0)
            source = self._mask_entry(args[0])
            if constant:
                self._mask(key_outs, outs[0], cut, filled)
                return
            if source is not None:
                self._mask(key_outs, outs[0], source[2] & cut, source[1])
                return
            # Of any other tensor (scores, a decay): zero outside the triangle, an applied mask (below).
        if name in ("floor_divide", "div") and self._frames(name, args, kwargs, ins, key_outs):
            return
        if name == "clone" and self._interleaved(ins, key_outs):
            return
        if name == "bucketize" and self._bucketized(args, kwargs, key_outs):
            return
        if name == "cat" and self._joined_mask(args, kwargs, key_outs, outs[0]):
            return
        if name in ("index", "index_select") and self._gathered_mask(name, args, key_outs, outs[0]):
            return
        if name == "repeat" and (
            self._tiled_mask(args, key_outs, outs[0]) or self._repeated_line(args, key_outs, outs[0])
        ):
            return
        if name in ("arange", "add", "sub", "rsub", "neg", "abs") and self._arange(name, args, ins, key_outs):
            return
        if name in ("_to_copy", "clone") and self._cast_positions(args, ins, outs[0], key_outs):
            return
        if name in _ORDERS | {"eq", "ne"} and outs[0].dim() >= 1:
            made = self._compared(name, args, ins)
            if made is not None:
                self._mask(key_outs, outs[0], made, True)
                return
        combined = self._combined_mask(name, args, ins, filled)
        if combined is not None:
            self._mask(key_outs, outs[0], *combined)
            return
        source = self._mask_entry(ins[0]) if ins else None
        if source is not None and name in _MASK_TRANSFORMS:
            made = _transformed_mask(name, args, source[1:], outs[0].dtype)
            if made is not None:
                self._mask(key_outs, outs[0], *made)
            return
        shared = self._mask_share(ins[0]) if ins and name in _MASK_TRANSFORMS else None
        if shared is not None and _axes_over_one(outs[0]) == _axes_over_one(ins[0]):
            # A mask viewed with unit axes between its two, negated or cast (`~causal[:, None, :]` filled
            # into scores laid out [q, h, k]): the result is laid out as that view, and shares its region.
            made = _transformed_mask(name, args, shared[1:3], outs[0].dtype)
            if made is not None:
                rows, cols = shared[3]
                zero = 1.0 - made[0].positions(rows, cols) / (rows * cols)
                self.mask_of.update(dict.fromkeys(key_outs, (zero, made[1], made[0])))
                layout = ((rows, cols, 1), _axes_over_one(outs[0]))
                self.mask_layout.update(dict.fromkeys(key_outs, layout))
            return
        if name in _BIASED and self._biased_by_mask(op, args, kwargs, outs, key_outs):
            return
        applied = self._applied_mask(name, args, ins)
        if applied is None:
            self._masked_through(op, name, args, ins, outs, key_outs)
            return
        scores, kept, fill, region, shares, outer = applied
        if _number(filled) and scores is ins[0] and _number(fill) and (filled == 0 or fill == 0):
            # A constant tensor with a fill where the mask is (or is not): an additive mask of its own, zero
            # outside its band.
            if region is not None:
                self._mask(key_outs, outs[0], *((region, fill) if filled == 0 else (~region, filled)))
            return
        state = (
            "-inf"
            if _number(fill) and fill <= _MASKED
            else "+inf"
            if _number(fill) and fill >= -_MASKED
            else "0"
            if fill == 0
            else None
        )
        kept_region: band.Region | None = ~region if region is not None else None
        before = self._masked_of(scores)
        share = kept
        if (
            state is not None
            and before is not None
            and before[1] == state
            and None not in (before[2], kept_region)
        ):
            # Masked again with the same fill (a causal mask, then a window): kept where both keep. Of the
            # scores, already demanded only where the first mask keeps, this keeps the share in both.
            kept_region = before[2] & kept_region
            rows, cols = _matrix_shape(outs[0])
            if before[0]:
                kept = kept_region.positions(rows, cols) / (rows * cols)
                share = kept / before[0]
        axes = self._outer_mask(outer, outs[0]) if state is not None and outer is not None else None
        for read in op.reads:
            if read.key == _key(scores) and read.rows is None:
                # Where not masked, the result is the scores themselves: needed there, whatever the masked
                # part holds.
                read.nbytes *= share
                read.necessary = True
                read.covering = shares if shares is not None else _coverage(kept_region, outs[0])
                if axes is not None:
                    # Each request's own columns (its keys): of the product that made the scores, its
                    # second operand's columns at the share kept, each matrix of it its request's.
                    read.covering = (shares[0], kept)
        if axes is not None:
            self._set_masked(outs, (kept, state, outer[0]), axes)
        elif state is not None:
            self._set_masked(outs, (kept, state, kept_region))

    def _scaled_constant(self, name: str, args: tuple, kwargs: dict, ins: list, outs: list) -> Any:
        """The value of a constant tensor, made whole by a fill, after `mul`, `div`, `add` or `sub` with a
        Python number, rounded to the result's dtype; None for any other op or operand."""
        if name not in _CONSTANT_ARITHMETIC or len(ins) != 1 or len(outs) != 1 or len(args) != 2:
            return None
        if kwargs.get("alpha", 1) != 1 or kwargs.get("rounding_mode") is not None:
            return None
        tensor, number = (args[0], args[1]) if args[0] is ins[0] else (args[1], args[0])
        value, out = self.constant.get(_key(tensor)), outs[0]
        if not (_number(value) and _number(number) and tensor is ins[0] and out.is_floating_point()):
            return None
        if _unique_elements(out) * out.element_size() != self.storage_bytes.get(_key(out)):
            return None
        a, b = (value, number) if args[0] is tensor else (number, value)
        with torch._C.DisableTorchFunction():
            return _rounded(
                _CONSTANT_ARITHMETIC[name](torch.tensor(a, dtype=torch.float64), b).item(), out.dtype
            )

    def _outer_mask(self, outer: tuple, out: torch.Tensor) -> tuple | None:
        """The axes of a mask made rows x cols on the first and last axes of the scores it is applied to,
        with axes between (`valid[:, None, :]` of a length per request, filled into scores [b, h, s]): the
        strides of those two, its shape, and "outer", for `_set_masked`; None for any other layout."""
        _, rows, cols = outer
        if out.dim() < 3 or out.shape[0] != rows or out.shape[-1] != cols or rows < 2:
            return None
        if out.stride(-1) != 1 or out.stride(0) < out.shape[-1] * out.shape[-2]:
            return None
        return (out.stride(0), out.stride(-1), rows, cols, "outer")

    def _zero_padded(self, args: tuple, outs: list) -> bool:
        """A tensor padded with zeros along its last two axes (keys padded to a multiple of a block, or of
        the splits of a split-K decode): masked outside the block of its data, so that a product with it
        counts no products with the zeros (`F.pad(v, (0, 0, 0, n_pad - n))` before P·V)."""
        pad = list(args[1]) if len(args) > 1 else []
        value = args[2] if len(args) > 2 else 0
        x, out = args[0], outs[0] if outs else None
        if out is None or value not in (0, None) or len(pad) not in (2, 4) or min(pad) < 0 or not any(pad):
            return False
        rows, cols = _matrix_shape(out)
        height, width = _matrix_shape(x)
        top = pad[2] if len(pad) == 4 else 0
        if x.dim() < len(pad) // 2 or not rows * cols or not height * width:
            return False
        region = band.block(top, top + height - 1, pad[0], pad[0] + width - 1)
        self._set_masked(outs[:1], (height * width / (rows * cols), "0", region))
        return True

    def _ignored_rows(self, args: tuple, outs: list) -> bool:
        """The gradient `nll_loss` passes back, zero in the rows whose targets are its ignore_index (known
        on data): a tensor masked outside the other rows, so that the log-softmax's backward needs its
        output only there (a loss over a completion, its prompt's labels set to -100)."""
        grad, target = outs[0] if outs else None, args[2]
        if grad is None or grad.dim() != 2 or not self._valued(target) or target.dim() != 1:
            return False
        kept = (target != args[5]).tolist()
        rows, cols = grad.shape
        if all(kept) or len(kept) != rows or not cols:
            return False
        region = _row_blocks([(0, cols - 1) if keep else None for keep in kept])
        if region is None:
            return False
        self._set_masked(outs[:1], (sum(kept) / rows, "0", region))
        return True

    def _set_masked(self, outs: list, entry: tuple, axes: tuple | None = None) -> None:
        """Record the masked positions of results, on their last two axes, or on `axes` (`_outer_mask`)."""
        for t in outs:
            self.masked[_key(t)] = entry
            self.masked_axes[_key(t)] = axes or (*t.stride()[-2:], *_matrix_shape(t))

    def _outer_entry(self, t: torch.Tensor, like: torch.Tensor) -> tuple | None:
        """(entry, axes) of a tensor masked on its first and last axes (`_outer_mask`), where `like` has its
        layout; else None."""
        axes = self.masked_axes.get(_key(t), ())
        if len(axes) != 5 or like.shape != t.shape or like.stride() != t.stride():
            return None
        return self.masked[_key(t)], axes

    def _permuted_coverage(self, t: torch.Tensor) -> tuple[float, float] | None:
        """The shares of the rows and columns of a view's last two axes that hold a position of its band,
        where the band lies on other axes (a permuted view): along the band's row axis, the rows it keeps;
        along its column axis, the columns; along any other axis, all (the band does not vary along it)."""
        entry, axes = self.masked.get(_key(t)), self.masked_axes.get(_key(t))
        if entry is None or entry[2] is None or axes is None or t.dim() < 2 or len(axes) != 4:
            return None
        row_stride, col_stride, rows, cols = axes
        if not rows * cols:
            return None
        kept_rows, kept_cols = entry[2].rows_kept(rows, cols) / rows, entry[2].columns_kept(rows, cols) / cols
        shares = []
        for d in (-2, -1):
            size, stride = t.shape[d], t.stride(d)
            if stride == row_stride and size == rows:
                shares.append(kept_rows)
            elif stride == col_stride and size == cols:
                shares.append(kept_cols)
            else:
                shares.append(1.0 if kept_rows else 0.0)
        return shares[0], shares[1]

    def _mask_zeros(self, t: Any) -> tuple | None:
        """A mask of a finite value as a tensor with masked positions, (kept share, "0", region): zero
        outside its region. None for anything else."""
        made = self._mask_entry(t)
        return (1.0 - made[0], "0", made[2]) if made is not None and _finite_nonzero(made[1]) else None

    def _masked_of(self, t: torch.Tensor) -> tuple | None:
        """(kept share, state, band) of a tensor with masked positions, the band left out (None) where this
        view's last two axes are not those the band lies on (einsum permutes its operands)."""
        entry = self.masked.get(_key(t))
        axes = self.masked_axes.get(_key(t), ())
        if entry is None or entry[2] is None or len(axes) == 4 and axes[:2] == t.stride()[-2:]:
            return entry
        return (entry[0], entry[1], None)

    def _diagonal_blocks(self, args: tuple, key_outs: list, out: torch.Tensor) -> bool:
        """Record `torch.block_diag` of constants of one nonzero value (one block of ones per image or
        window, each attending within itself), and of zeros: a mask of its blocks. Whether it made one."""
        parts = args[0] if args and isinstance(args[0], list | tuple) else ()
        rects, values, row, col = [], set(), 0, 0
        for t in parts:
            if not isinstance(t, torch.Tensor) or t.dim() > 2:
                return False
            value = self.constant.get(_key(t))
            whole = _unique_elements(t) * t.element_size() == self.storage_bytes.get(_key(t))
            if value is None or not whole:
                return False
            height, width = t.shape if t.dim() == 2 else (1, t.numel())
            if _nonzero(value) and height and width:
                rects.append((row, row + height - 1, col, col + width - 1))
                values.add(value)
            row, col = row + height, col + width
        if len(values) != 1 or len(rects) > _MAX_BLOCKS:
            return False
        held = sum((r1 - r0 + 1) * (c1 - c0 + 1) for r0, r1, c0, c1 in rects)  # apart by construction
        self._mask(key_outs, out, band.Blocks(tuple(rects)), values.pop(), held)
        return True

    def _filled_block(self, view: torch.Tensor, value: Any) -> bool:
        """Record a constant matrix, or a mask, with a block of its rows and columns filled (`mask[..., a:b,
        a:b] = True` into zeros, `= 0` into a full minimum: HF's Qwen2-VL vision attention, one block per
        image or window): a mask of where it holds its nonzero value. Whether it made one, or kept the
        constant. Blocks of one value into a constant stay a flat union (`band.Blocks`, up to
        `_MAX_BLOCKS`), counted as they come while they do not overlap; into another mask, up to
        `_MAX_NESTED_BLOCKS`."""
        key = _key(view)
        base = self.made_as.get(key)
        if base is None or not _number(value) and not isinstance(value, bool) or base.dim() < 2:
            return False
        rows, cols = base.shape[-2:]
        if (
            view.dim() != base.dim()
            or view.shape[:-2] != base.shape[:-2]
            or view.stride() != base.stride()
            or not base.is_contiguous()
            or view.storage_offset() >= rows * cols
            or not view.numel()
        ):
            return False
        r0, c0 = divmod(view.storage_offset(), cols)
        rect = (r0, r0 + view.shape[-2] - 1, c0, c0 + view.shape[-1] - 1)
        if key in self.constant:
            fill = self.constant[key]
            if _nonzero(fill) == _nonzero(value):
                return fill == value  # the same value (still the constant), or another nonzero one (no mask)
            # The value set in the blocks, or kept around them (zero blocks set into a full minimum).
            sets = (value, (), 0, False, -1) if _nonzero(value) else (fill, (), 0, True, -1)
        else:
            sets = self.block_sets.pop(key, None)
        fits = sets is not None and (not _nonzero(value) if sets[3] else value == sets[0])
        if fits and len(sets[1]) < _MAX_BLOCKS:
            inside, rects, held, around, last = sets
            area = (rect[1] - rect[0] + 1) * (rect[3] - rect[2] + 1)
            # Below every block so far (windows set in order down the diagonal), or apart from each.
            apart = rect[0] > last or all(
                rect[1] < r[0] or r[1] < rect[0] or rect[3] < r[2] or r[3] < rect[2] for r in rects
            )
            rects += (rect,)
            blocks = band.Blocks(rects)
            held = held + area if apart else blocks.positions(rows, cols)
            self.constant.pop(key, None)
            self.block_sets[key] = (inside, rects, held, around, max(last, rect[1]))
            self._mask(
                [key], base, ~blocks if around else blocks, inside, rows * cols - held if around else held
            )
            return True
        if key not in self.mask_of or self.blocks_filled.get(key, 0) >= _MAX_NESTED_BLOCKS:
            return False
        _, fill, region = self.mask_of[key]
        block = band.block(*rect)
        if not _nonzero(value):
            region = region & ~block
        elif value == fill:
            region = region | block
        else:
            return False
        self._mask([key], base, region, fill)
        self.blocks_filled[key] = self.blocks_filled.get(key, 0) + 1
        return True

    def _mask(
        self,
        key_outs: list,
        out: torch.Tensor,
        region: band.Region | None,
        inside: Any,
        held: int | None = None,
    ) -> None:
        """Record a mask: `inside` on the region `region` of its last two axes (a vector's one axis as the
        columns of one row), zero elsewhere, as (fraction of positions zero, inside, region), with the
        layout it was made in (`held`: the positions the region holds, where known). Nothing is recorded
        where the region is not known."""
        rows, cols = _matrix_shape(out)
        if region is None or not rows * cols:
            return
        zero = 1.0 - (region.positions(rows, cols) if held is None else held) / (rows * cols)
        self.mask_of.update(dict.fromkeys(key_outs, (zero, inside, region)))
        self.made_as.update(dict.fromkeys(key_outs, out))
        self.mask_layout.update(dict.fromkeys(key_outs, (_matrix_layout(out), _axes_over_one(out))))

    def _mask_entry(self, t: Any) -> tuple | None:
        """(fraction zero, inside, region) of a mask, viewed as it was made, with its two axes exchanged
        (`.transpose(0, 1)`, `.T`: the transposed region) or cut to some of its rows and columns; any other
        view that moves its axes (`keep[:, None]` of a vector made as columns) is not the same region."""
        if not isinstance(t, torch.Tensor):
            return None
        key = _key(t)
        made = self.mask_of.get(key)
        if made is None:
            return None
        layout = self.mask_layout[key][0]
        if layout == _matrix_layout(t):
            return made
        rows, cols, step = layout
        if (
            t.dim() >= 2
            and step == 1
            and tuple(t.shape[-2:]) == (cols, rows)
            and t.stride(-2) == 1
            and (rows == 1 or t.stride(-1) == cols)  # (a vector made a column: `keep[:, None]`)
        ):
            return made[0], made[1], made[2].transposed()
        # Rows and columns of it, from row r0 and column c0 on, in its own layout: a causal table cut to
        # the sequence (nanoGPT's `bias[:, :, :T, :T]`, GPT-2's `bias[:, :, k - q:k, :k]`).
        view_rows, view_cols = _matrix_shape(t)
        strides = t.stride()[-2:] if t.dim() >= 2 else (cols, t.stride(-1) if t.dim() else 1)
        if step != 1 or (view_cols > 1 and strides[1] != 1) or (view_rows > 1 and strides[0] != cols):
            return None
        if any(n > 1 and st % (rows * cols) for n, st in zip(t.shape[:-2], t.stride()[:-2], strict=True)):
            return None  # an outer axis that steps within the matrix (`mask.unsqueeze(1)`: `_mask_share`)
        r0, c0 = divmod(t.storage_offset() % (rows * cols), cols)
        down = view_rows // rows
        if (r0, c0, view_cols, view_rows % rows) == (0, 0, cols, 0) and 1 < down <= _MAX_TILES:
            # The rows of several of its matrices, each holding the region (`m[None].expand(G, S, S)
            # .reshape(G * S, S)`, a causal mask for G query heads folded into the rows): tiled.
            region = _tiled(made[2], rows, cols, down, 1)
            return made[0], made[1], region
        if r0 + view_rows > rows or c0 + view_cols > cols:
            return None
        region = made[2].shifted(-c0, -r0)
        return 1.0 - region.positions(view_rows, view_cols) / (view_rows * view_cols), made[1], region

    def _mask_share(self, t: Any) -> tuple | None:
        """(fraction zero, inside, region, (rows, cols) it was made with) of a mask viewed with unit axes put
        between its two (`mask[:, None]` added to scores laid out [b, s, h, t]), whose region no longer
        lies on the last two axes of what it masks."""
        if not isinstance(t, torch.Tensor) or _key(t) not in self.mask_of:
            return None
        if self.mask_layout[_key(t)][1] != _axes_over_one(t) or t.dim() < 2:
            return None
        return (*self.mask_of[_key(t)], self.mask_layout[_key(t)][0][:2])

    def _combined_mask(self, name: str, args: tuple, ins: list, filled: Any) -> tuple | None:
        """(region, inside) of two masks combined (`&`, `|`, a product of 0/1 masks, a sum of -inf masks),
        of a constant times a mask, or of `where(mask, a, b)` with two numbers, one of them 0."""
        masks = [self._mask_entry(t) for t in ins]
        if name == "where" and masks[0] and args[0] is ins[0] and _nonzero(masks[0][1]):
            return self._chosen_mask(masks[0][2], args[1], args[2])
        if name in ("masked_fill", "masked_fill_") and len(masks) == 2 and None not in masks:
            # A mask filled where another is (Gemma-2's window into its causal mask): `where` of the two.
            if args[0] is ins[0] and args[1] is ins[1] and _nonzero(masks[1][1]):
                return self._chosen_mask(masks[1][2], args[2], args[0])
        if len(ins) != 2 or name not in _MASK_COMBINERS:
            return None
        (a, b) = masks
        conjunction = name in ("bitwise_and", "bitwise_and_", "logical_and", "logical_and_")
        if name in ("mul", "mul_") and (a is None) != (b is None) and not _number(filled):
            # A 0/1 mask times a mask of data over keys or queries only (HF's causal mask times the attention
            # mask): zero at least where the known one is; taken as the known one (the data as ones).
            known, data = (a, ins[1]) if a is not None else (b, ins[0])
            if _number(known[1]) and known[1] == 1 and 1 in _matrix_shape(data):
                return known[2], known[1]
            return None
        if conjunction and ins[0].dtype == torch.bool and (a is None) != (b is None):
            # A known mask and one of data (document ids): kept at most where the known one keeps.
            known = a or b
            return (known[2], True) if _nonzero(known[1]) else None
        if name in ("mul", "mul_") and _number(filled) and b is not None and _nonzero(b[1]):
            inside = True if b[1] is True else b[1]
            return b[2], filled if inside is True else filled * inside  # a constant times a mask
        if a is None or b is None or not (_nonzero(a[1]) and _nonzero(b[1])):
            return None
        if name in ("add", "add_"):
            if not all(_number(m[1]) and m[1] <= _MASKED for m in (a, b)):
                return None
            return a[2] | b[2], max(a[1], b[1])  # -inf (or less than _MASKED) wherever either is
        union = name in ("bitwise_or", "bitwise_or_", "logical_or", "logical_or_")
        inside = True if ins[0].dtype == torch.bool or name.startswith("logical") else None
        if inside is None and name in ("mul", "mul_") and _number(a[1]) and _number(b[1]):
            inside = a[1] * b[1]
        return (a[2] | b[2] if union else a[2] & b[2]), inside

    def _chosen_mask(self, condition: band.Region, chosen: Any, other: Any) -> tuple | None:
        """(region, inside) of `where(condition, chosen, other)`, each of chosen and other a number or a
        mask, where what is not zero is one value: nonzero on (condition & chosen's) | (~condition & other's)."""
        parts = []
        for v in (chosen, other):
            number = self._number_of(v) if not isinstance(v, torch.Tensor) or v.numel() == 1 else None
            made = None if _number(number) else self._mask_entry(v)
            if _number(number):
                parts.append((band.diagonal() if number != 0 else ~band.diagonal(), number))
            elif made is not None:
                parts.append((made[2], made[1]))
            else:
                return None
        values = {inside for region, inside in parts if _nonzero(inside)}
        masking = [v for v in values if _number(v) and v <= _MASKED]
        if len(values) == 2 and len(masking) == 1:
            # A -inf fill beside a finite value (the old tutorial's `mask.float().masked_fill(mask == 0,
            # -inf)`, 1 where it keeps): an additive mask, whose finite part masks nothing.
            parts = [
                (region if inside == masking[0] else ~band.diagonal(), inside) for region, inside in parts
            ]
            values = set(masking)
        if len(values) > 1 or not values:
            return None
        (chosen_region, _), (other_region, _) = parts
        return (condition & chosen_region) | (~condition & other_region), values.pop()

    def _masked_through(self, op: _Op, name: str, args: tuple, ins: list, outs: list, key_outs: list) -> None:
        """Carry masked positions through an op: -inf stays -inf shifted by a finite amount (`s - lse`) and
        becomes zero through an exponential or softmax, zero stays zero through a product, and a
        contraction with masked zeros counts only the unmasked part."""
        masked = [(_key(t), t, *m) for t in ins if (m := self._masked_of(t)) is not None]
        if name in _MATRIX_PRODUCTS and not masked:
            # A mask itself as a factor (`x @ torch.triu(torch.ones(T, T))`, a prefix sum written as a
            # product): zero outside its region, as masked scores are.
            masked = [(_key(t), t, *m) for t in ins if (m := self._mask_zeros(t)) is not None]
        if not masked:
            return
        if name == "copy_" and args and any(_key(args[0]) == m[0] for m in masked):
            if self._written_into_masked(args[0]):
                return
            masked = [m for m in masked if m[0] != _key(args[0])]
            if not masked:
                return
        zeros = [(key, t, kept, region) for key, t, kept, state, region in masked if state == "0"]
        if name in _MATRIX_PRODUCTS:
            if zeros:
                _, t, kept, region = zeros[0]
                lines = self._nonzero_lines(name, args, t)
                # Of the products, those with a nonzero factor; whole rows (columns) of the result that
                # are zero, it need not compute either, unless a demand of fewer of them says so already.
                op.macs *= kept / lines if lines else 0.0
                op.nonzero = lines
                self._skipped_rows(op, name, args, t, region)
            return
        _, scores, kept, state, region = masked[0]
        if name == "_log_softmax_backward_data":
            # g - exp(out) * g.sum(-1): zero in the rows where the gradient g is, and `out` needed only in
            # the others (the rows of labels `nll_loss` ignores).
            if state != "0" or region is None or scores is not args[0] or args[0].shape != args[1].shape:
                return
            rows, cols = _matrix_shape(scores)
            kept_rows = region.rows_kept(rows, cols)
            if region.positions(rows, cols) != kept_rows * cols:
                return  # not whole rows: a row with a nonzero gradient anywhere is nonzero throughout
            for read in op.reads:
                if read.key == _key(args[1]) and read.rows is None:
                    read.nbytes *= kept_rows / rows
                    read.covering = (kept_rows / rows, 1.0)
            self._set_masked(outs, (kept, state, region))
            return
        if name == "_softmax_backward_data":
            # p * (g - (g * p).sum(-1)): zero where the probabilities p are, and g needed only elsewhere (a
            # masked attention under autograd, its mask added: before 2026-11-28, dP, dQ and dK in full).
            kept, state, region = self._masked_of(args[1]) or (1.0, None, None)
            if state != "0":
                return
            if outs and args[0].shape[-2:] == outs[0].shape[-2:] and args[1].shape[-2:] == outs[0].shape[-2:]:
                covering = _coverage(region, outs[0])
                for read in op.reads:
                    if read.key == _key(args[0]) and read.rows is None:
                        read.nbytes *= kept
                        read.covering = covering
            self._set_masked(outs, (kept, state, region))
            return
        if name in ("_softmax", "_safe_softmax", "softmax", "exp", "exp2"):
            state = "0" if state == "-inf" else None
        elif name == "_log_softmax":
            state = "-inf" if state == "-inf" else None
        elif name == "neg":
            if state == "+inf":
                state = "-inf"
            elif state != "0":  # -inf becomes +inf, which an exponential does not zero
                return
        elif name in ("mul", "div") and state in ("-inf", "+inf"):
            # Times or over a factor of known sign: +inf times a negative decay is -inf, which `exp` makes
            # zero (RetNet's mask filled with +inf, then `exp(mask * log_decay)`).
            if name == "div" and args[0] is not scores:
                return
            sign = self._sign(args[1] if args[0] is scores else args[0])
            if sign is not None and sign < 0:
                state = "+inf" if state == "-inf" else "-inf"
            elif sign is None and state == "+inf":
                return
        elif name == "nan_to_num":
            # The infinities become numbers: zero, or by default the dtype's extremes (still masked by an
            # exponential or a softmax); zeros stay zeros.
            at = {"-inf": 3, "+inf": 2}.get(state)
            replaced = args[at] if at is not None and len(args) > at else None
            if replaced is not None and replaced == 0:
                state = "0"
            elif replaced is not None and not (
                replaced <= _MASKED if state == "-inf" else replaced >= -_MASKED
            ):
                return
        elif name in _SHIFTS and state == "0":
            # A sum of terms each zero outside a region (`a.tril(-1) + b.tril(-1)`; a strictly lower
            # triangle plus `torch.eye`, Qwen3-Next's gated delta rule) is zero outside their union.
            rows, cols = _matrix_shape(scores)
            union = None
            for t in args[:2]:
                if _number(t) and t == 0:
                    continue
                if not isinstance(t, torch.Tensor):
                    return  # a number other than zero: nonzero everywhere
                _, other, where = self._masked_of(t) or self._mask_zeros(t) or (0.0, None, None)
                if t.shape[-2:] != scores.shape[-2:] or other != "0" or where is None or region is None:
                    return
                union = where if union is None else union | where
            if union is not None and rows * cols:
                region, kept = union, union.positions(rows, cols) / (rows * cols)
        elif name in _SHIFTS:
            if state != "-inf" or not self._shifted_only(name, args, scores, region):
                return
            if outs and scores.shape[-2:] == outs[0].shape[-2:]:
                # A -inf bias added to scores (T5's position bias with the mask in it): the scores are
                # needed only where it is not -inf.
                whole = _unique_elements(outs[0])
                for read in op.reads:
                    if read.key != _key(scores) and read.rows is None and read.nbytes / read.sig[1] >= whole:
                        read.nbytes *= kept
                        read.covering = _coverage(region, outs[0])
        elif name == "cat":
            # Masked scores with columns put beside them (an attention sink's logit, sliced off after the
            # softmax): the band moves by the columns before them, and the kept share is the scores'.
            dim = args[1] if len(args) > 1 else 0
            parts = list(args[0]) if isinstance(args[0], list | tuple) else []
            place = next((i for i, t in enumerate(parts) if t is scores), None)
            if place is None or scores.dim() < 2 or dim not in (-1, scores.dim() - 1):
                return
            before = sum(t.shape[-1] for t in parts[:place])
            region = region.shifted(before) if region is not None else None
        elif name in _GRADIENT_SCALINGS:
            zeros = [z for z in zeros if z[1] is args[0]]
            if not zeros:
                return
        elif name not in _MASK_PRESERVING:
            return
        if (name == "mul" or name in _GRADIENT_SCALINGS) and zeros and outs:
            # A product is zero where a factor of its own shape is: the other factors are demanded only
            # where it is not.
            key, t, kept, region = zeros[0]
            shape = outs[0].shape
            # (A factor broadcast over the batch of matrices, Mamba-2's `G[None] * L` of a C·Bᵀ shared by
            # the heads, meets the zeros of every matrix at the same positions.)
            others = {
                _key(o)
                for o in ins
                if _key(o) != key
                and o.dim() >= 2
                and o.shape[-2:] == shape[-2:]
                and _unique_elements(o) == o.numel()
            }
            if t.shape[-2:] == shape[-2:]:  # zero in every matrix it broadcasts to (a decay over the batch)
                covering = _coverage(region, outs[0]) if region is not None else self._permuted_coverage(t)
                for read in op.reads:
                    if read.key in others and read.rows is None:
                        read.nbytes *= kept
                        read.covering = covering
            state = "0"
        if state is not None:
            outer = self._outer_entry(scores, outs[0]) if outs else None
            if outer is not None:  # the same layout: masked on the same axes
                self._set_masked(outs, (kept, state, outer[0][2]), outer[1])
            else:
                self._set_masked(outs, (kept, state, region))

    def _written_into_masked(self, dest: torch.Tensor) -> bool:
        """A copy into a block of the rows and columns of a tensor with masked positions (the rows of a
        triangle solved one at a time in place, `attn[..., i, :i] = ...`, Qwen3-Next's gated delta rule):
        the positions it keeps are those it kept and the block (the same where the block lies inside them),
        up to `_MAX_NESTED_BLOCKS` blocks outside. Whether it kept the entry; otherwise (written whole, or
        not in a block) the entry is dropped, for the copy's own to replace it."""
        key = _key(dest)
        entry, axes = self.masked.get(key), self.masked_axes.get(key)
        whole = _unique_elements(dest) * dest.element_size() == self.storage_bytes.get(key)
        rect = None
        if not whole and entry is not None and entry[2] is not None and axes is not None and len(axes) == 4:
            rect = _rectangle_of(dest, *axes)
        if rect is not None:
            (r0, r1, c0, c1), (rows, cols) = rect, axes[2:]
            block = band.block(r0, r1, c0, c1)
            if (entry[2] & block).positions(rows, cols) == (r1 - r0 + 1) * (c1 - c0 + 1):
                return True
            if self.blocks_filled.get(key, 0) < _MAX_NESTED_BLOCKS:
                region = entry[2] | block
                self.masked[key] = (region.positions(rows, cols) / (rows * cols), entry[1], region)
                self.blocks_filled[key] = self.blocks_filled.get(key, 0) + 1
                return True
        self.masked.pop(key, None)
        self.masked_axes.pop(key, None)
        return False

    def _nonzero_lines(self, name: str, args: tuple, zeros: torch.Tensor) -> float:
        """Of a matrix product's result, the share of its rows (a first operand `zeros` in whole rows) or
        of its columns (a second operand zero in whole columns) that its masked zeros leave nonzero: keys
        padded with zeros make whole columns of the scores zero. 1.0 where the region is not known in the
        operand's own layout."""
        a, b = args[1:3] if name.startswith(("add", "baddbmm")) else args[:2]
        axes = self.masked_axes.get(_key(zeros), ())
        entry = self.masked.get(_key(zeros))
        if entry is None or entry[2] is None or len(axes) != 4 or zeros.dim() < 2:
            return 1.0
        rows, cols = axes[2:]
        if zeros.stride()[-2:] == axes[:2] and tuple(zeros.shape[-2:]) == (rows, cols):
            region = entry[2]
        elif zeros.stride()[-2:] == axes[1::-1] and tuple(zeros.shape[-2:]) == (cols, rows):
            region, rows, cols = entry[2].transposed(), cols, rows
        elif (
            zeros is a
            and zeros.stride()[-2:] == axes[:2] == (cols, 1)
            and zeros.shape[-1] == cols
            and zeros.shape[-2] % rows == 0
            and zeros.storage_offset() % (rows * cols) == 0
        ):
            # Its matrices stacked as rows (a padded [b, s, c] flattened to [b s, c] for a linear layer):
            # the same rows of each are zero.
            region = entry[2]
        else:
            return 1.0
        if zeros is a:
            return region.rows_kept(rows, cols) / rows
        if zeros is b:
            return region.columns_kept(rows, cols) / cols
        return 1.0

    def _skipped_rows(self, op: _Op, name: str, args: tuple, zeros: torch.Tensor, region: Any) -> None:
        """A matrix product whose first operand is zero outside a region in whole columns (P of a decode
        step's length mask, P @ V) needs the second operand's rows only where a column is kept; of the
        first operand transposed (Pᵀ @ dO), where a row of P is."""
        a, b = args[1:3] if name.startswith(("add", "baddbmm")) else args[:2]
        if a is not zeros or not isinstance(b, torch.Tensor) or a.dim() < 2:
            return
        layout = self.masked_axes.get(_key(a), ())
        if len(layout) == 5:
            # Masked on its first and last axes (P of each request's length, [b, h, s]): a batch of products
            # each within one request needs of the second operand, each matrix its request's, the rows of
            # the request's kept columns.
            rows, cols = layout[2:4]
            region = self.masked[_key(a)][2]
            within = (
                a.dim() >= 3 and a.stride(0) * a.shape[0] <= layout[0] * rows and layout[0] % a.stride(0) == 0
            )
            if (
                not within
                or a.shape[-1] != cols
                or a.stride(-1) != 1
                or b.dim() < 3
                or b.shape[0] != a.shape[0]
                or 0 in b.stride()[:-2]
            ):
                return
            share = region.positions(rows, cols) / (rows * cols)
        elif region is None:
            return
        elif len(layout) == 4 and tuple(a.shape[-2:]) != tuple(layout[2:]):
            # The region lies on other axes than the product's matrices: where its rows are the batch of
            # products of one row each (a decode step, P of each request's length over its own cache),
            # each product needs the rows of its own kept columns; otherwise no rows are known skipped.
            rows, cols = layout[2:]
            if a.shape[-2] != 1 or a.shape[-1] != cols or a.numel() != rows * cols or a.stride(-1) != 1:
                return
            share = region.positions(rows, cols) / (rows * cols)
        elif a.stride(-1) == 1 or a.shape[-1] == 1:
            rows, cols = a.shape[-2:]
            share = region.columns_kept(rows, cols) / cols
        elif a.stride(-2) == 1:
            cols, rows = a.shape[-2:]  # P's own rows are the product's columns
            share = region.rows_kept(rows, cols) / rows
        else:
            return
        for read in op.reads:
            if read.side == "columns" and read.key == _key(b):
                read.nbytes *= share

    def _biased_by_mask(self, op: _Op, args: tuple, kwargs: dict, outs: list, key_outs: list) -> bool:
        """A -inf band added as the bias of a product (GPT-2's `baddbmm(mask, q, kᵀ, alpha=scale)`): the
        product counts its kept part only, as when the mask is added after it, and its result is masked."""
        beta = kwargs.get("beta", 1)
        bias = args[0] if args and isinstance(args[0], torch.Tensor) and _number(beta) and beta > 0 else None
        made = self._mask_entry(bias) if bias is not None and bias.dim() >= 2 else None
        if made is None or not (_number(made[1]) and made[1] <= _MASKED) or not outs or outs[0].dim() < 2:
            return False
        if bias.shape[-2:] != outs[0].shape[-2:]:
            return False
        kept, _, region = made
        op.macs *= kept
        self._set_masked(outs, (kept, "-inf", ~region))
        return True

    def _shifted_only(self, name: str, args: tuple, scores: torch.Tensor, region: band.Region | None) -> bool:
        """Whether a sum or difference with masked (-inf) scores leaves them -inf where masked: the scores
        come first in a difference, and the other term is finite, a number, or a tensor neither masked nor
        possibly infinite, or a per-row statistic (a row max or log-sum-exp, shape [..., rows, 1]) of rows
        that each keep a score."""
        if len(args) < 2 or (name.startswith("sub") and args[0] is not scores):
            return False
        other = args[1] if args[0] is scores else args[0]
        if _number(other):
            return math.isfinite(other)
        if not isinstance(other, torch.Tensor) or _key(other) in self.masked:
            return False
        if _key(other) not in self.infinite:
            return True
        rows, cols = _matrix_shape(scores)
        return (
            other.dim() >= 1
            and other.shape[-1] == 1
            and region is not None
            and region.rows_kept(rows, cols) == rows
        )

    def _arange(self, name: str, args: tuple, ins: list, key_outs: list) -> bool:
        """Track the values of an `arange` (start + step * i) and of it plus or minus a number, and of the
        difference of a row arange and a column arange (a constant plus or minus the diagonal offset
        j - i), its shifts and its absolute value. Whether the op made one of these."""
        if name == "arange":
            numbers = [a for a in args if _number(a)]
            start, step = (numbers[0] if len(numbers) > 1 else 0), (numbers[2] if len(numbers) > 2 else 1)
            self.aranges.update(dict.fromkeys(key_outs, (start, step)))
            return True
        shift = args[1] if len(args) == 2 and _number(args[1]) and name != "abs" else None
        first = ins[0] if ins and args[0] is ins[0] else None
        if first is None or len(key_outs) != 1:
            return False
        sign = -1 if name == "sub" else 1
        tracked = self.aranges.get(_key(first))
        if tracked is not None:
            # The values of the view it reads, which a fresh result keeps in its own positions (`pos[8:]`
            # starts at 8).
            line = self._positions(first, self.aranges)
            start, step = line[1:] if line is not None else tracked
        if name == "abs" and len(args) == 1 and tracked is not None:
            self.abs_lines[key_outs[0]] = (start, step)
            return True
        if tracked is not None and (shift is not None or name == "neg" and len(args) == 1):
            if name in ("rsub", "neg"):  # shift - (start + step i), or -(start + step i)
                self.aranges[key_outs[0]] = ((shift or 0) - start, -step)
            else:
                self.aranges[key_outs[0]] = (start + sign * shift, step)
            return True
        diagonal = self._diagonal_of(first)
        if diagonal is not None and (shift is not None or name == "abs" and len(args) == 1):
            constant, direction, absolute = diagonal
            if name == "abs":
                made = (constant, direction, True)
            elif absolute:
                return False
            else:
                made = (constant + sign * shift, direction, False)
            self.diagonals[key_outs[0]] = (*made, *first.shape[-2:])
            if _key(first) in self.frame_diagonals:
                self.frame_diagonals[key_outs[0]] = self.frame_diagonals[_key(first)]
            return True
        if name == "sub" and len(ins) == 2 and ins[1] is args[1] and not args[2:]:
            if all(_key(t) in self.frame_of for t in ins):
                pair = self._frame_pair(ins)
                if pair is None:
                    return False
                size, row, column, direction = pair
                shape = torch.broadcast_shapes(ins[0].shape, ins[1].shape)[-2:]
                self.diagonals[key_outs[0]] = (0.0, direction, False, *shape)
                self.frame_diagonals[key_outs[0]] = (size, row, column)
                return True
            lines = self._rows_and_columns(ins)
            if lines is None:
                return False
            (axis, value), (_, other), shape = lines
            # row i minus column j is (value - other) - (j - i); column minus row is the negation.
            self.diagonals[key_outs[0]] = (value - other, 1 if axis == -1 else -1, False, *shape)
            return True
        return False

    def _cast_positions(self, args: tuple, ins: list, out: torch.Tensor, key_outs: list) -> bool:
        """Carry an arange, its absolute value or a diagonal offset (`(i[None] - i[:, None]).float()`) through
        a cast or copy of the whole tensor, in its layout, to a dtype that holds every value it takes exactly.
        Whether the op carried one."""
        if len(ins) != 1 or not args or args[0] is not ins[0] or len(key_outs) != 1:
            return False
        source, key = ins[0], _key(ins[0])
        if (tuple(source.shape), source.stride(), source.storage_offset()) != (
            tuple(out.shape),
            out.stride(),
            0,
        ):
            return False
        if _unique_elements(source) * source.element_size() != self.storage_bytes.get(key):
            return False
        exact = _EXACT_INTEGERS.get(out.dtype)
        if exact is None:
            return False
        carried = False
        for table in (self.aranges, self.abs_lines):
            if key in table:
                start, step = table[key]
                if abs(start) + abs(step) * source.numel() < exact:
                    table[key_outs[0]] = table[key]
                    carried = True
        made = self.diagonals.get(key)
        if made is not None and abs(made[0]) + made[3] + made[4] < exact:
            self.diagonals[key_outs[0]] = made
            if key in self.frame_diagonals:
                self.frame_diagonals[key_outs[0]] = self.frame_diagonals[key]
            carried = True
        return carried

    def _diagonal_of(self, t: torch.Tensor) -> tuple[float, int, bool] | None:
        """(c, s, absolute) of a tensor whose values are c + s (j - i) over its last two axes (or the
        absolute value of that), laid out as it was made."""
        made = self.diagonals.get(_key(t))
        if made is None or t.dim() < 2:
            return None
        *value, rows, cols = made
        if (t.shape[-2], t.shape[-1]) != (rows, cols) or t.stride(-1) != 1 and cols > 1:
            return None
        return tuple(value) if t.stride(-2) == cols or rows == 1 else None

    def _difference(self, t: torch.Tensor) -> Callable:
        """What the j - i of a tensor's diagonal entry counts: `band.diagonal`, or the frames of a
        difference of frame indices (`band.frames` of their size and starts)."""
        frames = self.frame_diagonals.get(_key(t))
        if frames is None:
            return band.diagonal
        size, row, column = frames
        return functools.partial(band.frames, size, shift=-column, row_shift=-row)

    def _frames(self, name: str, args: tuple, kwargs: dict, ins: list, key_outs: list) -> bool:
        """Track floor(arange / F) for a positive integer F (the frame of each position), from an arange of
        step 1 from an integer (truncated, from a non-negative one). Whether the op made one."""
        rounding = "floor" if name == "floor_divide" else kwargs.get("rounding_mode")
        size = args[1] if len(args) > 1 else None
        if rounding not in ("floor", "trunc") or len(ins) != 1 or args[0] is not ins[0] or len(key_outs) != 1:
            return False
        if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
            return False
        line = self._positions(ins[0], self.aranges)  # (a view of an arange: `pos[8:]` starts at 8)
        start, step = line[1:] if line is not None else (None, None)
        if step != 1 or start != int(start) or rounding == "trunc" and start < 0:
            return False  # (truncation is the floor of an arange that never goes below zero)
        self.frame_of[key_outs[0]] = (size, int(start))
        return True

    def _bucketized(self, args: tuple, kwargs: dict, key_outs: list) -> bool:
        """Track `bucketize(positions, boundaries)` of an arange of step 1 by an arange of a positive integer
        step F (document ids of packed documents of equal length, `bucketize(pos, cu_seqlens[1:])`): where
        no position lies past the last boundary's bucket, the frame of each position, floor((p + c) / F).
        Whether the op made one."""
        x, bounds = args[0], args[1] if len(args) > 1 else None
        right = kwargs.get("right", args[3] if len(args) > 3 else False)
        if not isinstance(bounds, torch.Tensor) or x.dim() != 1 or bounds.dim() != 1 or len(key_outs) != 1:
            return False
        x_start, x_step = self.aranges.get(_key(x), (None, None))
        b_start, b_step = self.aranges.get(_key(bounds), (None, None))
        if x_step is None or b_step is None or not x.numel() or not bounds.numel():
            return False
        first = x_start + x_step * x.storage_offset()
        step = x_step * x.stride(0)
        b0 = b_start + b_step * bounds.storage_offset()
        size = b_step * bounds.stride(0)
        if step != 1 or first != int(first) or b0 != int(b0) or size != int(size) or size <= 0:
            return False
        first, b0, size, last = int(first), int(b0), int(size), int(first) + x.numel() - 1
        # Right: the boundaries at or below x; left: those below it (one fewer where x is one).
        lag = 0 if right else 1
        if first < b0 - size + lag or last > b0 + bounds.numel() * size - 1 + lag:
            return False  # positions outside the buckets the boundaries make: the count stops there
        self.frame_of[key_outs[0]] = (size, first - b0 + size - lag)
        return True

    def _interleaved(self, ins: list, key_outs: list) -> bool:
        """Track `arange(s, s + n).repeat_interleave(L)` for an integer L (torch copies the arange expanded
        to n x L): s + p // L at position p, the frames of size L from position s * L (the sequence ids of
        equal packed documents). Whether the op made one."""
        t = ins[0] if len(ins) == 1 and len(key_outs) == 1 else None
        start, step = self.aranges.get(_key(t), (None, None)) if t is not None else (None, None)
        if step != 1 or start != int(start) or t.dim() != 2 or t.stride() != (1, 0):
            return False
        size = t.shape[1]
        self.frame_of[key_outs[0]] = (size, (int(start) + t.storage_offset()) * size)
        return True

    def _joined_mask(self, args: tuple, kwargs: dict, key_outs: list, out: torch.Tensor) -> bool:
        """Record a mask joined along its rows or columns with masks of its value or with constants (zero,
        or its value): Meta's Llama 3 puts `zeros((L, start))` before `triu(full((L, L), -inf), 1)` for the
        keys already cached. Each part's region moves to where the part lies. Whether it made one."""
        parts = args[0] if args and isinstance(args[0], list | tuple) else ()
        dim = args[1] if len(args) > 1 else kwargs.get("dim", 0)
        if not parts or not out.dim() or not isinstance(dim, int):
            return False
        axis = dim % out.dim()
        along_columns = axis == out.dim() - 1
        if not along_columns and axis != out.dim() - 2:
            return False
        region, values, offset = None, set(), 0
        for t in parts:
            width = t.shape[axis] if isinstance(t, torch.Tensor) and t.dim() == out.dim() else None
            if width is None:
                return False
            place = band.columns if along_columns else band.rows
            entry = self._mask_entry(t)
            constant = self.constant.get(_key(t)) if entry is None else None
            if entry is None and not _number(constant) and not isinstance(constant, bool):
                return False
            if width and (entry is not None or _nonzero(constant)):
                inside, part = (entry[1], entry[2]) if entry is not None else (constant, band.diagonal())
                moved = part.shifted(offset, 0) if along_columns else part.shifted(0, offset)
                moved = moved & place(offset, offset + width - 1)
                region = moved if region is None else region | moved
                values.add(inside)
            offset += width
        if region is None or len(values) != 1 or not _nonzero(next(iter(values))):
            return False
        self._mask(key_outs, out, region, values.pop())
        return True

    def _gathered_mask(self, name: str, args: tuple, key_outs: list, out: torch.Tensor) -> bool:
        """Record the rows (or columns) of a mask picked at positions an arange of step 1 gives, as a slice of
        them would be: gpt-fast's `causal[None, None, input_pos]` for the queries at `input_pos`. Whether
        it made one."""
        source = args[0] if args and isinstance(args[0], torch.Tensor) else None
        if source is None or source.dim() < 2 or len(key_outs) != 1:
            return False
        indexed = _one_index(name, args)
        entry = self._mask_entry(source) if indexed is not None else None
        start = self._arange_start(indexed[1]) if entry is not None else None
        if start is None or not isinstance(indexed[0], int):
            return False
        axis = indexed[0] % source.dim()
        if axis == source.dim() - 2:
            region = entry[2].shifted(0, -start)
        elif axis == source.dim() - 1:
            region = entry[2].shifted(-start, 0)
        else:
            return False
        self._mask(key_outs, out, region, entry[1])
        return True

    def _compared_frames(self, name: str, ins: list) -> band.Region | None:
        """The region where the frame of a row position compares with that of a column position, for
        frames of one size F: as `_compared` for a diagonal, with j - i the frames' difference."""
        pair = self._frame_pair(ins)
        if pair is None:
            return None
        size, row, column, direction = pair
        frames = functools.partial(band.frames, size, shift=-column, row_shift=-row)
        return _diagonal_band(name, 0, direction, frames)

    def _frame_pair(self, ins: list) -> tuple[int, int, int, int] | None:
        """(F, r, c, s) for two frame-index views of one size F, one along the rows (from r) and one along
        the columns (from c): the first less the second is s (floor((j + c) / F) - floor((i + r) / F))."""
        lines = []
        for t in ins:
            size, start = self.frame_of[_key(t)]
            varying = [d for d in range(t.dim()) if t.shape[d] > 1]
            if (
                len(varying) != 1
                or t.stride(varying[0]) != 1
                or t.storage_offset()
                or varying[0] < t.dim() - 2
            ):
                return None
            lines.append((size, start, varying[0] - t.dim()))
        (size, first, axis), (other_size, second, other_axis) = lines
        if size != other_size or {axis, other_axis} != {-1, -2}:
            return None
        direction, (row, column) = (1, (second, first)) if axis == -1 else (-1, (first, second))
        return size, row, column, direction

    def _line_of(self, t: torch.Tensor) -> tuple[Callable, float, int, bool] | None:
        """(band.columns or band.rows, the value at position 0, its step of +-1 per position, whether the
        values are its absolute value) of an arange varying along one axis, the last (columns; a vector's
        one axis) or the one before (rows), or of the absolute value of one."""
        key = _key(t)
        line = self._positions(t, self.abs_lines if key in self.abs_lines else self.aranges)
        if line is None or line[0] < -2 or abs(line[2]) != 1:
            return None
        axis, first, step = line
        return band.columns if axis == -1 else band.rows, first, step, key in self.abs_lines

    def _positions(self, t: torch.Tensor, lines: Mapping) -> tuple[int, float, float] | None:
        """(axis from the end, value at position 0, step per position) of a tensor whose values change
        along one axis only: a view of a tracked arange (`lines`: storage -> (start, step)), expanded
        along others or not, or a copy of one repeated along others (`repeat`: `self.grids`)."""
        key = _key(t)
        if key in self.grids:
            axis, first, step, layout = self.grids[key]
            return (axis, first, step) if (tuple(t.shape), t.stride(), t.storage_offset()) == layout else None
        if key not in lines or t.dim() == 0:
            return None
        start, step = lines[key]
        varying = [d for d in range(t.dim()) if t.shape[d] > 1 and t.stride(d) != 0]
        if len(varying) != 1:
            return None
        return varying[0] - t.dim(), start + step * t.storage_offset(), step * t.stride(varying[0])

    def _tiled_mask(self, args: tuple, key_outs: list, out: torch.Tensor) -> bool:
        """Record a mask tiled along its rows or columns (`causal.repeat(G, 1)`: the mask of G query heads
        folded into the rows of one product with their key head), each tile holding its region; whether
        it did (up to `_MAX_TILES` tiles)."""
        source = self._mask_entry(args[0])
        repeats = list(args[1]) if len(args) > 1 else []
        if source is None or args[0].dim() != 2 or len(repeats) != 2 or out.dim() != 2:
            return False
        down, across = repeats
        if not 1 <= down * across <= _MAX_TILES:
            return False
        self._mask(key_outs, out, _tiled(source[2], *args[0].shape, down, across), source[1])
        return True

    def _repeated_line(self, args: tuple, key_outs: list, out: torch.Tensor) -> bool:
        """Track `repeat` of a position line along other axes (HF's `seq_ids[None, None, :].repeat(b, l,
        1)`): the copy's values change along the same axis. Whether the op made one."""
        line = self._positions(args[0], self.aranges)
        repeats = list(args[1]) if len(args) > 1 else []
        if line is None or len(key_outs) != 1 or not repeats or repeats[line[0]] != 1:
            return False
        self.grids[key_outs[0]] = (*line, (tuple(out.shape), out.stride(), out.storage_offset()))
        return True

    def _rows_and_columns(self, ins: list) -> tuple | None:
        """For two arange views, one varying along the rows and one along the columns: ((axis of the
        first, its value at position 0), (axis of the second, its value there), (rows, cols))."""
        lines = []
        for t in ins:
            line = self._positions(t, self.aranges)
            if line is None or line[2] != 1:
                return None
            lines.append((line[0], line[1], t.shape[line[0]]))
        (axis_a, first_a, size_a), (axis_b, first_b, size_b) = lines
        if {axis_a, axis_b} != {-1, -2}:
            return None
        shape = (size_a, size_b) if axis_a == -2 else (size_b, size_a)
        return (axis_a, first_a), (axis_b, first_b), shape

    def _compared(self, name: str, args: tuple, ins: list) -> band.Region | None:
        """The band where a comparison holds: of an arange along the rows with one along the columns
        (`i[:, None] >= j[None, :]`), or of a diagonal difference (`i[:, None] - j[None, :] < w`, or its
        absolute value) with a number."""
        line = self._line_of(args[0]) if len(args) == 2 and isinstance(args[0], torch.Tensor) else None
        if line is not None:
            number = self._number_of(args[1])
            if number is None:
                number = self._uniform(args[1])  # one length for every request, known from data
            if _number(number):
                # A position along one axis (a key's, `kv_pos <= pos`) against a number: columns or rows.
                made, first, step, absolute = line
                if absolute:  # |kv_pos - pos| < w
                    return _absolute_band(name, first, step, number, made)
                return _diagonal_band(name, number - first, step, made)
            per_row = self._rows_compared(name, line, args)
            if per_row is not None:
                return per_row
        if len(ins) == 2 and all(_key(t) in self.frame_of for t in ins):
            return self._compared_frames(name, ins)
        if len(ins) == 2:
            lines = self._rows_and_columns(ins)
            if lines is None:
                return None
            (axis, value), (_, other) = lines[:2]
            # first OP second, as (value - other) + s (j - i) OP 0
            constant, direction, bound = value - other, (1 if axis == -1 else -1), 0.0
        elif len(ins) == 1 and len(args) == 2 and _number(args[1]) and args[0] is ins[0]:
            diagonal = self._diagonal_of(ins[0])
            if diagonal is None:
                return None
            constant, direction, absolute = diagonal
            made = self._difference(ins[0])
            if absolute:
                return _absolute_band(name, constant, direction, args[1], made)
            return _diagonal_band(name, args[1] - constant, direction, made)
        else:
            return None
        return _diagonal_band(name, bound - constant, direction)

    def _rows_compared(self, name: str, line: tuple, args: tuple) -> band.Region | None:
        """Where a position along the columns compares with a value per row known from data (a length per
        request of a decode step: `kv_pos >= seq_lens[:, None]`, the requests of different lengths): an
        interval of columns in each row, as rectangles (up to `_MAX_BLOCKS`)."""
        made, first, step, absolute = line
        other = args[1]
        if absolute or made is not band.columns or name not in _ORDERS or not isinstance(other, torch.Tensor):
            return None
        if other.dim() != 2 or other.shape[1] != 1 or args[0].dim() > 2:
            return None
        if not self._valued(other):
            small = not other.is_floating_point() and other.shape[0] <= _MAX_BLOCKS
            if not self.with_data and self.small_values and small:
                # Which keys each request keeps is its length's value: read on data (a small tensor, so
                # traced at full size with the large ones on meta), where on meta every key counts.
                raise _SmallValues(f"positions compared with a length per row ({name})")
            return None
        cols = args[0].shape[-1]
        if (
            other.is_complex()
            or other.dtype == torch.bool
            or not 0 < other.shape[0] <= _MAX_BLOCKS
            or not cols
        ):
            return None
        with torch._C.DisableTorchFunction():
            values = other.reshape(-1).tolist()
        intervals = []
        for value in values:
            atom = _diagonal_band(name, value - first, step, made)
            lo, hi = int(max(0, atom.lo)), int(min(cols - 1, atom.hi))
            intervals.append((lo, hi) if lo <= hi else None)
        return _row_blocks(intervals)

    def _applied_mask(self, name: str, args: tuple, ins: list) -> tuple | None:
        """(the tensor masked, the fraction of it kept, what the masked positions become, the region of the
        mask, the shares of rows and columns kept where its region lies on other axes than the tensor's last
        two) for an op that applies a mask: added (-inf or a large negative inside), `masked_fill`, `where`,
        a product with a 0/1 mask, `triu`/`tril`."""
        applied = self._mask_applied(name, args, ins)
        if applied is None or len(applied) == 4:
            return applied if applied is None else (*applied, None, None)
        # A mask on other axes: its region stays behind, only the shares it keeps pass on (and the region,
        # with the shape it was made in, for a mask whose rows are the scores' first axis: `_outer_mask`).
        scores, kept, fill, masked_region, (rows, cols) = applied
        return (
            scores,
            kept,
            fill,
            None,
            _coverage_of(~masked_region, rows, cols),
            (~masked_region, rows, cols),
        )

    def _mask_applied(self, name: str, args: tuple, ins: list) -> tuple | None:
        if name in ("triu", "tril", "triu_", "tril_"):
            cut = band.triangle(name.rstrip("_"), args[1] if len(args) > 1 else 0)
            rows, cols = _matrix_shape(args[0])
            return args[0], cut.positions(rows, cols) / (rows * cols), 0.0, ~cut
        masks = [(t, *made) for t in ins if (made := self._mask_entry(t) or self._mask_share(t)) is not None]
        if not masks:
            return None
        mask, kept, inside, region, *made = masks[0]
        found = self._mask_result(name, args, mask, kept, inside, region, [t for t in ins if t is not mask])
        return found if found is None or not made else (*found, made[0])

    def _mask_result(
        self, name: str, args: tuple, mask: torch.Tensor, kept: float, inside: Any, region: Any, others: list
    ) -> tuple | None:
        """(the tensor masked, the fraction of it kept, what its masked positions become, the region they
        are in) for an op applying `mask` (fraction `kept` zero, `inside` on `region`) to the `others`."""
        outside = ~region
        nonzero = _nonzero(inside)
        if name in ("add", "add_"):
            if not (_number(inside) and inside <= _MASKED) or len(others) != 1:
                return None  # adding anything else needs every score
            return others[0], kept, inside, region
        if name in ("mul", "mul_") and nonzero and len(others) == 1 and others[0].dim() >= 2:
            # Scores times a 0/1 (or 0/c) mask, `(q @ kᵀ) * tril(ones)`: zero where the mask is.
            if _matrix_shape(others[0]) == _matrix_shape(mask) or self._mask_entry(mask) is None:
                return others[0], 1.0 - kept, 0.0, outside
        if name in ("masked_fill", "masked_fill_") and nonzero and args[1] is mask:
            return args[0], kept, self._number_of(args[2]), region
        if name in ("index_put", "index_put_") and nonzero and self._mask_put(args) is mask:
            return args[0], kept, self._number_of(args[2]), region
        if name == "where" and nonzero and args[0] is mask and len(args) == 3:
            chosen, other = args[1], args[2]
            chosen_fill = self._fill_of(chosen)
            if isinstance(chosen, torch.Tensor) and chosen.dim() >= 2 and chosen_fill is None:
                return chosen, 1.0 - kept, self._fill_of(other), outside  # kept inside the band
            if isinstance(other, torch.Tensor) and other.dim() >= 2:
                return other, kept, chosen_fill, region
        return None

    def _mask_put(self, args: tuple) -> torch.Tensor | None:
        """The mask of an `index_put` that puts a value where a bool mask built in the reference is, on the
        last two axes (`s[..., causal] = float("-inf")`): a fill, as `masked_fill` makes it. None for any
        other put (an accumulating one, other indices)."""
        if len(args) < 3 or len(args) > 3 and args[3] is True or not args[1]:
            return None
        *before, mask = args[1]
        if (
            isinstance(mask, torch.Tensor)
            and mask.dtype == torch.bool
            and mask.dim() == 2
            and all(i is None for i in before)
            and len(before) + 2 == args[0].dim()
            and self._mask_entry(mask) is not None
        ):
            return mask
        return None

    def _fill_of(self, v: Any) -> float | None:
        """The one value of a number or a tensor that holds one value throughout: a single element
        (`_number_of`), or a constant fill with no block filled into it since (`torch.zeros_like(e)` as
        the other side of a `where`)."""
        value = self.constant.get(_key(v)) if isinstance(v, torch.Tensor) and v.numel() > 1 else None
        if _number(value) and not self.blocks_filled.get(_key(v)):
            return value
        return self._number_of(v)

    def _uniform(self, t: Any) -> float | None:
        """The one value of a tensor on data whose elements all hold it (a length per request, all
        requests of one length: `kv_pos >= seq_lens[:, None]` is then one band of columns); else None
        (lengths that differ: `_rows_compared`)."""
        if not isinstance(t, torch.Tensor) or t.numel() < 2 or t.numel() > 1 << 16 or not self._valued(t):
            return None
        if t.is_complex() or t.dtype == torch.bool:
            return None
        with torch._C.DisableTorchFunction():
            flat = t.reshape(-1)
            first = flat[0].item()
            return first if bool((flat == first).all()) else None

    def _number_of(self, v: Any) -> float | None:
        """A Python number, or the one value of a single-element tensor where it is known."""
        if _number(v) or isinstance(v, bool):
            return v
        if not isinstance(v, torch.Tensor) or v.numel() != 1:
            return None
        if _number(self.constant.get(_key(v))):
            return self.constant[_key(v)]  # made by a fill (`where(mask, float("-inf"), s)`)
        if v.device.type == "meta":
            r = self.range_of(v)
            if r is not None and r[0] == r[1] and math.isinf(r[0]) and not r[2] and v.is_floating_point():
                # An infinity made on the device (`torch.tensor(float("-inf"), device=s.device)` as the fill
                # of a mask): ranges take no infinity but from their inputs, so a point at one is exact.
                return r[0]
            return value_range.decided(r, v.dtype)
        return v.item()

    def _repeats(self, aligned: bool, name: str, ins: list, outs: list) -> None:
        """Track the axes along which a result repeats its values: an elementwise op, copy or pad whose
        every operand repeats along an axis (expanded there, stride 0, or itself a repeating result) or
        does not vary along it, repeats along it too; so does a tiling (`repeat`) of a unit axis."""
        if name == "_unsafe_view":
            return  # the same storage, reshaped (`reshape` of a copy): it repeats as it did
        for t in outs:
            self.repeated.pop(_key(t), None)
        if len(outs) != 1 or not (aligned or name == "repeat" and len(ins) == 1):
            return
        out = outs[0]
        if _unique_elements(out) * out.element_size() != self.storage_bytes.get(_key(out)):
            return  # a write into part of a storage
        if name == "repeat":
            # A tiling repeats its values along the axes where it tiles one element (a unit axis, or one it
            # adds in front), and along those where it tiles once an operand that repeats there.
            src, axes = ins[0], set()
            for d in range(out.dim()):
                shift = out.dim() - d
                if out.shape[d] == 1 or out.stride(d) == 0:
                    continue
                if src.dim() < shift or src.shape[-shift] == 1:
                    axes.add((out.stride(d), out.shape[d]))
                elif src.shape[-shift] == out.shape[d] and self.repeats(src, src.dim() - shift):
                    axes.add((out.stride(d), out.shape[d]))
            if axes:
                self.repeated[_key(out)] = frozenset(axes)
            return
        if name == "copy_":
            ins = ins[1:2]
        axes = set()
        for d in range(out.dim()):
            size, stride = out.shape[d], out.stride(d)
            if size == 1 or stride == 0:
                continue
            shift = out.dim() - d
            if all(t.dim() < shift or t.shape[-shift] == 1 or self.repeats(t, t.dim() - shift) for t in ins):
                axes.add((stride, size))
        if axes:
            self.repeated[_key(out)] = frozenset(axes)

    def _few_values(self, aligned: bool, name: str, args: tuple, ins: list, outs: list) -> None:
        """Track results that hold fewer distinct values than elements: a gather holds no more than its
        source (block scales picked per element, `s[rows // 128][:, cols // 128]`), an elementwise op no
        more than the product of its operands' (a constant counting one: `torch.kron(s, ones)`)."""
        if name == "_unsafe_view":
            return  # the same storage, reshaped
        for t in outs:
            self.few.pop(_key(t), None)
        if len(outs) != 1:
            return
        out = outs[0]
        if _unique_elements(out) * out.element_size() != self.storage_bytes.get(_key(out)):
            return  # a write into part of a storage
        if name in _PICKS and args and isinstance(args[0], torch.Tensor):
            values = self._distinct(args[0])
        elif aligned and ins:
            values = math.prod(1 if _key(t) in self.constant else self._distinct(t) for t in ins)
        else:
            return
        if values < _unique_elements(out):
            self.few[_key(out)] = values

    def _distinct(self, t: torch.Tensor) -> int:
        """Elements of a view that can differ: a storage that repeats its values (a scale made full size by
        `repeat_interleave`) holds as many as the tensor it repeats, and a view of part of it (the scale
        cut to a weight of 576 rows) no more; a storage of few values (`_few_values`) no more than those."""
        n = min(_unique_elements(t), self.few.get(_key(t), math.inf))
        axes = self.repeated.get(_key(t))
        if axes:
            whole = self.storage_bytes.get(_key(t), 0) // t.element_size()
            return min(n, whole // math.prod(size for _, size in axes))
        return n

    def _batch_repeats(self, a: torch.Tensor, b: torch.Tensor) -> int:
        """How many consecutive batches of a batched product make the same products: those along which
        both operands repeat their values (expanded, stride 0, or a copy of an expanded view reshaped into
        the batch axis: `matmul` of C and B of one group broadcast to every head makes per-head copies),
        counted once as a kernel that computes them once and broadcasts the result does. 1 where they do
        not both repeat, or repeat in runs neither of which divides the other."""
        n = a.shape[0] if a.dim() == 3 else 1
        if n < 2 or b.dim() != 3 or b.shape[0] != n:
            return 1
        runs = []
        for t in (a, b):
            stride = t.stride(0)
            if stride == 0:
                runs.append(n)
                continue
            # (runs that start where the view's batches do: a view from a run's first batch on)
            sizes = [
                size
                for step, size in self.repeated.get(_key(t), ())
                if step == stride and n % size == 0 and t.storage_offset() % (step * size) == 0
            ]
            if not sizes:
                return 1
            runs.append(max(sizes))
        low, high = sorted(runs)
        return low if high % low == 0 else 1

    def repeats(self, t: torch.Tensor, dim: int) -> bool:
        """Whether a tensor's values repeat along a dimension."""
        stride = t.stride(dim)
        return stride == 0 or (stride, t.shape[dim]) in self.repeated.get(_key(t), ())

    def _gather_reads(self, name: str, args: tuple, kwargs: dict) -> list[_Read]:
        """The source of a gather is read only at the rows its indices name."""
        source = args[0]
        if name in _PICKING_LOSSES:
            return [self._picked_reads(name, args, kwargs)]
        for index in _leaves(args[1:]):
            self._ask_positions(index)
        if name in _EMBEDDINGS:
            source, index = args[0], args[1]
            groups = [(0, index)]
        elif name in ("index", "_unsafe_index"):
            groups = [(d, i) for d, i in enumerate(args[1]) if i is not None]
        elif name == "masked_select":
            groups = [(0, args[1])]
        elif name == "take":
            groups = [(-1, args[1])]
        else:  # index_select(self, dim, index), gather(self, dim, index)
            dim = args[1] if len(args) > 1 else kwargs["dim"]
            index = args[2] if len(args) > 2 else kwargs["index"]
            groups = [(dim % max(source.dim(), 1), index)]
        sig = _signature(source)
        full = _unique_elements(source) * source.element_size()
        share, vector = 1.0, None
        if name == "gather" and source.dim() > 1 and groups[0][1].dim() == source.dim():
            dim, index = groups[0]
            others = [a for a in range(index.dim()) if a != dim]
            if all(index.shape[a] == 1 or self.repeats(index, a) for a in others):
                # One vector of positions along `dim`, expanded over the other axes (`take_along_dim`, a
                # message-passing gather `x.gather(0, src[:, None].expand(-1, F))`): rows of the source, as
                # `index_select` takes them, over the part of the other axes the index spans.
                share = math.prod(index.shape[a] / max(source.shape[a], 1) for a in others)
                vector = index[tuple(slice(None) if a == dim else slice(0, 1) for a in range(index.dim()))]
        if vector is None and (
            name == "take" or name == "gather" or len(groups) != 1 or groups[0][1].dtype == torch.bool
        ):
            # Element-wise addressing or several index tensors: at most one element per index, or with
            # several, the elements of the axes they leave whole (`y[expert, slot]` takes a row of y).
            n = max((i.numel() for _, i in groups), default=0)
            if name in ("index", "_unsafe_index") and len(groups) > 1 and groups[0][1].dtype != torch.bool:
                n = min(n, self._tuples_named(source, groups))
            elif name == "gather" and groups[0][1].dim() == source.dim() and not self._valued(groups[0][1]):
                n = min(n, self._gathered_elements(source, *groups[0]))
            if name in ("index", "_unsafe_index"):
                # Whole along the axes no index names: those after them, and those sliced whole before
                # (`z[:, li, lj]`, DLRM's interaction: the pairs of every row of the batch).
                skipped = (size for d, size in enumerate(source.shape[: len(args[1])]) if args[1][d] is None)
                n *= math.prod(source.shape[len(args[1]) :]) * math.prod(skipped)
            bytes_ = min(full, n * source.element_size()) if groups[0][1].dtype != torch.bool else full
            values = None
            if self._valued(groups[0][1]) and name in ("take", "gather") and groups[0][1].dtype != torch.bool:
                values = ("flat", _flat_positions(source, groups[0][0], groups[0][1]))
            elif len(groups) == 1 and groups[0][0] == 0 and self._valued(groups[0][1]):
                kept = _masked_positions(source, groups[0][1])  # a bool mask on data: what it keeps
                if kept is not None:
                    bytes_, values = kept.numel() * source.element_size(), ("flat", kept)
            read = _Read(
                _key(source),
                sig,
                full,
                rows=(None, source.element_size(), bytes_ / source.element_size(), values),
            )
            read.lines = self._lines_gathered(name, source, groups, args)
            if name in ("index", "_unsafe_index") and all(i.dtype != torch.bool for _, i in groups):
                read.axes = frozenset(d for d, i in groups if not self._spans_axis(i, source.shape[d]))
            return [read]
        dim, index = groups[0]
        positions = index if vector is None else vector
        size = source.shape[dim] if source.dim() else 1
        row_bytes = full / size * share if size else 0
        values = positions.reshape(-1).to(torch.int64) % max(size, 1) if self._valued(index) else None
        wraps = name in ("index", "_unsafe_index")
        estimate = self._named(index, positions.numel(), size, wraps=wraps)
        read = _Read(_key(source), sig, full, rows=(dim, row_bytes, estimate, values))
        r = self.range_of(index)
        if values is None and isinstance(r, value_range.Drawn):
            n = positions.numel()
            most = min(n, size, self._index_values(index))
            lookups, drawn_values = _landing(n, r, size, wraps)
            read.drawn = _Drawn(
                (_key(positions), _signature(positions)),
                r.draws,
                r.per_row,
                r.extra,
                min(size, drawn_values),
                lookups,
                most,
            )
        if source.dim() >= 2 and dim < source.dim() - 1 and share == 1.0:
            # Positions along an axis before the last take whole rows: every row under each of them, for
            # every position of the axes before it (`y[:, kept]` of a batch of token rows).
            read.lines = (
                "rows",
                estimate * math.prod(source.shape[:dim]) * math.prod(source.shape[dim + 1 : -1]),
            )
        elif source.dim() >= 2 and dim == source.dim() - 1 and vector is None:
            read.lines = ("columns", estimate)  # positions along the last axis, in every row
        if index.dtype != torch.bool and (vector is not None or name != "gather"):
            read.axes = frozenset({dim})
        return [read]

    def _ask_positions(self, index: Any) -> None:
        """On meta, where a gather's positions are an input the entry point makes, of integers no draws
        describe (beam origins, token ids with a block of image tokens): how many distinct rows they name
        is their values', so they are read on data (a small tensor: traced at full size, the large ones on
        meta), where on meta every lookup would count a row of its own."""
        if (
            not self.made_indices
            or self.with_data
            or not self.small_values
            or not isinstance(index, torch.Tensor)
            or _key(index) not in self.made_indices
            or index.dtype == torch.bool
            or isinstance(self.range_of(index), value_range.Drawn)
        ):
            return
        if 1 < index.numel() and index.numel() * index.element_size() <= MIXED_BYTES:
            raise _SmallValues("the positions of a gather are integers the entry point makes")

    def _spans_axis(self, index: torch.Tensor, size: int) -> bool:
        """Whether an index tensor is an arange over all of an axis of `size` (`[torch.arange(n), labels]`
        keeps every row)."""
        start, step = self.aranges.get(_key(index), (None, None))
        return start == 0 and step == 1 and index.dim() == 1 and index.numel() == size

    def _picked_reads(self, name: str, args: tuple, kwargs: dict) -> _Read:
        """What a picking loss reads of its (log-)probabilities. `nll_loss` (and `cross_entropy` through it)
        reads one class of each row where the classes are the last axis, the target's (none where it is
        `ignore_index`, known on data); `_ctc_loss` reads, at each step of each sequence up to its input
        length, the blank and the classes of its labels (on data, its distinct labels; else as many as it
        has labels, up to the classes)."""
        source, target = args[0], args[1]
        element = source.element_size()
        if name == "_ctc_loss":
            steps, batch, classes = source.shape
            lengths, label_lengths = args[2], args[3]
            if all(
                self._valued(t) or not isinstance(t, torch.Tensor) for t in (target, lengths, label_lengths)
            ):
                lengths = [
                    int(v) for v in (lengths.tolist() if isinstance(lengths, torch.Tensor) else lengths)
                ]
                counts = label_lengths.tolist() if isinstance(label_lengths, torch.Tensor) else label_lengths
                counts = [int(v) for v in counts]
                starts = [0, *itertools.accumulate(counts)]
                blank = int(args[4]) if len(args) > 4 else int(kwargs.get("blank", 0))
                n = 0.0
                for b in range(batch):
                    labels = (
                        target[b, : counts[b]] if target.dim() == 2 else target[starts[b] : starts[b + 1]]
                    )
                    n += min(lengths[b], steps) * len(set(labels.tolist()) | {blank})
            else:
                per_sequence = target.shape[-1] if target.dim() == 2 else target.numel() / max(batch, 1)
                n = float(steps * batch * min(classes, per_sequence + 1))
            read = _Read(_key(source), _signature(source), _unique_elements(source) * element)
            read.rows = (None, element, n, None)
            return read
        if source.dim() > 2:
            # Classes along axis 1 of an image or a sequence: a row-wise producer along that axis
            # (`log_softmax(x, 1)`, as `cross_entropy` makes) is not known to be demanded in every row
            # from picks, so the source counts whole, as for any op (errs high on a log-prob input).
            return _Read(_key(source), _signature(source), _unique_elements(source) * element)
        ignore = args[4] if len(args) > 4 else kwargs.get("ignore_index", -100)
        if source.dim() < 2:  # one sample: its classes along the only axis
            source, target = source.unsqueeze(0), target.reshape(1)
        index = target.unsqueeze(1)
        values = None
        n = float(target.numel())
        if self._valued(target):
            kept = (target != ignore).unsqueeze(1)
            positions = _flat_positions(source, 1, index.clamp(0, source.shape[1] - 1))
            values = ("flat", positions[kept.reshape(-1)])
            n = float(values[1].numel())
        elif not self.with_data and self.small_values and value_range.holds(self.range_of(target), ignore):
            # How many rows are ignored (the prompt's labels set to -100) decides which rows of the
            # log-probabilities, and of the logits before them, any kernel needs: read on data.
            why = f"the targets of {name} may hold its ignore_index ({ignore})"
            small = target.numel() * target.element_size() <= MIXED_BYTES
            raise _SmallValues(why) if small else _Undecided(why)
        read = _Read(_key(source), _signature(source), _unique_elements(source) * element)
        read.rows = (None, element, n, values)
        # One pick from each row whose target is not ignored: those rows, whole, of a row-wise producer.
        read.lines = ("lines", n) if values is not None and n < source.shape[0] else "all"
        return read

    def _named(
        self, index: torch.Tensor, n: int, size: int, *, most: bool = False, wraps: bool = True
    ) -> float:
        """How many distinct positions n lookups through `index` name along an axis of `size`: no more than
        the lookups, the axis, or the values its range holds; for uniform random draws, as many as draws
        repeat to (`value_range.distinct_drawn`: with `most`, at its upper side), of those that land on the
        axis (`_landing`)."""
        estimate = min(n, size, self._index_values(index))
        r = self.range_of(index)
        if isinstance(r, value_range.Drawn):
            lookups, values = (n, r.values) if most else _landing(n, r, size, wraps)
            drawn = value_range.distinct_drawn(lookups, r.per_row, min(size, values), most=most)
            estimate = min(estimate, drawn + r.extra)
        return estimate

    def _gathered_elements(self, source: torch.Tensor, dim: int, index: torch.Tensor) -> float:
        """How many distinct elements `gather(source, dim, index)` names, without values: in each line of
        the axes the index varies along (PointNet++'s batches), what its positions along `dim` can name,
        times the extent of the axes it is expanded along."""
        others = [a for a in range(index.dim()) if a != dim]
        spread = math.prod(index.shape[a] for a in others if self.repeats(index, a))
        lines = math.prod(index.shape[a] for a in others if not self.repeats(index, a))
        return lines * self._named(index, index.shape[dim], source.shape[dim]) * spread

    def _tuples_named(self, source: torch.Tensor, groups: list) -> float:
        """How many distinct tuples of positions several index tensors name together (`points[b, idx]`,
        PointNet++'s grouping): counted from their values on data; else no more than the product of what
        each names, and where one holds uniform random draws and the others are aranges (a batch index
        beside each batch's draws), that many draws per arange position, repeating as draws do."""
        shapes = torch.broadcast_shapes(*(i.shape for _, i in groups))
        lookups = math.prod(shapes)
        if all(self._valued(i) for _, i in groups):
            flat = torch.zeros((), dtype=torch.int64)
            for d, i in groups:
                flat = flat * source.shape[d] + i.to(torch.int64) % max(source.shape[d], 1)
            return float(torch.unique(flat.expand(shapes)).numel())
        named, drawn, structural = [], [], 1.0
        for d, i in groups:
            size = source.shape[d]
            count = self._named(i, i.numel(), size)
            r = self.range_of(i)
            if isinstance(r, value_range.Drawn):
                drawn.append((r, min(size, r.values)))
            elif _key(i) in self.aranges:
                structural *= count
            else:
                structural = math.inf
            named.append(count)
        estimate = min(float(lookups), math.prod(named))
        if len(drawn) == 1 and math.isfinite(structural) and structural >= 1:
            r, width = drawn[0]
            per_position = value_range.distinct_drawn(round(lookups / structural), r.per_row, width) + r.extra
            estimate = min(estimate, structural * per_position)
        return estimate

    def _lines_gathered(
        self, name: str, source: torch.Tensor, groups: list, args: tuple
    ) -> tuple | str | None:
        """The rows of `source` (all axes but the last) a gather addresses, where known without values, as
        "all" (every row of its view: `gather` along the last axis with an index of the source's leading
        shape), ("elements", n) (one element of each of n rows: `x[arange(n), ids]`), or ("rows", n) (n
        whole rows: indices on every axis but the last, `y[expert, slot]`)."""
        if source.dim() < 2:
            return None
        dim, index = groups[0]
        if name == "gather" and dim == source.dim() - 1 and index.shape[:-1] == source.shape[:-1]:
            return "all"
        last = source.dim() - 1
        if (
            name == "gather"
            and dim < last
            and index.dim() == source.dim()
            and index.shape[-1] == source.shape[-1]
            and self.repeats(index, last)
        ):
            # Positions along an axis before the last, expanded along it: whole rows (`h.gather(1,
            # ids[..., None].expand(-1, -1, C))`, the tokens kept of each image).
            rows = self._gathered_elements(source, dim, index) / max(source.shape[-1], 1)
            return "rows", min(rows, source.numel() // max(source.shape[-1], 1))
        if name not in ("index", "_unsafe_index"):
            return None
        n = max(i.numel() for _, i in groups)
        if len(groups) > 1 and groups[0][1].dtype != torch.bool:
            n = min(n, self._tuples_named(source, groups))
        if len(args[1]) == source.dim() - 1 and all(i is not None for i in args[1]):
            return "rows", min(n, source.numel() // source.shape[-1])
        if len(groups) == 2 and source.dim() == 2 and dim == 0:
            start, step = self.aranges.get(_key(index), (None, None))
            if step and index.dim() == 1:
                return "elements", min(index.numel(), source.shape[0])
        return None

    def _index_values(self, index: torch.Tensor) -> float:
        """How many distinct values an index tensor can hold: the width of its range where one is known
        (random integer inputs are drawn from a small range), else unbounded."""
        r = self.range_of(index)
        if r is None or r[2] or index.is_floating_point() or index.dtype == torch.bool:
            return math.inf
        lo, hi, _ = r
        return math.inf if math.isinf(lo) or math.isinf(hi) else max(math.floor(hi) - math.ceil(lo) + 1, 0)

    def _valued(self, t: torch.Tensor) -> bool:
        """Whether `t` holds the values a run on data would give it."""
        return self.with_data and t.device.type != "meta" and _key(t) not in self.stale

    def _arithmetic(self, op: _Op, name: str, args: tuple, kwargs: dict, ins: list, outs: list) -> None:
        if name in _PRODUCT_MACS:
            added = name.startswith(("add", "baddbmm"))  # (self, a, b): the product added to self
            a, b = (args[1], args[2]) if added else (args[0], args[1])
            k = a.shape[-1] if a.dim() else 1
            if a.dtype == getattr(torch, "float4_e2m1fn_x2", None):
                k *= 2  # two fp4 values per stored element
            op.macs = float(outs[0].numel()) * k if name not in ("dot", "vdot") else float(a.numel())
            if name.startswith("addbmm"):
                op.macs = float(a.shape[0]) * a.shape[1] * a.shape[2] * b.shape[2]
            elif name in ("bmm", "baddbmm"):
                op.shared = self._batch_repeats(a, b)
                op.macs /= op.shared
            op.precision = self._operand_precision(a, b)
            return
        if name in _FUSED_PRODUCTS:
            # Weight-only quantized (activations x packed weights) and grouped products: each result element
            # a dot product along the activations' last axis, and in a grouped product of two matrices
            # (groups along that axis, `offs`) each group's result element along its share of it.
            a, b = args[0], args[1]
            k = a.shape[-1] * (2 if a.dtype == getattr(torch, "float4_e2m1fn_x2", None) else 1)
            n = outs[0].numel()
            if "grouped" in name and a.dim() == 2 and b.dim() == 2 and outs[0].dim() == 3:
                n //= outs[0].shape[0]
            op.macs = float(n) * k
            op.precision = self._operand_precision(a, b)
            return
        if name in _ATTENTION_KERNELS:
            # SDPA reached below its Python entry (inside `F.multi_head_attention_forward`, on data, or called
            # by name): the backend kernel. A mask it is given counts in full. Its backward recomputes the
            # scores and makes dV = PᵀdO, dP = dO Vᵀ, dQ = dS K and dK = dSᵀQ: five products to the forward's two.
            bound = _bound_arguments(name, args, kwargs)
            q, k, v = bound["query"], bound["key"], bound["value"]
            length, source = q.shape[-2], k.shape[-2]
            pairs = (
                band.diagonal(hi=0).positions(length, source) if bound.get("is_causal") else length * source
            )
            per_pair = q.shape[-1] + v.shape[-1]
            if name.endswith("_backward"):
                per_pair = 3 * q.shape[-1] + 2 * v.shape[-1]
            op.macs = float(math.prod(q.shape[:-2])) * pairs * per_pair
            op.precision = self._operand_precision(q, k)
            return
        factored = _factored(name, args, kwargs)
        if factored is not None:
            position, _, per_matrix = factored
            matrix = args[position]
            op.macs = float(math.prod(matrix.shape[:-2])) * per_matrix
            op.precision = self._operand_precision(matrix, matrix)
            return
        if name == "_trilinear" and len(args) > 6:
            # `F.bilinear`: (i1, i2, i3, expand1, expand2, expand3, sumdim, ...), each operand unsqueezed at
            # its expand axes; i1 x i2 summed over the axes i3 lacks, then x i3 over the rest, as an einsum
            # of the three taken left to right.
            shapes = []
            for t, expand in zip(args[:3], args[3:6], strict=True):
                shape = list(t.shape)
                for d in sorted(expand):
                    shape.insert(d, 1)
                shapes.append(shape)
            summed = set(args[6])
            first = [max(a, b) for a, b in zip(shapes[0], shapes[1], strict=True)]
            kept = [d for d in range(len(first)) if not (d in summed and shapes[2][d] == 1)]
            op.macs = float(math.prod(first)) + float(math.prod(max(first[d], shapes[2][d]) for d in kept))
            op.precision = self._operand_precision(args[0], args[1])
            return
        if name in ("_cdist_forward", "_euclidean_dist"):
            # One product per coordinate of each pair: a p = 2 kernel computes them as a matrix product.
            op.macs = float(outs[0].numel()) * args[0].shape[-1]
            op.precision = self._operand_precision(args[0], args[1])
            return
        if name in ("convolution", "_convolution", "cudnn_convolution", "mkldnn_convolution"):
            x, w = args[0], args[1]
            transposed = bool(args[6]) if len(args) > 6 else False
            taps = math.prod(w.shape[2:])
            # weight is (C_out, C_in/groups, k...) or, transposed, (C_in, C_out/groups, k...)
            op.macs = float(x.numel() if transposed else outs[0].numel()) * w.shape[1] * taps
            op.precision = self._operand_precision(x, w)
            return
        if name == "convolution_backward":
            # (grad_output, input, weight, bias_sizes, stride, padding, dilation, transposed, output_padding,
            # groups, output_mask): the input and the weight gradient each take the forward's products.
            grad, x, w = args[0], args[1], args[2]
            transposed = bool(args[7]) if len(args) > 7 else False
            forward = float(x.numel() if transposed else grad.numel()) * w.shape[1] * math.prod(w.shape[2:])
            mask = args[10] if len(args) > 10 else (True, True, True)
            op.macs = forward * sum(bool(m) for m in mask[:2])
            op.precision = self._operand_precision(grad, w)
            return
        if name in _FFT:
            n = (
                math.prod(args[0].shape[d] for d in args[1])
                if isinstance(args[1], list | tuple)
                else args[0].numel()
            )
            op.flops = 5.0 * max(ins[0].numel(), outs[0].numel()) * math.log2(max(n, 2))
            return
        if name in _NO_FLOPS or _is_factory(name):
            return
        if name in _REDUCTIONS:
            op.flops = float(max((t.numel() for t in ins), default=0))
            return
        op.flops = float(max((t.numel() for t in outs), default=0))

    def _fp4_table(self, t: Any) -> bool:
        """Whether `t` is a small table of FP4 values (every one of E2M1's), made from Python numbers on meta
        or known on data: what a lookup in it by 4-bit codes gives are FP4 operands (vLLM's NVFP4 decode,
        `lut[(q & 0xF).long()]` of uint8 codes), as `float4_e2m1fn_x2` ones would be."""
        if not isinstance(t, torch.Tensor) or not t.is_floating_point() or not 0 < t.numel() <= 256:
            return False
        values = self.tables.get(_key(t))
        if values is None and t.device.type != "meta" and _key(t) not in self.stale:
            with torch._C.DisableTorchFunction():
                values = t.detach().reshape(-1).tolist()
        return values is not None and all(v in _E2M1 for v in values)

    def _operand_precision(self, a: torch.Tensor, b: torch.Tensor) -> str:
        classes = [self.tags.get(_key(t)) or _precision(t.dtype) for t in (a, b)]
        for q in QUANTIZED:
            if q in classes:
                return q
        order = ("int8", "fp16", "bf16", "tf32", "fp32", "fp64")
        ranked = [c for c in order if c in classes]
        return ranked[-1] if ranked else classes[0]

    def _propagate_tag(self, ins: list, outs: list, name: str = "") -> None:
        """Quantized provenance survives views, casts and scaling by a smaller (broadcast) tensor; the result
        of a contraction is a sum of products at full precision, whatever its operands were."""
        if not outs or name in _CONTRACTING:
            return
        tagged = [(self.tags.get(_key(t)) or _provenance_of(t.dtype), t) for t in ins]
        if name == "_to_copy" and ins[0].dtype == torch.uint8:
            # uint8 values cast to a float (not bits reinterpreted, nor codes looked up): an integer tensor
            # core multiplies unsigned 8-bit operands as it does signed ones.
            tagged[0] = ("int8", ins[0])
        tagged = [(tag, t) for tag, t in tagged if tag]
        if not tagged:
            return
        tag, source = tagged[0]
        big = max(o.numel() for o in outs)
        others = [t for t in ins if t is not source]
        if (
            name
            and name not in ("_to_copy", "clone", "contiguous", "copy_")
            and any(self._distinct(t) >= big for t in others)
        ):
            return
        for o in outs:
            if o.is_floating_point():
                self.tags[_key(o)] = tag


def _leaves(tree: Any) -> list:
    """The leaves of nested tuples and lists (ATen arguments nest no deeper, and hold no dicts): far
    cheaper than a pytree flatten, which costs more than most ops on small tensors."""
    if not isinstance(tree, list | tuple):
        return [tree]
    out = []
    stack = [iter(tree)]
    while stack:
        for v in stack[-1]:
            if isinstance(v, list | tuple):
                stack.append(iter(v))
                break
            out.append(v)
        else:
            stack.pop()
    return out


def _stand_in(func: Any, name: str, args: tuple, kwargs: dict) -> torch.Tensor:
    """The result of a contraction with the right shape and dtype, filled with seeded noise instead of
    computed: on data, only control flow needs values, and a CPU matmul of a full workload costs seconds
    (a `_scaled_mm` on fp4 operands does not run on a CPU at all). Noise keeps value-driven choices such
    as top-k routing as varied as real activations make them."""
    device = next(t.device for t in _leaves((args, tuple(kwargs.values()))) if isinstance(t, torch.Tensor))
    product = None if name == "_scaled_mm" else _product_shape(func, args, kwargs)  # (a plain matrix product)
    if name == "_scaled_mm":
        a, b = args[0], args[1]
        # _scaled_mm(self, mat2, scale_a, scale_b, bias, scale_result, out_dtype, use_fast_accum)
        dtype = kwargs.get("out_dtype") or (args[6] if len(args) > 6 and args[6] is not None else a.dtype)
        if dtype.itemsize < 2 or not dtype.is_floating_point:
            dtype = torch.bfloat16
        shape = (a.shape[0], b.shape[1])
    elif product is not None:
        shape, dtype = product, args[-2].dtype if name in ("addmm", "baddbmm") else args[0].dtype
    else:
        meta = func(*[a.to("meta") if isinstance(a, torch.Tensor) else a for a in args], **kwargs)
        shape, dtype = meta.shape, meta.dtype
    if device.type == "meta":
        return torch.empty(shape, dtype=dtype, device=device)
    out = noise(tuple(shape), dtype, math.prod(shape))
    if product is not None and dtype.is_floating_point:
        # At the scale the product has: a sum of K products of its operands' values. A gate whose logits
        # saturate on random inputs (a sigmoid of a 7168-long sum) then saturates here too, and its
        # routing follows what decides it in the evaluation (a correction bias), not unit noise.
        first = _PRODUCTS[func]
        a, b = args[first], args[first + 1]
        scale = math.sqrt(a.shape[-1]) * _rms(a) * _rms(b)
        if math.isfinite(scale):
            out.mul_(scale)
        if first:
            out.add_(args[0])
    return out


def _rms(t: torch.Tensor) -> float:
    """The root mean square of a CPU tensor's values, from every k-th position along each axis, k such that
    64 or more of each of its last two axes and 8 of the others remain (a view, so that a large weight is
    not copied)."""
    picks = tuple(
        slice(None, None, max(1, n // (64 if d >= t.dim() - 2 else 8))) for d, n in enumerate(t.shape)
    )
    sample = t[picks] if picks else t
    return float(sample.double().square().mean().sqrt()) if sample.numel() else 0.0


_PRODUCTS = {
    torch.ops.aten.mm.default: 0,
    torch.ops.aten.bmm.default: 0,
    torch.ops.aten.addmm.default: 1,
    torch.ops.aten.baddbmm.default: 1,
}


# Result layouts of ops run on meta tensors, by the op and its arguments' layouts and values: running an op
# on meta costs more than recording it (torch's meta kernels are Python for most ops), and the same op on
# the same layouts recurs across a problem's workloads (its const-size weights) and in loops.
_META_RESULTS: dict[tuple, tuple] = {}
_META_RESULTS_MAX = 1 << 16


def _on_meta_cached(func: Any, args: tuple, kwargs: dict) -> Any:
    """`func(*args, **kwargs)` on meta tensors, with fresh results of a known layout made directly."""
    key = _meta_key(func, args, kwargs) if _cacheable(func) else None
    if key is None:
        return func(*args, **kwargs)
    known = _META_RESULTS.get(key)
    if known is not None:
        made = [
            torch.empty_strided(shape, stride, dtype=dtype, device="meta")
            for shape, stride, dtype in known[1]
        ]
        return made[0] if known[0] else tuple(made)
    out = func(*args, **kwargs)
    single = isinstance(out, torch.Tensor)
    outs = (out,) if single else out
    if (
        isinstance(outs, tuple | list)
        and all(
            isinstance(t, torch.Tensor) and t.device.type == "meta" and t.storage_offset() == 0 for t in outs
        )
        # Some ops return their input's storage without saying so in their schema (`_unsafe_view`).
        and len(keys := {_key(t) for t in outs}) == len(outs)
        and not keys & {_key(t) for t in _tensor_args(args, kwargs)}
    ):
        if len(_META_RESULTS) >= _META_RESULTS_MAX:
            _META_RESULTS.clear()
        _META_RESULTS[key] = (single, tuple((tuple(t.shape), t.stride(), t.dtype) for t in outs))
    return out


def _over_mixed(out: Any) -> bool:
    return sum(t.numel() * t.element_size() for t in _tensors(out)) > MIXED_BYTES


def _may_grow(func: Any, tensors: list[torch.Tensor]) -> bool:
    """Whether an op of CPU tensors may make one over MIXED_BYTES: a pointwise op makes its operands'
    broadcast shape (at most 8 bytes an element); any other is asked on meta."""
    if not _elementwise(func):
        return True
    try:
        shape = torch.broadcast_shapes(*(t.shape for t in tensors))
    except RuntimeError:
        return True
    return math.prod(shape) * 8 > MIXED_BYTES


@functools.cache
def _elementwise(func: Any) -> bool:
    """Pointwise ops, copies and pads: each result element comes from the operands' elements at its place."""
    return func.overloadpacket.__name__ in _ALIGNED or torch.Tag.pointwise in func.tags


@functools.cache
def _cacheable(func: Any) -> bool:
    """Ops whose every result is a fresh tensor: no view, no in-place or out= write, no alias returned."""
    schema = func._schema
    return not (
        func.is_view
        or any(r.alias_info is not None for r in schema.returns)
        or any(a.alias_info is not None for a in schema.arguments)
    )


def _meta_key(func: Any, args: tuple, kwargs: dict) -> tuple | None:
    """The op with the layout of each tensor argument and every other argument's type and value; None where
    an argument is a tensor off the meta device (its values may decide the result) or of another kind."""
    key: list = [func]
    stack = [iter((args, tuple(sorted(kwargs.items()))))]
    while stack:
        for v in stack[-1]:
            if isinstance(v, torch.Tensor):
                if v.device.type != "meta":
                    return None
                key.append((tuple(v.shape), v.stride(), v.dtype))
            elif isinstance(v, list | tuple):
                key.append(len(v))
                stack.append(iter(v))
                break
            elif v is None or isinstance(
                v, bool | int | float | str | torch.dtype | torch.device | torch.layout | torch.memory_format
            ):
                key.append((type(v), v))
            else:
                return None
        else:
            stack.pop()
            key.append(")")
    return tuple(key)


def _product_shape(func: Any, args: tuple, kwargs: dict) -> tuple[int, ...] | None:
    """The result shape of a plain (batched) matrix product, without running it on the meta device (a
    quarter of the time of a data trace of a loop of small products); None for anything else, including
    operands that do not fit (the meta run raises for those as the op would)."""
    first = _PRODUCTS.get(func)
    if first is None or kwargs or len(args) != first + 2:
        return None
    a, b = args[first], args[first + 1]
    dims = 2 if func in (torch.ops.aten.mm.default, torch.ops.aten.addmm.default) else 3
    if a.dtype != b.dtype or a.dim() != dims or b.dim() != dims or a.shape[-1] != b.shape[-2]:
        return None
    if a.dim() == 3 and a.shape[0] != b.shape[0]:
        return None
    if first and not _broadcasts(args[0].shape, (*a.shape[:-1], b.shape[-1])):
        return None
    return (*a.shape[:-1], b.shape[-1])


def _broadcasts(shape: tuple[int, ...], to: tuple[int, ...]) -> bool:
    if len(shape) > len(to):
        return False
    return all(s in (1, t) for s, t in zip(reversed(shape), reversed(to), strict=False))


def _index_add(name: str, args: tuple, kwargs: dict) -> torch.Tensor:
    """`index_add(_)` as an accumulating `index_put_`: the same sums, and on a CPU a thousand times
    faster for a few rows (torch's CPU index_add costs time in proportion to the whole destination)."""
    target, dim, index, source = args[:4]
    alpha = kwargs.get("alpha", args[4] if len(args) > 4 else 1)
    if name == "index_add":
        target = target.clone()
    dim %= target.dim()
    values = source if alpha == 1 else source * alpha
    target.movedim(dim, 0).index_put_((index,), values.movedim(dim, 0), accumulate=True)
    return target


def _is_factory(name: str) -> bool:
    """Ops that create a tensor without computing on inputs."""
    return name.endswith("_like") or name.startswith(("empty", "zeros", "ones", "full", "rand", "arange"))


# A fill at or below this is masked out by a softmax or exponential (whose float32 result underflows to 0).
_MASKED = -1e4


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _nonzero(v: Any) -> bool:
    """Whether a known fill value is nonzero (True for a bool mask)."""
    return v is True or _number(v) and v != 0


def _finite_nonzero(v: Any) -> bool:
    """Whether a known fill value is a finite number other than zero (True for a bool mask)."""
    return _nonzero(v) and (v is True or math.isfinite(v))


def _fill_value(name: str, args: tuple) -> Any:
    """The value a constant factory fills with, or None where it is not a Python number."""
    if name in ("ones", "ones_like", "new_ones"):
        return 1
    if name in ("zeros", "zeros_like", "new_zeros", "zero_"):
        return 0
    position = {"full": 1, "full_like": 1, "fill_": 1, "new_full": 2, "scalar_tensor": 0}[name]
    value = args[position] if len(args) > position else None
    return value if isinstance(value, int | float | bool) else None


_ORDERS = {"lt", "le", "gt", "ge"}
_FLIPPED = {"lt": "gt", "le": "ge", "gt": "lt", "ge": "le"}
# The integers each dtype holds exactly, up to (not including) this magnitude.
_EXACT_INTEGERS = {torch.float32: 2**24, torch.float64: 2**53, torch.int32: 2**31, torch.int64: 2**63}
_MASK_TRANSFORMS = {"bitwise_not", "logical_not", "_to_copy", "clone", "eq", "ne", "rsub", "mul", "mul_"}
_MASK_COMBINERS = set(
    "bitwise_and bitwise_and_ logical_and logical_and_ bitwise_or bitwise_or_ logical_or logical_or_ "
    "mul mul_ add add_".split()
)


def _transformed_mask(name: str, args: tuple, source: tuple, dtype: torch.dtype | None) -> tuple | None:
    """(region, inside) of a mask (`inside` on a band, zero elsewhere) after a negation, a cast or a
    comparison with zero or with `inside`; None where the result is no such mask."""
    inside, region = source
    nonzero = _nonzero(inside)
    if name in ("_to_copy", "clone"):
        if inside is None:
            return None
        if dtype == torch.bool:
            return region, bool(inside)
        return region, float(inside) if dtype is not None and dtype.is_floating_point else inside
    if not nonzero:
        return None
    if name in ("bitwise_not", "logical_not"):
        return ~region, True
    number = args[1] if len(args) > 1 and (_number(args[1]) or isinstance(args[1], bool)) else None
    if name == "rsub" and _number(number) and _number(inside) and number == inside and len(args) == 2:
        return ~region, number  # c - m: zero where m is c, c where m is zero (HF's `1.0 - mask`)
    if name in ("mul", "mul_") and _number(number) and _number(inside) and number != 0:
        return region, inside * number  # (1.0 - mask) * finfo.min
    if number is not None and number == 0 and name in ("eq", "ne"):
        return (~region, True) if name == "eq" else (region, True)
    if number is not None and inside is not None and number == inside and name in ("eq", "ne"):
        # Compared with its own value: `tril(ones) == 1` (HF's TransfoXL), `mask == True`.
        return (region, True) if name == "eq" else (~region, True)
    return None


def _coverage(region: band.Region | None, t: torch.Tensor) -> tuple[float, float] | None:
    """The shares of the rows and of the columns of `t`'s last two axes that hold a position of `region`."""
    return _coverage_of(region, *_matrix_shape(t))


def _coverage_of(region: band.Region | None, rows: int, cols: int) -> tuple[float, float] | None:
    if region is None or not rows * cols:
        return None
    return region.rows_kept(rows, cols) / rows, region.columns_kept(rows, cols) / cols


def _one_index(name: str, args: tuple) -> tuple[Any, Any] | None:
    """(axis, index) of an op that indexes one axis of its first argument: `index` or `index_put_` with one
    index tensor among Nones, `index_select` or `index_copy_` (dim, index); None for any other."""
    if name in ("index", "index_put_"):
        named = [(d, i) for d, i in enumerate(args[1]) if i is not None] if len(args) > 1 else []
        return named[0] if len(named) == 1 and isinstance(args[1], list | tuple) else None
    if name in ("index_select", "index_copy_") and len(args) > 2:
        return args[1], args[2]
    return None


def _matrix_shape(t: torch.Tensor) -> tuple[int, int]:
    """The (rows, columns) of a tensor's last two axes; a vector is one row."""
    return (t.shape[-2], t.shape[-1]) if t.dim() >= 2 else (1, t.shape[-1] if t.dim() else 1)


def _rounded(value: float, dtype: torch.dtype) -> float:
    """A Python number as a tensor of `dtype` holds it."""
    with torch._C.DisableTorchFunction():
        return torch.tensor(value, dtype=torch.float64).to(dtype).item()


def _tiled(region: band.Region, rows: int, cols: int, down: int, across: int) -> band.Region:
    """The region of a rows x cols mask tiled `down` times along its rows and `across` along its columns."""
    tiles = [
        region.shifted(j * cols, i * rows)
        & band.rows(i * rows, (i + 1) * rows - 1)
        & band.columns(j * cols, (j + 1) * cols - 1)
        for i in range(down)
        for j in range(across)
    ]
    return functools.reduce(operator.or_, tiles)


def _row_blocks(intervals: list[tuple[int, int] | None]) -> band.Blocks | None:
    """The region holding, in each row i, the columns intervals[i] = (first, last) (None: none), as
    rectangles, the neighbouring rows of one interval in one; None past `_MAX_BLOCKS` rectangles."""
    rects: list[tuple[int, int, int, int]] = []
    for row, interval in enumerate(intervals):
        if interval is None:
            continue
        if rects and rects[-1][1] == row - 1 and rects[-1][2:] == interval:
            rects[-1] = (rects[-1][0], row, *interval)
        else:
            rects.append((row, row, *interval))
    return band.Blocks(tuple(rects)) if len(rects) <= _MAX_BLOCKS else None


def _rectangle_of(
    view: torch.Tensor, row_stride: int, col_stride: int, rows: int, cols: int
) -> tuple[int, int, int, int] | None:
    """The rows and columns (first row, last row, first column, last column) that a view holds of the
    matrices of a storage laid out row by row (`rows` x `cols`, columns adjacent, the matrices one after
    another), the same in each matrix it meets; None where the view is not such a rectangle."""
    span = rows * cols
    if col_stride != 1 or row_stride != cols or not span or not view.numel():
        return None
    local = view.storage_offset() % span
    r0, c0, height, width = local // cols, local % cols, 1, 1
    for size, stride in zip(view.shape, view.stride(), strict=True):
        if size == 1 or stride % span == 0:
            continue
        if stride == 1 and width == 1:
            width = size
        elif stride == cols and height == 1:
            height = size
        else:
            return None
    if r0 + height > rows or c0 + width > cols:
        return None
    return r0, r0 + height - 1, c0, c0 + width - 1


def _axes_over_one(t: torch.Tensor) -> tuple:
    return tuple((n, st) for n, st in zip(t.shape, t.stride(), strict=True) if n > 1)


def _matrix_layout(t: torch.Tensor) -> tuple[int, int, int]:
    rows, cols = _matrix_shape(t)
    return rows, cols, t.stride(-1) if t.dim() and cols > 1 else 1


def _diagonal_band(name: str, bound: float, direction: int, made: Callable = band.diagonal) -> band.Region:
    """Where direction * x OP bound holds, for integer x: the offset j - i, or with `made`, the column j
    (`band.columns`) or the row i (`band.rows`)."""
    if direction < 0:
        name, bound = _FLIPPED.get(name, name), -bound
    if name in ("eq", "ne"):
        point = made(bound, bound) if bound == int(bound) else made(1, 0)
        return point if name == "eq" else ~point
    return {
        "lt": made(hi=math.ceil(bound) - 1),
        "le": made(hi=math.floor(bound)),
        "gt": made(lo=math.floor(bound) + 1),
        "ge": made(lo=math.ceil(bound)),
    }[name]


def _absolute_band(
    name: str, constant: float, direction: int, bound: float, made: Callable = band.diagonal
) -> band.Region | None:
    """Where |constant + direction * x| OP bound holds (x as for `_diagonal_band`): an interval about
    -constant * direction (lt, le) or everything outside one (gt, ge)."""
    centre = -constant * direction
    if name in ("lt", "ge"):
        interval = made(math.floor(centre - bound) + 1, math.ceil(centre + bound) - 1)
    elif name in ("le", "gt"):
        interval = made(math.ceil(centre - bound), math.floor(centre + bound))
    else:
        return None
    return interval if name in ("lt", "le") else ~interval


def _masked_positions(source: torch.Tensor, mask: torch.Tensor) -> torch.Tensor | None:
    """Linear positions of the elements `source[mask]` takes, for a bool mask over its leading axes (None
    for one that does not fit them, or that keeps too many elements to list)."""
    k = mask.dim()
    if mask.dtype != torch.bool or k > source.dim() or tuple(mask.shape) != tuple(source.shape[:k]):
        return None
    inner = math.prod(source.shape[k:])
    rows = mask.reshape(-1).nonzero().reshape(-1)
    if rows.numel() * inner > 1 << 24:
        return None
    return (rows[:, None] * inner + torch.arange(inner)).reshape(-1)


def _flat_positions(source: torch.Tensor, dim: int, index: torch.Tensor) -> torch.Tensor:
    """Linear positions that `gather(source, dim, index)` (or `take`) addresses."""
    if dim == -1:
        return index.reshape(-1).to(torch.int64)
    grids = torch.meshgrid(*[torch.arange(n) for n in index.shape], indexing="ij")
    coords = [g if d != dim else index.to(torch.int64) for d, g in enumerate(grids)]
    strides = torch.tensor([math.prod(source.shape[d + 1 :]) for d in range(source.dim())])
    return sum(c.reshape(-1) * s for c, s in zip(coords, strides, strict=True))


def _factored(name: str, args: tuple, kwargs: dict) -> tuple[int, bool, float] | None:
    """Of a dense factorization or solve: the position of the matrix it factors, whether it reads only a
    triangle of it (the other is never read: a Cholesky factor, a symmetric matrix), and the MACs of the
    standard dense algorithm per matrix (half its flops; for eigen- and singular value problems the
    reduction to tridiagonal or bidiagonal form alone, which every dense method does first). None for
    any other op. `k` is the number of right-hand sides of a solve."""
    if name not in _FACTORIZATIONS or not args or not isinstance(args[0], torch.Tensor):
        return None
    position, triangle = _FACTORIZATIONS[name]
    matrix = args[position]
    if not isinstance(matrix, torch.Tensor) or matrix.dim() < 2:
        return None
    m, n = matrix.shape[-2], matrix.shape[-1]
    rhs = args[_SOLVES[name]] if name in _SOLVES and len(args) > _SOLVES[name] else None
    k = rhs.numel() / max(math.prod(rhs.shape[:-2]), 1) / max(n, 1) if isinstance(rhs, torch.Tensor) else 0
    small, large = min(m, n), max(m, n)
    macs = {
        "linalg_cholesky_ex": n**3 / 6,
        "cholesky": n**3 / 6,
        "cholesky_inverse": n**3 / 3,
        "cholesky_solve": n * n * k,
        "linalg_solve_triangular": n * n * k / 2,
        "triangular_solve": n * n * k / 2,
        "_linalg_solve_ex": n**3 / 3 + n * n * k,
        "linalg_lu_solve": n * n * k,
        "linalg_inv_ex": n**3,
        "_linalg_eigh": 2 * n**3 / 3,
        "linalg_eig": 5 * n**3 / 3,
        "_linalg_svd": large * small**2 - small**3 / 3,
        "linalg_qr": large * small**2 - small**3 / 3,
    }.get(name, n**3 / 3)  # an LU factorization: determinants, lu_factor
    return position, triangle, float(macs)


# Dense factorizations and solves: the argument that is the matrix factored, and whether only its triangle
# is read (`_factored`).
_FACTORIZATIONS = {
    "linalg_cholesky_ex": (0, True),
    "cholesky": (0, True),
    "cholesky_inverse": (0, True),
    "cholesky_solve": (1, True),
    "linalg_solve_triangular": (0, True),
    "triangular_solve": (1, True),
    "_linalg_eigh": (0, True),
    "_linalg_solve_ex": (0, False),
    "linalg_lu_solve": (0, False),
    "linalg_inv_ex": (0, False),
    "_linalg_det": (0, False),
    "_linalg_slogdet": (0, False),
    "linalg_lu_factor_ex": (0, False),
    "linalg_lu": (0, False),
    "linalg_eig": (0, False),
    "_linalg_svd": (0, False),
    "linalg_qr": (0, False),
}
# Of those, the solves, and the position of their right-hand sides.
_SOLVES = {
    "cholesky_solve": 0,
    "linalg_solve_triangular": 1,
    "triangular_solve": 0,
    "_linalg_solve_ex": 1,
    "linalg_lu_solve": 2,
}


def _bound_arguments(name: str, args: tuple, kwargs: dict) -> dict[str, Any]:
    """The arguments of an ATen op with one overload, by their schema's names."""
    names = [arg.name for arg in getattr(torch.ops.aten, name).default._schema.arguments]
    return dict(zip(names, args, strict=False)) | kwargs


@functools.cache
def _written_arguments(func: Any) -> tuple[tuple[int, str, bool], ...]:
    """The position, name and keyword-only flag of each argument an op's schema says it writes."""
    return tuple(
        (i, arg.name, arg.kwarg_only)
        for i, arg in enumerate(func._schema.arguments)
        if arg.alias_info is not None and arg.alias_info.is_write
    )


# Backward ops that take a tensor for its shape alone (the pooling or loss input whose gradient they make).
_SHAPE_ONLY = dict.fromkeys(
    """max_pool2d_with_indices_backward max_pool3d_with_indices_backward avg_pool2d_backward avg_pool3d_backward
    nll_loss_backward nll_loss2d_backward _adaptive_avg_pool2d_backward _adaptive_avg_pool3d_backward""".split(),
    (1,),
)


def _unread_arguments(name: str, args: tuple) -> list[torch.Tensor]:
    """Tensor arguments an op does not read: those it takes for their shape (`_SHAPE_ONLY`), and of
    `convolution_backward` the input where the weight's gradient is not asked for and the weight where
    the input's is not (its `output_mask`)."""
    unread = [args[i] for i in _SHAPE_ONLY.get(name, ()) if i < len(args)]
    if name == "convolution_backward" and len(args) > 10:
        mask = args[10]
        unread += [t for t, asked in ((args[1], mask[1]), (args[2], mask[0])) if not asked]
    return [t for t in unread if isinstance(t, torch.Tensor)]


def _mutated(func: Any, args: tuple, kwargs: dict) -> list[torch.Tensor]:
    """The tensor arguments an op writes into (in-place self, out=)."""
    written = []
    for i, name, kwarg_only in _written_arguments(func):
        value = args[i] if i < len(args) and not kwarg_only else kwargs.get(name)
        if isinstance(value, torch.Tensor):
            written.append(value)
        elif isinstance(value, list | tuple):
            written.extend(v for v in value if isinstance(v, torch.Tensor))
    return written


def _precision(dt: torch.dtype) -> str:
    if dt.is_complex:  # the precision of its parts: complex64 multiplies float32s
        return _precision(dt.to_real())
    try:
        return of_torch(dt).precision
    except KeyError:
        return "fp32" if dt.is_floating_point or dt.is_complex else "int"


def _quantized_of(dt: torch.dtype) -> str | None:
    p = _precision(dt)
    return p if p in QUANTIZED else None


def _provenance_of(dt: torch.dtype) -> str | None:
    """The class a tensor of this dtype passes on through casts and scaling: a quantized one, or int8
    (values an int8 tensor core multiplies exactly; a product is int8 only where both operands are)."""
    p = _precision(dt)
    return p if p in QUANTIZED or p == "int8" else None


def _spelled_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attn_mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
) -> torch.Tensor:
    """`F.scaled_dot_product_attention` as the products, mask and softmax it stands for: a causal mask
    aligned top-left, a bool mask keeping where it is True, a float mask added, key and value heads
    repeated for grouped queries."""
    length, source = query.shape[-2], key.shape[-2]
    if enable_gqa and key.dim() >= 3 and key.shape[-3] != query.shape[-3]:
        groups = query.shape[-3] // key.shape[-3]

        def repeated(t: torch.Tensor) -> torch.Tensor:
            wide = t.unsqueeze(-3).expand(*t.shape[:-2], groups, *t.shape[-2:])
            return wide.reshape(*t.shape[:-3], t.shape[-3] * groups, *t.shape[-2:])

        key, value = repeated(key), repeated(value)
    factor = scale if scale is not None else query.shape[-1] ** -0.5
    scores = query @ key.transpose(-2, -1) * factor
    if is_causal:
        kept = torch.ones(length, source, dtype=torch.bool, device=query.device).tril()
        scores = scores.masked_fill(kept.logical_not(), float("-inf"))
    if attn_mask is not None and attn_mask.dtype == torch.bool:
        scores = scores.masked_fill(attn_mask.logical_not(), float("-inf"))
    elif attn_mask is not None:
        scores = scores + attn_mask
    weights = torch.softmax(scores, dim=-1)
    if dropout_p:
        weights = F.dropout(weights, dropout_p)
    return weights @ value


class _TorchFunctions(TorchFunctionMode):
    """What only the torch function level shows. `scaled_dot_product_attention` is counted as one op: the
    backend it would lower to on meta or CPU is an implementation detail, and only here is a causal mask
    visible (half the work can be skipped). And a constant made from Python numbers on the meta device
    (`torch.tensor(448.0, device=x.device)`) keeps its values' range, which no ATen op carries."""

    def __init__(self, recorder: _Recorder):
        super().__init__()
        self.recorder = recorder

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        if func in _CONSTANT_MAKERS and not self.recorder.with_data:
            out = func(*args, **kwargs)
            self._constant(out, args[0] if args else kwargs.get("data"))
            return out
        if func in _VALUE_READERS and self.recorder.stale and _key(args[0]) in self.recorder.stale:
            # These read memory without an ATen op the recorder would see.
            raise DataDependent(f"{func.__name__} reads values that were counted without data")
        if func in _VALUE_READERS and not self.recorder.suspended and args[0].device.type == "meta":
            raise DataDependent(f"the reference reads tensor values (Tensor.{func.__name__})")
        if func in _VALUE_READERS and not self.recorder.suspended and args[0].device.type != "meta":
            out = func(*args, **kwargs)
            # What it reads feeds control flow (`split(x, counts.tolist())`), as `.item()`: all of it needed.
            self.recorder._record(_SCALAR_READ, "_local_scalar_dense", (args[0],), {}, None)
            return out
        if func is torch.einsum and not self.recorder.suspended:
            return self._einsum(args, kwargs)
        if func in (torch.trace, torch.Tensor.trace) and not self.recorder.suspended and args:
            # One ATen op that reads its whole matrix; its result is the diagonal's sum, which is all a
            # kernel reads (and, of a product, all it computes).
            return torch.diagonal(args[0]).sum()
        if func is not F.scaled_dot_product_attention or self.recorder.suspended:
            return func(*args, **kwargs)
        names = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa")
        bound = dict(zip(names, args, strict=False)) | kwargs
        if torch.is_grad_enabled() and any(
            isinstance(t, torch.Tensor) and t.requires_grad for t in bound.values()
        ):
            # Differentiated: the backward autograd runs reads what the forward saved, so the forward is
            # spelled out as ops the recorder sees, and its backward counted as that of the spelled-out form.
            return _spelled_attention(**bound)
        if self._mask_not_as_one_op(bound.get("attn_mask"), bool(bound.get("is_causal"))):
            return _spelled_attention(**bound)
        self.recorder.suspended += 1
        try:
            out = func(*args, **kwargs)
        finally:
            self.recorder.suspended -= 1
        q, k, v, mask = bound["query"], bound["key"], bound["value"], bound.get("attn_mask")
        rec = self.recorder
        ins = [t for t in (q, k, v, mask) if isinstance(t, torch.Tensor)]
        for t in (*ins, out):
            rec._remember(t)
        length, source = q.shape[-2], k.shape[-2]
        pairs = float(length * source)
        attended = None  # the region of (query, key) pairs attended, where a mask gives it
        if bound.get("is_causal"):
            # Rows i attend to keys 0..i (+ the offset when source > length, as SDPA aligns top-left).
            attended = band.diagonal(hi=0)
            pairs = float(attended.positions(length, source))
        elif (made := rec._mask_entry(mask)) is not None:
            # A mask built in the reference: a bool one attends where it is True, a float one where it adds
            # no -inf.
            kept, inside, region = made
            if mask.dtype == torch.bool and _nonzero(inside):
                pairs *= 1.0 - kept
                attended = region
            elif mask.is_floating_point() and _number(inside) and inside <= _MASKED:
                pairs *= kept
                attended = ~region
        elif (
            isinstance(mask, torch.Tensor)
            and mask.dim() >= 2
            and rec.masked.get(_key(mask), (0, ""))[1] == "-inf"
        ):
            # A bias with -inf filled in by a mask (ALiBi made causal): attends where it is not -inf.
            kept, _, attended = rec.masked[_key(mask)]
            pairs *= kept
        # Queries are read where they attend to some key, keys and values where some query attends to them.
        shares = {}
        if attended is not None and length and source:
            shares[_key(q)] = attended.rows_kept(length, source) / length
            shares[_key(k)] = shares[_key(v)] = attended.columns_kept(length, source) / source
        batch = math.prod(q.shape[:-2])
        macs = batch * pairs * (q.shape[-1] + v.shape[-1])
        # Without a mask tensor or dropout, every query, key and value element reaches the output.
        dense = (
            mask is None
            and not bound.get("dropout_p")
            and not any(_key(t) in rec.blocks or _key(t) in rec.infinite for t in ins)
        )
        op = _Op(
            "scaled_dot_product_attention",
            [
                _Read(
                    _key(t),
                    _signature(t),
                    _unique_elements(t) * t.element_size() * shares.get(_key(t), 1.0),
                    necessary=dense,
                )
                for t in ins
            ],
            [(_key(out), _unique_elements(out) * out.element_size())],
            [_signature(out)],
            macs=macs,
            precision=rec._operand_precision(q, k),
            flops=batch * pairs * 5.0,
        )
        # The result as rows of queries: a query demanded needs its row of q, all of k (within its batch
        # and head) and the columns of v demanded (`sdpa(q, k, v)[:, :, -1]`, the last token of a prefill).
        op.matrix = (out.numel() // max(out.shape[-1], 1), out.shape[-1], out.element_size())
        for read, side in zip(op.reads, ("rows", "all", "columns"), strict=False):
            read.side = side
        if not dense:
            for tainted in (rec.zeros, rec.blocks, rec.infinite):
                tainted.add(_key(out))
        finite = not any(_key(t) in rec.infinite for t in (q, k))
        values = rec.range_of(v) if finite and not rec.with_data and not bound.get("dropout_p") else None
        if values is not None and (mask is None or bound.get("is_causal")) and out.is_floating_point():
            # Each output row is a weighted mean of rows of v (weights of a softmax of finite scores, every
            # row attending to some key): within v's range, as the spelled-out product's ranges give it.
            fitted = value_range.fit(values, out.dtype)
            if fitted is not None:
                rec.ranges[_key(out)] = (out.dtype, fitted)
        rec.ops.append(op)
        return out

    def _mask_not_as_one_op(self, mask: Any, causal: bool) -> bool:
        """Whether SDPA's mask is one the recorder follows only through the ops it stands for: a mask made
        in the reference whose region the one-op count cannot place on the scores' last two axes (a key
        padding mask of a length per request, `mask[:, None, None, :]`: its rows are the batch's)."""
        if not isinstance(mask, torch.Tensor) or causal:
            return False
        rec, key = self.recorder, _key(mask)
        if rec._mask_entry(mask) is not None:
            return False
        if mask.dim() >= 2 and rec.masked.get(key, (0, ""))[1] == "-inf":
            return False
        return key in rec.mask_of or key in rec.masked

    def _einsum(self, args: tuple, kwargs: dict) -> Any:
        """A contraction of an einsum whose operands repeat their values along an index (expanded, stride 0:
        `B` of one group broadcast to every head) makes the same products for each value of that index: they
        are counted once, as a kernel that computes them once and broadcasts the result does. An einsum of
        more than two operands is taken step by step, as torch contracts it (`_einsum_steps`)."""
        ops = self.recorder.ops
        start = len(ops)
        out = torch.einsum(*args, **kwargs)
        self._summed_over_unit_axes(args, out, ops[start:])
        steps = _einsum_steps(args, self.recorder.repeats)
        made = [op for op in ops[start:] if op.macs]
        # Each contracting step reaches ATen as one product, in the order of the steps (a mask may already
        # have cut its count); where the products recorded are not those steps, nothing is divided.
        fits = len(made) == len(steps) and all(
            op.macs <= m * (1 + 1e-9) for op, (m, _) in zip(made, steps, strict=True)
        )
        if fits:
            for op, (_, repeats) in zip(made, steps, strict=True):
                # (less what the batched product it reached ATen as has already counted once)
                if repeats % op.shared == 0:
                    op.macs /= repeats // op.shared
        return out

    def _summed_over_unit_axes(self, args: tuple, out: Any, made: list[_Op]) -> None:
        """An einsum that sums over indices all of size 1 (`hkl,hlv->hkv` with l = 1: an outer product
        written as a contraction, as a gated delta rule's state update is) reaches ATen as a broadcast
        multiply, which counts no MACs: the op that makes its result counts one MAC per output element,
        as the same product written with `@` (an `mm` with k = 1) does. An einsum that sums over nothing
        (`ij,ij->ij`, `k,v->kv`) stays elementwise."""
        form = _einsum_form(args)
        if form is None or not isinstance(out, torch.Tensor) or any(op.macs for op in made):
            return
        operands, summed = form
        if not summed or any(size != 1 for size in summed.values()):
            return
        key = _key(out)
        maker = next((op for op in reversed(made) if any(k == key for k, _ in op.writes)), None)
        if maker is None:
            return
        maker.macs = float(out.numel())
        maker.precision = self.recorder._operand_precision(*operands[:2])
        maker.flops = 0.0

    def _constant(self, out: Any, data: Any) -> None:
        if not isinstance(out, torch.Tensor) or out.device.type != "meta" or out.numel() > 4096:
            return
        r = value_range.of_data(data, out.dtype)
        if r is not None:
            key = self.recorder._remember(out)
            self.recorder.ranges[key] = (out.dtype, r)
            if out.numel() <= 256 and out.is_floating_point():
                self.recorder.tables[key] = torch.tensor(data, dtype=torch.float64).reshape(-1).tolist()


def _einsum_form(args: tuple) -> tuple[list[torch.Tensor], dict[str, int]] | None:
    """(operands, {summed index: size}) of an einsum of two or more tensors written without an ellipsis
    or a repeated index, else None."""
    if not args or not isinstance(args[0], str) or "->" not in args[0] or "." in args[0]:
        return None
    operands = list(args[1] if len(args) == 2 and isinstance(args[1], list | tuple) else args[1:])
    inputs, output = args[0].replace(" ", "").split("->")
    subscripts = inputs.split(",")
    if (
        len(operands) < 2
        or len(subscripts) != len(operands)
        or not all(
            isinstance(t, torch.Tensor) and t.dim() == len(s)
            for t, s in zip(operands, subscripts, strict=True)
        )
        or any(len(set(s)) != len(s) for s in subscripts)
    ):
        return None
    summed = {}
    for t, s in zip(operands, subscripts, strict=True):
        for letter, size in zip(s, t.shape, strict=True):
            if letter not in output:
                summed[letter] = max(summed.get(letter, 1), int(size))
    return operands, summed


def _einsum_steps(args: tuple, repeats: Callable[[torch.Tensor, int], bool]) -> list[tuple[float, int]]:
    """(MACs, repeats) of each contracting step of an einsum, in the order torch runs them: pairs left to
    right, or opt_einsum's path where torch uses it. A step's MACs are the product of the sizes of every
    index of its two operands; its products repeat along each index (of size > 1) along which every one of
    them that has it repeats its values (a step's result repeats where its operands do). Indices of one
    operand that nothing else needs are summed before, as torch does. Empty for an equation with an
    ellipsis or a repeated index."""
    form = _einsum_form(args)
    if form is None:
        return []
    operands, _ = form
    inputs, output = args[0].replace(" ", "").split("->")
    sizes: dict[str, int] = {}
    terms = []  # (indices, those along which its values repeat)
    for t, s in zip(operands, inputs.split(","), strict=True):
        for letter, size in zip(s, t.shape, strict=True):
            sizes[letter] = max(sizes.get(letter, 1), int(size))
        terms.append((s, {letter for d, letter in enumerate(s) if t.shape[d] == 1 or repeats(t, d)}))
    pairs = [(0, 1)] * (len(terms) - 1)
    if len(terms) > 2 and torch.backends.opt_einsum.enabled and torch.backends.opt_einsum.is_available():
        path = torch.backends.opt_einsum.get_opt_einsum().contract_path(
            args[0], *operands, optimize=torch.backends.opt_einsum.strategy
        )[0]
        pairs = [tuple(pair) for pair in path]
        appended = True
    else:
        appended = False  # left to right: the result takes the first operand's place
    steps = []

    def needed(letter: str, rest: list) -> bool:
        return letter in output or any(letter in s for s, _ in rest)

    for i, (s, rep) in enumerate(terms):
        kept = "".join(c for c in s if needed(c, terms[:i] + terms[i + 1 :]))
        terms[i] = (kept, rep & set(kept))
    for pair in pairs:
        if len(pair) != 2:
            return []
        a, b = terms[pair[0]], terms[pair[1]]
        rest = [t for k, t in enumerate(terms) if k not in pair]
        union = a[0] + "".join(c for c in b[0] if c not in a[0])
        summed = [c for c in union if not needed(c, rest)]
        repeated = {c for c in union if all(c in rep for s, rep in (a, b) if c in s)}
        if summed:
            macs = float(math.prod(sizes[c] for c in union))
            steps.append((macs, math.prod(sizes[c] for c in repeated if sizes[c] > 1)))
        kept = "".join(c for c in union if c not in summed)
        result = (kept, repeated & set(kept))
        terms = [*rest, result] if appended else [result, *rest]
    return steps


_CONSTANT_MAKERS = (torch.tensor, torch.as_tensor)
# The values of FP4 (E2M1): a table of them that codes index decodes packed FP4 (`lut[q & 0xF]`).
_E2M1 = frozenset(v * s for v in (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0) for s in (1, -1))
# Lookups into a table by index (its first argument), which a decode table goes through.
_TABLE_LOOKUPS = {"index", "_unsafe_index", "index_select", "embedding", "take"}
_VALUE_READERS = (torch.Tensor.tolist, torch.Tensor.numpy)
# Norms over the last axes whose weight (and bias) are their third (and fourth) arguments.
_NORMS = {"native_layer_norm", "_fused_rms_norm", "rms_norm"}
_SCALAR_READ = torch.ops.aten._local_scalar_dense.default


# ------------------------------------------------------------------------------------------------- demand


@dataclass
class _ConvGeometry:
    """What a convolution's demanded output elements need: output (n, c, position) needs the input of n in
    group c // (C_out / groups), all of its channels, over the window of the position; and row c of the
    weight, all of it."""

    out_shape: tuple[int, ...]
    out_strides: tuple[int, ...]
    itemsize: int
    in_spatial: tuple[int, ...]
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int
    input_key: int
    input_bytes: float  # of all of the input's view, before the share its windows touch
    input_layout: tuple  # the input view's (sizes, strides, offset, itemsize)

    # Elements enumerated at most, and input positions with their taps, before giving up on the geometry.
    LIMIT = 1 << 22

    @classmethod
    def of(cls, name: str, args: tuple, out: torch.Tensor) -> _ConvGeometry | None:
        """Of a convolution (input, weight, bias, stride, padding, dilation, transposed, output padding,
        groups), or of a pooling (input, kernel, stride, padding[, dilation]) as a convolution with one
        channel per group and no weight."""
        x = args[0]
        spatial = out.dim() - 2
        if spatial < 1 or x.dim() != out.dim() or out.storage_offset():
            return None

        def per_axis(value: Any, default: int) -> tuple[int, ...]:
            values = list(value) if isinstance(value, list | tuple) else [value]
            values = [default if v is None else int(v) for v in values] or [default]
            return tuple(values * spatial if len(values) == 1 else values)

        if name in _POOLS:
            kernel = per_axis(args[1], 1)
            stride = per_axis(args[2] if len(args) > 2 and args[2] else list(kernel), 1)
            padding = per_axis(args[3] if len(args) > 3 else 0, 0)
            dilation = per_axis(args[4] if len(args) > 4 and name.startswith("max") else 1, 1)
            groups = x.shape[1]
        else:
            kernel = tuple(args[1].shape[2:])
            stride, padding, dilation = per_axis(args[3], 1), per_axis(args[4], 0), per_axis(args[5], 1)
            groups = int(args[8])
        if not len(kernel) == len(stride) == len(padding) == len(dilation) == spatial:
            return None
        return cls(
            tuple(out.shape),
            tuple(out.stride()),
            out.element_size(),
            tuple(x.shape[2:]),
            kernel,
            stride,
            padding,
            dilation,
            groups,
            _key(x),
            float(_unique_elements(x) * x.element_size()),
            (tuple(x.shape), tuple(x.stride()), x.storage_offset(), x.element_size()),
        )

    @classmethod
    def of_pad(cls, args: tuple, out: torch.Tensor) -> _ConvGeometry | None:
        """Of a constant pad (input, pad widths from the last axis back): one tap per position, shifted by
        the width before each axis (a negative width crops), over the input and result seen with a unit
        batch and channel axis in front."""
        x, pad = args[0], args[1]
        if (
            not isinstance(pad, list | tuple)
            or len(pad) % 2
            or len(pad) // 2 > x.dim()
            or x.dim() != out.dim()
        ):
            return None
        if out.storage_offset() or not x.dim():
            return None
        before = [0] * x.dim()
        for i in range(len(pad) // 2):
            before[x.dim() - 1 - i] = int(pad[2 * i])
        ones = (1,) * x.dim()
        outer, inner = max(out.numel(), 1), max(x.numel(), 1)  # strides of the unit axes: past the end
        return cls(
            (1, 1, *out.shape),
            (outer, outer, *out.stride()),
            out.element_size(),
            tuple(x.shape),
            ones,
            ones,
            tuple(before),
            ones,
            1,
            _key(x),
            float(_unique_elements(x) * x.element_size()),
            ((1, 1, *x.shape), (inner, inner, *x.stride()), x.storage_offset(), x.element_size()),
        )

    def taps_view(self) -> tuple[tuple, float] | None:
        """With one tap per window and no padding (a 1x1 convolution of stride 2): the signature and bytes
        of the strided view of the input its taps read; None otherwise."""
        if any(k != 1 for k in self.kernel) or any(self.padding):
            return None
        sizes, strides, offset, itemsize = self.input_layout
        shape = (*sizes[:2], *self.out_shape[2:])
        steps = (*strides[:2], *(strides[2 + d] * s for d, s in enumerate(self.stride)))
        return _laid_out(shape, steps, offset, itemsize), float(math.prod(shape) * itemsize)

    def kept(self, views: Mapping[tuple, float], itemsize: int) -> list[np.ndarray] | None:
        """The output coordinates, one array per axis, of every element the views address of a storage
        laid out as the output with elements of `itemsize` bytes; None where a view is demanded in part
        (which of its elements, unknown), is of another width, or is too large."""
        coords: list[list[np.ndarray]] = [[] for _ in self.out_shape]
        total = 0
        for (offset, size, dims), nbytes in views.items():
            count = math.prod(n for _, n in dims)
            total += count
            if size != itemsize or nbytes < count * size or total > self.LIMIT:
                return None
            flat = np.full(1, offset, dtype=np.int64)
            for stride, n in dims:
                flat = (flat[:, None] + np.arange(n, dtype=np.int64)[None, :] * stride).reshape(-1)
            rest = flat
            for axis in sorted(range(len(self.out_shape)), key=lambda a: -self.out_strides[a]):
                coords[axis].append(rest // self.out_strides[axis] if self.out_strides[axis] else rest * 0)
                rest = rest % self.out_strides[axis] if self.out_strides[axis] else rest
        return [np.concatenate(c) if c else np.zeros(0, np.int64) for c in coords]

    def shares(self, coords: list[np.ndarray]) -> tuple[float, float, tuple | None] | None:
        """The shares of the input and of the weight's rows that the output elements at `coords` need, and
        the input's needed positions as a view of it where they are one (`_box`)."""
        batch, channels, positions = coords[0], coords[1], coords[2:]
        c_out = self.out_shape[1]
        weight = _distinct(channels, c_out).size / c_out if c_out else 0.0
        group = channels // max(c_out // self.groups, 1)
        # Distinct (batch, group, position) kept, then every input position their windows cover.
        shape = (self.out_shape[0], self.groups, *self.out_shape[2:])
        kept = _distinct(np.ravel_multi_index((batch, group, *positions), shape), math.prod(shape))
        taps = math.prod(self.kernel)
        if kept.size * taps > self.LIMIT:
            return None
        batch, group, *positions = np.unravel_index(kept, shape)
        inside = np.ones((kept.size, taps), dtype=bool)
        sources = []
        offsets = np.unravel_index(np.arange(taps), self.kernel)
        for d, (o, t) in enumerate(zip(positions, offsets, strict=True)):
            i = o[:, None] * self.stride[d] - self.padding[d] + t[None, :] * self.dilation[d]
            inside &= (i >= 0) & (i < self.in_spatial[d])
            sources.append(np.clip(i, 0, self.in_spatial[d] - 1))
        whole = (self.out_shape[0], self.groups, *self.in_spatial)
        needed = np.ravel_multi_index(
            (
                np.broadcast_to(batch[:, None], inside.shape),
                np.broadcast_to(group[:, None], inside.shape),
                *sources,
            ),
            whole,
        )[inside]
        needed = _distinct(needed, math.prod(whole))
        return needed.size / math.prod(whole), weight, self._box(needed, whole)

    def _box(self, needed: np.ndarray, whole: tuple[int, ...]) -> tuple | None:
        """The view of the input that holds exactly the needed (batch, group, position) ids (`_view_of`),
        where they are a product of the distinct values along each axis; else None."""
        per_axis = [np.unique(values) for values in np.unravel_index(needed, whole)]
        if math.prod(a.size for a in per_axis) != needed.size or per_axis[1].size != self.groups:
            return None  # not a product, or only some groups (their channels are no one run)
        return self._view_of(per_axis[0], per_axis[2:])

    def _view_of(self, batch: np.ndarray, positions: list[np.ndarray]) -> tuple | None:
        """The signature and bytes of the view of the input at these batch entries and input positions
        (sorted, distinct), all channels, where each is evenly spaced (every other row); else None."""
        progressions = []
        for values in (batch, *positions):
            steps = np.diff(values)
            if not values.size or steps.size and (steps != steps[0]).any():
                return None
            progressions.append((int(values[0]), int(steps[0]) if steps.size else 1, values.size))
        sizes, strides, offset, itemsize = self.input_layout
        (first, step, count), *spatial = progressions
        shape = (count, sizes[1], *(n for _, _, n in spatial))
        steps = (strides[0] * step, strides[1], *(strides[2 + d] * s for d, (_, s, _) in enumerate(spatial)))
        start = offset + first * strides[0] + sum(strides[2 + d] * f for d, (f, _, _) in enumerate(spatial))
        return _laid_out(shape, steps, start, itemsize), float(math.prod(shape) * itemsize)

    def boxed(self, sig: tuple, itemsize: int) -> list[np.ndarray] | None:
        """Of a view laid over the output that is a box (evenly spaced positions along each axis, a slice
        or a crop), the distinct coordinates it keeps along each axis, without listing its elements; None
        for any other view."""
        offset, size, dims = sig
        if size != itemsize:
            return None
        order = sorted(range(len(self.out_shape)), key=lambda a: self.out_strides[a])
        ranges: dict[int, tuple[int, int]] = {}  # axis -> (step, count)
        for stride, n in dims:
            while n > 1:
                axis = next(
                    (a for a in reversed(order) if self.out_strides[a] and self.out_strides[a] <= stride),
                    None,
                )
                if axis is None or stride % self.out_strides[axis] or axis in ranges:
                    return None
                step, extent = stride // self.out_strides[axis], self.out_shape[axis]
                if step * (n - 1) < extent:
                    ranges[axis], n = (step, n), 1
                elif extent % step == 0 and n % (extent // step) == 0:  # this axis, then the next one out
                    per = extent // step
                    ranges[axis], n, stride = (step, per), n // per, stride * per
                else:
                    return None
        kept, rest = [], offset
        starts = {}
        for axis in reversed(order):
            starts[axis], rest = divmod(rest, self.out_strides[axis]) if self.out_strides[axis] else (0, rest)
        for axis, extent in enumerate(self.out_shape):
            step, count = ranges.get(axis, (1, 1))
            values = starts[axis] + step * np.arange(count)
            if values.size and values[-1] >= extent:
                return None
            kept.append(values)
        return kept

    def box_shares(self, kept: list[np.ndarray]) -> tuple[float, float, tuple | None]:
        """`shares` of the elements of a box, from its coordinates along each axis."""
        batch, channels, *positions = kept
        c_out = self.out_shape[1]
        groups = np.unique(channels // max(c_out // self.groups, 1))
        hulls = []
        for d, p in enumerate(positions):
            taps = np.arange(self.kernel[d]) * self.dilation[d]
            i = (p[:, None] * self.stride[d] - self.padding[d] + taps[None, :]).reshape(-1)
            hulls.append(np.unique(i[(i >= 0) & (i < self.in_spatial[d])]))
        share = batch.size / self.out_shape[0] * groups.size / self.groups
        share *= math.prod(h.size / n for h, n in zip(hulls, self.in_spatial, strict=True))
        view = self._view_of(batch, hulls) if groups.size == self.groups else None
        return share, channels.size / c_out if c_out else 0.0, view

    def gathered(self, axes: frozenset | None, taken: float) -> tuple[float, float, None] | None:
        """The shares of the input and of the weight's rows that a gather taking the share `taken` of the
        output needs: along the channels only (a class picked per row), every position of every batch and
        at least that share of the channels; along the batch only, that share of the batch and every
        channel; None otherwise."""
        if axes is not None and axes <= {1} and self.groups == 1:
            return 1.0, taken, None
        if axes == {0}:
            return taken, 1.0, None
        return None


def _unique_bytes(sig: tuple) -> float:
    """Bytes of the elements a view's signature addresses."""
    return float(math.prod(n for _, n in sig[2]) * sig[1])


# Poolings whose windows map demanded outputs to inputs as a convolution's do (`_ConvGeometry.of`).
_POOLS = {"max_pool1d", "max_pool2d", "max_pool3d", "max_pool2d_with_indices", "max_pool3d_with_indices"}
_POOLS |= {"avg_pool1d", "avg_pool2d", "avg_pool3d"}


# Views of a storage an in-place elementwise op passes on one by one, at most (else as a share of it).
_IN_PLACE_VIEWS = 64


def _distinct(ids: np.ndarray, space: int) -> np.ndarray:
    """The distinct values, sorted, of non-negative ids below `space`: marked in a table where it is not
    too large (faster than sorting millions of them), else by sorting."""
    if space > 1 << 26:
        return np.unique(ids)
    seen = np.zeros(space, dtype=bool)
    seen[ids] = True
    return np.flatnonzero(seen)


def _demand(
    rec: _Recorder, returned: list[torch.Tensor], input_keys: Mapping[int, str]
) -> tuple[dict, dict, float]:
    """Walk the ops backwards from the returned outputs. Returns (MACs by precision, demanded bytes per
    input storage, other FLOPs)."""
    plain: dict[int, _Views] = {}  # storage -> view signature -> demanded bytes
    gathered: dict[int, list] = {}  # storage -> [(sig, dim, row_bytes, estimate, values, fraction)]

    def add_plain(key: int, sig: tuple, nbytes: float) -> None:
        views = plain.get(key)
        if views is None:
            views = plain[key] = _Views()
        if nbytes > views.get(sig, 0.0) or sig not in views:
            views[sig] = max(views.get(sig, 0.0), nbytes)

    def plain_total(key: int) -> float:
        """The bytes of a storage's views, overlapping runs of the same rows counted once."""
        views = plain.get(key)
        return views.union() if views is not None else 0.0

    for t in returned:
        add_plain(_key(t), _signature(t), _unique_elements(t) * t.element_size())

    union_memo: dict[int, tuple[int, float]] = {}

    def demanded(key: int) -> float:
        total = plain_total(key)
        entries = gathered.get(key, [])
        if entries and all(e[4] is not None for e in entries):
            # Index values known: count distinct rows once (memoised: unique() over all gathers is costly).
            if union_memo.get(key, (None,))[0] != len(entries):
                union_memo[key] = (len(entries), _union_rows(entries))
            total += union_memo[key][1]
        else:
            total += _gathers_without_values(entries)
        return min(total, rec.storage_bytes.get(key, total))

    def share(key: int, sig: tuple, nbytes: float, size: float) -> float:
        """The demanded share of what an op writes into a storage: of the block it writes, where it
        writes part of the storage and every demanded view is a block (a row range of a buffer filled
        part by part), else of the whole storage."""
        # The very view written may be demanded itself (a column half of a buffer, updated in place).
        views = plain.get(key, _NO_VIEWS)
        exact = views.get(sig, 0.0) / nbytes if nbytes else 0.0
        written = _contiguous(sig) if nbytes < size else None
        if written is not None and not views.scattered and not gathered.get(key):
            lo, hi = written
            met = sum(b - a for a, b in _merged([_clipped(_span(v), lo, hi) for v in views.meeting(lo, hi)]))
            return min(1.0, max(exact, met / (hi - lo)))
        return min(1.0, max(exact, demanded(key) / size))

    macs: dict[str, float] = {}
    flops = 0.0
    # Storages demanded in some rows and columns of their last two axes (masked scores; `_Read.covering`):
    # the contraction that makes one needs those shares of its operands, though it counts only the
    # demanded products.
    covered: dict[int, tuple[float, float]] = {}
    lines: dict[int, float] = {}  # storage -> rows (all axes but the last) element-wise gathers address
    picks: dict[int, float] = {}  # storage -> whole rows gathers take
    columns: dict[int, float] = {}  # storage -> columns gathers take from every row
    row_views: dict[int, list] = {}  # storage -> views of it an element-wise gather takes from every row of
    # For a convolution's geometry (`_convolved`): how many ops demand each storage, the result of the one
    # elementwise op of the same layout that does, and the gathers from each with their axes.
    readers: dict[int, int] = {}
    follows: dict[int, tuple[int, int]] = {}
    gather_axes: dict[int, list] = {}

    def convolved(op: _Op, fraction: float) -> tuple[float, float] | None:
        """The shares of a convolution's input and weight rows that the demanded part of its result needs,
        from the views and gathers that demand it (through elementwise ops of its layout that alone read
        it: a sigmoid, then a class picked per row); None where they do not tell."""
        if any(key in plain or key in gathered for key, _ in op.writes[1:]):
            return None  # a pooling's indices demanded too
        geometry, target, itemsize, seen = op.conv, op.writes[0][0], op.conv.itemsize, set()
        while readers.get(target) == 1 and target in follows and target not in seen:
            seen.add(target)
            target, itemsize = follows[target]
        parts = []
        views = plain.get(target)
        if views:
            (sig, nbytes), *more = views.items()
            kept = geometry.boxed(sig, itemsize) if not more and nbytes >= _unique_bytes(sig) else None
            if kept is not None:  # one slice or crop: along each axis, without listing its elements
                parts.append(geometry.box_shares(kept))
            else:
                coords = geometry.kept(views, itemsize)
                found = geometry.shares(coords) if coords is not None else None
                if found is None:
                    return None
                parts.append(found)
        for axes, taken in gather_axes.get(target, ()):
            found = geometry.gathered(axes, taken)
            if found is None:
                return None
            parts.append(found)
        if (
            not parts
            or covered.get(target) is not None
            or target in row_views
            or (target in picks and target not in gather_axes)  # rows a gather takes: by its axes
            or target in lines
            or target in columns
        ):
            return None
        # Where the plain views alone demand it, the input's needed positions as a view of it.
        box = parts[0][2] if len(parts) == 1 else None
        return max(p[0] for p in parts), max(p[1] for p in parts), box

    put_after: dict[int, set[int]] = {}  # storage -> the positions writes after this op put (on data)
    for op in reversed(rec.ops):
        # An op that yields no tensor (`.item()`) feeds control flow: what it reads is needed.
        fraction = 0.0 if op.writes else 1.0
        for (key, nbytes), sig in zip(op.writes, op.write_sigs, strict=True):
            size = rec.storage_bytes.get(key, 0)
            if size and nbytes:
                fraction = max(fraction, share(key, sig, nbytes, size))
        # Of an in-place elementwise op over all of a storage (`relu_`) demanded in views that are not all of
        # it (every other row), those views: the same elements of what it read there (its read passes them
        # on, not a share of the whole). A storage demanded whole keeps the share (and a mask's region).
        in_place = None
        if op.aligned and len(op.writes) == 1 and op.replaces == (0,) and op.writes[0][0] in plain:
            key, sig = op.writes[0][0], op.write_sigs[0]
            views = plain[key]
            if sig == _whole(rec, key, sig) and 0 < len(views) <= _IN_PLACE_VIEWS and sig not in views:
                in_place = (key, sig, dict(views))
        for i in op.replaces:
            # Demanded after this write is what it wrote: earlier ops (and an input) owe none of it.
            if op.writes[i][0] in plain:
                _replaced(plain[op.writes[i][0]], op.write_sigs[i])
        if op.thinned is not None:
            # Written at positions no block gives: of its destination demanded whole (a cache returned
            # after its new rows are put in), earlier ops owe all but the rows it can replace.
            i, replaced = op.thinned
            key, sig = op.writes[i][0], op.write_sigs[i]
            views = plain.get(key)
            whole = next(iter(views)) if views is not None and len(views) == 1 else None
            block = _contiguous(whole) if whole is not None else None
            span = _span(sig)
            if block is not None and block[0] <= span[0] and span[1] <= block[1] and not gathered.get(key):
                later = put_after.setdefault(key, set())
                each = replaced / op.placed.numel() if op.placed is not None and op.placed.numel() else 0.0
                if each and views[whole] + each * len(later) >= (block[1] - block[0]) * (1 - 1e-9):
                    # On data, of a destination demanded whole, the positions it writes that no later write
                    # replaced are demanded, and only those (each expert's tokens put in turn, `out[t] = y`).
                    placed = set(op.placed.tolist())
                    fresh = len(placed - later)
                    fraction = fresh / len(placed)
                    replaced = fresh * each
                    later |= placed
                views[whole] = max(0.0, views[whole] - replaced)
        if fraction <= 0.0:
            continue
        if op.whole:
            fraction = 1.0
        if op.macs:
            macs[op.precision] = macs.get(op.precision, 0.0) + op.macs * min(fraction, op.nonzero)
        flops += op.flops * fraction
        cover = covered.get(op.writes[0][0]) if len(op.writes) == 1 else None
        kernel = convolved(op, fraction) if op.conv is not None and fraction < 1.0 else None
        for read in op.reads:
            readers[read.key] = readers.get(read.key, 0) + 1
        if cover is None and op.matrix is not None:
            # Of every result laid out as the matrix (the values and the indices of a top-k or a sort),
            # the rows and columns demanded.
            rows, cols, _ = op.matrix
            found = [
                _demanded_lines(
                    plain.get(key, {}),
                    row_views.get(key, ()),
                    lines.get(key),
                    picks.get(key),
                    rows,
                    cols,
                    sig[1],
                    op.inner,
                    columns.get(key),
                )
                for (key, nbytes), sig in zip(op.writes, op.write_sigs, strict=True)
                if nbytes == rows * cols * sig[1] and sig == _whole(rec, key, sig)
            ]
            found = [f for f in found if f is not None]
            cover = tuple(map(max, *found)) if len(found) > 1 else found[0] if found else None
        # The one block of whole rows demanded of a matrix product's result, or of a row-wise op's (a row
        # maximum cut back to the rows before a pad), if it is one.
        block = None
        row_wise = (
            op.inner == 1
            and bool(op.reads)
            and op.reads[0].side == "rows"
            and op.name not in _MATRIX_PRODUCTS
        )
        products = ("mm", "addmm", "bmm", "_scaled_mm", "_int_mm", "cat")
        if (op.name in products or row_wise or op.aligned) and op.matrix is not None and len(op.writes) == 1:
            key = op.writes[0][0]
            if op.write_sigs[0] == _whole(rec, key, op.write_sigs[0]) and not any(
                key in found for found in (gathered, picks, columns, lines, row_views, covered)
            ):
                block = _row_block(plain.get(key, _NO_VIEWS), *op.matrix)
        for read in op.reads:
            if read.rows is None:
                if kernel is not None:
                    # A convolution: its input over the windows of the positions kept, its weight (and
                    # bias) in the rows of the channels kept; the input as the view of those positions
                    # where they are one, for the demand of the ops before it.
                    if read.key == op.conv.input_key and read is op.reads[0]:
                        view, nbytes = kernel[2] or (read.sig, op.conv.input_bytes * kernel[0])
                        add_plain(read.key, view, nbytes)
                    else:
                        add_plain(read.key, read.sig, read.nbytes * kernel[1])
                    continue
                if read.side == "all":  # a single scale, needed whole by any part of the result
                    part = 1.0
                elif cover is not None and read.side is not None and op.matrix is not None:
                    if op.name in _CUMULATIVE and op.inner > 1:  # prefixes of lines along its axis
                        part = max(fraction, cover[4] if len(cover) > 4 else 0.0)
                    elif op.name in _CUMULATIVE:  # each demanded element needs its row's prefix
                        part = max(fraction, cover[2] if len(cover) > 2 else 0.0)
                    elif op.inner > 1:  # the lines along its axis that the demand meets
                        part = max(fraction, cover[3] if len(cover) > 3 else 0.0)
                    elif read.side in op.lone_sides:
                        # Each element demanded needs a line of its own of this operand, wherever the
                        # demand's rows and columns lie in another layout of the result.
                        part = fraction
                    else:
                        part = max(fraction, cover[0] if read.side == "rows" else cover[1])
                elif read.spread and cover is not None:
                    along = {"columns": cover[0], "rows": cover[1]}
                    part = max(fraction, along.get(read.spread, 1.0 if max(cover[:2]) > 0 else 0.0))
                elif cover == (1.0, 1.0) and op.name in _MATRIX_PRODUCTS:
                    part = 1.0
                elif op.name == "constant_pad_nd" and read is op.reads[0] and read.nbytes:
                    # A share of a padded tensor that the demand does not place: at most all of it in the
                    # input's block (the padded keys masked after a product), never more than the input.
                    part = min(1.0, fraction * op.writes[0][1] / read.nbytes)
                else:
                    part = fraction
                viewed = False
                if (
                    in_place is not None
                    and (read.key, read.sig) == in_place[:2]
                    and cover is None
                    and part == fraction
                ):
                    for view, nbytes in in_place[2].items():
                        add_plain(read.key, view, nbytes)
                elif (
                    block is not None
                    and read.group
                    and (
                        rows_read := _rows_of(
                            read.sig, read.nbytes, op.matrix[0] // read.group, _grouped(block, read.group)
                        )
                    )
                ):
                    # Of an operand broadcast along the result's rows within each group of them: the groups
                    # the block of rows meets.
                    add_plain(read.key, *rows_read)
                    viewed = True
                elif (
                    block is not None
                    and (read.side == "rows" or op.aligned and read.spread in (None, "columns"))
                    and (rows_read := _rows_of(read.sig, read.nbytes, op.matrix[0], block))
                ):
                    # Those rows of a row-major operand, for the ops before (of an elementwise op, of an
                    # operand as large as its result or of one value per row): the view says all.
                    add_plain(read.key, *rows_read)
                    viewed = True
                else:
                    add_plain(read.key, read.sig, read.nbytes * part)
                # (passed on to a read of its whole storage only: the shares are of the storage's lines)
                same_layout = (
                    bool(op.write_sigs)
                    and read.sig[2] == op.write_sigs[0][2]
                    and read.sig == _whole(rec, read.key, read.sig)
                )
                if op.aligned and same_layout and len(op.writes) == 1 and read.sig[0] == op.write_sigs[0][0]:
                    follows[read.key] = (op.writes[0][0], op.write_sigs[0][1])
                if read.covering is None and cover is not None and op.aligned:
                    passed = cover if same_layout else None
                elif (
                    read.covering is None
                    and cover is not None
                    and read.side == "rows"
                    and op.name not in _CUMULATIVE
                    and op.inner == 1
                ):
                    # The rows the demand meets, each whole: of a row-wise op's operand laid out as its
                    # result, and of a product's first operand, a matrix of as many rows as its result (of
                    # causal scores, the query rows demanded).
                    if op.name in _MATRIX_PRODUCTS:
                        whole_rows = (
                            op.matrix is not None
                            and read.sig == _whole(rec, read.key, read.sig)
                            and read.nbytes % (op.matrix[0] * read.sig[1]) == 0
                        )
                    else:
                        whole_rows = same_layout
                    passed = (cover[0], 1.0) if whole_rows else None
                elif read.covering is None and cover == (1.0, 1.0) and read.side in op.lone_sides:
                    # Each element of the result takes a line of its own of this operand: where every row
                    # and column of the result is met, every line of the operand is, and all of each.
                    passed = cover
                else:
                    passed = read.covering
                    if passed is not None and cover is not None and op.aligned and same_layout:
                        # A masked matrix demanded in part (the last query's row of causal scores): no more
                        # of its rows and columns than the demand meets.
                        passed = (min(passed[0], cover[0]), min(passed[1], cover[1]))
                if passed is not None and not viewed:
                    old = covered.get(read.key, (0.0, 0.0))
                    covered[read.key] = (max(old[0], passed[0]), max(old[1], passed[1]))
            else:
                dim, row_bytes, estimate, values = read.rows
                gathered.setdefault(read.key, []).append(
                    (read.sig, dim, row_bytes, estimate, values, fraction, read.drawn)
                )
                if read.sig == _whole(rec, read.key, read.sig):
                    size = rec.storage_bytes.get(read.key, 0)
                    taken = min(1.0, estimate * row_bytes / size) * fraction if size else fraction
                    gather_axes.setdefault(read.key, []).append((read.axes, taken))
                else:
                    gather_axes.setdefault(read.key, []).append((None, fraction))
                if read.lines == "all":
                    row_views.setdefault(read.key, []).append(read.sig)
                elif read.lines is not None and read.sig == _whole(rec, read.key, read.sig):
                    kind, count = read.lines
                    found = {"rows": picks, "columns": columns}.get(kind, lines)
                    found[read.key] = max(found.get(read.key, 0.0), count)
    reads = {key: demanded(key) for key in input_keys}
    return macs, reads, flops


@contextlib.contextmanager
def _without_gc() -> Any:
    """Python's cycle collector off while a reference runs: the recorder keeps every tensor of the run
    alive, and each collection would walk them all (most of the time of a data trace with a loop)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _special_values(t: torch.Tensor) -> tuple[bool, bool]:
    """Whether data may hold an exact zero, and whether it may hold a non-finite value. Quantized and
    integer data count as holding zeros; tensors too large to scan cheaply (over `_SCANNED` elements)
    as holding both."""
    if t.numel() > _SCANNED:
        return True, True
    if not t.is_floating_point() or _quantized_of(t.dtype):
        return True, False
    return not bool((t != 0).all()), not bool(torch.isfinite(t).all())


_SCANNED = 1 << 24


def _needed(rec: _Recorder, returned: list[torch.Tensor], input_keys: Mapping[int, str]) -> dict[int, float]:
    """Bytes of each input storage that any correct kernel must read: a second backward walk from the
    returned outputs (each written in full) through the reads marked necessary only. Unlike the demand,
    it never over-counts: views of a storage add up only where they are provably disjoint, a gather
    source counts only rows known from data (distinct) and only when its whole result is needed, and a
    write that a later op overwrites without reading passes nothing on."""
    views: dict[int, dict[tuple, float]] = {}
    rows: dict[int, list] = {}
    overwritten: dict[int, _Written] = {}
    memo: dict[int, float] = {}
    largest: dict[int, float] = {}  # the largest view needed of each storage (a loop adds views one by one)
    # Of each storage, its views' bytes as last chosen (`_disjoint_total`), and from then on all its views by
    # layout, lane and span, with those that met no other when they came: a view that meets none of the
    # others adds its bytes to both greedy choices, so a loop that needs a buffer column by column is not
    # chosen again at every one.
    disjoint: dict[int, float] = {}
    known: dict[int, _Written] = {}
    alone: dict[int, set[tuple]] = {}

    # Of each input, the views needed of what it held when the reference began: those needed after an op
    # writes them whole (`copy_`, `zero_`) are the write's, not the input's (`views` keeps them for the
    # writers' shares, whose bound below counts on every need).
    initial: dict[int, _Views] = {key: _Views() for key in input_keys}

    def add(key: int, sig: tuple, nbytes: float) -> None:
        entry = views.setdefault(key, {})
        old = entry.get(sig)
        if old is None or nbytes > old:
            index = known.get(key)
            lone = index is not None and old is None and not index.meets(sig)
            if index is not None and (lone or sig in alone.get(key, ())):
                disjoint[key] += nbytes - (old or 0.0)
                if lone:
                    index.add(sig)
                    alone.setdefault(key, set()).add(sig)
            else:
                for state in (disjoint, known, alone):
                    state.pop(key, None)
            entry[sig] = nbytes
            largest[key] = max(largest.get(key, 0.0), nbytes)
            memo.pop(key, None)
        if key in initial and nbytes > initial[key].get(sig, 0.0):
            initial[key][sig] = nbytes

    def needed(key: int) -> float:
        if key not in memo:
            entry, size = views.get(key, {}), rec.storage_bytes.get(key, math.inf)
            # A view needed whole that is all of the storage settles it (a buffer returned whole, written
            # row by row in a loop: no need to choose among its rows' views at every row).
            if key not in disjoint:
                if entry and largest.get(key, 0.0) >= size:
                    disjoint[key] = size
                else:
                    disjoint[key] = _disjoint_total(entry)
                    known[key] = index = _Written()
                    for view in entry:
                        index.add(view)
            total = disjoint[key]
            if rows.get(key):
                total += _union_rows(rows[key])
            memo[key] = min(total, rec.storage_bytes.get(key, total))
        return memo[key]

    for t in returned:
        add(_key(t), _signature(t), _unique_elements(t) * t.element_size())
    for op in reversed(rec.ops):
        fraction = 0.0
        for (key, nbytes), sig in zip(op.writes, op.write_sigs, strict=True):
            size = rec.storage_bytes.get(key, 0)
            if not (size and nbytes) or key in overwritten and overwritten[key].meets(sig):
                continue
            # The written part holds at least what is needed of the storage beyond the part not written.
            fraction = max(fraction, min(1.0, max(0.0, needed(key) - (size - nbytes)) / nbytes))
        if op.overwrites:
            for key, sig in zip((k for k, _ in op.writes), op.write_sigs, strict=True):
                overwritten.setdefault(key, _Written()).add(sig)
        for i in op.replaces:
            if op.writes[i][0] in initial:
                _replaced(initial[op.writes[i][0]], op.write_sigs[i])
        if fraction <= 0.0:
            continue
        for read in op.reads:
            if not read.necessary:
                continue
            if read.rows is None:
                add(read.key, read.sig, read.nbytes * fraction)
            elif fraction >= 1.0 and read.rows[3] is not None:
                dim, row_bytes, estimate, values = read.rows
                rows.setdefault(read.key, []).append((read.sig, dim, row_bytes, estimate, values, 1.0))
                memo.pop(read.key, None)
    for key in input_keys:
        views[key] = initial[key]
        largest[key] = max(initial[key].values(), default=0.0)
        for state in (disjoint, known, alone, memo):
            state.pop(key, None)
    return {key: needed(key) for key in input_keys}


class _Written:
    """A set of views of a storage (those later ops overwrite; those a needed-reads choice keeps), and the
    union of their byte ranges as sorted, merged intervals: a view outside that union meets none of them, found by bisection (a loop writing
    row after row of an output otherwise compares each row with every other). Within the union, a view is
    compared with the views of its own layout in its own and the neighbouring lane buckets (`_lane`: a
    loop writing column after column, `out[:, t] = h`, meets none of the earlier columns) and with those of
    other layouts."""

    def __init__(self) -> None:
        self.layouts: dict[tuple, dict[int | None, list[tuple]]] = {}
        self.starts: list[int] = []
        self.ends: list[int] = []

    def add(self, sig: tuple) -> None:
        self.layouts.setdefault((sig[1], sig[2]), {}).setdefault(_lane(sig), []).append(sig)
        start, end = _span(sig)
        i = bisect.bisect_left(self.ends, start)  # the first interval that ends at or after `start`
        j = bisect.bisect_right(self.starts, end)  # past the last one that starts at or before `end`
        if i < j:
            start, end = min(start, self.starts[i]), max(end, self.ends[j - 1])
        self.starts[i:j], self.ends[i:j] = [start], [end]

    def meets(self, sig: tuple) -> bool:
        """Whether `sig` may share a byte with an overwritten view."""
        start, end = _span(sig)
        i = bisect.bisect_right(self.ends, start)  # the first interval that ends after `start`
        if i == len(self.starts) or self.starts[i] >= end:
            return False
        layout, lane = (sig[1], sig[2]), _lane(sig)
        return any(
            not _disjoint(sig, o)
            for other, lanes in self.layouts.items()
            for o in (_near(lanes, lane) if other == layout and lane is not None else _flat(lanes))
        )


def _run(sig: tuple, nbytes: float) -> tuple[tuple, tuple[int, int]] | None:
    """Of a view demanded whole that runs over rows (each row's run of consecutive elements starting
    within one row), its group (the element size, outer strides and sizes, and first row) and the span of
    columns it runs over; None for any other view. Views of one group count their overlapping columns once
    (`_Views.union`)."""
    offset, size, dims = sig
    inner, outer = (1, ()) if not dims else (dims[0][1], dims[1:]) if dims[0][0] == 1 else (0, None)
    if outer is None:
        return None
    period = outer[0][0] if outer else 0
    start = offset % period if period else offset
    if nbytes != inner * math.prod(n for _, n in outer) * size or (period and start + inner > period):
        return None
    return (size, outer, offset - start), (start, start + inner)


def _row_block(views: Mapping[tuple, float], rows: int, cols: int, itemsize: int) -> tuple[int, int] | None:
    """Rows [r0, r1) of a contiguous rows x cols matrix where its demand is one contiguous view of whole
    rows, demanded whole (`y[:M]` of a product over rows padded to a multiple of 128); else None."""
    if len(views) != 1 or not cols:
        return None
    ((sig, nbytes),) = views.items()
    span = _contiguous(sig) if sig[1] == itemsize else None
    line = cols * itemsize
    if span is None or nbytes < span[1] - span[0] or span[0] % line or span[1] % line:
        return None
    r0, r1 = span[0] // line, span[1] // line
    return (r0, r1) if 0 <= r0 < r1 <= rows else None


def _grouped(block: tuple[int, int], group: int) -> tuple[int, int]:
    """The groups of `group` rows that rows [r0, r1) meet."""
    return block[0] // group, -(-block[1] // group)


def _rows_of(sig: tuple, nbytes: float, rows: int, block: tuple[int, int]) -> tuple[tuple, float] | None:
    """The signature and bytes of rows [r0, r1) of a view that is a row-major rows x K matrix; else None."""
    offset, size, _ = sig
    k = round(nbytes / size / rows) if rows else 0
    if k < 1 or k * rows * size != nbytes or sig != _laid_out((rows, k), (k, 1), offset, size):
        return None
    r0, r1 = block
    return _laid_out((r1 - r0, k), (k, 1), offset + r0 * k, size), float((r1 - r0) * k * size)


def _whole(rec: _Recorder, key: int, sig: tuple) -> tuple:
    """The signature of a contiguous view of all of a storage, with `sig`'s element size."""
    n = rec.storage_bytes.get(key, 0) // sig[1]
    return (0, sig[1], ((1, n),) if n > 1 else ())


def _demanded_lines(
    views: Mapping[tuple, float],
    row_views: Collection[tuple],
    gathered_rows: float | None,
    picked_rows: float | None,
    rows: int,
    cols: int,
    itemsize: int,
    inner: int = 1,
    picked_cols: float | None = None,
) -> tuple[float, float, float, float, float] | None:
    """The shares of the rows and of the columns of a contiguous rows x cols matrix of `itemsize`-byte
    elements (a storage) that its demanded views meet: the largest of any one view (a lower bound of their
    union), the rows of views an element-wise gather takes from in every row, the rows gathers address,
    and the columns gathers take from every row (`picked_cols`: all rows); and the share of the matrix in
    the prefixes of its rows up to the last column demanded in them (what a cumulative sum needs). Views are laid over it by bytes (`.real` of a complex result is
    half of each element's bytes, in every column). With `inner`, the rows are (the axes before an axis, that
    axis x the `inner` positions after it), the fourth share is of the lines along that axis that plain
    views meet: their rows' share times their share of the inner positions (0 where a gather takes from
    the storage, which says nothing of positions), and the fifth, of those lines' prefixes up to the last
    position along the axis a view reaches (what a cumulative sum along it needs). None where no view's
    rows and columns can be told apart."""
    row_share = (gathered_rows or 0.0) / rows if rows else 0.0
    col_share = 0.0
    prefix_share = (gathered_rows or 0.0) / rows / cols if rows and cols else 0.0
    if picked_rows and rows:  # whole rows taken by a gather: all their columns
        row_share, col_share = max(row_share, picked_rows / rows), 1.0
        prefix_share = max(prefix_share, picked_rows / rows)
    if picked_cols and cols:  # columns taken by a gather from every row: all rows, at their share
        row_share, col_share = 1.0, max(col_share, picked_cols / cols)
        prefix_share = max(prefix_share, picked_cols / cols)
    found = gathered_rows is not None or bool(picked_rows) or bool(picked_cols)
    line = cols * itemsize  # bytes of a row
    lines_share, line_prefix_share, positional = 0.0, 0.0, not (found or row_views)
    # The rows met by the views that each lie within one row and are demanded whole, together: their union
    # (elements read one by one, `vals[b, j].item()` in a loop over rows, meet every row they are in).
    one_row: set[int] = set()
    for view in (*views, *row_views):
        offset, size, dims = view
        # A view demanded in part (a share passed on through an elementwise op) may meet that share of its
        # rows and columns only: the shares below are scaled by it (a lower bound).
        part = min(1.0, views[view] / (math.prod(n for _, n in dims) * size)) if view in views else 1.0
        in_rows, in_cols, reach = 1, 1, offset * size % line
        in_inner, known = 1, True  # inner positions met, and whether every axis of the view says which
        for stride, n in dims:
            step = stride * size
            if step % line == 0:
                in_rows *= n
            elif step <= max(size, itemsize) and reach == 0 and n * step % line == 0:
                in_rows, in_cols = in_rows * (n * step // line), cols  # whole rows, merged into one run
                in_inner = inner
                reach = line - 1
            elif itemsize <= step < line and reach < step and line % step == 0 and n * step % line == 0:
                # Every k-th element across whole rows (`y[:, ::2]` of rows of an even length is one strided
                # run): the same columns of each of those rows.
                in_rows, in_cols = in_rows * (n * step // line), in_cols * (line // step)
                reach += line - step
                known = known and inner == 1
            elif step < line:
                in_cols *= n if step >= itemsize else math.ceil(n * step / itemsize)
                reach += (n - 1) * step
                if n > 1 and step < inner * itemsize:
                    in_inner *= n if step >= itemsize else math.ceil(n * step / itemsize)
                elif n > 1 and step % (inner * itemsize):
                    known = False  # across lines and positions at once
            elif reach == 0:
                # More than a row per step, not whole rows: one element in each of n rows (a diagonal), in
                # as many columns as its shift along a row reaches before it comes round again.
                in_rows *= n
                shift = step % line
                if in_cols == 1 and n > 1 and shift and shift % itemsize == 0:
                    in_cols = min(n, cols // math.gcd(shift // itemsize, cols))
            else:
                break
        else:
            if reach < line:
                if view not in views:  # a gather's columns: one (or a few) of each row, somewhere in it
                    in_cols, reach = 0, 0
                row_share = max(row_share, part * in_rows / rows)
                if in_rows == 1 and part == 1.0 and view in views and len(one_row) < rows:
                    one_row.add(offset * size // line)
                    row_share = max(row_share, len(one_row) / rows)
                col_share, found = max(col_share, part * in_cols / cols), True
                if positional and known:
                    lines = part * in_rows / rows * min(1.0, in_inner / inner)
                    lines_share = max(lines_share, lines)
                    # Of those lines, the positions along the axis up to the last one the view reaches.
                    reached = min(reach // (inner * itemsize) + 1, cols // inner)
                    line_prefix_share = max(line_prefix_share, lines * reached / max(cols // inner, 1))
                prefix_share = max(prefix_share, part * in_rows / rows * (reach // itemsize + 1) / cols)
    shares = (
        min(row_share, 1.0),
        min(col_share, 1.0),
        min(prefix_share, 1.0),
        min(lines_share, 1.0),
        min(line_prefix_share, 1.0),
    )
    return shares if found else None


def _line_axis(name: str, args: tuple, kwargs: dict, out: torch.Tensor) -> tuple[int, int, int] | None:
    """Of a row-wise op (softmax, sort, top-k, a cumulative sum) along an axis other than the last: the
    extents of its result before that axis, along it, and after it. None for any other op."""
    if name not in _ALONG_DIM or not args or not isinstance(args[0], torch.Tensor):
        return None
    x = args[0]
    at = 2 if name in _DIM_AFTER_K else 1
    dim = args[at] if len(args) > at and isinstance(args[at], int) else kwargs.get("dim", -1)
    if not isinstance(dim, int) or x.dim() < 2 or out.dim() != x.dim() or dim % x.dim() == x.dim() - 1:
        return None
    d = dim % x.dim()
    return math.prod(out.shape[:d]), out.shape[d], math.prod(out.shape[d + 1 :])


def _rows_joined(args: tuple, kwargs: dict, out: torch.Tensor) -> int:
    """Of `cat` along an axis after the first, of a contiguous result: its rows (the product of the axes
    before that axis); else 0."""
    dim = args[1] if len(args) > 1 else kwargs.get("dim", 0)
    if not isinstance(dim, int) or out.dim() < 2 or not out.is_contiguous():
        return 0
    d = dim % out.dim()
    return math.prod(out.shape[:d]) if d > 0 else 0


def _last_axis_reduction(name: str, args: tuple, kwargs: dict) -> bool:
    """Whether an op reduces its first operand (of two axes or more) over its last axis alone: amax, amin,
    sum or mean with `dim=[-1]`, max or min with `dim=-1`."""
    x = args[0] if args and isinstance(args[0], torch.Tensor) else None
    if x is None or x.dim() < 2 or name not in ("amax", "amin", "sum", "mean", "max", "min"):
        return False
    dim = args[1] if len(args) > 1 else kwargs.get("dim")
    if name in ("max", "min"):
        return isinstance(dim, int) and dim % x.dim() == x.dim() - 1
    return isinstance(dim, list | tuple) and len(dim) == 1 and dim[0] % x.dim() == x.dim() - 1


def _trailing_axes(name: str, args: tuple, kwargs: dict) -> int:
    """How many trailing axes an op computes each result "row" over from the whole row of its first
    operand: 1 for softmax, log-softmax, cumulative sums, products, maxima and minima, sorting and top-k
    along the last axis,
    the normalized axes of layer and RMS norms, the transformed axes of an FFT over the last ones; 0
    for any other op."""
    x = args[0] if args and isinstance(args[0], torch.Tensor) else None
    if x is None or not x.dim():
        return 0
    if name in ("native_layer_norm", "_fused_rms_norm", "rms_norm"):
        shape = args[1] if len(args) > 1 else kwargs.get("normalized_shape")
        return len(shape) if isinstance(shape, list | tuple) else 0
    if name in _FFT:
        dims = (
            sorted(d % x.dim() for d in args[1])
            if len(args) > 1 and isinstance(args[1], list | tuple)
            else []
        )
        return len(dims) if dims and dims == list(range(x.dim() - len(dims), x.dim())) else 0
    if name not in _ALONG_DIM:
        return 0
    at = 2 if name in _DIM_AFTER_K else 1
    dim = args[at] if len(args) > at and isinstance(args[at], int) else kwargs.get("dim", -1)
    return 1 if isinstance(dim, int) and dim % x.dim() == x.dim() - 1 else 0


def _replaced(demanded: _Views, written: tuple) -> None:
    """Take from a storage's demanded views what a write of the view `written` covers: the same view, any
    view within the contiguous block it writes, and of a contiguous view partly within it, that part (the
    rest stays demanded, in proportion)."""
    block = _contiguous(written)
    if written in demanded:
        del demanded[written]
    if block is None:
        return
    for sig in demanded.meeting(*block):
        start, end = _span(sig)
        if block[0] <= start and end <= block[1]:
            del demanded[sig]
            continue
        if _contiguous(sig) is None:
            continue  # partly overwritten, in a layout whose rest is no block: kept whole (errs high)
        nbytes, size = demanded.pop(sig), sig[1]
        for a, b in ((start, min(end, block[0])), (max(start, block[1]), end)):
            if b > a:
                rest = (a // size, size, ((1, (b - a) // size),) if b - a > size else ())
                demanded[rest] = max(demanded.get(rest, 0.0), nbytes * (b - a) / (end - start))


class _Views(dict):
    """A storage's demanded views ({signature: bytes}), indexed by byte span: the views that meet a byte
    range are found without a pass over all of them (a loop that reads and overwrites rows of one buffer
    leaves a view per row: each write, and each share asked of a written block, looked at every one)."""

    def __init__(self) -> None:
        super().__init__()
        # Views by the bit length of their span in bytes, each class as sorted (start, signature): a view
        # of class c spans fewer than 2**c bytes, so one that meets [lo, hi) starts after lo - 2**c.
        self.classes: dict[int, list[tuple[int, tuple]]] = {}
        self.scattered = 0  # views that are not one contiguous block
        # The union's parts, kept as views come and go: the bytes of views that run over no rows, and the
        # column spans of those that do by group, with each group's bytes once counted (None: to count).
        self.loose = 0.0
        self.runs: dict[tuple, dict[tuple, tuple[int, int]]] = {}
        self.run_bytes: dict[tuple, float | None] = {}

    def __setitem__(self, sig: tuple, nbytes: float) -> None:
        if sig in self:
            self._leave(sig, self[sig])
        else:
            start, end = _span(sig)
            bisect.insort(self.classes.setdefault((end - start).bit_length(), []), (start, sig))
            self.scattered += _contiguous(sig) is None
        super().__setitem__(sig, nbytes)
        run = _run(sig, nbytes)
        if run is None:
            self.loose += nbytes
        else:
            self.runs.setdefault(run[0], {})[sig] = run[1]
            self.run_bytes[run[0]] = None

    def __delitem__(self, sig: tuple) -> None:
        self._leave(sig, self[sig])
        super().__delitem__(sig)
        start, end = _span(sig)
        entries = self.classes[(end - start).bit_length()]
        del entries[bisect.bisect_left(entries, (start, sig))]
        self.scattered -= _contiguous(sig) is None

    def _leave(self, sig: tuple, nbytes: float) -> None:
        run = _run(sig, nbytes)
        if run is None:
            self.loose -= nbytes
            return
        group = self.runs[run[0]]
        del group[sig]
        if group:
            self.run_bytes[run[0]] = None
        else:
            del self.runs[run[0]], self.run_bytes[run[0]]

    def union(self) -> float:
        """The bytes the views demand, where views demanded whole that run over the same rows (the same
        outer strides and sizes) count their overlapping columns once: `x[:, :400]` and `x[:, 100:500]`
        read 500 columns, `x[:4]` and `x[2:6]` six rows. Any other view adds its bytes."""
        total = self.loose
        for group, spans in self.runs.items():
            if self.run_bytes[group] is None:
                size, outer, _ = group
                covered = sum(b - a for a, b in _merged(list(spans.values())))
                self.run_bytes[group] = covered * math.prod(n for _, n in outer) * size
            total += self.run_bytes[group]
        return total

    def pop(self, sig: tuple) -> float:  # type: ignore[override]
        nbytes = self[sig]
        del self[sig]
        return nbytes

    def meeting(self, lo: int, hi: int) -> list[tuple]:
        """The views whose byte span meets [lo, hi)."""
        found = []
        for c, entries in self.classes.items():
            i = bisect.bisect_right(entries, (lo - (1 << c),))
            j = bisect.bisect_left(entries, (hi,))
            found.extend(sig for start, sig in entries[i:j] if _span(sig)[1] > lo)
        return found


_NO_VIEWS = _Views()  # what `share` reads of a storage nothing has demanded yet (never written into)


def _clipped(span: tuple[int, int], lo: int, hi: int) -> tuple[int, int]:
    return max(span[0], lo), min(span[1], hi)


def _contiguous(sig: tuple) -> tuple[int, int] | None:
    """The byte range [start, end) of a view that is one contiguous block, else None."""
    dims = sig[2]
    return None if dims and (len(dims) > 1 or dims[0][0] != 1) else _span(sig)


def _merged(blocks: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[list[int]] = []
    for a, b in sorted(blocks):
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return [(a, b) for a, b in merged]


@functools.lru_cache(maxsize=1 << 16)
def _span(sig: tuple) -> tuple[int, int]:
    """The byte range [start, end) a view's signature covers (cached: the needed-reads walk asks for the
    same views' ranges again and again)."""
    offset, size, dims = sig
    start = offset * size
    return start, start + sum((n - 1) * s for s, n in dims) * size + size


@functools.lru_cache(maxsize=1 << 17)
def _disjoint(a: tuple, b: tuple) -> bool:
    """True when two views of a storage provably address no common byte: their byte ranges do not
    overlap, or they have the same layout and fall in different lanes of it (slices of a last dimension,
    interleaved elements). Cached: the walk asks about the same pairs of views again and again."""
    (start_a, end_a), (start_b, end_b) = _span(a), _span(b)
    if end_a <= start_b or end_b <= start_a:
        return True
    if a[1] != b[1] or a[2] != b[2] or not a[2]:
        return False
    (inner, n), outer = a[2][0], a[2][1:]
    shift = a[0] - b[0]
    if inner > 1 and all(s % inner == 0 for s, _ in outer) and shift % inner:
        return True
    if not outer:
        return False
    period, width = outer[0][0], (n - 1) * inner + 1
    if any(s % period for s, _ in outer) or width > period:
        return False
    lane_a, lane_b = a[0] % period, b[0] % period
    return max(lane_a, lane_b) + width <= period and abs(lane_a - lane_b) >= width


def _disjoint_total(views: Mapping[tuple, float]) -> float:
    """Bytes of a set of pairwise disjoint views: a lower bound of their union. The set is chosen
    greedily twice, largest first and lowest address first, and the larger total kept."""
    ranges = sorted(_span(sig) for sig in views)
    if all(ranges[i][1] <= ranges[i + 1][0] for i in range(len(ranges) - 1)):
        return sum(views.values())  # separate byte ranges (slices of a buffer): all of them, in one pass
    best = 0.0
    for order in (lambda kv: -kv[1], lambda kv: (kv[0][0], -kv[1])):
        chosen, total = _Written(), 0.0  # the views chosen, by layout, lane and span
        for sig, nbytes in sorted(views.items(), key=order):
            if not chosen.meets(sig):
                chosen.add(sig)
                total += nbytes
        best = max(best, total)
    return best


def _lane(sig: tuple) -> int | None:
    """A bucket of the lanes of a view whose layout interleaves them, such that views of that layout two
    buckets apart or more are disjoint (`_disjoint`): of elements (every stride a multiple of the innermost,
    over 1), the offset modulo that stride; of contiguous runs of width w repeated at a period (every outer
    stride a multiple of it), the offset modulo the period over w, for a run that does not wrap. None
    where the layout has no lanes."""
    dims = sig[2]
    if not dims:
        return None
    (inner, n), outer = dims[0], dims[1:]
    if inner > 1:
        return sig[0] % inner if not any(s % inner for s, _ in outer) else None
    if not outer:
        return None
    period, width = outer[0][0], n
    lane = sig[0] % period
    if any(s % period for s, _ in outer) or lane + width > period:
        return None
    return lane // width


def _near(lanes: Mapping, lane: int) -> Iterable[tuple]:
    """The chosen views of a layout that a view in bucket `lane` may meet."""
    return (sig for b in (lane - 1, lane, lane + 1, None) for sig in lanes.get(b, ()))


def _flat(lanes: Mapping) -> Iterable[tuple]:
    return (sig for group in lanes.values() for sig in group)


def _landing(n: int, drawn: value_range.Drawn, size: int, wraps: bool) -> tuple[float, float]:
    """Of n lookups through uniform draws into an axis of `size`, those that land on it and the values
    they are drawn from there (`value_range.landing`): a draw out of the axis's range (from 0, or from
    -size where negative positions count from the end) must have been replaced before the lookup (ids
    outside a vocabulary shard set to a pad row), so it names no row of its own."""
    return value_range.landing(n, drawn, -size if wraps else 0, size - 1)


def _gathers_without_values(entries: list) -> float:
    """Bytes of the rows that several gathers on the same storage address, index values unknown: each its
    own estimate, except gathers of the whole of their results through uniform draws of the same values into
    the same rows. Those name the distinct rows of all their lookups together, and a gather through the
    same index tensor as another (one lookup written twice) adds none."""
    total = 0.0
    pooled: dict[tuple, dict[tuple, _Drawn]] = {}
    for sig, dim, row_bytes, estimate, _values, fraction, drawn in entries:
        if drawn is None or fraction < 1.0:
            total += row_bytes * estimate * fraction
            continue
        pool = (sig, dim, row_bytes, drawn.draws, drawn.per_row, drawn.values)
        pooled.setdefault(pool, {})[drawn.index] = drawn
    for (_sig, _dim, row_bytes, _draws, per_row, values), by_index in pooled.items():
        lookups = sum(d.lookups for d in by_index.values())
        extra = max(d.extra for d in by_index.values())
        most = min(sum(d.most for d in by_index.values()), values + extra)
        total += row_bytes * min(most, value_range.distinct_drawn(lookups, per_row, values) + extra)
    return total


def _union_rows(entries: list) -> float:
    """Bytes of the distinct rows that several gathers on the same storage address (data known)."""
    total = 0.0
    groups: dict[tuple, list] = {}
    for sig, dim, row_bytes, _estimate, values, fraction, *_ in entries:
        groups.setdefault((sig, dim, row_bytes), []).append((values, fraction))
    for (_sig, _dim, row_bytes), items in groups.items():
        tensors = [v[1] if isinstance(v, tuple) else v for v, _ in items]
        unique = torch.unique(torch.cat([t.reshape(-1) for t in tensors])).numel() if tensors else 0
        total += unique * row_bytes * max(f for _, f in items)
    return total


# ------------------------------------------------------------------------------------------------ counting


def trace(
    problem: Problem,
    inputs: Mapping[str, Any],
    *,
    with_data: bool,
    generic: Collection[str] = (),
    finite: Collection[str] = (),
    ranges: Mapping[str, value_range.Range] | None = None,
    mixed: bool = False,
    stale: Collection[str] = (),
    follow_masks: bool = True,
    exact_products: bool = False,
    small_values: bool = True,
    made: Collection[str] = (),
) -> OpCounts:
    """Run the reference on `inputs` (meta tensors, or real CPU data with `with_data`) and count it.
    `generic` names the inputs drawn from a continuous random distribution (no exact zeros or infinities
    by construction); `finite` those known to hold no infinity (zeros maybe). On data, each input's values
    are checked for both. Every other input may be structured (masks, padding, infinities), which limits
    what `needed_read_bytes` can claim. On meta, `ranges` bounds the values of inputs (from the custom
    entry point, `meta_inputs`), so that reads of values they decide need no data. With `mixed` (and
    `with_data`), inputs may be on meta and on the CPU at once (`mixed_inputs`; `stale` names those whose
    values are not what a run on data gives them). Without `follow_masks`, no mask built in the reference
    is followed: the work it masks out counts as the reference performs it (what a bound that prices the
    masked scores assumes). On data, products are noise at their scale (`_stand_in`) unless
    `exact_products`. Without `small_values`, a small tensor's values that decide what is read are not
    asked for on meta: every position counts as kept. `made` names the inputs a custom entry point makes
    (on meta, the positions of a gather among them are asked for: `_Recorder._ask_positions`). Raises
    DataDependent when meta tensors cannot carry the reference through."""
    with _without_gc():
        # Off until the recorder is gone: a collection right after the run would walk every tensor and
        # op it recorded (a tenth of a second per trace of a loop).
        return _trace(
            problem,
            inputs,
            with_data=with_data,
            generic=generic,
            finite=finite,
            ranges=ranges or {},
            mixed=mixed,
            stale=stale,
            follow_masks=follow_masks,
            exact_products=exact_products,
            small_values=small_values,
            made=made,
        )


def _trace(
    problem: Problem,
    inputs: Mapping[str, Any],
    *,
    with_data: bool,
    generic: Collection[str],
    finite: Collection[str],
    ranges: Mapping[str, value_range.Range],
    mixed: bool,
    stale: Collection[str],
    follow_masks: bool,
    exact_products: bool,
    small_values: bool,
    made: Collection[str],
) -> OpCounts:
    from solgym.inputs import as_outputs, kept_defaults, on_device, random_range

    definition = problem.definition
    # A module of its own for each trace: what the reference keeps between calls (a mask in an
    # `lru_cache`, a module-level dict) was made by another trace, whose recorder saw it made.
    run = definition.reference_module().run
    recorder = _Recorder(with_data)
    recorder.mixed = mixed
    recorder.held_limit = trace_budget() if with_data else None
    recorder.follow_masks = follow_masks
    recorder.small_values = small_values
    recorder.exact_products = exact_products
    tensor_inputs = {name: v for name, v in inputs.items() if isinstance(v, torch.Tensor)}
    input_keys = {}
    for name, t in tensor_inputs.items():
        key = recorder._remember(t)
        input_keys[key] = name
        # A window input's storage is smaller than the tensor it stands for.
        if recorder.storage_bytes[key] < _unique_elements(t) * t.element_size():
            recorder.storage_bytes[key] = _unique_elements(t) * t.element_size()
            recorder.windows.add(key)
        if name in ranges and not with_data:
            recorder.ranges[key] = (t.dtype, ranges[name])
        elif name in generic and t.device.type == "meta" and (drawn := random_range(t.dtype)) is not None:
            recorder.ranges[key] = (t.dtype, drawn)
        if name in stale:
            recorder.stale.add(key)
        if not with_data and name in made and not (t.is_floating_point() or t.is_complex()):
            recorder.made_indices.add(key)
        if name in generic and t.is_floating_point() and not _quantized_of(t.dtype):
            continue
        if with_data and t.device.type != "meta" and name not in stale:
            zeros, infinite = _special_values(t)
        else:
            bounded = name in ranges and not any(map(math.isinf, ranges[name][:2]))
            zeros, infinite = True, name not in finite and not bounded and _holds_non_finite(t.dtype)
        if zeros:
            recorder.zeros.add(key)
            recorder.blocks.add(key)
        if infinite:
            recorder.infinite.add(key)
    try:
        device = torch.device("cpu" if with_data else "meta")
        with (
            kept_defaults(),
            torch.no_grad(),
            _without_gc(),
            _TorchFunctions(recorder),
            on_device(device, problem),
            recorder,
        ):
            returned = run(*(inputs[name] for name in definition.inputs))
    except DataDependent as e:
        # What the reference made before it needed data, for `count_on_data` to choose how to trace it.
        e.made_bytes = max((n for k, n in recorder.storage_bytes.items() if k not in input_keys), default=0)
        raise
    except Exception as e:  # noqa: BLE001 - any failure on meta tensors means the reference needs data
        if with_data:
            raise
        raise DataDependent(f"{type(e).__name__}: {e}") from None
    try:
        outputs = as_outputs(problem, returned)
    except ValueError as e:  # what it returns does not match the definition's outputs
        raise ProblemError(problem.path or problem.name, "reference", str(e)) from None
    tensors_out = [t for t in outputs if isinstance(t, torch.Tensor)]
    for t in tensors_out:
        recorder._remember(t)
    macs, read_by_key, flops = _demand(recorder, tensors_out, input_keys)
    needed_by_key = _needed(recorder, tensors_out, input_keys)
    counts = OpCounts(macs=macs, flops_other=flops, traced_on="meta" if not with_data else "cpu data")
    for key, name in input_keys.items():
        t = tensor_inputs[name]
        # No more than the input's own elements, though its storage may hold more (`randperm(4 * n)[:n]`
        # returned by an entry point): a kernel is given the view.
        counts.read_bytes[name] = min(
            read_by_key.get(key, 0.0), float(_unique_elements(t) * t.element_size())
        )
        counts.read_elements[name] = counts.read_bytes[name] / t.element_size()
        counts.needed_read_bytes[name] = min(needed_by_key.get(key, 0.0), counts.read_bytes[name])
        counts.needed_read_elements[name] = counts.needed_read_bytes[name] / t.element_size()
    for (name, spec), t in zip(definition.outputs.items(), outputs, strict=True):
        if isinstance(t, torch.Tensor):
            # Written at the dtype the definition gives it (a kernel must return that), whatever the
            # reference's own result holds.
            counts.write_elements[name] = float(t.numel())
            counts.write_bytes[name] = float(t.numel()) * DTYPES[spec.dtype].bytes_per_element
        elif spec.shape is not None:
            raise ProblemError(
                problem.path or problem.name,
                f"outputs.{name}",
                f"run returned {type(t).__name__}, not a tensor",
            )
    counts.op_count = len(recorder.ops)
    if recorder.decided:
        counts.notes.append(
            f"{recorder.decided} tensor value(s) the reference reads follow from how they were made "
            "(value ranges); traced without data"
        )
    return counts


def count(problem: Problem, workload: Workload, *, max_bytes: int = DATA_TRACE_BYTES) -> OpCounts:
    """Count a workload: on meta tensors when the reference allows it, else on seeded CPU data (see
    `count_on_data`). A workload that reads safetensors blobs is counted on their data where it can be
    even when the reference reads no value: on meta a gather by indices from a blob names as many rows as
    lookups, where its data names the distinct ones (token ids repeat)."""
    try:
        counts = count_on_meta(problem, workload)
        return _on_blob_data(problem, workload, counts, max_bytes) if workload.blobs else counts
    except DataDependent as e:
        reason = _first_line(str(e))
        _MADE_ON_META[_reference_key(problem)] = getattr(e, "made_bytes", 0)
        if not isinstance(e, _TooLong):
            _NEEDS_VALUES.add(_reference_key(problem))
        if isinstance(e, _SmallValues):
            _SMALL_VALUES.add(_reference_key(problem))
    try:
        counts = count_on_data(problem, workload, max_bytes=max_bytes)
    except (ProblemError, MemoryError):
        raise
    except Exception as e:  # noqa: BLE001 - the reference itself fails: say so, with both reasons
        raise ProblemError(
            problem.path or problem.name,
            "reference",
            f"cannot be counted for workload {workload.uuid}: on meta tensors, {reason}; on CPU data, "
            f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}",
        ) from e
    read = reason.startswith("the reference reads")  # a value read, as expected of it: no failure
    if counts.traced_on != "meta":  # (not counted on meta after all, its data failing: it says so)
        counts.notes.insert(
            0, f"{reason}; traced on data" if read else f"meta tracing failed ({reason}); traced on data"
        )
    return counts


def _without_data(func: Any, name: str, error: Exception) -> str:
    """Why an op failed on meta tensors, in the reference's terms where torch's message would not say."""
    if name in _VALUE_SHAPED or name.startswith(("nonzero", "masked_select")):
        return f"the reference reads tensor values ({func}: the size of its result depends on them)"
    if "device" in str(error) and "meta" in str(error):
        return (
            f"{func} meets a tensor made on the CPU (a factory without `device=`, or `.cpu()`) beside the "
            "inputs on meta"
        )
    return f"{func} cannot run without data: {error}"


def _first_line(message: str, limit: int = 200) -> str:
    """The first line of a message, cut at a word boundary and marked where it is longer than `limit`."""
    line = message.splitlines()[0] if message else ""
    if len(line) <= limit:
        return line
    cut = line[:limit].rsplit(" ", 1)[0]
    return cut.rstrip(" ,.;:") + " ..."


def _on_blob_data(problem: Problem, workload: Workload, on_meta: OpCounts, max_bytes: int) -> OpCounts:
    """The counts of a workload whose blobs are at hand, traced on their data; `on_meta` where a blob is
    missing or the trace on data fails (it then says why)."""
    from solgym.inputs import blob_identity

    if blob_identity(problem, workload) is None:
        return on_meta
    try:
        counts = count_on_data(problem, workload, max_bytes=max_bytes)
    except Exception as e:  # noqa: BLE001 - the shapes alone still give the meta counts
        on_meta.notes.append(
            f"counted on meta: on its blobs' data, {type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
        )
        return on_meta
    counts.notes.insert(0, "traced on data: the values of its blobs decide what it reads")
    return counts


def count_on_meta(
    problem: Problem, workload: Workload, *, follow_masks: bool = True, small_values: bool = True
) -> OpCounts:
    """Count a workload on meta tensors. Where the reference reads a value of a custom input's making, what
    the entry point's tensors hold is learnt from a run of it on meta (`entry_ranges`). Raises
    DataDependent where the reference needs values that `solgym.value_range` cannot decide, or loops
    through more than `META_OPS_WITH_READS` ops after such a read. `follow_masks` and `small_values` as
    for `trace`."""
    notes: list[str] = []
    ranges: dict[str, value_range.Range] = {}
    inputs = meta_inputs(problem, workload, notes, ranges)
    generic = _generic(workload)
    options = {
        "with_data": False,
        "generic": generic,
        "follow_masks": follow_masks,
        "small_values": small_values,
        "made": [name for name, source in workload.inputs.items() if source.kind == "custom"],
    }
    try:
        counts = trace(problem, inputs, ranges=ranges, **options)
    except _Undecided:
        if ranges or not (ranges := entry_ranges(problem, workload, inputs)):
            raise
        counts = trace(problem, inputs, ranges=ranges, **options)
    counts.notes.extend(notes)
    return counts


def meta_inputs(
    problem: Problem,
    workload: Workload,
    notes: list[str] | None = None,
    ranges: dict[str, value_range.Range] | None = None,
) -> dict[str, Any]:
    """The inputs of a workload as meta tensors, with Python scalars produced by a custom entry point
    taken from that entry point run on the meta device (it then allocates nothing); that run also fills
    `ranges` (see `entry_ranges`)."""
    from solgym.inputs import make_inputs

    inputs = make_inputs(problem, workload, device="meta")
    notes = notes if notes is not None else []
    definition = problem.definition
    custom = [n for n in definition.inputs if workload.inputs[n].kind == "custom"]
    wanted = [n for n in custom if definition.inputs[n].is_scalar]
    # Integer tensors it makes are indices, whose ranges bound the rows a gather names.
    indices = ranges is not None and any(DTYPES[definition.inputs[n].dtype].kind == "int" for n in custom)
    if not wanted and not indices:
        return inputs
    try:
        produced, known = _entry_on_meta(problem, workload, inputs)
    except Exception as e:  # noqa: BLE001 - the entry point needs real data for its scalars
        if wanted and not all(DTYPES[definition.inputs[n].dtype].is_float for n in wanted):
            raise DataDependent(
                f"{definition.custom_inputs_entrypoint} cannot produce scalar inputs on meta: {e}"
            ) from None
        produced, known = {}, {}
    if ranges is not None:
        ranges.update(known)
    unread = [n for n in wanted if not isinstance(v := produced.get(n), int | float) or math.isnan(v)]
    inputs.update({n: produced[n] for n in wanted if n not in unread})
    if unread:
        # Float scalars (scales, epsilons) change values, not the work; counting needs none of them.
        inputs.update({n: 1.0 for n in unread})
        notes.append(f"scalar inputs {', '.join(unread)} need data to generate; counted with 1.0")
    return inputs


def entry_ranges(
    problem: Problem, workload: Workload, inputs: Mapping[str, Any]
) -> dict[str, value_range.Range]:
    """What the values of the tensors a custom entry point makes lie in (`solgym.value_range`), from a run
    of it on meta tensors; empty where there is none or it fails."""
    try:
        return _entry_on_meta(problem, workload, inputs)[1]
    except Exception:  # noqa: BLE001 - the entry point needs data: its inputs stay unknown
        return {}


def _entry_on_meta(
    problem: Problem, workload: Workload, inputs: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, value_range.Range]]:
    """Run the custom entry point on the meta device under a recorder: what it returns (its scalar inputs
    as Python numbers) and the ranges of its tensor inputs. A float it reads from a tensor no range
    decides (a scale it returns) comes back as NaN, and only ranges known before the first such read are
    kept: after it, control flow may have gone astray."""
    recorder = _Recorder(with_data=False)
    recorder.unread = True
    produced = _run_entry(problem, workload, inputs, recorder, torch.device("meta"))
    custom = [n for n, s in workload.inputs.items() if s.kind == "custom"]
    known = recorder.ranges if recorder.trusted is None else recorder.trusted
    ranges = {}
    for name in custom:
        value = produced.get(name)
        if not isinstance(value, torch.Tensor):
            continue
        entry_range = known.get(_key(value))
        if (
            entry_range is not None
            and entry_range == recorder.ranges.get(_key(value))
            and entry_range[0] == value.dtype
        ):
            ranges[name] = entry_range[1]
    return produced, ranges


def _run_entry(
    problem: Problem, workload: Workload, inputs: Mapping[str, Any], recorder: _Recorder, device: torch.device
) -> dict[str, Any]:
    """Run the custom entry point on `device` under `recorder`, seeded as for an evaluation, with the
    workload's axes and scalar inputs; its scalar inputs come back as Python numbers (read under the
    recorder, where a float no range decides is NaN)."""
    from solgym.inputs import derive_seed, kept_defaults, on_device, reference_module

    definition = problem.definition
    entry = getattr(reference_module(problem), definition.custom_inputs_entrypoint or "", None)
    if entry is None:
        raise DataDependent("no custom input entry point")
    scalars = {n: v for n, v in inputs.items() if not isinstance(v, torch.Tensor)}
    with _without_gc(), torch.random.fork_rng(devices=[]), kept_defaults():
        torch.manual_seed(derive_seed(0, workload.uuid, "custom"))
        with torch.no_grad(), _TorchFunctions(recorder), on_device(device, problem), recorder:
            produced = dict(entry({**problem.axes(workload), **scalars}, device))
            for name, source in workload.inputs.items():
                value = produced.get(name)
                if (
                    source.kind == "custom"
                    and definition.inputs[name].is_scalar
                    and isinstance(value, torch.Tensor)
                ):
                    produced[name] = value.item()
    return produced


def check_data(problem: Problem, workload: Workload, data_root: str | None = None) -> None:
    """Raise ProblemError naming the file when a safetensors input of the workload is missing (checked
    before any input is generated, since generating a large workload's other inputs costs seconds)."""
    from solgym.inputs import TRACE_DATA_ENV, blob_file

    for name in workload.blobs:
        source = workload.inputs[name]
        if blob_file(problem, workload, name, data_root) is None:
            raise ProblemError(
                problem.path or problem.name,
                f"workload {workload.uuid} input {name}",
                f"the reference reads tensor values, and safetensors blob {source.path} was not found "
                f"(set ${TRACE_DATA_ENV} to the folder that holds the trace dataset)",
            )


def count_on_data(problem: Problem, workload: Workload, *, max_bytes: int = DATA_TRACE_BYTES) -> OpCounts:
    """Count a workload on seeded CPU data (`data_inputs`). A workload whose var axes add more than
    `max_bytes` is traced at two shrunk sizes, t and t/2 (see `_shrunk_pairs`), and every count is
    extrapolated to full size by the larger of a power-law and an affine fit through the two points. For
    counts that are polynomials in the axes with non-negative coefficients both fits err low, never
    high, and either is exact when the count is a monomial (power law) or affine (affine fit). Where the
    two disagree on a count that prices, a third size along the same axis gives a quadratic, taken where
    lower (`_third_point`) but never below the affine fit: exact for a quadratic with a negative term (a
    fixed prefix, a chunk of queries against a fixed cache), which the two fits over-estimate. Where the
    quadratic bends below the affine fit and misses a fourth size, the count follows no fit (it saturates,
    or data decide it), and the workload is traced at full size where its var axes add at most
    DATA_TRACE_UNFITTED_BYTES. The needed reads are extrapolated as the smaller of their two shares of
    each input. Where the const-size inputs and outputs alone do not fit this machine (`_check_memory`),
    tensors over MIXED_BYTES are counted on meta and the rest on data (`mixed_inputs`); where even that
    fails, the refusal names the sizes. A reference that needs the values of a small tensor only
    (`_SMALL_VALUES`) is traced at full size first, with its tensors over MIXED_BYTES on meta."""
    if _reference_key(problem) in _SMALL_VALUES:
        # The values it needs are of a small tensor (a loss's targets, a tenth of them ignored at random):
        # a full-size trace reads this workload's own, where traces at shrunk sizes, each with its own
        # draws, would fit a line through theirs.
        try:
            counts = _trace_mixed(problem, workload)
        except (ProblemError, MemoryError):
            raise
        except Exception:  # noqa: BLE001 - it reads a value of a tensor on meta after all: as any other
            pass
        else:
            counts.traced_on = "cpu data, scaled x1"
            counts.notes.append(f"traced at full size, its tensors over {MIXED_BYTES >> 20} MB on meta")
            return counts
        try:
            return _count_within_memory(problem, workload, max_bytes)
        except Exception as e:  # noqa: BLE001 - what it needs data for, meta takes as all kept: as before
            counts = count_on_meta(problem, workload, small_values=False)
            counts.notes.append(
                f"counted on meta, every position taken as kept: on data, {type(e).__name__}: {_first_line(str(e))}"
            )
            return counts
    try:
        return _count_within_memory(problem, workload, max_bytes)
    except _Overgrown as e:
        raise ProblemError(
            problem.path or problem.name,
            f"workload {workload.uuid}",
            f"the reference reads tensor values, so it is counted on CPU data, and its trace, with its "
            f"tensors over {MIXED_BYTES >> 20} MB on meta, {e}; "
            "count it on a machine with more memory",
        ) from None


def _count_within_memory(problem: Problem, workload: Workload, max_bytes: int) -> OpCounts:
    """`count_on_data`, which raises _Overgrown where even a mixed trace holds too much."""
    check_data(problem, workload)
    refusal = None
    try:
        _check_memory(problem, workload)
    except ProblemError as e:
        refusal = e
    if refusal is None and _blob_indexed(problem, workload):
        refusal = ProblemError(
            problem.path or problem.name,
            f"workload {workload.uuid}",
            "it reads index blobs, so it is traced at full size",
        )
    if refusal is not None:
        # Too large for data, or a paged cache read through blob indices: tensors over MIXED_BYTES on meta,
        # the rest (indices, routing) on data.
        try:
            return _count_on_data(problem, workload, max_bytes, refusal.message)
        except Exception as e:  # noqa: BLE001 - the reference needs the values of a large tensor
            raise ProblemError(
                refusal.file,
                refusal.where,
                f"{refusal.message} (counted with its tensors over {MIXED_BYTES >> 20} MB on meta, it fails: "
                f"{type(e).__name__}: {str(e)[:200]})",
            ) from None
    large = _large_inputs(problem, workload)
    made = _made_before_data(problem, workload) if large else 0
    if made >= HEAVY_BYTES:
        # A reference that makes gigabytes from its large inputs before it reads a value (an FP8 expert
        # stack dequantized to fp32) would spend a data trace's time and memory on them, while the values
        # it reads are its routing and indices: its tensors over MIXED_BYTES go on meta, and where it reads
        # a value of one after all, it is traced on data.
        try:
            return _count_on_data(
                problem,
                workload,
                max_bytes,
                f"{', '.join(large)} over {MIXED_BYTES >> 20} MB, and {made / 2**30:.1f} GiB made from them "
                "before a value is read",
            )
        except Exception:  # noqa: BLE001 - the reference reads values of a large tensor: trace all on data
            pass
    try:
        return _count_on_data(problem, workload, max_bytes, None)
    except _Overgrown as e:
        # Its intermediates outgrow memory on data (score tensors of a long prefill, kept by the recorder):
        # those over MIXED_BYTES go on meta.
        grown = f"its trace on data {e}"
    return _count_on_data(problem, workload, max_bytes, grown)


# The largest tensor each reference made on meta before it read a value (`_made_before_data`).
_MADE_ON_META: dict[tuple, int] = {}
# A reference that makes a tensor this large before it reads a value is traced mixed where it can be.
HEAVY_BYTES = 1 << 30
# References that failed on meta at full size for a value no range decides (not for the length of a loop after
# decided reads): their shrunk traces go straight to data, as a meta run would fail the same way after
# paying for the entry point and the ops before the read (a second a trace for a 256-expert MoE).
_NEEDS_VALUES: set[tuple] = set()
# ... of which those that failed for the values of a small tensor (`_SmallValues`): traced at full size first.
_SMALL_VALUES: set[tuple] = set()


def _reference_key(problem: Problem) -> tuple:
    return (problem.name, hash(problem.definition.reference))


def _made_before_data(problem: Problem, workload: Workload) -> int:
    """The size of the largest tensor the reference makes on meta before it first needs a value (0 for
    one that needs none), learnt once per reference."""
    key = _reference_key(problem)
    if key not in _MADE_ON_META:
        try:
            count_on_meta(problem, workload)
            _MADE_ON_META[key] = 0
        except DataDependent as e:
            _MADE_ON_META[key] = getattr(e, "made_bytes", 0)
            if not isinstance(e, _TooLong):
                _NEEDS_VALUES.add(key)
        except Exception:  # noqa: BLE001 - the data trace will say what is wrong
            _MADE_ON_META[key] = 0
    return _MADE_ON_META[key]


def _large_inputs(problem: Problem, workload: Workload) -> list[str]:
    """The tensor inputs of a workload over MIXED_BYTES at its own axes."""
    axes = problem.axes(workload)
    large = []
    for name, spec in problem.definition.inputs.items():
        shape = problem.definition.shape(spec, axes)
        if shape and math.prod(shape) * DTYPES[spec.dtype].bytes_per_element > MIXED_BYTES:
            large.append(name)
    return large


def _count_on_data(
    problem: Problem, workload: Workload, max_bytes: int, mixed_reason: str | None
) -> OpCounts:
    """`count_on_data` with its tensors over MIXED_BYTES on meta where `mixed_reason` says why."""
    from solgym.inputs import make_inputs

    mixed = mixed_reason is not None
    trace_on_data = functools.partial(_trace_on_data, mixed=mixed)
    if _variable_bytes(problem, workload) <= max_bytes:
        counts = _mixed_note(trace_on_data(problem, workload, meta=False), mixed_reason)
        counts.traced_on = "cpu data, scaled x1"
        return counts
    a = b = None
    hints, hint_held = divisor_hints(problem), False
    pairs = _shrunk_pairs(problem, workload, max_bytes, hints)
    full = make_inputs(problem, workload, device="meta")
    caps = _read_caps(full)
    known = _known_line(problem, workload, pairs[0][0][0], caps) if pairs else None
    by_product = known is None and (known := _known_product(problem, workload)) is not None
    for pair in [] if known else pairs:
        (small, t_small), (smaller, t_smaller) = pair
        against = _against_hints(hints, small) or _against_hints(hints, smaller)
        if against and hint_held:
            continue
        try:
            a = trace_on_data(problem, small)
            line = _line(problem, workload, small)
            points = _LINES.setdefault(line, {}) if line else {}
            found = _on_a_line(points, line, workload, small, a, caps)
            if found is not None:
                smaller, t_smaller, b = found
                # The axis' own ratio: t is rounded where halving the axis is not exact (3889 -> 1944).
                t_small = small.axes[line[2]] / workload.axes[line[2]]
            else:
                b = trace_on_data(problem, smaller)
                if line:
                    points[smaller.axes[line[2]]] = b
            if line:
                points[small.axes[line[2]]] = a
            break
        except Exception:  # noqa: BLE001 - the reference rejects these sizes (e.g. a multiple of 128); try larger
            a = b = None
            # A size against the description's "multiple of n" that the reference rejects bears the
            # rule out: the other sizes against it are not tried.
            hint_held = hint_held or against
    if known:
        (small, t_small, a), (smaller, t_smaller, b) = known
    if a is not None and b is not None and t_smaller > t_small:
        (small, t_small, a), (smaller, t_smaller, b) = (smaller, t_smaller, b), (small, t_small, a)
    if a is None or b is None:
        counts = _mixed_note(trace_on_data(problem, workload, meta=False), mixed_reason)
        counts.traced_on = "cpu data, scaled x1"
        if pairs:
            why = "no smaller workload that the reference accepts"
        elif workload.blobs:
            why = "its blobs fix the sizes of the axes they index"
        else:
            why = "no smaller sizes keep their shrunk axes within 1% of one ratio (a small odd size does not halve)"
        counts.notes.append(f"{why}; traced on full-size data")
        return counts
    values_b = _flatten(b)
    # Counts the two fits disagree on (not a monomial of the axis) get a third point, where one is to be had.
    bent = {
        key
        for key, value in _flatten(a).items()
        if key != ("flops_other",) and _bent(t_smaller, values_b.get(key, 0.0), t_small, value, caps.get(key))
    }
    third = _third_point(problem, workload, small, smaller, trace_on_data) if bent else None
    values_c = _flatten(third[1]) if third is not None else {}
    fourth: tuple | None = None  # traced when a quadratic bends below the affine fit
    missed = False  # whether a quadratic missed the fourth size, so that the two fits stood

    def extrapolate(key: tuple, value: float) -> float:
        nonlocal fourth, missed
        other = values_b.get(key, 0.0)
        fitted = _extrapolate(t_smaller, other, t_small, value)
        if key not in bent or key not in values_c:
            return fitted
        points = ((third[0], values_c[key]), (t_smaller, other), (t_small, value))
        quadratic, affine = _quadratic_at(points), _fits(t_smaller, other, t_small, value)[0]
        if quadratic < affine:
            # Below the line through the two larger points: the count is concave at the shrunk sizes. A
            # concave quadratic (a chunk of queries against a fixed cache) passes through a fourth size
            # too; a count decided by random data (rows a threshold on noise selects) bends by chance,
            # which the quadratic magnifies over the extrapolation (-57% at 16x), and misses it.
            if fourth is None:
                found = _third_point(problem, workload, smaller, third[2], trace_on_data)
                fourth = (found[0], _flatten(found[1]), found[2]) if found else ()
            at = fourth[1].get(key, 0.0) if fourth else None
            if at is None or abs(_quadratic_at(points, fourth[0]) - at) > 1e-6 * max(abs(at), 1.0):
                missed = True
                return fitted  # no quadratic: the two fits, as where no third size is to be had
        return max(value, min(fitted, quadratic))

    counts = _mixed_note(a.scaled(extrapolate), mixed_reason)
    if missed and _variable_bytes(problem, workload) <= DATA_TRACE_UNFITTED_BYTES:
        # A count the quadratic did not carry to a fourth size (a saturating one: distinct ids of random
        # draws, tokens kept by lengths of data) is over-estimated by the larger of the two fits: the
        # workload is traced as is where its footprint allows.
        try:
            whole = _mixed_note(trace_on_data(problem, workload, meta=False), mixed_reason)
        except (_Overgrown, MemoryError):
            whole = None
        if whole is not None:
            whole.traced_on = "cpu data, scaled x1"
            sizes = [dict(w.axes) for w in (small, smaller, third[2], *(fourth[2:] if fourth else ()))]
            whole.notes.append(f"traced on full-size data: the counts at {sizes} follow no fit")
            return whole
    on = "meta" if a.traced_on == b.traced_on == "meta" else "cpu data"
    counts.traced_on = f"{on} at var axes x{t_small:g} and x{t_smaller:g}, extrapolated"
    counts.notes.append(
        f"counts fitted through {dict(small.axes)} and {dict(smaller.axes)} and extrapolated to {dict(workload.axes)}"
    )
    if values_c:
        counts.notes.append(
            f"counts the two fits disagree on also fitted by a quadratic through {dict(third[2].axes)}, "
            "the lower taken"
        )
    if fourth:
        counts.notes.append(
            f"where the quadratic bends below the affine fit, taken only if it passes through {dict(fourth[2].axes)}"
            + (
                "; for some counts it does not: the larger of the two fits taken for them (errs high where the "
                "count is concave)"
                if missed
                else ""
            )
        )
    if by_product:
        counts.notes.append(
            "fitted along the product of the var axes: the counts depend on them only through it"
        )
    metas = [full, *(make_inputs(problem, w, device="meta") for w in (small, smaller))]
    sizes = [
        {n: _unique_elements(t) * t.element_size() for n, t in m.items() if isinstance(t, torch.Tensor)}
        for m in metas
    ]
    for name, cap in sizes[0].items():
        if name not in counts.read_bytes:
            continue
        element = metas[0][name].element_size()
        counts.read_bytes[name] = min(counts.read_bytes[name], cap)
        counts.read_elements[name] = counts.read_bytes[name] / element
        share = min(
            c.needed_read_bytes.get(name, 0.0) / size[name] if size.get(name) else 0.0
            for c, size in ((a, sizes[1]), (b, sizes[2]))
        )
        counts.needed_read_bytes[name] = min(share * cap, counts.read_bytes[name])
        counts.needed_read_elements[name] = counts.needed_read_bytes[name] / element
    counts.write_bytes, counts.write_elements = _output_sizes(problem, workload)
    return counts


def _blob_indexed(problem: Problem, workload: Workload) -> bool:
    """Whether a workload reads blobs and has an input over MIXED_BYTES: a paged cache whose pages the
    blob's indices name. It is traced mixed, the cache on meta, as a trace at full size on data would hold
    the cache and the reference's copies of it (gigabytes for a cache of a million pages)."""
    return bool(workload.blobs) and bool(_large_inputs(problem, workload))


def _mixed_note(counts: OpCounts, reason: str | None) -> OpCounts:
    if reason is not None:
        counts.notes.append(
            f"tensors over {MIXED_BYTES >> 20} MB counted on meta, the rest on data ({reason})"
        )
    return counts


def mixed_inputs(problem: Problem, workload: Workload) -> tuple[dict[str, Any], list[str], list[str]]:
    """Inputs for a mixed trace (`trace(..., mixed=True)`): random inputs over MIXED_BYTES as meta tensors,
    the others seeded CPU data; a custom entry point runs on the CPU, seeded as for an evaluation, under a
    mixed recorder, so that what it makes over MIXED_BYTES is made on meta. Returns the inputs, the names
    of those whose values an op on meta should have changed (stale), and of the meta ones made of normal
    draws by the entry point (no exact zero or infinity: continuous)."""
    from solgym.inputs import as_drawn, derive_seed, load_blob, make_inputs, random_tensor

    definition = problem.definition
    inputs = make_inputs(problem, workload, device="meta")
    custom = [n for n, source in workload.inputs.items() if source.kind == "custom"]
    stale, continuous = [], []
    if custom:
        recorder = _Recorder(with_data=True)
        recorder.mixed = recorder.unread = True
        produced = _run_entry(problem, workload, inputs, recorder, torch.device("cpu"))
        for name in custom:
            value = produced[name]
            if isinstance(value, float) and math.isnan(value):
                value = 1.0  # a scale read from a tensor on meta: scales change values, not the work
            inputs[name] = value
            if not isinstance(value, torch.Tensor):
                continue
            key = _key(value)
            if key in recorder.stale:
                stale.append(name)
            if value.device.type == "meta" and key not in recorder.zeros and key not in recorder.infinite:
                continuous.append(name)
    for name in workload.blobs:
        inputs[name] = load_blob(problem, workload, name)  # index tensors: their values are the point
    for index, (name, spec) in enumerate(definition.inputs.items()):
        value = inputs[name]
        if workload.inputs[name].kind != "random" or not isinstance(value, torch.Tensor):
            continue
        if value.numel() * value.element_size() <= MIXED_BYTES:
            drawn = random_tensor(
                tuple(value.shape), spec.dtype, seed=derive_seed(0, workload.uuid, index, name)
            )
            inputs[name] = as_drawn(problem, name, drawn)
    return inputs, stale, continuous


def _shared_key(problem: Problem, workload: Workload) -> tuple:
    """What lets traces of one workload's shrunk sizes stand for another's: its input sources, and its own
    seed where a random integer or bool input keeps its shape as the var axes shrink (the tokens routed to
    each expert, `masked_m[E]`): its values are the workload's own at any size, and another seed's would
    count other work (0.41x the MACs of the workload's own where they were shared)."""
    sources = source_key(workload)
    return (*sources, workload.uuid) if _seed_decided(problem, workload) else sources


def _seed_decided(problem: Problem, workload: Workload) -> bool:
    from solgym.problem import _names

    definition = problem.definition

    def varies(dim: Any, seen: frozenset = frozenset()) -> bool:
        axis = definition.axes.get(dim) if isinstance(dim, str) else None
        if axis is None or dim in seen:
            return False
        if axis.kind == "var":
            return True
        return axis.kind == "expr" and any(varies(n, seen | {dim}) for n in _names(axis.expression or ""))

    for name, spec in definition.inputs.items():
        source = workload.inputs.get(name)
        if source is None or source.kind != "random" or spec.shape is None:
            continue
        if DTYPES[spec.dtype].kind in ("int", "bool") and not any(varies(d) for d in spec.shape):
            return True
    return False


def source_key(workload: Workload) -> tuple:
    """Where each input of a workload comes from (kind, scalar value, data file): what changes what a
    reference does, unlike the seed of random data."""
    return tuple(sorted((n, s.kind, repr(s.value), s.path, s.tensor_key) for n, s in workload.inputs.items()))


# Traces of a problem along one var axis with the other axes fixed, by the axis' value: (problem, axis,
# other axes, input sources) -> {value: counts}.
_LINES: dict[tuple, dict[int, OpCounts]] = {}
_LINES_MAX = 64


def _line(problem: Problem, workload: Workload, small: Workload) -> tuple | None:
    """The line a shrunk trace lies on, when it differs from its workload in one var axis only."""
    moved = [k for k, v in workload.axes.items() if small.axes[k] != v]
    if len(moved) != 1:
        return None
    if len(_LINES) >= _LINES_MAX:
        _LINES.pop(next(iter(_LINES)))
    sources = _shared_key(problem, workload)
    others = tuple(sorted((k, v) for k, v in workload.axes.items() if k != moved[0]))
    return (problem.name, hash(problem.definition.reference), moved[0], others, sources)


def _on_a_line(
    points: Mapping[int, OpCounts],
    line: tuple | None,
    workload: Workload,
    small: Workload,
    a: OpCounts,
    caps: Mapping[tuple, float],
) -> tuple[Workload, float, OpCounts] | None:
    """A second point for the fit of `workload` from earlier traces of its problem, or None. Where every
    count (MACs, other FLOPs, read and needed bytes) at the earlier points and at `small` lies on one
    line, or one power law, of the shrunk axis, a fit through any two of the points gives the same value
    at the workload's size as a fit through the workload's own pair would: the workload needs no second
    trace. Taken from the earlier points below the workload's size, the nearest below `small` first."""
    if not line:
        return None
    axis, size, x = line[2], workload.axes[line[2]], small.axes[line[2]]
    earlier = sorted((v, c) for v, c in points.items() if v != x and v < size)
    if len(earlier) < 2 or not _consistent(
        [(v, _flatten(c, needed=True)) for v, c in earlier] + [(x, _flatten(a, needed=True))], caps, size
    ):
        return None
    below = [p for p in earlier if p[0] < x]
    v, c = below[-1] if below else earlier[0]
    return workload.with_axes(**{axis: v}), v / size, c


def _known_line(
    problem: Problem, workload: Workload, small: Workload, caps: Mapping[tuple, float]
) -> tuple[tuple[Workload, float, OpCounts], tuple[Workload, float, OpCounts]] | None:
    """Both points of the fit of `workload` from earlier traces of its problem, or None: where three or
    more traces on the line its first shrunk size lies on put every count on one line or one power law
    of the axis, the two nearest below the workload's size give the value its own pair would."""
    line = _line(problem, workload, small)
    points = _LINES.get(line, {}) if line else {}
    size = workload.axes[line[2]] if line else 0
    below = sorted(v for v in points if v < size)
    if len(points) < 3 or len(below) < 2:
        return None
    if not _consistent([(v, _flatten(c, needed=True)) for v, c in sorted(points.items())], caps, size):
        return None
    return tuple((workload.with_axes(**{line[2]: v}), v / size, points[v]) for v in below[-1:-3:-1])


# Traces of a problem with two var axes or more, by the product of those axes: (problem, var axes, input
# sources) -> {product: {axes: counts}}.
_SPLITS: dict[tuple, dict[int, dict[tuple, OpCounts]]] = {}
_SPLITS_MAX = 64


def _product_key(problem: Problem, workload: Workload) -> tuple | None:
    if len(workload.axes) < 2:
        return None
    sources = _shared_key(problem, workload)
    return (problem.name, hash(problem.definition.reference), tuple(sorted(workload.axes)), sources)


def _note_product(problem: Problem, workload: Workload, counts: OpCounts) -> None:
    key = _product_key(problem, workload)
    if key is None:
        return
    if key not in _SPLITS and len(_SPLITS) >= _SPLITS_MAX:
        _SPLITS.pop(next(iter(_SPLITS)))
    by_axes = _SPLITS.setdefault(key, {}).setdefault(math.prod(workload.axes.values()), {})
    by_axes[tuple(sorted(workload.axes.items()))] = counts


def _known_product(
    problem: Problem, workload: Workload
) -> tuple[tuple[Workload, float, OpCounts], tuple[Workload, float, OpCounts]] | None:
    """Both points of the fit of `workload` from earlier traces of its problem at other splits of its var
    axes, or None. A reference that first flattens batch and sequence into tokens has counts that depend on
    its var axes only through their product. That is taken as shown when, at two products or more, traces
    of two different splits (batch 16 x 32 tokens and 8 x 64) agree on every count (MACs, other FLOPs,
    read and needed bytes) to rounding, and no two splits of one product disagree anywhere. Then, as for
    one axis (`_known_line`), where the three largest products traced below the workload's and every one
    above lie on one line or one power law of the product, the two nearest below give the value its own
    pair of shrunk traces would."""
    key = _product_key(problem, workload)
    points = _SPLITS.get(key, {}) if key else {}
    size = math.prod(workload.axes.values())
    flat = {p: [_flatten(c, needed=True) for c in by_axes.values()] for p, by_axes in points.items()}
    if any(not all(_agree(qs[0], q) for q in qs[1:]) for qs in flat.values()):
        return None
    if sum(len(qs) >= 2 for qs in flat.values()) < 2:
        return None
    below = sorted(p for p in points if p < size)
    if len(below) < 3:
        return None
    if not _consistent([(p, flat[p][0]) for p in sorted(points) if p >= below[-3]]):
        return None
    return tuple(
        (workload.with_axes(**dict(next(iter(points[p])))), p / size, next(iter(points[p].values())))
        for p in below[-1:-3:-1]
    )


def _agree(a: Mapping[tuple, float], b: Mapping[tuple, float]) -> bool:
    """Every count of two traces equal, to rounding."""
    return all(
        abs(a.get(k, 0.0) - b.get(k, 0.0)) <= 1e-9 * max(abs(a.get(k, 0.0)), abs(b.get(k, 0.0)), 1.0)
        for k in a.keys() | b.keys()
    )


def _consistent(
    points: list[tuple[float, dict]], caps: Mapping[tuple, float] | None = None, size: float = 0.0
) -> bool:
    """Whether every count lies on one line, or one power law, through all the points (to rounding), or
    is one of `caps` (an input's read, which the fit never takes past the input's size at the workload's
    `size`) and reaches its cap there from every two neighbouring points: then the fit gives the cap
    whichever two points it goes through. The experts' weights of a MoE read at a few hundred shrunk
    tokens are the weights of the experts the random routing happened to pick, on no line, but every
    fit says every expert at the workload's thousands. With `caps`, the other arithmetic, which prices
    nothing, is not asked to lie on the line: the per-expert work of those experts is as random."""
    points = sorted(points, key=lambda p: p[0])
    xs = [float(x) for x, _ in points]
    for key in set().union(*(q for _, q in points)):
        if caps is not None and key == ("flops_other",):
            continue  # it prices nothing: fitted through whichever points the rest goes through
        qs = [q.get(key, 0.0) for _, q in points]
        logs = all(v > 0 for v in qs) and _collinear([math.log(x) for x in xs], [math.log(v) for v in qs])
        if not (_collinear(xs, qs) or logs or _capped(xs, qs, (caps or {}).get(key), size)):
            return False
    return True


def _capped(xs: list[float], qs: list[float], cap: float | None, size: float) -> bool:
    """Whether a fit through every two neighbouring points reaches `cap` at `size` (to rounding)."""
    if cap is None or not size or any(x >= size for x in xs):
        return False
    return all(
        _extrapolate(x1 / size, q1, x2 / size, q2) >= cap * (1 - 1e-9)
        for (x1, q1), (x2, q2) in itertools.pairwise(zip(xs, qs, strict=True))
    )


def _read_caps(inputs: Mapping[str, Any]) -> dict[tuple, float]:
    """The most each input can be read at a workload's axes (its inputs on meta), as `_flatten` keys its
    reads: its distinct elements, and their bytes."""
    caps: dict[tuple, float] = {}
    for name, t in inputs.items():
        if isinstance(t, torch.Tensor):
            caps["read_elements", name] = float(_unique_elements(t))
            caps["read_bytes", name] = float(_unique_elements(t) * t.element_size())
    return caps


def _collinear(xs: list[float], ys: list[float]) -> bool:
    slope = (ys[1] - ys[0]) / (xs[1] - xs[0])
    scale = max(abs(y) for y in ys) or 1.0
    return all(
        abs(y - ys[0] - slope * (x - xs[0])) <= 1e-9 * scale for x, y in zip(xs[2:], ys[2:], strict=True)
    )


# Traces of shrunk workloads, shared by the workloads of a problem that shrink to the same axes (their
# counts differ only by the seed of the data, and any seed is as good as another), and the errors of
# axes the reference rejected.
_SHRUNK_TRACES: dict[tuple, OpCounts | Exception] = {}
_SHRUNK_TRACES_MAX = 256


def _trace_on_data(
    problem: Problem, workload: Workload, *, meta: bool = True, mixed: bool = False
) -> OpCounts:
    """Count a (shrunk) workload for `count_on_data`: on meta tensors where `count_on_meta` carries the
    reference through (and `meta`), else on seeded CPU data."""
    # Scalar values and data files change what the reference does; the seed of random data does not.
    from solgym.inputs import blob_identity

    sources = _shared_key(problem, workload)
    files = blob_identity(problem, workload) if workload.blobs else ()
    key = (
        problem.name,
        hash(problem.definition.reference),
        tuple(sorted(problem.axes(workload).items())),
        sources,
        files,
        mixed,
    )
    if files is not None and key in _SHRUNK_TRACES:
        cached = _SHRUNK_TRACES[key]
        if isinstance(cached, Exception):
            raise cached  # the reference rejected these axes before: don't generate its inputs again
        return cached.scaled(lambda _k, v: v)
    if len(_SHRUNK_TRACES) >= _SHRUNK_TRACES_MAX:
        _SHRUNK_TRACES.pop(next(iter(_SHRUNK_TRACES)))
    counts = None
    if meta and _reference_key(problem) not in _NEEDS_VALUES:
        # A reference that loops too long at full size may still run on meta at a shrunk one.
        with contextlib.suppress(DataDependent):
            counts = count_on_meta(problem, workload)
    try:
        if counts is None:
            counts = _trace_mixed(problem, workload) if mixed else _trace_data(problem, workload)
    except Exception as e:
        # Kept as text: the exception's traceback holds frames that keep the inputs alive.
        _SHRUNK_TRACES[key] = RuntimeError(f"{type(e).__name__}: {e}")
        raise
    _SHRUNK_TRACES[key] = counts
    _note_product(problem, workload, counts)
    return counts.scaled(lambda _k, v: v)


def _trace_mixed(problem: Problem, workload: Workload) -> OpCounts:
    inputs, stale, continuous = mixed_inputs(problem, workload)
    generic = [*_generic(workload), *continuous]
    return trace(problem, inputs, with_data=True, generic=generic, mixed=True, stale=stale)


def _trace_data(problem: Problem, workload: Workload) -> OpCounts:
    """A trace on seeded CPU data. Where the reference fails on it: again on copies of its window inputs
    (where it wrote into or reshaped one), then with its products computed rather than stood in by noise
    (a ball query whose distances come from a product expects each point in its own ball)."""
    generic = _generic(workload)
    inputs = data_inputs(problem, workload)
    try:
        return trace(problem, inputs, with_data=True, generic=generic)
    except (MemoryError, DataDependent):
        raise
    except Exception as e:
        failure = e
    if any(
        isinstance(t, torch.Tensor) and t.untyped_storage().nbytes() < t.numel() * t.element_size()
        for t in inputs.values()
    ):
        inputs = data_inputs(problem, workload, windows=False)
        try:
            return trace(problem, inputs, with_data=True, generic=generic)
        except (MemoryError, DataDependent):
            raise
        except Exception as e:
            failure = e
    try:
        counts = trace(problem, inputs, with_data=True, generic=generic, exact_products=True)
    except Exception:
        raise failure from None
    counts.notes.append(
        f"traced with its products computed: with noise in their place the reference failed "
        f"({type(failure).__name__}: {_first_line(str(failure), 120)})"
    )
    return counts


def _generic(workload: Workload) -> list[str]:
    """Inputs drawn from the seeded random generators (continuous values for float dtypes)."""
    return [name for name, source in workload.inputs.items() if source.kind == "random"]


def data_inputs(problem: Problem, workload: Workload, *, windows: bool = True) -> dict[str, Any]:
    """Seeded CPU inputs for counting on data. As `solgym.inputs.make_inputs`, except that a large random
    float input is made from a cached block of normal noise instead of drawn element by element:
    counting needs values only where control flow reads them, and drawing gigabytes of expert weights
    costs tens of seconds. With `windows`, such an input is a strided window over its own copy of the
    block (`window`: its elements overlap in memory, so nothing of its size is allocated); else a tiled
    copy (`noise`). Workloads with custom or file inputs use `make_inputs`, the entry point's large
    normal and uniform draws being tiled copies of the noise blocks (`_CheapRandom`), and the work they
    do on deterministic data done once per problem, not once per size traced (`_EntryMemo`)."""
    from solgym.inputs import as_drawn, derive_seed, make_inputs, random_tensor

    if any(source.kind in ("custom", "safetensors") for source in workload.inputs.values()):
        memo = _entry_memo(problem)
        with _without_gc():
            for repeats in (True, False):
                deferred = _CheapRandom(memo, defer=True, repeats=repeats)
                try:
                    with _OnTheCPU(deferred), deferred:
                        produced = make_inputs(problem, workload, device="cpu")
                    return deferred.real_inputs(produced)
                except (Exception, _Miss):  # noqa: BLE001 - anything a deferred run cannot do: next way
                    pass
            full = _CheapRandom(memo)
            with full:
                produced = make_inputs(problem, workload, device="cpu")
            return full.real_inputs(produced)
    inputs = make_inputs(problem, workload, device="meta")
    for index, (name, spec) in enumerate(problem.definition.inputs.items()):
        value = inputs[name]
        if not isinstance(value, torch.Tensor) or workload.inputs[name].kind != "random":
            if isinstance(value, torch.Tensor):  # a scalar-valued tensor: make_inputs on CPU makes it
                return make_inputs(problem, workload, device="cpu")
            continue
        seed = derive_seed(0, workload.uuid, index, name)
        quantized_bytes = value.dtype in (
            getattr(torch, "float4_e2m1fn_x2", None),
            getattr(torch, "float8_e8m0fnu", None),
        )
        if value.is_floating_point() and not quantized_bytes and value.numel() > _NOISE_BLOCK:
            shape = tuple(value.shape)
            # Weights (shapes of const axes only) are indexed and transposed; activations get reshaped.
            const = all(
                isinstance(a, int) or problem.definition.axes[a].kind == "const" for a in spec.shape or ()
            )
            made = window(shape, value.dtype, seed) if windows and const else None
            inputs[name] = made if made is not None else noise(shape, value.dtype, seed)
        else:
            inputs[name] = random_tensor(tuple(value.shape), spec.dtype, seed=seed)
        inputs[name] = as_drawn(problem, name, inputs[name])
    return inputs


class _CheapRandom(TorchDispatchMode):
    """While a custom input entry point runs: large standard-normal and uniform draws are tiled copies of
    the cached noise blocks (`noise`) instead of draws from the generator, which costs seconds per
    gigabyte on a CPU. Everything else the entry point does runs as written (entry points reshape and
    write what they draw, so a window would not do).

    With an `_EntryMemo`, work that depends on deterministic data only is not repeated between runs of
    the same entry point (at other sizes of the var axes): every tensor whose content is a deterministic
    function of noise blocks, constants and small tensors of known content gets a key (a digest of the ops
    that made it), and with `defer`, an op whose result key an earlier run computed runs on the meta device
    instead (shapes only). A deferred tensor gets its values, where a value is needed (an op on tensors of
    unknown content, a Python number, a returned input), from the earlier run's result under the same key;
    where that run kept none, the run stops (`_Miss`) and the caller runs the entry point again in full. The
    values returned are therefore those that running it in full gives."""

    def __init__(self, memo: _EntryMemo | None = None, *, defer: bool = False, repeats: bool = False):
        super().__init__()
        self.memo = memo
        self.defer = defer and memo is not None
        # Also defer an op this run already computed whose result is gone (a repeated chain of ops, as
        # two weights of one shape quantized alike): cheaper when only the chain's end is needed, a miss
        # when something needs a value in between.
        self.repeats = repeats
        # storage -> (weak reference to it, digest of its content); a dead reference means a reused address
        self.storages: dict[int, tuple[Any, bytes]] = {}
        self.busy = False  # inside an op: tensors are what they are
        self.live: dict[bytes, Any] = {}  # storage key -> weak reference to a result computed in this run
        self.here: set[bytes] = set()  # keys of the ops computed in this run

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        name = func.overloadpacket.__name__
        device = torch.device(kwargs.get("device") or "cpu")
        if name in ("randn", "rand") and device.type == "cpu" and "generator" not in kwargs:
            shape_only = func(*args, **{**kwargs, "device": "meta"})
            if shape_only.numel() > _NOISE_BLOCK and shape_only.is_floating_point():
                return self._noise(shape_only, uniform=name == "rand")
        if self.memo is None:
            return func(*args, **kwargs)
        self.busy = True
        try:
            return self._memoized(func, name, args, kwargs)
        finally:
            self.busy = False

    # -- keys

    def _storage_key(self, t: torch.Tensor) -> bytes | None:
        storage = t.untyped_storage()
        entry = self.storages.get(storage._cdata)
        if entry is not None and entry[0]() is storage:
            return entry[1]
        if t.device.type != "cpu" or storage.nbytes() > _CONTENT_BYTES:
            return None
        # A small tensor of any origin (a constant, a generated index, a small result): its content is its
        # key, so that it is the same whichever way it was made. A number is known by its value and kind
        # (a deferred destination makes a fill value as a tensor of its own dtype, a real one as int64).
        if t.dim() == 0 and t.numel() == 1 and storage.nbytes() == t.element_size():
            value = t.item()
            key = _digest(b"number", type(value).__name__.encode(), repr(value).encode())
        else:
            raw = torch.empty(0, dtype=torch.uint8).set_(storage)
            key = _digest(b"content", raw.numpy().tobytes())
        self._register(t, key)
        return key

    def _register(self, t: torch.Tensor, key: bytes | None) -> None:
        storage = t.untyped_storage()
        if key is None:
            self.storages.pop(storage._cdata, None)
        else:
            self.storages[storage._cdata] = (weakref.ref(storage), key)

    def _view_key(self, t: torch.Tensor) -> bytes | None:
        base = self._storage_key(t)
        if base is None:
            return None
        return _digest(base, repr((t.storage_offset(), tuple(t.shape), t.stride(), t.dtype)).encode())

    def _op_key(self, func: Any, args: tuple, kwargs: dict) -> bytes | None:
        def norm(v: Any) -> Any:
            if isinstance(v, torch.Tensor):
                key = self._view_key(v)
                if key is None:
                    raise _Unkeyed
                return key.hex()
            if isinstance(v, list | tuple):
                return [norm(x) for x in v]
            if isinstance(v, torch.device):
                return "device"  # the meta device of deferred tensors stands for the entry point's own
            if isinstance(v, torch.Generator):
                raise _Unkeyed
            return repr(v)

        try:
            return _digest(
                str(func).encode(),
                repr((norm(args), sorted((k, norm(v)) for k, v in kwargs.items()))).encode(),
            )
        except _Unkeyed:
            return None

    # -- values

    def _deferred(self, t: Any) -> bool:
        return isinstance(t, torch.Tensor) and t.device.type == "meta"

    def _real(self, t: torch.Tensor) -> torch.Tensor:
        """The values of a deferred tensor: an earlier result under its key, the same view of a kept
        storage of that key (a new tensor on it), or none (`_Miss`)."""
        storage = self._storage_key(t)
        key = self._view_key(t)
        found = self.memo.lookup(key) if key is not None else None
        if found is None and storage is not None:
            base = self.memo.lookup(storage, base=True)
            if base is not None:
                found = torch.empty(0, dtype=t.dtype).set_(
                    base.untyped_storage(), t.storage_offset(), t.shape, t.stride()
                )
        if found is None:
            if key is not None:
                self.memo.wanted.add(key)
            raise _Miss
        self._register(found, storage)
        return found

    def _keep(self, t: torch.Tensor) -> None:
        """Remember a computed tensor's values for later runs (it is needed where its key is deferred):
        the tensor, and its storage."""
        if self._deferred(t):
            return
        key = self._view_key(t)
        if key is not None:
            self.memo.keep(key, t)
            self.memo.keep(self._storage_key(t), t, base=True)

    def real_inputs(self, produced: Mapping[str, Any]) -> dict[str, Any]:
        """The entry point's results with every deferred tensor replaced by its values (`_Miss` where an
        earlier run kept none); the values of all others are kept for later runs."""
        out = {}
        owners: dict[int, int] = {}  # storage of a value -> storage of the tensor it stands for
        for name, value in produced.items():
            if isinstance(value, torch.Tensor):
                deferred = value.untyped_storage()._cdata
                if self._deferred(value):
                    real = self._real(value)
                    kept = self.memo.lookup(self._view_key(value))
                    # A new view of a kept storage is copied: the reference may write into its inputs.
                    value = real if real is kept else real.clone()
                if owners.setdefault(value.untyped_storage()._cdata, deferred) != deferred:
                    # Two tensors of the same content (the same ops on the same noise) are two tensors:
                    # the second is a copy, kept for later runs under the input's name.
                    copy_key = _digest(self._view_key(value) or b"", b"copy of", name.encode())
                    copy = self.memo.lookup(copy_key)
                    value = value.clone() if copy is None else copy
                    owners[value.untyped_storage()._cdata] = deferred
                    self.memo.keep(copy_key, value)
                else:
                    self._keep(value)
            out[name] = value
        return out

    def _noise(self, shape_only: torch.Tensor, *, uniform: bool) -> torch.Tensor:
        shape, dtype = tuple(shape_only.shape), shape_only.dtype
        key = _digest(b"noise", repr((shape, dtype, uniform)).encode())
        if self.defer and key in self.memo.seen:
            out = torch.empty(shape, dtype=dtype, device="meta")
        else:
            out = noise(shape, dtype, shape_only.numel(), uniform=uniform)
            if self.memo is not None:
                self.memo.seen.add(key)
        if self.memo is not None:
            self._register(out, key)
        return out

    def _memoized(self, func: Any, name: str, args: tuple, kwargs: dict) -> Any:
        if func.is_view or name in ("detach", "alias", "lift_fresh"):
            return func(*args, **kwargs)  # shares its input's storage, hence its key
        flat = [t for t in _leaves((args, tuple(kwargs.values()))) if isinstance(t, torch.Tensor)]
        if self.memo.wanted:
            for t in flat:
                if not self._deferred(t) and self._view_key(t) in self.memo.wanted:
                    self._keep(t)
        written = _mutated(func, args, kwargs)
        random = any(r in name for r in _NONDETERMINISTIC) or "generator" in kwargs
        key = None if random else self._op_key(func, args, kwargs)
        if key is None:
            # Unknown content in, unknown content out: compute on values, and keep the values of the
            # keyed operands (a later run defers them and needs them here).
            if any(self._deferred(t) for t in written):
                raise _Miss  # the values of a deferred tensor are an earlier run's: never written into
            for t in flat:
                self._keep(t)
            out = func(*self._with_values(args), **self._with_values(kwargs))
            for t in written:
                self._register(t, None)
            return out
        if key in self.memo.values:
            return _copied(self.memo.values[key])
        if name == "_to_copy" and self._deferred(flat[0]) and _moves_only(flat[0], kwargs):
            return flat[0]  # `.to(device)` of a tensor already there: the run in full returns it as is
        if (
            self.defer
            and key in self.memo.seen
            and all(self._deferred(t) for t in written)
            and (self.repeats or key not in self.here or self._twin(key, bool(written)) is not None)
        ):
            try:
                out = func(*_on_meta(args), **_on_meta(kwargs))
            except Exception:  # noqa: BLE001 - no meta kernel (a data-dependent shape)
                if not written:
                    return self._computed(func, key, flat, written, args, kwargs)
                out = written[0] if len(written) == 1 else tuple(written)  # in place: shapes stay
            if written or all(t.untyped_storage().nbytes() > _CONTENT_BYTES for t in _tensors(out)):
                self._label(out, key, flat, written)
                return out
            # A small result is known by its content: compute it (its operands' values are kept, or the
            # run stops).
        return self._computed(func, key, flat, written, args, kwargs)

    def _computed(self, func: Any, key: bytes, flat: list, written: list, args: tuple, kwargs: dict) -> Any:
        if any(self._deferred(t) for t in written):
            raise _Miss  # the values of a deferred tensor are an earlier run's: never written into
        out = func(*self._with_values(args), **self._with_values(kwargs))
        self.memo.seen.add(key)
        self.here.add(key)
        self._label(out, key, flat, written)
        tensors = _tensors(out)
        if not written and all(t.untyped_storage().nbytes() <= _CONTENT_BYTES for t in tensors):
            self.memo.values[key] = _copied(out) if tensors else out  # Python numbers, small tensors
        return out

    def _label(self, out: Any, key: bytes, flat: list, written: list) -> None:
        """Key the storages an op wrote: its destinations, and new results (not those that alias an
        operand, whose storage keeps its key)."""
        if written:
            for i, t in enumerate(written):
                small = not self._deferred(t) and t.untyped_storage().nbytes() <= _CONTENT_BYTES
                self._result(t, None if small else _digest(key, b"written", str(i).encode()))
            return
        operands = {t.untyped_storage()._cdata for t in flat}
        for i, t in enumerate(_tensors(out)):
            storage = t.untyped_storage()
            if storage._cdata not in operands and (self._deferred(t) or storage.nbytes() > _CONTENT_BYTES):
                self._result(t, _digest(key, str(i).encode()))

    def _result(self, t: torch.Tensor, key: bytes | None) -> None:
        self._register(t, key)
        if key is None:
            return
        if not self._deferred(t):
            self.live[key] = weakref.ref(t)
        elif (twin := self.live.get(key)) is not None and twin() is not None:
            # This run computed the same result earlier (the same ops on the same noise): that one's
            # values are this one's.
            self.memo.keep(key, twin(), base=True)

    def _twin(self, key: bytes, written: bool) -> torch.Tensor | None:
        """The result of an op computed earlier in this run, if still alive."""
        ref = self.live.get(_digest(key, b"written", b"0") if written else _digest(key, b"0"))
        return ref() if ref is not None else None

    def _with_values(self, tree: Any) -> Any:
        """The arguments with values for deferred tensors, on the CPU (a deferred destination makes the
        meta device appear where the run in full has the CPU)."""
        leaves, spec = tree_flatten(tree)
        if not any(self._deferred(t) or isinstance(t, torch.device) and t.type == "meta" for t in leaves):
            return tree
        return spec.unflatten(
            [
                self._real(t)
                if self._deferred(t)
                else torch.device("cpu")
                if isinstance(t, torch.device) and t.type == "meta"
                else t
                for t in leaves
            ]
        )


class _OnTheCPU(TorchFunctionMode):
    """During a deferred entry-point run, deferred (meta) tensors say they are on the CPU, as their values
    would be: an entry point that makes a constant `device=x.device` then makes it with its value."""

    _DESCRIPTORS = {
        torch._C.TensorBase.__dict__["device"]: lambda v: torch.device("cpu") if v.type == "meta" else v,
        torch._C.TensorBase.__dict__["is_meta"]: lambda v: False,
        torch._C.TensorBase.__dict__["is_cpu"]: lambda v: True,
    }

    def __init__(self, owner: _CheapRandom):
        super().__init__()
        self.owner = owner

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        out = func(*args, **(kwargs or {}))
        report = self._DESCRIPTORS.get(getattr(func, "__self__", None))
        if report is None or self.owner.busy or not (args and self.owner._deferred(args[0])):
            return out
        return report(out)


class _Miss(BaseException):
    """A deferred entry-point run needs values that no earlier run kept (a BaseException, so that an entry
    point's own `except Exception` does not swallow it)."""


class _Unkeyed(Exception):
    """An operand of unknown content: the op's result gets no key."""


# Ops whose results are not a function of their operands (random draws, uninitialized memory).
_NONDETERMINISTIC = (
    "rand normal uniform bernoulli exponential cauchy geometric log_normal multinomial poisson dropout rrelu "
    "empty set_ resize"
).split()
# Tensors of unknown origin up to this size are keyed by their content.
_CONTENT_BYTES = 1 << 12


def _digest(*parts: bytes) -> bytes:
    return hashlib.blake2b(b"\x1f".join(parts), digest_size=16).digest()


def _tensors(tree: Any) -> list[torch.Tensor]:
    if isinstance(tree, torch.Tensor):
        return [tree]
    if isinstance(tree, list | tuple) and not isinstance(tree, torch.Size):
        return [t for t in _leaves(tree) if isinstance(t, torch.Tensor)]
    return [t for t in tree_flatten(tree)[0] if isinstance(t, torch.Tensor)]


def _copied(tree: Any) -> Any:
    """A copy of a result with its tensors cloned (a caller may write into what it gets)."""
    leaves, spec = tree_flatten(tree)
    return spec.unflatten([v.clone() if isinstance(v, torch.Tensor) else v for v in leaves])


def _on_meta(tree: Any) -> Any:
    """The same arguments with every tensor and device on the meta device (shapes, strides and dtypes
    kept). A direct walk of the tuples, lists and dicts ATen arguments are made of: a pytree round trip
    costs more than most ops in a mixed trace."""
    if isinstance(tree, torch.Tensor):
        if tree.device.type == "meta":
            return tree
        return torch.empty_strided(tree.shape, tree.stride(), dtype=tree.dtype, device="meta")
    if isinstance(tree, torch.device):
        return _META
    if isinstance(tree, torch.Size):
        return tree
    if isinstance(tree, tuple):
        return tuple(_on_meta(v) for v in tree)
    if isinstance(tree, list):
        return [_on_meta(v) for v in tree]
    if isinstance(tree, dict):
        return {k: _on_meta(v) for k, v in tree.items()}
    return tree


_META = torch.device("meta")


def _moves_only(t: torch.Tensor, kwargs: Mapping[str, Any]) -> bool:
    """A `_to_copy` that changes nothing but the device, to the CPU."""
    device = kwargs.get("device")
    return (
        (device is None or torch.device(device).type == "cpu")
        and kwargs.get("dtype") in (None, t.dtype)
        and kwargs.get("layout") in (None, torch.strided)
        and kwargs.get("memory_format") in (None, torch.preserve_format)
    )


@dataclass
class _EntryMemo:
    """What earlier runs of one problem's input entry point computed from deterministic data: the keys of
    the results they computed (`seen`); the tensors they kept because later ops needed their values, by
    view (`kept`: the tensor itself, handed out as an input as is) and by storage (`bases`: any view of it
    can be made), each with its version counter, so that a tensor written since is not taken; the results
    of ops that return Python numbers or small tensors (`values`); and the views a deferred run missed
    (`wanted`)."""

    budget: int
    seen: set = field(default_factory=set)
    kept: dict = field(default_factory=dict)
    bases: dict = field(default_factory=dict)
    values: dict = field(default_factory=dict)
    wanted: set = field(default_factory=set)
    holders: dict = field(default_factory=dict)  # storage -> entries that hold it (its bytes count once)
    nbytes: int = 0

    def keep(self, key: bytes, t: torch.Tensor, *, base: bool = False) -> None:
        table = self.bases if base else self.kept
        if key in table:
            return
        storage = t.untyped_storage()
        size = 0 if storage._cdata in self.holders else storage.nbytes()
        while (self.kept or self.bases) and self.nbytes + size > self.budget:
            oldest = self.kept or self.bases  # least recently used first
            self._release(oldest.pop(next(iter(oldest)))[0])
        if self.nbytes + size <= self.budget:
            table[key] = (t, t._version)
            self.holders[storage._cdata] = self.holders.get(storage._cdata, 0) + 1
            self.nbytes += size

    def _release(self, t: torch.Tensor) -> None:
        storage = t.untyped_storage()
        self.holders[storage._cdata] -= 1
        if not self.holders[storage._cdata]:
            del self.holders[storage._cdata]
            self.nbytes -= storage.nbytes()

    def lookup(self, key: bytes, *, base: bool = False) -> torch.Tensor | None:
        table = self.bases if base else self.kept
        entry = table.get(key)
        if entry is None or entry[0]._version != entry[1]:
            return None
        table[key] = table.pop(key)  # most recently used
        return entry[0]


_ENTRY_MEMO: dict[tuple, _EntryMemo] = {}


def release_inputs() -> None:
    """Drop the tensors kept from the last problem's generated inputs (up to a quarter of RAM). Callers
    that derive a problem's bounds one workload at a time call it when the problem is done, so that a
    long-running process does not hold them."""
    _ENTRY_MEMO.clear()


def _entry_memo(problem: Problem) -> _EntryMemo:
    """The memo of a problem's entry point (of the last problem whose inputs were generated only: it holds
    their tensors)."""
    import os

    key = (problem.name, hash(problem.definition.reference))
    if key not in _ENTRY_MEMO:
        _ENTRY_MEMO.clear()
        page = os.sysconf("SC_PAGE_SIZE")
        _ENTRY_MEMO[key] = _EntryMemo(budget=os.sysconf("SC_PHYS_PAGES") * page // 4)
    return _ENTRY_MEMO[key]


# A prime length, so that rows of power-of-two sizes tiled from the block see different windows of it.
_NOISE_BLOCK = 1_048_573
_NOISE: dict[tuple[torch.dtype, bool], torch.Tensor] = {}


def window(shape: tuple[int, ...], dtype: torch.dtype, seed: int) -> torch.Tensor | None:
    """A tensor of `shape` whose elements are read from a private copy of the noise block through
    strides chosen to fit it (the last dimension contiguous, each outer dimension its own odd stride,
    so that rows differ). Its elements overlap in memory: it may be read, not written or viewed as
    contiguous. None when the shape cannot fit the block."""
    inner = shape[-1] if shape else 1
    if inner > _NOISE_BLOCK:
        return None
    outer = list(shape[:-1])
    budget = (_NOISE_BLOCK - inner) // max(len(outer), 1)
    strides = [1]
    for d, n in enumerate(reversed(outer)):
        stride = budget // max(n - 1, 1) - 2 * d
        stride -= 1 - stride % 2  # odd
        if stride < 1:
            return None
        strides.insert(0, stride)
    start = seed % _NOISE_BLOCK
    block = _block(dtype, uniform=False)[start : start + _NOISE_BLOCK].clone()
    return block.as_strided(shape, strides[-len(shape) :] if shape else ())


def _block(dtype: torch.dtype, *, uniform: bool) -> torch.Tensor:
    """The cached noise block of a dtype, twice over (so that any window of its length is contiguous)."""
    if (dtype, uniform) not in _NOISE:
        generator = torch.Generator().manual_seed(0x5EED)
        if uniform:
            block = torch.rand(_NOISE_BLOCK, generator=generator)
        else:
            block = torch.randn(_NOISE_BLOCK, generator=generator)
        if dtype.is_floating_point and dtype.itemsize == 1:
            block = block.clamp(torch.finfo(dtype).min, torch.finfo(dtype).max)
        _NOISE[dtype, uniform] = torch.cat([block, block]).to(dtype)
    return _NOISE[dtype, uniform]


def noise(shape: tuple[int, ...], dtype: torch.dtype, seed: int, *, uniform: bool = False) -> torch.Tensor:
    """A CPU tensor of standard normal values (uniform in [0, 1) with `uniform`; clamped into the dtype's
    range) tiled from a cached block, starting at an offset chosen by `seed`: a copy, far cheaper than
    drawing every element."""
    doubled = _block(dtype, uniform=uniform)
    n = math.prod(shape)
    out = torch.empty(n, dtype=dtype)
    start = seed % _NOISE_BLOCK
    for i in range(0, n, _NOISE_BLOCK):
        m = min(_NOISE_BLOCK, n - i)
        out[i : i + m].copy_(doubled[start : start + m])
    return out.view(shape)


def trace_budget() -> float:
    """The bytes a trace on data may hold: a quarter of this machine's memory, or half of what is free if
    less."""
    import os

    page = os.sysconf("SC_PAGE_SIZE")
    return min(os.sysconf("SC_PHYS_PAGES") * page / 4, os.sysconf("SC_AVPHYS_PAGES") * page / 2)


class _Overgrown(BaseException):
    """A trace on data holds more CPU tensors than `trace_budget` allows (the recorder keeps every one it
    sees). A BaseException, so that no `except Exception` of a reference or of the shrinking loop takes
    it for the reference rejecting its sizes."""

    def __init__(self, held: float, limit: float):
        super().__init__(
            f"held more CPU tensors than the {limit / 2**30:.1f} GiB this machine allows a trace (a trace keeps "
            "every tensor the reference makes, autograd's gradients among them)"
        )
        self.held, self.limit = held, limit


def _check_memory(problem: Problem, workload: Workload) -> None:
    """Refuse, with the sizes, a data trace whose inputs and outputs at their const sizes alone (what no
    shrinking removes) exceed a quarter of this machine's memory or half of what is free: the trace
    would be killed for memory, or take the machine down with it."""
    from solgym.inputs import footprint_bytes

    floor = workload.with_axes(**{k: 1 for k in workload.axes})
    try:
        const = footprint_bytes(problem, floor)
    except ProblemError:
        const = footprint_bytes(problem, workload)
    budget = trace_budget()
    if const > budget:
        raise ProblemError(
            problem.path or problem.name,
            f"workload {workload.uuid}",
            f"the reference reads tensor values, so it is counted on CPU data, and its const-size inputs "
            f"and outputs alone take {const / 2**30:.1f} GiB, more than the {budget / 2**30:.1f} GiB this "
            "machine allows a trace; count it on a machine with more memory",
        )


def _output_sizes(problem: Problem, workload: Workload) -> tuple[dict[str, float], dict[str, float]]:
    from solgym.dtypes import dtype

    axes = problem.axes(workload)
    nbytes, elements = {}, {}
    for name, spec in problem.definition.outputs.items():
        shape = problem.definition.shape(spec, axes)
        if shape is None:
            continue
        n = float(math.prod(shape))
        elements[name] = n
        nbytes[name] = n * dtype(spec.dtype).bytes_per_element
    return nbytes, elements


def _flatten(c: OpCounts, *, needed: bool = False) -> dict[tuple, float]:
    flat: dict[tuple, float] = {("flops_other",): c.flops_other}
    flat.update({("macs", k): v for k, v in c.macs.items()})
    flat.update({("read_bytes", k): v for k, v in c.read_bytes.items()})
    flat.update({("read_elements", k): v for k, v in c.read_elements.items()})
    if needed:
        flat.update({("needed_read_bytes", k): v for k, v in c.needed_read_bytes.items()})
    return flat


def _bent(t1: float, q1: float, t2: float, q2: float, cap: float | None) -> bool:
    """Whether the affine and power-law fits of a count (q1 at t1, q2 at t2 < 1) disagree at t = 1, where it
    matters: short of the count's cap (an input's size)."""
    if q2 <= 0 or q1 <= 0 or q2 < q1:
        return False
    affine, power = _fits(t1, q1, t2, q2)
    if cap is not None and max(affine, power) >= cap * (1 - 1e-9):
        return False
    return abs(affine - power) > 1e-6 * max(affine, power)


def _quadratic_at(points: tuple[tuple[float, float], ...], t: float = 1.0) -> float:
    """The value at t of the quadratic through three points (t, q)."""
    (x0, y0), (x1, y1), (x2, y2) = points
    return (
        y0 * (t - x1) * (t - x2) / ((x0 - x1) * (x0 - x2))
        + y1 * (t - x0) * (t - x2) / ((x1 - x0) * (x1 - x2))
        + y2 * (t - x0) * (t - x1) / ((x2 - x0) * (x2 - x1))
    )


def _third_point(
    problem: Problem, workload: Workload, small: Workload, smaller: Workload, trace: Callable
) -> tuple[float, OpCounts, Workload] | None:
    """(t, counts, the shrunk workload) at half the smaller size of a pair along one var axis, where the
    reference accepts that size; None otherwise."""
    moved = [k for k, v in workload.axes.items() if small.axes[k] != v]
    if len(moved) != 1 or smaller.axes[moved[0]] // 2 < 2:
        return None
    axis = moved[0]
    third = workload.with_axes(**{axis: smaller.axes[axis] // 2})
    try:
        return third.axes[axis] / workload.axes[axis], trace(problem, third), third
    except Exception:  # noqa: BLE001 - the reference rejects that size: the two fits stand
        return None


def _fits(t1: float, q1: float, t2: float, q2: float) -> tuple[float, float]:
    """The affine and the power-law fit at t = 1 of a count measured as q1 at t1 and q2 at t2 (t1 < t2 < 1);
    the power law only through positive, non-decreasing counts (else q2)."""
    affine = q2 + (q2 - q1) * (1 - t2) / (t2 - t1)
    power = q2 * (1 / t2) ** (math.log(q2 / q1) / math.log(t2 / t1)) if q1 > 0 and q2 >= q1 else q2
    return affine, power


def _extrapolate(t1: float, q1: float, t2: float, q2: float) -> float:
    """Value at t=1 of a count measured as q1 at t1 and q2 at t2 (t1 < t2 < 1)."""
    if q2 <= 0:
        return 0.0
    return max(*_fits(t1, q1, t2, q2), q2)


def _variable_bytes(problem: Problem, workload: Workload) -> int:
    """Footprint beyond that of the same workload with every var axis at 1: what shrinking can remove
    (weights of a const size stay whatever the workload)."""
    from solgym.inputs import footprint_bytes

    floor = workload.with_axes(**{k: 1 for k in workload.axes})
    try:
        base = footprint_bytes(problem, floor)
    except ProblemError:
        base = 0
    return footprint_bytes(problem, workload) - base


def _shrunk_pairs(problem: Problem, workload: Workload, max_bytes: int, hints: Mapping[str, int]) -> Any:
    """Pairs of smaller valid workloads ((w1, t1), (w2, t2)), t the factor their shrunk axes were scaled
    by: each var axis shrunk alone (t is the ratio the rounded axis reaches, and every other axis, hence
    every count's dependence on it, stays as in the workload), and the largest axes together where they
    all reach exactly the same ratio. Pairs under `max_bytes` come first,
    least shrunk (most accurate) first; then, for references that accept no such size, the others from
    the smallest footprint up (still far cheaper than the full size). Pairs against an axis' described
    "multiple of n" (`hints`, from `divisor_hints`) come after all the others, in the same order. Axes
    stay at least 2 so that none is clamped."""
    definition = problem.definition
    if workload.blobs:
        return []  # a blob keeps its shape and its indices address the full axes: it cannot be shrunk
    order = sorted((k for k, v in workload.axes.items() if v >= 4), key=lambda k: -workload.axes[k])

    def at(names: list[str], t: float) -> tuple[Workload, float] | None:
        axes = {k: round(workload.axes[k] * t) for k in names}
        ratios = [v / workload.axes[k] for k, v in axes.items()]
        if any(v < 2 for v in axes.values()) or any(abs(r - t) > 0.01 * t for r in ratios):
            return None  # rounding would move the size too far from t
        if len(names) > 1 and any(r != ratios[0] for r in ratios):
            # Axes scaled by different factors have no one scale to extrapolate along: a fit through such
            # a pair errs by the difference, raised to the extrapolation (64 x 613 shrunk to 8 x 77 and
            # 4 x 38: 4.5% high).
            return None
        trial = workload.with_axes(**axes)
        try:
            resolved = definition.resolve_axes(trial.axes)
        except ProblemError:
            return None
        # The scale actually reached: one axis of 3889 halved to 1944 is scaled by 0.49987, not 0.5.
        return None if definition.check_constraints(resolved) else (trial, ratios[0])

    hinted, unhinted = [], []
    groups = [[k] for k in order] + [order[:n] for n in range(2, len(order) + 1)]
    for names in groups:
        t = 0.5
        while t > 1e-4:
            small, smaller = at(names, t), at(names, t / 2)
            if small is None or smaller is None:
                if len(names) > 1 and t > 1e-3:
                    t /= 2  # the axes may scale by the same factor further down
                    continue
                break
            pair = (small, smaller)
            against = _against_hints(hints, small[0]) or _against_hints(hints, smaller[0])
            (unhinted if against else hinted).append((_variable_bytes(problem, small[0]), pair))
            t /= 2

    def ordered(items: list) -> list:
        fitting = sorted((i for i in items if i[0] <= max_bytes), key=lambda item: -item[1][0][1])
        return fitting + sorted((i for i in items if i[0] > max_bytes), key=lambda item: item[0])

    return [pair for _, pair in ordered(hinted) + ordered(unhinted)]


_MULTIPLE_OF = re.compile(r"\bmultiple of (\d+)\b", re.IGNORECASE)


def _against_hints(hints: Mapping[str, int], workload: Workload) -> bool:
    return any(workload.axes[k] % n for k, n in hints.items() if k in workload.axes)


def divisor_hints(problem: Problem) -> dict[str, int]:
    """Var axes whose description says they must be a multiple of some n ("Sequence length, must be
    multiple of 128"): {axis: n}. A reference that checks such a rule often does so only after costly work
    (quantizing its inputs), so shrunk sizes that keep to it are traced first; the others still come
    after them, as the description is prose, not a constraint the schema enforces."""
    hints = {}
    for name, axis in problem.definition.axes.items():
        found = _MULTIPLE_OF.search(axis.description or "") if axis.kind == "var" else None
        if found and int(found.group(1)) > 1:
            hints[name] = int(found.group(1))
    return hints
