"""Suites: folders of problem directories. solgym ships its own under `envs/`; users add theirs by path
(`register_suite(path)` or the SOLGYM_SUITES variable, paths separated by ':'). Every problem of every
suite is known by its definition's name, which must be unique across suites.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from solgym import data_dir
from solgym.problem import DEFINITION_FILE, Problem, ProblemError, load_problem

SUITES_ENV = "SOLGYM_SUITES"

_registered: dict[str, Path] = {}


@dataclass(frozen=True)
class Entry:
    """Where a problem lives: its name, its suite and its directory."""

    name: str
    suite: str
    path: Path


def register_suite(path: str | Path, name: str | None = None) -> str:
    """Add a suite folder by path; returns the suite's name (the folder's name unless given).
    Its problems become visible to `problems()` (and to the env registry on the next registration)."""
    folder = Path(path).expanduser().resolve()
    if not folder.is_dir():
        raise FileNotFoundError(f"suite folder {folder} does not exist")
    suite = name or folder.name
    existing = all_suites().get(suite)
    if existing is not None and existing != folder:
        raise ValueError(f"suite name {suite!r} is already used by {existing}; pass another name")
    _registered[suite] = folder
    problems()  # surface name collisions now, naming both problems
    from solgym.env import register_envs  # imported here: solgym.env imports this module

    register_envs()
    return suite


def shipped_suites() -> dict[str, Path]:
    """The suites in solgym's own envs/ folder."""
    try:
        root = data_dir("envs")
    except FileNotFoundError:
        return {}
    return {p.name: p for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith((".", "_"))}


def all_suites() -> dict[str, Path]:
    """Shipped suites, then those named in $SOLGYM_SUITES, then those registered by path."""
    suites = dict(shipped_suites())
    for raw in os.environ.get(SUITES_ENV, "").split(":"):
        if raw.strip():
            folder = Path(raw.strip()).expanduser().resolve()
            if not folder.is_dir():
                raise FileNotFoundError(f"${SUITES_ENV} names {folder}, which is not a folder")
            suites.setdefault(folder.name, folder)
    suites.update(_registered)
    return suites


def problems(suite: str | None = None) -> dict[str, Entry]:
    """Every problem by name (of one suite, or of all). A name found twice is an error naming both."""
    suites = all_suites()
    if suite is not None and suite not in suites:
        raise KeyError(f"no suite {suite!r}; known suites: {', '.join(suites) or 'none'}")
    found: dict[str, Entry] = {}
    for suite_name, folder in suites.items():
        if suite is not None and suite_name != suite:
            continue
        for child in sorted(folder.iterdir()):
            def_file = child / DEFINITION_FILE
            if not def_file.is_file():
                continue
            name = _definition_name(def_file)
            entry = Entry(name, suite_name, child)
            if name in found:
                other = found[name]
                raise ValueError(
                    f"problem name {name!r} is defined twice: {other.path} ({other.suite}) and {child} ({suite_name})"
                )
            found[name] = entry
    return found


def find_problem(key: str | Path) -> Problem:
    """Load a problem from a directory path, or find it by name among the known suites."""
    path = Path(key)
    if path.is_dir() or path.name == DEFINITION_FILE:
        return load_problem(path)
    known = problems()
    if str(key) in known:
        return load_problem(known[str(key)].path)
    close = [n for n in known if str(key).lower() in n.lower()]
    hint = f"; did you mean {', '.join(close[:5])}?" if close else ""
    raise KeyError(f"no problem directory or known problem named {str(key)!r}{hint}")


def _definition_name(def_file: Path) -> str:
    try:
        raw = json.loads(def_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ProblemError(def_file, "", f"invalid JSON: {e}") from None
    name = raw.get("name") if isinstance(raw, dict) else None
    if not isinstance(name, str) or not name:
        raise ProblemError(def_file, "name", "required field is missing")
    return name
