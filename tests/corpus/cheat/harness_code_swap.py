# expect: harness.dunder
# Swapping a function's code object at run time.
import torch


def _fast(x):
    return x


def run(x):
    out = torch.empty_like(x)
    _fast.__code__ = (lambda x: out).__code__
    return _fast(x)
