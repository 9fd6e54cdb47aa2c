# expect: substitution.torch-compute
# torch.nn.functional under two aliases.
import torch
import torch.nn.functional as F_

f = F_


def run(x):
    y = f.softmax(x.float(), dim=-1)
    return y.to(x.dtype)
