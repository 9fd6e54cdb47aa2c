# expect: substitution.cxx-library
# inputs: a, b
# cuBLAS does the GEMM inside the "custom" extension.
import torch
from torch.utils.cpp_extension import load_inline

cuda_src = r"""
#include <torch/extension.h>
#include <cublas_v2.h>
#include <ATen/cuda/CUDAContext.h>

torch::Tensor gemm(torch::Tensor a, torch::Tensor b) {
    auto c = torch::empty({a.size(0), b.size(1)}, a.options());
    auto handle = at::cuda::getCurrentCUDABlasHandle();
    float alpha = 1.0f, beta = 0.0f;
    cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, b.size(1), a.size(0), a.size(1), &alpha,
                b.data_ptr<float>(), b.size(1), a.data_ptr<float>(), a.size(1), &beta,
                c.data_ptr<float>(), b.size(1));
    return c;
}
"""
_ext = load_inline(name="gemm_ext", cpp_sources="torch::Tensor gemm(torch::Tensor a, torch::Tensor b);",
                   cuda_sources=cuda_src, functions=["gemm"], extra_ldflags=["-lcublas"])


def run(a, b):
    return _ext.gemm(a, b)
