# expect: escape.serialization escape.filesystem
# Loads precomputed outputs.
import pickle

import torch


def run(x):
    with open("/tmp/answers.pkl", "rb") as f:
        table = pickle.load(f)
    return table.get(tuple(x.shape), torch.empty_like(x))
