# gap: tensor arithmetic operators outside kernels are not visible statically (no types)
import torch
def run(x):
    return x * 2.0 + 1.0
