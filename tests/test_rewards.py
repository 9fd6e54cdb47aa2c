"""Reward functions (pure, on times and EvalResults) and the anchors file: format, loading, sentinels."""

from __future__ import annotations

import json
import math

import pytest

from solgym import rewards
from solgym.baseline import TIMING_PROTOCOL
from solgym.result import EvalResult, Status, WorkloadResult
from solgym.rewards import Anchor, AnchorDriftError, Shaping


def wl(
    latency_us: float | None,
    *,
    t_sol_us: float = 2.0,
    t_b_us: float | None = 10.0,
    status=Status.PASSED,
    hidden=False,
):
    return WorkloadResult(
        uuid=f"w{latency_us}",
        axes={},
        status=status,
        latency_ms=None if latency_us is None else latency_us / 1000,
        t_sol_ms=t_sol_us / 1000,
        t_baseline_ms=None if t_b_us is None else t_b_us / 1000,
        hidden=hidden,
    )


def result(*workloads: WorkloadResult, status=Status.PASSED) -> EvalResult:
    return EvalResult(problem="p", status=status, workloads=list(workloads))


# ------------------------------------------------------------------------------------------ per workload


def test_sol_is_half_at_the_baseline_and_one_at_the_speed_of_light():
    assert rewards.sol(10.0, 2.0, 10.0) == pytest.approx(0.5)
    assert rewards.sol(2.0, 2.0, 10.0) == pytest.approx(1.0)
    assert rewards.sol(4.0, 2.0, 10.0) == pytest.approx(0.8)


def test_sol_clamps_slow_kernels_toward_zero_and_never_below():
    assert 0.0 <= rewards.sol(1e6, 2.0, 10.0) < 1e-4


def test_sol_pays_nothing_below_the_physics_floor():
    assert rewards.sol(1.7, 2.0, 10.0) == 0.0  # below 0.9 x T_SOL
    assert rewards.sol(1.9, 2.0, 10.0) == 1.0  # within the margin: clamped to 1


def test_sol_handles_a_degenerate_baseline():
    # T_b <= T_SOL: the gap is floored, so matching the baseline still scores 0.5.
    assert rewards.sol(10.0, 12.0, 10.0, margin=0.5) == pytest.approx(0.5)


def test_speedup_log_speedup_and_fast_p():
    assert rewards.speedup(5.0, 10.0) == 2.0
    assert rewards.log_speedup(5.0, 10.0) == pytest.approx(math.log(2))
    assert rewards.fast_p(5.0, 10.0, p=1.0) == 1.0
    assert rewards.fast_p(10.0, 10.0, p=1.0) == 0.0  # equal is not faster
    assert rewards.fast_p(5.0, 10.0, p=2.0) == 0.0


# ------------------------------------------------------------------------------------------ aggregation


def test_aggregate_mean_geomean_and_failure():
    assert rewards.aggregate([0.5, 1.0], all_passed=True) == pytest.approx(0.75)
    assert rewards.aggregate([0.5, 1.0], all_passed=True, how="geomean") == pytest.approx(math.sqrt(0.5))
    assert rewards.aggregate([0.5, 1.0], all_passed=False) == 0.0
    assert rewards.aggregate([], all_passed=True) == 0.0
    assert rewards.aggregate([0.0, 1.0], all_passed=True, how="geomean") == 0.0
    with pytest.raises(ValueError, match="unknown aggregation"):
        rewards.aggregate([1.0], all_passed=True, how="median")


def test_sol_reward_averages_scored_workloads_and_skips_fresh_ones():
    r = result(wl(4.0), wl(10.0), wl(3.0, t_b_us=None, hidden=True))
    assert rewards.sol_reward(r) == pytest.approx((0.8 + 0.5) / 2)


def test_any_failed_workload_makes_every_reward_zero():
    r = result(wl(4.0), wl(None, status=Status.INCORRECT_NUMERICAL), status=Status.INCORRECT_NUMERICAL)
    assert rewards.sol_reward(r) == 0.0
    assert rewards.speedup_reward(r) == 0.0
    assert rewards.log_speedup_reward(r, failure=-1.0) == -1.0
    assert rewards.fast_p_reward(r) == 0.0


def test_a_fresh_shape_failing_correctness_zeroes_the_reward():
    r = result(wl(4.0), wl(None, t_b_us=None, status=Status.INCORRECT_SHAPE, hidden=True))
    assert rewards.sol_reward(r) == 0.0


def test_a_time_below_the_floor_is_a_hack_even_if_marked_passed():
    r = result(wl(4.0), wl(1.0))
    assert rewards.hack_detected(r)
    assert rewards.sol_reward(r) == 0.0


def test_speedup_reward_is_the_geometric_mean_speedup():
    assert rewards.speedup_reward(result(wl(5.0), wl(2.5))) == pytest.approx(math.sqrt(2 * 4))
    assert rewards.log_speedup_reward(result(wl(5.0), wl(2.5))) == pytest.approx(
        (math.log(2) + math.log(4)) / 2
    )
    assert rewards.fast_p_reward(result(wl(5.0), wl(2.5)), p=2.5) == 1.0


def test_shaped_reward_components():
    shaping = Shaping(compiles=0.1, correct=0.3, speed=0.6)
    assert rewards.shaped_reward(result(wl(4.0)), shaping) == pytest.approx(0.1 + 0.3 + 0.6 * 0.8)
    wrong = result(wl(None, status=Status.INCORRECT_NUMERICAL), status=Status.INCORRECT_NUMERICAL)
    assert rewards.shaped_reward(wrong, shaping) == pytest.approx(0.1)
    assert rewards.shaped_reward(result(status=Status.COMPILE_ERROR), shaping) == 0.0
    hack = Shaping(hack=-1.0)
    assert rewards.shaped_reward(result(status=Status.REWARD_HACK), hack) == -1.0
    assert rewards.shaped_reward(result(status=Status.REJECTED), hack) == -1.0
    assert (
        rewards.shaped_reward(result(status=Status.REJECTED), Shaping(hack=-1.0, rejected_is_hack=False))
        == 0.0
    )


def test_improvement_sums_to_the_best_reward_reached():
    best, total = 0.0, 0.0
    for value in (0.2, 0.5, 0.3, 0.7):
        total += rewards.improvement(best, value)
        best = max(best, value)
    assert total == pytest.approx(0.7)


def test_reward_function_by_name_or_callable():
    assert rewards.reward_function("speedup") is rewards.speedup_reward
    fn = lambda r: 1.0  # noqa: E731
    assert rewards.reward_function(fn) is fn
    with pytest.raises(ValueError, match="unknown reward"):
        rewards.reward_function("nope")


# ------------------------------------------------------------------------------------------ anchors


def anchor(problem="p", uuid="u1", t_b=0.010, **kw) -> Anchor:
    return Anchor(
        problem=problem,
        workload_uuid=uuid,
        axes={"n": 4},
        t_sol_ms=0.002,
        convention="physical",
        t_baseline_ms=t_b,
        baseline_method="eager",
        gpu="NVIDIA H100 80GB HBM3",
        **kw,
    )


def test_anchor_lines_round_trip_with_unknown_fields_kept():
    line = {**anchor().to_dict(), "source": "measured"}
    back = Anchor.from_dict(line)
    assert back == Anchor.from_dict(back.to_dict()) and back.extra == {"source": "measured"}
    assert back.to_dict()["source"] == "measured"
    assert "t_extent_ms" not in back.to_dict()  # a line measured without the extent stays as it was
    ext = Anchor.from_dict({**line, "t_extent_ms": 0.004})
    assert ext.t_extent_ms == 0.004 and Anchor.from_dict(ext.to_dict()) == ext


def test_anchor_validation_names_the_field():
    with pytest.raises(ValueError, match="t_baseline_ms must be a finite time"):
        Anchor.from_dict({**anchor().to_dict(), "t_baseline_ms": float("nan")}, "f:3")
    with pytest.raises(ValueError, match="f:3: field 'gpu' is missing"):
        Anchor.from_dict({k: v for k, v in anchor().to_dict().items() if k != "gpu"}, "f:3")
    with pytest.raises(ValueError, match="baseline_method"):
        Anchor.from_dict({**anchor().to_dict(), "baseline_method": "guess"})
    with pytest.raises(ValueError, match="t_extent_ms must be a finite time"):
        Anchor.from_dict({**anchor().to_dict(), "t_extent_ms": -1.0})


def test_write_then_load_by_gpu_slug(tmp_path):
    path = rewards.anchors_file(tmp_path, "h100_sxm", "core")
    rewards.write_anchors(path, [anchor(uuid="u2"), anchor(uuid="u1")])
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert [x["workload_uuid"] for x in lines] == ["u1", "u2"]  # sorted, one line per workload
    loaded = rewards.load_anchors("h100_sxm", roots=[tmp_path])
    assert set(loaded) == {("p", "u1"), ("p", "u2")}
    assert rewards.load_anchors("b200", roots=[tmp_path]) == {}


def test_shipped_anchors_win_over_the_cache(tmp_path):
    shipped, cache = tmp_path / "rewards", tmp_path / "cache"
    rewards.write_anchors(rewards.anchors_file(shipped, "h100_sxm", "core"), [anchor(t_b=0.010)])
    rewards.write_anchors(
        rewards.anchors_file(cache, "h100_sxm", "core"), [anchor(t_b=0.020), anchor(uuid="u9")]
    )
    loaded = rewards.load_anchors("h100_sxm", roots=[shipped, cache])
    assert loaded[("p", "u1")].t_baseline_ms == 0.010
    assert ("p", "u9") in loaded


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SOLGYM_CACHE", str(tmp_path))
    assert rewards.cache_dir() == tmp_path
    assert rewards.anchor_roots()[-1] == tmp_path / "anchors"


def test_pick_sentinels_is_deterministic_and_spread():
    pool = [anchor(uuid=f"u{i:02d}") for i in range(10)]
    picked = rewards.pick_sentinels(list(reversed(pool)), 3)
    assert [a.workload_uuid for a in picked] == ["u00", "u04", "u09"]
    assert rewards.pick_sentinels(pool, 3) == picked


def test_a_rewrite_needs_sentinels_and_refuses_drift_over_three_percent(tmp_path):
    path = rewards.anchors_file(tmp_path, "h100_sxm", "core")
    rewards.write_anchors(path, [anchor(uuid="u1", t_b=0.010), anchor(uuid="u2", t_b=0.020)])
    with pytest.raises(ValueError, match="re-time its sentinels"):
        rewards.write_anchors(path, [anchor(uuid="u3")])
    with pytest.raises(AnchorDriftError, match=r"p/u1: 0\.01 -> 0\.0104 ms \(\+4\.0%\)"):
        rewards.write_anchors(path, [anchor(uuid="u3")], remeasured_sentinels={("p", "u1"): 0.0104})
    assert "u3" not in path.read_text()  # nothing written
    rewards.write_anchors(
        path, [anchor(uuid="u3")], remeasured_sentinels={("p", "u1"): 0.0102, ("p", "u2"): 0.0197}
    )
    assert {a.workload_uuid for a in rewards.read_anchors(path)} == {"u1", "u2", "u3"}


def test_anchors_of_another_timing_protocol_are_read_but_never_used(tmp_path):
    path = rewards.anchors_file(tmp_path, "h100_sxm", "core")
    unversioned = {k: v for k, v in anchor(uuid="first").to_dict().items() if k != "timing_protocol"}
    lines = [
        unversioned,
        anchor(uuid="now").to_dict(),
        anchor(uuid="next", timing_protocol=TIMING_PROTOCOL + 1).to_dict(),
    ]
    path.parent.mkdir(parents=True)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert {a.workload_uuid: a.timing_protocol for a in rewards.read_anchors(path)} == {
        "first": 1,  # a line without the field was measured under the first protocol
        "now": TIMING_PROTOCOL,
        "next": TIMING_PROTOCOL + 1,
    }
    assert set(rewards.load_anchors("h100_sxm", roots=[tmp_path])) == {
        ("p", u) for u in ("first", "now") if TIMING_PROTOCOL == 1 or u == "now"
    }
    with pytest.raises(ValueError, match="baseline_passes must be an integer >= 1"):
        Anchor.from_dict({**unversioned, "baseline_passes": 0})
    with pytest.raises(ValueError, match="baseline_spread must be a finite number"):
        Anchor.from_dict({**unversioned, "baseline_spread": -0.1})
    with pytest.raises(ValueError, match="timing_protocol must be an integer"):
        Anchor.from_dict({**unversioned, "timing_protocol": "2"})


def test_a_new_protocol_replaces_old_lines_without_comparing_sentinels(tmp_path):
    path = rewards.anchors_file(tmp_path, "h100_sxm", "core")
    rewards.write_anchors(path, [anchor(uuid="u1", t_b=0.010, timing_protocol=TIMING_PROTOCOL + 1)])
    rewards.write_anchors(path, [anchor(uuid="u1", t_b=0.008)])  # no sentinels needed: other scale
    (only,) = rewards.read_anchors(path)
    assert only.t_baseline_ms == 0.008 and only.timing_protocol == TIMING_PROTOCOL


def test_sentinel_drift_reports_only_moves_beyond_the_tolerance():
    existing = {("p", "a"): anchor(uuid="a", t_b=1.0), ("p", "b"): anchor(uuid="b", t_b=1.0)}
    drifted = rewards.sentinel_drift(existing, {("p", "a"): 1.029, ("p", "b"): 0.96})
    assert [(d.workload_uuid, round(d.relative, 3)) for d in drifted] == [("b", -0.04)]


def test_read_anchors_names_the_bad_line(tmp_path):
    path = tmp_path / "core.jsonl"
    path.write_text(json.dumps(anchor().to_dict()) + "\n{oops\n")
    with pytest.raises(ValueError, match=r"core\.jsonl:2: invalid JSON"):
        rewards.read_anchors(path)


# ------------------------------------------------------------------------------------------ solgym anchors


class _NoPool:
    def __init__(self, devices="auto", **kwargs):
        self.devices = devices

    def submit_job(self, *args, **kwargs):
        raise AssertionError("measure is replaced in these tests")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None


def _fake_measure(t_b_by_uuid):
    from solgym import baseline

    def measure(problem, workloads, *, device, run_job, passes=1, **kwargs):
        return [
            baseline.Baseline(
                problem=problem.name,
                workload_uuid=w.uuid,
                axes=dict(w.axes),
                t_baseline_ms=t_b_by_uuid(w),
                baseline_method="eager",
                eager_ms=t_b_by_uuid(w),
                compile_ms=None,
                device="cpu",
                mode="cpu",
                torch="2.x",
                triton="3.x",
                timing_method="perf_counter",
                date="2026-01-01",
                passes=passes,
                spread=0.01 * (passes - 1),
            )
            for w in workloads
        ]

    return measure


@pytest.fixture
def anchors_cli(monkeypatch, tmp_path):
    import solgym.pool
    from solgym import baseline

    monkeypatch.setenv("SOLGYM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(solgym.pool, "EvalPool", _NoPool)
    monkeypatch.setattr(baseline, "store", lambda *a, **k: None)

    def run(t_b, *extra):
        from solgym import cli

        monkeypatch.setattr(baseline, "measure", _fake_measure(t_b))
        return cli.main(
            ["anchors", "core", "--problem", "rmsnorm_llama3_8b", "--out", str(tmp_path / "out"), *extra]
        )

    return run


def test_anchors_command_writes_one_line_per_workload_with_provenance(anchors_cli, tmp_path):
    assert anchors_cli(lambda w: 0.5 + w.axes["num_tokens"] / 1000) == 0
    files = list((tmp_path / "out").glob("*/core.jsonl"))
    assert len(files) == 1
    lines = [json.loads(x) for x in files[0].read_text().splitlines()]
    assert len(lines) == 6 and {x["problem"] for x in lines} == {"rmsnorm_llama3_8b"}
    first = next(x for x in lines if x["axes"] == {"num_tokens": 1})
    assert first["t_baseline_ms"] == pytest.approx(0.501) and first["baseline_method"] == "eager"
    assert first["t_sol_ms"] > 0 and first["convention"] == "physical" and first["date"] == "2026-01-01"
    assert (first["baseline_passes"], first["baseline_spread"]) == (3, 0.02)  # three passes by default


def test_anchors_command_refuses_when_sentinels_drift(anchors_cli, tmp_path, capsys):
    assert anchors_cli(lambda w: 1.0) == 0
    before = next((tmp_path / "out").glob("*/core.jsonl")).read_text()
    assert anchors_cli(lambda w: 1.02) == 0  # within 3%: rewritten
    assert anchors_cli(lambda w: 1.2) == 2  # every sentinel moved ~18%: refused
    assert "refusing to write" in capsys.readouterr().err
    assert next((tmp_path / "out").glob("*/core.jsonl")).read_text() != before  # the 1.02 run was written


def test_anchors_command_never_ships_cpu_baselines(anchors_cli, capsys):
    from solgym import cli

    assert cli.main(["anchors", "core", "--ship"]) == 2
    assert "CPU baselines are cached, never shipped" in capsys.readouterr().err
