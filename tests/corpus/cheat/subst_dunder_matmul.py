# expect: substitution.torch-compute
# inputs: a
# The matmul through its dunder method.
import torch
def run(a):
    return a.__matmul__(a)
