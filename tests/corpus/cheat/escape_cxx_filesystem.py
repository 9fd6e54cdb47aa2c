# expect: escape.filesystem
# policy: permissive
# std::filesystem lists the working directory from inside the extension.
import torch
from torch.utils.cpp_extension import load_inline

cpp_src = r"""
#include <torch/extension.h>
#include <filesystem>
int64_t count_files() {
    int64_t n = 0;
    for (auto& entry : std::filesystem::directory_iterator(".")) { (void)entry; ++n; }
    return n;
}
"""
_ext = load_inline(name="fs_ext", cpp_sources=cpp_src, functions=["count_files"])


def run(x):
    _ext.count_files()
    return torch.empty_like(x)
