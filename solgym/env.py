"""The Gymnasium envs: one per problem (`solgym/<problem>-v0`) and one per suite (`solgym/suite-<suite>-v0`).

Importing solgym registers them all. The env process never initialises CUDA: static checks run here,
everything that touches a GPU runs in the evaluation pool's sandboxed workers.
"""

from __future__ import annotations

import atexit
import hashlib
import math
import os
import re
import threading
import uuid as uuid_module
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from solgym.action import MAX_ACTION_BYTES
from solgym.problem import Problem, Workload
from solgym.result import EvalResult, Status, Violation, WorkloadResult, cap
from solgym.rewards import hack_detected, improvement, reward_function, sol_reward

NAMESPACE = "solgym"
VERSION = 0
STATUSES: tuple[Status, ...] = tuple(Status)  # observation "status": 0 = no attempt yet, i + 1 = STATUSES[i]
MAX_OBSERVATION_CHARS = 64_000
TIME_HIGH_US = 1e9  # a box's upper bound: 1000 s, far above any kernel the harness would wait for
FRACTION_HIGH = 2.0  # fraction of SOL above 1 / (1 - margin) is a hack; the box clips there


class SourceText(spaces.Text):
    """A `Text` space for source code: contains any `str` of at most `max_bytes` UTF-8 bytes.

    The stock `Text` only contains strings over its charset (alphanumeric by default), which rejects every
    real kernel. Sampling still draws from `charset` (printable ASCII and newlines), which makes random
    programs that an env must reject quickly."""

    def __init__(self, max_bytes: int = MAX_ACTION_BYTES, *, seed: int | np.random.Generator | None = None):
        printable = "".join(chr(c) for c in range(32, 127)) + "\n\t"
        super().__init__(max_length=max_bytes, min_length=0, charset=printable, seed=seed)
        self.max_bytes = max_bytes

    def contains(self, x: Any) -> bool:
        """Any str of at most `max_bytes` bytes (as UTF-8; unpaired surrogates count as 3 bytes each)."""
        return isinstance(x, str) and len(x.encode("utf-8", "surrogatepass")) <= self.max_bytes

    def __repr__(self) -> str:
        return f"SourceText(max_bytes={self.max_bytes})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SourceText) and other.max_bytes == self.max_bytes


class Pool(Protocol):
    """What the env needs of an evaluation pool (`solgym.pool.EvalPool` provides it)."""

    def submit(
        self,
        problem: Problem,
        action: str,
        *,
        workloads: Sequence[Workload] | None = None,
        policy: str = "strict",
        seed: int | None = None,
    ) -> Future[EvalResult]: ...


_pools: dict[str, Any] = {}
_pools_lock = threading.Lock()


def shared_pool(devices: str = "auto") -> Pool:
    """The process-wide EvalPool for `devices` ("auto" or "cpu"), started on first use and closed at exit;
    every env that was not handed a pool shares it, so a batch of envs uses every GPU once."""
    with _pools_lock:
        if devices not in _pools:
            from solgym.pool import EvalPool

            _pools[devices] = EvalPool(devices)
            atexit.register(_pools[devices].close)
        return _pools[devices]


@dataclass
class _Pending:
    """A step in flight: the submitted future, or the result decided here without the pool."""

    result: EvalResult | None = None
    future: Future[EvalResult] | None = None


class KernelEnv(gym.Env[dict[str, Any], str]):
    """Write a fast, correct kernel for one GPU problem.

    | | |
    |---|---|
    | Action space | `SourceText(262144)`: the source of a Python module that defines `run` with the reference's parameters (Triton kernels, or CUDA C++ through `load_inline`); a SOL-ExecBench `solution.json` text is accepted too |
    | Observation space | `Dict`: `text` (problem statement, then feedback on the last attempt), `t_sol_us`, `t_baseline_us`, `last_us`, `last_score`, `frac_of_sol` (shape-(1,) float32 boxes; 0 = unknown / no attempt yet), `status` (`Discrete(13)`: 0 = no attempt, i = the i-th `Status`), `turn` (`Discrete(max_turns + 1)`) |
    | Reward | `reward` of the evaluation (default `"sol"`: mean SOL score over the scored workloads, 0 on any failure); with `improvement=True`, how much the attempt raised the episode's best |
    | Start | `reset` picks the problem (fixed, or drawn from the suite; `options={"problem": name}` chooses one) and shows its statement |
    | Episode end | terminated when the SOL reward reaches `target_score` or a hack is detected (REWARD_HACK); truncated after `max_turns` attempts |

    Every evaluation runs a seeded sample of the visible and hidden workloads, plus `fresh_shapes` shapes
    drawn from the definition's `axis_ranges` (correctness only, never scored), all seeded from a secret
    of this env instance so a policy cannot learn them. The full `EvalResult` is `info["result"]`.

    Args:
        problem: a problem name or directory, or a loaded Problem (per-problem envs).
        suite: a suite name (suite envs; one of `problem` and `suite`).
        max_turns: attempts per episode; 1 is single-turn, more is a refine episode.
        target_score: SOL reward at which an episode terminates.
        reward: a reward name of `solgym.rewards.REWARDS` or a function `EvalResult -> float`.
        improvement: pay the increase of the episode's best reward instead of the reward itself.
        policy: "strict" or "permissive"; default the definition's `policy`, else "strict".
        pool: an EvalPool-like object, or "auto" / "cpu" for the process-wide shared pool.
        profile: the GPU profile (or its name) the statement quotes T_SOL for; default: the pool's GPU 0
            as NVML reports it, the CPU profile without a GPU.
        workloads: uuids (or prefixes) of the anchored workloads to evaluate (default all).
        sample_workloads: evaluate a seeded sample of this many anchored workloads (default all).
        fresh_shapes: freshly drawn shapes per evaluation (0 turns them off).
        axis_ranges: override of the definition's `axis_ranges` for fresh draws, {axis: [lo, hi]}.
        secret: seed material for hidden draws (default 16 random bytes per instance).
        render_mode: None or "ansi".
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 1}

    def __init__(
        self,
        problem: str | Problem | None = None,
        *,
        suite: str | None = None,
        max_turns: int = 1,
        target_score: float = 1.0,
        reward: str | Callable[[EvalResult], float] = "sol",
        improvement: bool = False,
        policy: str | None = None,
        pool: Pool | str = "auto",
        profile: Any = None,
        workloads: Sequence[str] | None = None,
        sample_workloads: int | None = None,
        fresh_shapes: int = 1,
        axis_ranges: Mapping[str, Sequence[int]] | None = None,
        secret: bytes | str | None = None,
        render_mode: str | None = None,
    ) -> None:
        if (problem is None) == (suite is None):
            raise ValueError("give exactly one of problem= (a problem env) or suite= (a suite env)")
        if max_turns < 1:
            raise ValueError(f"max_turns must be at least 1, got {max_turns}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        if policy is not None and policy not in ("strict", "permissive"):
            raise ValueError(f"policy must be 'strict' or 'permissive', got {policy!r}")
        self._names = _problem_names(problem, suite)
        self._fixed = problem if isinstance(problem, Problem) else None
        self.max_turns = max_turns
        self.target_score = target_score
        self.reward_fn = reward_function(reward)
        self.improvement = improvement
        self._policy = policy
        self._pool_spec = pool
        self._profile_spec = profile
        self._workload_keys = tuple(workloads) if workloads is not None else None
        self.sample_workloads = sample_workloads
        self.fresh_shapes = fresh_shapes
        self._axis_ranges = dict(axis_ranges) if axis_ranges is not None else None
        raw_secret = os.urandom(16) if secret is None else secret
        self._secret = raw_secret.encode() if isinstance(raw_secret, str) else bytes(raw_secret)
        self.render_mode = render_mode

        self.action_space = SourceText()
        time_box = spaces.Box(0.0, TIME_HIGH_US, shape=(1,), dtype=np.float32)
        self.observation_space = spaces.Dict(
            {
                "text": SourceText(MAX_OBSERVATION_CHARS * 4),
                "t_sol_us": time_box,
                "t_baseline_us": time_box,
                "last_us": time_box,
                "last_score": spaces.Box(0.0, 1.0, shape=(1,), dtype=np.float32),
                "frac_of_sol": spaces.Box(0.0, FRACTION_HIGH, shape=(1,), dtype=np.float32),
                "status": spaces.Discrete(len(STATUSES) + 1),
                "turn": spaces.Discrete(max_turns + 1),
            }
        )
        self.problem: Problem | None = None
        self._statement = ""
        self._bounds: dict[str, tuple[float, float | None, str]] = {}
        self._turn = 0
        self._best = 0.0
        self._evaluations = 0
        self._last: EvalResult | None = None
        self._last_reward = 0.0

    # ---------------------------------------------------------------------------------------- the pool

    @property
    def pool(self) -> Pool:
        """The evaluation pool: the one given, or the shared pool, started on first use."""
        if isinstance(self._pool_spec, str):
            self._pool_spec = shared_pool(self._pool_spec)
        return self._pool_spec

    @property
    def policy(self) -> str:
        """The static-analysis policy of the current problem."""
        if self._policy is not None:
            return self._policy
        declared = self.problem.definition.extra.get("policy") if self.problem is not None else None
        return declared if declared in ("strict", "permissive") else "strict"

    # ---------------------------------------------------------------------------------------- Gymnasium

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Start an episode on a problem: `options={"problem": name}` picks it, else the env's own problem
        or a draw from the suite with this env's seeded generator."""
        super().reset(seed=seed)
        wanted = (options or {}).get("problem")
        if wanted is not None:
            if wanted not in self._names:
                raise ValueError(
                    f"problem {wanted!r} is not in this env; choose one of {', '.join(self._names[:10])}"
                )
            name = wanted
        else:
            name = (
                self._names[int(self.np_random.integers(len(self._names)))]
                if len(self._names) > 1
                else self._names[0]
            )
        if self.problem is None or self.problem.name != name:
            self.problem = self._fixed if self._fixed is not None else problem_by_name(name)
            self._bounds = self._visible_bounds(self.problem)
            self._statement = self._describe(self.problem)
        self._turn = 0
        self._best = 0.0
        self._last = None
        self._last_reward = 0.0
        return self._observation(), {"problem": self.problem.name, "policy": self.policy}

    def step(self, action: str) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        """Evaluate one attempt: static checks here, then the pool; returns the usual five values."""
        return self._finish(self._submit(action))

    def render(self) -> str | None:
        """The observation text ("ansi"), or None without a render mode."""
        if self.render_mode == "ansi":
            return self._text()
        return None

    def close(self) -> None:
        """Release the env. A pool handed to the env or shared by the process is left running for its
        owner; closing twice is allowed."""
        self._last = None

    # ---------------------------------------------------------------------------------------- stepping

    def _submit(self, action: Any) -> _Pending:
        """Check `action` here and send it to the pool when it passes; the vector env submits a whole
        batch of these before waiting on any."""
        if self.problem is None:
            raise RuntimeError("call reset() before step()")
        self._turn += 1
        self._evaluations += 1
        problem = self.problem
        rejected = intake(problem, action, self.policy)
        if rejected is not None:
            return _Pending(rejected)
        workloads = self._draw_workloads(problem)
        seed = int.from_bytes(self._digest(b"inputs"), "little") & 0x7FFF_FFFF_FFFF_FFFF
        future = self.pool.submit(problem, action, workloads=workloads, policy=self.policy, seed=seed)
        return _Pending(future=future)

    def _finish(self, pending: _Pending) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        """Wait for a submitted attempt and turn its result into the step's five values."""
        result = pending.result
        if result is None:
            try:
                result = pending.future.result()  # type: ignore[union-attr]
            except Exception as e:  # noqa: BLE001 - a pool failure is ours, reported as INFRA_ERROR
                result = _local_result(
                    self.problem, Status.INFRA_ERROR, self.policy, f"the pool failed: {e!r}"
                )
        value = float(self.reward_fn(result))
        score = sol_reward(result)
        reward = improvement(self._best, value) if self.improvement else value
        self._best = max(self._best, value)
        self._last = result
        self._last_reward = score
        # The anchors the pool paid with are the ones to show from now on.
        paid = {
            w.uuid: (w.t_sol_ms, w.t_baseline_ms, w.bound_by or self._bounds[w.uuid][2])
            for w in result.workloads
            if w.uuid in self._bounds and w.t_baseline_ms is not None and w.t_sol_ms is not None
        }
        if any(self._bounds[k] != v for k, v in paid.items()):
            self._bounds.update(paid)
            self._statement = self._describe(self.problem)
        hack = hack_detected(result)
        terminated = hack or score >= self.target_score
        truncated = not terminated and self._turn >= self.max_turns
        info = {
            "result": result,
            "problem": result.problem,
            "score": score,
            "hack": hack,
            "infra_error": result.status is Status.INFRA_ERROR,
            "turn": self._turn,
            "best": self._best,
        }
        return self._observation(), reward, terminated, truncated, info

    def _digest(self, purpose: bytes) -> bytes:
        """Secret-keyed bytes for one evaluation of this instance: unpredictable to the policy, stable
        for a given `secret`."""
        material = self._secret + purpose + self._evaluations.to_bytes(8, "little")
        return hashlib.blake2b(material, digest_size=16).digest()

    def _draw_workloads(self, problem: Problem) -> list[Workload]:
        rng = np.random.default_rng(int.from_bytes(self._digest(b"workloads"), "little"))
        return evaluation_workloads(
            problem,
            rng,
            keys=self._workload_keys,
            sample=self.sample_workloads,
            fresh=self.fresh_shapes,
            axis_ranges=self._axis_ranges,
        )

    # ---------------------------------------------------------------------------------------- observation

    def _observation(self) -> dict[str, Any]:
        visible = [b for b in self._bounds.values()]
        t_sol = _geomean([b[0] for b in visible])
        t_b = _geomean([b[1] for b in visible if b[1] is not None])
        timed = [w for w in (self._last.workloads if self._last else []) if w.latency_ms is not None]
        last_ms = _geomean([w.latency_ms for w in timed])
        frac = _geomean([w.fraction_of_sol for w in timed if w.fraction_of_sol is not None])
        status = 0 if self._last is None else STATUSES.index(self._last.status) + 1
        return {
            "text": self._text(),
            "t_sol_us": _box(t_sol * 1000, TIME_HIGH_US),
            "t_baseline_us": _box(t_b * 1000, TIME_HIGH_US),
            "last_us": _box(last_ms * 1000, TIME_HIGH_US),
            "last_score": _box(self._last_reward, 1.0),
            "frac_of_sol": _box(frac, FRACTION_HIGH),
            "status": status,
            "turn": self._turn,
        }

    def _text(self) -> str:
        text = self._statement
        if self._last is not None:
            text += "\n" + feedback(self._last, self._turn, self._last_reward, self._device_profile())
        if len(text) > MAX_OBSERVATION_CHARS:
            text = cap(text, MAX_OBSERVATION_CHARS)
        return text

    def _device_profile(self) -> Any:
        from solgym import hardware

        spec = self._profile_spec
        if spec is None:
            # The device the pool times on, found without starting the pool: NVML for GPUs, else the CPU.
            if self._pool_spec == "cpu":
                spec = hardware.cpu_profile()
            elif isinstance(self._pool_spec, str):
                spec = hardware.detect()
            else:
                devices = getattr(self._pool_spec, "devices", None) or []
                gpu = next((d for d in devices if d is not None), None)
                spec = hardware.detect(gpu) if gpu is not None else hardware.cpu_profile()
            self._profile_spec = spec
        return hardware.get_profile(spec) if isinstance(spec, str) else spec

    def _visible_bounds(self, problem: Problem) -> dict[str, tuple[float, float | None, str]]:
        """uuid -> (T_SOL ms, T_b ms or None, bound_by) for the visible workloads on this env's device."""
        from solgym.bounds import derive
        from solgym.opcount import release_inputs

        profile = self._device_profile()
        anchors = _anchors(profile.slug)
        chosen = (
            [problem.workload(k) for k in self._workload_keys] if self._workload_keys else problem.workloads
        )
        out = {}
        for w in chosen:
            if w.hidden:
                continue
            anchor = anchors.get((problem.name, w.uuid))
            try:
                bound = derive(problem, w, profile)
                t_sol, by = bound.t_sol_ms, bound.bound_by
            except Exception:  # noqa: BLE001 - a bound that cannot be derived is shown as unknown
                t_sol, by = (anchor.t_sol_ms if anchor else 0.0), "unknown"
            t_b = anchor.t_baseline_ms if anchor else _cached_baseline(problem, w, profile)
            out[w.uuid] = (t_sol, t_b, by)
        release_inputs()
        return out

    def _describe(self, problem: Problem) -> str:
        return statement(problem, self._device_profile(), self._bounds, self.policy, self.max_turns)


# -------------------------------------------------------------------------------------------- text


def statement(
    problem: Problem,
    profile: Any,
    bounds: Mapping[str, tuple[float, float | None, str]],
    policy: str,
    max_turns: int,
) -> str:
    """The problem as an agent reads it: task, signature, shapes and dtypes, the device and its roofs,
    T_SOL / T_b / binding roof of each visible workload, and the reference source."""
    d = problem.definition
    inputs, outputs = list(d.inputs), list(d.outputs)
    lines = [f"# Problem: {d.name}" + (f" ({d.op_type})" if d.op_type else ""), "", d.description.strip(), ""]
    lines += [
        "Write one Python module that defines",
        f"    def run({', '.join(inputs)})  ->  {', '.join(outputs)}",
        f"(or destination-passing: run({', '.join(inputs + outputs)}) filling the outputs in place).",
        "Use Triton kernels, or CUDA C++ through torch.utils.cpp_extension.load_inline.",
    ]
    if policy == "strict":
        lines.append(
            "Policy strict: the compute must be in your kernels; torch only for allocation, views, shapes, dtypes."
        )
    else:
        lines.append("Policy permissive: any PyTorch is allowed.")
    lines += ["", "Inputs:"]
    lines += [f"  {_tensor(d, s)}" for s in d.inputs.values()]
    lines += ["Outputs:"]
    lines += [f"  {_tensor(d, s)}" for s in d.outputs.values()]
    ranges = d.extra.get("axis_ranges") or {}
    var = [a for a in d.axes.values() if a.kind == "var"]
    if var:
        lines.append(
            "Var axes: "
            + ", ".join(
                a.name + (f" in [{ranges[a.name][0]}, {ranges[a.name][1]}]" if a.name in ranges else "")
                for a in var
            )
        )
    if d.constraints:
        lines.append("Constraints: " + "; ".join(d.constraints))
    lines += ["", f"Device: {profile.name}" + _roofs(profile)]
    lines.append("Workloads shown (hidden workloads and fresh shapes of the var axes are checked too):")
    for w in problem.workloads:
        if w.hidden or w.uuid not in bounds:
            continue
        t_sol, t_b, by = bounds[w.uuid]
        base = f"T_b {t_b * 1000:.2f} us" if t_b is not None else "T_b not measured on this device yet"
        sol = f"T_SOL {t_sol * 1000:.2f} us ({by}-bound)" if t_sol > 0 else "T_SOL unknown"
        lines.append(f"  {w.uuid[:8]} {_axes(w.axes)}: {sol}, {base}")
    lines += [
        "",
        "Reward: per workload the SOL score 1 / (1 + (T - T_SOL) / (T_b - T_SOL)): 0.5 at T_b, 1 at T_SOL;",
        "the mean over workloads, 0 if any workload fails. Times below 0.9 x T_SOL are treated as hacks.",
        f"Attempts per episode: {max_turns}.",
        "",
        "Reference (PyTorch):",
        "```python",
        d.reference.rstrip(),
        "```",
    ]
    return "\n".join(lines)


def feedback(result: EvalResult, turn: int, score: float, profile: Any = None) -> str:
    """What an agent can act on after an attempt: the status and message, broken rules with lines, the
    compiler log, each workload's outcome (error sizes, times against T_SOL and T_b, achieved rates).
    Hidden workloads and fresh shapes are reported without their shapes. With the device `profile`,
    achieved rates are also given as a share of its DRAM and tensor-core roofs."""
    lines = [f"## Attempt {turn}: {result.status.value}, SOL score {score:.3f}"]
    if result.message:
        lines.append(result.message.strip())
    if result.violations:
        lines.append("Rules broken:")
        lines += [f"  {_where(v)} {v.rule}: {v.message}" for v in result.violations]
    if result.status is Status.COMPILE_ERROR and result.compile_log:
        lines += ["Compiler output:", cap(result.compile_log.strip(), 6000)]
    elif result.status in (Status.RUNTIME_ERROR, Status.TIMEOUT) and result.run_log:
        lines += ["Run log:", cap(result.run_log.strip(), 6000)]
    shown = 0
    for w in result.workloads:
        name = f"hidden workload {shown + 1}" if w.hidden else f"{w.uuid[:8]} {_axes(w.axes)}"
        shown += w.hidden
        lines.append(f"  {name}: {_workload_line(w, profile)}")
    return "\n".join(lines)


def _workload_line(w: WorkloadResult, profile: Any = None) -> str:
    parts = [w.status.value]
    if w.max_abs_error is not None and w.status is not Status.PASSED:
        parts.append(
            f"max abs error {w.max_abs_error:.3g}"
            + (f", rel {w.max_rel_error:.3g}" if w.max_rel_error is not None else "")
            + (f", matched {w.matched_ratio:.1%}" if w.matched_ratio is not None else "")
        )
    if w.latency_ms is not None:
        timing = f"{w.latency_ms * 1000:.2f} us"
        if w.t_sol_ms is not None:
            timing += f" (T_SOL {w.t_sol_ms * 1000:.2f} us"
            timing += f", T_b {w.t_baseline_ms * 1000:.2f} us)" if w.t_baseline_ms is not None else ")"
        parts.append(timing)
    if w.sol_score is not None:
        parts.append(f"score {w.sol_score:.3f}")
    if w.speedup is not None:
        parts.append(f"{w.speedup:.2f}x the baseline")
    if w.achieved_bytes_per_s is not None:
        dram = getattr(profile, "dram_bytes_per_s", 0.0)
        share = f" ({w.achieved_bytes_per_s / dram:.0%} of DRAM {dram / 1e12:.3g} TB/s)" if dram else ""
        parts.append(f"{w.achieved_bytes_per_s / 1e9:.3g} GB/s{share}")
    if w.achieved_flop_per_s is not None:
        peak = profile.peak("bf16") if profile is not None else None
        share = f" ({w.achieved_flop_per_s / peak:.0%} of bf16 peak)" if peak else ""
        parts.append(f"{w.achieved_flop_per_s / 1e12:.3g} TFLOP/s{share}")
    if w.fraction_of_sol is not None:
        parts.append(f"{w.fraction_of_sol:.0%} of SOL" + (f" ({w.bound_by}-bound)" if w.bound_by else ""))
    if w.message and w.status is not Status.PASSED:
        parts.append(w.message.strip().splitlines()[0][:300])
    return ", ".join(parts)


def _where(v: Violation) -> str:
    return f"{v.file or 'action'}:{v.line if v.line is not None else '?'}"


def _axes(axes: Mapping[str, int]) -> str:
    return " ".join(f"{k}={v}" for k, v in axes.items())


def _tensor(d: Any, spec: Any) -> str:
    if spec.shape is None:
        return f"{spec.name}: Python scalar ({spec.dtype})"
    dims = []
    for dim in spec.shape:
        axis = d.axes.get(dim) if isinstance(dim, str) else None
        dims.append(f"{dim}={axis.value}" if axis is not None and axis.kind == "const" else str(dim))
    return f"{spec.name}: {spec.dtype}[{', '.join(dims)}]"


def _roofs(profile: Any) -> str:
    parts = []
    if profile.dram_bytes_per_s:
        parts.append(f"DRAM {profile.dram_bytes_per_s / 1e12:.3g} TB/s")
    for precision in ("bf16", "fp16", "tf32", "fp32", "fp8"):
        peak = profile.peak(precision)
        if peak:
            parts.append(f"{precision} {peak / 1e12:.3g} TFLOP/s")
    return f" ({', '.join(parts)})" if parts else ""


# -------------------------------------------------------------------------------------------- helpers


def evaluation_workloads(
    problem: Problem,
    rng: np.random.Generator,
    *,
    keys: Sequence[str] | None = None,
    sample: int | None = None,
    fresh: int = 1,
    axis_ranges: Mapping[str, Sequence[int]] | None = None,
) -> list[Workload]:
    """The workloads of one evaluation: the anchored ones named by `keys` (uuids or prefixes; default
    all, visible and hidden), or a sample of `sample` of them drawn with `rng`, plus `fresh` shapes drawn
    from the axis ranges (hidden, correctness only)."""
    anchored = [problem.workload(k) for k in keys] if keys is not None else list(problem.workloads)
    if sample is not None and sample < len(anchored):
        picked = sorted(rng.choice(len(anchored), size=sample, replace=False))
        anchored = [anchored[i] for i in picked]
    return anchored + draw_fresh(problem, fresh, rng, axis_ranges, template=anchored[0])


def draw_fresh(
    problem: Problem,
    count: int,
    rng: np.random.Generator,
    axis_ranges: Mapping[str, Sequence[int]] | None = None,
    *,
    template: Workload | None = None,
) -> list[Workload]:
    """`count` workloads with var axes drawn log-uniformly from `axis_ranges` (default: the definition's
    `axis_ranges`), satisfying the definition's constraints, marked hidden, with `extra` = {"fresh": True,
    "like": template's uuid} so an evaluator can build each from its template and knows to check it for
    correctness only. Each copies the input sources and tolerance of `template`; none are drawn when a range is missing for some var axis or when the
    template reads data from files or a custom generator (its shapes are then fixed by that data)."""
    d = problem.definition
    ranges = dict(axis_ranges if axis_ranges is not None else d.extra.get("axis_ranges") or {})
    template = template or problem.workloads[0]
    var = [a.name for a in d.axes.values() if a.kind == "var"]
    if count <= 0 or not var or any(a not in ranges for a in var):
        return []
    if any(src.kind in ("safetensors", "custom") for src in template.inputs.values()):
        return []
    drawn: list[Workload] = []
    for _ in range(count * 20):
        if len(drawn) == count:
            break
        axes = {}
        for name in var:
            lo, hi = int(ranges[name][0]), int(ranges[name][1])
            value = math.exp(rng.uniform(math.log(max(lo, 1)), math.log(max(hi, 1) + 1)))
            axes[name] = min(hi, max(lo, int(value)))
        try:
            broken = d.check_constraints(d.resolve_axes(axes))
        except ValueError:
            continue
        if broken:
            continue
        tag = uuid_module.UUID(bytes=bytes(rng.integers(0, 256, size=16, dtype=np.uint8)))
        drawn.append(
            Workload(
                uuid=f"fresh-{tag}",
                axes=axes,
                inputs=template.inputs,
                tolerance=template.tolerance,
                hidden=True,
                extra={"fresh": True, "like": template.uuid},
            )
        )
    return drawn


def intake(problem: Problem, action: Any, policy: str) -> EvalResult | None:
    """The checks that run in the caller's process before the pool: decoding (INVALID_ACTION) and static
    analysis (REJECTED, with each broken rule and its line). None when the action may be evaluated."""
    from solgym.analysis import check

    if not isinstance(action, str):
        return _local_result(
            problem,
            Status.INVALID_ACTION,
            policy,
            f"an action is a str of Python source, not {type(action).__name__}",
        )
    d = problem.definition
    status, _, verdict, message = check(action, inputs=list(d.inputs), outputs=list(d.outputs), policy=policy)
    if status is None:
        return None
    if verdict is not None:  # REJECTED: the violations say it all, one per line
        why = f"static analysis rejected the action under the {policy} policy"
        return _local_result(problem, status, policy, why, list(verdict.violations))
    return _local_result(problem, status, policy, message)


def _local_result(
    problem: Problem | None,
    status: Status,
    policy: str,
    message: str,
    violations: list[Violation] | None = None,
) -> EvalResult:
    return EvalResult(
        problem=problem.name if problem else "",
        status=status,
        policy=policy,
        message=message,
        violations=violations or [],
    )


def _geomean(values: Sequence[float]) -> float:
    positive = [v for v in values if v is not None and v > 0]
    return math.exp(sum(math.log(v) for v in positive) / len(positive)) if positive else 0.0


def _box(value: float, high: float) -> np.ndarray:
    value = value if math.isfinite(value) else 0.0
    return np.array([min(high, max(0.0, value))], dtype=np.float32)


_problem_cache: dict[str, Problem] = {}
_anchor_cache: dict[str, dict] = {}


def problem_by_name(name: str) -> Problem:
    """A known problem by name (loaded once per process)."""
    if name not in _problem_cache:
        from solgym.suite import find_problem

        _problem_cache[name] = find_problem(name)
    return _problem_cache[name]


def _anchors(slug: str) -> dict:
    if slug not in _anchor_cache:
        from solgym.rewards import load_anchors

        _anchor_cache[slug] = load_anchors(slug)
    return _anchor_cache[slug]


def _cached_baseline(problem: Problem, workload: Workload, profile: Any) -> float | None:
    """T_b measured earlier on this kind of device (`solgym baseline` / evaluations fill the cache)."""
    from solgym import baseline

    found = baseline.cached(problem, workload, "cpu" if profile.is_cpu else profile.name)
    return found.t_baseline_ms if found is not None else None


def _problem_names(problem: str | Problem | None, suite: str | None) -> list[str]:
    if isinstance(problem, Problem):
        return [problem.name]
    if problem is not None:
        from pathlib import Path

        path = Path(problem)
        if path.is_dir():
            loaded = _load_path(path)
            return [loaded.name]
        return [problem]
    from solgym.suite import problems

    names = sorted(problems(suite))
    if not names:
        raise ValueError(f"suite {suite!r} has no problems")
    return names


def _load_path(path: Any) -> Problem:
    from solgym.problem import load_problem

    problem = load_problem(path)
    _problem_cache[problem.name] = problem
    return problem


# -------------------------------------------------------------------------------------------- registration

_ID_UNSAFE = re.compile(r"[^\w.-]")


def env_id(name: str) -> str:
    """The registered id of a problem: `solgym/<name>-v0` (characters Gymnasium ids cannot hold become _)."""
    return f"{NAMESPACE}/{_ID_UNSAFE.sub('_', name)}-v{VERSION}"


def suite_env_id(suite: str) -> str:
    """The registered id of a suite env, which draws a problem per reset: `solgym/suite-<suite>-v0`."""
    return f"{NAMESPACE}/suite-{_ID_UNSAFE.sub('_', suite)}-v{VERSION}"


def register_envs() -> list[str]:
    """Register an id for every problem and every suite known now (shipped, $SOLGYM_SUITES, registered
    by path); ids already registered are left alone. Returns the ids added."""
    from solgym.suite import all_suites, problems

    added = []
    common = {
        "entry_point": "solgym.env:KernelEnv",
        "vector_entry_point": "solgym.vector:KernelVectorEnv",
        "nondeterministic": True,
        "disable_env_checker": False,
    }
    for name in problems():
        eid = env_id(name)
        if eid not in gym.registry:
            gym.register(eid, kwargs={"problem": name}, **common)
            added.append(eid)
    for suite in all_suites():
        eid = suite_env_id(suite)
        if eid not in gym.registry:
            gym.register(eid, kwargs={"suite": suite}, **common)
            added.append(eid)
    return added


def _register_at_import() -> None:
    try:
        register_envs()
    except (OSError, ValueError, KeyError) as e:
        # A broken user suite must not make `import solgym` fail; `solgym problems` reports it in full.
        import warnings

        warnings.warn(f"solgym: some envs were not registered: {e}", stacklevel=3)


_register_at_import()
