"""How a baseline's time drifts within one process over minutes, and what moves with it.

    python benchmarks/tb_drift.py [--seconds 300] [--calls 40] [--out drift.jsonl] PROBLEM:INDEX:KIND ...
    python benchmarks/tb_drift.py --table drift.jsonl      # summary of a run (no GPU needed)

Each case is a problem, a workload index and a baseline kind (eager | compile), e.g.
`decoder_self_attention_whisper_large_v3:0:eager`. The cases are prepared once (inputs, the compiled
reference), then timed round after round until `--seconds` pass, each round `--calls` calls through the
harness's own `time_loop` (cache flushed before each call, fresh input copies). Per round and case it
prints and writes: the median kernel extent (what T_b is made of), the median busy time (the union of the
call's kernel intervals: the extent without the idle gaps between kernels), the median host launch time,
the SM clock NVML reads while the calls run (min and max of samples taken every 20 ms by a thread), and
the host's speed on a fixed pure-Python loop (µs). If the extent moves while the busy time stays, the
drift is on the host (launch gaps); if both move with the clock, it is the GPU's clock.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from solgym import harness  # noqa: E402
from solgym.hardware import nvml_snapshot  # noqa: E402
from solgym.suite import find_problem  # noqa: E402


class ClockSampler:
    """SM clock samples (MHz) from NVML every `period` seconds while active."""

    def __init__(self, index: int, period: float = 0.02) -> None:
        self.index, self.period = index, period
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            clock = nvml_snapshot(self.index).get("sm_clock_mhz")
            if clock is not None:
                self.samples.append(clock)
            self._stop.wait(self.period)

    def __enter__(self) -> ClockSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def host_speed_us(n: int = 20000) -> float:
    """Microseconds for a fixed pure-Python loop: the host's speed at this moment."""
    t0 = time.perf_counter()
    total = 0
    for i in range(n):
        total += i * i % 7
    return (time.perf_counter() - t0) * 1e6


def prepare_case(spec: str, device: torch.device) -> dict:
    name, index, kind = spec.split(":")
    problem = find_problem(name)
    workload = problem.workloads[int(index)]
    (data,) = harness.prepare(problem, [workload], seed=1, rounds=2, device=device)
    candidate = harness._baseline_candidate(problem, kind, shapes=1)
    keep: list = []

    def iteration(i: int):
        call_inputs = harness.fresh_copy(data.inputs[i % len(data.inputs)])
        keep.append(call_inputs)
        del keep[:-3]
        return lambda: harness.call_candidate(candidate, problem, call_inputs, None)

    for i in range(3):  # compile and warm up outside the rounds
        iteration(i)()
    torch.cuda.synchronize(device)
    return {"case": spec, "axes": dict(workload.axes), "iteration": iteration}


def table(path: Path) -> None:
    """Per case: p5 / p50 / p95 of the extent, the busy time and the host loop over all rounds, the
    correlation of extent and host loop, the SM clocks seen."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    print(
        "| case | rounds | extent p5 / p50 / p95 (µs) | busy p5 / p50 / p95 (µs) | host loop p5 / p50 / p95 (µs) "
        "| corr(extent, host) | SM clock (MHz) |"
    )
    print("|---|---:|---|---|---|---:|---|")
    for case in dict.fromkeys(r["case"] for r in rows):
        mine = [r for r in rows if r["case"] == case]

        def spread(key: str, scale: float, mine: list = mine) -> str:
            qs = statistics.quantiles([r[key] * scale for r in mine], n=20)
            return f"{qs[0]:.1f} / {statistics.median(r[key] * scale for r in mine):.1f} / {qs[-1]:.1f}"

        corr = statistics.correlation([r["extent_ms"] for r in mine], [r["host_loop_us"] for r in mine])
        clocks = sorted({r[k] for r in mine for k in ("sm_clock_min", "sm_clock_max") if r[k] is not None})
        print(
            f"| {case} | {len(mine)} | {spread('extent_ms', 1e3)} | {spread('busy_ms', 1e3)} "
            f"| {spread('host_loop_us', 1.0)} | {corr:.2f} | {', '.join(f'{c:g}' for c in clocks)} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", help="PROBLEM:WORKLOAD_INDEX:eager|compile")
    parser.add_argument("--table", type=Path, help="summarise a --out file instead of measuring")
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--device", type=int, default=0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.table:
        table(args.table)
        return
    if not args.cases:
        parser.error("name at least one PROBLEM:WORKLOAD_INDEX:eager|compile case, or --table FILE")
    device = torch.device("cuda", args.device)
    torch.cuda.set_device(device)
    clock = harness.Clock(device)
    cases = [prepare_case(spec, device) for spec in args.cases]
    out = args.out.open("w") if args.out else None
    t_start = time.monotonic()
    round_no = 0
    while time.monotonic() - t_start < args.seconds:
        for case in cases:
            host = host_speed_us()
            with ClockSampler(args.device) as sampler:
                timing = harness.time_loop(
                    clock, args.calls, case["iteration"], lambda i, r: None, profile=True
                )
            row = {
                "round": round_no,
                "t_s": round(time.monotonic() - t_start, 1),
                "case": case["case"],
                "extent_ms": statistics.median(timing.extent_ms),
                "busy_ms": statistics.median(timing.samples_ms),
                "host_launch_ms": statistics.median(timing.host_ms),
                "kernels_per_call": timing.kernel_count / max(timing.iterations, 1),
                "sm_clock_min": min(sampler.samples, default=None),
                "sm_clock_max": max(sampler.samples, default=None),
                "host_loop_us": round(host, 1),
            }
            print(
                f"{row['t_s']:7.1f}s {row['case'][:48]:48s} extent {row['extent_ms'] * 1e3:8.1f} us"
                f"  busy {row['busy_ms'] * 1e3:8.1f} us  launch {row['host_launch_ms'] * 1e3:8.1f} us"
                f"  kernels {row['kernels_per_call']:5.1f}  sm {row['sm_clock_min']}-{row['sm_clock_max']} MHz"
                f"  host {row['host_loop_us']:8.1f} us",
                flush=True,
            )
            if out:
                out.write(json.dumps(row) + "\n")
                out.flush()
        round_no += 1


if __name__ == "__main__":
    main()
