# gap: type(module)(...) builds a module object; harmless here but not flagged
import torch
def run(x):
    T = type(torch.cuda)
    m = T("fake")
    return x
