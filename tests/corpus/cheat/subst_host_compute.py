# expect: substitution.torch-compute
# Computes on the host through tolist() and puts the result back with an allowed factory.
import math

import torch


def run(x):
    values = x.tolist()
    total = math.fsum(values)
    return torch.full_like(x, total)
