"""Agreement of solgym's GPU timing with Nsight Compute's `gpu__time_duration`, on the shipped Triton
RMSNorm for a few workloads of `rmsnorm_llama3_8b`.

    python benchmarks/ncu_agreement.py [--calls 50]

For each workload: the median per-call time from `solgym.harness.time_loop` (profiler kernel extent, cold
L2), and the median `gpu__time_duration.sum` that `ncu --clock-control none` (clocks left alone, caches
flushed between kernels, as solgym does) reports for the same kernel launched `--calls` times in a
child process. Prints both and their ratio.
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

from solgym.harness import Clock, time_loop  # noqa: E402
from solgym.inputs import make_inputs  # noqa: E402
from solgym.suite import find_problem  # noqa: E402

KERNEL = ROOT / "envs" / "core" / "rmsnorm_llama3_8b" / "solutions" / "triton_rmsnorm.py"
WORKLOADS = ("1e7b3c92", "9d4f6a21", "6a2c8e47")  # 1000, 4096, 16384 tokens


def _kernel_and_inputs(prefix: str):
    spec = importlib.util.spec_from_file_location("ncu_rmsnorm", KERNEL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    problem = find_problem("rmsnorm_llama3_8b")
    workload = problem.workload(prefix)
    inputs = make_inputs(problem, workload, seed=1, device="cuda")
    return module.run, list(inputs.values()), workload


def launch(prefix: str, calls: int) -> None:
    """Child mode: the kernel launched `calls` times (what ncu measures)."""
    run, args, _ = _kernel_and_inputs(prefix)
    for _ in range(calls):
        run(*args)
    torch.cuda.synchronize()


def solgym_median(prefix: str, calls: int) -> float:
    run, args, _ = _kernel_and_inputs(prefix)
    run(*args)  # compile outside the timed loop
    clock = Clock(torch.device("cuda"))
    timing = time_loop(clock, calls, lambda i: lambda: run(*args), lambda i, r: None, profile=True)
    return statistics.median(timing.samples_ms)


def ncu_median(prefix: str, calls: int) -> float:
    ncu = shutil.which("ncu")
    if ncu is None:
        raise SystemExit("ncu is not on PATH")
    command = [
        ncu,
        "--clock-control",
        "none",
        "--metrics",
        "gpu__time_duration.sum",
        "--csv",
        "-k",
        "regex:_rmsnorm_kernel",
        sys.executable,
        __file__,
        "--launch",
        prefix,
        "--calls",
        str(calls),
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
    parser.add_argument("--launch", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.launch:
        launch(args.launch, args.calls)
        return
    print(f"{torch.cuda.get_device_name()}  torch {torch.__version__}")
    for prefix in WORKLOADS:
        ours, theirs = solgym_median(prefix, args.calls), ncu_median(prefix, args.calls)
        tokens = find_problem("rmsnorm_llama3_8b").workload(prefix).axes["num_tokens"]
        print(
            f"{tokens:6d} tokens  solgym {ours * 1e3:9.2f} us  ncu {theirs * 1e3:9.2f} us  ratio {ours / theirs:.3f}"
        )


if __name__ == "__main__":
    main()
