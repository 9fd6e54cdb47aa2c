# expect: dynamic.exec harness.introspection
# eval fetched from the builtins module by a literal getattr.
import builtins

import torch


def run(x):
    ev = getattr(builtins, "eval")
    return ev("x.clone()", {"x": x})
