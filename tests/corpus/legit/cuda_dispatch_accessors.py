# inputs: x, weight
# AT_DISPATCH, packed accessors, TORCH_CHECK, the current CUDA stream and allocation with torch::zeros.
import torch
from torch.utils.cpp_extension import load_inline

CUDA_SRC = r"""
#include <torch/extension.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

template <typename scalar_t>
__global__ void rowscale_kernel(const torch::PackedTensorAccessor32<scalar_t, 2, torch::RestrictPtrTraits> x,
                                const torch::PackedTensorAccessor32<scalar_t, 1, torch::RestrictPtrTraits> w,
                                torch::PackedTensorAccessor32<scalar_t, 2, torch::RestrictPtrTraits> out) {
    const int row = blockIdx.x;
    for (int c = threadIdx.x; c < x.size(1); c += blockDim.x) {
        out[row][c] = x[row][c] * w[c];
    }
}

torch::Tensor rowscale(torch::Tensor x, torch::Tensor w) {
    TORCH_CHECK(x.dim() == 2, "x must be 2-D");
    const at::cuda::OptionalCUDAGuard guard(device_of(x));
    auto out = torch::zeros({x.size(0), x.size(1)}, x.options());
    auto stream = at::cuda::getCurrentCUDAStream();
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "rowscale", [&] {
        rowscale_kernel<scalar_t><<<x.size(0), 256, 0, stream>>>(
            x.packed_accessor32<scalar_t, 2, torch::RestrictPtrTraits>(),
            w.packed_accessor32<scalar_t, 1, torch::RestrictPtrTraits>(),
            out.packed_accessor32<scalar_t, 2, torch::RestrictPtrTraits>());
    });
    return out;
}
"""
_ext = load_inline(name="rowscale_ext", cpp_sources="torch::Tensor rowscale(torch::Tensor x, torch::Tensor w);",
                   cuda_sources=CUDA_SRC, functions=["rowscale"])


def run(x, weight):
    return _ext.rowscale(x.contiguous(), weight.contiguous())
