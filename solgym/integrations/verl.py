"""verl: a `compute_score` for `custom_reward_function` in verl's trainer config.

verl calls `compute_score(data_source, solution_str, ground_truth, extra_info=None)` once per sample
(its naive reward manager) and accepts a float or a dict holding `"score"`; the other keys of the dict
are logged as extra reward info. Its batch reward manager calls a function with the plural names
(`data_sources`, `solution_strs`, `ground_truths`, `extra_infos`) and takes a list back: use
`compute_score_batch` there, which submits the whole batch to the pool at once.

The problem's name is the sample's `ground_truth` (or `extra_info["problem"]`).

    custom_reward_function:
      path: <site-packages>/solgym/integrations/verl.py
      name: compute_score        # or compute_score_batch with reward_model.reward_manager=batch
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from solgym.integrations import Evaluator
from solgym.result import EvalResult, Status
from solgym.rewards import fast_p_reward, passed, sol_reward, speedup_reward

_evaluator: Evaluator | None = None


def _shared() -> Evaluator:
    global _evaluator
    if _evaluator is None:
        _evaluator = Evaluator()
    return _evaluator


def _problem(ground_truth: Any, extra_info: dict[str, Any] | None) -> str:
    if extra_info and isinstance(extra_info.get("problem"), str):
        return extra_info["problem"]
    if isinstance(ground_truth, str) and ground_truth:
        return ground_truth
    raise ValueError("name the problem in ground_truth or extra_info['problem']")


def score_dict(result: EvalResult) -> dict[str, Any]:
    """The dict verl receives: `score` (the SOL reward), and numbers worth logging beside it."""
    ok = passed(result)
    return {
        "score": sol_reward(result),
        "correct": float(ok),
        "speedup": speedup_reward(result) if ok else 0.0,
        "fast_1": fast_p_reward(result),
        "infra_error": float(result.status is Status.INFRA_ERROR),
        "status": result.status.value,
    }


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: Any,
    extra_info: dict[str, Any] | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """Score one response: the SOL reward of the kernel in `solution_str` on the problem named by
    `ground_truth` (or `extra_info["problem"]`)."""
    return score_dict(_shared().evaluate([_problem(ground_truth, extra_info)], [solution_str])[0])


def compute_score_batch(
    data_sources: Sequence[str],
    solution_strs: Sequence[str],
    ground_truths: Sequence[Any],
    extra_infos: Sequence[dict[str, Any] | None] | None = None,
    **kwargs: Any,
) -> list[dict[str, Any]]:
    """Score a batch of responses, all submitted to the pool before any is awaited."""
    infos = list(extra_infos) if extra_infos is not None else [None] * len(solution_strs)
    names = [_problem(g, i) for g, i in zip(ground_truths, infos, strict=True)]
    return [score_dict(r) for r in _shared().evaluate(names, list(solution_strs))]
