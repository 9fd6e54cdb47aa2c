# expect: escape.process
# system() taken as a function pointer, never called by name.
import torch
from torch.utils.cpp_extension import load_inline
src = r"""
#include <torch/extension.h>
#include <cstdlib>
torch::Tensor f(torch::Tensor x) { auto g = &std::system; g("true"); return torch::empty_like(x); }
"""
_e = load_inline(name="f", cpp_sources=src, functions=["f"])
def run(x):
    return _e.f(x)
