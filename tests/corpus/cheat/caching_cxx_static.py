# expect: caching.static-state
# A static tensor in C++ keeps the first result forever.
import torch
from torch.utils.cpp_extension import load_inline

cuda_src = r"""
#include <torch/extension.h>
__global__ void scale_kernel(const float* x, float* y, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = 2.0f * x[i];
}
torch::Tensor scale(torch::Tensor x) {
    static torch::Tensor cached;
    if (cached.defined() && cached.sizes() == x.sizes()) return cached;
    auto y = torch::empty_like(x);
    int n = x.numel();
    scale_kernel<<<(n + 255) / 256, 256>>>(x.data_ptr<float>(), y.data_ptr<float>(), n);
    cached = y;
    return y;
}
"""
_ext = load_inline(name="static_ext", cpp_sources="torch::Tensor scale(torch::Tensor x);",
                   cuda_sources=cuda_src, functions=["scale"])


def run(x):
    return _ext.scale(x)
