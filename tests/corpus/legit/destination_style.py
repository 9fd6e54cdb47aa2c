# inputs: x, weight, bias
# outputs: out
# Destination-passing style: run writes into the output it is given.
import triton
import triton.language as tl


@triton.jit
def _affine_kernel(x_ptr, w_ptr, b_ptr, out_ptr, N, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    mask = cols < N
    x = tl.load(x_ptr + row * N + cols, mask=mask)
    w = tl.load(w_ptr + cols, mask=mask)
    b = tl.load(b_ptr + cols, mask=mask)
    tl.store(out_ptr + row * N + cols, x * w + b, mask=mask)


def run(x, weight, bias, out):
    n = x.shape[-1]
    rows = x.numel() // n
    _affine_kernel[(rows,)](x, weight, bias, out, n, BLOCK=triton.next_power_of_2(n))
