"""Batch scoring (`solgym score`): candidates in, one results line each, resume, summary, traces."""

from __future__ import annotations

import json

import pytest
from conftest import RMSNORM
from fake_pool import FakePool, kernel

from solgym import cli, scoring
from solgym.problem import load_problem

PROBLEM = load_problem(RMSNORM)


def write_candidates(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def candidates(tmp_path):
    return write_candidates(
        tmp_path / "candidates.jsonl",
        [
            {"problem": PROBLEM.name, "candidate_id": "fast", "code": kernel("PASSED", 4.0)},
            {"problem": PROBLEM.name, "candidate_id": "slow", "code": kernel("PASSED", 20.0)},
            {"problem": PROBLEM.name, "candidate_id": "wrong", "code": kernel("INCORRECT_NUMERICAL")},
            {"problem": PROBLEM.name, "candidate_id": "garbage", "code": "def run(:"},
            {"problem": "no_such_problem", "candidate_id": "lost", "code": kernel()},
        ],
    )


def test_every_candidate_gets_one_results_line(tmp_path):
    out = tmp_path / "results.jsonl"
    pool = FakePool()
    n = scoring.score_file({PROBLEM.name: PROBLEM}, candidates(tmp_path), out, pool=pool)
    rows = {r["candidate_id"]: r for r in scoring.read_results(out)}
    assert n == 5 and set(rows) == {"fast", "slow", "wrong", "garbage", "lost"}
    assert rows["fast"]["sol_score"] == pytest.approx(0.8) and rows["fast"]["fast_1"] == 1.0
    assert rows["slow"]["correct"] and rows["slow"]["fast_1"] == 0.0
    assert rows["wrong"]["status"] == "INCORRECT_NUMERICAL" and rows["wrong"]["sol_score"] == 0.0
    assert rows["garbage"]["status"] == "INVALID_ACTION"
    assert rows["lost"]["status"] is None and "unknown problem" in rows["lost"]["error"]
    assert len(pool.calls) == 3  # garbage and the unknown problem never reach the pool


def test_a_rerun_skips_candidates_already_scored(tmp_path):
    out = tmp_path / "results.jsonl"
    path = candidates(tmp_path)
    scoring.score_file({PROBLEM.name: PROBLEM}, path, out, pool=FakePool())
    out.write_text(out.read_text() + '{"candidate_id": "trunc')  # an interrupted write
    pool = FakePool()
    assert scoring.score_file({PROBLEM.name: PROBLEM}, path, out, pool=pool) == 0
    assert pool.calls == []


def test_resume_scores_only_the_rest(tmp_path):
    out = tmp_path / "results.jsonl"
    path = candidates(tmp_path)
    lines = path.read_text().splitlines()
    write_candidates(tmp_path / "first.jsonl", [json.loads(x) for x in lines[:2]])
    scoring.score_file({PROBLEM.name: PROBLEM}, tmp_path / "first.jsonl", out, pool=FakePool())
    pool = FakePool()
    assert scoring.score_file({PROBLEM.name: PROBLEM}, path, out, pool=pool) == 3
    assert sorted(r["candidate_id"] for r in scoring.read_results(out)) == [
        "fast",
        "garbage",
        "lost",
        "slow",
        "wrong",
    ]


def test_candidates_without_id_get_a_stable_content_id(tmp_path):
    path = write_candidates(
        tmp_path / "c.jsonl", [{"problem": "p", "code": "x"}, {"problem": "p", "code": "y"}]
    )
    first = [c.candidate_id for c in scoring.read_candidates(path)]
    assert first == [c.candidate_id for c in scoring.read_candidates(path)] and first[0] != first[1]


def test_malformed_candidate_lines_name_the_line(tmp_path):
    path = write_candidates(tmp_path / "c.jsonl", [{"problem": "p", "code": "x"}, {"problem": "p"}])
    with pytest.raises(ValueError, match=r"c\.jsonl:2: the candidate has neither"):
        list(scoring.read_candidates(path))


def test_summary_by_problem_and_overall(tmp_path):
    out = tmp_path / "results.jsonl"
    scoring.score_file({PROBLEM.name: PROBLEM}, candidates(tmp_path), out, pool=FakePool())
    summary = scoring.summarize(scoring.read_results(out))
    rms = summary["by_problem"][PROBLEM.name]
    assert rms["candidates"] == 4 and rms["correct_pct"] == pytest.approx(50.0)
    # scores 0.8, 1/(1+18/8), 0, 0
    assert rms["mean_sol_score"] == pytest.approx((0.8 + 1 / (1 + 18 / 8)) / 4)
    assert rms["fast_1"] == pytest.approx(0.25)
    assert rms["geomean_speedup"] == pytest.approx((2.5 * 0.5) ** 0.5)
    assert summary["overall"]["skipped"] == 1
    table = scoring.format_summary(summary)
    assert table.splitlines()[-1].startswith("overall")


def test_trace_export_maps_statuses_for_sol_execbench(tmp_path):
    out, traces = tmp_path / "results.jsonl", tmp_path / "traces.jsonl"
    scoring.score_file({PROBLEM.name: PROBLEM}, candidates(tmp_path), out, pool=FakePool())
    count = scoring.export_traces(out, traces)
    records = [json.loads(x) for x in traces.read_text().splitlines()]
    assert count == len(records) == 3 * 6 + 1  # three ran on six workloads; garbage as one record
    garbage = [r for r in records if r["solution"] == "garbage"]
    assert garbage[0]["evaluation"]["status"] == "COMPILE_ERROR"
    assert "solgym status INVALID_ACTION" in garbage[0]["evaluation"]["log"]


def test_problem_lookup_accepts_a_problem_dir_a_suite_folder_or_a_suite_name(tmp_path):
    assert scoring.problem_lookup(RMSNORM)(PROBLEM.name).name == PROBLEM.name
    assert scoring.problem_lookup(RMSNORM.parent)(PROBLEM.name).name == PROBLEM.name
    assert scoring.problem_lookup("core")(PROBLEM.name).name == PROBLEM.name
    with pytest.raises(KeyError):
        scoring.problem_lookup("core")("nope")
    with pytest.raises(ValueError, match="not a problem directory"):
        scoring.problem_lookup(str(tmp_path / "missing"))


def test_cli_score_prints_a_summary_and_writes_traces(tmp_path, monkeypatch, capsys):
    import solgym.pool

    class Pool(FakePool):
        def __init__(self, devices="auto"):
            super().__init__()

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return None

    monkeypatch.setattr(solgym.pool, "EvalPool", Pool)
    out, traces = tmp_path / "r.jsonl", tmp_path / "t.jsonl"
    code = cli.main(
        ["score", str(RMSNORM), str(candidates(tmp_path)), "-o", str(out), "--trace", str(traces), "--json"]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["overall"]["candidates"] == 4 and traces.is_file()


def test_workloads_narrow_every_problem_to_matching_uuids(tmp_path):
    pool = FakePool()
    path = write_candidates(tmp_path / "c.jsonl", [{"problem": PROBLEM.name, "code": kernel()}])
    scoring.score_file(
        {PROBLEM.name: PROBLEM}, path, tmp_path / "r.jsonl", pool=pool, workloads=["4f1c", "8b3e"]
    )
    assert [w.uuid[:4] for w in pool.calls[0]["workloads"]] == ["4f1c", "8b3e"]
