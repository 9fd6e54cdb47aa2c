# gap: builtins that combine tensors (sum, max over a list) run torch ops unseen
import torch
def run(x):
    out = torch.empty_like(x)
    out.copy_(sum([x, x]))
    return out
