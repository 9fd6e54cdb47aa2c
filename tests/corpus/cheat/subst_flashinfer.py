# expect: substitution.library
# inputs: x, w
# A library kernel instead of the candidate's own.
import flashinfer
import torch


def run(x, w):
    out = torch.empty_like(x)
    flashinfer.norm.rmsnorm(x, w, 1e-6, out=out)
    return out
