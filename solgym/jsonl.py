"""JSON Lines files read strictly (every line an object, a bad one named by file and line) or leniently (a
results file whose last line an interrupted write may have cut)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any


def objects(lines: Iterable[str], source: str | Path, what: str = "a line") -> Iterator[tuple[int, str, Any]]:
    """(line number, "source:line", parsed value) for each non-blank line; ValueError naming the line for
    invalid JSON, and for a value that is not an object, saying that `what` must be one."""
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{source}:{lineno}"
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{where}: invalid JSON: {e.msg}") from None
        if not isinstance(raw, dict):
            raise ValueError(f"{where}: {what} must be a JSON object")
        yield lineno, where, raw


def readable(path: str | Path) -> list[Any]:
    """The lines of a file that parse as JSON, skipping any that do not (a truncated last line)."""
    rows = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows
