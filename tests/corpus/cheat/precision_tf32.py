# expect: precision.global-flag
# policy: permissive
# inputs: a, b
# Lowers matmul precision for the reference too.
import torch

torch.backends.cuda.matmul.allow_tf32 = True
torch.backends.cudnn.allow_tf32 = True


def run(a, b):
    return torch.matmul(a, b)
