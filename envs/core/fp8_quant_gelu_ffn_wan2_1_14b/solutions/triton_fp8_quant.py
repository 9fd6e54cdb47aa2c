"""GELU (tanh) + dynamic per-token FP8 e4m3 quantization for the Wan2.1 FFN in Triton: one program per token
keeps the 13824-wide activated row in registers, reduces its absolute maximum, and writes the e4m3 row and its
scale in the same pass (the fp32 activation never reaches memory).

The value is rounded to the e4m3 grid explicitly (round-half-even to 3 mantissa bits, exponent from the fp32 bits,
subnormal step 2^-9) before the cast, so the cast itself is exact: the result does not depend on how a backend
rounds fp32 -> e4m3 when rounding carries into the exponent.
"""

import torch
import triton
import triton.language as tl


@triton.jit
def _round_to_e4m3(v):
    exponent = ((v.to(tl.int32, bitcast=True) >> 23) & 0xFF) - 127
    step_exponent = tl.maximum(exponent, -6) - 3
    step = ((step_exponent + 127) << 23).to(tl.float32, bitcast=True)
    # Adding 1.5 * 2^23 * step pushes v's bits below `step` out of the fp32 mantissa with round-half-even.
    magic = step * 12582912.0
    return (v + magic) - magic


@triton.jit
def _gelu_quant_kernel(x_ptr, q_ptr, scale_ptr, n_cols, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    x = tl.load(x_ptr + row * n_cols + cols, mask=mask, other=0.0).to(tl.float32)
    u = 0.7978845608028654 * (x + 0.044715 * x * x * x)
    h = 0.5 * x * (2.0 - 2.0 / (tl.exp(2.0 * u) + 1.0))  # 0.5 x (1 + tanh(u))
    amax = tl.maximum(tl.max(tl.where(mask, tl.abs(h), 0.0), axis=0), 1e-12)
    scale = amax / 448.0
    q = tl.minimum(tl.maximum(h / scale, -448.0), 448.0)
    tl.store(q_ptr + row * n_cols + cols, _round_to_e4m3(q).to(tl.float8e4nv), mask=mask)
    tl.store(scale_ptr + row, scale)


def run(x):
    x = x.contiguous()
    rows, cols = x.shape
    h_fp8 = torch.empty((rows, cols), dtype=torch.float8_e4m3fn, device=x.device)
    scale = torch.empty((rows, 1), dtype=torch.float32, device=x.device)
    _gelu_quant_kernel[(rows,)](x, h_fp8, scale, cols, BLOCK=triton.next_power_of_2(cols), num_warps=16)
    return h_fp8, scale
