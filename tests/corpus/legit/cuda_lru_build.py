# A functools cache on a zero-argument builder: it memoises the compiled module, not outputs.
import functools

import torch
from torch.utils.cpp_extension import load_inline

_SRC = r"""
#include <torch/extension.h>
__global__ void relu_kernel(const float* x, float* y, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = x[i] > 0.f ? x[i] : 0.f;
}
torch::Tensor relu(torch::Tensor x) {
    auto y = torch::empty_like(x);
    int n = x.numel();
    relu_kernel<<<(n + 255) / 256, 256>>>(x.data_ptr<float>(), y.data_ptr<float>(), n);
    return y;
}
"""


@functools.lru_cache(maxsize=None)
def _build():
    return load_inline(name="relu_ext", cpp_sources="torch::Tensor relu(torch::Tensor x);",
                       cuda_sources=_SRC, functions=["relu"])


def run(x):
    return _build().relu(x)
