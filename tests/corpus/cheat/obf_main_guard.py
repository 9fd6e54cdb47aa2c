# expect: output.stdio
# A __main__ block is skipped only when __name__ is not touched elsewhere; here it is rebound first.
import torch

__name__ = "__main__"  # noqa: A001


def run(x):
    return torch.empty_like(x)


if __name__ == "__main__":
    print("PASSED latency_ms=0.001")
