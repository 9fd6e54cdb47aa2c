"""benchmarks/tb_repeat.py and benchmarks/tb_drift.py --table: how T_b repeatability is read off runs."""

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
