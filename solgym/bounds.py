"""Speed-of-light bounds: the least time any correct kernel can take for a workload on a device.

The reference is counted once per workload (`solgym.opcount`: multiply-accumulates by operand precision,
other arithmetic, the bytes each input must be read and each output written) and the counts are priced
against a hardware `Profile`:

    compute_ms = sum over precision classes of 2 * MACs / peak(priced class)
    memory_ms  = (bytes read + bytes written) / DRAM bandwidth
    roofline   = max(compute_ms, memory_ms)

Two conventions price the same counts (every `Bound` names its own):

- `physical` (default): each tensor at its own dtype; contractions of fp32/tf32 operands at the BF16/FP16
  tensor-core rate (the usual tolerances admit bf16 math) unless the definition sets `"min_precision"` to
  `"tf32"` or `"fp32"`; FP8/FP4 rates for contractions whose operands are (or were dequantized from)
  fp8/fp4. T_SOL = max(roofline, the profile's latency floor), the floor switchable off.
- `solar`: SOL-ExecBench's published pricing. Every tensor of a non-quantized problem at 2 bytes per
  element and every MAC at the BF16 tensor-core rate; a quantized problem (FP8 / NVFP4 in its name or
  dtypes) at 1 byte (FP8) or 0.5 byte (NVFP4) per element and its MACs at the FP8 / FP4 rate; bool tensors
  at no bytes; plus a constant 0.4 us (dropped with `floor=False`), except where a quantized problem is
  compute-bound.

Non-contraction arithmetic adds no compute time in either convention; it is reported as `flops_other`.
A bound must never exceed what a correct kernel can do, so wherever a count is uncertain it errs low.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from solgym import count_cache
from solgym.dtypes import DTYPES
from solgym.hardware import Profile
from solgym.inputs import blob_identity
from solgym.opcount import OpCounts, count, source_key
from solgym.problem import Problem, ProblemError, Workload

CONVENTIONS = ("physical", "solar")
SOLAR_CONSTANT_MS = 0.0004  # added to every published SOL-ExecBench bound
MIN_PRECISIONS = ("bf16", "tf32", "fp32")

_FAST_16 = ("bf16", "fp16")


@dataclass(frozen=True)
class Bound:
    """The speed-of-light bound of one workload on one device, with everything it was derived from.

    Times are in ms. `roofline_ms` = max(`compute_ms`, `memory_ms`); `t_sol_ms` adds the latency floor
    (`physical`: max with it; `solar`: its constant added). `bound_by` is "compute", "memory" or "floor".
    `priced_as` maps each counted operand precision to the tensor-core class it was priced at."""

    workload: str
    t_sol_ms: float
    roofline_ms: float
    floor_ms: float
    compute_ms: float
    memory_ms: float
    bound_by: str
    macs_by_precision: dict[str, float]
    priced_as: dict[str, str]
    flops_other: float
    bytes_read: float
    bytes_written: float
    convention: str
    profile: str
    traced_on: str
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        d = asdict(self)
        d["notes"] = list(self.notes)
        return d


# ------------------------------------------------------------------------------------------------- counts

_COUNTS: dict[tuple, OpCounts] = {}
_NEEDS_DATA: set[str] = set()


def counts(problem: Problem, workload: Workload) -> OpCounts:
    """The op counts of a workload, cached per (problem, axes, input sources) for meta traces and per
    workload for traces on data (whose inputs depend on the workload's seed and data files): in this
    process, and on disk across processes (`solgym.count_cache`)."""
    pkey = count_cache.problem_key(problem)
    axes = tuple(sorted(problem.axes(workload).items()))
    files = blob_identity(problem, workload) if workload.blobs else ()
    meta_key = (pkey, axes, source_key(workload), files)
    if files is not None and meta_key in _COUNTS:
        return _COUNTS[meta_key]
    data_key = (*meta_key, workload.uuid)
    if files is not None and data_key in _COUNTS:
        return _COUNTS[data_key]
    on_data = pkey in _NEEDS_DATA
    for kind in (True,) if on_data else (False, True):
        stored = count_cache.load(count_cache.key(problem, workload, on_data=kind))
        if stored is not None:
            _COUNTS[data_key if kind else meta_key] = stored
            return stored
    if on_data:
        from solgym.opcount import count_on_data

        try:
            result = count_on_data(problem, workload)
        except (ProblemError, MemoryError):
            raise
        except Exception as e:  # noqa: BLE001 - the reference fails on this workload's data: say so
            raise ProblemError(
                problem.path or problem.name,
                "reference",
                f"cannot be counted for workload {workload.uuid}: on CPU data, {type(e).__name__}: "
                f"{str(e).splitlines()[0][:300] if str(e) else ''}",
            ) from e
        result.notes.insert(0, "the reference reads tensor values; traced on data")
    else:
        result = count(problem, workload)
    on_data = result.traced_on != "meta"
    if on_data:
        _NEEDS_DATA.add(pkey)
    _COUNTS[data_key if on_data else meta_key] = result
    count_cache.store(count_cache.key(problem, workload, on_data=on_data), result)
    return result


# -------------------------------------------------------------------------------------------------- pricing


def quantized_class(problem: Problem) -> str | None:
    """ "fp4" or "fp8" when SOL-ExecBench would call the problem quantized (by name or dtypes), else None."""
    name = problem.name.lower()
    precisions = {
        DTYPES[s.dtype].precision
        for s in (*problem.definition.inputs.values(), *problem.definition.outputs.values())
        if s.dtype in DTYPES
    }
    if "nvfp4" in name or "fp4" in name or "fp4" in precisions:
        return "fp4"
    if "fp8" in name or "fp8" in precisions:
        return "fp8"
    return None


def solar_widths(problem: Problem) -> dict[str, float]:
    """Bytes per element of every input and output under the published pricing: 0.5 (NVFP4) or 1 (FP8) in a
    quantized problem, else 2, whatever the declared dtype; bool tensors (masks) cost nothing. The published
    values of `001_attention_softmax_dropout_value_matmul_backward`, whose bool dropout mask is as large as
    its three bf16 score tensors, are its other tensors' traffic alone on all 16 workloads (docs/bounds.md)."""
    width = {"fp4": 0.5, "fp8": 1.0}.get(quantized_class(problem) or "", 2.0)
    specs = {**problem.definition.inputs, **problem.definition.outputs}
    return {name: 0.0 if spec.dtype == "bool" else width for name, spec in specs.items()}


def _peak(profile: Profile, precision: str) -> tuple[str, float]:
    """The rate for a priced class, falling back to the nearest wider class the profile knows."""
    fallbacks = {
        "fp4": ("fp4", "fp8", "bf16", "fp16"),
        "fp8": ("fp8", "bf16", "fp16"),
        "int8": ("int8", "fp8", "bf16"),
        "bf16": ("bf16", "fp16"),
        "fp16": ("fp16", "bf16"),
        "tf32": ("tf32", "fp32"),
        "fp32": ("fp32",),
        "fp64": ("fp64", "fp32"),
    }
    for p in fallbacks.get(precision, (precision,)):
        rate = profile.peak(p)
        if rate:
            return p, rate
    raise ValueError(
        f"profile {profile.name} has no compute peak for {precision} (or a wider class); cannot price MACs"
    )


def _physical_class(precision: str, min_precision: str) -> str:
    if precision in ("fp32", "tf32"):
        return {"bf16": "bf16", "tf32": "tf32", "fp32": "fp32"}[min_precision]
    if precision == "int":
        return "int8"  # the fastest integer rate; an int64 contraction can only be slower
    return precision


def _min_precision(problem: Problem) -> str:
    value = problem.definition.extra.get("min_precision", "bf16")
    if value in ("bfloat16", "float16", "fp16"):
        value = "bf16"
    if value in ("float32",):
        value = "fp32"
    if value not in MIN_PRECISIONS:
        raise ProblemError(
            problem.path or problem.name,
            "min_precision",
            f"must be one of {', '.join(MIN_PRECISIONS)}, got {value!r}",
        )
    return value


def price(
    problem: Problem,
    workload: Workload,
    c: OpCounts,
    profile: Profile,
    *,
    convention: str = "physical",
    floor: bool = True,
) -> Bound:
    """Price op counts on a profile under a convention (see the module docstring)."""
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown convention {convention!r}; choose one of {', '.join(CONVENTIONS)}")
    if not profile.dram_bytes_per_s:
        raise ValueError(f"profile {profile.name} has no DRAM bandwidth; cannot price bytes")
    notes = list(c.notes)
    quantized = quantized_class(problem)
    priced_as: dict[str, str] = {}
    fallbacks: dict[str, str] = {}  # a class the profile has no peak for -> the one priced instead
    compute_s = 0.0
    if convention == "solar":
        width = solar_widths(problem)
        bytes_read = sum(n * width[name] for name, n in c.read_elements.items())
        bytes_written = sum(n * width[name] for name, n in c.write_elements.items())
        cls, rate = _peak(profile, quantized or "bf16")
        for p, m in c.macs.items():
            priced_as[p] = cls
            compute_s += 2 * m / rate
            if cls != (quantized or "bf16"):
                fallbacks[quantized or "bf16"] = cls
    else:
        bytes_read = sum(c.read_bytes.values())
        bytes_written = sum(c.write_bytes.values())
        minimum = _min_precision(problem)
        found_quantized = any(p in ("fp8", "fp4") for p in c.macs)
        for p, m in c.macs.items():
            wanted = _physical_class(p, minimum)
            if quantized and not found_quantized and p not in ("fp64",):
                # Dequantization that the trace could not follow (bit unpacking, lookup tables): a kernel may
                # still feed the quantized operands to the tensor cores, so price them there.
                wanted = quantized
            cls, rate = _peak(profile, wanted)
            priced_as[p] = cls
            compute_s += 2 * m / rate
            if cls != wanted:
                fallbacks[wanted] = cls
        if quantized and not found_quantized and c.macs:
            notes.append(f"quantized problem: contractions priced at the {quantized} rate")
    for wanted, cls in sorted(fallbacks.items()):
        notes.append(
            f"{wanted} contractions priced at the {cls} peak: profile {profile.name} has no {wanted} rate"
        )
    compute_ms = compute_s * 1e3
    memory_ms = (bytes_read + bytes_written) / profile.dram_bytes_per_s * 1e3
    roofline = max(compute_ms, memory_ms)
    bound_by = "compute" if compute_ms > memory_ms else "memory"
    floor_ms = 0.0
    if convention == "solar":
        # The published bounds of quantized problems add no constant where compute binds: on every such
        # workload of the FP8 and NVFP4 dev problems they are their compute time times one factor per problem.
        constant = not (quantized and compute_ms > memory_ms)
        floor_ms = SOLAR_CONSTANT_MS if floor and constant else 0.0
        t_sol = roofline + floor_ms
    else:
        if floor:
            if profile.launch_floor_ms is None:
                notes.append(f"profile {profile.name} has no latency floor; none applied")
            else:
                floor_ms = profile.launch_floor_ms
        t_sol = max(roofline, floor_ms)
        if floor_ms > roofline:
            bound_by = "floor"
    return Bound(
        workload=workload.uuid,
        t_sol_ms=t_sol,
        roofline_ms=roofline,
        floor_ms=floor_ms,
        compute_ms=compute_ms,
        memory_ms=memory_ms,
        bound_by=bound_by,
        macs_by_precision=dict(c.macs),
        priced_as=priced_as,
        flops_other=c.flops_other,
        bytes_read=bytes_read,
        bytes_written=bytes_written,
        convention=convention,
        profile=profile.name,
        traced_on=c.traced_on,
        notes=tuple(notes),
    )


def derive(
    problem: Problem,
    workload: Workload,
    profile: Profile,
    *,
    convention: str = "physical",
    floor: bool = True,
) -> Bound:
    """The speed-of-light bound of one workload, derived from the reference alone."""
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown convention {convention!r}; choose one of {', '.join(CONVENTIONS)}")
    return price(problem, workload, counts(problem, workload), profile, convention=convention, floor=floor)


def derive_all(
    problem: Problem, profile: Profile, *, convention: str = "physical", floor: bool = True
) -> list[Bound]:
    """Bounds of every workload of a problem, in workload order."""
    from solgym.opcount import release_inputs

    try:
        return [derive(problem, w, profile, convention=convention, floor=floor) for w in problem.workloads]
    finally:
        release_inputs()
