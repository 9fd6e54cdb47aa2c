# expect: timing.stream
# A digraph %: spells #define.
import torch
from torch.utils.cpp_extension import load_inline

cuda_src = r"""
#include <torch/extension.h>
%:define Q cudaStreamCreate
__global__ void copy_kernel(const float* x, float* y, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = x[i];
}
torch::Tensor copy(torch::Tensor x) {
    auto y = torch::empty_like(x);
    cudaStream_t s; Q(&s);
    int n = x.numel();
    copy_kernel<<<(n + 255) / 256, 256, 0, s>>>(x.data_ptr<float>(), y.data_ptr<float>(), n);
    return y;
}
"""
_ext = load_inline(name="digraph_ext", cpp_sources="torch::Tensor copy(torch::Tensor x);",
                   cuda_sources=cuda_src, functions=["copy"])


def run(x):
    return _ext.copy(x)
