# expect: dynamic.payload dynamic.exec
# A base64 payload fed to eval.
import base64

import torch

_P = "dG9yY2gubWF0bXVsKGEsIGIp"


def run(a, b):
    return eval(base64.b64decode(_P).decode(), {"torch": torch, "a": a, "b": b})
