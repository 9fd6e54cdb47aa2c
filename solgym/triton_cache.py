"""Triton's compile cache, kept per action across evaluations.

Every evaluation runs in a fresh child whose `TRITON_CACHE_DIR` is private, so each one would compile the
action's kernels (and Triton's launcher for each kernel signature) again: about a second of every step.
An action evaluated again (another seed, another batch, the same kernel resubmitted) can reuse what its
earlier evaluation compiled, if that reuse cannot carry anything from one candidate to another.

The rule that makes it safe: a cache directory belongs to one action, named by the SHA-256 of everything
the action is (source, files, entry point), and only an evaluation of that same action ever reads it. What
an evaluation leaves in its private Triton cache may be anything the candidate chose to write there, but
the only code that will ever load it is the same candidate's, which could have written the same files
into its own private cache before its first launch anyway. No candidate reads another's files.

The trusted parent does both copies; the child never sees the shared directory:

- `seed(shared, private)` before the job is handed over copies the action's files into the child's
  private cache (the child takes ownership of its workdir when it drops privileges);
- `harvest(private, shared)` after the child is gone copies back regular files only (no links, devices
  or anything else), under relative paths without `..`, within a size cap, each written atomically, into
  folders only the parent's user may read (children run under their own uids where the host allows the
  uid drop; without it a child runs as the parent's user and this layer is absent).

The shared root is bounded: `trim(root, budget_bytes)` evicts the least recently used action directories.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

MAX_ACTION_BYTES = 64 << 20  # what one action may keep
MAX_FILES = 512
DEFAULT_BUDGET_BYTES = 4 << 30  # the whole shared root
BUDGET_ENV = "SOLGYM_TRITON_CACHE_BYTES"


def action_key(action: Mapping[str, Any]) -> str:
    """SHA-256 over what an action is: its source, its extra files and its entry point."""
    canonical = {
        "source": action.get("source") or "",
        "files": dict(sorted((action.get("files") or {}).items())),
        "entry_point": action.get("entry_point") or "",
    }
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


def directory(root: str | Path, action: Mapping[str, Any]) -> Path:
    """The shared cache directory of one action under `root`."""
    return Path(root) / action_key(action)


def _regular_files(top: Path) -> list[tuple[Path, int]]:
    """Regular files under `top` (relative path, size), without following any link; at most MAX_FILES."""
    found: list[tuple[Path, int]] = []
    for folder, dirs, files in os.walk(top, followlinks=False):
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(folder, d))]
        for name in files:
            path = os.path.join(folder, name)
            info = os.lstat(path)
            if stat.S_ISREG(info.st_mode) and not name.startswith(".tmp"):
                found.append((Path(path).relative_to(top), info.st_size))
                if len(found) >= MAX_FILES:
                    return found
    return found


def _copy(files: list[tuple[Path, int]], src: Path, dst: Path, private: bool) -> int:
    """Copy the listed files from `src` to `dst` (atomically each, never through a link); returns bytes.
    `private`: folders 0700 and files 0600, for the shared side, which no child needs to read."""
    copied = 0
    dir_mode, file_mode = (0o700, 0o600) if private else (0o755, 0o644)
    for rel, size in files:
        if copied + size > MAX_ACTION_BYTES or ".." in rel.parts or rel.is_absolute():
            continue
        target = dst / rel
        target.parent.mkdir(parents=True, exist_ok=True, mode=dir_mode)
        tmp = target.with_name(f".tmp{os.getpid()}.{target.name}")
        try:
            fd = os.open(src / rel, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            continue
        with os.fdopen(fd, "rb") as reader:
            if not stat.S_ISREG(os.fstat(reader.fileno()).st_mode):
                continue
            with open(tmp, "wb") as writer:
                shutil.copyfileobj(reader, writer)
        os.chmod(tmp, file_mode)
        os.replace(tmp, target)
        copied += size
    return copied


def seed(shared: str | Path, private: str | Path) -> int:
    """Copy an action's cached files into a child's private Triton cache; returns the bytes copied."""
    shared = Path(shared)
    if not shared.is_dir():
        return 0
    os.utime(shared)  # recently used: `trim` keeps it
    return _copy(_regular_files(shared), shared, Path(private), private=False)


def harvest(private: str | Path, shared: str | Path) -> int:
    """Copy what a finished child left in its private Triton cache into its action's shared directory
    (regular files only, capped); returns the bytes copied. Files already there are left alone."""
    private, shared = Path(private), Path(shared)
    if not private.is_dir():
        return 0
    new = [(rel, size) for rel, size in _regular_files(private) if not (shared / rel).exists()]
    if not new:
        return 0
    # The root and every action's folder are the parent's alone: children run under other uids (where
    # the host allows the uid drop) and never read here, only their own private copy.
    shared.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(shared.parent, 0o700)
    shared.mkdir(exist_ok=True, mode=0o700)
    return _copy(new, private, shared, private=True)


def trim(root: str | Path, budget_bytes: int | None = None) -> int:
    """Evict least recently used action directories until `root` holds at most `budget_bytes` (default:
    $SOLGYM_TRITON_CACHE_BYTES, else 4 GiB); returns the number evicted."""
    budget = (
        budget_bytes if budget_bytes is not None else int(os.environ.get(BUDGET_ENV, DEFAULT_BUDGET_BYTES))
    )
    root = Path(root)
    if not root.is_dir():
        return 0
    entries = []
    for child in root.iterdir():
        if child.is_dir() and not child.is_symlink():
            size = sum(s for _, s in _regular_files(child))
            entries.append((child.stat().st_mtime, size, child))
    total = sum(size for _, size, _ in entries)
    evicted = 0
    for _, size, child in sorted(entries):
        if total <= budget:
            break
        shutil.rmtree(child, ignore_errors=True)
        total -= size
        evicted += 1
    return evicted
