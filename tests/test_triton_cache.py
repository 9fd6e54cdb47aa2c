"""The per-action Triton cache: keyed by the whole action, copies regular files only, bounded."""

from __future__ import annotations

import os
import time
from pathlib import Path

from solgym import triton_cache


def test_the_key_covers_source_files_and_entry_point():
    base = {"source": "def run(x):\n    return x\n"}
    keys = {
        triton_cache.action_key(base),
        triton_cache.action_key({**base, "source": base["source"] + " "}),
        triton_cache.action_key({**base, "files": {"k.py": ""}}),
        triton_cache.action_key({**base, "entry_point": "main.py::run"}),
    }
    assert len(keys) == 4
    assert triton_cache.action_key(base) == triton_cache.action_key({**base, "files": {}})


def test_harvest_copies_regular_files_and_nothing_else(tmp_path: Path):
    private, shared = tmp_path / "private", tmp_path / "shared" / "abc"
    (private / "k1").mkdir(parents=True)
    (private / "k1" / "kernel.cubin").write_bytes(b"cubin")
    (private / "k1" / "kernel.json").write_text("{}")
    secret = tmp_path / "secret.txt"
    secret.write_text("not yours")
    (private / "k1" / "link.json").symlink_to(secret)
    (private / "linkdir").symlink_to(tmp_path)
    os.mkfifo(private / "pipe")
    copied = triton_cache.harvest(private, shared)
    assert copied == len(b"cubin") + 2
    assert sorted(p.relative_to(shared).as_posix() for p in shared.rglob("*") if p.is_file()) == [
        "k1/kernel.cubin",
        "k1/kernel.json",
    ]
    assert not any(p.is_symlink() for p in shared.rglob("*"))


def test_harvest_never_overwrites_and_seed_restores(tmp_path: Path):
    private, shared, fresh = tmp_path / "p", tmp_path / "s", tmp_path / "f"
    (private / "k").mkdir(parents=True)
    (private / "k" / "a.bin").write_bytes(b"first")
    triton_cache.harvest(private, shared)
    (private / "k" / "a.bin").write_bytes(b"second writer")
    assert triton_cache.harvest(private, shared) == 0
    assert (shared / "k" / "a.bin").read_bytes() == b"first"
    fresh.mkdir()
    assert triton_cache.seed(shared, fresh) == len(b"first")
    assert (fresh / "k" / "a.bin").read_bytes() == b"first"
    assert triton_cache.seed(tmp_path / "absent", fresh) == 0


def test_one_action_keeps_at_most_the_cap(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(triton_cache, "MAX_ACTION_BYTES", 10)
    private, shared = tmp_path / "p", tmp_path / "s"
    private.mkdir()
    for i in range(5):
        (private / f"f{i}").write_bytes(b"1234")
    assert triton_cache.harvest(private, shared) == 8
    assert len(list(shared.iterdir())) == 2


def test_trim_evicts_the_least_recently_used_actions(tmp_path: Path):
    root = tmp_path / "root"
    for i, name in enumerate(("old", "mid", "new")):
        folder = root / name
        folder.mkdir(parents=True)
        (folder / "blob").write_bytes(b"x" * 100)
        stamp = time.time() - 100 + i * 10
        os.utime(folder, (stamp, stamp))
    assert triton_cache.trim(root, budget_bytes=250) == 1
    assert sorted(p.name for p in root.iterdir()) == ["mid", "new"]
    assert triton_cache.trim(root, budget_bytes=1000) == 0


def test_a_gpu_job_names_its_actions_own_directory(tmp_path: Path):
    from conftest import write_scale_problem

    from solgym import judge
    from solgym.problem import load_problem

    problem = load_problem(write_scale_problem(tmp_path / "p"))
    a = judge.payload(problem, {"source": "A"}, seed=1, mode="gpu", triton_cache=tmp_path / "t")
    b = judge.payload(problem, {"source": "B"}, seed=1, mode="gpu", triton_cache=tmp_path / "t")
    assert Path(a["triton_cache"]).parent == tmp_path / "t"
    assert a["triton_cache"] != b["triton_cache"]
    assert "triton_cache" not in judge.payload(problem, None, seed=1, mode="gpu", baseline="eager")


def test_the_shared_side_is_readable_by_its_owner_only(tmp_path: Path):
    private, shared = tmp_path / "p", tmp_path / "root" / "action"
    (private / "k").mkdir(parents=True)
    (private / "k" / "a.cubin").write_bytes(b"x")
    triton_cache.harvest(private, shared)
    for path in (shared.parent, shared, shared / "k"):
        assert path.stat().st_mode & 0o077 == 0, path
    assert (shared / "k" / "a.cubin").stat().st_mode & 0o077 == 0
    fresh = tmp_path / "child"
    fresh.mkdir()
    triton_cache.seed(shared, fresh)
    assert (fresh / "k" / "a.cubin").stat().st_mode & 0o044 == 0o044  # the child's copy is readable
