# expect: timing.concurrency
# A detached C++ thread keeps writing after run returns.
import torch
from torch.utils.cpp_extension import load_inline

cpp_src = r"""
#include <torch/extension.h>
#include <thread>
torch::Tensor go(torch::Tensor x) {
    auto y = torch::empty_like(x);
    std::thread([=]() mutable { y.copy_(x); }).detach();
    return y;
}
"""
_ext = load_inline(name="thread_ext", cpp_sources=cpp_src, functions=["go"])


def run(x):
    return _ext.go(x)
