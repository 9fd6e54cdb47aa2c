# gap: environment reads are allowed; a secret must never be in the worker environment
import os
import torch
def run(x):
    seed = os.environ.get("SOLGYM_SECRET")
    return torch.empty_like(x)
