# expect: timing.signal
# Hooks run code when the harness does not expect it.
import atexit
import signal

import torch


def _on_alarm(signum, frame):
    pass


signal.signal(signal.SIGALRM, _on_alarm)
atexit.register(lambda: None)


def run(x):
    return torch.empty_like(x).copy_(x)
