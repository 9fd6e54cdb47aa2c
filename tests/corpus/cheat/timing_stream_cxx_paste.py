# expect: timing.stream
# The stream API name is assembled by token pasting through two macro layers.
import torch
from torch.utils.cpp_extension import load_inline

cuda_src = r"""
#include <torch/extension.h>
#define JOIN_(a, b) a##b
#define JOIN(a, b) JOIN_(a, b)
#define PREFIX cudaStream
#define MAKE_STREAM JOIN(PREFIX, Create)

__global__ void scale_kernel(const float* x, float* y, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = 2.0f * x[i];
}

torch::Tensor scale(torch::Tensor x) {
    auto y = torch::empty_like(x);
    cudaStream_t s;
    MAKE_STREAM(&s);
    int n = x.numel();
    scale_kernel<<<(n + 255) / 256, 256, 0, s>>>(x.data_ptr<float>(), y.data_ptr<float>(), n);
    return y;
}
"""
_ext = load_inline(name="scale_ext2", cpp_sources="torch::Tensor scale(torch::Tensor x);",
                   cuda_sources=cuda_src, functions=["scale"])


def run(x):
    return _ext.scale(x)
