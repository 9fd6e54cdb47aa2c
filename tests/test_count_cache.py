"""Op counts kept on disk: read back in a fresh process, keyed by everything a count depends on, never
trusted when damaged, and off on request."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from solgym import bounds, count_cache, opcount
from solgym.hardware import get_profile
from tests.test_bounds import gemm, make_problem, segments

B200 = get_profile("B200").at_clock(1500)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache directory, and a process that has counted nothing yet."""
    monkeypatch.setenv("SOLGYM_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(count_cache.SWITCH_ENV, raising=False)
    monkeypatch.setattr(bounds, "_COUNTS", {})
    monkeypatch.setattr(bounds, "_NEEDS_DATA", set())
    return tmp_path / "cache" / "counts"


def scaled_add(tmp_path: Path, alphas: list[float], folder: str = "scaled_add") -> object:
    return make_problem(
        tmp_path,
        "import torch\ndef run(x, y, alpha):\n    return x * alpha + y\n",
        {"x": (["R", 64], "float32"), "y": (["R", 64], "float32"), "alpha": (None, "float32")},
        {"out": (["R", 64], "float32")},
        {"R": None},
        [{"axes": {"R": 128}, "scalars": {"alpha": a}} for a in alphas],
        folder=folder,
    )


def forget(monkeypatch) -> None:
    """As a new process would be: nothing counted in memory."""
    monkeypatch.setattr(bounds, "_COUNTS", {})
    monkeypatch.setattr(bounds, "_NEEDS_DATA", set())


def never_count(monkeypatch) -> None:
    def fail(*_a, **_k):
        raise AssertionError("counted again instead of read from the cache")

    monkeypatch.setattr(bounds, "count", fail)
    monkeypatch.setattr(opcount, "count_on_data", fail)


def test_a_meta_count_is_read_back_from_disk_instead_of_traced_again(tmp_path, cache, monkeypatch):
    p = gemm(tmp_path, m=64)
    first = bounds.derive(p, p.workloads[0], B200)
    assert len(list(cache.glob("*.json"))) == 1
    forget(monkeypatch)
    never_count(monkeypatch)
    again = bounds.derive(p, p.workloads[0], B200)
    assert again == first
    assert again.macs_by_precision == {"bf16": 64 * 4096 * 4096}


def test_a_data_count_is_cached_per_workload(tmp_path, cache, monkeypatch):
    p = segments(tmp_path, 1000)
    first = bounds.derive(p, p.workloads[0], B200)
    assert first.traced_on == "cpu data, scaled x1"
    forget(monkeypatch)
    never_count(monkeypatch)
    assert bounds.derive(p, p.workloads[0], B200) == first
    # Another seed is another workload: counted, not read.
    other = dataclasses.replace(p.workloads[0], uuid="another")
    with pytest.raises(AssertionError, match="counted again"):
        bounds.derive(p, other, B200)


def test_the_key_follows_the_definition_the_axes_the_sources_and_the_code(tmp_path, cache, monkeypatch):
    p = scaled_add(tmp_path, [1.0, 0.0])
    a, b = (count_cache.key(p, w, on_data=False) for w in p.workloads)
    assert a != b  # a scalar 0 changes which reads are needed
    assert count_cache.key(p, p.workloads[0], on_data=False) == a
    assert count_cache.key(p, p.workloads[0].with_axes(R=256), on_data=False) != a
    assert count_cache.key(p, p.workloads[0], on_data=True) != a
    q = scaled_add(tmp_path, [1.0], folder="scaled_add_2")
    assert count_cache.key(q, q.workloads[0], on_data=False) != a  # another name
    count_cache._code_fingerprint.cache_clear()
    monkeypatch.setattr(count_cache.torch, "__version__", "0.0-other")
    try:
        assert count_cache.key(p, p.workloads[0], on_data=False) != a
    finally:
        count_cache._code_fingerprint.cache_clear()


def test_workloads_with_data_files_are_not_cached(tmp_path):
    p = scaled_add(tmp_path, [1.0])
    w = p.workloads[0]
    source = dataclasses.replace(w.inputs["x"], kind="safetensors", path="x.safetensors", tensor_key="x")
    with_file = dataclasses.replace(w, inputs={**w.inputs, "x": source})
    assert count_cache.key(p, with_file, on_data=True) is None
    assert count_cache.key(p, with_file, on_data=False) is None


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: "{not json",
        lambda d: json.dumps({**d, "key": "another"}),
        lambda d: json.dumps({**d, "counts": {**d["counts"], "macs": {"bf16": -1.0}}}),
        lambda d: json.dumps({**d, "counts": {**d["counts"], "flops_other": float("inf")}}),
        lambda d: json.dumps({**d, "counts": {**d["counts"], "unknown_field": 1}}),
        lambda d: json.dumps({**d, "counts": {**d["counts"], "notes": [3]}}),
    ],
)
def test_a_damaged_entry_is_ignored_and_counted_again(tmp_path, cache, monkeypatch, damage):
    p = scaled_add(tmp_path, [2.0])
    first = bounds.derive(p, p.workloads[0], B200)
    (entry,) = cache.glob("*.json")
    good = entry.read_text()
    entry.write_text(damage(json.loads(good)))
    forget(monkeypatch)
    assert bounds.derive(p, p.workloads[0], B200) == first
    assert entry.read_text() == good  # counted and written afresh


def test_the_cache_can_be_switched_off(tmp_path, cache, monkeypatch):
    monkeypatch.setenv(count_cache.SWITCH_ENV, "0")
    p = scaled_add(tmp_path, [2.0])
    bounds.derive(p, p.workloads[0], B200)
    assert not cache.exists()


def test_entries_are_readable_by_others_and_shared_between_processes(tmp_path, cache):
    p = scaled_add(tmp_path, [3.0])
    code = (
        "import sys, time; from solgym.bounds import derive; from solgym.problem import load_problem;"
        "from solgym.hardware import get_profile; p = load_problem(sys.argv[1]);"
        "t = time.perf_counter(); b = derive(p, p.workloads[0], get_profile('B200'));"
        "print(b.bytes_read)"
    )
    env = {**os.environ, "SOLGYM_CACHE": str(cache.parent)}

    def run() -> str:
        done = subprocess.run(
            [sys.executable, "-c", code, str(p.path)], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    assert run() == f"{2 * 128 * 64 * 4.0}\n"
    (entry,) = cache.glob("*.json")
    assert entry.stat().st_mode & 0o044 == 0o044
    written = entry.stat().st_mtime_ns
    assert run() == f"{2 * 128 * 64 * 4.0}\n"
    assert entry.stat().st_mtime_ns == written  # read, not counted and written again


def test_a_cache_that_cannot_be_written_costs_nothing_but_the_saving(tmp_path, cache, monkeypatch):
    cache.parent.mkdir(parents=True)
    cache.write_text("a file where the directory should be")
    p = scaled_add(tmp_path, [4.0])
    b = bounds.derive(p, p.workloads[0], B200)
    assert b.bytes_written == 128 * 64 * 4
    assert cache.read_text() == "a file where the directory should be"


def test_a_failed_write_leaves_no_temporary_file(tmp_path, cache, monkeypatch):
    def refuse(*_a):
        raise OSError("disk full")

    monkeypatch.setattr(count_cache.os, "replace", refuse)
    p = scaled_add(tmp_path, [5.0])
    bounds.derive(p, p.workloads[0], B200)
    assert list(cache.iterdir()) == []
