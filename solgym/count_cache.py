"""Op counts kept on disk, so that a workload is counted once per machine rather than once per process.

Counting a reference costs from milliseconds to tens of seconds (a loop over the sequence traced op by op,
a data-dependent reference run on CPU data), and every evaluation needs the bounds of its workloads. A
count depends only on the problem's definition, the workload, solgym's own code and torch's version (its
decompositions decide which ATen ops a reference reaches), so an entry is keyed by all four: a change to
any file of the package, or another torch, makes a fresh key and the old entry is never read again.

Entries live under `<cache>/counts/` (`$SOLGYM_CACHE` or `~/.cache/solgym`), one JSON file each, written
atomically by the trusted process that counted them; evaluation children see that directory read-only
(docs/isolation.md). `SOLGYM_COUNT_CACHE=0` turns the cache off (reads and writes), as the fidelity
benchmark does to time cold derivations. Workloads with data files are not cached: their counts follow the
files' contents, which a path does not pin down. An entry that cannot be read or does not check out is
ignored and counted again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import torch

from solgym.opcount import OpCounts, source_key
from solgym.problem import Problem, Workload

SWITCH_ENV = "SOLGYM_COUNT_CACHE"
FORMAT = 1


def enabled() -> bool:
    return os.environ.get(SWITCH_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


@cache
def _code_fingerprint() -> str:
    """A digest of every module of the package, its version and torch's version."""
    from solgym import __version__

    digest = hashlib.sha256(f"{__version__} {torch.__version__}".encode())
    for path in sorted(Path(__file__).resolve().parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def problem_key(problem: Problem) -> str:
    """A digest of what a problem's counts follow from in its definition: name, reference, inputs, outputs
    and input entry point."""
    d = problem.definition
    text = repr((d.name, d.reference, d.inputs, d.outputs, d.custom_inputs_entrypoint))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def key(problem: Problem, workload: Workload, *, on_data: bool) -> str | None:
    """The entry's name for a workload counted on meta tensors (`on_data` False: the counts follow from the
    axes and the input sources) or on data (also the workload's own seed); None when it must not be cached."""
    if workload.blobs:
        return None
    parts = [
        FORMAT,
        _code_fingerprint(),
        problem_key(problem),
        sorted(problem.axes(workload).items()),
        source_key(workload),
        workload.uuid if on_data else None,
    ]
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=repr).encode()).hexdigest()


def _path(name: str) -> Path:
    from solgym.rewards import cache_dir

    return cache_dir() / "counts" / f"{name}.json"


def load(name: str | None) -> OpCounts | None:
    """The counts stored under `name`, or None (absent, unreadable, or not a valid entry)."""
    if name is None or not enabled():
        return None
    try:
        data = json.loads(_path(name).read_text())
        if data.get("key") != name:
            return None
        counts = OpCounts(**data["counts"])
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None
    return counts if _valid(counts) else None


def store(name: str | None, counts: OpCounts) -> None:
    """Write `counts` under `name`, atomically; a cache that cannot be written is skipped silently."""
    if name is None or not enabled():
        return
    path = _path(name)
    text = json.dumps({"key": name, "counts": dataclasses.asdict(counts)})
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    except OSError:
        return
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # evaluation children read the cache after their uid drop
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _valid(c: OpCounts) -> bool:
    numbers: list[Any] = [c.flops_other, c.op_count]
    for table in (
        c.macs,
        c.read_bytes,
        c.read_elements,
        c.write_bytes,
        c.write_elements,
        c.needed_read_bytes,
        c.needed_read_elements,
    ):
        if not isinstance(table, dict) or not all(isinstance(k, str) for k in table):
            return False
        numbers.extend(table.values())
    return (
        all(isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v < math.inf for v in numbers)
        and isinstance(c.traced_on, str)
        and isinstance(c.notes, list)
        and all(isinstance(n, str) for n in c.notes)
    )
