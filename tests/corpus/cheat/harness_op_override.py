# expect: harness.op-override
# Registers a new CUDA kernel for aten::mm, which the reference calls too.
import torch

_lib = torch.library.Library("aten", "IMPL")


def _mm(a, b):
    return torch.zeros(a.shape[0], b.shape[1], device=a.device, dtype=a.dtype)


_lib.impl("mm", _mm, "CUDA")


def run(a, b):
    return _mm(a, b)
