# expect: escape.os
# Writes the environment the harness reads.
import os

import torch


def run(x):
    os.environ["CUDA_LAUNCH_BLOCKING"] = "0"
    return torch.empty_like(x)
