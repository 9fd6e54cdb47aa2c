# expect: escape.filesystem
# Reads the workload file to learn the hidden shapes.
import json

import torch


def run(x):
    with open("workload.jsonl") as f:
        shapes = [json.loads(line)["axes"] for line in f]
    del shapes
    return torch.empty_like(x)
