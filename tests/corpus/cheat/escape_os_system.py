# expect: escape.process
# Shells out.
import os

import torch


def run(x):
    os.system("nvidia-smi -lgc 2100")
    return torch.empty_like(x)
