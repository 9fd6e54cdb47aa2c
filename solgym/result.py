"""What an evaluation returns: a Status, and the EvalResult record (DESIGN §5, §11.10, §11.11).

Every time is in milliseconds with an `_ms` suffix. An EvalResult is plain data: `to_dict()` gives JSON,
`from_dict()` reads it back, `to_trace()` gives SOL-ExecBench trace records.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from enum import Enum, StrEnum
from typing import Any


class Status(StrEnum):
    """Outcome of evaluating one action (or one workload of it). Failures are statuses, never exceptions."""

    PASSED = "PASSED"
    REJECTED = "REJECTED"  # static analysis found a forbidden construct
    INVALID_ACTION = "INVALID_ACTION"  # not decodable, too large, no run, wrong signature
    COMPILE_ERROR = "COMPILE_ERROR"
    RUNTIME_ERROR = "RUNTIME_ERROR"
    TIMEOUT = "TIMEOUT"
    INCORRECT_SHAPE = "INCORRECT_SHAPE"
    INCORRECT_DTYPE = "INCORRECT_DTYPE"
    INCORRECT_NUMERICAL = "INCORRECT_NUMERICAL"
    REWARD_HACK = "REWARD_HACK"  # a runtime guard fired, or a time below the speed of light
    UNSUPPORTED = "UNSUPPORTED"  # this host or GPU cannot run the problem
    INFRA_ERROR = "INFRA_ERROR"  # our fault, never the candidate's

    def __str__(self) -> str:
        return self.value

    @property
    def is_candidate_failure(self) -> bool:
        """True for outcomes the candidate caused; False for PASSED and for outcomes that are not its fault."""
        return self not in (Status.PASSED, Status.UNSUPPORTED, Status.INFRA_ERROR)


# SOL-ExecBench trace statuses for solgym's own (DESIGN §11.11).
TRACE_STATUS = {
    Status.REJECTED: "REWARD_HACK",
    Status.INVALID_ACTION: "COMPILE_ERROR",
    Status.UNSUPPORTED: "RUNTIME_ERROR",
    Status.INFRA_ERROR: "RUNTIME_ERROR",
}

LOG_CAP = 16_000  # characters kept of each log


@dataclass(frozen=True)
class Violation:
    """A broken static-analysis rule or runtime guard, with where it was seen."""

    rule: str
    message: str
    line: int | None = None
    file: str | None = None


@dataclass
class WorkloadResult:
    """The outcome of one workload: status, times and the roofline figures that explain them."""

    uuid: str
    axes: dict[str, int]
    status: Status
    latency_ms: float | None = None
    t_sol_ms: float | None = None
    t_baseline_ms: float | None = None
    sol_score: float | None = None
    speedup: float | None = None
    achieved_bytes_per_s: float | None = None
    achieved_flop_per_s: float | None = None
    fraction_of_sol: float | None = None
    bound_by: str | None = None  # "memory", "compute" or "latency floor"
    max_abs_error: float | None = None
    max_rel_error: float | None = None
    matched_ratio: float | None = None
    hidden: bool = False
    message: str = ""
    rounds: int | None = None  # correctness rounds run (fewer than asked where a workload's data is large)


@dataclass
class EvalResult:
    """One evaluation of one action on one problem: the record users read, log and export."""

    problem: str
    status: Status
    reward: float = 0.0
    policy: str = "strict"
    violations: list[Violation] = field(default_factory=list)
    workloads: list[WorkloadResult] = field(default_factory=list)
    environment: dict[str, Any] = field(default_factory=dict)
    compile_log: str = ""
    run_log: str = ""
    message: str = ""
    stage_ms: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.compile_log = cap(self.compile_log)
        self.run_log = cap(self.run_log)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (statuses as strings, non-finite floats as None)."""
        return _jsonable(asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvalResult:
        """Read back what `to_dict` wrote."""
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        kwargs["status"] = Status(kwargs["status"])
        kwargs["violations"] = [Violation(**v) for v in kwargs.get("violations", [])]
        wl_known = {f.name for f in fields(WorkloadResult)}
        kwargs["workloads"] = [
            WorkloadResult(**{**{k: v for k, v in w.items() if k in wl_known}, "status": Status(w["status"])})
            for w in kwargs.get("workloads", [])
        ]
        return cls(**kwargs)

    def to_trace(self, solution: str = "candidate") -> list[dict[str, Any]]:
        """SOL-ExecBench trace records, one per workload (or one for the whole action when it never ran)."""
        records = []
        log_note = "" if self.status not in TRACE_STATUS else f"solgym status {self.status}: "
        targets = self.workloads or [
            WorkloadResult(uuid="", axes={}, status=self.status, message=self.message)
        ]
        for w in targets:
            status = TRACE_STATUS.get(w.status, w.status.value)
            note = f"solgym status {w.status}: " if w.status in TRACE_STATUS else log_note
            records.append(
                {
                    "definition": self.problem,
                    "solution": solution,
                    "workload": {"uuid": w.uuid, "axes": w.axes},
                    "evaluation": {
                        "status": status,
                        "log": cap(note + (w.message or self.message or self.compile_log or self.run_log)),
                        "environment": self.environment,
                        "performance": None
                        if w.latency_ms is None
                        else {
                            "latency_ms": w.latency_ms,
                            "reference_latency_ms": w.t_baseline_ms,
                            "speedup_factor": w.speedup,
                        },
                        "correctness": None
                        if w.max_abs_error is None
                        else {
                            "max_absolute_error": w.max_abs_error,
                            "max_relative_error": w.max_rel_error,
                        },
                    },
                }
            )
        return _jsonable(records)


def cap(text: str, limit: int = LOG_CAP) -> str:
    """Keep the head and tail of a long log, marking what was cut."""
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n... [{len(text) - limit} characters cut] ...\n{text[-half:]}"


def _jsonable(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value
