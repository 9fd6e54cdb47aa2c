"""Hostile: does the work on a side stream the caller never waits for, plus ~1 ms of GPU spin there, so
a timer that watches only the current stream sees almost nothing. solgym's timer must count it."""

import torch

_side = None


def run(x, weight):
    global _side
    if _side is None:
        _side = torch.cuda.Stream()
    out = torch.empty_like(x)
    _side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(_side):
        torch.cuda._sleep(2_000_000)  # about 1 ms at H100 clocks
        out.copy_(x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * weight)
    return out
