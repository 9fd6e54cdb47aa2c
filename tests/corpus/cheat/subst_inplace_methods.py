# expect: substitution.torch-compute
# In-place and indexing compute methods, on an input and on a local alias.
import torch


def run(x):
    out = torch.zeros_like(x)
    out.index_put_((torch.arange(x.shape[0], device=x.device),), x)
    y = out
    y.cumsum_(0)
    return out
