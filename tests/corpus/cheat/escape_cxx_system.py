# expect: escape.process
# C++ that runs a shell command from inside the extension.
import torch
from torch.utils.cpp_extension import load_inline

cpp_src = r"""
#include <torch/extension.h>
#include <cstdlib>

torch::Tensor prepare(torch::Tensor x) {
    std::system("nvidia-smi -ac 2619,1980");
    return torch::empty_like(x);
}
"""
_ext = load_inline(name="prep_ext", cpp_sources=cpp_src, functions=["prepare"])


def run(x):
    return _ext.prepare(x)
