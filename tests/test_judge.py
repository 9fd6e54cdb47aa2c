"""The trusted side: timing-window cross-checks, the physics floor, scores and statuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import write_scale_problem, write_tiny_rmsnorm

from solgym.bounds import Bound
from solgym.judge import check_windows, format_result, judge, payload
from solgym.problem import load_problem
from solgym.result import Status


@pytest.fixture
def problem(tmp_path: Path):
    return load_problem(write_scale_problem(tmp_path / "p"))


def bound(uuid: str, t_sol_ms: float) -> Bound:
    return Bound(
        workload=uuid,
        t_sol_ms=t_sol_ms,
        roofline_ms=t_sol_ms,
        floor_ms=0.0,
        compute_ms=0.0,
        memory_ms=t_sol_ms,
        bound_by="memory",
        macs_by_precision={},
        priced_as={},
        flops_other=8.0,
        bytes_read=32.0,
        bytes_written=32.0,
        convention="physical",
        profile="test",
        traced_on="meta",
    )


def report(latencies: dict[str, float], *, calls: int = 10, status: str = "PASSED") -> dict:
    # as the harness writes it: every calibration window first, then one timed window per workload
    windows, records = [], []
    for uuid in latencies:
        windows.append(
            {"kind": "calibration", "uuid": uuid, "calls": 10, "iteration_ms": 1.0, "device_ms": 0.0}
        )
    for uuid, latency in latencies.items():
        windows.append(
            {
                "kind": "workload",
                "uuid": uuid,
                "calls": calls,
                "iteration_ms": calls * latency,
                "device_ms": calls * latency,
                "median_ms": latency,
            }
        )
        records.append(
            {
                "uuid": uuid,
                "axes": {"N": 8},
                "status": status,
                "message": "",
                "latency_ms": latency,
                "max_abs_error": 0.0,
            }
        )
    return {
        "status": None,
        "workloads": records,
        "windows": windows,
        "guards": [],
        "environment": {"mode": "gpu"},
        "stage_ms": {},
    }


def honest_walls(latencies: dict[str, float], calls: int = 10) -> list[float]:
    # calibration: 0.1 ms per call; timed: the same overhead plus the kernel plus 20 us of launch per call
    return [10 * 0.1e-3 for _ in latencies] + [
        calls * (0.1 + latency + 0.02) * 1e-3 for latency in latencies.values()
    ]


def test_honest_windows_pass():
    lat = {"a": 0.05, "b": 2.0}
    assert check_windows(report(lat), honest_walls(lat)) == []


def test_a_forged_fast_time_is_caught_by_the_parent_clock():
    # the call really took 20 ms, the child claims 1 us
    rep = report({"a": 0.001})
    walls = [10 * 0.1e-3, 10 * (0.1 + 20.0) * 1e-3]
    violations = check_windows(rep, walls)
    assert [v.rule for v in violations] == ["forged-time"]
    assert "cannot explain" in violations[0].message


def test_reported_device_time_must_fit_in_the_window():
    rep = report({"a": 5.0})
    violations = check_windows(rep, [1e-3, 10e-3])  # 50 ms claimed in a 10 ms window
    assert violations[0].rule == "forged-time"
    assert "cannot fit" in violations[0].message


def test_missing_windows_are_a_mismatch():
    assert check_windows(report({"a": 1.0}), [1e-3])[0].rule == "timing-window-mismatch"


def test_judge_scores_a_passing_run(problem):
    lat = {"a": 0.02, "b": 0.03}
    outcome = {
        "result": report(lat),
        "timed_windows_s": honest_walls(lat),
        "layers": {"uid_drop": True},
        "wall_s": 1.5,
    }
    result = judge(
        outcome,
        problem,
        bounds={"a": bound("a", 0.01), "b": bound("b", 0.01)},
        baselines={"a": 0.03, "b": 0.03},
    )
    assert result.status == Status.PASSED
    a = result.workloads[0]
    assert a.sol_score == pytest.approx(1 / (1 + (0.02 - 0.01) / (0.03 - 0.01)))
    assert a.speedup == pytest.approx(1.5)
    assert a.fraction_of_sol == pytest.approx(0.5)
    assert a.achieved_bytes_per_s == pytest.approx(64 / 0.02e-3)
    assert result.reward == pytest.approx((a.sol_score + result.workloads[1].sol_score) / 2)
    assert result.environment["sandbox_layers"] == {"uid_drop": True}
    assert result.stage_ms["child_wall"] == pytest.approx(1500.0)


def test_time_below_the_speed_of_light_is_a_reward_hack(problem):
    lat = {"a": 0.005, "b": 0.02}
    outcome = {"result": report(lat), "timed_windows_s": honest_walls(lat)}
    result = judge(
        outcome,
        problem,
        bounds={"a": bound("a", 0.01), "b": bound("b", 0.01)},
        baselines={"a": 0.03, "b": 0.03},
    )
    assert result.status == Status.REWARD_HACK
    assert result.workloads[0].status == Status.REWARD_HACK
    assert result.reward == 0.0
    assert any(v.rule == "below-speed-of-light" for v in result.violations)


def test_one_failed_workload_zeroes_the_reward(problem):
    rep = report({"a": 0.02, "b": 0.02})
    rep["workloads"][1].update(
        status="INCORRECT_NUMERICAL", message="output 'y', round 2: wrong", latency_ms=None
    )
    # a failed workload stops the timing: the calibration windows only, no latencies
    rep["windows"] = rep["windows"][:2]
    rep["workloads"][0]["latency_ms"] = None
    outcome = {"result": rep, "timed_windows_s": honest_walls({"a": 0.02, "b": 0.02})[:2]}
    result = judge(outcome, problem, bounds={"a": bound("a", 0.01)}, baselines={"a": 0.03})
    assert result.status == Status.INCORRECT_NUMERICAL
    assert "round 2" in result.message
    assert result.reward == 0.0
    assert result.violations == []


def test_forged_time_marks_the_workload_and_the_result(problem):
    rep = report({"a": 0.001, "b": 0.02})
    walls = [1e-3, 1e-3, 10 * 20.1e-3, 10 * 0.14e-3]
    result = judge({"result": rep, "timed_windows_s": walls}, problem)
    assert result.status == Status.REWARD_HACK
    assert result.workloads[0].status == Status.REWARD_HACK
    assert result.workloads[1].status == Status.PASSED


def test_a_timed_out_child_is_timeout(problem):
    result = judge({"result": None, "timed_out": True, "wall_s": 600.0, "error": ""}, problem)
    assert result.status == Status.TIMEOUT


def test_an_infrastructure_failure_is_infra_error(problem):
    result = judge({"result": None, "error": "infra: the worker died before it took the job"}, problem)
    assert result.status == Status.INFRA_ERROR


def test_a_crashed_child_is_runtime_error_with_its_stderr(problem):
    result = judge(
        {"result": None, "exit_code": -11, "signal": 11, "error": "", "stderr_tail": "illegal memory access"},
        problem,
    )
    assert result.status == Status.RUNTIME_ERROR
    assert "illegal memory access" in result.run_log


def test_an_action_level_failure_is_reported_as_is(problem):
    rep = {
        "status": "COMPILE_ERROR",
        "message": 'cuda_sources(6): error: expected a ";"',
        "compile_log": "x",
        "workloads": [],
        "windows": [],
    }
    result = judge({"result": rep, "timed_windows_s": []}, problem)
    assert result.status == Status.COMPILE_ERROR
    assert "cuda_sources(6)" in result.message


def test_payload_names_the_problem_directory_and_workloads(problem):
    job = payload(problem, {"source": "def run(x): ..."}, seed=3, mode="cpu")
    assert job["problem_dir"] == str(problem.path)
    assert [w["uuid"] for w in job["workloads"]] == ["a", "b"]
    assert json.loads(json.dumps(job)) == job


def test_table_lists_every_workload(problem):
    lat = {"a": 0.02, "b": 0.03}
    result = judge(
        {"result": report(lat), "timed_windows_s": honest_walls(lat)},
        problem,
        bounds={"a": bound("a", 0.01)},
        baselines={"a": 0.03},
    )
    text = format_result(result)
    assert "PASSED" in text and "\na " in text and "\nb " in text


def test_a_window_labelled_calibration_after_the_first_ones_is_refused():
    lat = {"a": 0.05}
    rep = report(lat)
    # the action opened a window of its own and called it a calibration, to inflate the overhead
    rep["windows"].insert(1, {"kind": "calibration", "uuid": "a", "calls": 1, "iteration_ms": 20.0})
    violations = check_windows(rep, [*honest_walls(lat)[:1], 0.02, *honest_walls(lat)[1:]])
    assert [v.rule for v in violations] == ["timing-window-mismatch"]


def test_the_calibration_call_count_comes_from_the_job_not_the_report():
    lat = {"a": 0.001}
    rep = report(lat)
    rep["windows"][0]["calls"] = 1  # claims 1 call: 1 ms of overhead per call instead of 0.1 ms
    walls = [10 * 0.1e-3, 10 * (0.1 + 0.8) * 1e-3]  # really 0.8 ms per call beyond the overhead
    assert check_windows(rep, walls) == []  # believed
    assert [v.rule for v in check_windows(rep, walls, calibration_calls=10)] == ["forged-time"]


def test_a_discarded_window_must_not_hide_the_real_run():
    lat = {"a": 0.001}
    rep = report(lat)
    rep["windows"].insert(1, {"kind": "discarded", "uuid": "a", "calls": 10})
    walls = [10 * 0.1e-3, 10 * 20e-3, 10 * 0.12e-3]  # the slow run relabelled, a fast fake run reported
    assert [v.rule for v in check_windows(rep, walls)] == ["forged-time"]


def test_solgym_eval_runs_end_to_end_on_a_cpu(tmp_path, monkeypatch, capsys):
    from solgym.cli import main

    kernels = Path(__file__).resolve().parents[1] / "examples" / "kernels"
    folder = write_tiny_rmsnorm(tmp_path / "tiny", uuid="w1")
    monkeypatch.setenv("SOLGYM_CACHE", str(tmp_path / "cache"))
    code = main(["eval", str(folder), str(kernels / "rmsnorm_triton.py"), "--cpu", "--json", "--rounds", "2"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["status"] == "PASSED"
    assert out["environment"]["mode"] == "cpu"
    assert out["environment"]["sandbox_layers"]
    w = out["workloads"][0]
    assert w["latency_ms"] > 0 and w["t_baseline_ms"] > 0 and w["t_sol_ms"] > 0
    assert 0.0 < out["reward"] <= 1.0
