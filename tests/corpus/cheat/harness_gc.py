# expect: harness.introspection
# gc.get_objects finds the reference output lying in memory.
import gc

import torch


def run(x):
    for obj in gc.get_objects():
        if isinstance(obj, torch.Tensor) and obj.shape == x.shape and obj is not x:
            return obj
    return torch.empty_like(x)
