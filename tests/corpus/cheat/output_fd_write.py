# expect: output.stdio
# Writes straight to file descriptor 1.
import os

import torch


def run(x):
    os.write(1, b"PASSED\n")
    return torch.empty_like(x)
