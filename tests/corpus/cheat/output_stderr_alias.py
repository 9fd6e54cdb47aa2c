# expect: output.stdio
# Writes to stderr through an alias.
import sys as _s

import torch

_err = _s.stderr


def run(x):
    _err.write("speedup: 100x\n")
    return torch.empty_like(x)
