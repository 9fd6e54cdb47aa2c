# expect: harness.introspection harness.module-assign
# Rebinding a builtin changes how the harness itself behaves.
import builtins

import torch

_real_abs = builtins.abs
builtins.abs = lambda v: 0 * _real_abs(v)


def run(x):
    return torch.empty_like(x)
