# expect: harness.introspection
# importlib with a name assembled at run time.
import importlib

import torch


def run(x):
    mod = importlib.import_module("tor" + "ch.testing")
    mod.assert_close = lambda *a, **k: None
    return torch.empty_like(x)
