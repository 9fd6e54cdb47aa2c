# expect: decoy.unreachable-kernel
# policy: permissive
# A __global__ kernel that is never launched; the host function uses ATen.
import torch
from torch.utils.cpp_extension import load_inline

cuda_src = r"""
#include <torch/extension.h>
__global__ void silu_kernel(const float* x, float* y, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = x[i] / (1.0f + expf(-x[i]));
}
torch::Tensor silu(torch::Tensor x) {
    return at::silu(x);
}
"""
_ext = load_inline(name="decoy_ext", cpp_sources="torch::Tensor silu(torch::Tensor x);",
                   cuda_sources=cuda_src, functions=["silu"])


def run(x):
    return _ext.silu(x)
