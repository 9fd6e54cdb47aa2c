"""Hostile: remembers the output per input address and replays it when the address comes back."""

import torch

_cache = {}


def run(x, weight):
    key = (x.data_ptr(), weight.data_ptr())
    if key not in _cache:
        _cache[key] = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * weight
    return _cache[key].clone()
