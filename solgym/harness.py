"""What runs inside the single-use child to build, check and time one candidate (DESIGN §2, §4, §5, §7).

`child_main(payload, ctx)` is the pool entry ``"solgym.harness:child_main"``. Its order is the security
argument, so it is fixed:

1. **Trusted, before the action exists.** Inputs for every correctness round come from seeded generators
   with the secret per-run seed mixed in; reference outputs are computed by the problem's own reference
   and moved to host memory. On a GPU all of this runs in a private memory pool that is kept alive, so a
   candidate's `torch.empty` can never be handed a block that held a reference output. A calibration
   window times the harness's own per-call overhead for the parent. Identity snapshots are taken of the
   timing and comparison functions (and of this module's own functions and their code), and of the
   thread and child-process counts.
2. **The action.** `torch.utils.cpp_extension.load_inline` is replaced by solgym's cached, time-limited
   build (`solgym.build`), privileges are dropped, and the module is imported from the private workdir.
3. **Correctness.** Each round copies the inputs into fresh buffers, poisons destination outputs, calls
   `run`, and audits what came back: exact `torch.Tensor` with an empty `__dict__`, shape, dtype, device,
   no aliasing of inputs, inputs unchanged, values within the workload's tolerance in fp32.
4. **Timing**, inside `ctx.timed()`: warm-up, then per call a cache flush, inputs copied into fresh
   buffers (data sets rotate so an address never sees the same data twice running), one call, a
   device-wide sync. GPU times come from the profiler's kernel records across all streams (the call's
   busy time: the union of its kernels' intervals); CPU times from `perf_counter`. Some timed outputs are
   re-verified.
5. **Guards again**: snapshots compared, new Python threads or child processes are reward hacks.

The report is plain JSON data; `solgym.judge` turns it, with the parent's own measurements, into an
`EvalResult`. Everything the child reports is the candidate's claim until the judge checks it.
"""

from __future__ import annotations

import builtins
import contextlib
import importlib
import importlib.util
import math
import os
import statistics
import sys
import threading
import time
import traceback
import types
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

try:  # the profiler's raw records (see `_profiled_events`)
    from torch._C._autograd import _KinetoEvent, _ProfilerResult
except ImportError:
    _KinetoEvent = _ProfilerResult = None

from solgym import inputs as inputs_module
from solgym.baseline import TIMING_PROTOCOL
from solgym.dtypes import dtype as schema_dtype
from solgym.problem import Problem, Tolerance, Workload, load_problem

ENTRY = "solgym.harness:child_main"
GPU_TIMING_METHOD = "profiler-kernel-busy"  # timing protocol 2 (`solgym.baseline.TIMING_PROTOCOL`)
DEFAULT_ROUNDS = 5
ERROR_LINES = 30  # traceback / compiler lines kept in a message


@dataclass(frozen=True)
class TimingConfig:
    """How a workload is timed: `warmup` untimed calls, then between `min_reps` and `max_reps` timed calls,
    enough to spend about `target_ms` of measured time; every `verify_every`-th timed output (at most
    `max_verified` per loop) is compared with the reference again after the loop; `calibration_calls` null
    calls time the harness's own overhead."""

    warmup: int = 3
    min_reps: int = 10
    max_reps: int = 200
    target_ms: float = 100.0
    verify_every: int = 7
    max_verified: int = 4
    calibration_calls: int = 10

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> TimingConfig:
        """Read from a payload, ignoring unknown keys."""
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in (data or {}).items() if k in known})


class CandidateFailure(Exception):
    """The candidate failed in a way that decides its status (raised and caught inside the harness)."""

    def __init__(
        self, status: str, message: str, rule: str | None = None, comparison: Comparison | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.rule = rule
        self.comparison = comparison


# ------------------------------------------------------------------------------------------------ comparison


@dataclass
class Comparison:
    """How one output compares with the reference: `ok`, the reason when not, and the error stats."""

    ok: bool
    reason: str = ""
    max_abs_error: float | None = None
    max_rel_error: float | None = None
    matched_ratio: float | None = None


def compare(output: Any, reference: Any, tolerance: Tolerance) -> Comparison:
    """Compare one output with the reference's in fp32 under `tolerance`. Any NaN fails; an infinity
    fails unless it is -inf where the reference is -inf and the workload allows it; an all-zero output
    where the reference is not all zero fails whatever the tolerance."""
    if not isinstance(reference, torch.Tensor):
        try:
            got, want = float(output), float(reference)
        except (TypeError, ValueError):
            return Comparison(False, f"expected a number, got {type(output).__name__}")
        err = abs(got - want)
        ok = math.isfinite(got) and err <= tolerance.atol + tolerance.rtol * abs(want)
        return Comparison(
            ok, "" if ok else f"got {got!r}, expected {want!r}", err, err / max(abs(want), 1e-12), float(ok)
        )
    out = output.detach().to(device=reference.device, dtype=torch.float32)
    ref = reference.detach().to(torch.float32)
    if out.numel() == 0:
        return Comparison(True, "", 0.0, 0.0, 1.0)
    ref_neg_inf = torch.isneginf(ref)
    allowed_inf = (
        torch.isneginf(out) & ref_neg_inf if tolerance.allow_negative_inf else torch.zeros_like(ref_neg_inf)
    )
    bad_values = ~torch.isfinite(out) & ~allowed_inf
    n_bad = int(bad_values.sum())
    finite_both = torch.isfinite(out) & torch.isfinite(ref)
    diff = torch.where(finite_both, (out - ref).abs(), torch.zeros_like(out))
    max_abs = float(diff.max())
    rel = diff / ref.abs().clamp_min(1e-6)
    max_rel = float(torch.where(finite_both, rel, torch.zeros_like(rel)).max())
    within = finite_both & (diff <= tolerance.atol + tolerance.rtol * ref.abs())
    if tolerance.allow_negative_inf:
        within = within | allowed_inf
    matched = float(within.float().mean())
    stats = {"max_abs_error": max_abs, "max_rel_error": max_rel, "matched_ratio": matched}
    if n_bad:
        kind = "NaN" if bool(torch.isnan(out).any()) else "Inf"
        return Comparison(
            False, f"{n_bad} of {out.numel()} values are {kind} or infinite where not allowed", **stats
        )
    if not bool(out.any()) and bool(ref.any()):
        return Comparison(False, "the output is all zeros and the reference is not", **stats)
    if matched < tolerance.matched_ratio:
        return Comparison(
            False,
            f"{matched:.4%} of values within atol {tolerance.atol:g} + rtol {tolerance.rtol:g}, "
            f"{tolerance.matched_ratio:.2%} required (max abs error {max_abs:.4g})",
            **stats,
        )
    if tolerance.error_cap is not None and max_abs > tolerance.error_cap:
        return Comparison(
            False, f"max abs error {max_abs:.4g} above the cap {tolerance.error_cap:g}", **stats
        )
    return Comparison(True, "", **stats)


def _storage_span(t: torch.Tensor) -> tuple[int, int]:
    """[start, end) bytes of device memory a tensor can address."""
    if t.numel() == 0:
        return (t.data_ptr(), t.data_ptr())
    extent = 1 + sum((size - 1) * abs(stride) for size, stride in zip(t.shape, t.stride(), strict=True))
    return (t.data_ptr(), t.data_ptr() + extent * t.element_size())


def _overlaps(a: torch.Tensor, b: torch.Tensor) -> bool:
    (a0, a1), (b0, b1) = _storage_span(a), _storage_span(b)
    return a.device == b.device and a0 < b1 and b0 < a1


def audit_outputs(
    problem: Problem,
    outputs: tuple[Any, ...],
    call_inputs: Mapping[str, Any],
    device: torch.device,
    axes: Mapping[str, int],
) -> None:
    """Raise CandidateFailure unless every output is a plain tensor (or Python number for a scalar
    output) of the definition's shape and dtype, on the device, sharing no memory with an input."""
    definition = problem.definition
    for (name, spec), out in zip(definition.outputs.items(), outputs, strict=True):
        if spec.is_scalar:
            if type(out) not in (int, float, bool):
                raise CandidateFailure(
                    "INCORRECT_DTYPE", f"output {name!r}: expected a Python number, got {type(out).__name__}"
                )
            continue
        # Exact type and an empty instance dict: subclasses and objects that compute on access are the
        # usual way to make a comparison see something other than what a consumer would read.
        if type(out) is not torch.Tensor:
            raise CandidateFailure(
                "REWARD_HACK",
                f"output {name!r} is a {type(out).__module__}.{type(out).__qualname__}, not exactly torch.Tensor",
                "output-not-plain-tensor",
            )
        if out.__dict__:
            raise CandidateFailure(
                "REWARD_HACK",
                f"output {name!r} carries instance attributes {sorted(out.__dict__)[:5]}",
                "output-not-plain-tensor",
            )
        want_shape = definition.shape(spec, axes)
        if tuple(out.shape) != want_shape:
            raise CandidateFailure(
                "INCORRECT_SHAPE", f"output {name!r} has shape {tuple(out.shape)}, expected {want_shape}"
            )
        want_dtype = schema_dtype(spec.dtype).torch
        if out.dtype != want_dtype:
            raise CandidateFailure(
                "INCORRECT_DTYPE", f"output {name!r} has dtype {out.dtype}, expected {want_dtype}"
            )
        if out.device.type != device.type:
            raise CandidateFailure("RUNTIME_ERROR", f"output {name!r} is on {out.device}, expected {device}")
        for in_name, value in call_inputs.items():
            if isinstance(value, torch.Tensor) and _overlaps(out, value):
                raise CandidateFailure(
                    "REWARD_HACK",
                    f"output {name!r} shares memory with input {in_name!r}",
                    "output-aliases-input",
                )


# ------------------------------------------------------------------------------------------------ guards


_KINETO_METHODS = ("name", "device_type", "start_ns", "end_ns", "is_user_annotation", "is_hidden_event")
_WATCHED: dict[str, tuple[Any, tuple[str, ...]]] = {
    "torch": (
        torch,
        (
            "empty",
            "empty_like",
            "zeros",
            "full",
            "equal",
            "isfinite",
            "isnan",
            "isneginf",
            "where",
            "randn",
            "randint",
            "manual_seed",
        ),
    ),
    "torch.Tensor": (
        torch.Tensor,
        (
            "to",
            "float",
            "abs",
            "max",
            "sum",
            "any",
            "clone",
            "copy_",
            "fill_",
            "data_ptr",
            "__sub__",
            "__le__",
            "__and__",
            "__or__",
            "__invert__",
            "mean",
            "cpu",
            "numel",
        ),
    ),
    "torch.cuda": (torch.cuda, ("synchronize", "Event", "Stream", "current_stream")),
    "torch.cuda.Event": (torch.cuda.Event, ("record", "elapsed_time", "synchronize")),
    "torch.profiler.profile": (torch.profiler.profile, ("events", "__enter__", "__exit__", "start", "stop")),
    "torch.autograd.profiler.profile": (torch.autograd.profiler.profile, ("__enter__", "__exit__")),
    "_KinetoEvent": (_KinetoEvent, _KINETO_METHODS),
    "_ProfilerResult": (_ProfilerResult, ("events",)),
    "torch._C": (torch._C, ("_demangle",)),
    "torch.profiler": (torch.profiler, ("profile", "record_function")),
    "time": (time, ("perf_counter", "perf_counter_ns", "monotonic")),
    "statistics": (statistics, ("median", "mean", "pstdev")),
    "builtins": (
        builtins,
        ("len", "sum", "min", "max", "sorted", "isinstance", "type", "float", "int", "abs", "zip", "range"),
    ),
    "math": (math, ("isfinite", "isnan", "ceil")),
}


@dataclass
class Snapshot:
    """Identities of the functions the harness trusts, and of this module's (and its helpers') functions
    with their code objects, plus thread and process counts, taken before the action is imported."""

    # The objects themselves, not their ids: a replaced object must stay alive, or a new one could be
    # allocated at its address and pass an id comparison.
    identities: dict[str, Any] = field(default_factory=dict)
    codes: dict[str, Any] = field(default_factory=dict)
    threads: set[threading.Thread] = field(default_factory=set)
    children: set[int] = field(default_factory=set)
    os_threads: int = 0


def _own_modules() -> list[Any]:
    from solgym import build, problem

    return [sys.modules[__name__], inputs_module, problem, build]


def take_snapshot() -> Snapshot:
    """Record what the candidate must not change."""
    snap = Snapshot()
    for label, (owner, names) in _WATCHED.items():
        for name in names:
            if hasattr(owner, name):
                snap.identities[f"{label}.{name}"] = getattr(owner, name)
    for module in _own_modules():
        for name, value in vars(module).items():
            snap.identities[f"{module.__name__}.{name}"] = value
            code = getattr(value, "__code__", None)
            if code is not None:
                snap.codes[f"{module.__name__}.{name}"] = code
            if isinstance(value, type) and value.__module__ == module.__name__:
                for attr, member in vars(value).items():
                    member_code = getattr(member, "__code__", None)
                    snap.identities[f"{module.__name__}.{name}.{attr}"] = member
                    if member_code is not None:
                        snap.codes[f"{module.__name__}.{name}.{attr}"] = member_code
    snap.threads = set(threading.enumerate())
    snap.os_threads = _os_thread_count()
    snap.children = set(_child_pids())
    return snap


def _current(label_name: str) -> Any:
    """Look a snapshot label up again now."""
    for label, (owner, names) in _WATCHED.items():
        prefix = f"{label}."
        if label_name.startswith(prefix) and label_name[len(prefix) :] in names:
            return getattr(owner, label_name[len(prefix) :], None)
    for module in _own_modules():
        prefix = f"{module.__name__}."
        if label_name.startswith(prefix):
            parts = label_name[len(prefix) :].split(".")
            value = vars(module).get(parts[0])
            for part in parts[1:]:
                value = vars(value).get(part) if isinstance(value, type) else None
            return value
    return None


def check_snapshot(snap: Snapshot) -> list[dict[str, str]]:
    """Violations of the snapshot now: replaced functions or code, new Python threads, live children."""
    violations = []
    changed = [label for label, obj in snap.identities.items() if _current(label) is not obj]
    changed += [
        label for label, code in snap.codes.items() if getattr(_current(label), "__code__", None) is not code
    ]
    if changed:
        violations.append(
            {
                "rule": "tampered-harness",
                "message": f"trusted functions were replaced or rewritten: {', '.join(sorted(set(changed))[:8])}",
            }
        )
    threads = [t for t in threading.enumerate() if t not in snap.threads and t.is_alive()]
    if threads:
        violations.append(
            {
                "rule": "background-thread",
                "message": f"{len(threads)} Python thread(s) started by the action still run: {', '.join(t.name for t in threads[:5])}",
            }
        )
    children = [pid for pid in _child_pids() if pid not in snap.children]
    if children:
        violations.append(
            {
                "rule": "child-process",
                "message": f"{len(children)} child process(es) started by the action still run (pids {children[:5]})",
            }
        )
    return violations


def _child_pids() -> list[int]:
    me = str(os.getpid())
    pids = []
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == me and fields[0] != "Z":
            pids.append(int(entry))
    return pids


def _os_thread_count() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()


# ------------------------------------------------------------------------------------------------ trusted data


@dataclass
class WorkloadData:
    """One workload's trusted material: resolved axes, pristine inputs and reference outputs per round."""

    workload: Workload
    axes: dict[str, int]
    inputs: list[dict[str, Any]]
    references: list[tuple[Any, ...]]


# Of the GPU's memory, what the prepared rounds of all workloads may hold at once. Past it, a workload keeps
# fewer rounds (never fewer than two, so the address-reuse round still runs): 5 rounds of the 6 workloads
# of a 128k-vocabulary cross-entropy held ~70 GB and ran an H100 out of memory.
DEVICE_DATA_FRACTION = 0.3
MIN_ROUNDS = 2


def _nbytes(values: Any) -> int:
    items = values.values() if isinstance(values, dict) else values
    return sum(v.numel() * v.element_size() for v in items if isinstance(v, torch.Tensor))


def prepare(
    problem: Problem,
    workloads: list[Workload],
    *,
    seed: int,
    rounds: int,
    device: torch.device,
    device_budget_bytes: int | None = None,
) -> list[WorkloadData]:
    """Inputs and reference outputs of the rounds of every workload (trusted; before the action exists).
    Round seeds mix the secret per-run seed with the round number, so no two evaluations see the same
    data. A workload gets `rounds` rounds while they fit `device_budget_bytes` (default: a fraction of the
    GPU's memory; no limit on a CPU) with what is already held, and at least min(rounds, 2); the
    correctness record says how many it got."""
    if device_budget_bytes is None and device.type == "cuda":
        device_budget_bytes = int(
            DEVICE_DATA_FRACTION * torch.cuda.get_device_properties(device).total_memory
        )
    held = 0
    prepared = []
    for workload in workloads:
        data = WorkloadData(workload, problem.axes(workload), [], [])
        for r in range(rounds):
            round_seed = inputs_module.derive_seed(seed, "round", r)
            inputs = inputs_module.make_inputs(problem, workload, seed=round_seed, device=device)
            working = {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}
            with torch.no_grad():
                refs = inputs_module.run_reference(problem, working)
            del working
            data.inputs.append(inputs)
            data.references.append(
                tuple(x.detach().clone() if isinstance(x, torch.Tensor) else x for x in refs)
            )
            size = _nbytes(inputs) + _nbytes(data.references[-1])
            held += size
            room = device_budget_bytes is None or held + size <= device_budget_bytes
            if r + 1 >= min(rounds, MIN_ROUNDS) and not room:
                break
        prepared.append(data)
    return prepared


def fingerprint(datas: list[WorkloadData]) -> list[tuple[Any, ...]]:
    """A cheap summary of the trusted material (tolerances, axes, and per tensor its shape, dtype, and
    sums of values, absolute values and squares in float64), taken before the import and compared after:
    a candidate that rewrites a reference or a pristine input in place, or a tolerance, changes it."""
    summary: list[tuple[Any, ...]] = []
    for data in datas:
        t = data.workload.tolerance
        summary.append(
            (
                data.workload.uuid,
                tuple(sorted(data.axes.items())),
                t.atol,
                t.rtol,
                t.matched_ratio,
                t.error_cap,
                t.allow_negative_inf,
                t.per_output,
            )
        )
        groups = [*data.inputs, *({str(i): v for i, v in enumerate(refs)} for refs in data.references)]
        for group in groups:
            for name, value in group.items():
                if not isinstance(value, torch.Tensor):
                    summary.append((name, repr(value)))
                    continue
                summary.append((name, tuple(value.shape), str(value.dtype), *_sums(value)))
    return summary


# Elements summed at a time by `_sums`: its float64 copies stay at 128 MB whatever the tensor's size.
_SUM_CHUNK = 1 << 24


def _sums(value: torch.Tensor) -> tuple[float, float, float]:
    """Sums of the values, their absolute values and their squares in float64, a chunk at a time (a whole
    float64 copy of an expert stack of 400 M fp8 weights would take 3.2 GB, three of them alive at once)."""
    raw = value.detach().contiguous().reshape(-1)
    if raw.element_size() == 1:  # reinterpreted as bytes where float64 has no conversion (fp8, fp4, bool)
        raw = raw.view(torch.uint8)
    total = absolute = squares = 0.0
    for start in range(0, raw.numel(), _SUM_CHUNK):
        x = torch.nan_to_num(raw[start : start + _SUM_CHUNK].double(), nan=7.0, posinf=11.0, neginf=-13.0)
        total += float(x.sum())
        absolute += float(x.abs().sum())
        squares += float(x.pow(2).sum())
    return total, absolute, squares


def fresh_copy(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The inputs copied into newly allocated buffers (fresh addresses, same data)."""
    return {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}


def refill(buffers: Mapping[str, Any], inputs: Mapping[str, Any]) -> dict[str, Any]:
    """`inputs`' values written into the tensors of an earlier call (same storage, new content)."""
    refilled = {}
    for name, value in inputs.items():
        old = buffers.get(name)
        if isinstance(value, torch.Tensor) and isinstance(old, torch.Tensor) and old.shape == value.shape:
            refilled[name] = old.copy_(value)
        else:
            refilled[name] = value.clone() if isinstance(value, torch.Tensor) else value
    return refilled


def poisoned_outputs(
    problem: Problem, axes: Mapping[str, int], device: torch.device, seed: int
) -> tuple[torch.Tensor, ...]:
    """Destination buffers filled with values no correct kernel leaves: NaN for floats, seeded random
    bits for everything else (never derived from the reference, which would leak it)."""
    outputs = []
    generator = torch.Generator(device="cpu").manual_seed(seed)
    for spec in problem.definition.outputs.values():
        shape = problem.definition.shape(spec, axes) or ()
        dt = schema_dtype(spec.dtype)
        if dt.kind == "float" and dt.precision != "fp4" and dt.name != "float8_e8m0fnu":
            outputs.append(torch.full(shape, float("nan"), dtype=dt.torch, device=device))
        elif dt.kind == "bool":
            outputs.append(
                torch.randint(0, 2, shape, generator=generator, dtype=torch.uint8).bool().to(device)
            )
        else:
            width = torch.empty((), dtype=dt.torch).element_size()
            raw = torch.randint(0, 256, (*shape, width), generator=generator, dtype=torch.uint8)
            outputs.append(raw.view(dt.torch).reshape(shape).to(device))
    return tuple(outputs)


@contextlib.contextmanager
def trusted_memory(device: torch.device, pool: Any) -> Iterator[None]:
    """Route trusted GPU allocations to a private pool that the candidate's allocations never draw from,
    so a candidate's uninitialised `torch.empty` cannot be handed memory that held a reference output."""
    if device.type != "cuda" or pool is None:
        yield
        return
    with torch.cuda.use_mem_pool(pool):
        yield


# ------------------------------------------------------------------------------------------------ the action


@dataclass
class Candidate:
    """The imported action: its `run`, whether it writes into destination outputs, and its module (None
    for a baseline, whose `notes` say what its compilation had to do)."""

    run: Callable[..., Any]
    destination: bool
    module: Any
    notes: list[str] = field(default_factory=list)


def write_action(action: Mapping[str, Any], workdir: Path) -> tuple[Path, str]:
    """Write the action's files into a private folder; return the entry module's path and function name."""
    folder = workdir / "action"
    folder.mkdir(parents=True, exist_ok=True)
    files = dict(action.get("files") or {})
    entry_point = action.get("entry_point") or "run"
    module_file, _, function = entry_point.rpartition("::")
    if not files:
        files = {"candidate.py": action["source"]}
        module_file = "candidate.py"
    for name, text in files.items():
        target = (folder / name).resolve()
        if folder.resolve() not in target.parents:
            raise CandidateFailure("INVALID_ACTION", f"file name {name!r} points outside the action's folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    if not module_file:
        py = [n for n in files if n.endswith(".py")]
        module_file = "candidate.py" if "candidate.py" in files else (py[0] if len(py) == 1 else "main.py")
    return folder / module_file, function or "run"


def import_action(path: Path, function: str, problem: Problem) -> Candidate:
    """Import the candidate module (untrusted code runs here) and find its `run`."""
    sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location("solgym_candidate", path)
    if spec is None or spec.loader is None:
        raise CandidateFailure("INVALID_ACTION", f"cannot import {path.name}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["solgym_candidate"] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as e:
        raise CandidateFailure("COMPILE_ERROR", f"{path.name}:{e.lineno}: {e.msg}") from None
    except Exception as e:  # noqa: BLE001 - anything the action raises is its own failure
        raise classify_exception(e) from None
    run = getattr(module, function, None)
    if not callable(run):
        raise CandidateFailure("INVALID_ACTION", f"the action defines no callable {function!r}")
    n_in, n_out = len(problem.definition.inputs), len(problem.definition.outputs)
    import inspect

    try:
        params = [
            p
            for p in inspect.signature(run).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        has_varargs = any(p.kind == p.VAR_POSITIONAL for p in inspect.signature(run).parameters.values())
    except (TypeError, ValueError):
        params, has_varargs = [], True
    if len(params) == n_in + n_out and n_out:
        return Candidate(run, True, module)
    if len(params) == n_in or has_varargs:
        return Candidate(run, False, module)
    raise CandidateFailure(
        "INVALID_ACTION",
        f"run takes {len(params)} arguments; expected {n_in} (return style) or {n_in + n_out} (destination style)",
    )


def classify_exception(error: BaseException) -> CandidateFailure:
    """A CandidateFailure for an exception raised by the action: compile errors (Triton, CUDA C++) as
    COMPILE_ERROR with the compiler's lines, anything else as RUNTIME_ERROR with the traceback's tail."""
    from solgym.build import BuildError

    if isinstance(error, CandidateFailure):
        return error
    if isinstance(error, BuildError):
        return CandidateFailure(error.status, error.message)
    kind = type(error)
    chain = {c.__name__ for c in kind.__mro__}
    text = "".join(traceback.format_exception(kind, error, error.__traceback__))
    lines = [line for line in text.splitlines() if line.strip()]
    tail = "\n".join(lines[-ERROR_LINES:])
    if chain & {
        "CompilationError",
        "CompileTimeAssertionFailure",
        "UnsupportedLanguageConstruct",
    } or kind.__module__.startswith("triton.compiler"):
        return CandidateFailure("COMPILE_ERROR", tail)
    if isinstance(error, MemoryError) or "out of memory" in str(error).lower():
        return CandidateFailure("RUNTIME_ERROR", "out of memory: " + tail)
    return CandidateFailure("RUNTIME_ERROR", tail)


def call_candidate(
    candidate: Candidate, problem: Problem, call_inputs: Mapping[str, Any], outputs: tuple[Any, ...] | None
) -> tuple[Any, ...]:
    """One call of `run` with the inputs in definition order; the outputs as a tuple."""
    args = [call_inputs[name] for name in problem.definition.inputs]
    try:
        if candidate.destination:
            candidate.run(*args, *outputs)
            return outputs
        returned = candidate.run(*args)
    except Exception as e:  # noqa: BLE001
        raise classify_exception(e) from None
    try:
        return inputs_module.as_outputs(problem, returned)
    except ValueError as e:
        raise CandidateFailure("INCORRECT_SHAPE", str(e)) from None


# ------------------------------------------------------------------------------------------------ checking


def check_call(
    problem: Problem,
    data: WorkloadData,
    r: int,
    call_inputs: Mapping[str, Any],
    outputs: tuple[Any, ...],
    device: torch.device,
) -> list[Comparison]:
    """Audit one call's outputs and inputs and compare every output with round `r`'s reference; raise
    CandidateFailure at the first problem."""
    audit_outputs(problem, outputs, call_inputs, device, data.axes)
    for name, value in call_inputs.items():
        pristine = data.inputs[r][name]
        if isinstance(value, torch.Tensor) and not torch.equal(value, pristine):
            raise CandidateFailure("REWARD_HACK", f"input {name!r} was modified by the call", "input-mutated")
    comparisons = []
    for (name, _), out, ref in zip(
        problem.definition.outputs.items(), outputs, data.references[r], strict=True
    ):
        c = compare(out, ref, data.workload.tolerance.for_output(name))
        comparisons.append(c)
        if not c.ok:
            raise CandidateFailure(
                "INCORRECT_NUMERICAL", f"output {name!r}, round {r + 1}: {c.reason}", None, c
            )
    return comparisons


# ------------------------------------------------------------------------------------------------ timing

# Name fragments of kernels that PyTorch or vendor libraries launch. Only vendor-specific spellings: a
# candidate's own kernel called "my_gemm" must not be taken for a library one.
_LIBRARY_KERNEL_MARKERS = (
    "at::",
    "at_cuda_detail",
    "c10::",
    "cutlass",
    "cublas",
    "cudnn",
    "nvjet",
    "xmma",
    "sm80_",
    "sm90_",
    "sm100_",
    "ampere_",
    "hopper_",
    "splitkreduce",
    "gemv2",
    "gemvx",
    "memcpy",
    "memset",
    "triton_poi_",
    "triton_red_",
    "triton_per_",
)


def is_library_kernel(name: str) -> bool:
    """True for a kernel that PyTorch or a vendor library launched (by its name)."""
    lowered = name.lower()
    return any(marker in lowered for marker in _LIBRARY_KERNEL_MARKERS)


def kernel_base_name(name: str) -> str:
    """The bare function name of a profiler kernel record: `void ns::foo<float>(float*, int)` -> `foo`."""
    head = name.split("(", 1)[0].split("<", 1)[0].strip()
    return head.rsplit(" ", 1)[-1].rsplit("::", 1)[-1]


def is_custom_kernel(name: str, custom_names: set[str] | frozenset[str]) -> bool:
    """A kernel the candidate wrote: its bare name is one of the Triton functions it launched or the
    `__global__` functions of the CUDA sources it built, and it is not named like a library kernel."""
    return kernel_base_name(name) in custom_names and not is_library_kernel(name)


@dataclass
class Timing:
    """The timed calls of one workload: per-call times (ms) as measured, host launch times, the wall of
    each loop iteration, and the kernels seen (GPU). Profiled on a GPU, `samples_ms` is each call's busy
    time (the length of the union of its kernels' intervals) and `extent_ms` its kernel extent (first
    kernel start to last kernel end), which also counts the idle gaps in which the GPU waited for the host
    to launch the next kernel (reported apart)."""

    method: str
    samples_ms: list[float] = field(default_factory=list)
    extent_ms: list[float] = field(default_factory=list)
    host_ms: list[float] = field(default_factory=list)
    iteration_ms: list[float] = field(default_factory=list)
    kernel_ms: dict[str, float] = field(default_factory=dict)
    kernel_count: int = 0
    custom_fraction: float | None = None
    iterations: int = 0
    discarded_windows: int = 0


class Clock:
    """Device-aware timing primitives: synchronise, flush the last-level cache, read profiler kernels."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.is_gpu = device.type == "cuda"
        if self.is_gpu:
            l2 = getattr(torch.cuda.get_device_properties(device), "L2_cache_size", 50 << 20)
            self.flush_buffer = torch.empty(max(2 * l2, 64 << 20), dtype=torch.uint8, device=device)
        else:
            llc = os.sysconf("SC_LEVEL3_CACHE_SIZE") if "SC_LEVEL3_CACHE_SIZE" in os.sysconf_names else 0
            self.flush_buffer = torch.empty(min(max(2 * (llc or 0), 8 << 20), 64 << 20), dtype=torch.uint8)

    def sync(self) -> None:
        """Wait for all work on the device, every stream."""
        if self.is_gpu:
            torch.cuda.synchronize(self.device)

    def flush(self) -> None:
        """Evict the cache by writing a buffer twice its size (timing protocols 1 and 2, `solgym.baseline`).

        The call then starts with a cache full of dirty lines, so every line it brings in costs one
        write-back to DRAM: its writes are paid at DRAM cost as T_SOL prices them, whether or not they
        would fit in the cache. A *read* flush (a clean cache, as Nsight Compute's flush-and-invalidate
        leaves it) lets a call's output sit in the L2 until after the call ends: honest kernels then
        measure below the DRAM-priced T_SOL and would meet the physics floor (docs/performance.md)."""
        self.flush_buffer.zero_()


def time_loop(
    clock: Clock,
    n: int,
    iteration: Callable[[int], Callable[[], Any]],
    after: Callable[[int, Any], None],
    *,
    profile: bool,
    require_kernels: bool = True,
    custom_names: set[str] | frozenset[str] = frozenset(),
    window: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext,
) -> Timing:
    """Run `n` timed calls. `iteration(i)` prepares call i (fresh inputs, poisoned outputs) and returns the
    zero-argument call; `after(i, result)` checks it. The cache is flushed and the device synchronised
    before each call; the call is followed by a device-wide sync, so work on any stream is inside its
    window. GPU per-call time is the call's busy time in the profiler's records: the union of the
    intervals of every device activity that started inside it, on any stream (timing protocol 2: host
    launch latency, before the first kernel and between kernels, is excluded and reported apart); CPU time
    is perf_counter around call + sync.

    `window()` (the lane's timing slot, whose wall time the parent measures) is held around the calls
    only, inside the profiler's start and stop, so that the profiler's own set-up never counts as the
    calls' time. When the profiler records no device activity at all (no CUPTI here), the loop runs again
    in a new window with CUDA events around the call and its device-wide sync; the method says so and
    `discarded_windows` counts the window thrown away."""
    timing = Timing(method="perf_counter" if not clock.is_gpu else GPU_TIMING_METHOD)
    tags: list[str] = []
    nonce = os.urandom(6).hex()
    prof_ctx: Any = contextlib.nullcontext()
    if profile and clock.is_gpu:
        from torch.profiler import ProfilerActivity

        prof_ctx = torch.profiler.profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA])
    events: list[tuple[Any, Any]] = []
    with prof_ctx as prof, window():
        for i in range(n):
            t_iter = time.perf_counter()
            call = iteration(i)
            clock.flush()
            clock.sync()
            tag = f"solgym_{nonce}_{i}"
            tags.append(tag)
            record = torch.profiler.record_function(tag) if prof is not None else contextlib.nullcontext()
            start_event = end_event = None
            if clock.is_gpu and prof is None:
                start_event, end_event = (
                    torch.cuda.Event(enable_timing=True),
                    torch.cuda.Event(enable_timing=True),
                )
            with record:
                if start_event is not None:
                    start_event.record()
                t0 = time.perf_counter()
                result = call()
                t1 = time.perf_counter()
                clock.sync()
                if end_event is not None:
                    end_event.record()
            t2 = time.perf_counter()
            timing.host_ms.append((t1 - t0) * 1e3)
            if start_event is not None:
                events.append((start_event, end_event))
            elif not clock.is_gpu:
                timing.samples_ms.append((t2 - t0) * 1e3)
            after(i, result)
            timing.iteration_ms.append((time.perf_counter() - t_iter) * 1e3)
            timing.iterations += 1
    if events:
        clock.sync()
        timing.method = "cuda-events+device-sync"
        timing.samples_ms = [s.elapsed_time(e) for s, e in events]
    elif prof is not None:
        _kernel_times(prof, tags, timing, custom_names)
        if require_kernels and timing.kernel_count == 0:
            retry = time_loop(
                clock, n, iteration, after, profile=False, custom_names=custom_names, window=window
            )
            retry.discarded_windows += 1 + timing.discarded_windows
            return retry
    return timing


def _profiled_events(
    prof: Any, tag_set: set[str]
) -> tuple[dict[str, tuple[float, float]], list[tuple[float, float, str]]]:
    """The host ranges of the tagged calls and the device activities (start, end, name), in microseconds.

    Read from the profiler's raw Kineto records: `prof.events()` would first build the host call tree of
    every record, which took about a third of a second per timed loop on an H100 host, for nothing the
    harness uses. Falls back to `events()` where this torch lacks the raw interface."""
    from torch.autograd import DeviceType

    ranges: dict[str, tuple[float, float]] = {}
    device_events: list[tuple[float, float, str]] = []
    raw = getattr(getattr(prof, "profiler", None), "kineto_results", None)
    if raw is not None and all(hasattr(_KinetoEvent, m) for m in _KINETO_METHODS):
        names: dict[str, str] = {}  # raw names are mangled; demangled once each, as the event list does
        events = raw.events()
        # Raw times are integer nanoseconds since the epoch: as float microseconds they would be rounded to
        # 0.25 us, so they are taken relative to one record's start first (any fixed origin will do).
        base = events[0].start_ns() if events else 0
        for e in events:
            if e.is_hidden_event():
                continue
            name, kind = e.name(), e.device_type()
            if kind == DeviceType.CPU:
                if name in tag_set:
                    ranges[name] = ((e.start_ns() - base) * 1e-3, (e.end_ns() - base) * 1e-3)
            elif kind == DeviceType.CUDA and not e.is_user_annotation() and not name.startswith("solgym_"):
                # User annotations (record_function spans mirrored on the GPU timeline) are not work:
                # counted, they would let a candidate dress library kernels up as its own.
                if name not in names:
                    names[name] = torch._C._demangle(name) if len(name) > 1 else name
                device_events.append(((e.start_ns() - base) * 1e-3, (e.end_ns() - base) * 1e-3, names[name]))
        return ranges, device_events
    for e in prof.events():
        if e.name in tag_set and e.device_type == DeviceType.CPU:
            ranges[e.name] = (e.time_range.start, e.time_range.end)
        elif (
            e.device_type == DeviceType.CUDA
            and not getattr(e, "is_user_annotation", False)
            and not e.name.startswith("solgym_")
        ):
            device_events.append((e.time_range.start, e.time_range.end, e.name))
    return ranges, device_events


def _union_us(intervals: list[tuple[float, float]]) -> float:
    """Length of the union of (start, end) intervals: time during which at least one ran."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def _kernel_times(
    prof: Any, tags: list[str], timing: Timing, custom_names: set[str] | frozenset[str]
) -> None:
    """Per tagged range, the busy time (union of intervals, any stream) and the extent (first start to
    last end) of the device activity that started inside it; kernel names and times for the
    proof-of-work check."""
    ranges, device_events = _profiled_events(prof, set(tags))
    device_events.sort()
    library_us = custom_us = 0.0
    for tag in tags:
        if tag not in ranges:
            raise RuntimeError(f"the profiler lost the range of timed call {tag}")
        lo, hi = ranges[tag]
        inside = [(s, e, name) for s, e, name in device_events if lo <= s <= hi]
        spans = [(s, e) for s, e, _ in inside]
        timing.samples_ms.append(_union_us(spans) * 1e-3)
        timing.extent_ms.append((max(e for _, e in spans) - spans[0][0]) * 1e-3 if spans else 0.0)
        for s, e, name in inside:
            timing.kernel_count += 1
            timing.kernel_ms[name[:120]] = timing.kernel_ms.get(name[:120], 0.0) + (e - s) * 1e-3
            if is_custom_kernel(name, custom_names):
                custom_us += e - s
            else:
                library_us += e - s
    total = library_us + custom_us
    timing.custom_fraction = custom_us / total if total > 0 else 0.0


class LaunchCounter:
    """Counts Triton kernel launches (compiled or interpreted) and records the launched functions' names,
    by wrapping the launch methods before the action is imported: the proof that custom kernels ran (CPU)
    and the names that identify them among the profiler's kernels (GPU)."""

    def __init__(self) -> None:
        self.count = 0
        self.names: set[str] = set()

    def install(self) -> None:
        """Wrap `run` of Triton's JIT and interpreter function classes (where Triton is installed)."""
        try:
            from triton.runtime import interpreter, jit
        except ImportError:
            return
        for owner in (jit.JITFunction, getattr(interpreter, "InterpretedFunction", None)):
            if owner is None or "run" not in vars(owner):
                continue
            original = vars(owner)["run"]

            def counted(kernel: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
                self.count += 1
                name = getattr(kernel, "__name__", None)
                if isinstance(name, str):
                    self.names.add(name)
                return _original(kernel, *args, **kwargs)

            owner.run = counted


def interpreter_workarounds() -> list[str]:
    """CPU mode: make the Triton interpreter run kernels it would otherwise refuse, and say so.
    `triton.autotune` benchmarks its configs on a GPU; here it takes the first config that survives
    pruning, as Triton itself does when only one is left."""
    notes = []
    try:
        from triton.runtime.autotuner import Autotuner
    except ImportError:
        return notes
    original = vars(Autotuner).get("prune_configs")
    if original is not None and not getattr(original, "_solgym_first_config", False):

        def first_config(self: Any, kwargs: dict) -> list[Any]:
            return original(self, kwargs)[:1]

        first_config._solgym_first_config = True  # type: ignore[attr-defined]
        Autotuner.prune_configs = first_config
    notes.append("triton.autotune takes its first config (a CPU cannot benchmark configs)")
    return notes


_INTERPRETER_CAVEAT = (
    " (CPU mode: the Triton interpreter is known to compute tl.dot on bf16 operands wrongly; a kernel that "
    "uses it may be correct on a GPU)"
)


# ------------------------------------------------------------------------------------------------ the entry


def warm_up() -> None:
    """Pay in a spare child, before any job reaches it, the one-off costs that every evaluation's first
    stages would otherwise pay on the critical path: the profiler's CUPTI start-up (about a second on an
    H100 host), Triton's import and driver set-up, and the lazily loaded CUDA modules of the kernels the
    harness itself runs (random inputs, copies, comparisons). Trusted code; nothing of it is kept."""
    importlib.import_module("torch.utils.cpp_extension")  # the build hooks of every evaluation import it
    try:
        import triton
    except ImportError:  # PyTorch-only hosts
        triton = None
    if not torch.cuda.is_available():
        return
    from torch.profiler import ProfilerActivity

    if triton is not None:
        triton.runtime.driver.active.get_current_device()
        # The first cache lookup in a process hashes Triton's own installation (about 0.4 s on an H100
        # host); the result is kept for the process.
        from triton.runtime.cache import triton_key

        triton_key()
    with torch.profiler.profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        with torch.profiler.record_function("solgym_warm_0"):
            for dtype in (torch.float32, torch.bfloat16, torch.float16):
                x = torch.randn(4096, device="cuda", dtype=dtype)
                y = x.clone().float()
                compare(y, y, Tolerance())
                x.zero_()
            torch.cuda.synchronize()
    _profiled_events(prof, {"solgym_warm_0"})


def child_main(payload: dict, ctx: Any) -> dict:
    """Build, check and time one candidate (or a baseline) inside the child; the report for the judge.

    Payload keys: `problem_dir`; `workloads` (list of {"uuid", "axes"}, axes overriding the file's, e.g.
    shrunk for a CPU); `action` ({"source", "files", "entry_point"}) or `baseline` ("eager" | "compile");
    `seed` (the secret per-run seed); `rounds`; `mode` ("gpu" | "cpu"); `policy`; `time` (bool);
    `timing` (TimingConfig fields); `build_cache` (trusted shared build cache, or None);
    `build_timeout_s`; `diagnose` (bool: a cProfile summary of the child in `report["diagnostics"]`)."""
    report: dict[str, Any] = {
        "status": None,
        "message": "",
        "compile_log": "",
        "run_log": "",
        "workloads": [],
        "windows": [],
        "guards": [],
        "stage_ms": {},
        "environment": {},
        "build": {},
    }
    phase = {"name": "setup", "imported": False}
    diagnose = bool(payload.get("diagnose"))
    if diagnose:  # where the child's time goes (benchmarks); never used to judge
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    try:
        _evaluate(payload, ctx, report, phase)
    except CandidateFailure as f:
        report["status"] = f.status
        report["message"] = f.message
        if f.status == "COMPILE_ERROR":
            report["compile_log"] = f.message
        if f.rule:
            report["guards"].append({"rule": f.rule, "message": f.message})
    except Exception as e:  # noqa: BLE001 - the report must come back whatever happened
        text = "".join(traceback.format_exception(type(e), e, e.__traceback__))
        # Before the action exists a failure is solgym's (or the problem's); afterwards the candidate may
        # have caused it, so it is never reported as infrastructure.
        report["status"] = "RUNTIME_ERROR" if phase["imported"] else "INFRA_ERROR"
        report["message"] = f"harness failed during {phase['name']}: {type(e).__name__}: {e}"
        report["run_log"] = text[-8000:]
    if diagnose:
        import io
        import pstats

        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(40)
        report["diagnostics"] = out.getvalue()[-12000:]
    return report


@contextlib.contextmanager
def _stage(name: str, ctx: Any, report: dict[str, Any], phase: dict[str, Any]) -> Iterator[None]:
    phase["name"] = name
    ctx.report_stage(name)
    start = time.perf_counter()
    try:
        yield
    finally:
        report["stage_ms"][name] = (time.perf_counter() - start) * 1e3


def _load(payload: Mapping[str, Any], workdir: Path) -> Problem:
    """The problem from its folder when this child can read it, else from the files sent in the payload."""
    folder = Path(payload["problem_dir"])
    if os.access(folder / "definition.json", os.R_OK) or not payload.get("problem_files"):
        return load_problem(folder)
    local = workdir / "problem"
    local.mkdir(parents=True, exist_ok=True)
    for name, text in payload["problem_files"].items():
        (local / Path(name).name).write_text(text, encoding="utf-8")
    return load_problem(local)


def _workloads(problem: Problem, specs: list[Mapping[str, Any]] | None) -> list[Workload]:
    if not specs:
        return list(problem.workloads)
    # A freshly drawn shape names the anchored workload it was drawn like ("like"): same input sources
    # and tolerance, its own axes and uuid.
    return [
        replace(
            problem.workload(s.get("like") or s["uuid"]),
            uuid=s["uuid"],
            axes={k: int(v) for k, v in (s.get("axes") or {}).items()},
        )
        for s in specs
    ]


def _evaluate(payload: dict, ctx: Any, report: dict[str, Any], phase: dict[str, Any]) -> None:
    from solgym import build

    gpu = payload.get("mode", "gpu") == "gpu"
    if not gpu:
        os.environ["TRITON_INTERPRET"] = "1"
        report["environment"]["cpu_workarounds"] = interpreter_workarounds()
    device = torch.device("cuda", 0) if gpu else torch.device("cpu")
    problem = _load(payload, Path(ctx.workdir))
    workloads = _workloads(problem, payload.get("workloads"))
    seed = int(payload.get("seed", 0))
    rounds = max(1, int(payload.get("rounds", DEFAULT_ROUNDS)))
    config = TimingConfig.from_dict(payload.get("timing"))
    policy = payload.get("policy", "strict")
    baseline = payload.get("baseline")
    report["environment"].update(_environment(device, ctx))
    report["environment"]["rounds"] = rounds

    private_pools = hasattr(torch.cuda, "MemPool") and hasattr(torch.cuda, "use_mem_pool")
    pool = torch.cuda.MemPool() if gpu and private_pools else None
    report["environment"]["trusted_memory_pool"] = pool is not None
    with _stage("prepare", ctx, report, phase), trusted_memory(device, pool):
        datas = prepare(problem, workloads, seed=seed, rounds=rounds, device=device)
        if gpu:
            torch.cuda.synchronize()
    clock = Clock(device)
    if payload.get("time", True):
        with _stage("calibration", ctx, report, phase):
            for data in datas:
                n0 = config.calibration_calls

                # The same loop as the candidate's (fresh inputs, poisoned outputs, flush, profiler) around
                # a call that does nothing: its wall per call is the harness's own overhead.
                def null_iteration(i: int, d: WorkloadData = data) -> Callable[[], None]:
                    held = (
                        fresh_copy(d.inputs[i % len(d.inputs)]),
                        poisoned_outputs(problem, d.axes, device, i),
                    )
                    return lambda: held

                t = time_loop(
                    clock,
                    n0,
                    null_iteration,
                    lambda i, r: None,
                    profile=True,
                    require_kernels=False,
                    window=ctx.timed,
                )
                report["windows"].append(
                    {
                        "kind": "calibration",
                        "uuid": data.workload.uuid,
                        "calls": n0,
                        "iteration_ms": sum(t.iteration_ms),
                        "device_ms": 0.0,
                    }
                )

    counter = LaunchCounter()
    builder = None
    if baseline:
        candidate = _baseline_candidate(problem, baseline, shapes=len(datas))
        snapshot = None
    else:
        counter.install()
        with _stage("build", ctx, report, phase):
            builder = build.install(
                mode="gpu" if gpu else "cpu",
                workdir=Path(ctx.workdir),
                shared_cache=payload.get("build_cache"),
                timeout_s=float(payload.get("build_timeout_s", build.DEFAULT_TIMEOUT_S)),
            )
            path, function = write_action(payload["action"], Path(ctx.workdir))
            report["environment"]["triton_cache_files"] = _count_files(os.environ.get("TRITON_CACHE_DIR"))
            snapshot = take_snapshot()
            with trusted_memory(device, pool):  # its float64 temporaries hold reference values
                trusted_summary = fingerprint(datas)
            ctx.drop_privileges()
            phase["imported"] = True
            try:
                candidate = import_action(path, function, problem)
            finally:
                report["build"] = builder.summary()
                report["compile_log"] = builder.log()

    statuses = {}
    source_text = (
        ""
        if baseline
        else "\n".join(
            [payload["action"].get("source") or "", *(payload["action"].get("files") or {}).values()]
        )
    )
    uses_bf16 = any(spec.dtype == "bfloat16" for spec in problem.definition.inputs.values())
    caveat = _INTERPRETER_CAVEAT if not gpu and uses_bf16 and ".dot(" in source_text else ""
    with _stage("correctness", ctx, report, phase):
        for data in datas:
            record = _correctness(
                problem, data, candidate, device, seed, counter, policy if not baseline else "permissive", gpu
            )
            if caveat and record["status"] == "INCORRECT_NUMERICAL":
                record["message"] += caveat
            if baseline and candidate.notes:  # what the compile baseline had to do for this shape
                record["message"] = "; ".join(candidate.notes)
                candidate.notes.clear()
            report["workloads"].append(record)
            statuses[data.workload.uuid] = record["status"]
    if snapshot is not None:
        report["guards"] += check_snapshot(snapshot)
        # Native threads (torch's pools, Triton's compiler) come and go legitimately: reported, not judged.
        report["environment"]["os_threads"] = {
            "before_import": snapshot.os_threads,
            "after_correctness": _os_thread_count(),
        }

    # A candidate is timed only when every workload passed; a baseline is a time per workload, so each
    # workload that passed is timed (one shape the compiler fails on costs no other its compile T_b).
    passed = all(s == "PASSED" for s in statuses.values()) and not report["guards"]
    if payload.get("time", True) and (passed or baseline):
        with _stage("timing", ctx, report, phase):
            if gpu:
                report["environment"]["nvml_before"] = _nvml(ctx)
            for data, record in zip(datas, report["workloads"], strict=True):
                if record["status"] != "PASSED":
                    continue
                _time_workload(
                    problem,
                    data,
                    candidate,
                    clock,
                    config,
                    seed,
                    record,
                    report,
                    ctx,
                    policy if not baseline else "permissive",
                    frozenset(counter.names | (builder.kernel_names if builder is not None else set())),
                )
            if gpu:
                report["environment"]["nvml_after"] = _nvml(ctx)
        if snapshot is not None:
            report["guards"] += check_snapshot(snapshot)
    if snapshot is not None:
        with trusted_memory(device, pool):
            tampered = fingerprint(datas) != trusted_summary
    if snapshot is not None and tampered:
        report["guards"].append(
            {
                "rule": "tampered-reference",
                "message": "reference outputs, pristine inputs or tolerances changed while the action ran",
            }
        )
    if report["guards"] and report["status"] is None:
        report["status"] = "REWARD_HACK"
        report["message"] = "; ".join(g["message"] for g in report["guards"])


def _count_files(folder: str | None) -> int:
    """Files under `folder` (0 when it is unset or absent): what the action's Triton cache held before the
    import, seeded from its earlier evaluations (`solgym.triton_cache`)."""
    if not folder or not os.path.isdir(folder):
        return 0
    return sum(len(files) for _, _, files in os.walk(folder))


def _lift_recompile_limits(shapes: int) -> None:
    """Let Dynamo keep a static graph for each of `shapes` input shapes (and a margin) of one function.
    The setting is named `recompile_limit` since torch 2.6, `cache_size_limit` before."""
    config = torch._dynamo.config
    wanted = max(shapes, 1) * 2 + 8
    for name in ("recompile_limit", "cache_size_limit", "accumulated_recompile_limit"):
        if hasattr(config, name) and getattr(config, name) < wanted:
            setattr(config, name, wanted)


def _baseline_candidate(problem: Problem, kind: str, shapes: int = 1) -> Candidate:
    """The reference itself as a candidate: eager, or through torch.compile (trusted code, not imported
    from an action). The compiled candidate's `notes` list says which shapes needed dynamic shapes."""
    module = inputs_module.reference_module(problem)
    run = module.run
    notes: list[str] = []
    if kind == "compile":
        # Dynamo resolves a function's globals by importing its module by name. Only baseline children
        # (which never import an action) register the reference where imports can find it.
        sys.modules.setdefault(module.__name__, module)
        static = torch.compile(run, dynamic=False)
        # One static graph per workload, as if each were compiled alone: with Dynamo's automatic dynamic
        # shapes, the second shape would recompile into one dynamic graph that every later workload of
        # the job reuses, so a workload's T_b would depend on its job-mates. Past the recompile limit
        # (8 by default) Dynamo falls back to eager without a word, so the limit is lifted here, in a
        # trusted baseline child.
        _lift_recompile_limits(shapes)
        # Where the compiler fails on a static shape (Inductor has such bugs that its dynamic-shape path
        # does not), that shape is compiled with dynamic shapes instead, from a twin of `run` whose code
        # object is its own: Dynamo caches compiled code per code object, so the dynamic graph is never
        # found by the static shapes' lookups.
        twin = types.FunctionType(
            run.__code__.replace(), run.__globals__, run.__name__, run.__defaults__, run.__closure__
        )
        twin.__kwdefaults__ = run.__kwdefaults__
        dynamic = torch.compile(twin, dynamic=True)
        dynamic_keys: set[tuple[Any, ...]] = set()

        def shape_key(args: tuple) -> tuple:
            return tuple(
                (tuple(a.shape), a.dtype) if isinstance(a, torch.Tensor) else type(a).__name__ for a in args
            )

        def compiled(*args: Any) -> Any:
            # The key is built only once a shape has failed: the common path is the static call alone.
            if dynamic_keys and shape_key(args) in dynamic_keys:
                return dynamic(*args)
            try:
                return static(*args)
            except torch._dynamo.exc.BackendCompilerFailed as e:
                dynamic_keys.add(shape_key(args))
                inner = getattr(e, "inner_exception", None) or e
                reason = f"{type(inner).__name__}: {inner}".splitlines()[0][:200]
                notes.append(f"compiled with dynamic shapes: the static compile failed ({reason})")
            return dynamic(*args)

        def run(*args: Any) -> Any:
            # Dynamo tags outputs with bookkeeping attributes; the audit wants plain tensors, so the trusted
            # baseline hands them on bare (host-side work, outside the measured kernels).
            out = compiled(*args)
            values = (
                out.values() if isinstance(out, dict) else out if isinstance(out, tuple | list) else (out,)
            )
            for t in values:
                if isinstance(t, torch.Tensor) and t.__dict__:
                    t.__dict__.clear()
            return out
    elif kind != "eager":
        raise ValueError(f"unknown baseline {kind!r}; expected 'eager' or 'compile'")
    return Candidate(run, False, None, notes=notes)


def _correctness(
    problem: Problem,
    data: WorkloadData,
    candidate: Candidate,
    device: torch.device,
    seed: int,
    counter: LaunchCounter,
    policy: str,
    gpu: bool,
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "uuid": data.workload.uuid,
        "axes": dict(data.workload.axes),
        "status": "PASSED",
        "message": "",
        "rounds": len(data.inputs),
    }
    worst: Comparison | None = None  # error stats only where a comparison happened
    previous: dict[str, Any] | None = None
    try:
        for r in range(len(data.inputs)):
            if previous is not None and r % 2 == 1:
                # Same addresses as the previous call, new content: a cache keyed on pointers (or on
                # anything but the data) replays a stale answer here and fails the comparison.
                call_inputs = refill(previous, data.inputs[r])
            else:
                call_inputs = fresh_copy(data.inputs[r])
            previous = call_inputs
            outputs = (
                poisoned_outputs(
                    problem,
                    data.axes,
                    device,
                    inputs_module.derive_seed(seed, "poison", data.workload.uuid, r),
                )
                if candidate.destination
                else None
            )
            before = counter.count
            result = call_candidate(candidate, problem, call_inputs, outputs)
            if gpu:
                try:
                    torch.cuda.synchronize()  # asynchronous kernel faults surface here
                except Exception as e:  # noqa: BLE001
                    raise classify_exception(e) from None
            for c in check_call(problem, data, r, call_inputs, result, device):
                worst = c if worst is None else _worse(worst, c)
            if not gpu and policy == "strict" and counter.count == before and candidate.module is not None:
                raise CandidateFailure(
                    "REWARD_HACK",
                    "under the strict policy the computation must run in custom kernels, and no Triton kernel was launched",
                    "no-custom-kernel",
                )
    except CandidateFailure as f:
        record["status"] = f.status
        record["message"] = f.message
        if f.rule:
            record["rule"] = f.rule
        if f.comparison is not None:
            worst = f.comparison
    if worst is not None:
        record.update(
            max_abs_error=worst.max_abs_error,
            max_rel_error=worst.max_rel_error,
            matched_ratio=worst.matched_ratio,
        )
    return record


def _worse(a: Comparison, b: Comparison) -> Comparison:
    """The worst of two comparisons' stats, element by element."""

    def pick(x: float | None, y: float | None, fn: Callable[[float, float], float]) -> float | None:
        return y if x is None else x if y is None else fn(x, y)

    return Comparison(
        a.ok and b.ok,
        a.reason or b.reason,
        pick(a.max_abs_error, b.max_abs_error, max),
        pick(a.max_rel_error, b.max_rel_error, max),
        pick(a.matched_ratio, b.matched_ratio, min),
    )


def _time_workload(
    problem: Problem,
    data: WorkloadData,
    candidate: Candidate,
    clock: Clock,
    config: TimingConfig,
    seed: int,
    record: dict[str, Any],
    report: dict[str, Any],
    ctx: Any,
    policy: str,
    custom_names: frozenset[str],
) -> None:
    rounds = len(data.inputs)
    keep: list[Any] = []
    sampled: list[tuple[int, Any]] = []
    stride = max(1, config.verify_every)
    offset = inputs_module.derive_seed(seed, "verify", data.workload.uuid) % stride

    def iteration(i: int) -> Callable[[], Any]:
        call_inputs = fresh_copy(data.inputs[i % rounds])
        outputs = (
            poisoned_outputs(problem, data.axes, clock.device, inputs_module.derive_seed(seed, "tpoison", i))
            if candidate.destination
            else None
        )
        # Hold the two previous calls' buffers so consecutive calls get new addresses; data sets rotate
        # with a period that does not divide the address reuse period, so an address keeps seeing new data.
        keep.append((call_inputs, outputs))
        del keep[:-3]
        return lambda: (call_inputs, call_candidate(candidate, problem, call_inputs, outputs))

    def after(i: int, result: Any) -> None:
        # Kept, not checked here: verification runs after the window so its cost stays out of the
        # parent's accounting of the window.
        if i % stride == offset and len(sampled) < config.max_verified:
            sampled.append((i, result))

    try:
        warm = time_loop(clock, config.warmup, iteration, after, profile=False)
        _verify(problem, data, sampled, clock.device)
        per_call = max(statistics.median(warm.iteration_ms), 1e-3) if warm.iteration_ms else 1.0
        n = int(min(config.max_reps, max(config.min_reps, math.ceil(config.target_ms / per_call))))
        timing = time_loop(
            clock, n, iteration, after, profile=True, custom_names=custom_names, window=ctx.timed
        )
        _verify(problem, data, sampled, clock.device)
    except CandidateFailure as f:
        record.update(status=f.status, message=f.message)
        if f.rule:
            record["rule"] = f.rule
            report["guards"].append(
                {"rule": f.rule, "message": f"workload {data.workload.uuid}: {f.message}"}
            )
        return
    finally:
        keep.clear()
    samples = timing.samples_ms
    median = statistics.median(samples)
    mean = statistics.fmean(samples)
    report["environment"]["timing_method"] = timing.method
    for _ in range(timing.discarded_windows):
        report["windows"].append({"kind": "discarded", "uuid": data.workload.uuid, "calls": n})
    report["windows"].append(
        {
            "kind": "workload",
            "uuid": data.workload.uuid,
            "calls": timing.iterations,
            "iteration_ms": sum(timing.iteration_ms),
            "device_ms": sum(samples),
            "median_ms": median,
        }
    )
    record.update(
        latency_ms=median,
        timing={
            "method": timing.method,
            "calls": n,
            "median_ms": median,
            "min_ms": min(samples),
            "max_ms": max(samples),
            "cv": statistics.pstdev(samples) / mean if mean > 0 else None,
            "host_launch_ms": statistics.median(timing.host_ms),
            **({"extent_median_ms": statistics.median(timing.extent_ms)} if timing.extent_ms else {}),
            "window": len(report["windows"]) - 1,
            "kernels": dict(sorted(timing.kernel_ms.items(), key=lambda kv: -kv[1])[:8]),
            "kernel_count": timing.kernel_count,
            "custom_fraction": timing.custom_fraction,
        },
    )
    if (
        clock.is_gpu
        and policy == "strict"
        and candidate.module is not None
        and (timing.custom_fraction or 0.0) < 0.5
    ):
        message = f"under the strict policy custom kernels must carry the work; they took {(timing.custom_fraction or 0.0):.0%} of the device time"
        record.update(status="REWARD_HACK", message=message, rule="no-custom-kernel")
        report["guards"].append(
            {"rule": "no-custom-kernel", "message": f"workload {data.workload.uuid}: {message}"}
        )


def _verify(
    problem: Problem, data: WorkloadData, sampled: list[tuple[int, Any]], device: torch.device
) -> None:
    """Compare the kept outputs of sampled timed calls with their data set's reference."""
    rounds = len(data.inputs)
    try:
        for i, (call_inputs, outputs) in sampled:
            check_call(problem, data, i % rounds, call_inputs, outputs, device)
    except CandidateFailure as f:
        raise CandidateFailure(
            "REWARD_HACK",
            f"a timed call's output failed re-verification ({f.message})",
            "timed-output-mismatch",
        ) from None
    finally:
        sampled.clear()


def _environment(device: torch.device, ctx: Any) -> dict[str, Any]:
    env: dict[str, Any] = {
        "mode": "gpu" if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "sandbox_layers": dict(getattr(ctx, "layers", {}) or {}),
    }
    try:
        import triton

        env["triton"] = triton.__version__
    except ImportError:
        env["triton"] = None
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
        env["cuda"] = torch.version.cuda
        env["driver"] = _driver()
        env["timing_method"] = GPU_TIMING_METHOD
    else:
        env["timing_method"] = "perf_counter"
        env["triton_mode"] = "interpreter"
    env["timing_protocol"] = TIMING_PROTOCOL
    return env


def _driver() -> str | None:
    try:
        import pynvml

        pynvml.nvmlInit()
        version = pynvml.nvmlSystemGetDriverVersion()
    except Exception:  # noqa: BLE001 - telemetry must never fail an evaluation
        return None
    return version.decode() if isinstance(version, bytes) else str(version)


def _nvml(ctx: Any) -> dict[str, Any]:
    from solgym.hardware import nvml_snapshot

    try:
        return nvml_snapshot(ctx.device or 0)
    except Exception as e:  # noqa: BLE001 - telemetry must never fail an evaluation
        return {"error": str(e)}
