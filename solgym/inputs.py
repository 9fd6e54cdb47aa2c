"""Trusted input generation and reference execution.

Inputs come only from trusted code: seeded generators driven by the definition (and the reference's own
`custom_inputs_entrypoint`), or safetensors blobs named by the workload. Every random tensor is drawn from a
distribution that exercises it — no all-ones weights or all-zero biases chosen by name — so a kernel that
skips a multiply by a weight fails.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from solgym.dtypes import dtype as schema_dtype
from solgym.problem import Problem, ProblemError, TensorSpec, Workload

# Random integer inputs are drawn from [0, INT_HIGH): non-negative so that they are valid as sizes and
# offsets, small so that they stay valid as indices into modest axes. Problems whose integer inputs have
# stronger invariants (sorted offsets, unique experts) declare a custom_inputs_entrypoint.
INT_HIGH = 64

TRACE_DATA_ENV = "SOLGYM_TRACE_DATA"


def derive_seed(seed: int, *parts: object) -> int:
    """A 63-bit seed from a base seed and labels, stable across processes and Python versions."""
    text = "\x1f".join([str(seed), *map(str, parts)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1


def make_inputs(
    problem: Problem,
    workload: Workload,
    *,
    seed: int = 0,
    device: str | torch.device = "cpu",
    data_root: str | Path | None = None,
) -> dict[str, Any]:
    """The inputs of `workload`, in the definition's order, as tensors on `device` (Python scalars for
    scalar inputs). `device="meta"` gives shape-only tensors without running any generator.

    Safetensors paths are resolved against `data_root`, then $SOLGYM_TRACE_DATA, then the problem's folder.
    """
    device = torch.device(device)
    definition = problem.definition
    axes = problem.axes(workload)
    scalars = {
        name: _scalar(spec, workload.inputs[name].value)
        for name, spec in definition.inputs.items()
        if workload.inputs[name].kind == "scalar"
    }
    custom: dict[str, Any] = {}
    needs_custom = any(src.kind == "custom" for src in workload.inputs.values())
    if needs_custom and device.type != "meta":
        custom = _custom_inputs(problem, workload, {**axes, **scalars}, seed, device)

    inputs: dict[str, Any] = {}
    for index, (name, spec) in enumerate(definition.inputs.items()):
        source = workload.inputs[name]
        shape = definition.shape(spec, axes)
        if source.kind == "scalar":
            value = scalars[name]
            inputs[name] = (
                value
                if spec.is_scalar
                else torch.tensor(value, dtype=schema_dtype(spec.dtype).torch, device=device)
            )
        elif device.type == "meta":
            inputs[name] = torch.empty(shape or (), dtype=schema_dtype(spec.dtype).torch, device=device)
        elif source.kind == "custom":
            inputs[name] = custom[name]
        elif source.kind == "safetensors":
            inputs[name] = _load_safetensors(problem, workload, name, shape, spec, data_root, device)
        else:
            inputs[name] = as_drawn(
                problem,
                name,
                random_tensor(
                    shape or (), spec.dtype, seed=derive_seed(seed, workload.uuid, index, name), device=device
                ),
            )
    files = {n: inputs[n] for n, src in workload.inputs.items() if src.kind == "safetensors"}
    broken = definition.check_data_constraints(axes, files) if files and device.type != "meta" else []
    if broken:
        raise ProblemError(
            problem.path or problem.name,
            f"workload {workload.uuid}",
            f"its data files violate constraints: {'; '.join(broken)}",
        )
    return inputs


def as_drawn(problem: Problem, name: str, value: torch.Tensor) -> torch.Tensor:
    """A random input as the FlashInfer-Trace schema draws it: the `probs` of a sampling definition
    (`op_type` "sampling") is the softmax of its normal draws over the last axis, a probability vector per
    row, as the references' `torch.multinomial` requires; every other input as drawn."""
    if (
        name == "probs"
        and problem.definition.op_type == "sampling"
        and value.is_floating_point()
        and value.dim() >= 1
        and value.device.type != "meta"
    ):
        return torch.softmax(value.float(), dim=-1).to(value.dtype)
    return value


def random_tensor(
    shape: tuple[int, ...], dtype_name: str, *, seed: int, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """A seeded random tensor of a schema dtype: standard normal for floats (clamped into fp8 range), random
    bytes for packed fp4, moderate powers of two for e8m0 scales, [0, INT_HIGH) for integers, fair coins for
    bool."""
    device = torch.device(device)
    dt = schema_dtype(dtype_name)
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    if dt.name == "float4_e2m1fn_x2":
        raw = torch.randint(0, 256, shape, generator=generator, dtype=torch.uint8, device=device)
        return raw.view(dt.torch)
    if dt.name == "float8_e8m0fnu":
        raw = torch.randint(120, 135, shape, generator=generator, dtype=torch.uint8, device=device)
        return raw.view(dt.torch)
    if dt.kind == "float":
        values = torch.randn(shape, generator=generator, dtype=torch.float32, device=device)
        if dt.precision == "fp8":
            finfo = torch.finfo(dt.torch)
            values = values.clamp(finfo.min, finfo.max)
        return values.to(dt.torch)
    if dt.kind == "bool":
        return torch.randint(0, 2, shape, generator=generator, dtype=torch.uint8, device=device).bool()
    return torch.randint(0, INT_HIGH, shape, generator=generator, dtype=torch.int64, device=device).to(
        dt.torch
    )


def random_range(dtype: torch.dtype) -> tuple[float, float, bool] | None:
    """The interval `random_tensor` draws an integer dtype's values from, uniformly (a
    `solgym.value_range.Drawn`); None for other dtypes, whose draws are unbounded or not numbers a gather
    indexes with."""
    from solgym.value_range import Drawn

    if dtype.is_floating_point or dtype.is_complex or dtype == torch.bool:
        return None
    return Drawn(0, INT_HIGH - 1)


def _scalar(spec: TensorSpec, value: Any) -> Any:
    kind = schema_dtype(spec.dtype).kind
    if kind == "bool":
        return bool(value)
    if kind == "int":
        return int(value)
    return float(value)


def _custom_inputs(
    problem: Problem, workload: Workload, axes_and_scalars: dict[str, Any], seed: int, device: torch.device
) -> dict[str, Any]:
    definition = problem.definition
    entry = definition.custom_inputs_entrypoint
    module = reference_module(problem)
    function = getattr(module, entry or "", None)
    if not callable(function):
        raise ProblemError(
            problem.path or problem.name,
            "custom_inputs_entrypoint",
            f"{entry!r} is not a function of the reference",
        )
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), kept_defaults(), on_device(device, problem):
        torch.manual_seed(derive_seed(seed, workload.uuid, "custom"))
        produced = function(dict(axes_and_scalars), device)
    if not isinstance(produced, Mapping):
        raise ProblemError(
            problem.path or problem.name,
            "custom_inputs_entrypoint",
            f"{entry} returned {type(produced).__name__}, expected a dict of inputs",
        )
    axes = problem.axes(workload)
    result = {}
    for name, source in workload.inputs.items():
        if source.kind != "custom":
            continue
        if name not in produced:
            raise ProblemError(
                problem.path or problem.name,
                "custom_inputs_entrypoint",
                f"{entry} did not produce input {name!r}",
            )
        value = produced[name]
        spec = definition.inputs[name]
        if spec.is_scalar:
            result[name] = _scalar(spec, value.item() if isinstance(value, torch.Tensor) else value)
            continue
        expected = definition.shape(spec, axes)
        if (
            not isinstance(value, torch.Tensor)
            or tuple(value.shape) != expected
            or value.dtype != schema_dtype(spec.dtype).torch
        ):
            got = (
                f"{tuple(value.shape)} {value.dtype}"
                if isinstance(value, torch.Tensor)
                else type(value).__name__
            )
            raise ProblemError(
                problem.path or problem.name,
                f"custom_inputs_entrypoint.{name}",
                f"{entry} produced {got}, the definition says {expected} {spec.dtype}",
            )
        result[name] = value.to(device)
    return result


def load_blob(
    problem: Problem, workload: Workload, name: str, *, data_root: str | Path | None = None
) -> torch.Tensor:
    """Input `name` of `workload`, a safetensors input, read from its blob onto the CPU."""
    spec = problem.definition.inputs[name]
    shape = problem.definition.shape(spec, problem.axes(workload))
    return _load_safetensors(problem, workload, name, shape, spec, data_root, torch.device("cpu"))


def _blob_roots(problem: Problem, data_root: str | Path | None = None) -> list[Path]:
    return [Path(r) for r in (data_root, os.environ.get(TRACE_DATA_ENV), problem.path) if r]


def blob_file(
    problem: Problem, workload: Workload, name: str, data_root: str | Path | None = None
) -> Path | None:
    """The file a safetensors input of a workload is read from: its relative path under `data_root`,
    $SOLGYM_TRACE_DATA or the problem's folder, the first that holds it; None where none does."""
    rel = Path(workload.inputs[name].path or "")
    return next((root / rel for root in _blob_roots(problem, data_root) if (root / rel).is_file()), None)


def blob_identity(problem: Problem, workload: Workload) -> tuple | None:
    """What the data files of a workload are now: per blob input, its file and that file's size and
    modification time; None where one is missing. Counts traced on a workload's data are kept under it,
    so that other files (another $SOLGYM_TRACE_DATA, stand-ins rewritten) are traced anew."""
    identity = []
    for name in sorted(workload.blobs):
        file = blob_file(problem, workload, name)
        if file is None:
            return None
        stat = file.stat()
        identity.append((name, str(file.resolve()), stat.st_size, stat.st_mtime_ns))
    return tuple(identity)


def _load_safetensors(
    problem: Problem,
    workload: Workload,
    name: str,
    shape: tuple[int, ...] | None,
    spec: TensorSpec,
    data_root: str | Path | None,
    device: torch.device,
) -> torch.Tensor:
    from safetensors.torch import load_file

    source = workload.inputs[name]
    rel = Path(source.path or "")
    roots = _blob_roots(problem, data_root)
    file = blob_file(problem, workload, name, data_root)
    if file is None:
        tried = ", ".join(str(r / rel) for r in roots) or str(rel)
        raise ProblemError(
            problem.path or problem.name,
            f"workload {workload.uuid} input {name}",
            f"safetensors blob {rel} not found (looked in {tried}); pass data_root or set ${TRACE_DATA_ENV} "
            "to the folder that holds the trace dataset",
        )
    tensors = load_file(str(file))
    key = source.tensor_key or name
    if key not in tensors:
        raise ProblemError(file, key, f"no tensor {key!r} in this file (it has {', '.join(tensors)})")
    tensor = tensors[key]
    expected_dtype = schema_dtype(spec.dtype).torch
    if tensor.dtype != expected_dtype or (shape is not None and tuple(tensor.shape) != shape):
        raise ProblemError(
            file,
            key,
            f"tensor is {tuple(tensor.shape)} {tensor.dtype}, the definition says {shape} {spec.dtype}",
        )
    return tensor.to(device)


_MODULES: dict[tuple[str, str], Any] = {}


def reference_module(problem: Problem) -> Any:
    """The reference executed as a module, cached per (name, source)."""
    key = (problem.name, problem.definition.reference)
    if key not in _MODULES:
        _MODULES[key] = problem.definition.reference_module()
    return _MODULES[key]


def run_reference(problem: Problem, inputs: Mapping[str, Any]) -> tuple[torch.Tensor, ...]:
    """Run the reference on `inputs` and return its outputs in the definition's order."""
    run = reference_module(problem).run
    tensors = [v for v in inputs.values() if isinstance(v, torch.Tensor)]
    device = tensors[0].device if tensors else torch.device("cpu")
    with kept_defaults(), on_device(device, problem):
        outputs = run(*(inputs[name] for name in problem.definition.inputs))
    return as_outputs(problem, outputs)


def _is_cuda(device: Any) -> bool:
    """Whether a device argument names a CUDA device: "cuda", "cuda:1", torch.device("cuda"), or an index."""
    if isinstance(device, str):
        return device == "cuda" or device.startswith("cuda:")
    if isinstance(device, int) and not isinstance(device, bool):
        return True
    return isinstance(device, torch.device) and device.type == "cuda"


class _CudaRedirected(TorchFunctionMode):
    """Tensors a reference asks for on a CUDA device by name (`torch.zeros(n, device="cuda")`, `x.cuda()`,
    `x.to("cuda")`, as references written for a GPU do) made on `device` instead: the device its inputs
    are on where there is no GPU, or the meta device of a trace."""

    def __init__(self, device: torch.device):
        super().__init__()
        self.device = device

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        if _is_cuda(kwargs.get("device")):
            kwargs = {**kwargs, "device": self.device}
        if func is torch.Tensor.cuda:
            return args[0]
        if func is torch.Tensor.to and any(_is_cuda(a) for a in args[1:]):
            args = (args[0], *(self.device if _is_cuda(a) else a for a in args[1:]))
        return func(*args, **kwargs)


class _NoStream:
    """A CUDA stream or event where there is no GPU: each call orders nothing, as on one stream."""

    def __init__(self, *args: Any, **kwargs: Any):
        pass

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: True if name == "query" else None

    def __enter__(self) -> _NoStream:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def _returning(value: Any) -> Any:
    # A function object of its own for each name: torch's compiler keeps one rule per torch function.
    return lambda *args, **kwargs: value


def _asks_for_a_gpu(name: str) -> Any:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(
            f"the reference calls torch.cuda.{name}(), which asks which GPU it runs on; there is none here, "
            "so the branch it would take is unknown"
        )

    return refuse


# torch.cuda's runtime calls, as they act without a GPU: ordering, memory and profiling calls do nothing to
# the values a reference computes, a stream is one stream; questions about the device have no answer.
_CUDA_RUNTIME = {
    **{
        name: _returning(None)
        for name in "synchronize empty_cache set_device set_stream reset_peak_memory_stats ipc_collect".split()
    },
    **{
        name: _returning(0)
        for name in "memory_allocated max_memory_allocated memory_reserved current_device".split()
    },
    **{
        name: type(name, (_NoStream,), {})
        for name in "Stream Event current_stream default_stream stream".split()
    },
    **{
        name: _asks_for_a_gpu(name)
        for name in ("get_device_capability", "get_device_properties", "get_device_name")
    },
}
_NVTX = {
    **{name: _returning(None) for name in "range_push range_pop mark range_start range_end".split()},
    "range": type("range", (_NoStream,), {}),
}


@contextlib.contextmanager
def _without_cuda_runtime(device: torch.device) -> Iterator[None]:
    """torch.cuda's runtime calls answered as `_CUDA_RUNTIME` says, and `torch.set_default_device("cuda")`
    made `device`, while a reference written for a GPU runs where there is none."""
    set_default_device = torch.set_default_device

    def redirected(target: Any) -> None:
        set_default_device(device if _is_cuda(target) else target)

    saved = [(torch.cuda, name, getattr(torch.cuda, name)) for name in _CUDA_RUNTIME]
    saved += [(torch.cuda.nvtx, name, getattr(torch.cuda.nvtx, name)) for name in _NVTX]
    saved.append((torch, "set_default_device", set_default_device))
    try:
        for name, stand_in in _CUDA_RUNTIME.items():
            setattr(torch.cuda, name, stand_in)
        for name, stand_in in _NVTX.items():
            setattr(torch.cuda.nvtx, name, stand_in)
        torch.set_default_device = redirected
        yield
    finally:
        for owner, name, value in saved:
            setattr(owner, name, value)


@contextlib.contextmanager
def on_device(device: torch.device, problem: Problem) -> Iterator[None]:
    """Run a problem's reference (or its entry point) with its CUDA requests made on `device`; on a CUDA
    device, or where the reference never names CUDA, as they are (no mode to pay for on every op)."""
    if device.type == "cuda" or "cuda" not in (problem.definition.reference or ""):
        yield
        return
    with _CudaRedirected(device), _without_cuda_runtime(device):
        yield


@contextlib.contextmanager
def kept_defaults() -> Iterator[None]:
    """torch's process-wide defaults (dtype, device) as they were, whatever the reference sets while it
    runs (`torch.set_default_dtype(torch.float64)` would otherwise change every later problem's tensors).
    The CPU, torch's own default, is restored as no default at all: setting it would leave a device mode on
    torch's function-mode stack for the rest of the process, which every later torch call in it (the
    caller's own training loop included) passes through."""
    dtype, device = torch.get_default_dtype(), torch.get_default_device()
    try:
        yield
    finally:
        torch.set_default_dtype(dtype)
        torch.set_default_device(None if device == torch.device("cpu") else device)


def as_outputs(problem: Problem, outputs: Any) -> tuple[Any, ...]:
    """Normalise what a `run` returned (one tensor, a tuple/list, or a dict keyed by output name, as
    FlashInfer-Trace references return `{"output": o, "lse": lse}`) to a tuple in output order."""
    expected = len(problem.definition.outputs)
    if isinstance(outputs, dict):
        names = list(problem.definition.outputs)
        if set(outputs) != set(names):
            raise ValueError(
                f"run returned a dict with keys {sorted(map(str, outputs))}, the definition's outputs are "
                f"{', '.join(names)}"
            )
        return tuple(outputs[name] for name in names)
    if isinstance(outputs, list | tuple):
        result = tuple(outputs)
    else:
        result = (outputs,)
    if len(result) != expected:
        raise ValueError(
            f"run returned {len(result)} outputs, the definition has {expected} ({', '.join(problem.definition.outputs)})"
        )
    return result


def footprint_bytes(problem: Problem, workload: Workload) -> int:
    """Bytes of all tensor inputs and outputs of a workload at their own dtypes."""
    axes = problem.axes(workload)
    total = 0.0
    for spec in (*problem.definition.inputs.values(), *problem.definition.outputs.values()):
        shape = problem.definition.shape(spec, axes)
        if shape is not None:
            numel = 1
            for n in shape:
                numel *= n
            total += numel * schema_dtype(spec.dtype).bytes_per_element
    return int(total)


def shrink(problem: Problem, workload: Workload, max_bytes: int) -> Workload:
    """A copy of `workload` whose var axes are halved, largest first, until its footprint fits `max_bytes`
    (used to run big problems on a CPU). Returns the smallest valid workload found if none fits; axes that
    would break a constraint or an expression are left alone. A workload that reads data files (index
    blobs) is returned as it is: their values address its full axes (page numbers, offsets). Where a random
    integer input may index an axis (drawn in [0, INT_HIGH), as slot or expert ids are), no axis is halved
    below INT_HIGH: the ids would point past it."""
    if workload.blobs:
        return workload
    ints = any(
        workload.inputs[name].kind == "random" and schema_dtype(spec.dtype).kind == "int"
        for name, spec in problem.definition.inputs.items()
    )
    floor = INT_HIGH if ints else 1
    current = workload
    frozen: set[str] = set()
    while footprint_bytes(problem, current) > max_bytes:
        candidates = [(v, k) for k, v in current.axes.items() if v // 2 >= floor and k not in frozen]
        if not candidates:
            break
        _, axis = max(candidates)
        trial = current.with_axes(**{axis: max(1, current.axes[axis] // 2)})
        try:
            resolved = problem.definition.resolve_axes(trial.axes)
        except ProblemError:
            frozen.add(axis)
            continue
        if problem.definition.check_constraints(resolved):
            frozen.add(axis)
            continue
        current = trial
    return current
