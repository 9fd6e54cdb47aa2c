# expect: harness.introspection
# inspect.stack() reaches the harness's frames.
import inspect

import torch


def run(x):
    for record in inspect.stack():
        ref = record.frame.f_locals.get("reference_output")
        if ref is not None:
            return ref
    return torch.empty_like(x)
