"""Hostile: returns an unwritten buffer, hoping the allocator hands back memory that held the answer."""

import torch


def run(x, weight):
    return torch.empty_like(x)
