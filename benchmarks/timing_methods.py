"""Why solgym times GPU calls with the profiler's kernel records: the same calls measured four ways.

    python benchmarks/timing_methods.py [--reps 200]

Cases: a near-empty kernel (the launch floor), an RMSNorm of 8192 x 4096 bf16 (memory-bound), and the
same RMSNorm issued on a side stream behind a ~1 ms spin (work a current-stream timer does not see).
Methods: CUDA events on the current stream; events around the call plus a device-wide sync; host
perf_counter around call + sync; solgym's profiler busy time (`solgym.harness.time_loop`: the union of
the call's kernel intervals) and the kernel extent it reports apart (first kernel start to last end). Each row
gives the median and the coefficient of variation over `reps` calls with a cold L2.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from solgym.harness import Clock, time_loop


def rmsnorm(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return (x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + 1e-6)).to(x.dtype) * w


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=200)
    args = parser.parse_args()
    dev = torch.device("cuda", 0)
    clock = Clock(dev)
    x = torch.randn(8192, 4096, device=dev, dtype=torch.bfloat16)
    w = torch.randn(4096, device=dev, dtype=torch.bfloat16)
    tiny = torch.zeros(1, device=dev)
    side = torch.cuda.Stream()

    def on_side() -> torch.Tensor:
        out = torch.empty_like(x)
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            torch.cuda._sleep(2_000_000)
            out.copy_(rmsnorm(x, w))
        return out

    cases = {
        "empty kernel": lambda: tiny.fill_(1.0),
        "rmsnorm 8192x4096 bf16": lambda: rmsnorm(x, w),
        "side-stream rmsnorm": on_side,
    }
    rows = []
    for name, fn in cases.items():
        for _ in range(5):
            fn()
        clock.sync()
        measured: dict[str, list[float]] = {
            "events (current stream)": [],
            "events + device sync": [],
            "host perf_counter + sync": [],
        }
        for _ in range(args.reps):
            clock.flush()
            clock.sync()
            a, b, c = (torch.cuda.Event(enable_timing=True) for _ in range(3))
            t0 = time.perf_counter()
            a.record()
            fn()
            b.record()
            clock.sync()
            c.record()
            t1 = time.perf_counter()
            c.synchronize()
            measured["events (current stream)"].append(a.elapsed_time(b))
            measured["events + device sync"].append(a.elapsed_time(c))
            measured["host perf_counter + sync"].append((t1 - t0) * 1e3)
        timing = time_loop(clock, args.reps, lambda i, fn=fn: fn, lambda i, r: None, profile=True)
        measured[f"profiler busy time ({timing.method})"] = timing.samples_ms
        if timing.extent_ms:
            measured["profiler kernel extent"] = timing.extent_ms
        for method, samples in measured.items():
            mean = statistics.fmean(samples)
            rows.append(
                {
                    "case": name,
                    "method": method,
                    "median_ms": statistics.median(samples),
                    "cv": statistics.pstdev(samples) / mean if mean else None,
                }
            )
    for row in rows:
        print(f"{row['case']:24} {row['method']:44} {row['median_ms']:10.5f} ms  cv {row['cv']:.3f}")
    print(json.dumps({"gpu": torch.cuda.get_device_name(dev), "torch": torch.__version__, "rows": rows}))


if __name__ == "__main__":
    main()
