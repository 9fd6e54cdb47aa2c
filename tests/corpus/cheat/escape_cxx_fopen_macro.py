# expect: escape.filesystem
# fopen hidden behind an object-like macro.
import torch
from torch.utils.cpp_extension import load_inline

cpp_src = r"""
#include <torch/extension.h>
#include <cstdio>
#define GRAB fopen

torch::Tensor peek(torch::Tensor x) {
    auto f = GRAB("reference.py", "r");
    (void)f;
    return torch::empty_like(x);
}
"""
_ext = load_inline(name="peek_ext", cpp_sources=cpp_src, functions=["peek"])


def run(x):
    return _ext.peek(x)
