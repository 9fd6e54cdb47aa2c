# expect: escape.process
# os reached through a lambda's return value.
import os as _o

import torch

_m = lambda: _o  # noqa: E731


def run(x):
    _m().system("true")
    return torch.empty_like(x)
