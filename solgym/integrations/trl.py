"""TRL: reward functions for `GRPOTrainer(reward_funcs=[...])`.

TRL calls a reward function with keyword arguments `prompts`, `completions` (strings, or conversational
lists of message dicts), `completion_ids`, and every other column of the dataset, one list entry per
sample; it expects a list of floats back, where None marks a sample to leave out. An `async def` reward
function is awaited by TRL versions that support it.

The dataset names each sample's problem in a column (default `"problem"`). A sample whose evaluation
failed on solgym's side (INFRA_ERROR) gets None, so it never teaches the policy anything.

    from solgym.integrations.trl import reward_func
    trainer = GRPOTrainer(model=..., reward_funcs=[reward_func()], train_dataset=dataset, ...)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from solgym.integrations import Evaluator
from solgym.result import EvalResult, Status
from solgym.rewards import reward_function

RewardFunc = Callable[..., list[float | None]]


def _rewards(results: list[EvalResult], fn: Callable[[EvalResult], float]) -> list[float | None]:
    return [None if r.status is Status.INFRA_ERROR else float(fn(r)) for r in results]


def _problems(kwargs: dict[str, Any], column: str, n: int) -> list[str]:
    if column not in kwargs:
        raise KeyError(
            f"the dataset has no {column!r} column naming each sample's problem; add one or pass problem_column="
        )
    names = kwargs[column]
    return [names] * n if isinstance(names, str) else list(names)


def reward_func(
    *,
    reward: str | Callable[[EvalResult], float] = "sol",
    problem_column: str = "problem",
    evaluator: Evaluator | None = None,
    **evaluator_kwargs: Any,
) -> RewardFunc:
    """A synchronous TRL reward function: the solgym reward (`sol` by default; any name of
    `solgym.rewards.REWARDS` or a function) of each completion, None for INFRA_ERROR. The batch is
    submitted to the pool at once. `evaluator_kwargs` go to `Evaluator` (pool, policy, fresh_shapes)."""
    fn = reward_function(reward)
    ev = evaluator or Evaluator(**evaluator_kwargs)

    def solgym_reward(
        prompts: list[Any] | None = None, completions: list[Any] | None = None, **kwargs: Any
    ) -> list[float | None]:
        completions = list(completions or [])
        return _rewards(ev.evaluate(_problems(kwargs, problem_column, len(completions)), completions), fn)

    solgym_reward.__name__ = (
        f"solgym_{reward if isinstance(reward, str) else getattr(reward, '__name__', 'reward')}"
    )
    return solgym_reward


def async_reward_func(
    *,
    reward: str | Callable[[EvalResult], float] = "sol",
    problem_column: str = "problem",
    evaluator: Evaluator | None = None,
    **evaluator_kwargs: Any,
) -> Callable[..., Any]:
    """The same reward as `reward_func`, as an `async def` that awaits the pool without blocking the
    event loop (for TRL versions that run async reward functions concurrently)."""
    fn = reward_function(reward)
    ev = evaluator or Evaluator(**evaluator_kwargs)

    async def solgym_reward(
        prompts: list[Any] | None = None, completions: list[Any] | None = None, **kwargs: Any
    ) -> list[float | None]:
        completions = list(completions or [])
        names = _problems(kwargs, problem_column, len(completions))
        futures = [asyncio.wrap_future(ev.submit(n, c)) for n, c in zip(names, completions, strict=True)]
        outcomes = await asyncio.gather(*futures, return_exceptions=True)
        results = [
            o
            if isinstance(o, EvalResult)
            else EvalResult(
                problem=n, status=Status.INFRA_ERROR, policy=ev.policy, message=f"the pool failed: {o!r}"
            )
            for o, n in zip(outcomes, names, strict=True)
        ]
        return _rewards(results, fn)

    solgym_reward.__name__ = (
        f"solgym_{reward if isinstance(reward, str) else getattr(reward, '__name__', 'reward')}"
    )
    return solgym_reward
