# expect: dynamic.payload dynamic.exec
# A compressed payload compiled and executed through aliases.
import zlib as _z

import torch

_blob = bytes.fromhex("789c2b492d2e0100045d01c1")
_c = compile
_e = exec


def run(x):
    _e(_c(_z.decompress(_blob).decode(), "<k>", "exec"), {})
    return torch.empty_like(x)
