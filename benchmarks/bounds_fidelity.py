"""Fidelity of solgym's derived SOL bounds against SOL-ExecBench's published ones.

For every workload of every problem in the SOL-ExecBench development set, derive T_SOL with the B200
profile at 1500 MHz under the `solar` convention (the published pricing, with its +0.4 us constant),
round it to 0.1 us as the published `sol_ms` are, and compare. Prints one row per problem (workloads,
median and worst ratio ours/published, time to derive all its workloads) and the summary: median ratio
and the share of workloads within +-10% and +-25%, over all workloads and over those whose published bound
has no known defect, and how many workloads have one.

A published bound is known to be wrong where it is below what any correct kernel must do under the
published pricing itself: write every output once and read the part of every input that the outputs
provably depend on (`OpCounts.needed_read_elements`), at the published byte width, plus its 0.4 us
constant. That test runs per workload (`NEEDED_BY_HAND` adds inputs shown needed by an argument the
walk cannot make). A second test per workload finds published bounds above what the reference needs: where
ours is more than 10% below the published value and the published value is, to 2%, the reference counted
with none of its masks followed (every score it masks out computed, as it computes them), the published
bound prices work the reference discards, which a kernel that skips masked blocks does not do.
`KNOWN_DEFECTS` adds the problems shown wrong by another argument, on the workloads where the error sets the
bound (docs/bounds.md has the evidence for all of these).

Workloads whose FlashInfer-Trace index blobs are absent (the dev set ships none) are derived on stand-ins
(`solgym.substitutes`: offsets and distinct pages that satisfy the definition), written to a temporary
folder, or to `--stand-ins DIR` to keep them; rows and workloads derived so say so. `--no-stand-ins`
leaves them underived. A blob found under `$SOLGYM_TRACE_DATA` is used as it is.

    python benchmarks/bounds_fidelity.py [--data DIR] [--only SUBSTRING] [--threads N] [--json | --markdown]
                                         [--stand-ins DIR | --no-stand-ins]

`--threads` sets torch's intra-op threads for the derivation (default: torch's own choice). The on-disk
count cache (`solgym.count_cache`) is off, so every time is that of a cold derivation.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from solgym import count_cache, substitutes
from solgym.bounds import SOLAR_CONSTANT_MS, counts, derive, price, solar_widths
from solgym.hardware import Profile, get_profile
from solgym.inputs import TRACE_DATA_ENV, blob_file, footprint_bytes, make_inputs
from solgym.opcount import DataDependent, OpCounts, count_on_meta, entry_ranges, meta_inputs, trace
from solgym.problem import Problem, ProblemError, Workload, load_problem

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "solexecbench-dev"

# Problems whose published bound is known to be wrong, why, and where: "compute" for a bound that leaves out
# work, which is wrong only on the workloads where that work binds (elsewhere the published memory roof is
# the bound); docs/bounds.md has the evidence.
KNOWN_DEFECTS = {
    "019_mla_paged_prefill_causal_h16_ckv512_kpe64_ps1": (
        "published bound omits the attention MACs of the per-request loop",
        "compute",
    ),
}
# Inputs that every correct kernel reads in full, by an argument the needed-reads walk cannot make (there,
# the gradients accumulate into zero-filled buffers, which it takes as possibly infinite, and the expert
# weights are counted without values); the defect test then counts them whole (docs/bounds.md).
NEEDED_BY_HAND = {
    # grad_hidden_states needs the gate, up and down weights of every expert that receives a token, and
    # the routing (8 of 256 experts for each of 2048 or more tokens) leaves none without one.
    "025_moe_expert_parallel_execution_backward": ("gate_weights", "up_weights", "down_weights"),
}
# A bound is flagged only when more than 10% below the needed time: robust to the published pricing's exact
# DRAM bandwidth (7.667 TB/s at the locked memory clock, 8 TB/s nominal), and never a workload within 10%.
NEEDED_MARGIN = 1.10
# A published bound prices the masked scores where it is within this share of the reference counted with
# its masks not followed (the published values are rounded to 0.1 us).
MASKED_MATCH = 0.02


def needed_ms(problem: Problem, workload: Workload, c: OpCounts, profile: Profile) -> float:
    """The least time any correct kernel needs under the published pricing: every output written once and
    the provably needed part of every input read once, at the published byte width, plus 0.4 us."""
    width = solar_widths(problem)
    needed = dict(c.needed_read_elements)
    for name in NEEDED_BY_HAND.get(problem.name, ()):
        needed[name] = c.read_elements[name]
    total = sum(n * width[name] for name, n in needed.items()) + sum(
        n * width[name] for name, n in c.write_elements.items()
    )
    return total / profile.dram_bytes_per_s * 1e3 + SOLAR_CONSTANT_MS


def unmasked_ms(problem: Problem, workload: Workload, profile: Profile) -> float | None:
    """T_SOL under the published pricing of the reference counted on meta with none of its masks followed:
    every score a mask in it discards is computed and multiplied, as the reference does. None where the
    reference does not trace on meta."""
    try:
        c = count_on_meta(problem, workload, follow_masks=False)
    except DataDependent:
        return None
    return price(problem, workload, c, profile, convention="solar").t_sol_ms


def prices_masked(
    problem: Problem, workload: Workload, ours_ms: float, published_ms: float, profile: Profile
) -> bool:
    """Whether a published bound is above ours by more than NEEDED_MARGIN, under the published widths and
    at each tensor's own, because it prices the scores a mask in the reference discards (`unmasked_ms`)."""
    if round(ours_ms, 4) * NEEDED_MARGIN >= published_ms:
        return False
    # Above what a kernel needs at each tensor's own width too, not only under the published widths.
    physical = derive(problem, workload, profile, convention="physical", floor=False)
    if physical.t_sol_ms * NEEDED_MARGIN >= published_ms:
        return False
    full = unmasked_ms(problem, workload, profile)
    return full is not None and full > ours_ms and abs(published_ms / round(full, 4) - 1) <= MASKED_MATCH


def needed_counts(problem: Problem, workload: Workload) -> OpCounts:
    """The counts whose needed reads the defect test uses. A meta trace knows nothing of custom inputs'
    values, so they count as possibly holding zeros and infinities; here they are generated once per
    problem, on its smallest workload, and the workload is traced again knowing which float inputs hold
    neither (continuous) and which hold no infinity."""
    c = counts(problem, workload)
    if c.traced_on != "meta" or not any(s.kind == "custom" for s in workload.inputs.values()):
        return c
    if problem.name not in _CONTINUOUS:
        smallest = min(problem.workloads, key=lambda w: footprint_bytes(problem, w))
        values = make_inputs(problem, smallest, device="cpu")
        floats = {  # as float32: fp8 has no isfinite on the CPU; packed fp4 holds no infinity anyway
            n: v.float()
            for n, v in values.items()
            if isinstance(v, torch.Tensor)
            and v.is_floating_point()
            and v.dtype != getattr(torch, "float4_e2m1fn_x2", None)
        }
        finite = [n for n, v in floats.items() if bool(torch.isfinite(v).all())]
        _CONTINUOUS[problem.name] = (
            [n for n in finite if bool((floats[n] != 0).all())],
            finite,
        )
    continuous, finite = _CONTINUOUS[problem.name]
    generic = [n for n, s in workload.inputs.items() if s.kind == "random"] + continuous
    inputs = meta_inputs(problem, workload)
    try:
        return trace(problem, inputs, with_data=False, generic=generic, finite=finite)
    except DataDependent:  # a read that the ranges of the entry point's tensors decide (counts did so)
        ranges = entry_ranges(problem, workload, inputs)
        return trace(problem, inputs, with_data=False, generic=generic, finite=finite, ranges=ranges)


_CONTINUOUS: dict[str, tuple[list[str], list[str]]] = {}


def _ratio(ours_ms: float, published_ms: float) -> float:
    # Published values are rounded to 0.1 us; ours is rounded the same way before comparing.
    ours = round(ours_ms, 4)
    if published_ms <= 0:
        return float("inf") if ours > 0 else 1.0
    return ours / published_ms


def _missing_blobs(problem: Problem) -> bool:
    """Whether a blob some workload of the problem reads is found neither under $SOLGYM_TRACE_DATA nor in
    the problem's folder."""
    return any(blob_file(problem, w, name) is None for w in problem.workloads for name in w.blobs)


def evaluate(
    data: Path, only: str | None = None, *, meta_only: bool = False, stand_ins: Path | None = None
) -> dict:
    """Per-problem rows and per-workload ratios for every dev problem under `data` (with `meta_only`,
    only the problems whose reference traces without data: the fast subset). With `stand_ins`, a problem
    whose blobs are absent is derived on stand-ins written there."""
    profile = get_profile("B200").at_clock(1500)
    rows, workloads = [], []
    for folder in sorted(p for p in data.iterdir() if (p / "published.json").is_file()):
        if only and only not in folder.name:
            continue
        problem = load_problem(folder)
        if meta_only and not _traces_on_meta(problem):
            continue
        standing_in = stand_ins is not None and _missing_blobs(problem)
        if standing_in:
            substitutes.write([problem], stand_ins)
        with _trace_data(stand_ins if standing_in else None):
            row, derived = _evaluate_problem(folder, problem, profile)
        row["stand_ins"] = standing_in
        rows.append(row)
        workloads.extend({**w, "stand_ins": standing_in} for w in derived)
    return {
        "profile": profile.name + " @ 1500 MHz",
        "convention": "solar",
        "rows": rows,
        "workloads": workloads,
        "summary": summarize(workloads),
    }


@contextlib.contextmanager
def _trace_data(folder: Path | None):
    """$SOLGYM_TRACE_DATA set to `folder` for the duration (unchanged where None)."""
    if folder is None:
        yield
        return
    before = os.environ.get(TRACE_DATA_ENV)
    os.environ[TRACE_DATA_ENV] = str(folder)
    try:
        yield
    finally:
        if before is None:
            del os.environ[TRACE_DATA_ENV]
        else:
            os.environ[TRACE_DATA_ENV] = before


def _evaluate_problem(folder: Path, problem: Problem, profile: Profile) -> tuple[dict, list[dict]]:
    """The row of one problem and the entries of its workloads."""
    defect, defect_where = KNOWN_DEFECTS.get(folder.name, (None, None))
    workloads = []
    published = json.loads((folder / "published.json").read_text())["workloads"]
    seconds = slowest = 0.0
    ratios, errors, traced, marked, above = [], [], set(), 0, 0
    for w, pub in zip(problem.workloads, published, strict=True):
        axes = problem.axes(w)
        if any(axes.get(k, v) != v for k, v in pub["axes"].items()):
            raise ValueError(
                f"{folder.name}: workload {w.uuid} does not match published entry {pub['index']}"
            )
        step = time.perf_counter()
        try:
            bound = derive(problem, w, profile, convention="solar")
        except (ProblemError, RuntimeError, ValueError, NotImplementedError) as e:
            took = time.perf_counter() - step
            seconds, slowest = seconds + took, max(slowest, took)
            message = e.message if isinstance(e, ProblemError) else f"{type(e).__name__}: {e}"
            errors.append(message)
            workloads.append({"problem": folder.name, "workload": w.uuid, "error": message})
            continue
        took = time.perf_counter() - step
        seconds, slowest = seconds + took, max(slowest, took)
        r = _ratio(bound.t_sol_ms, pub["sol_ms"])
        ratios.append(r)
        traced.add("meta" if bound.traced_on.startswith("meta") else "data")
        needed = needed_ms(problem, w, needed_counts(problem, w), profile)
        below = pub["sol_ms"] * NEEDED_MARGIN < needed
        masked = prices_masked(problem, w, bound.t_sol_ms, pub["sol_ms"], profile)
        marked += below
        above += masked
        known = defect is not None and (defect_where == "all" or bound.bound_by == defect_where)
        workloads.append(
            {
                "problem": folder.name,
                "workload": w.uuid,
                "ours_ms": bound.t_sol_ms,
                "published_ms": pub["sol_ms"],
                "needed_ms": needed,
                "ratio": r,
                "bound_by": bound.bound_by,
                "compute_ms": bound.compute_ms,
                "memory_ms": bound.memory_ms,
                "below_needed": below,
                "prices_masked": masked,
                "known_defect": known or below or masked,
            }
        )
    row = {
        "problem": folder.name,
        "workloads": len(problem.workloads),
        "derived": len(ratios),
        "median_ratio": statistics.median(ratios) if ratios else None,
        "worst_ratio": max(ratios, key=lambda r: abs(r - 1)) if ratios else None,
        "seconds": seconds,
        "slowest_workload_seconds": slowest,
        "below_needed": marked,
        "prices_masked": above,
        "traced_on": "+".join(sorted(traced)) or "-",
        "error": errors[0] if errors else None,
        "known_defect": defect,
    }
    return row, workloads


def _traces_on_meta(problem) -> bool:
    """Whether the reference runs on meta tensors without reading a tensor value (the fast subset)."""
    try:
        trace(problem, meta_inputs(problem, problem.workloads[0]), with_data=False)
    except DataDependent:
        return False
    return True


def summarize(workloads: list[dict]) -> dict:
    """Median ratio and shares within +-10% / +-25%, over all workloads and without known defects."""

    def stats(items: list[dict]) -> dict:
        ratios = [w["ratio"] for w in items if "ratio" in w]
        n = len(items)
        return {
            "workloads": n,
            "derived": len(ratios),
            "median_ratio": statistics.median(ratios) if ratios else None,
            "within_10pct": sum(abs(r - 1) <= 0.10 for r in ratios) / n if n else 0.0,
            "within_25pct": sum(abs(r - 1) <= 0.25 for r in ratios) / n if n else 0.0,
        }

    return {
        "all": stats(workloads),
        "without_known_defects": stats([w for w in workloads if not w.get("known_defect")]),
        "derivable_without_known_defects": stats(
            [w for w in workloads if not w.get("known_defect") and "ratio" in w]
        ),
        "published_below_needed": sum(bool(w.get("below_needed")) for w in workloads),
        "published_prices_masked": sum(bool(w.get("prices_masked")) for w in workloads),
        "derived_on_stand_in_blobs": sum(bool(w.get("stand_ins")) and "ratio" in w for w in workloads),
    }


def _label(key: str) -> str:
    return key.replace("_", " ").replace("stand in", "stand-in")


def _traced(row: dict) -> str:
    return row["traced_on"] + (" (stand-in blobs)" if row.get("stand_ins") else "")


def _print_table(result: dict) -> None:
    print(f"profile {result['profile']}, convention {result['convention']}")
    print(
        f"{'problem':62} {'wl':>3} {'median':>7} {'worst':>7} {'sec':>6} {'max wl':>6} {'<need':>5} {'mask':>4}  "
        "traced  note"
    )
    for r in result["rows"]:
        med = f"{r['median_ratio']:.3f}" if r["median_ratio"] is not None else "-"
        worst = f"{r['worst_ratio']:.3f}" if r["worst_ratio"] is not None else "-"
        note = r["error"] or r["known_defect"] or ""
        print(
            f"{r['problem'][:62]:62} {r['workloads']:3d} {med:>7} {worst:>7} {r['seconds']:6.2f} "
            f"{r['slowest_workload_seconds']:6.2f} {r['below_needed']:5d} {r['prices_masked']:4d}  "
            f"{_traced(r):6}  {note[:90]}"
        )
    for label, s in result["summary"].items():
        if not isinstance(s, dict):
            print(f"{label}: {s} workloads")
            continue
        med = f"{s['median_ratio']:.3f}" if s["median_ratio"] is not None else "-"
        print(
            f"{label}: {s['workloads']} workloads ({s['derived']} derived), median ratio {med}, "
            f"within 10%: {s['within_10pct']:.1%}, within 25%: {s['within_25pct']:.1%}"
        )


def _print_markdown(result: dict) -> None:
    """The table docs/bounds.md shows, and its summary lines."""
    print(
        "| problem | workloads | median ours/published | worst | published below needed | "
        "published prices masked scores | time to derive (s) | slowest workload (s) | traced on |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in result["rows"]:
        if r["median_ratio"] is None:
            med, worst = "— (not derivable)", "—"
        else:
            med, worst = f"{r['median_ratio']:.3f}", f"{r['worst_ratio']:.3f}"
        print(
            f"| {r['problem']} | {r['workloads']} | {med} | {worst} | {r['below_needed']} | "
            f"{r['prices_masked']} | {r['seconds']:.2f} | {r['slowest_workload_seconds']:.2f} | {_traced(r)} |"
        )
    print()
    for label, s in result["summary"].items():
        if isinstance(s, dict):
            print(
                f"- **{_label(label)}**: {s['workloads']} workloads ({s['derived']} derived), median ratio "
                f"{s['median_ratio']:.3f}, within ±10%: {s['within_10pct']:.1%}, within ±25%: {s['within_25pct']:.1%}"
            )
        else:
            print(f"- **{_label(label)}**: {s} workloads")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the SOL-ExecBench dev problems")
    parser.add_argument("--only", help="only problems whose name contains this")
    parser.add_argument(
        "--meta-only", action="store_true", help="only problems that trace without reading a value (fast)"
    )
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    parser.add_argument(
        "--markdown", action="store_true", help="the table and summary as docs/bounds.md shows them"
    )
    stand = parser.add_mutually_exclusive_group()
    stand.add_argument(
        "--stand-ins",
        type=Path,
        help="write stand-ins for absent index blobs here (default: a temporary folder)",
    )
    stand.add_argument(
        "--no-stand-ins", action="store_true", help="leave workloads whose index blobs are absent underived"
    )
    args = parser.parse_args(argv)
    # The time to derive is measured cold: no counts from an earlier run read back from disk.
    os.environ[count_cache.SWITCH_ENV] = "0"
    if args.threads is not None:
        if args.threads < 1:
            parser.error("--threads must be at least 1")
        torch.set_num_threads(args.threads)
    if not args.data.is_dir():
        print(f"no SOL-ExecBench dev problems at {args.data}; pass --data", file=sys.stderr)
        return 2
    with contextlib.ExitStack() as stack:
        stand_ins = args.stand_ins
        if stand_ins is None and not args.no_stand_ins:
            stand_ins = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="solgym-stand-ins-")))
        result = evaluate(args.data, args.only, meta_only=args.meta_only, stand_ins=stand_ins)
    if args.json:
        json.dump(result, sys.stdout, indent=1)
        sys.stdout.write("\n")
    elif args.markdown:
        _print_markdown(result)
    else:
        _print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
