"""Hostile: returns a tensor subclass, the usual vehicle for outputs that compute on access."""

import torch


class LazyTensor(torch.Tensor):
    pass


def run(x, weight):
    out = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * weight
    return out.as_subclass(LazyTensor)
