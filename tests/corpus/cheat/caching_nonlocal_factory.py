# expect: caching.state-result
# policy: permissive
# A factory's closure keeps the last output; run calls the function the factory returned.
import torch


def _make():
    last = None

    def inner(x):
        nonlocal last
        if last is not None and last.shape == x.shape:
            return last
        last = torch.nn.functional.silu(x)
        return last

    return inner


_impl = _make()


def run(x):
    return _impl(x)
