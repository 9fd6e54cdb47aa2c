# expect: timing.stream
# policy: permissive
# The only trace of the stream is a literal getattr; nothing else names it.
import torch

_K = "Stream"


def run(x):
    s = getattr(torch.cuda, _K)(priority=-1)
    out = torch.empty_like(x)
    s.wait_stream(torch.cuda.current_stream())
    return out
