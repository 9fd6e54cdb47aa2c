# expect: escape.filesystem
# open reached through a walrus binding inside an expression.
import torch


def run(x):
    if (reader := open) is not None:
        reader("/proc/self/environ").read()
    return torch.empty_like(x)
