# expect: harness.module-assign
# Replaces Triton's benchmark function with one that reports a tiny time.
import torch
import triton
import triton.testing


def _fake_bench(fn, *args, **kwargs):
    return 0.001


triton.testing.do_bench = _fake_bench


def run(x):
    return torch.empty_like(x)
