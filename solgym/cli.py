"""The `solgym` command line.

Each subcommand is a pair of functions, `_add_<name>(parser)` declaring its arguments and
`_cmd_<name>(args) -> exit code`, listed in `COMMANDS` at the bottom. Errors a user can cause print one
line naming what is wrong and exit with 2; `--json` output is one JSON document on stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from typing import TextIO

from solgym.problem import ProblemError, Workload

# Where `--json` output goes: the stdout `main` was called with, while everything else printed during the
# command (a reference's own `print`) goes to stderr, so that stdout stays one JSON document.
_json_out: TextIO | None = None


def _print_json(obj: object) -> None:
    out = _json_out or sys.stdout
    json.dump(obj, out, indent=2, default=str)
    out.write("\n")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="solgym", description="GPU kernel problems as RL environments.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_text, add, _) in COMMANDS.items():
        add(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    _, _, run = COMMANDS[args.command]
    global _json_out
    _json_out = sys.stdout if getattr(args, "json", False) else None
    quiet = contextlib.redirect_stdout(sys.stderr) if _json_out is not None else contextlib.nullcontext()
    try:
        with quiet:
            return run(args)
    except (ProblemError, OSError, KeyError, ValueError, ImportError) as e:
        message = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"solgym {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"solgym {args.command}: interrupted", file=sys.stderr)
        return 130


def _add_hw(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--gpu", metavar="NAME", help="show a GPU of the table by name or slug instead of detecting"
    )
    parser.add_argument("--list", action="store_true", help="list every GPU profile solgym knows")
    parser.add_argument(
        "--calibrate",
        action="store_true",
        help="measure this machine's copy bandwidth, GEMM rates and empty-kernel time beside the datasheet peaks",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")


def _cmd_hw(args: argparse.Namespace) -> int:
    from solgym import hardware

    if args.list:
        profiles = list(hardware.PROFILES.values())
        if args.json:
            _print_json({p.slug: p.to_dict() for p in profiles})
        else:
            print(hardware.describe_all(profiles))
        return 0
    if args.calibrate and args.gpu:
        raise ValueError(
            "--calibrate measures this machine's device; drop --gpu to compare with its own profile"
        )
    profile = hardware.get_profile(args.gpu) if args.gpu else hardware.detect()
    calibration = hardware.calibrate("cpu" if profile.is_cpu else "cuda:0") if args.calibrate else None
    if args.json:
        _print_json(
            {**profile.to_dict(), **({"calibration": calibration} if calibration is not None else {})}
        )
    else:
        print(hardware.describe(profile, calibration))
    return 0


def _progress(done: int, total: int, label: str) -> None:
    """A one-line progress bar on stderr (only when it is a terminal)."""
    if not sys.stderr.isatty():
        return
    width = 30
    filled = int(width * done / max(total, 1))
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {label[:40]:40s}")
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def _clear_progress() -> None:
    """Clear the progress bar's line (on a terminal) so that a line printed next starts clean."""
    if sys.stderr.isatty():
        sys.stderr.write("\r" + " " * 100 + "\r")
        sys.stderr.flush()


def _add_problems(p: argparse.ArgumentParser) -> None:
    p.add_argument("--suite", help="only this suite")
    p.add_argument("--json", action="store_true", help="one JSON document on stdout")


def _cmd_problems(args: argparse.Namespace) -> int:
    from solgym.suite import all_suites, problems

    found = problems(args.suite)
    if args.json:
        _print_json(
            {
                "suites": {k: str(v) for k, v in all_suites().items()},
                "problems": [{"name": e.name, "suite": e.suite, "path": str(e.path)} for e in found.values()],
            }
        )
        return 0
    for suite, folder in all_suites().items():
        if args.suite and suite != args.suite:
            continue
        names = [e.name for e in found.values() if e.suite == suite]
        print(f"{suite} ({len(names)} problems) {folder}")
        for name in names:
            print(f"  {name}")
    return 0


def _add_import(p: argparse.ArgumentParser) -> None:
    p.add_argument("parquet", help="the SOL-ExecBench parquet export")
    p.add_argument("out_dir", help="folder that receives one problem directory per row")
    p.add_argument("--overwrite", action="store_true", help="replace problem directories that exist")
    p.add_argument("--json", action="store_true", help="print the written directories as JSON")


def _cmd_import(args: argparse.Namespace) -> int:
    from solgym.dataset import import_parquet

    written = import_parquet(args.parquet, args.out_dir, overwrite=args.overwrite, progress=_progress)
    if args.json:
        _print_json([str(p) for p in written])
    else:
        print(f"imported {len(written)} problems into {args.out_dir}")
    return 0


def _add_score(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "problems", help="a problem directory, a folder of problems, a known suite's name, or 'all'"
    )
    p.add_argument(
        "candidates", help='JSONL, one candidate a line: {"problem", "candidate_id"?, "code" | "solution"}'
    )
    p.add_argument(
        "-o", "--output", required=True, help="results JSONL (appended; a rerun skips what is done)"
    )
    p.add_argument(
        "--policy", choices=("strict", "permissive"), default="strict", help="static-analysis policy"
    )
    p.add_argument("--devices", default="auto", help="'auto', 'cpu', or GPU indices like 0,1")
    p.add_argument("--trace", metavar="FILE", help="also write SOL-ExecBench trace JSONL here")
    p.add_argument("--workloads", nargs="*", metavar="UUID", help="only workloads whose uuid starts so")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


def _cmd_score(args: argparse.Namespace) -> int:
    from solgym import scoring
    from solgym.pool import EvalPool

    lookup = scoring.problem_lookup(args.problems)
    devices = args.devices if args.devices in ("auto", "cpu") else [int(d) for d in args.devices.split(",")]
    if not hasattr(EvalPool, "submit"):
        raise ImportError("this solgym's EvalPool has no submit(); it cannot score candidates")
    with EvalPool(devices) as pool:
        scoring.score_file(
            lookup,
            args.candidates,
            args.output,
            pool=pool,
            policy=args.policy,
            workloads=args.workloads,
            progress=_progress,
        )
    summary = scoring.summarize(scoring.read_results(args.output))
    if args.trace:
        count = scoring.export_traces(args.output, args.trace)
        print(f"wrote {count} trace records to {args.trace}", file=sys.stderr)
    if args.json:
        _print_json(summary)
    else:
        print(scoring.format_summary(summary))
    return 0


def _add_compile_wall(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--compile-wall-s",
        type=float,
        default=None,
        help="wall limit in s of a problem's torch.compile baseline job; past it the eager time is T_b "
        "(default: solgym.baseline.COMPILE_WALL_S, 240)",
    )


def _add_passes(p: argparse.ArgumentParser, default: int) -> None:
    p.add_argument(
        "--passes",
        type=int,
        default=default,
        help="independent measurements of each baseline (fresh children, torch.compile afresh); T_b is the "
        f"fastest (default {default})",
    )


def _add_anchors(p: argparse.ArgumentParser) -> None:
    p.add_argument("suite", help="the suite whose workloads are anchored (`solgym problems` lists them)")
    p.add_argument("--problem", action="append", help="only this problem (repeatable)")
    p.add_argument("--device", type=int, default=0, help="GPU index (default 0)")
    p.add_argument("--convention", choices=("physical", "solar"), default="physical", help="T_SOL convention")
    p.add_argument("--sentinels", type=int, default=3, help="workloads of the file re-timed to check drift")
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--out", metavar="ROOT", help="write ROOT/<gpu-slug>/<suite>.jsonl (default: the cache)"
    )
    where.add_argument("--ship", action="store_true", help="write into solgym's own rewards/ (GPU only)")
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="problems measured side by side (default 1: more overlaps torch.compile's CPU time, but lets "
        "one problem's inputs and correctness rounds share the GPU with another's timed window)",
    )
    _add_compile_wall(p)
    _add_passes(p, 3)
    p.add_argument(
        "--report", metavar="FILE", help="write the bound-validity check (T_SOL vs eager/compile) as JSON"
    )


def _cmd_anchors(args: argparse.Namespace) -> int:
    import datetime
    from concurrent.futures import ThreadPoolExecutor, as_completed
    from pathlib import Path
    from typing import Any

    from solgym import baseline, bounds, data_dir, hardware, rewards
    from solgym.harness import ENTRY
    from solgym.pool import EvalPool
    from solgym.problem import load_problem
    from solgym.suite import problems

    profile = hardware.detect(args.device)
    if args.ship and profile.is_cpu:
        raise ValueError("no GPU found: CPU baselines are cached, never shipped; drop --ship")
    root = (
        data_dir("rewards") if args.ship else Path(args.out) if args.out else rewards.cache_dir() / "anchors"
    )
    path = rewards.anchors_file(root, profile.slug, args.suite)
    entries = problems(args.suite)
    chosen = args.problem or list(entries)
    unknown = [name for name in chosen if name not in entries]
    if unknown:
        raise KeyError(f"not in suite {args.suite!r}: {', '.join(unknown)}")
    sentinels = rewards.pick_sentinels(rewards.comparable(rewards.read_anchors(path)), args.sentinels)
    wanted = {name: set() for name in chosen}  # problem -> sentinel uuids to re-time as well
    for s in sentinels:
        wanted.setdefault(s.problem, set()).add(s.workload_uuid)
    gpu = None if profile.is_cpu else args.device
    sentinel_keys = {s.key for s in sentinels}
    anchors, remeasured, checks = [], {}, []
    with EvalPool("cpu" if gpu is None else [gpu], jobs_per_device=args.jobs) as pool:

        def report_of(job: dict) -> dict:
            outcome = pool.submit_job(ENTRY, job).result()
            return outcome.result or {"status": "INFRA_ERROR", "message": outcome.error}

        def measure(name: str, extra_uuids: set[str]) -> list[tuple[Any, Any, Any]]:
            problem = load_problem(entries[name].path)
            workloads = (
                list(problem.workloads)
                if name in chosen
                else [problem.workload(u) for u in sorted(extra_uuids)]
            )
            measured = baseline.measure(
                problem,
                workloads,
                device=gpu,
                run_job=report_of,
                compile_wall_s=args.compile_wall_s or baseline.COMPILE_WALL_S,
                passes=args.passes,
            )
            return [
                (problem, w, b, bounds.derive(problem, w, profile, convention=args.convention))
                for w, b in zip(workloads, measured, strict=True)
            ]

        # Problems run side by side: their builds and torch.compile overlap, while the lane's timing slot
        # keeps one timed window on the GPU at a time.
        with ThreadPoolExecutor(args.jobs) as executor:
            futures = {executor.submit(measure, name, extra): name for name, extra in wanted.items()}
            for i, future in enumerate(as_completed(futures), start=1):
                name = futures[future]
                for problem, w, b, bound in future.result():
                    baseline.store(problem, w, b)
                    anchor = rewards.Anchor(
                        problem=name,
                        workload_uuid=w.uuid,
                        axes=dict(w.axes),
                        t_sol_ms=bound.t_sol_ms,
                        convention=args.convention,
                        t_baseline_ms=b.t_baseline_ms,
                        baseline_method=b.baseline_method,
                        gpu=b.device,
                        sm_clock_mhz=b.sm_clock_mhz,
                        driver=_driver_version(),
                        torch=b.torch,
                        triton=b.triton or "",
                        date=b.date or datetime.date.today().isoformat(),
                        timing_protocol=baseline.TIMING_PROTOCOL,
                        baseline_passes=b.passes,
                        baseline_spread=round(b.spread, 4),
                        t_extent_ms=b.extent_ms,
                    )
                    if (name, w.uuid) in sentinel_keys:
                        remeasured[(name, w.uuid)] = b.t_baseline_ms
                    if name in chosen:
                        anchors.append(anchor)
                        # Validity first: nothing correct may beat the bound (DESIGN §6).
                        fastest = min(t for t in (b.eager_ms, b.compile_ms) if t is not None)
                        checks.append(
                            {
                                "problem": name,
                                "workload_uuid": w.uuid,
                                "axes": dict(w.axes),
                                "t_sol_ms": bound.t_sol_ms,
                                "bound_by": bound.bound_by,
                                "eager_ms": b.eager_ms,
                                "compile_ms": b.compile_ms,
                                "note": b.note,
                                "passes": b.passes,
                                "spread": b.spread,
                                "pass_ms": list(b.pass_ms),
                                "extent_ms": b.extent_ms,
                                "pass_extent_ms": list(b.pass_extent_ms),
                                "valid": fastest >= bound.t_sol_ms,
                                "headroom": b.t_baseline_ms / bound.t_sol_ms,
                            }
                        )
                _progress(i, len(wanted), name)
    invalid = [c for c in checks if not c["valid"]]
    if args.report:
        Path(args.report).write_text(json.dumps({"gpu": profile.name, "workloads": checks}, indent=1) + "\n")
    for c in invalid:
        print(
            f"INVALID BOUND {c['problem']} {c['workload_uuid'][:8]}: T_SOL {c['t_sol_ms']:.5f} ms > "
            f"eager {c['eager_ms']} / compile {c['compile_ms']} ms",
            file=sys.stderr,
        )
    rewards.write_anchors(path, anchors, remeasured_sentinels=remeasured or None)
    print(f"wrote {len(anchors)} anchors for {profile.name} to {path}")
    return 0


def _driver_version() -> str:
    try:
        import pynvml

        pynvml.nvmlInit()
        version = pynvml.nvmlSystemGetDriverVersion()
    except Exception:  # noqa: BLE001 - no NVML: a CPU run has no driver to record
        return ""
    return version.decode() if isinstance(version, bytes) else str(version)


DEFAULT_PROBLEM = "rmsnorm_llama3_8b"


def _shipped_solution(problem) -> str:
    """The first example kernel shipped beside a problem (its solutions/ folder)."""
    found = sorted((problem.path / "solutions").glob("*.py")) if problem.path else []
    if not found:
        raise FileNotFoundError(f"{problem.name} ships no solution; give an ACTION_FILE")
    return str(found[0])


def _add_eval(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "problem",
        nargs="?",
        default=DEFAULT_PROBLEM,
        help=f"a problem directory or a known problem's name (default: {DEFAULT_PROBLEM})",
    )
    p.add_argument(
        "action",
        nargs="?",
        help="the action: a Python file defining run(...), or a solution.json (default: the problem's shipped solution)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--gpu", type=int, default=None, metavar="N", help="GPU index (default: 0 when a GPU exists)"
    )
    where.add_argument("--cpu", action="store_true", help="CPU mode: Triton interpreter, shrunk workloads")
    p.add_argument(
        "--policy",
        choices=("strict", "permissive"),
        default=None,
        help="static-analysis policy (default: the problem's, else strict)",
    )
    p.add_argument("--workload", action="append", help="only this workload (uuid or prefix; repeatable)")
    p.add_argument("--rounds", type=int, default=5, help="correctness rounds of fresh inputs (default 5)")
    p.add_argument("--seed", type=int, default=None, help="fix the per-run seed (default: secret and random)")


def _cmd_eval(args: argparse.Namespace) -> int:
    from pathlib import Path

    from solgym import judge
    from solgym.hardware import detect
    from solgym.suite import find_problem

    problem = find_problem(args.problem)
    raw = Path(args.action or _shipped_solution(problem)).read_text(encoding="utf-8")
    device = None if args.cpu else (args.gpu if args.gpu is not None else (None if detect(0).is_cpu else 0))
    policy = args.policy or problem.definition.extra.get("policy") or "strict"
    workloads = [problem.workload(k) for k in args.workload] if args.workload else None
    result = judge.evaluate(
        problem, raw, device=device, policy=policy, seed=args.seed, workloads=workloads, rounds=args.rounds
    )
    if args.json:
        _print_json(result.to_dict())
    else:
        print(judge.format_result(result))
    return 0 if result.status.value == "PASSED" else 1


def _add_baseline(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "problem",
        nargs="?",
        default=DEFAULT_PROBLEM,
        help=f"a problem directory or a known problem's name (default: {DEFAULT_PROBLEM})",
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--gpu", type=int, default=None, metavar="N", help="GPU index (default: 0 when a GPU exists)"
    )
    where.add_argument(
        "--cpu", action="store_true", help="time the eager reference on the CPU (cached, never shipped)"
    )
    p.add_argument("--workload", action="append", help="only this workload (uuid or prefix; repeatable)")
    _add_compile_wall(p)
    _add_passes(p, 1)
    p.add_argument("--json", action="store_true", help="print the baselines as JSON")


def _cmd_baseline(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from solgym import baseline
    from solgym.hardware import detect
    from solgym.harness import ENTRY
    from solgym.inputs import shrink
    from solgym.sandbox import Lane
    from solgym.suite import find_problem

    problem = find_problem(args.problem)
    device = None if args.cpu else (args.gpu if args.gpu is not None else (None if detect(0).is_cpu else 0))
    workloads = [problem.workload(k) for k in args.workload] if args.workload else list(problem.workloads)
    if device is None:
        workloads = [shrink(problem, w, 1 << 20) for w in workloads]
    with Lane(device, spares=0) as lane:

        def report_of(job: dict) -> dict:
            outcome = lane.run(ENTRY, job)
            return outcome.result or {
                "status": "INFRA_ERROR",
                "message": outcome.error or outcome.stderr_tail[-500:],
            }

        measured = baseline.measure(
            problem,
            workloads,
            device=device,
            run_job=report_of,
            compile_wall_s=args.compile_wall_s or baseline.COMPILE_WALL_S,
            passes=args.passes,
        )
    for w, b in zip(workloads, measured, strict=True):
        baseline.store(problem, w, b)
    if args.json:
        _print_json([asdict(b) for b in measured])
    else:
        for b in measured:
            eager = "-" if b.eager_ms is None else f"{b.eager_ms:.4f}"
            compiled = "-" if b.compile_ms is None else f"{b.compile_ms:.4f}"
            print(
                f"{b.workload_uuid[:12]:12}  T_b {b.t_baseline_ms:10.4f} ms ({b.baseline_method:7})  eager {eager:>10}  compile {compiled:>10}  {b.device}"
            )
        print(f"cached under {baseline.cache_dir() / 'baselines'}")
    return 0


def _add_bounds(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "problem",
        nargs="?",
        default=DEFAULT_PROBLEM,
        help=f"a problem directory or a known problem's name (default: {DEFAULT_PROBLEM})",
    )
    p.add_argument("--gpu", metavar="NAME", help="price on this GPU's profile (default: the detected device)")
    p.add_argument(
        "--convention", choices=("physical", "solar"), default="physical", help="pricing convention"
    )
    p.add_argument(
        "--no-floor", action="store_true", help="drop the latency floor (solar: its 0.4 us constant)"
    )
    p.add_argument("--clock", type=float, metavar="MHZ", help="scale compute peaks to this SM clock")
    p.add_argument("--workload", metavar="UUID", help="only this workload (uuid or prefix)")
    p.add_argument("--json", action="store_true", help="one JSON document on stdout")


def _cmd_bounds(args: argparse.Namespace) -> int:
    from solgym import bounds, hardware
    from solgym.suite import find_problem

    problem = find_problem(args.problem)
    profile = hardware.get_profile(args.gpu) if args.gpu else hardware.detect()
    if args.clock:
        profile = profile.at_clock(args.clock)
    workloads = [problem.workload(args.workload)] if args.workload else list(problem.workloads)
    if not args.json:
        # Rows are printed as their workloads are derived: a long derivation shows what it has so far.
        print(f"{problem.name} on {profile.name}, convention {args.convention}")
        print(
            f"{'workload':14} {'T_SOL us':>10} {'compute us':>11} {'memory us':>10} {'floor us':>9} {'bound by':9} {'GMAC':>9} {'MB moved':>9}  traced on",
            flush=True,
        )
    results = []
    for i, w in enumerate(workloads, 1):
        try:
            results.append(
                bounds.derive(problem, w, profile, convention=args.convention, floor=not args.no_floor)
            )
        except ProblemError as e:
            results.append(e)
        if not args.json:
            _clear_progress()
            print(_bounds_row(w, results[-1]), flush=True)
        _progress(i, len(workloads), f"workload {w.uuid[:12]}")
    failed = [r for r in results if isinstance(r, ProblemError)]
    if args.json:
        _print_json(
            {
                "problem": problem.name,
                "profile": profile.name,
                "convention": args.convention,
                "bounds": [
                    r.to_dict() if not isinstance(r, ProblemError) else {"error": str(r)} for r in results
                ],
            }
        )
        return 1 if failed else 0
    notes = sorted({n for r in results if not isinstance(r, ProblemError) for n in r.notes})
    for note in notes:
        print(f"note: {note}")
    return 1 if failed else 0


def _bounds_row(w: Workload, r: object) -> str:
    """One workload's line of `solgym bounds`: its bound, or its error."""
    if isinstance(r, ProblemError):
        return f"{w.uuid[:12]:14} error: {r.message}"
    return (
        f"{w.uuid[:12]:14} {r.t_sol_ms * 1e3:10.3f} {r.compute_ms * 1e3:11.3f} {r.memory_ms * 1e3:10.3f} "
        f"{r.floor_ms * 1e3:9.3f} {r.bound_by:9} {sum(r.macs_by_precision.values()) / 1e9:9.3f} "
        f"{(r.bytes_read + r.bytes_written) / 1e6:9.3f}  {r.traced_on}"
    )


# name -> (one-line help, _add_<name>, _cmd_<name>); keep one line per subcommand.
def _add_substitute(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "problems", nargs="+", help="problem directories, names, or folders of problem directories"
    )
    p.add_argument("--out", required=True, help="folder that receives the blobs at the paths workloads name")
    p.add_argument("--overwrite", action="store_true", help="replace blobs that exist")
    p.add_argument("--json", action="store_true", help="print the written blobs as JSON")


def _cmd_substitute(args: argparse.Namespace) -> int:
    from pathlib import Path

    from solgym import substitutes
    from solgym.inputs import TRACE_DATA_ENV
    from solgym.problem import load_problem
    from solgym.suite import find_problem

    chosen = []
    for key in args.problems:
        folder = Path(key)
        if folder.is_dir() and not (folder / "definition.json").is_file():
            chosen += [load_problem(d) for d in sorted(folder.iterdir()) if (d / "definition.json").is_file()]
        else:
            chosen.append(find_problem(key))
    written = substitutes.write(chosen, args.out, overwrite=args.overwrite)
    if args.json:
        _print_json([{"path": w.path, "tensors": w.tensors} for w in written])
        return 0
    print(f"wrote {len(written)} stand-in blobs under {args.out} (generated, not traced: see docs/bounds.md)")
    print(f"use them with: {TRACE_DATA_ENV}={args.out} solgym bounds ...")
    return 0


def _add_check(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", metavar="ACTION_FILE", help="a Python module defining run, or a solution.json")
    p.add_argument(
        "--policy",
        choices=("strict", "permissive"),
        help="analysis policy (default: the problem's, else strict)",
    )
    p.add_argument(
        "--problem",
        metavar="PROBLEM_DIR",
        help="check run's signature against this problem's inputs and outputs",
    )
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")


def _cmd_check(args: argparse.Namespace) -> int:
    from pathlib import Path

    from solgym.action import entry_parameters
    from solgym.analysis import check
    from solgym.result import Status

    raw = Path(args.action).read_bytes()
    policy = args.policy
    if args.problem:
        from solgym.problem import load_problem

        definition = load_problem(args.problem).definition
        inputs, outputs = list(definition.inputs), list(definition.outputs)
        policy = policy or definition.extra.get("policy")
    else:
        inputs, outputs = entry_parameters(raw), []
    policy = policy or "strict"
    status, action, verdict, message = check(raw, inputs=inputs, outputs=outputs, policy=policy)
    label = "ACCEPTED" if status is None else status.value
    if args.json:
        _print_json(
            {
                "status": label,
                "policy": policy,
                "style": action.style if action else None,
                "violations": [vars(v) for v in verdict.violations] if verdict else [],
                "elapsed_ms": verdict.elapsed_ms if verdict else None,
                "message": message,
            }
        )
    else:
        print(f"{label} ({policy})" if status is not Status.INVALID_ACTION else f"{label}: {message}")
        if status is Status.REJECTED:
            print(message)
    return 0 if status is None else 1


COMMANDS: dict = {
    "problems": ("List the known suites and their problems.", _add_problems, _cmd_problems),
    "import": ("Import a SOL-ExecBench parquet export into problem directories.", _add_import, _cmd_import),
    "hw": ("Show the GPU (or CPU) profile: peaks, bandwidth, sources.", _add_hw, _cmd_hw),
    "score": (
        "Score a JSONL of candidate kernels: progress, resume, summary, trace export.",
        _add_score,
        _cmd_score,
    ),
    "eval": (
        "Evaluate one action on a problem: status, reward, per-workload times and scores.",
        _add_eval,
        _cmd_eval,
    ),
    "baseline": (
        "Measure and cache T_b (faster of eager and torch.compile) for a problem's workloads.",
        _add_baseline,
        _cmd_baseline,
    ),
    "check": (
        "Statically check an action (no GPU): accepted, rejected with rule ids and lines, or invalid.",
        _add_check,
        _cmd_check,
    ),
    "bounds": (
        "Derive each workload's speed-of-light bound from the reference: op counts, both roofs, floor.",
        _add_bounds,
        _cmd_bounds,
    ),
    "substitute": (
        "Write generated stand-ins for absent FlashInfer-Trace index blobs (kv_indptr, kv_indices, ...).",
        _add_substitute,
        _cmd_substitute,
    ),
    "anchors": (
        "Measure T_b and T_SOL of a suite on this GPU into an anchors file.",
        _add_anchors,
        _cmd_anchors,
    ),
}

if __name__ == "__main__":
    sys.exit(main())
