"""benchmarks/tb_repeat.py and benchmarks/tb_drift.py --table: how T_b repeatability is read off runs;
benchmarks/ship_anchors.py: how a run's anchors reach the shipped files."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


tb_repeat = _load("tb_repeat")
tb_drift = _load("tb_drift")
ship_anchors = _load("ship_anchors")


def _run(folder: Path, records: dict[str, list[dict[str, float]]]) -> Path:
    (folder / "work" / "p").mkdir(parents=True)
    lines = [
        {"problem": "p", "workload_uuid": uuid, "axes": {"n": i}, "pass_ms": passes, "spread": 0.0}
        for i, (uuid, passes) in enumerate(records.items())
    ]
    (folder / "work" / "p" / "validity.json").write_text(json.dumps({"gpu": "x", "workloads": lines}))
    return folder


def test_tb_repeat_compares_the_fastest_pass_and_the_first_pass_by_band(tmp_path):
    a = _run(
        tmp_path / "a",
        {
            "fast": [{"eager": 0.010, "compile": 0.008}, {"eager": 0.011, "compile": 0.009}],
            "launch-bound": [{"eager": 0.20, "compile": 0.18}, {"eager": 0.21, "compile": 0.17}],
            "only-in-a": [{"eager": 1.0}],
        },
    )
    b = _run(
        tmp_path / "b",
        {
            "fast": [{"eager": 0.010, "compile": 0.0082}, {"eager": 0.010, "compile": 0.0081}],
            "launch-bound": [{"eager": 0.40, "compile": 0.36}, {"eager": 0.45, "compile": 0.34}],
        },
    )
    result = tb_repeat.compare(tb_repeat.load(a), tb_repeat.load(b))
    assert result["workloads"] == 2
    best = result["best_of_passes"]  # T_b: the fastest time of any method and pass
    assert (best["min"], best["max"]) == (pytest.approx(0.0081 / 0.008, abs=1e-3), 2.0)
    assert best["within_5%"] == 1
    first = result["first_pass"]
    assert first["max"] == pytest.approx(0.36 / 0.18, abs=1e-3)
    assert set(result["best_of_passes_by_band"]) == {"0.0-0.05 ms", "0.05-0.5 ms"}
    assert result["best_of_passes_by_method"]["eager"]["max"] == pytest.approx(0.40 / 0.20, abs=1e-3)
    assert result["worst"][0]["uuid"] == "launch-b"


def test_tb_drift_table_summarises_extent_busy_and_host_speed(tmp_path, capsys):
    rows = []
    for i in range(40):
        slow = i >= 20  # the host slows down half-way: launch gaps widen, the GPU's work does not change
        rows.append(
            {
                "round": i,
                "t_s": float(i),
                "case": "ref:0:eager",
                "extent_ms": (0.4 if slow else 0.2) + i * 1e-5,
                "busy_ms": 0.027,
                "host_launch_ms": 0.3,
                "kernels_per_call": 6.0,
                "sm_clock_min": 1980.0,
                "sm_clock_max": 1980.0,
                "host_loop_us": (2000.0 if slow else 1000.0) + i,
            }
        )
    path = tmp_path / "drift.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    tb_drift.table(path)
    line = [x for x in capsys.readouterr().out.splitlines() if x.startswith("| ref:0:eager")][0]
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[1] == "40"
    assert cells[3] == "27.0 / 27.0 / 27.0"  # busy time: steady
    assert float(cells[5]) > 0.9  # extent follows the host
    assert cells[6] == "1980"


def _anchor_line(problem: str, uuid: str, t_b: float, protocol: int) -> dict:
    return {
        "problem": problem,
        "workload_uuid": uuid,
        "axes": {},
        "t_sol_ms": 0.001,
        "t_baseline_ms": t_b,
        "baseline_method": "eager",
        "gpu": "NVIDIA H100 80GB HBM3",
        "timing_protocol": protocol,
    }


def _ship(run: Path, rewards_root: Path, monkeypatch, lines: dict[str, list[dict]]) -> None:
    for problem, rows in lines.items():
        folder = run / "work" / problem / "h100-sxm"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "core.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    monkeypatch.setattr(sys, "argv", ["ship_anchors", str(run), "--rewards", str(rewards_root)])
    ship_anchors.main()


def test_ship_anchors_replaces_another_protocols_lines_and_checks_its_own(tmp_path, monkeypatch, capsys):
    from solgym import rewards
    from solgym.baseline import TIMING_PROTOCOL as NOW

    shipped = tmp_path / "rewards" / "h100-sxm" / "core.jsonl"
    shipped.parent.mkdir(parents=True)
    old = [_anchor_line("p", "u1", 0.5, NOW - 1), _anchor_line("gone", "u9", 0.5, NOW - 1)]
    shipped.write_text("".join(json.dumps(r) + "\n" for r in old))
    _ship(tmp_path / "run1", tmp_path / "rewards", monkeypatch, {"p": [_anchor_line("p", "u1", 0.010, NOW)]})
    assert json.loads(capsys.readouterr().out) == {"file": str(shipped), "anchors": 1, "problems": 1}
    lines = {a.key: a for a in rewards.read_anchors(shipped)}
    assert lines[("p", "u1")].t_baseline_ms == 0.010 and lines[("p", "u1")].timing_protocol == NOW
    assert lines[("gone", "u9")].timing_protocol == NOW - 1  # kept, and never used (`comparable`)
    # A second run under the same protocol: its lines are the sentinels; a 2% move is written ...
    _ship(tmp_path / "run2", tmp_path / "rewards", monkeypatch, {"p": [_anchor_line("p", "u1", 0.0102, NOW)]})
    assert rewards.read_anchors(shipped)[1].t_baseline_ms == 0.0102
    # ... a 20% move is refused and nothing is written.
    with pytest.raises(rewards.AnchorDriftError, match="drifted"):
        _ship(
            tmp_path / "run3",
            tmp_path / "rewards",
            monkeypatch,
            {"p": [_anchor_line("p", "u1", 0.0122, NOW)]},
        )
    assert rewards.read_anchors(shipped)[1].t_baseline_ms == 0.0102


def test_ship_anchors_says_when_the_run_has_none(tmp_path, monkeypatch):
    (tmp_path / "run" / "work").mkdir(parents=True)
    monkeypatch.setattr(sys, "argv", ["ship_anchors", str(tmp_path / "run")])
    with pytest.raises(SystemExit, match="no anchors under"):
        ship_anchors.main()
