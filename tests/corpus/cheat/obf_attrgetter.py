# expect: timing.stream
# policy: permissive
# operator.attrgetter with a literal dotted path fetches the stream class.
import operator

import torch


def run(x):
    s = operator.attrgetter("cuda.Stream")(torch)()
    s.wait_stream(torch.cuda.current_stream())
    return torch.empty_like(x)
