"""Adapters for RL frameworks (`trl`, `verl`): thin functions in each framework's calling convention over
one shared step, `evaluate_completions`, which turns model completions into EvalResults in one batch.

Neither framework is a dependency: the adapters only follow their calling conventions.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

import numpy as np

from solgym.result import EvalResult


def completion_text(completion: Any) -> str:
    """The text of a completion: a str as is; a conversational completion (a list of message dicts) as
    the content of its last assistant message."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return str(completion.get("content") or "")
    if isinstance(completion, Sequence):
        messages = [m for m in completion if isinstance(m, dict)]
        replies = [m for m in messages if m.get("role", "assistant") == "assistant"]
        return str((replies or messages or [{}])[-1].get("content") or "")
    return str(completion)


def action_of(text: str) -> str:
    """The action in a completion: the last fenced code block that defines `run`, else the text itself
    (which the intake then rejects or accepts on its own)."""
    from solgym.action import extract_code

    return extract_code(text) or text


class Evaluator:
    """Evaluates batches of completions against named problems through one pool. Each evaluation runs
    every anchored workload (or those whose uuid starts with one of `workloads`) plus `fresh_shapes`
    hidden shapes drawn with a secret of this evaluator."""

    def __init__(
        self,
        *,
        pool: Any = "auto",
        policy: str = "strict",
        fresh_shapes: int = 1,
        workloads: Sequence[str] | None = None,
        secret: bytes | None = None,
    ) -> None:
        self._pool = pool
        self.workloads = tuple(workloads) if workloads else None
        self.policy = policy
        self.fresh_shapes = fresh_shapes
        self._secret = secret if secret is not None else os.urandom(16)
        self._count = 0

    @property
    def pool(self) -> Any:
        if isinstance(self._pool, str):
            from solgym.env import shared_pool

            self._pool = shared_pool(self._pool)
        return self._pool

    def submit(self, problem_name: str, completion: Any) -> Future[EvalResult]:
        """Start evaluating one completion; a completed future when the intake already decided."""
        from solgym.env import evaluation_workloads, intake, problem_by_name

        problem = problem_by_name(problem_name)
        action = action_of(completion_text(completion))
        decided = intake(problem, action, self.policy)
        if decided is not None:
            done: Future[EvalResult] = Future()
            done.set_result(decided)
            return done
        self._count += 1
        digest = hashlib.blake2b(self._secret + self._count.to_bytes(8, "little"), digest_size=16).digest()
        rng = np.random.default_rng(int.from_bytes(digest, "little"))
        keys = None
        if self.workloads:
            keys = [w.uuid for w in problem.workloads if w.uuid.startswith(self.workloads)] or None
        workloads = evaluation_workloads(problem, rng, keys=keys, fresh=self.fresh_shapes)
        seed = int.from_bytes(digest[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF
        return self.pool.submit(problem, action, workloads=workloads, policy=self.policy, seed=seed)

    def evaluate(self, problem_names: Sequence[str], completions: Sequence[Any]) -> list[EvalResult]:
        """Evaluate a batch: everything is submitted before anything is awaited."""
        if len(problem_names) != len(completions):
            raise ValueError(f"{len(problem_names)} problem names for {len(completions)} completions")
        futures = [self.submit(name, c) for name, c in zip(problem_names, completions, strict=True)]
        return [_result(f, name, self.policy) for f, name in zip(futures, problem_names, strict=True)]


def _result(future: Future[EvalResult], problem: str, policy: str) -> EvalResult:
    from solgym.result import Status

    try:
        return future.result()
    except Exception as e:  # noqa: BLE001 - a pool failure is ours: INFRA_ERROR, which adapters skip
        return EvalResult(
            problem=problem, status=Status.INFRA_ERROR, policy=policy, message=f"the pool failed: {e!r}"
        )
