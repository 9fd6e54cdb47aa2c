"""Generated stand-ins for absent FlashInfer-Trace blobs.

Some FlashInfer-Bench workloads read their index tensors (`kv_indptr`, `kv_indices`, ...) from
safetensors blobs of the trace dataset. Without the blob such a workload cannot run, and its bound cannot be
derived (DESIGN §11.2): the pages a decode step reads and the lengths of a prefill's sequences are data.
`write` makes blobs that satisfy the definition instead, at the same relative paths under a folder of the
user's choosing, so that pointing $SOLGYM_TRACE_DATA at it makes every command run as with real blobs.
What they hold is a choice, not a trace, and is the same for every run:

- `X_indptr` and `cu_seqlens`: offsets from 0 to where a constraint of the definition says they end
  (`"total_seq_len == cu_seqlens[-1].item()"`: that axis), else to the length of `X_indices` (or, with
  no such input, to the first axis of the first input whose name starts with X's first letter:
  `qo_indptr` ends at the query tokens of `q_nope`), the sequences as even as whole numbers allow;
- `X_indices`: distinct pages, `num_pages` of them at most, in a seeded random order (each sequence its own
  pages, as a serving engine allocates them), with repeats only where more indices than pages are asked for;
- `X_last_page_len`: `page_size`, every last page full;
- a float tensor (fp32, fp16, bf16: MoE routing logits): seeded standard normal draws, and zeros where
  `bias` is a word of its name (a learned correction, such as DeepSeek's routing bias, is small beside
  the logits; drawn at the logits' scale it would send every token to the same experts).

Any other blob input is refused with its name: nothing else is known about what it must hold.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch

from solgym.dtypes import dtype as schema_dtype
from solgym.inputs import derive_seed
from solgym.problem import Problem, ProblemError, Workload

SEED = 0


@dataclass(frozen=True)
class Written:
    """One blob file written: its path under the folder, and per tensor key, the tensor's shape."""

    path: str
    tensors: dict[str, list[int]]


def tensor(problem: Problem, workload: Workload, name: str) -> torch.Tensor:
    """The stand-in for input `name` of `workload` (a safetensors input of the definition)."""
    definition = problem.definition
    axes = problem.axes(workload)
    spec = definition.inputs[name]
    shape = definition.shape(spec, axes)
    dt = schema_dtype(spec.dtype)
    file, where = problem.path or problem.name, f"workload {workload.uuid} input {name}"
    if dt.is_float and shape is not None and dt.precision in ("fp32", "fp16", "bf16", "fp64"):
        if "bias" in name.split("_"):
            return torch.zeros(shape, dtype=dt.torch)
        generator = torch.Generator().manual_seed(derive_seed(SEED, workload.uuid, name))
        return torch.randn(shape, generator=generator).to(dt.torch)
    if shape is None or len(shape) != 1 or dt.kind != "int":
        raise ProblemError(file, where, "only 1-D integer index blobs and float blobs can be generated")
    (length,) = shape
    stem, kind = _role(name)
    if kind == "indptr":
        total = _indexed_length(problem, workload, stem, name)
        values = [round(i * total / max(length - 1, 1)) for i in range(length)]
        return torch.tensor(values, dtype=dt.torch)
    if kind == "indices":
        pages = axes.get("num_pages")
        if pages is None:
            raise ProblemError(file, where, "no num_pages axis to draw page indices from")
        generator = torch.Generator().manual_seed(derive_seed(SEED, workload.uuid, name))
        order = torch.randperm(pages, generator=generator)
        if length > pages:
            extra = torch.randint(0, pages, (length - pages,), generator=generator)
            order = torch.cat([order, extra])
        return order[:length].to(dt.torch)
    if kind == "last_page_len":
        size = axes.get("page_size")
        if size is None:
            raise ProblemError(file, where, "no page_size axis for full last pages")
        return torch.full((length,), size, dtype=dt.torch)
    raise ProblemError(
        file,
        where,
        "cannot generate this blob input: only FlashInfer index inputs (..._indptr, cu_seqlens, "
        "..._indices, ..._last_page_len) have a known meaning",
    )


def write(problems: Iterable[Problem], folder: str | Path, *, overwrite: bool = False) -> list[Written]:
    """Write stand-in blobs for every safetensors input of `problems` under `folder`, at the relative paths
    the workloads name. A file that exists is kept unless `overwrite`, and nothing of it is generated, so
    inputs this module refuses may be supplied by hand. Every blob of every problem is made before any is
    written, so a refusal leaves the folder as it was."""
    from safetensors.torch import save_file

    folder = Path(folder)
    planned: dict[str, dict[str, torch.Tensor]] = {}
    for problem in problems:
        for workload in problem.workloads:
            for name in workload.blobs:
                source = workload.inputs[name]
                path = _relative(problem, workload, name, source.path)
                if (folder / path).exists() and not overwrite:
                    continue  # kept as it is: nothing of it is made (a hand-made blob of an input we refuse)
                made = tensor(problem, workload, name)
                planned.setdefault(path, {})[source.tensor_key or name] = made
    written = []
    for path, tensors in planned.items():
        target = folder / path
        if target.exists() and not overwrite:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        save_file(
            {k: v.contiguous() for k, v in tensors.items()}, str(partial), metadata={"solgym": "substitute"}
        )
        partial.replace(target)
        written.append(Written(path, {k: list(v.shape) for k, v in tensors.items()}))
    return written


def _role(name: str) -> tuple[str, str]:
    """(stem, kind) of an input name: `kv_indptr` -> ("kv", "indptr"); `cu_seqlens` -> ("", "indptr")."""
    if name == "cu_seqlens" or name.endswith("_cu_seqlens"):
        return "", "indptr"
    for kind in ("indptr", "indices", "last_page_len"):
        if name == kind or name.endswith("_" + kind):
            return name[: -len(kind)].rstrip("_"), kind
    return name, ""


def _indexed_length(problem: Problem, workload: Workload, stem: str, name: str) -> int:
    """How many entries an indptr's last offset counts: the axis a constraint equates with its last entry,
    else its indices input's length, else the first axis of the first tensor input named after its stem
    (the query tokens of `qo_indptr`)."""
    definition = problem.definition
    axes = problem.axes(workload)
    for axis in _ends_at(definition.constraints, name):
        if axis in axes:
            return axes[axis]
    partner = f"{stem}_indices" if stem else "indices"
    candidates = [partner] if partner in definition.inputs else []
    candidates += [
        n for n, s in definition.inputs.items() if n != name and stem and n.startswith(stem[0]) and s.shape
    ]
    for other in candidates:
        shape = definition.shape(definition.inputs[other], axes)
        if shape:
            return shape[0]
    raise ProblemError(
        problem.path or problem.name,
        f"workload {workload.uuid} input {name}",
        "no input to say where the offsets end",
    )


def _ends_at(constraints: Iterable[str], name: str) -> list[str]:
    """The axes that constraints equate with the last entry of input `name`: `"total_q ==
    qo_indptr[-1].item()"` (either side, with or without `.item()`)."""

    def last_of(node: ast.AST) -> bool:
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "item":
            node = node.func.value
        return (
            isinstance(node, ast.Subscript)
            and isinstance(node.value, ast.Name)
            and node.value.id == name
            and isinstance(node.slice, ast.UnaryOp)
            and isinstance(node.slice.op, ast.USub)
            and isinstance(node.slice.operand, ast.Constant)
            and node.slice.operand.value == 1
        )

    axes = []
    for text in constraints:
        try:
            tree = ast.parse(text.strip(), mode="eval").body
        except SyntaxError:
            continue
        if isinstance(tree, ast.Compare) and len(tree.ops) == 1 and isinstance(tree.ops[0], ast.Eq):
            left, right = tree.left, tree.comparators[0]
            for one, other in ((left, right), (right, left)):
                if last_of(one) and isinstance(other, ast.Name):
                    axes.append(other.id)
    return axes


def _relative(problem: Problem, workload: Workload, name: str, path: str | None) -> str:
    rel = Path(path or "")
    if not path or rel.is_absolute() or ".." in rel.parts:
        raise ProblemError(
            problem.path or problem.name,
            f"workload {workload.uuid} input {name}",
            f"blob path {path!r} is not a relative path inside the dataset",
        )
    return rel.as_posix()
