# inputs: x, weight
# RMSNorm with triton.autotune and triton.heuristics, configs as module-level constants.
import torch
import triton
import triton.language as tl

EPS = 1e-6
CONFIGS = [triton.Config({}, num_warps=w) for w in (2, 4, 8, 16)]


@triton.autotune(configs=CONFIGS, key=["N"])
@triton.heuristics({"EVEN_N": lambda args: args["N"] % args["BLOCK_N"] == 0})
@triton.jit
def _rmsnorm_kernel(x_ptr, w_ptr, out_ptr, stride, N, eps, BLOCK_N: tl.constexpr, EVEN_N: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK_N)
    mask = cols < N
    x = tl.load(x_ptr + row * stride + cols, mask=mask, other=0.0).to(tl.float32)
    w = tl.load(w_ptr + cols, mask=mask, other=0.0).to(tl.float32)
    var = tl.sum(x * x, axis=0) / N
    y = x * tl.rsqrt(var + eps) * w
    tl.store(out_ptr + row * stride + cols, y.to(out_ptr.dtype.element_ty), mask=mask)


def run(x, weight):
    x2 = x.reshape(-1, x.shape[-1]).contiguous()
    out = torch.empty_like(x2)
    M, N = x2.shape
    block = triton.next_power_of_2(N)
    _rmsnorm_kernel[(M,)](x2, weight, out, x2.stride(0), N, EPS, BLOCK_N=block)
    return out.view(x.shape)
