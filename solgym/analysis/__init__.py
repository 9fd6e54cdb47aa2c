"""Static analysis of actions: the first line of defence against cheating code (DESIGN §2, §4).

`analyze(action, policy=...)` runs in the caller's process, never imports or executes the action, and
returns a `Verdict` listing every broken rule with its id, line and a message an agent can act on.
Python sources are analysed on libcst's syntax tree (after `solgym.action.parse_python` has bounded
them); C++/CUDA sources, whether solution files or strings given to `load_inline`, go through the
C++ scanner. The rule catalogue is `RULES`; docs/analysis.md describes each rule with examples.

Static analysis is one layer of three: every rule names the runtime guard or measurement check that
catches what it misses (`Rule.backed_by`).
"""

from __future__ import annotations

import gc
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from solgym.action import SOURCE_SUFFIXES, Action, InvalidAction, content_digest, decode, parse_python
from solgym.analysis.rules import POLICIES, RULES, Rule, applies
from solgym.result import Status, Violation

__all__ = ["POLICIES", "RULES", "Rule", "Verdict", "analyze", "check"]

_CXX_SUFFIXES = tuple(s for s in SOURCE_SUFFIXES if s != ".py")


@dataclass(frozen=True)
class Verdict:
    """The outcome of static analysis: accepted or not, under which policy, and why."""

    ok: bool
    policy: str
    violations: tuple[Violation, ...]
    elapsed_ms: float

    def summary(self) -> str:
        """One line per violation, `file:line rule: message`, for feedback to an agent."""
        if self.ok:
            return f"accepted under the {self.policy} policy"
        lines = []
        for v in self.violations:
            where = f"{v.file or 'action'}:{v.line if v.line is not None else '?'}"
            lines.append(f"{where} {v.rule}: {v.message}")
        return "\n".join(lines)


def analyze(action: Action, *, policy: str = "strict", cache: bool = True) -> Verdict:
    """Check `action` against every rule enforced under `policy` ("strict" or "permissive").

    Never raises on any Action: code the analyser cannot handle is reported as `analysis.unanalysable`.
    Raises ValueError only for an unknown policy (a caller error). Verdicts are remembered by content
    (the last 4096); `cache=False` analyses afresh (benchmarks)."""
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; use one of {', '.join(POLICIES)}")
    import libcst  # noqa: F401 - loaded on first use (about 0.3 s) so that it is not counted as analysis time

    start = time.perf_counter()
    # The key is recomputed from the content, never taken from action.digest: a hand-built Action with a
    # borrowed digest must not inherit another action's verdict.
    try:
        key = (content_digest(action.source, action.files, action.entry_point), policy)
    except (TypeError, AttributeError, UnicodeEncodeError):
        key = None
    cached = _VERDICTS.get(key) if key is not None and cache else None
    if cached is not None:
        return replace(cached, elapsed_ms=(time.perf_counter() - start) * 1000)
    # libcst builds tens of thousands of acyclic nodes; pausing the cyclic collector meanwhile saves about
    # a third of the time on large actions (it is restored, and nothing here creates cycles that matter).
    collecting = gc.isenabled()
    gc.disable()
    try:
        violations = _analyze(action, policy)
    except RecursionError:
        violations = [Violation("analysis.unanalysable", "the action is nested too deeply to analyse")]
    except Exception as e:  # noqa: BLE001 - a defect in the analyser must reject, never crash the caller
        violations = [
            Violation(
                "analysis.unanalysable",
                f"the analyser failed on this action ({type(e).__name__}); simplify the code",
            )
        ]
    finally:
        if collecting:
            gc.enable()
    kept = tuple(v for v in violations if applies(v.rule, policy))
    verdict = Verdict(
        ok=not kept, policy=policy, violations=kept, elapsed_ms=(time.perf_counter() - start) * 1000
    )
    if key is not None:
        _VERDICTS.put(key, verdict)
    return verdict


class _VerdictCache:
    """A small thread-safe LRU of verdicts by (content digest, policy): RL loops resubmit identical actions."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[tuple[str, str], Verdict] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str]) -> Verdict | None:
        with self._lock:
            verdict = self._items.get(key)
            if verdict is not None:
                self._items.move_to_end(key)
            return verdict

    def put(self, key: tuple[str, str], verdict: Verdict) -> None:
        with self._lock:
            self._items[key] = verdict
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


_VERDICTS = _VerdictCache(4096)


def check(
    raw: str | bytes | Mapping[str, Any],
    *,
    inputs: Sequence[str],
    outputs: Sequence[str],
    policy: str = "strict",
) -> tuple[Status | None, Action | None, Verdict | None, str]:
    """Decode and analyse in one call: (status, action, verdict, message).

    status is Status.INVALID_ACTION (action and verdict None), Status.REJECTED, or None when accepted."""
    try:
        action = decode(raw, inputs=inputs, outputs=outputs)
    except InvalidAction as e:
        return Status.INVALID_ACTION, None, None, e.reason
    verdict = analyze(action, policy=policy)
    if verdict.ok:
        return None, action, verdict, verdict.summary()
    return Status.REJECTED, action, verdict, verdict.summary()


def _analyze(action: Action, policy: str) -> list[Violation]:
    import libcst as cst

    from solgym.analysis import cxx
    from solgym.analysis.python import Analyser, lines_of

    strict = policy == "strict"
    python_files = {"": action.source, **{p: t for p, t in action.files.items() if p.endswith(".py")}}
    local_modules = {p[:-3].replace("/", ".").split(".")[0] for p in python_files if p}
    entry_names: set[str] = set()
    violations: list[Violation] = []
    cxx_sources: list[tuple[str, str]] = []
    string_lines: dict[str, tuple[str | None, int]] = {}
    defines: dict[str, str] = {}
    for path, text in python_files.items():
        file = path or None
        try:
            tree = parse_python(text, path or "the action")
            module = cst.parse_module(text)
        except InvalidAction as e:
            violations.append(Violation("analysis.unanalysable", e.reason, None, file))
            continue
        except Exception as e:  # noqa: BLE001 - libcst rejects some sources CPython accepts
            violations.append(
                Violation(
                    "analysis.unanalysable",
                    f"the analyser cannot parse this module ({type(e).__name__}); simplify it",
                    None,
                    file,
                )
            )
            continue
        analyser = Analyser(
            module,
            strict=strict,
            entry_point=action.entry_point if not path else "",
            file=file,
            roots=entry_names if path else (),
            local_modules=local_modules,
        )
        findings = analyser.run()
        if not path:
            entry_names = analyser.all_names
        defines.update(analyser.cxx_defines)
        nodes = [f.node for f in findings if f.node is not None] + [node for node, _ in analyser.strings]
        lines = _safe_lines(lines_of, module, tree, text, analyser.where, nodes) if nodes else {}
        for f in findings:
            line = lines.get(id(f.node)) if f.node is not None else f.line
            violations.append(Violation(f.rule, f.message, line, f.file))
        for k, (node, text_) in enumerate(analyser.strings):
            name = f"{path or 'action'}#string{k}"
            cxx_sources.append((name, text_))
            string_lines[name] = (file, lines.get(id(node), 1))
    for path, text in action.files.items():
        if path.endswith(_CXX_SUFFIXES):
            cxx_sources.append((path, text))
    if cxx_sources:
        for name, finding in cxx.scan(cxx_sources, strict=strict, defines=defines):
            if name in string_lines:
                file, first = string_lines[name]
                line = first + max(finding.line, 1) - 1
                message = f"in embedded C++ source: {finding.message}"
            else:
                file, line, message = name, finding.line, finding.message
            violations.append(Violation(finding.rule, message, line, file))
    return _dedupe(violations)


def _safe_lines(lines_of: Any, *args: Any) -> dict[int, int]:
    try:
        return lines_of(*args)
    except RecursionError:
        return {}


def _dedupe(violations: list[Violation]) -> list[Violation]:
    seen: set[tuple[str, int | None, str | None]] = set()
    out = []
    for v in sorted(violations, key=lambda v: (v.file or "", v.line or 0, v.rule)):
        key = (v.rule, v.line, v.file)
        if key not in seen:
            seen.add(key)
            out.append(v)
    return out
