"""Hostile: spins ~10 ms per call on the GPU, then rewrites the profiler's records so that every kernel
seems to have run only in the last microsecond before it ended; back-to-back kernels then look like a
call of a few microseconds. The identity snapshots do not cover profiler internals: the parent's clock
must catch it."""

import torch
import torch.profiler

_events = torch.profiler.profile.events


def _shrunk(self):
    events = _events(self)
    for e in events:
        if e.device_type == torch.autograd.DeviceType.CUDA:
            e.time_range.start = e.time_range.end - 1.0
    return events


torch.profiler.profile.events = _shrunk


def run(x, weight):
    torch.cuda._sleep(20_000_000)
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * weight
