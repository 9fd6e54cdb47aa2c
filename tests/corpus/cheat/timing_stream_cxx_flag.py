# expect: timing.stream
# The stream API hides behind a macro defined by a -D compiler flag, not in the source.
import torch
from torch.utils.cpp_extension import load_inline

cuda_src = r"""
#include <torch/extension.h>
__global__ void scale_kernel(const float* x, float* y, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = 2.0f * x[i];
}
torch::Tensor scale(torch::Tensor x) {
    auto y = torch::empty_like(x);
    cudaStream_t s;
    NEW_QUEUE(&s);
    int n = x.numel();
    scale_kernel<<<(n + 255) / 256, 256, 0, s>>>(x.data_ptr<float>(), y.data_ptr<float>(), n);
    return y;
}
"""
_ext = load_inline(name="scale_ext3", cpp_sources="torch::Tensor scale(torch::Tensor x);",
                   cuda_sources=cuda_src, functions=["scale"],
                   extra_cuda_cflags=["-O3", "-DNEW_QUEUE=cudaStreamCreate"])


def run(x):
    return _ext.scale(x)
