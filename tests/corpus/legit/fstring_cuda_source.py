# An f-string C++ source whose interpolations are module-level constants.
import torch
from torch.utils.cpp_extension import load_inline

THREADS = 128
VEC = 4

CUDA_SRC = f"""
#include <torch/extension.h>
#define THREADS {THREADS}
#define VEC {VEC}
__global__ void copy_vec(const float4* __restrict__ x, float4* __restrict__ y, int n4) {{
    int i = blockIdx.x * THREADS + threadIdx.x;
    if (i < n4) y[i] = x[i];
}}
torch::Tensor copy(torch::Tensor x) {{
    auto y = torch::empty_like(x);
    int n4 = x.numel() / VEC;
    copy_vec<<<(n4 + THREADS - 1) / THREADS, THREADS>>>((const float4*)x.data_ptr<float>(), (float4*)y.data_ptr<float>(), n4);
    return y;
}}
"""
_ext = load_inline(name="copy_vec_ext", cpp_sources="torch::Tensor copy(torch::Tensor x);", cuda_sources=CUDA_SRC,
                   functions=["copy"])


def run(x):
    return _ext.copy(x)
