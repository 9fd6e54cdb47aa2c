"""Import the public SOL-ExecBench parquet export into problem directories.

The export has one row per problem with columns `name, hf_id, description, axes,
custom_inputs_entrypoint, inputs, outputs, reference, workloads`, the structured ones as JSON strings.
Each row becomes `<out>/<name>/definition.json` + `workload.jsonl`, validated with the same loader that
reads every other problem, before anything is written.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from solgym.problem import DEFINITION_FILE, WORKLOAD_FILE, ProblemError, parse_definition, parse_workloads

_JSON_COLUMNS = ("axes", "inputs", "outputs", "workloads", "constraints")
_REQUIRED = ("name", "axes", "inputs", "outputs", "reference", "workloads")


def read_rows(parquet: str | Path) -> list[dict[str, Any]]:
    """The rows of a parquet export as dicts (needs pyarrow: `pip install solgym[parquet]`)."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ImportError("importing a parquet export needs pyarrow: pip install 'solgym[parquet]'") from None
    path = Path(parquet)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    try:
        return pq.read_table(path).to_pylist()
    except Exception as e:  # pyarrow raises several unrelated types for a damaged file
        raise ValueError(f"{path}: not a readable parquet file ({e})") from None


def row_to_problem(row: dict[str, Any], where: str = "row") -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A (definition, workloads) pair from one export row, both validated."""
    missing = [c for c in _REQUIRED if row.get(c) in (None, "")]
    if missing:
        raise ProblemError(where, ", ".join(missing), "required column is empty or missing")
    definition: dict[str, Any] = {}
    for key, value in row.items():
        if key == "workloads":
            continue
        if key in _JSON_COLUMNS and isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as e:
                raise ProblemError(where, key, f"column is not valid JSON: {e.msg}") from None
        if value is None and key not in ("custom_inputs_entrypoint",):
            continue
        definition[key] = value
    workloads = row["workloads"]
    if isinstance(workloads, str):
        text = workloads.strip()
        try:
            parsed = json.loads(text)
            workloads = parsed if isinstance(parsed, list) else [parsed]
        except json.JSONDecodeError:
            try:  # some exports keep the JSONL text as is
                workloads = [json.loads(line) for line in text.splitlines() if line.strip()]
            except json.JSONDecodeError as e:
                raise ProblemError(
                    where, "workloads", f"neither a JSON list nor JSON lines: {e.msg}"
                ) from None
    if not isinstance(workloads, list):
        raise ProblemError(where, "workloads", "must be a list of workload objects")
    parsed_definition = parse_definition(definition, f"{where} ({definition.get('name')})")
    parse_workloads("\n".join(json.dumps(w) for w in workloads), parsed_definition, f"{where}.workloads")
    return definition, workloads


def import_parquet(
    parquet: str | Path,
    out_dir: str | Path,
    *,
    overwrite: bool = False,
    progress: Callable[[int, int, str], None] | None = None,
) -> list[Path]:
    """Write every row of the export as a problem directory under `out_dir`; returns the directories.

    All rows are validated first, so a bad row writes nothing. An existing directory is an error unless
    `overwrite`.
    """
    rows = read_rows(parquet)
    out = Path(out_dir)
    problems = []
    for i, row in enumerate(rows):
        definition, workloads = row_to_problem(row, f"{parquet} row {i}")
        name = definition["name"]
        if "/" in name or name.startswith(".") or not name.strip():
            raise ProblemError(f"{parquet} row {i}", "name", f"{name!r} cannot be a directory name")
        problems.append((name, definition, workloads))
    names = [n for n, _, _ in problems]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ProblemError(parquet, "name", f"names appear in several rows: {', '.join(duplicates)}")
    if not overwrite:
        existing = [n for n in names if (out / n).exists()]
        if existing:
            raise FileExistsError(
                f"{out}: already holds {', '.join(existing[:5])}{'...' if len(existing) > 5 else ''}; pass overwrite"
            )
    written = []
    for index, (name, definition, workloads) in enumerate(problems):
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / DEFINITION_FILE).write_text(json.dumps(definition, indent=2) + "\n", encoding="utf-8")
        (folder / WORKLOAD_FILE).write_text(
            "".join(json.dumps(w) + "\n" for w in workloads), encoding="utf-8"
        )
        written.append(folder)
        if progress:
            progress(index + 1, len(problems), name)
    return written
