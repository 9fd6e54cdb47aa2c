# expect: caching.identity-key
# A memo dict captured by a closure instead of living at module level.
import torch
def _make():
    seen = {}
    def inner(x):
        k = x.data_ptr()
        if k not in seen:
            seen[k] = x.clone()
        return seen[k]
    return inner
_impl = _make()
def run(x):
    return _impl(x)
