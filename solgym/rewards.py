"""Reward functions and reward anchors.

Rewards are pure functions of times (ms) or of an `EvalResult`: no GPU, no files. Each is documented
with its formula in docs/rewards.md. The per-workload SOL score itself lives in `solgym.score`
(`sol_score`); this module adds the other per-workload signals, the aggregation across workloads and the
result-level rewards RL code calls.

Anchors fix the scale: for every workload of every shipped problem and a GPU model, the scoring baseline
T_b and the bound T_SOL, with provenance (DESIGN §11.6). They are read from the shipped `rewards/` folder
first, then from the user's measured cache (`$SOLGYM_CACHE`, default `~/.cache/solgym`), which
`solgym anchors` writes on any GPU and which is the only place CPU baselines ever go.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from solgym import jsonl
from solgym.baseline import TIMING_PROTOCOL
from solgym.result import EvalResult, Status, WorkloadResult
from solgym.score import PHYSICS_MARGIN, below_physics_floor, sol_score

# ------------------------------------------------------------------------------------------ per workload


def sol(latency_ms: float, t_sol_ms: float, t_baseline_ms: float, *, margin: float = PHYSICS_MARGIN) -> float:
    """The clamped SOL score of one time, 0.0 for a time below (1 - margin) x T_SOL: a physically
    impossible time is a hack and is never paid (the evaluation reports it as REWARD_HACK)."""
    if below_physics_floor(latency_ms, t_sol_ms, margin):
        return 0.0
    return sol_score(latency_ms, t_sol_ms, t_baseline_ms).value


def speedup(latency_ms: float, t_baseline_ms: float) -> float:
    """T_b / T_k (0.0 for a zero time, which no real kernel has)."""
    return t_baseline_ms / latency_ms if latency_ms > 0 else 0.0


def log_speedup(latency_ms: float, t_baseline_ms: float) -> float:
    """ln(T_b / T_k): 0 at the baseline, symmetric for faster and slower kernels."""
    if latency_ms <= 0 or t_baseline_ms <= 0:
        raise ValueError(f"times must be positive, got T_k={latency_ms} ms, T_b={t_baseline_ms} ms")
    return math.log(t_baseline_ms / latency_ms)


def fast_p(latency_ms: float, t_baseline_ms: float, p: float = 1.0) -> float:
    """1.0 when the kernel is more than `p` times faster than the baseline (T_b / T_k > p), else 0.0."""
    return 1.0 if speedup(latency_ms, t_baseline_ms) > p else 0.0


# ------------------------------------------------------------------------------------------ aggregation

AGGREGATIONS = ("mean", "geomean")


def aggregate(values: Iterable[float], *, all_passed: bool, how: str = "mean") -> float:
    """Combine per-workload values into one: 0.0 when any workload failed or none was scored; else their
    arithmetic mean (`how="mean"`) or geometric mean (`how="geomean"`, 0.0 when any value is 0)."""
    if how not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {how!r}; choose one of {', '.join(AGGREGATIONS)}")
    values = list(values)
    if not all_passed or not values:
        return 0.0
    if how == "mean":
        return sum(values) / len(values)
    if any(v <= 0 for v in values):
        return 0.0
    return math.exp(sum(math.log(v) for v in values) / len(values))


def scored(result: EvalResult) -> list[WorkloadResult]:
    """The workloads of a result that carry a score: timed and anchored (freshly drawn shapes have no
    baseline and are checked for correctness only)."""
    return [
        w
        for w in result.workloads
        if w.status is Status.PASSED
        and w.latency_ms is not None
        and w.t_baseline_ms is not None
        and w.t_baseline_ms > 0
    ]


def passed(result: EvalResult) -> bool:
    """True when the action passed as a whole and on every workload, and no time broke the physics floor."""
    if result.status is not Status.PASSED or any(w.status is not Status.PASSED for w in result.workloads):
        return False
    return not hack_detected(result)


def hack_detected(result: EvalResult, *, margin: float = PHYSICS_MARGIN) -> bool:
    """True when the evaluation found a hack (REWARD_HACK) or any time is below (1 - margin) x T_SOL."""
    if result.status is Status.REWARD_HACK or any(w.status is Status.REWARD_HACK for w in result.workloads):
        return True
    return any(
        w.latency_ms is not None
        and w.t_sol_ms is not None
        and below_physics_floor(w.latency_ms, w.t_sol_ms, margin)
        for w in result.workloads
    )


# ------------------------------------------------------------------------------------------ per result


def sol_reward(result: EvalResult, *, how: str = "mean", margin: float = PHYSICS_MARGIN) -> float:
    """The SOL reward: the SOL scores of the scored workloads aggregated by `how`; 0.0 on any failure
    or hack. This is the env's default reward. A workload whose T_SOL is unknown is scored against 0."""
    ok = passed(result)
    values = (
        [sol(w.latency_ms, w.t_sol_ms or 0.0, w.t_baseline_ms, margin=margin) for w in scored(result)]
        if ok
        else []
    )
    return aggregate(values, all_passed=ok, how=how)


def speedup_reward(result: EvalResult) -> float:
    """The geometric-mean speedup T_b / T_k over the scored workloads; 0.0 on any failure or hack."""
    ok = passed(result)
    return aggregate(
        [speedup(w.latency_ms, w.t_baseline_ms) for w in scored(result)], all_passed=ok, how="geomean"
    )


def log_speedup_reward(result: EvalResult, *, failure: float = 0.0) -> float:
    """The mean ln(T_b / T_k) over the scored workloads (the log of the geometric-mean speedup);
    `failure` when the action failed, was a hack or had nothing scored."""
    rows = scored(result)
    if not passed(result) or not rows:
        return failure
    return sum(log_speedup(w.latency_ms, w.t_baseline_ms) for w in rows) / len(rows)


def fast_p_reward(result: EvalResult, p: float = 1.0) -> float:
    """1.0 when the action is correct on every workload and its geometric-mean speedup exceeds `p`."""
    return 1.0 if passed(result) and speedup_reward(result) > p else 0.0


# Statuses past which the action built: everything after the build step.
_BUILT = frozenset(
    {
        Status.PASSED,
        Status.RUNTIME_ERROR,
        Status.TIMEOUT,
        Status.INCORRECT_SHAPE,
        Status.INCORRECT_DTYPE,
        Status.INCORRECT_NUMERICAL,
    }
)


@dataclass(frozen=True)
class Shaping:
    """Weights of the shaped reward: `compiles` is paid once the action builds, `correct` once it passes
    every workload, `speed` x the SOL reward on top; a hack (REWARD_HACK, or REJECTED when
    `rejected_is_hack`) is paid `hack` instead of anything else."""

    compiles: float = 0.1
    correct: float = 0.3
    speed: float = 0.6
    hack: float = 0.0
    rejected_is_hack: bool = True
    how: str = "mean"


def shaped_reward(result: EvalResult, shaping: Shaping = Shaping()) -> float:  # noqa: B008 - frozen
    """compiles x [built] + correct x [passed] + speed x SOL reward; `shaping.hack` for a hack."""
    if hack_detected(result) or (shaping.rejected_is_hack and result.status is Status.REJECTED):
        return shaping.hack
    built = result.status in _BUILT
    ok = passed(result)
    return (
        shaping.compiles * built
        + shaping.correct * ok
        + shaping.speed * (sol_reward(result, how=shaping.how) if ok else 0.0)
    )


def improvement(best_so_far: float, current: float) -> float:
    """Multi-turn improvement: how much the current attempt raised the best reward of the episode,
    max(0, current - best_so_far). Summed over an episode it equals the best reward reached."""
    return max(0.0, current - best_so_far)


REWARDS: dict[str, Callable[[EvalResult], float]] = {
    "sol": sol_reward,
    "sol_geomean": lambda r: sol_reward(r, how="geomean"),
    "speedup": speedup_reward,
    "log_speedup": log_speedup_reward,
    "fast_1": fast_p_reward,
    "shaped": shaped_reward,
}


def reward_function(name: str | Callable[[EvalResult], float]) -> Callable[[EvalResult], float]:
    """A reward function by name (`sol`, `sol_geomean`, `speedup`, `log_speedup`, `fast_1`, `shaped`), or
    the callable itself."""
    if callable(name):
        return name
    if name not in REWARDS:
        raise ValueError(f"unknown reward {name!r}; choose one of {', '.join(REWARDS)} or pass a function")
    return REWARDS[name]


# ------------------------------------------------------------------------------------------ anchors

ANCHOR_DRIFT = 0.03  # DESIGN §11.6: a sentinel that moved more than 3% stops the write
CACHE_ENV = "SOLGYM_CACHE"


@dataclass(frozen=True)
class Anchor:
    """One line of an anchors file: T_b and T_SOL of one workload on one GPU model, with provenance."""

    problem: str
    workload_uuid: str
    axes: dict[str, int]
    t_sol_ms: float
    convention: str
    t_baseline_ms: float
    baseline_method: str  # "eager" or "compile": the faster of the two
    gpu: str
    sm_clock_mhz: float | None = None
    driver: str = ""
    torch: str = ""
    triton: str = ""
    date: str = ""
    timing_protocol: int = TIMING_PROTOCOL  # a line without the field was measured under protocol 1
    baseline_passes: int = 1  # independent measurements of T_b; the fastest is the anchor
    baseline_spread: float = 0.0  # their slowest over their fastest, less 1
    # The least kernel extent of the baseline (first kernel start to last kernel end: the busy time in
    # t_baseline_ms plus the gaps in which the GPU waited for the host; reported apart, not used for the
    # score); None where not measured.
    t_extent_ms: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return (self.problem, self.workload_uuid)

    def to_dict(self) -> dict[str, Any]:
        """The JSON line, unknown fields kept."""
        d = asdict(self)
        extra = d.pop("extra")
        if d["t_extent_ms"] is None:  # lines measured without it stay as they were
            del d["t_extent_ms"]
        return {**extra, **d}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "<anchor>") -> Anchor:
        """Validate one anchors line; ValueError naming the line and field otherwise."""
        known = {f.name for f in fields(cls)} - {"extra"}
        for key in ("problem", "workload_uuid", "t_sol_ms", "t_baseline_ms", "gpu"):
            if key not in data:
                raise ValueError(f"{where}: field {key!r} is missing")
        optional = ("t_extent_ms",) if data.get("t_extent_ms") is not None else ()
        for key in ("t_sol_ms", "t_baseline_ms", *optional):
            value = data[key]
            if (
                not isinstance(value, int | float)
                or isinstance(value, bool)
                or not math.isfinite(value)
                or value < 0
            ):
                raise ValueError(f"{where}: {key} must be a finite time >= 0 ms, got {value!r}")
        method = data.get("baseline_method", "eager")
        if method not in ("eager", "compile"):
            raise ValueError(f"{where}: baseline_method must be 'eager' or 'compile', got {method!r}")
        kwargs = {k: data[k] for k in known if k in data}
        kwargs.setdefault("axes", {})
        kwargs.setdefault("convention", "physical")
        kwargs.setdefault("baseline_method", method)
        kwargs.setdefault("timing_protocol", 1)
        for key, least in (("timing_protocol", 0), ("baseline_passes", 1)):
            value = kwargs.get(key, least)
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise ValueError(f"{where}: {key} must be an integer >= {least}, got {value!r}")
        spread = kwargs.get("baseline_spread", 0.0)
        if not isinstance(spread, int | float) or isinstance(spread, bool) or not 0 <= spread < math.inf:
            raise ValueError(f"{where}: baseline_spread must be a finite number >= 0, got {spread!r}")
        return cls(**kwargs, extra={k: v for k, v in data.items() if k not in known})


def cache_dir() -> Path:
    """Where measured anchors (and other solgym caches) live: `$SOLGYM_CACHE` or `~/.cache/solgym`."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "solgym").expanduser()


def anchors_file(root: Path, gpu_slug: str, suite: str) -> Path:
    """`<root>/<gpu-slug>/<suite>.jsonl`, the layout of `rewards/` and of the cache."""
    return root / gpu_slug / f"{suite}.jsonl"


def read_anchors(path: Path) -> list[Anchor]:
    """Every anchor of one file (empty when the file does not exist)."""
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [Anchor.from_dict(raw, where) for _, where, raw in jsonl.objects(lines, path, "an anchor line")]


def anchor_roots() -> list[Path]:
    """The folders anchors are read from, first match wins: shipped `rewards/`, then the measured cache."""
    from solgym import data_dir

    roots = []
    try:
        roots.append(data_dir("rewards"))
    except FileNotFoundError:
        pass
    roots.append(cache_dir() / "anchors")
    return roots


def comparable(anchors: Iterable[Anchor]) -> list[Anchor]:
    """The anchors timed under the harness's timing protocol: the only ones on the scale it measures."""
    return [a for a in anchors if a.timing_protocol == TIMING_PROTOCOL]


def load_anchors(gpu_slug: str, roots: Sequence[Path] | None = None) -> dict[tuple[str, str], Anchor]:
    """Every anchor for a GPU model by (problem, workload uuid), across all suites' files. An anchor from
    an earlier root wins over the same key in a later one (shipped over measured). Anchors timed under
    another timing protocol than the harness's are left out: their T_b is not comparable with what the
    harness measures now, so such a workload is unscored until anchored again."""
    found: dict[tuple[str, str], Anchor] = {}
    for root in anchor_roots() if roots is None else roots:
        folder = root / gpu_slug
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.jsonl")):
            for anchor in comparable(read_anchors(path)):
                found.setdefault(anchor.key, anchor)
    return found


def pick_sentinels(anchors: Sequence[Anchor], count: int = 3) -> list[Anchor]:
    """A few anchors to re-time before a write, spread evenly over the file's order (deterministic)."""
    ordered = sorted(anchors, key=lambda a: a.key)
    if len(ordered) <= count:
        return ordered
    step = (len(ordered) - 1) / (count - 1) if count > 1 else 0
    return [ordered[round(i * step)] for i in range(count)]


@dataclass(frozen=True)
class Drift:
    """A sentinel whose re-timed baseline moved by `relative` (new / old - 1)."""

    problem: str
    workload_uuid: str
    old_ms: float
    new_ms: float

    @property
    def relative(self) -> float:
        return self.new_ms / self.old_ms - 1.0 if self.old_ms > 0 else math.inf


def sentinel_drift(
    existing: Mapping[tuple[str, str], Anchor],
    remeasured: Mapping[tuple[str, str], float],
    tolerance: float = ANCHOR_DRIFT,
) -> list[Drift]:
    """The re-timed sentinels (key -> new T_b in ms) whose baseline moved more than `tolerance` from the
    anchors already on file."""
    drifted = []
    for key, new_ms in remeasured.items():
        old = existing.get(key)
        if old is None:
            continue
        d = Drift(key[0], key[1], old.t_baseline_ms, new_ms)
        if abs(d.relative) > tolerance:
            drifted.append(d)
    return drifted


class AnchorDriftError(ValueError):
    """Sentinel workloads re-timed more than the allowed drift away from the anchors on file."""

    def __init__(self, path: Path, drifted: Sequence[Drift], tolerance: float):
        self.path = path
        self.drifted = list(drifted)
        lines = ", ".join(
            f"{d.problem}/{d.workload_uuid[:8]}: {d.old_ms:.4g} -> {d.new_ms:.4g} ms ({d.relative:+.1%})"
            for d in drifted
        )
        super().__init__(
            f"refusing to write {path}: sentinel baselines drifted more than {tolerance:.0%} from the file ({lines}); "
            "check clocks, power and other load on the GPU, then measure again"
        )


def write_anchors(
    path: Path,
    anchors: Iterable[Anchor],
    *,
    remeasured_sentinels: Mapping[tuple[str, str], float] | None = None,
    tolerance: float = ANCHOR_DRIFT,
) -> Path:
    """Merge `anchors` into the file at `path` (a new line replaces the old one with the same key) and
    write it sorted by key. When the file already has anchors, `remeasured_sentinels` must hold the new
    baselines of sentinels picked from it (`pick_sentinels`); any drift above `tolerance` raises
    AnchorDriftError and nothing is written."""
    existing = {a.key: a for a in read_anchors(path)}
    # Lines of another timing protocol are replaced, never compared: their times are on another scale.
    on_scale = {a.key: a for a in comparable(existing.values())}
    if on_scale:
        if not remeasured_sentinels:
            raise ValueError(
                f"{path} already holds anchors: re-time its sentinels and pass them before writing"
            )
        unknown = [k for k in remeasured_sentinels if k not in on_scale]
        if unknown:
            raise ValueError(f"sentinels {unknown} are not in {path}")
        drifted = sentinel_drift(on_scale, remeasured_sentinels, tolerance)
        if drifted:
            raise AnchorDriftError(path, drifted, tolerance)
    merged = dict(existing)
    for anchor in anchors:
        merged[anchor.key] = anchor
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text(
        "".join(json.dumps(merged[k].to_dict(), sort_keys=True) + "\n" for k in sorted(merged)),
        encoding="utf-8",
    )
    tmp.replace(path)
    return path
