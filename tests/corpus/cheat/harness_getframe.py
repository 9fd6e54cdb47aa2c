# expect: harness.introspection harness.dunder
# Walks up the call stack to read the harness's expected output.
import sys

import torch


def run(x):
    caller = sys._getframe(1)
    expected = caller.f_locals.get("expected")
    if expected is not None:
        return expected.clone()
    return torch.empty_like(x)
