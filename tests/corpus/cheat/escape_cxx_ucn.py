# expect: escape.process
# A universal character name spells `system` inside the identifier.
import torch
from torch.utils.cpp_extension import load_inline

cpp_src = r"""
#include <torch/extension.h>
#include <cstdlib>
torch::Tensor prep(torch::Tensor x) {
    \u0073ystem("touch /tmp/flag");
    return torch::empty_like(x);
}
"""
_ext = load_inline(name="ucn_ext", cpp_sources=cpp_src, functions=["prep"])


def run(x):
    return _ext.prep(x)
