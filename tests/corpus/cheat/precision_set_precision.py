# expect: precision.global-flag
# policy: permissive
# inputs: a, b
# The same through the setter, under an alias.
import torch as th

_set = th.set_float32_matmul_precision


def run(a, b):
    _set("medium")
    return a @ b
