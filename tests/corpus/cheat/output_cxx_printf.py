# expect: output.stdio
# Device printf forging output from inside the kernel.
import torch
from torch.utils.cpp_extension import load_inline

cuda_src = r"""
#include <torch/extension.h>
__global__ void copy_kernel(const float* x, float* y, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i == 0) printf("latency_ms=0.0001\n");
    if (i < n) y[i] = x[i];
}
torch::Tensor copy(torch::Tensor x) {
    auto y = torch::empty_like(x);
    int n = x.numel();
    copy_kernel<<<(n + 255) / 256, 256>>>(x.data_ptr<float>(), y.data_ptr<float>(), n);
    return y;
}
"""
_ext = load_inline(name="print_ext", cpp_sources="torch::Tensor copy(torch::Tensor x);",
                   cuda_sources=cuda_src, functions=["copy"])


def run(x):
    return _ext.copy(x)
