# expect: harness.globals
# Rewrites its own module namespace through globals().
import torch


def _impl(x):
    return torch.empty_like(x)


def run(x):
    globals()["run"] = _impl
    return _impl(x)
