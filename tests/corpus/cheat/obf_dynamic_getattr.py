# expect: obfuscation.dynamic-attribute
# An attribute name computed at run time.
import torch


def run(x):
    name = "".join(reversed("maertS"))
    s = getattr(torch.cuda, name)()
    with torch.cuda.stream(s):
        out = torch.empty_like(x)
    return out
