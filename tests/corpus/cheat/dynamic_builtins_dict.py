# expect: harness.dunder
# exec fetched out of __builtins__ by a computed key.
import torch


def run(x):
    f = __builtins__["ex" + "ec"] if isinstance(__builtins__, dict) else getattr(__builtins__, "ex" + "ec")
    ns = {"x": x}
    f("y = x.clone()", ns)
    return ns["y"]
