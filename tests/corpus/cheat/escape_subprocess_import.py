# expect: escape.process dynamic.exec
# subprocess imported with __import__ under a literal name.
import torch

_sp = __import__("subprocess")


def run(x):
    _sp.run(["pip", "install", "fastkernels"], check=False)
    return torch.empty_like(x)
