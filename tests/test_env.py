"""The Gymnasium envs: registration, spaces, episodes, hidden workloads, the vector env, and one real
evaluation through the CPU pool."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from conftest import REPO, RMSNORM, add_definition, add_workload, write_problem
from fake_pool import KERNEL, FakePool, RefusingPool, kernel
from gymnasium.utils.env_checker import check_env

import solgym
from solgym.env import STATUSES, KernelEnv, SourceText, draw_fresh, env_id, suite_env_id
from solgym.problem import load_problem
from solgym.result import Status
from solgym.suite import problems, register_suite
from solgym.vector import KernelVectorEnv

RMS = "solgym/rmsnorm_llama3_8b-v0"
SMALLEST = "4f1c2a7e"


def make(**kwargs) -> KernelEnv:
    kwargs.setdefault("pool", FakePool())
    kwargs.setdefault("profile", "h100_sxm")
    return gym.make(RMS, **kwargs).unwrapped


# ------------------------------------------------------------------------------------------ registration


def test_import_registers_an_id_per_problem_and_per_suite():
    assert solgym.__name__ == "solgym"
    for name in problems():
        spec = gym.spec(env_id(name))
        assert spec.nondeterministic is True
        assert spec.vector_entry_point == "solgym.vector:KernelVectorEnv"
    assert gym.spec(suite_env_id("core")).kwargs == {"suite": "core"}


def test_a_suite_registered_by_path_gets_ids(tmp_path):
    folder = tmp_path / "mysuite"
    write_problem(folder / "tiny_add", add_definition(), [add_workload(4, "w1")])
    register_suite(folder)
    assert gym.spec("solgym/tiny_add-v0").kwargs == {"problem": "tiny_add"}
    assert gym.spec("solgym/suite-mysuite-v0").kwargs == {"suite": "mysuite"}
    check_env(gym.make("solgym/tiny_add-v0", pool=RefusingPool(), profile="h100_sxm").unwrapped)


def test_suites_named_in_the_environment_are_registered_at_import(tmp_path):
    folder = tmp_path / "envsuite"
    write_problem(folder / "tiny_add", add_definition(name="env_tiny_add"), [add_workload(4, "w1")])
    code = "import gymnasium as gym, solgym; print(gym.spec('solgym/env_tiny_add-v0').kwargs)"
    env = {**os.environ, "SOLGYM_SUITES": str(folder), "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.stdout.strip() == "{'problem': 'env_tiny_add'}", done.stderr[-2000:]


def _smallest_visible(name: str) -> str:
    problem = load_problem(problems()[name].path)
    visible = [w for w in problem.workloads if not w.hidden] or list(problem.workloads)
    return min(visible, key=lambda w: sum(w.axes.values())).uuid


@pytest.mark.parametrize("name", sorted(problems()))
def test_check_env_passes_for_every_problem_id(name):
    # One shown workload keeps the bound derivation at reset short; the API checked is the same.
    env = gym.make(
        env_id(name),
        pool=RefusingPool(),
        profile="h100_sxm",
        max_turns=3,
        workloads=[_smallest_visible(name)],
    )
    check_env(env.unwrapped)
    env.close()


def test_check_env_passes_for_the_suite_id_and_random_actions_never_reach_the_pool():
    env = gym.make(suite_env_id("core"), pool=RefusingPool(), profile="h100_sxm", max_turns=3)
    check_env(env.unwrapped)
    env.close()


# ------------------------------------------------------------------------------------------ spaces


def test_action_space_accepts_real_source_and_rejects_oversize_and_non_str():
    space = SourceText()
    assert KERNEL in space
    assert "# ∑ über Zeilen\ndef run(x):\n    return x\n" in space
    assert "x" * (space.max_bytes + 1) not in space
    assert b"def run(x): pass" not in space
    assert "# ∑" not in gym.spaces.Text(max_length=100, charset="".join(chr(c) for c in range(32, 127)))


def test_reset_observation_states_the_problem_and_is_in_the_space():
    env = make()
    obs, info = env.reset(seed=0)
    assert obs in env.observation_space
    text = obs["text"]
    assert "def run(hidden_states, weight)  ->  output" in text
    assert "hidden_states: bfloat16[num_tokens, hidden_size=4096]" in text
    assert "variance = x.pow(2).mean(dim=-1, keepdim=True)" in text
    assert "NVIDIA H100" in text and "T_SOL" in text and "memory-bound" in text
    assert obs["t_sol_us"][0] > 0 and obs["status"] == 0 and obs["turn"] == 0
    assert info == {"problem": "rmsnorm_llama3_8b", "policy": "strict"}


def test_hidden_workloads_are_never_shown(tmp_path):
    folder = write_problem(
        tmp_path / "tiny_add",
        add_definition(),
        [add_workload(4, "shown-1"), add_workload(77, "secret-2", hidden=True)],
    )
    env = KernelEnv(load_problem(folder), pool=FakePool(), profile="h100_sxm", fresh_shapes=0)
    obs, _ = env.reset(seed=0)
    assert "shown-1" in obs["text"] and "secret-2"[:8] not in obs["text"] and "rows=77" not in obs["text"]
    source = "import triton\n\ndef run(x, y, alpha):\n    return x\n# fake: INCORRECT_NUMERICAL\n"
    obs, *_ = env.step(source)
    assert "hidden workload 1: INCORRECT_NUMERICAL, max abs error 0.5" in obs["text"]
    assert "rows=77" not in obs["text"]


# ------------------------------------------------------------------------------------------ stepping


def test_a_passing_kernel_is_paid_its_sol_score_and_gets_feedback():
    pool = FakePool()
    env = make(pool=pool, fresh_shapes=0)
    env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(kernel("PASSED", 4.0))
    # T_SOL 2 us, T_b 10 us, T 4 us: S = 1 / (1 + 2 / 8) = 0.8 on every workload.
    assert reward == pytest.approx(0.8)
    assert info["result"].status is Status.PASSED and info["score"] == pytest.approx(0.8)
    assert (terminated, truncated) == (False, True)
    assert obs["last_us"][0] == pytest.approx(4.0) and obs["last_score"][0] == pytest.approx(0.8)
    assert obs["frac_of_sol"][0] == pytest.approx(0.5) and obs["turn"] == 1
    assert obs["status"] == STATUSES.index(Status.PASSED) + 1
    assert "## Attempt 1: PASSED, SOL score 0.800" in obs["text"]
    assert "4.00 us (T_SOL 2.00 us, T_b 10.00 us), score 0.800, 2.50x the baseline" in obs["text"]
    assert len(pool.calls) == 1 and pool.calls[0]["policy"] == "strict"


def test_statically_rejected_code_gets_rule_and_line_without_the_pool():
    env = make(pool=RefusingPool())
    env.reset(seed=0)
    source = "import torch\n\ndef run(hidden_states, weight):\n    return torch.nn.functional.rms_norm(hidden_states, (4096,), weight)\n"
    obs, reward, terminated, truncated, info = env.step(source)
    assert info["result"].status is Status.REJECTED and reward == 0.0
    assert "action:4 substitution.torch-compute" in obs["text"]


def test_a_compile_error_shows_the_compiler_output():
    env = make(fresh_shapes=0)
    env.reset(seed=0)
    obs, *_ = env.step(kernel("COMPILE_ERROR"))
    assert "Compiler output:\nline 3: error: expected ')'" in obs["text"]


def test_refine_episode_truncates_at_max_turns():
    env = make(max_turns=3, fresh_shapes=0)
    env.reset(seed=0)
    flags = [env.step(kernel("INCORRECT_NUMERICAL"))[2:4] for _ in range(3)]
    assert flags == [(False, False), (False, False), (False, True)]


def test_reaching_the_target_score_terminates():
    env = make(max_turns=5, target_score=0.75, fresh_shapes=0)
    env.reset(seed=0)
    assert env.step(kernel("PASSED", 10.0))[2] is False  # S = 0.5 at the baseline
    assert env.step(kernel("PASSED", 4.0))[2] is True  # S = 0.8


def test_a_detected_hack_terminates_with_zero_reward():
    env = make(max_turns=5, fresh_shapes=0)
    env.reset(seed=0)
    _, reward, terminated, truncated, info = env.step(kernel("REWARD_HACK", 0.5))
    assert (reward, terminated, truncated, info["hack"]) == (0.0, True, False, True)


def test_improvement_reward_pays_only_gains_over_the_best_so_far():
    env = make(max_turns=4, improvement=True, fresh_shapes=0)
    env.reset(seed=0)
    rewards = [env.step(kernel("PASSED", t))[1] for t in (10.0, 20.0, 4.0)]
    assert rewards == pytest.approx([0.5, 0.0, 0.3])


def test_pool_failure_is_an_infra_error_not_an_exception():
    class Broken(FakePool):
        def submit(self, *a, **k):
            from concurrent.futures import Future

            f: Future = Future()
            f.set_exception(RuntimeError("worker lost"))
            return f

    env = make(pool=Broken(), fresh_shapes=0)
    env.reset(seed=0)
    _, reward, _, _, info = env.step(kernel())
    assert info["result"].status is Status.INFRA_ERROR and info["infra_error"] and reward == 0.0


# ------------------------------------------------------------------------------------------ hidden draws


def test_each_evaluation_adds_fresh_hidden_shapes_inside_the_ranges():
    pool = FakePool()
    env = make(pool=pool, fresh_shapes=2, max_turns=2)
    env.reset(seed=0)
    env.step(kernel())
    env.step(kernel())
    fresh = [[w for w in call["workloads"] if w.extra.get("fresh")] for call in pool.calls]
    assert [len(f) for f in fresh] == [2, 2]
    for w in fresh[0] + fresh[1]:
        assert w.hidden and 1 <= w.axes["num_tokens"] <= 32768
    assert [w.axes for w in fresh[0]] != [w.axes for w in fresh[1]]
    assert pool.calls[0]["seed"] != pool.calls[1]["seed"]


def test_fresh_draws_follow_the_secret_not_the_reset_seed():
    def draws(secret):
        pool = FakePool()
        env = make(pool=pool, fresh_shapes=3, secret=secret)
        env.reset(seed=0)
        env.step(kernel())
        return [w.axes for w in pool.calls[0]["workloads"] if w.extra.get("fresh")]

    assert draws("a") == draws("a")
    assert draws("a") != draws("b")


def test_fresh_shapes_are_unscored_so_the_reward_is_the_anchored_mean():
    env = make(fresh_shapes=2)
    env.reset(seed=0)
    assert env.step(kernel("PASSED", 4.0))[1] == pytest.approx(0.8)


def test_sample_workloads_draws_a_subset_of_the_anchored_ones():
    pool = FakePool()
    env = make(pool=pool, sample_workloads=2, fresh_shapes=0)
    env.reset(seed=0)
    env.step(kernel())
    uuids = [w.uuid for w in pool.calls[0]["workloads"]]
    assert len(uuids) == 2 and set(uuids) <= {w.uuid for w in load_problem(RMSNORM).workloads}


def test_draw_fresh_respects_constraints(tmp_path):
    definition = add_definition(axis_ranges={"rows": [1, 100]}, constraints=["rows % 2 == 0"])
    problem = load_problem(write_problem(tmp_path / "p", definition, [add_workload(4, "w1")]))
    drawn = draw_fresh(problem, 20, np.random.default_rng(0))
    assert len(drawn) == 20 and all(w.axes["rows"] % 2 == 0 and 1 <= w.axes["rows"] <= 100 for w in drawn)


# ------------------------------------------------------------------------------------------ suite envs


def test_suite_env_draws_a_problem_per_reset_and_honours_options(tmp_path):
    folder = tmp_path / "pairsuite"
    write_problem(folder / "a", add_definition(name="pair_a"), [add_workload(4, "w1")])
    write_problem(folder / "b", add_definition(name="pair_b"), [add_workload(4, "w1")])
    register_suite(folder)
    env = gym.make(suite_env_id("pairsuite"), pool=FakePool(), profile="h100_sxm").unwrapped
    seen = {env.reset(seed=s)[1]["problem"] for s in range(12)}
    assert seen == {"pair_a", "pair_b"}
    assert env.reset(options={"problem": "pair_b"})[1]["problem"] == "pair_b"
    with pytest.raises(ValueError, match="not in this env"):
        env.reset(options={"problem": "rmsnorm_llama3_8b"})


# ------------------------------------------------------------------------------------------ lifecycle


def test_render_ansi_returns_the_text_and_close_is_idempotent():
    env = gym.make(RMS, pool=FakePool(), profile="h100_sxm", render_mode="ansi")
    obs, _ = env.reset(seed=0)
    assert env.render() == obs["text"]
    env.close()
    env.close()


def test_the_env_process_never_initialises_cuda():
    import torch

    env = make(fresh_shapes=0)
    env.reset(seed=0)
    env.step(kernel())
    env.step("garbage(")
    assert not torch.cuda.is_initialized()


# ------------------------------------------------------------------------------------------ vector env


def test_make_vec_uses_the_batch_submitting_vector_env():
    venv = gym.make_vec(RMS, num_envs=3, pool=FakePool(), profile="h100_sxm", fresh_shapes=0)
    assert isinstance(venv, KernelVectorEnv)
    assert venv.metadata["autoreset_mode"] is gym.vector.AutoresetMode.NEXT_STEP
    obs, _ = venv.reset(seed=0)
    assert obs in venv.observation_space
    venv.close()


def test_vector_step_submits_the_whole_batch_before_waiting():
    pool = FakePool(hold=True)
    venv = KernelVectorEnv(3, problem="rmsnorm_llama3_8b", pool=pool, profile="h100_sxm", fresh_shapes=0)
    venv.reset(seed=0)
    import threading

    done = threading.Event()
    out = {}

    def run():
        out["step"] = venv.step([kernel("PASSED", 4.0), "nonsense(", kernel("PASSED", 10.0)])
        done.set()

    thread = threading.Thread(target=run)
    thread.start()
    for _ in range(200):
        if len(pool._pending) == 2:
            break
        done.wait(0.01)
    assert len(pool._pending) == 2 and not done.is_set()  # both valid actions in flight, none awaited yet
    pool.release()
    thread.join(5)
    obs, rewards, terminated, truncated, infos = out["step"]
    assert rewards == pytest.approx([0.8, 0.0, 0.5])
    assert list(truncated) == [True, True, True]
    assert [r.status for r in infos["result"]] == [Status.PASSED, Status.INVALID_ACTION, Status.PASSED]


def test_vector_env_autoresets_on_the_next_step():
    venv = KernelVectorEnv(
        2, problem="rmsnorm_llama3_8b", pool=FakePool(), profile="h100_sxm", fresh_shapes=0
    )
    venv.reset(seed=0)
    venv.step([kernel(), kernel()])
    obs, rewards, terminated, truncated, _ = venv.step([kernel(), kernel()])
    assert list(rewards) == [0.0, 0.0] and not truncated.any() and list(obs["turn"]) == [0, 0]


# ------------------------------------------------------------------------------------------ the real pool


def _real_pool_or_skip():
    from solgym import pool as pool_module

    if not hasattr(pool_module.EvalPool, "submit"):
        pytest.skip("EvalPool.submit is not available yet")
    return pool_module.EvalPool("cpu")


def test_the_shipped_triton_kernel_passes_through_the_cpu_pool(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    real = _real_pool_or_skip()
    try:
        env = KernelEnv("rmsnorm_llama3_8b", pool=real, workloads=[SMALLEST], fresh_shapes=0)
        env.reset(seed=0)
        obs, reward, terminated, truncated, info = env.step(KERNEL)
        result = info["result"]
        assert result.status is Status.PASSED, json.dumps(result.to_dict())[:2000]
        assert [w.uuid[:8] for w in result.workloads] == [SMALLEST]
        assert obs["last_us"][0] > 0
        assert 0.0 <= reward <= 1.0
    finally:
        real.close()
