"""GPU lane (`pytest -m gpu`) of the envs: make a shipped problem's env, step it with the example kernel on
the real pool, read a reward and feedback; a batch through the vector env; the env process never touches
CUDA (GPUs are found through NVML only)."""

from __future__ import annotations

import gymnasium as gym
import pytest

import solgym  # noqa: F401
from solgym.pool import EvalPool, visible_gpus
from solgym.result import Status

pytestmark = pytest.mark.gpu

if not visible_gpus():
    pytest.skip("needs a CUDA GPU (NVML sees none)", allow_module_level=True)

RMS = "solgym/rmsnorm_llama3_8b-v0"


@pytest.fixture(scope="module")
def pool():
    with EvalPool("auto") as p:
        yield p


@pytest.fixture(scope="module")
def example_kernel():
    from solgym.env import problem_by_name

    return (problem_by_name("rmsnorm_llama3_8b").path / "solutions" / "triton_rmsnorm.py").read_text()


def test_the_example_kernel_earns_a_sol_reward_with_feedback(pool, example_kernel):
    env = gym.make(RMS, pool=pool)
    obs, _ = env.reset(seed=0)
    assert obs["t_sol_us"][0] > 0
    obs, reward, terminated, truncated, info = env.step(example_kernel)
    result = info["result"]
    assert result.status is Status.PASSED, result.message
    assert 0.0 < reward <= 1.0 and reward == pytest.approx(info["score"])
    assert any(w.hidden and w.uuid.startswith("fresh-") for w in result.workloads)
    assert all(w.t_baseline_ms is None for w in result.workloads if w.uuid.startswith("fresh-"))
    assert obs["last_us"][0] > 0 and 0 < obs["frac_of_sol"][0] <= 1.2
    assert "GB/s" in obs["text"] and "of DRAM" in obs["text"]
    assert result.environment.get("mode") == "gpu"
    env.close()


def test_a_batch_runs_through_the_vector_env(pool, example_kernel):
    venv = gym.make_vec(RMS, num_envs=4, pool=pool, fresh_shapes=0, workloads=["c2a9f4e3"])
    venv.reset(seed=0)
    _, rewards, _, truncated, infos = venv.step([example_kernel, "def run(:", example_kernel, example_kernel])
    statuses = [r.status for r in infos["result"]]
    assert statuses == [Status.PASSED, Status.INVALID_ACTION, Status.PASSED, Status.PASSED]
    assert all(rewards[i] > 0 for i in (0, 2, 3)) and rewards[1] == 0.0 and truncated.all()
    venv.close()


def test_the_env_process_never_initialised_cuda():
    import torch

    assert not torch.cuda.is_initialized()
