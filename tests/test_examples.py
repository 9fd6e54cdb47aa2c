"""The examples run as they are: each is started as a script, the way the README shows, on the CPU pool
with the smallest workload and the Triton interpreter."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((REPO / "examples").glob("*.py"))
SMALL = ["--workloads", "4f1c2a7e", "--fresh-shapes", "0"]


def run_example(name: str, *args: str, timeout: float = 300) -> str:
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, str(REPO / "examples" / name), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def needs_pool():
    from solgym.pool import EvalPool

    if not hasattr(EvalPool, "submit"):
        pytest.skip("EvalPool.submit is not available yet")


def test_every_example_is_listed_here():
    assert {p.name for p in EXAMPLES} == {
        "rollout.py",
        "agent_loop.py",
        "trl_grpo.py",
        "verl_reward.py",
        "reward_model_eval.py",
    }


def test_every_example_parses_its_arguments():
    # One interpreter for all five: each example's --help exits before any evaluation.
    script = (
        "import runpy, sys\n"
        "for path in sys.argv[1:]:\n"
        "    sys.argv = [path, '--help']\n"
        "    try:\n"
        "        runpy.run_path(path, run_name='__main__')\n"
        "    except SystemExit as e:\n"
        "        assert e.code == 0, path\n"
        "    print('OK', path)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", script, *map(str, EXAMPLES)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("usage:") == len(EXAMPLES) and done.stdout.count("OK ") == len(EXAMPLES)


def test_rollout_prints_reward_and_feedback():
    needs_pool()
    out = run_example("rollout.py", *SMALL)
    assert "status PASSED" in out and "## Attempt 1: PASSED" in out


def test_agent_loop_offline_recovers_from_a_bad_first_attempt():
    needs_pool()
    out = run_example("agent_loop.py", "--offline", "--turns", "3", *SMALL)
    assert "turn 1: INVALID_ACTION" in out and "turn 2: PASSED" in out


def test_trl_demo_scores_canned_completions():
    needs_pool()
    out = run_example("trl_grpo.py", *SMALL)
    assert "solgym_sol: [" in out


def test_verl_demo_prints_scores():
    needs_pool()
    out = run_example("verl_reward.py")
    assert "compute_score:" in out and "INVALID_ACTION" in out


def test_reward_model_eval_compares_predicted_and_measured():
    needs_pool()
    out = run_example("reward_model_eval.py", "--devices", "cpu", "--workloads", "4f1c2a7e")
    assert "pairwise ranking accuracy" in out and "overall" in out
