"""Agreement of solgym's GPU timing with Nsight Compute's `gpu__time_duration`, on the shipped Triton
RMSNorm of `rmsnorm_llama3_8b` (hidden size 4096, bf16) at a few token counts.

    python benchmarks/ncu_agreement.py [--calls 50] [--tokens 1000 4096 16384] [--flush harness read ...]
                                       [--rotate K] [--ncu-cache all none harness]

For each token count: the median per-call time from `solgym.harness.time_loop` (profiler busy time,
cache flushed before every call), and the median `gpu__time_duration.sum` that `ncu --clock-control none`
(clocks left alone) reports for the same kernel launched `--calls` times in a child process, with ncu's
cache control `all` (caches flushed and invalidated before every kernel: its default), `none`, or
`harness` (ncu's `none`, with the harness's own flush run before each launch: the cache state solgym
times in, so the two tools are compared on equal terms). Prints
both, their ratio, and solgym's time over the workload's T_SOL on this GPU (physical convention): a
ratio below 1 is an honest kernel measured faster than the DRAM-priced bound.

`--flush` times solgym's side once per cache-flush variant: `harness` (what `Clock.flush` does),
`write` (zero a buffer twice the L2: the cache is left full of dirty lines), `read` (sum that buffer: the
cache is left full of clean lines), `write-read` (both, in that order) and `read-4x` (sum a buffer four
times the L2). `--rotate K` cycles each call through K copies of the inputs, as the harness gives every
timed call fresh input addresses (the copies are made before the loop; default 1: the same inputs).
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import io
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from solgym.bounds import derive  # noqa: E402
from solgym.hardware import detect  # noqa: E402
from solgym.harness import Clock, time_loop  # noqa: E402
from solgym.suite import find_problem  # noqa: E402

KERNEL = ROOT / "envs" / "core" / "rmsnorm_llama3_8b" / "solutions" / "triton_rmsnorm.py"
HIDDEN = 4096


def _kernel():
    spec = importlib.util.spec_from_file_location("ncu_rmsnorm", KERNEL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.run


def _inputs(tokens: int, copies: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator(device="cuda").manual_seed(1)
    x = torch.randn(tokens, HIDDEN, device="cuda", dtype=torch.bfloat16, generator=generator)
    w = torch.randn(HIDDEN, device="cuda", dtype=torch.bfloat16, generator=generator)
    return [(x.clone(), w.clone()) for _ in range(copies)]


def launch(tokens: int, calls: int, flush: bool = False) -> None:
    """Child mode: the kernel launched `calls` times (what ncu measures); with `flush`, the harness's own
    flush runs before each launch (ncu profiles only the RMSNorm kernel, so the flush is not timed but
    leaves the cache as the harness does)."""
    run = _kernel()
    (args,) = _inputs(tokens, 1)
    clock = Clock(torch.device("cuda")) if flush else None
    for _ in range(calls):
        if clock is not None:
            clock.flush()
            clock.sync()
        run(*args)
    torch.cuda.synchronize()


def _flushes(clock: Clock) -> dict:
    big: list[torch.Tensor] = []

    def read_4x() -> None:
        if not big:
            big.append(torch.zeros(2 * clock.flush_buffer.numel(), dtype=torch.uint8, device="cuda"))
        big[0].sum()

    return {
        "harness": clock.flush,
        "write": lambda: clock.flush_buffer.zero_(),
        "read": lambda: clock.flush_buffer.sum(),
        "write-read": lambda: (clock.flush_buffer.zero_(), clock.flush_buffer.sum()),
        "read-4x": read_4x,
    }


FLUSHES = ("harness", "write", "read", "write-read", "read-4x")


def solgym_median(tokens: int, calls: int, flush: str, rotate: int) -> float:
    run = _kernel()
    copies = _inputs(tokens, rotate)
    run(*copies[0])  # compile outside the timed loop
    clock = Clock(torch.device("cuda"))
    clock.flush_buffer.zero_()
    clock.flush = _flushes(clock)[flush]
    timing = time_loop(
        clock, calls, lambda i: lambda: run(*copies[i % rotate]), lambda i, r: None, profile=True
    )
    return statistics.median(timing.samples_ms)


def ncu_median(tokens: int, calls: int, cache: str) -> float:
    ncu = shutil.which("ncu")
    if ncu is None:
        raise SystemExit("ncu is not on PATH")
    command = [
        ncu,
        "--clock-control",
        "none",
        "--cache-control",
        "none" if cache == "harness" else cache,
        "--metrics",
        "gpu__time_duration.sum",
        "--csv",
        "-k",
        "regex:_rmsnorm_kernel",
        sys.executable,
        __file__,
        "--launch",
        str(tokens),
        "--calls",
        str(calls),
        *(["--launch-flush"] if cache == "harness" else []),
    ]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rows = [r for r in csv.reader(io.StringIO(out[out.index('"ID"') :])) if r]
    header, body = rows[0], rows[1:]
    unit_i, value_i = header.index("Metric Unit"), header.index("Metric Value")
    scale = {"nsecond": 1e-6, "ns": 1e-6, "usecond": 1e-3, "us": 1e-3, "msecond": 1.0, "ms": 1.0}
    values = [float(r[value_i].replace(",", "")) * scale[r[unit_i]] for r in body]
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--tokens", type=int, nargs="+", default=[1000, 4096, 16384])
    parser.add_argument("--flush", nargs="+", choices=FLUSHES, default=["harness"])
    parser.add_argument("--rotate", type=int, default=1)
    parser.add_argument("--ncu-cache", nargs="+", choices=("all", "none", "harness"), default=["all"])
    parser.add_argument("--launch", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--launch-flush", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.launch:
        launch(args.launch, args.calls, args.launch_flush)
        return
    print(f"{torch.cuda.get_device_name()}  torch {torch.__version__}  rotate {args.rotate}")
    problem, profile = find_problem("rmsnorm_llama3_8b"), detect(0)
    for tokens in args.tokens:
        t_sol = derive(problem, problem.workloads[0].with_axes(num_tokens=tokens), profile).t_sol_ms
        theirs = {cache: ncu_median(tokens, args.calls, cache) for cache in args.ncu_cache}
        ncu_text = "  ".join(f"ncu[{c}] {t * 1e3:8.2f} us" for c, t in theirs.items())
        for flush in args.flush:
            ours = solgym_median(tokens, args.calls, flush, args.rotate)
            ratios = "  ".join(f"{ours / t:.3f}" for t in theirs.values())
            print(
                f"{tokens:6d} tokens  flush {flush:10s}  solgym {ours * 1e3:8.2f} us  {ncu_text}  ratio {ratios}"
                f"  T_SOL {t_sol * 1e3:7.2f} us  solgym/T_SOL {ours / t_sol:.3f}"
            )


if __name__ == "__main__":
    main()
