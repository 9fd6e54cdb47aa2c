"""Action intake: the one place an action is decoded, and `INVALID_ACTION` is decided (DESIGN §4, §11.9).

An action is the source of a Python module that defines `run`, or a SOL-ExecBench / FlashInfer-Bench
`solution.json` (several source files, `spec.entry_point` like "main.py::run"). `decode` turns either
into an `Action` or raises `InvalidAction` with a reason that says what to fix. Nothing is imported or
executed: every check is a bounded parse, answered in milliseconds whatever the input.

Entry point arity decides the calling style: `len(inputs)` parameters is return style
(`run(*inputs) -> outputs`), `len(inputs) + len(outputs)` is destination-passing style
(`run(*inputs, *outputs) -> None`). `*args` and `**kwargs` are refused: with them the style could not
be told and the harness could not check the signature.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

MAX_ACTION_BYTES = 256 * 1024
# Parse limits applied with `ast` before libcst sees a source: libcst's native parser can crash the
# process on deep nesting or long operator chains (measured: `a and a and ...` x 10,000 segfaults).
MAX_DEPTH = 100
MAX_NODES = 150_000
MAX_CHAIN = 100

SOURCE_SUFFIXES = (".py", ".cu", ".cuh", ".cpp", ".cc", ".cxx", ".c", ".h", ".hpp", ".hh", ".inl")


class InvalidAction(ValueError):
    """The action cannot be decoded; `reason` says what is wrong and what to do."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Action:
    """A decoded action: the module that defines the entry point, other source files, and its calling style."""

    source: str
    files: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    style: str = "return"
    digest: str = ""
    entry_point: str = "run"

    def __hash__(self) -> int:
        return hash(self.digest)


def decode(raw: str | bytes | Mapping[str, Any], *, inputs: Sequence[str], outputs: Sequence[str]) -> Action:
    """Decode `raw` (Python source as str or UTF-8 bytes, or a solution.json object or text) into an Action.

    Raises InvalidAction for: empty input, bytes that are not UTF-8, more than MAX_ACTION_BYTES, NUL bytes,
    a syntax error, pathological nesting, no top-level entry point, an entry point that is not a function,
    or a parameter count that matches neither calling style."""
    if isinstance(raw, bytes | bytearray | memoryview):
        raw = bytes(raw)
        if len(raw) > MAX_ACTION_BYTES * 4:
            raise InvalidAction(
                f"the action is {len(raw)} bytes; the limit is {MAX_ACTION_BYTES} bytes of source"
            )
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise InvalidAction(
                f"the action is not UTF-8 text (byte {e.start} is invalid); send source code"
            ) from None
    if isinstance(raw, str):
        solution = _as_solution(raw)
        if solution is None:
            return _decode_module(raw, {}, "run", None, inputs, outputs)
        raw = solution
    if isinstance(raw, Mapping):
        return _decode_solution(raw, inputs, outputs)
    raise InvalidAction(
        f"an action is a str of Python source or a solution.json object, not {type(raw).__name__}"
    )


def _as_solution(text: str) -> Mapping[str, Any] | None:
    if not text.lstrip().startswith("{") or len(text) > MAX_ACTION_BYTES * 4:
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) and "sources" in value else None


def _check_text(text: str, what: str) -> int:
    if not text.strip():
        raise InvalidAction(f"{what} is empty; send the source of a Python module that defines run")
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_ACTION_BYTES:
        raise InvalidAction(f"{what} is {size} bytes; the limit is {MAX_ACTION_BYTES} bytes")
    if "\x00" in text:
        raise InvalidAction(f"{what} contains NUL bytes; send plain source text")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidAction(f"{what} contains unpaired surrogates; send valid UTF-8 text") from None
    return size


def parse_python(source: str, file: str = "the action") -> ast.Module:
    """Parse `source` with `ast` and enforce the nesting, size and chain limits (InvalidAction otherwise).

    This is the gate every Python source passes before libcst parses it."""
    try:
        tree = ast.parse(source, filename=file)
    except SyntaxError as e:
        where = f"line {e.lineno}" + (f", column {e.offset}" if e.offset else "")
        message = e.msg
        if "too many nested" in message or "too complex" in message:
            raise InvalidAction(f"{file} is nested too deeply ({where}); flatten the expression") from None
        raise InvalidAction(f"{file} has a syntax error at {where}: {message}") from None
    except (RecursionError, MemoryError):
        raise InvalidAction(f"{file} is nested too deeply to parse; flatten deep expressions") from None
    except (ValueError, OverflowError) as e:
        raise InvalidAction(f"{file} cannot be parsed: {e}") from None
    count = 0
    stack: list[tuple[ast.AST, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise InvalidAction(f"{file} has more than {MAX_NODES} syntax nodes; send a smaller module")
        if depth > MAX_DEPTH:
            line = getattr(node, "lineno", "?")
            raise InvalidAction(f"{file} nests deeper than {MAX_DEPTH} levels at line {line}; flatten it")
        chain = (
            len(node.values)
            if isinstance(node, ast.BoolOp)
            else (len(node.comparators) if isinstance(node, ast.Compare) else 0)
        )
        if chain > MAX_CHAIN:
            raise InvalidAction(
                f"{file} has a chain of {chain} boolean/comparison operands at line "
                f"{node.lineno}; the limit is {MAX_CHAIN}"
            )  # type: ignore[attr-defined]
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, ast.expr_context | ast.operator | ast.boolop | ast.cmpop | ast.unaryop):
                stack.append((child, depth + 1))
    return tree


def _decode_module(
    source: str,
    files: Mapping[str, str],
    entry: str,
    dps: bool | None,
    inputs: Sequence[str],
    outputs: Sequence[str],
    file: str = "the action",
) -> Action:
    _check_text(source, file)
    tree = parse_python(source, file)
    style = _entry_style(tree, entry, dps, inputs, outputs, file)
    digest = content_digest(source, files, entry)
    return Action(
        source=source, files=MappingProxyType(dict(files)), style=style, digest=digest, entry_point=entry
    )


def content_digest(source: str, files: Mapping[str, str], entry_point: str) -> str:
    """SHA-256 (hex) of an action's content: entry point name, entry source and the sorted other files."""
    canonical = json.dumps(
        {"entry_point": entry_point, "source": source, "files": sorted(files.items())},
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def _entry_style(
    tree: ast.Module, entry: str, dps: bool | None, inputs: Sequence[str], outputs: Sequence[str], file: str
) -> str:
    last: ast.stmt | None = None
    for stmt in tree.body:
        if _binds(stmt, entry):
            last = stmt
    if last is None:
        raise InvalidAction(
            f"{file} has no top-level function {entry}; define `def {entry}({', '.join(inputs)}):`"
        )
    if isinstance(last, ast.AsyncFunctionDef):
        raise InvalidAction(f"{entry} is an async function; define it with plain `def`")
    if not isinstance(last, ast.FunctionDef):
        raise InvalidAction(
            f"{entry} is bound at line {last.lineno} but is not a function; define it with `def`"
        )
    args = last.args
    if args.vararg is not None or args.kwarg is not None:
        raise InvalidAction(
            f"{entry} takes *args/**kwargs; declare its parameters explicitly: "
            f"{_signatures(entry, inputs, outputs)}"
        )
    missing_kw = [a.arg for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is None]
    if missing_kw:
        raise InvalidAction(
            f"{entry} has keyword-only parameters without defaults ({', '.join(missing_kw)}); "
            f"the harness passes arguments by position: {_signatures(entry, inputs, outputs)}"
        )
    count = len(args.posonlyargs) + len(args.args)
    n_in, n_all = len(inputs), len(inputs) + len(outputs)
    if dps is True and count == n_all:
        return "destination"
    if dps is False and count == n_in:
        return "return"
    if dps is None and count == n_in:
        return "return"
    if dps is None and count == n_all:
        return "destination"
    declared = (
        "" if dps is None else (f" (solution.json declares destination_passing_style={str(dps).lower()})")
    )
    raise InvalidAction(
        f"{entry} takes {count} parameters{declared}; expected {_signatures(entry, inputs, outputs)}"
    )


def _signatures(entry: str, inputs: Sequence[str], outputs: Sequence[str]) -> str:
    ins = ", ".join(inputs)
    outs = ", ".join(outputs)
    return (
        f"{len(inputs)} for return style `{entry}({ins}) -> {outs or 'outputs'}` or "
        f"{len(inputs) + len(outputs)} for destination style `{entry}({ins}{', ' if ins and outs else ''}{outs})`"
    )


def _binds(stmt: ast.stmt, name: str) -> bool:
    if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return stmt.name == name
    if isinstance(stmt, ast.Assign):
        return any(isinstance(n, ast.Name) and n.id == name for t in stmt.targets for n in ast.walk(t))
    if isinstance(stmt, ast.AnnAssign | ast.AugAssign):
        return isinstance(stmt.target, ast.Name) and stmt.target.id == name
    if isinstance(stmt, ast.Import | ast.ImportFrom):
        return any((a.asname or a.name.split(".")[0]) == name for a in stmt.names)
    return False


def _decode_solution(raw: Mapping[str, Any], inputs: Sequence[str], outputs: Sequence[str]) -> Action:
    sources = raw.get("sources")
    if not isinstance(sources, list) or not sources:
        raise InvalidAction('solution.json needs a non-empty `sources` list of {"path", "content"} objects')
    spec = raw.get("spec") or {}
    if not isinstance(spec, Mapping):
        raise InvalidAction("solution.json `spec` must be an object")
    files: dict[str, str] = {}
    total = 0
    for index, item in enumerate(sources):
        if (
            not isinstance(item, Mapping)
            or not isinstance(item.get("path"), str)
            or not isinstance(item.get("content"), str)
        ):
            raise InvalidAction(
                f"solution.json sources[{index}] must be an object with string `path` and `content`"
            )
        path = _check_path(item["path"], index)
        if path in files:
            raise InvalidAction(f"solution.json lists {path!r} twice")
        total += _check_text(item["content"], path)
        if total > MAX_ACTION_BYTES:
            raise InvalidAction(
                f"the solution's sources total more than {MAX_ACTION_BYTES} bytes; send less code"
            )
        files[path] = item["content"]
    entry_file, entry = _entry_point(spec, files)
    dps = spec.get("destination_passing_style")
    if dps is not None and not isinstance(dps, bool):
        raise InvalidAction("solution.json spec.destination_passing_style must be true or false")
    for path, text in files.items():
        if path.endswith(".py") and path != entry_file:
            parse_python(text, path)
    source = files.pop(entry_file)
    return _decode_module(source, files, entry, dps, inputs, outputs, entry_file)


def _check_path(path: str, index: int) -> str:
    if (
        not path
        or path.startswith(("/", "~"))
        or "\\" in path
        or "\x00" in path
        or ":" in path
        or any(part in ("", ".", "..") for part in path.split("/"))
    ):
        raise InvalidAction(
            f"solution.json sources[{index}].path {path!r} must be a plain relative path "
            "(no '..', no absolute paths)"
        )
    if not path.endswith(SOURCE_SUFFIXES):
        raise InvalidAction(
            f"solution.json sources[{index}].path {path!r} is not a source file "
            f"({', '.join(SOURCE_SUFFIXES)})"
        )
    return path


def _entry_point(spec: Mapping[str, Any], files: Mapping[str, str]) -> tuple[str, str]:
    entry = spec.get("entry_point")
    if entry is None:
        python = [p for p in files if p.endswith(".py")]
        if len(python) == 1:
            return python[0], "run"
        if "main.py" in files:
            return "main.py", "run"
        raise InvalidAction('solution.json has no spec.entry_point; give one like "main.py::run"')
    if not isinstance(entry, str) or entry.count("::") != 1:
        raise InvalidAction(f'spec.entry_point {entry!r} must look like "main.py::run"')
    path, name = entry.split("::")
    if not path.endswith(".py") or path not in files:
        raise InvalidAction(f"spec.entry_point names {path!r}, which is not a .py file among the sources")
    if not name.isidentifier():
        raise InvalidAction(f"spec.entry_point function {name!r} is not a Python identifier")
    return path, name


def entry_parameters(raw: str | bytes | Mapping[str, Any]) -> list[str]:
    """The positional parameter names of the action's entry point, for checking an action without its
    problem (every name is then taken as an input); [] when they cannot be read (decode says why)."""
    try:
        if isinstance(raw, bytes | bytearray):
            raw = bytes(raw).decode("utf-8")
        if isinstance(raw, str):
            raw = _as_solution(raw) or raw
        entry = "run"
        if isinstance(raw, Mapping):
            spec = raw.get("spec") or {}
            files = {s["path"]: s["content"] for s in raw.get("sources", [])}
            path, entry = _entry_point(spec, files)
            raw = files[path]
        _check_text(raw, "the action")
        tree = parse_python(raw)
    except (InvalidAction, UnicodeDecodeError, KeyError, TypeError, AttributeError):
        return []
    for stmt in reversed(tree.body):
        if isinstance(stmt, ast.FunctionDef) and stmt.name == entry:
            return [a.arg for a in (*stmt.args.posonlyargs, *stmt.args.args)]
    return []


_FENCE = re.compile(r"^(```|~~~)[ \t]*([\w+-]*)[^\n]*\n(.*?)^\1[ \t]*$", re.MULTILINE | re.DOTALL)
_DEFINES_RUN = re.compile(r"^def[ \t]+run[ \t]*\(", re.MULTILINE)


def extract_code(reply: str) -> str | None:
    """The action source in a chat reply: the last fenced code block (python or unlabelled) that defines
    a top-level `run`, or None when there is none."""
    best = None
    for match in _FENCE.finditer(reply):
        language = match.group(2).lower()
        body = match.group(3)
        if language in ("", "python", "py", "python3") and _DEFINES_RUN.search(body):
            best = body
    return best
