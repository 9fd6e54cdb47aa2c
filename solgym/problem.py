"""Problems: a Definition (axes, inputs, outputs, reference) and its Workloads, loaded from a directory.

A problem directory holds `definition.json` and `workload.jsonl` in the SOL-ExecBench / FlashInfer-Trace
schema. Loading validates everything that can be checked without running code and keeps every field it
does not know (in `extra`), so a problem round-trips unchanged. Every error names the file, the field and
what is wrong.
"""

from __future__ import annotations

import ast
import hashlib
import json
import linecache
import math
import operator
import sys
import types
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from solgym.dtypes import DTYPES

DEFINITION_FILE = "definition.json"
WORKLOAD_FILE = "workload.jsonl"

# DESIGN §11.10: used when a workload carries no tolerance.
DEFAULT_ATOL = 1e-2
DEFAULT_RTOL = 1e-2
DEFAULT_MATCHED_RATIO = 0.99

_DEFINITION_KEYS = {
    "name",
    "op_type",
    "description",
    "axes",
    "inputs",
    "outputs",
    "reference",
    "constraints",
    "custom_inputs_entrypoint",
}
_WORKLOAD_KEYS = {"uuid", "axes", "inputs", "tolerance", "hidden"}
_INPUT_KINDS = {"random", "scalar", "custom", "safetensors"}


class ProblemError(ValueError):
    """A problem that cannot be loaded or used: says which file, which field, and what is wrong."""

    def __init__(self, file: str | Path, where: str, message: str):
        self.file = str(file)
        self.where = where
        self.message = message
        super().__init__(f"{self.file}: {where}: {message}" if where else f"{self.file}: {message}")


@dataclass(frozen=True)
class Axis:
    """A named dimension: `const` (fixed value), `var` (set by each workload) or `expr` (computed)."""

    name: str
    kind: str
    value: int | None = None
    expression: str | None = None
    description: str = ""


@dataclass(frozen=True)
class TensorSpec:
    """An input or output: `shape` is a tuple of axis names (or fixed sizes), () for 0-d, None for a
    Python scalar."""

    name: str
    shape: tuple[str | int, ...] | None
    dtype: str
    description: str = ""

    @property
    def is_scalar(self) -> bool:
        return self.shape is None


@dataclass(frozen=True)
class Tolerance:
    """How close an output must be to the reference's, compared in fp32."""

    atol: float = DEFAULT_ATOL
    rtol: float = DEFAULT_RTOL
    matched_ratio: float = DEFAULT_MATCHED_RATIO
    error_cap: float | None = None
    allow_negative_inf: bool = False
    is_default: bool = True
    # Overrides for named outputs, e.g. a weight gradient summed over every token next to a per-token
    # gradient: one bound cannot fit both scales. Absent fields inherit the workload's.
    per_output: tuple[tuple[str, Tolerance], ...] = ()

    def for_output(self, name: str) -> Tolerance:
        """The tolerance that output `name` is held to."""
        for output, tolerance in self.per_output:
            if output == name:
                return tolerance
        return self


@dataclass(frozen=True)
class InputSource:
    """Where a workload's input comes from: `random`, `scalar` (with `value`), `custom`, `safetensors`."""

    kind: str
    value: Any = None
    path: str | None = None
    tensor_key: str | None = None


@dataclass(frozen=True)
class Workload:
    """One concrete instance of a problem: values of the var axes, input sources, tolerance."""

    uuid: str
    axes: Mapping[str, int]
    inputs: Mapping[str, InputSource]
    tolerance: Tolerance
    hidden: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)

    def with_axes(self, **axes: int) -> Workload:
        """A copy with some var axes changed (used to shrink workloads for CPU runs)."""
        return replace(self, axes={**self.axes, **axes})

    @property
    def blobs(self) -> list[str]:
        """The inputs read from safetensors blobs (data files of a trace dataset)."""
        return [name for name, source in self.inputs.items() if source.kind == "safetensors"]


@dataclass(frozen=True)
class Definition:
    """A problem's definition: axes, inputs, outputs and the PyTorch reference `run`."""

    name: str
    description: str
    axes: Mapping[str, Axis]
    inputs: Mapping[str, TensorSpec]
    outputs: Mapping[str, TensorSpec]
    reference: str
    op_type: str = ""
    constraints: tuple[str, ...] = ()
    custom_inputs_entrypoint: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def resolve_axes(self, var_values: Mapping[str, int]) -> dict[str, int]:
        """Values of every axis given the var axes' values (ProblemError if any is missing or bad)."""
        values: dict[str, int] = {}
        for axis in self.axes.values():
            if axis.kind == "const":
                values[axis.name] = axis.value  # type: ignore[assignment]
            elif axis.kind == "var":
                if axis.name not in var_values:
                    raise ProblemError(
                        self.name, f"axes.{axis.name}", "var axis has no value in the workload"
                    )
                values[axis.name] = int(var_values[axis.name])
        pending = [a for a in self.axes.values() if a.kind == "expr"]
        # Expressions may refer to each other in any order; resolve until a fixed point.
        while pending:
            progressed = False
            for axis in list(pending):
                try:
                    result = evaluate(axis.expression or "", values)
                except NameError:
                    continue
                except (ValueError, ZeroDivisionError, TypeError) as e:
                    raise ProblemError(
                        self.name, f"axes.{axis.name}", f"expression {axis.expression!r}: {e}"
                    ) from None
                if isinstance(result, float):
                    if not result.is_integer():
                        raise ProblemError(
                            self.name,
                            f"axes.{axis.name}",
                            f"expression {axis.expression!r} gives {result}, not an integer",
                        )
                    result = int(result)
                values[axis.name] = int(result)
                pending.remove(axis)
                progressed = True
            if not progressed:
                names = ", ".join(f"{a.name} = {a.expression}" for a in pending)
                raise ProblemError(
                    self.name, "axes", f"cannot resolve expressions (unknown or circular names): {names}"
                )
        return values

    def shape(self, spec: TensorSpec, axes: Mapping[str, int]) -> tuple[int, ...] | None:
        """Concrete shape of an input or output under resolved axes (None for a Python scalar)."""
        if spec.shape is None:
            return None
        return tuple(a if isinstance(a, int) else int(axes[a]) for a in spec.shape)

    def check_constraints(self, axes: Mapping[str, int]) -> list[str]:
        """The constraints that the axis values violate (constraints on tensor data are not checked here)."""
        broken = []
        for text in self.constraints:
            try:
                ok = evaluate(text, axes)
            except NameError:
                continue  # names an input's data, checked when data exists
            except (ValueError, ZeroDivisionError, TypeError):
                continue
            if not ok:
                broken.append(text)
        return broken

    def check_data_constraints(self, axes: Mapping[str, int], inputs: Mapping[str, Any]) -> list[str]:
        """The constraints on input data (`num_kv_indices == kv_indptr[-1].item()`) that `inputs` violate,
        of those whose every name is an axis or one of `inputs` (values on a real device)."""
        names = {**axes, **inputs}
        broken = []
        for text in self.constraints:
            try:
                ok = evaluate(text, names)
            except NameError:
                continue  # names an input not given
            except (ValueError, ZeroDivisionError, TypeError, RuntimeError, IndexError, AttributeError):
                continue  # asks of the data what it does not have: not a statement about these values
            if not ok and _names(text) & set(inputs):
                broken.append(text)
        return broken

    def reference_module(self) -> types.ModuleType:
        """The reference source executed as a fresh module (trusted code), registered under its name in
        `sys.modules`, where `torch.compile` of its functions looks for it."""
        module = types.ModuleType(f"solgym_reference_{_slug(self.name)}")
        digest = hashlib.sha256(self.reference.encode()).hexdigest()[:12]
        filename = f"<reference {self.name} {digest}>"
        module.__dict__["__file__"] = filename
        # Its source, where `inspect` looks for it: `torch.jit.script` in a reference compiles from source.
        linecache.cache[filename] = (len(self.reference), None, self.reference.splitlines(True), filename)
        code = _COMPILED.get(filename)
        if code is None:
            code = _COMPILED[filename] = compile(self.reference, filename, "exec")
        sys.modules[module.__name__] = module
        exec(code, module.__dict__)  # noqa: S102
        return module


# Reference sources compiled to code, by the file name `Definition.reference_module` gives them.
_COMPILED: dict[str, types.CodeType] = {}


@dataclass(frozen=True)
class Problem:
    """A Definition with its Workloads, and where it was loaded from."""

    definition: Definition
    workloads: tuple[Workload, ...]
    path: Path | None = None

    @property
    def name(self) -> str:
        return self.definition.name

    def workload(self, key: str | int) -> Workload:
        """A workload by uuid, uuid prefix or index."""
        if isinstance(key, int):
            return self.workloads[key]
        matches = [w for w in self.workloads if w.uuid == key] or [
            w for w in self.workloads if w.uuid.startswith(key)
        ]
        if len(matches) != 1:
            raise KeyError(f"{self.name}: {'no' if not matches else 'several'} workloads match {key!r}")
        return matches[0]

    def axes(self, workload: Workload) -> dict[str, int]:
        """All axis values of a workload."""
        return self.definition.resolve_axes(workload.axes)

    def shape(self, name: str, workload: Workload) -> tuple[int, ...] | None:
        """Concrete shape of the input or output `name` in `workload`."""
        d = self.definition
        spec = d.inputs.get(name) or d.outputs[name]
        return d.shape(spec, self.axes(workload))


# ---------------------------------------------------------------------------------------------- expressions

_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_COMPARE = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_FUNCTIONS = {"min": min, "max": max, "abs": abs, "ceil": math.ceil, "floor": math.floor}
# What a constraint on an input's data may ask of it: `kv_indptr[-1].item()`, `sparse_indices.shape[0]`,
# `ids.numel()`, `len(seq_lens)`.
_DATA_METHODS = ("item", "numel", "size", "dim")


def evaluate(expression: str, names: Mapping[str, Any]) -> Any:
    """Evaluate an axis expression or constraint: integers, axis names, + - * / // % **, comparisons,
    `and`/`or`/`not`, and min/max/abs/ceil/floor. A constraint on an input's data may also index a name by
    an integer (`kv_indptr[-1]`), take its `.shape`, call `.item()`, `.numel()`, `.size()` or `.dim()` on
    it, and `len()` of it. Nothing else is executed.

    Raises NameError for a name not in `names`, ValueError for anything outside that grammar, TypeError
    where a name's value does not support what is asked of it (an axis indexed).
    """
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as e:
        raise ValueError(f"not a valid expression ({e.msg})") from None
    return _eval(tree.body, names)


def _eval(node: ast.AST, names: Mapping[str, Any]) -> Any:
    if (
        isinstance(node, ast.Constant)
        and isinstance(node.value, int | float)
        and not isinstance(node.value, bool)
    ):
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in names:
            raise NameError(node.id)
        return names[node.id]
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left, names), _eval(node.right, names)
        if isinstance(node.op, ast.Pow) and abs(right) > 64:
            raise ValueError("exponent too large")
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd | ast.Not):
        value = _eval(node.operand, names)
        return (
            -value
            if isinstance(node.op, ast.USub)
            else (not value if isinstance(node.op, ast.Not) else value)
        )
    if isinstance(node, ast.Compare):
        left = _eval(node.left, names)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            if type(op) not in _COMPARE:
                raise ValueError(f"comparison {type(op).__name__} is not allowed")
            right = _eval(comparator, names)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.BoolOp):
        values = [_eval(v, names) for v in node.values]
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _FUNCTIONS
        and not node.keywords
    ):
        return _FUNCTIONS[node.func.id](*(_eval(a, names) for a in node.args))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "len":
        if len(node.args) != 1 or node.keywords:
            raise ValueError("len takes one argument")
        return len(_data(_eval(node.args[0], names)))
    if isinstance(node, ast.Subscript):
        value, index = _eval(node.value, names), _eval(node.slice, names)
        if not isinstance(index, int):
            raise ValueError(f"{ast.unparse(node)!r}: only an integer index is allowed")
        return _number(_data(value)[index])
    if isinstance(node, ast.Attribute) and node.attr == "shape":
        return tuple(_data(_eval(node.value, names)).shape)
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in _DATA_METHODS
        and not node.keywords
    ):
        value = _eval(node.func.value, names)
        if not (node.func.attr == "item" and isinstance(value, int | float)):
            value = _data(value)
        args = [_eval(a, names) for a in node.args]
        if not all(isinstance(a, int) for a in args) or len(args) > (node.func.attr == "size"):
            raise ValueError(f"{ast.unparse(node)!r}: bad arguments")
        if node.func.attr == "item":
            return _number(value)
        return _number(getattr(value, node.func.attr)(*args))
    raise ValueError(f"{ast.unparse(node)!r} is not allowed in an expression")


def check_grammar(expression: str) -> None:
    """Raise ValueError where an expression steps outside what `evaluate` accepts, wherever in it (the
    grammar check at load, which evaluating cannot do alone: `kv_indptr[-1] + f()` fails on its first
    term without data before its second is seen)."""
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as e:
        raise ValueError(f"not a valid expression ({e.msg})") from None
    for node in ast.walk(tree.body):
        if not _allowed(node):
            raise ValueError(f"{ast.unparse(node)!r} is not allowed in an expression")


def _allowed(node: ast.AST) -> bool:
    """Whether one node of an expression is in `evaluate`'s grammar."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, int | float) and not isinstance(node.value, bool)
    if isinstance(node, ast.BinOp | ast.operator):
        return type(node.op if isinstance(node, ast.BinOp) else node) in _BINARY
    if isinstance(node, ast.cmpop):
        return type(node) in _COMPARE
    if isinstance(node, ast.Attribute):
        return node.attr in ("shape", *_DATA_METHODS)
    if isinstance(node, ast.Call):
        func = node.func
        named = isinstance(func, ast.Name) and func.id in (*_FUNCTIONS, "len")
        method = isinstance(func, ast.Attribute) and func.attr in _DATA_METHODS
        return not node.keywords and (named or method)
    return isinstance(
        node,
        ast.Name
        | ast.Load
        | ast.BoolOp
        | ast.And
        | ast.Or
        | ast.Compare
        | ast.Subscript
        | ast.UnaryOp
        | ast.USub
        | ast.UAdd
        | ast.Not,
    )


def _names(expression: str) -> set[str]:
    """The names an expression reads."""
    return {n.id for n in ast.walk(ast.parse(expression.strip(), mode="eval")) if isinstance(n, ast.Name)}


def _data(value: Any) -> Any:
    """An input's data, for what a data constraint asks of it; a number (an axis) has none."""
    if isinstance(value, int | float | bool):
        raise TypeError(f"{value!r} is a number, not an input's data")
    return value


def _number(value: Any) -> Any:
    """A one-element tensor as a Python number; anything else as it is."""
    numel = getattr(value, "numel", None)
    if callable(numel) and numel() == 1 and hasattr(value, "item"):
        return value.item()
    return value


# ---------------------------------------------------------------------------------------------- loading


def load_problem(path: str | Path) -> Problem:
    """Load and validate a problem directory (or its definition.json)."""
    path = Path(path)
    if path.is_file() and path.name == DEFINITION_FILE:
        path = path.parent
    if not path.is_dir():
        raise ProblemError(path, "", "not a problem directory (expected a folder with definition.json)")
    def_file = path / DEFINITION_FILE
    if not def_file.is_file():
        raise ProblemError(path, "", f"no {DEFINITION_FILE} in this directory")
    definition = parse_definition(_read_json(def_file), def_file)
    wl_file = path / WORKLOAD_FILE
    if not wl_file.is_file():
        raise ProblemError(path, "", f"no {WORKLOAD_FILE} in this directory")
    workloads = parse_workloads(wl_file.read_text(encoding="utf-8"), definition, wl_file)
    return Problem(definition, workloads, path.resolve())


def _read_json(file: Path) -> Any:
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise ProblemError(file, "", f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise ProblemError(file, f"line {e.lineno} column {e.colno}", f"invalid JSON: {e.msg}") from None


def parse_definition(raw: Any, file: str | Path = "<definition>") -> Definition:
    """Validate a definition object (as read from definition.json)."""
    if not isinstance(raw, dict):
        raise ProblemError(file, "", f"a definition must be a JSON object, got {type(raw).__name__}")
    for key in ("name", "axes", "inputs", "outputs", "reference"):
        if key not in raw:
            raise ProblemError(file, key, "required field is missing")
    name = _string(raw["name"], file, "name")
    axes = _parse_axes(raw["axes"], file)
    inputs = _parse_tensors(raw["inputs"], axes, file, "inputs")
    outputs = _parse_tensors(raw["outputs"], axes, file, "outputs")
    if not outputs:
        raise ProblemError(file, "outputs", "a problem needs at least one output")
    overlap = set(inputs) & set(outputs)
    if overlap:
        raise ProblemError(file, "outputs", f"names used both as input and output: {sorted(overlap)}")
    reference = _string(raw["reference"], file, "reference")
    entry = raw.get("custom_inputs_entrypoint") or None
    if entry is not None and not isinstance(entry, str):
        raise ProblemError(file, "custom_inputs_entrypoint", "must be a function name (string) or null")
    _check_reference(reference, list(inputs), entry, file)
    constraints = raw.get("constraints") or []
    if not isinstance(constraints, list) or not all(isinstance(c, str) for c in constraints):
        raise ProblemError(file, "constraints", "must be a list of expression strings")
    for i, text in enumerate(constraints):
        try:
            check_grammar(text)
            evaluate(text, _AnyName())
        except ValueError as e:
            raise ProblemError(file, f"constraints[{i}]", f"{text!r}: {e}") from None
        except (NameError, ZeroDivisionError, TypeError):
            pass
    return Definition(
        name=name,
        description=str(raw.get("description") or ""),
        axes=axes,
        inputs=inputs,
        outputs=outputs,
        reference=reference,
        op_type=str(raw.get("op_type") or ""),
        constraints=tuple(constraints),
        custom_inputs_entrypoint=entry,
        extra={k: v for k, v in raw.items() if k not in _DEFINITION_KEYS},
    )


class _AnyName(dict):
    """Names for a grammar check of a constraint: every name exists and is 1."""

    def __contains__(self, key: object) -> bool:
        return True

    def __getitem__(self, key: str) -> int:
        return 1


def _string(value: Any, file: str | Path, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ProblemError(file, where, "must be a non-empty string")
    return value


def _parse_axes(raw: Any, file: str | Path) -> dict[str, Axis]:
    if not isinstance(raw, dict):
        raise ProblemError(file, "axes", "must be an object mapping axis names to {type, ...}")
    axes: dict[str, Axis] = {}
    for name, spec in raw.items():
        where = f"axes.{name}"
        if not name.isidentifier():
            raise ProblemError(file, where, "an axis name must be an identifier")
        if not isinstance(spec, dict) or "type" not in spec:
            raise ProblemError(file, where, 'must be an object with a "type" (const, var or expr)')
        kind = spec["type"]
        desc = str(spec.get("description") or "")
        if kind == "const":
            value = spec.get("value")
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ProblemError(
                    file, where, f"a const axis needs a non-negative integer value, got {value!r}"
                )
            axes[name] = Axis(name, kind, value=value, description=desc)
        elif kind == "var":
            axes[name] = Axis(name, kind, description=desc)
        elif kind == "expr":
            expression = spec.get("expression")
            if not isinstance(expression, str):
                raise ProblemError(file, where, 'an expr axis needs an "expression" string')
            axes[name] = Axis(name, kind, expression=expression, description=desc)
        else:
            raise ProblemError(file, where, f"unknown axis type {kind!r} (expected const, var or expr)")
    for axis in axes.values():
        if axis.kind == "expr":
            try:
                evaluate(axis.expression or "", {a: 1 for a in axes})
            except NameError as e:
                raise ProblemError(
                    file, f"axes.{axis.name}", f"expression {axis.expression!r} names unknown axis {e}"
                ) from None
            except ValueError as e:
                raise ProblemError(
                    file, f"axes.{axis.name}", f"expression {axis.expression!r}: {e}"
                ) from None
            except (ZeroDivisionError, TypeError):
                pass
    return axes


def _parse_tensors(
    raw: Any, axes: Mapping[str, Axis], file: str | Path, section: str
) -> dict[str, TensorSpec]:
    if not isinstance(raw, dict):
        raise ProblemError(file, section, "must be an object mapping names to {shape, dtype}")
    specs: dict[str, TensorSpec] = {}
    for name, spec in raw.items():
        where = f"{section}.{name}"
        if not name.isidentifier():
            raise ProblemError(file, where, "must be a Python identifier (it is a parameter of run)")
        if not isinstance(spec, dict):
            raise ProblemError(file, where, "must be an object with shape and dtype")
        if "dtype" not in spec:
            raise ProblemError(file, f"{where}.dtype", "required field is missing")
        dtype = spec["dtype"]
        if dtype not in DTYPES:
            raise ProblemError(
                file, f"{where}.dtype", f"unsupported dtype {dtype!r}; supported: {', '.join(DTYPES)}"
            )
        if "shape" not in spec:
            raise ProblemError(
                file, f"{where}.shape", "required field is missing (use [] for 0-d, null for a scalar)"
            )
        shape = spec["shape"]
        if shape is not None:
            if not isinstance(shape, list):
                raise ProblemError(file, f"{where}.shape", "must be a list of axis names, [] or null")
            dims: list[str | int] = []
            for dim in shape:
                # Published problems also write fixed sizes inline, as 1 or "1".
                if isinstance(dim, int) and not isinstance(dim, bool) and dim >= 0:
                    dims.append(dim)
                elif isinstance(dim, str) and dim.isdigit():
                    dims.append(int(dim))
                elif isinstance(dim, str) and dim in axes:
                    dims.append(dim)
                else:
                    hint = (
                        f' (a size computed from others is an axis of its own: {{"type": "expr", '
                        f'"expression": "{dim}"}})'
                        if isinstance(dim, str) and not dim.isidentifier()
                        else ""
                    )
                    raise ProblemError(
                        file, f"{where}.shape", f"unknown axis {dim!r}; axes are {', '.join(axes)}{hint}"
                    )
            shape = tuple(dims)
        specs[name] = TensorSpec(name, shape, dtype, str(spec.get("description") or ""))
    return specs


def _check_reference(source: str, inputs: list[str], entry: str | None, file: str | Path) -> None:
    try:
        tree = ast.parse(source)
    except SyntaxError as e:
        raise ProblemError(file, "reference", f"syntax error at line {e.lineno}: {e.msg}") from None
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    run = functions.get("run")
    if run is None:
        near = [n for n in functions if n.lower() in ("run", "forward", "main", "reference", "kernel")]
        hint = f" (found {', '.join(near)}; the entry point must be named run)" if near else ""
        raise ProblemError(file, "reference", f"defines no top-level function run{hint}")
    args = run.args
    if args.vararg is None:
        params = [a.arg for a in args.posonlyargs + args.args]
        n_default = len(args.defaults)
        required = params[: len(params) - n_default] if n_default else params
        if not (len(required) <= len(inputs) <= len(params)):
            raise ProblemError(
                file,
                "reference",
                f"run takes {len(params)} parameters ({', '.join(params)}) but the definition has "
                f"{len(inputs)} inputs ({', '.join(inputs)})",
            )
        for i, (param, name) in enumerate(zip(params, inputs, strict=False)):
            if param != name:
                raise ProblemError(
                    file,
                    "reference",
                    f"run's parameter {i + 1} is {param!r} but input {i + 1} is {name!r}; parameters must follow the inputs in order",
                )
    if entry is not None and entry not in functions:
        raise ProblemError(file, "custom_inputs_entrypoint", f"the reference defines no function {entry!r}")


def parse_workloads(
    text: str, definition: Definition, file: str | Path = "<workloads>"
) -> tuple[Workload, ...]:
    """Validate workload.jsonl content against a definition."""
    workloads = []
    seen: set[str] = set()
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as e:
            raise ProblemError(file, f"line {lineno}", f"invalid JSON: {e.msg}") from None
        workload = parse_workload(raw, definition, file, f"line {lineno}")
        if workload.uuid in seen:
            raise ProblemError(file, f"line {lineno}.uuid", f"duplicate workload uuid {workload.uuid!r}")
        seen.add(workload.uuid)
        workloads.append(workload)
    if not workloads:
        raise ProblemError(file, "", "no workloads")
    return tuple(workloads)


def parse_workload(
    raw: Any, definition: Definition, file: str | Path = "<workload>", where: str = ""
) -> Workload:
    """Validate one workload object against a definition."""
    prefix = f"{where}." if where else ""
    if not isinstance(raw, dict):
        raise ProblemError(file, where, "a workload must be a JSON object")
    if isinstance(raw.get("workload"), dict):  # trace-style wrapper
        raw = {**raw["workload"], **{k: v for k, v in raw.items() if k != "workload"}}
    uuid = raw.get("uuid")
    if not isinstance(uuid, str) or not uuid:
        raise ProblemError(file, f"{prefix}uuid", "required string field is missing")
    axes_raw = raw.get("axes", {})
    if not isinstance(axes_raw, dict):
        raise ProblemError(file, f"{prefix}axes", "must be an object of axis values")
    axes: dict[str, int] = {}
    for name, value in axes_raw.items():
        axis = definition.axes.get(name)
        if axis is None:
            raise ProblemError(
                file,
                f"{prefix}axes.{name}",
                f"unknown axis; the definition's axes are {', '.join(definition.axes)}",
            )
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ProblemError(file, f"{prefix}axes.{name}", f"must be a non-negative integer, got {value!r}")
        if axis.kind == "const" and value != axis.value:
            raise ProblemError(
                file,
                f"{prefix}axes.{name}",
                f"const axis is {axis.value} in the definition, workload says {value}",
            )
        if axis.kind == "var":
            axes[name] = value
    missing = [a.name for a in definition.axes.values() if a.kind == "var" and a.name not in axes]
    if missing:
        raise ProblemError(file, f"{prefix}axes", f"no value for var axes {', '.join(missing)}")
    inputs = _parse_sources(raw.get("inputs", {}), definition, file, f"{prefix}inputs")
    tolerance = _parse_tolerance(raw.get("tolerance"), file, f"{prefix}tolerance")
    unknown_outputs = [name for name, _ in tolerance.per_output if name not in definition.outputs]
    if unknown_outputs:
        raise ProblemError(
            file,
            f"{prefix}tolerance.outputs",
            f"names outputs the definition does not have: {', '.join(unknown_outputs)} "
            f"(outputs: {', '.join(definition.outputs)})",
        )
    hidden = raw.get("hidden", False)
    if not isinstance(hidden, bool):
        raise ProblemError(file, f"{prefix}hidden", "must be true or false")
    workload = Workload(
        uuid=uuid,
        axes=axes,
        inputs=inputs,
        tolerance=tolerance,
        hidden=hidden,
        extra={k: v for k, v in raw.items() if k not in _WORKLOAD_KEYS},
    )
    try:
        resolved = definition.resolve_axes(axes)
    except ProblemError as e:
        raise ProblemError(file, f"{prefix}axes", e.message) from None
    broken = definition.check_constraints(resolved)
    if broken:
        raise ProblemError(
            file, f"{prefix}axes", f"violates constraints: {'; '.join(broken)} (axes {resolved})"
        )
    return workload


def _parse_sources(raw: Any, definition: Definition, file: str | Path, where: str) -> dict[str, InputSource]:
    if not isinstance(raw, dict):
        raise ProblemError(file, where, "must be an object mapping input names to {type, ...}")
    for name in raw:
        if name not in definition.inputs:
            raise ProblemError(
                file, f"{where}.{name}", f"not an input of the definition ({', '.join(definition.inputs)})"
            )
    sources: dict[str, InputSource] = {}
    for name, spec in definition.inputs.items():
        entry = raw.get(name)
        at = f"{where}.{name}"
        if entry is None:
            raise ProblemError(file, at, "the workload gives no source for this input")
        if not isinstance(entry, dict) or entry.get("type") not in _INPUT_KINDS:
            raise ProblemError(
                file, at, f"must be an object whose type is one of {sorted(_INPUT_KINDS)}, got {entry!r}"
            )
        kind = entry["type"]
        if kind == "scalar":
            if "value" not in entry:
                raise ProblemError(file, at, "a scalar input needs a value")
            value = entry["value"]
            if not isinstance(value, int | float | bool):
                raise ProblemError(file, at, f"a scalar value must be a number or boolean, got {value!r}")
            sources[name] = InputSource(kind, value=value)
        elif kind == "safetensors":
            path = entry.get("path")
            if not isinstance(path, str) or not path:
                raise ProblemError(file, at, "a safetensors input needs a path")
            sources[name] = InputSource(kind, path=path, tensor_key=entry.get("tensor_key") or name)
        elif kind == "custom":
            if not definition.custom_inputs_entrypoint:
                raise ProblemError(
                    file, at, "custom input, but the definition has no custom_inputs_entrypoint"
                )
            sources[name] = InputSource(kind)
        else:
            if spec.is_scalar:
                raise ProblemError(file, at, "a Python scalar input cannot be random; give a scalar value")
            sources[name] = InputSource(kind)
    return sources


def _parse_tolerance(raw: Any, file: str | Path, where: str, base: Tolerance | None = None) -> Tolerance:
    """A workload's tolerance; `base` (for the per-output overrides under "outputs") supplies what an
    override leaves out."""
    if raw is None:
        return Tolerance()
    if not isinstance(raw, dict):
        raise ProblemError(file, where, "must be an object")
    inherit = base or Tolerance()

    def number(key: str, default: float | None) -> float | None:
        value = raw.get(key, default)
        if value is None:
            return None
        if not isinstance(value, int | float) or isinstance(value, bool) or value < 0 or math.isnan(value):
            raise ProblemError(file, f"{where}.{key}", f"must be a non-negative number, got {value!r}")
        return float(value)

    ratio_key = "required_matched_ratio" if "required_matched_ratio" in raw else "required_match_ratio"
    ratio = number(ratio_key, inherit.matched_ratio)
    if ratio is not None and ratio > 1:
        raise ProblemError(file, f"{where}.{ratio_key}", f"must be between 0 and 1, got {ratio}")
    allow = raw.get("allow_negative_inf", inherit.allow_negative_inf)
    if not isinstance(allow, bool):
        raise ProblemError(file, f"{where}.allow_negative_inf", "must be true or false")
    tolerance = Tolerance(
        atol=number("max_atol", inherit.atol),  # type: ignore[arg-type]
        rtol=number("max_rtol", inherit.rtol),  # type: ignore[arg-type]
        matched_ratio=ratio,  # type: ignore[arg-type]
        error_cap=number("max_error_cap", inherit.error_cap),
        allow_negative_inf=allow,
        is_default=False
        if base
        else not any(
            k in raw for k in ("max_atol", "max_rtol", "required_matched_ratio", "required_match_ratio")
        ),
    )
    overrides = raw.get("outputs")
    if overrides is None or base is not None:
        return tolerance
    if not isinstance(overrides, dict) or not all(isinstance(v, dict) for v in overrides.values()):
        raise ProblemError(file, f"{where}.outputs", "must map output names to tolerance objects")
    per_output = tuple(
        (str(name), _parse_tolerance(value, file, f"{where}.outputs.{name}", base=tolerance))
        for name, value in overrides.items()
    )
    return replace(tolerance, per_output=per_output)


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)
