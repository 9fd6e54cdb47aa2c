"""Batch scoring of candidate kernels, for reward-model evaluation (`solgym score`).

A candidates file is JSONL, one candidate a line: `{"problem": name, "candidate_id": str (optional),
"code": source}` or `"solution": solution.json object` instead of `code`. Results are appended to the
results file one line per candidate as each finishes, so an interrupted run resumes where it stopped:
candidates whose id is already in the results file are skipped. A candidate without an id gets one
from its problem and content, so the same candidate is never scored twice.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from solgym import jsonl
from solgym.problem import Problem, Workload
from solgym.result import EvalResult, Status
from solgym.rewards import fast_p_reward, passed, sol_reward, speedup_reward


@dataclass(frozen=True)
class Candidate:
    """One line of a candidates file."""

    problem: str
    candidate_id: str
    action: Any  # source str, or a solution.json object
    line: int


CANDIDATE_SHAPE = 'a candidate is an object with "problem" and "code" (or "solution")'


def read_candidates(path: Path) -> Iterator[Candidate]:
    """The candidates of a JSONL file; ValueError naming the line for anything malformed."""
    with Path(path).open(encoding="utf-8") as f:
        for lineno, where, raw in jsonl.objects(f, path, "a candidate"):
            if not isinstance(raw.get("problem"), str):
                raise ValueError(f"{where}: {CANDIDATE_SHAPE}")
            if "code" in raw:
                action = raw["code"]
            elif "solution" in raw:
                action = raw["solution"] if isinstance(raw["solution"], str) else json.dumps(raw["solution"])
            else:
                raise ValueError(f'{where}: the candidate has neither "code" nor "solution"')
            if not isinstance(action, str):
                raise ValueError(f'{where}: "code" must be a string of source')
            cid = raw.get("candidate_id")
            if cid is None:
                cid = hashlib.sha256(json.dumps([raw["problem"], action]).encode()).hexdigest()[:16]
            yield Candidate(raw["problem"], str(cid), action, lineno)


def done_ids(results_path: Path) -> set[str]:
    """Candidate ids already in a results file (a truncated last line, from an interrupted write, is ignored)."""
    path = Path(results_path)
    if not path.is_file():
        return set()
    return {r["candidate_id"] for r in jsonl.readable(path) if isinstance(r, dict) and "candidate_id" in r}


def result_line(candidate: Candidate, result: EvalResult) -> dict[str, Any]:
    """One results line: the candidate, the headline numbers and the full EvalResult."""
    ok = passed(result)
    return {
        "candidate_id": candidate.candidate_id,
        "problem": candidate.problem,
        "status": result.status.value,
        "correct": ok,
        "sol_score": sol_reward(result),
        "speedup": speedup_reward(result) if ok else None,
        "fast_1": fast_p_reward(result, 1.0),
        "result": result.to_dict(),
    }


def score_file(
    problems: Mapping[str, Problem] | Callable[[str], Problem],
    candidates_path: Path,
    results_path: Path,
    *,
    pool: Any,
    policy: str = "strict",
    workloads: Sequence[str] | None = None,
    max_in_flight: int = 64,
    progress: Callable[[int, int, str], None] | None = None,
) -> int:
    """Score every candidate not yet in `results_path`, appending a line per candidate as it finishes.
    `problems` maps a name to its Problem (or is a function doing so, raising KeyError for an unknown
    name). Static checks run here; the rest in `pool` (anything with EvalPool's `submit`), at most
    `max_in_flight` at once. `workloads` (uuid prefixes) narrows every problem to those of its workloads
    that match (all when none does). Returns the number of candidates scored by this call."""
    from solgym.env import intake

    lookup = problems.__getitem__ if isinstance(problems, Mapping) else problems
    done = done_ids(results_path)
    todo = [c for c in read_candidates(candidates_path) if c.candidate_id not in done]
    total, finished = len(todo), 0
    results_path = Path(results_path)
    results_path.parent.mkdir(parents=True, exist_ok=True)
    in_flight: dict[Future, Candidate] = {}
    with results_path.open("a", encoding="utf-8") as out:

        def record(candidate: Candidate, line: dict[str, Any]) -> None:
            nonlocal finished
            out.write(json.dumps(line) + "\n")
            out.flush()  # a line on disk is a candidate a rerun skips
            finished += 1
            if progress is not None:
                progress(finished, total, candidate.problem)

        def drain(limit: int) -> None:
            while len(in_flight) > limit:
                ready, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
                for future in ready:
                    candidate = in_flight.pop(future)
                    try:
                        result = future.result()
                    except Exception as e:  # noqa: BLE001 - the pool's failure, never the candidate's
                        result = EvalResult(
                            problem=candidate.problem,
                            status=Status.INFRA_ERROR,
                            policy=policy,
                            message=f"the pool failed: {e!r}",
                        )
                    record(candidate, result_line(candidate, result))

        for candidate in todo:
            try:
                problem = lookup(candidate.problem)
            except KeyError as e:
                record(
                    candidate,
                    {
                        "candidate_id": candidate.candidate_id,
                        "problem": candidate.problem,
                        "status": None,
                        "error": f"unknown problem: {e.args[0] if e.args else e}",
                    },
                )
                continue
            rejected = intake(problem, candidate.action, policy)
            if rejected is not None:
                record(candidate, result_line(candidate, rejected))
                continue
            chosen = _matching(problem, workloads)
            in_flight[pool.submit(problem, candidate.action, workloads=chosen, policy=policy)] = candidate
            drain(max_in_flight - 1)
        drain(0)
    return total


def _matching(problem: Problem, prefixes: Sequence[str] | None) -> list[Workload] | None:
    if not prefixes:
        return None
    chosen = [w for w in problem.workloads if any(w.uuid.startswith(p) for p in prefixes)]
    return chosen or None


def problem_lookup(spec: str | Path) -> Callable[[str], Problem]:
    """Where `solgym score` finds problems by name: a problem directory, a folder of problem directories
    (a suite by path), a known suite's name, or "all" (every known problem). Problems load on first use."""
    from solgym.problem import DEFINITION_FILE, load_problem
    from solgym.suite import all_suites, problems

    path = Path(spec)
    if (path / DEFINITION_FILE).is_file():
        only = load_problem(path)
        dirs = {only.name: path}
    elif path.is_dir():
        dirs = {}
        for child in sorted(path.iterdir()):
            if (child / DEFINITION_FILE).is_file():
                raw = json.loads((child / DEFINITION_FILE).read_text(encoding="utf-8"))
                dirs[str(raw.get("name"))] = child
        if not dirs:
            raise ValueError(f"{path} holds no problem directories")
    elif str(spec) == "all" or str(spec) in all_suites():
        dirs = {
            name: entry.path for name, entry in problems(None if str(spec) == "all" else str(spec)).items()
        }
    else:
        raise ValueError(f"{spec} is not a problem directory, a suite folder, a known suite or 'all'")
    loaded: dict[str, Problem] = {}

    def lookup(name: str) -> Problem:
        if name not in loaded:
            loaded[name] = load_problem(dirs[name])  # KeyError for a name outside PROBLEMS
        return loaded[name]

    return lookup


def read_results(results_path: Path) -> list[dict[str, Any]]:
    """The lines of a results file (skipping a truncated last line)."""
    return jsonl.readable(results_path)


def summarize(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Per problem and overall: candidates, correct %, mean SOL score, fast_1 (share of candidates correct
    and faster than the baseline), geometric-mean speedup of the correct ones, infra errors and skipped
    lines (unknown problem). Infra errors are left out of every rate: they are not the candidate's."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row.get("problem") or "?", []).append(row)
    by_problem = {name: _stats(group) for name, group in sorted(groups.items())}
    return {"overall": _stats([r for g in groups.values() for r in g]), "by_problem": by_problem}


def _stats(rows: list[Mapping[str, Any]]) -> dict[str, Any]:
    skipped = [r for r in rows if r.get("status") is None]
    infra = [r for r in rows if r.get("status") == Status.INFRA_ERROR.value]
    counted = [r for r in rows if r.get("status") not in (None, Status.INFRA_ERROR.value)]
    n = len(counted)
    speedups = [r["speedup"] for r in counted if r.get("correct") and r.get("speedup")]
    return {
        "candidates": n,
        "correct_pct": 100.0 * sum(bool(r.get("correct")) for r in counted) / n if n else 0.0,
        "mean_sol_score": sum(r.get("sol_score") or 0.0 for r in counted) / n if n else 0.0,
        "fast_1": sum(r.get("fast_1") or 0.0 for r in counted) / n if n else 0.0,
        "geomean_speedup": math.exp(sum(math.log(s) for s in speedups) / len(speedups)) if speedups else None,
        "infra_errors": len(infra),
        "skipped": len(skipped),
    }


def format_summary(summary: Mapping[str, Any]) -> str:
    """A fixed-width table of `summarize`'s output, one row per problem and one overall."""
    header = f"{'problem':40s} {'n':>6s} {'correct':>8s} {'mean SOL':>9s} {'fast_1':>7s} {'geo speedup':>12s} {'infra':>6s}"
    lines = [header, "-" * len(header)]
    rows = [*summary["by_problem"].items(), ("overall", summary["overall"])]
    for name, s in rows:
        geo = f"{s['geomean_speedup']:.3g}x" if s["geomean_speedup"] else "-"
        lines.append(
            f"{name[:40]:40s} {s['candidates']:6d} {s['correct_pct']:7.1f}% {s['mean_sol_score']:9.3f} "
            f"{s['fast_1']:7.3f} {geo:>12s} {s['infra_errors']:6d}"
        )
    return "\n".join(lines)


def export_traces(results_path: Path, traces_path: Path) -> int:
    """Write SOL-ExecBench trace JSONL (one record per workload per candidate, the candidate id as the
    solution name) from a results file; returns the number of records."""
    count = 0
    with Path(traces_path).open("w", encoding="utf-8") as out:
        for row in read_results(results_path):
            if "result" not in row:
                continue
            for record in EvalResult.from_dict(row["result"]).to_trace(solution=row["candidate_id"]):
                out.write(json.dumps(record) + "\n")
                count += 1
    return count
