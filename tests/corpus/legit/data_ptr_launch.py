# inputs: x, y
# .data_ptr() passed to a launch, and the current stream handle passed to C++.
import torch
from torch.utils.cpp_extension import load_inline

_CUDA = r"""
#include <torch/extension.h>
#include <cuda_runtime.h>
__global__ void mul_kernel(const float* x, const float* y, float* out, long n) {
    long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = x[i] * y[i];
}
void mul(int64_t x, int64_t y, int64_t out, int64_t n, int64_t stream) {
    mul_kernel<<<(n + 255) / 256, 256, 0, reinterpret_cast<cudaStream_t>(stream)>>>(
        reinterpret_cast<const float*>(x), reinterpret_cast<const float*>(y), reinterpret_cast<float*>(out), n);
}
"""
_CPP = "void mul(int64_t x, int64_t y, int64_t out, int64_t n, int64_t stream);"
_ext = load_inline(name="mul_ptr_ext", cpp_sources=_CPP, cuda_sources=_CUDA, functions=["mul"])


def run(x, y):
    out = torch.empty_like(x)
    stream = torch.cuda.current_stream().cuda_stream
    _ext.mul(x.data_ptr(), y.data_ptr(), out.data_ptr(), x.numel(), stream)
    return out
