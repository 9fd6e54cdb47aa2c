# expect: substitution.torch-compute
# The add method reached through type(x).
import torch


def run(x):
    cls = type(x)
    return cls.add(x, x)
