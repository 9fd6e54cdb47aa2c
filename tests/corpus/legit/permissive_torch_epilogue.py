# policy: permissive
# inputs: x, bias
# Under the permissive policy a torch epilogue after a custom kernel is allowed.
import torch
import torch.nn.functional as F
import triton
import triton.language as tl


@triton.jit
def _bias_kernel(x_ptr, b_ptr, out_ptr, N, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    mask = cols < N
    x = tl.load(x_ptr + row * N + cols, mask=mask)
    b = tl.load(b_ptr + cols, mask=mask)
    tl.store(out_ptr + row * N + cols, x + b, mask=mask)


def run(x, bias):
    out = torch.empty_like(x)
    n = x.shape[-1]
    _bias_kernel[(x.numel() // n,)](x, bias, out, n, BLOCK=triton.next_power_of_2(n))
    return F.gelu(out, approximate="tanh")
