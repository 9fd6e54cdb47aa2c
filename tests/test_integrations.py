"""The TRL and verl adapters, called the way those frameworks call them (neither is installed in CI;
the last tests run only where the library imports)."""

from __future__ import annotations

import asyncio
import inspect
from concurrent.futures import Future

import pytest
from fake_pool import FakePool, kernel

from solgym.integrations import Evaluator, action_of, completion_text
from solgym.integrations import trl as trl_adapter
from solgym.integrations import verl as verl_adapter

RMS = "rmsnorm_llama3_8b"


def fenced(status="PASSED", latency_us=4.0) -> str:
    return f"Here is my kernel.\n\n```python\n{kernel(status, latency_us)}```\nIt should be fast."


class InfraPool(FakePool):
    def submit(self, *args, **kwargs):
        future: Future = Future()
        future.set_exception(RuntimeError("worker lost"))
        return future


# ------------------------------------------------------------------------------------------ completions


def test_completion_text_reads_strings_and_conversations():
    assert completion_text("abc") == "abc"
    conversation = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "answer"}]
    assert completion_text(conversation) == "answer"
    assert completion_text([{"content": "only"}]) == "only"


def test_action_of_takes_the_fenced_block_defining_run():
    assert action_of(fenced()).startswith('"""RMSNorm of Llama 3.1 8B in Triton')
    assert action_of("no code here") == "no code here"


# ------------------------------------------------------------------------------------------ TRL


def test_trl_reward_func_scores_a_batch_with_dataset_columns():
    pool = FakePool()
    fn = trl_adapter.reward_func(pool=pool, fresh_shapes=0)
    rewards = fn(
        prompts=["p1", "p2", "p3"],
        completions=[fenced("PASSED", 4.0), fenced("INCORRECT_NUMERICAL"), "no code"],
        completion_ids=[[1], [2], [3]],
        problem=[RMS, RMS, RMS],
        trainer_state=None,
    )
    assert rewards == pytest.approx([0.8, 0.0, 0.0])
    assert len(pool.calls) == 2  # the reply without code never reached the pool
    assert fn.__name__ == "solgym_sol"


def test_trl_reward_func_reads_conversational_completions():
    fn = trl_adapter.reward_func(pool=FakePool(), fresh_shapes=0)
    completions = [[{"role": "assistant", "content": fenced("PASSED", 10.0)}]]
    assert fn(
        prompts=[[{"role": "user", "content": "write it"}]], completions=completions, problem=[RMS]
    ) == pytest.approx([0.5])


def test_trl_infra_errors_are_none_so_trl_drops_them():
    fn = trl_adapter.reward_func(pool=InfraPool(), fresh_shapes=0)
    assert fn(prompts=["p"], completions=[fenced()], problem=[RMS]) == [None]


def test_trl_reward_func_with_another_reward():
    fn = trl_adapter.reward_func(reward="speedup", pool=FakePool(), fresh_shapes=0)
    assert fn(prompts=["p"], completions=[fenced("PASSED", 4.0)], problem=[RMS]) == pytest.approx([2.5])
    assert fn.__name__ == "solgym_speedup"


def test_trl_missing_problem_column_says_what_to_add():
    fn = trl_adapter.reward_func(pool=FakePool())
    with pytest.raises(KeyError, match="no 'problem' column"):
        fn(prompts=["p"], completions=[fenced()])


def test_trl_async_reward_func_is_a_coroutine_function_with_the_same_rewards():
    fn = trl_adapter.async_reward_func(pool=FakePool(), fresh_shapes=0)
    assert inspect.iscoroutinefunction(fn)
    rewards = asyncio.run(
        fn(
            prompts=["a", "b"],
            completions=[fenced("PASSED", 4.0), fenced("PASSED", 10.0)],
            problem=[RMS, RMS],
        )
    )
    assert rewards == pytest.approx([0.8, 0.5])
    assert asyncio.run(
        trl_adapter.async_reward_func(pool=InfraPool())(completions=[fenced()], problem=[RMS])
    ) == [None]


def test_evaluations_carry_fresh_hidden_shapes_by_default():
    pool = FakePool()
    Evaluator(pool=pool).evaluate([RMS], [fenced()])
    assert any(w.extra.get("fresh") and w.hidden for w in pool.calls[0]["workloads"])


# ------------------------------------------------------------------------------------------ verl


@pytest.fixture
def verl_pool(monkeypatch):
    pool = FakePool()
    monkeypatch.setattr(verl_adapter, "_evaluator", Evaluator(pool=pool, fresh_shapes=0))
    return pool


def test_verl_compute_score_returns_a_dict_with_score(verl_pool):
    out = verl_adapter.compute_score("solgym", fenced("PASSED", 4.0), RMS, extra_info={"index": 3})
    assert out["score"] == pytest.approx(0.8) and out["correct"] == 1.0 and out["status"] == "PASSED"
    assert verl_adapter.compute_score("solgym", fenced("INCORRECT_NUMERICAL"), RMS)["score"] == 0.0


def test_verl_problem_may_come_from_extra_info(verl_pool):
    out = verl_adapter.compute_score("solgym", fenced("PASSED", 10.0), None, extra_info={"problem": RMS})
    assert out["score"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="name the problem"):
        verl_adapter.compute_score("solgym", fenced(), None)


def test_verl_batch_submits_everything_then_returns_in_order(verl_pool):
    outs = verl_adapter.compute_score_batch(
        ["s", "s"], [fenced("PASSED", 10.0), fenced("PASSED", 4.0)], [RMS, RMS], [None, None]
    )
    assert [o["score"] for o in outs] == pytest.approx([0.5, 0.8])
    assert len(verl_pool.calls) == 2


# ------------------------------------------------------------------------------------------ the real libraries


def test_trl_calling_convention_matches_the_installed_trl():
    trl = pytest.importorskip("trl")
    params = inspect.signature(trl.GRPOTrainer.__init__).parameters
    assert "reward_funcs" in params
    fn = trl_adapter.reward_func(pool=FakePool(), fresh_shapes=0)
    # GRPOTrainer passes prompts, completions, completion_ids and the dataset columns as keywords.
    assert fn(prompts=["p"], completions=[fenced()], completion_ids=[[0]], problem=[RMS]) == pytest.approx(
        [0.8]
    )


def test_verl_calling_convention_matches_the_installed_verl():
    pytest.importorskip("verl")
    from verl.utils.reward_score import default_compute_score

    theirs = list(inspect.signature(default_compute_score).parameters)[:4]
    ours = list(inspect.signature(verl_adapter.compute_score).parameters)[:4]
    assert ours == theirs


def test_evaluator_narrows_to_matching_workloads():
    pool = FakePool()
    Evaluator(pool=pool, workloads=["4f1c"], fresh_shapes=0).evaluate([RMS], [fenced()])
    assert [w.uuid[:4] for w in pool.calls[0]["workloads"]] == ["4f1c"]
