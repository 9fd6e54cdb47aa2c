"""Hardware profiles: what a GPU (or this CPU) can do at best, with the source of every number.

Bounds are priced against datasheet peaks (never measured ones) so that a bound is never above what the
hardware can do. Compute peaks scale linearly with the SM clock; DRAM bandwidth does not.

NVIDIA quotes some peaks at different clocks on the same GPU: on H100 SXM the CUDA-core and FP64 figures
hold at the 1980 MHz boost clock while the tensor-core figures hold at 1830 MHz. A profile therefore
records, per precision class, the clock its peak is quoted at (`peak_clocks_mhz`), so that `at_clock`
scales every figure from its own clock. Sparse (2:4) figures are halved to dense ones everywhere.

Detection reads the device name through NVML (`nvidia-ml-py`), which never initialises CUDA, so the
process that asks stays free of a CUDA context. Without NVML or a GPU, `detect` returns a CPU profile
measured on the spot, so the whole pipeline runs on a machine without a GPU.
"""

from __future__ import annotations

import functools
import os
import re
import statistics
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

# Precision classes priced by bounds. Dense peaks in FLOP/s (one multiply-accumulate = 2 FLOP).
PRECISIONS = ("fp64", "fp32", "tf32", "bf16", "fp16", "fp8", "int8", "fp4")
TENSOR_PRECISIONS = ("tf32", "bf16", "fp16", "fp8", "int8", "fp4")

_T = 1e12  # tera
_MIB = 1 << 20


@dataclass(frozen=True)
class Profile:
    """One device's peaks. `peaks` maps a precision class to dense FLOP/s (tensor cores where the class
    has them; `fp32` is the CUDA-core rate), each quoted at `peak_clocks_mhz[precision]`, or at
    `peak_clock_mhz` (the boost clock) when that map has no entry. A class the device cannot run is absent
    from `peaks`. `dram_bytes_per_s` is 0.0 when unknown; `l2_bytes` is the last-level cache on a CPU."""

    name: str
    slug: str
    sm_count: int
    peak_clock_mhz: float
    dram_bytes_per_s: float
    l2_bytes: int
    memory_bytes: int
    peaks: dict[str, float]
    launch_floor_ms: float | None = None  # empty-kernel time under solgym's timing method
    sources: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    is_cpu: bool = False
    peak_clocks_mhz: dict[str, float] = field(default_factory=dict)

    def peak(self, precision: str) -> float | None:
        """Dense FLOP/s for a precision class, None when unknown."""
        return self.peaks.get(precision)

    def clock_of(self, precision: str) -> float:
        """The SM clock (MHz) at which `peak(precision)` is quoted."""
        return self.peak_clocks_mhz.get(precision, self.peak_clock_mhz)

    def at_clock(self, sm_clock_mhz: float) -> Profile:
        """The same device with compute peaks scaled to another SM clock (e.g. clocks locked at 1500 MHz).
        DRAM bandwidth is unchanged: it follows the memory clock, not the SM clock."""
        if self.is_cpu:
            raise ValueError("a CPU profile is measured, not quoted at a clock; it cannot be rescaled")
        if sm_clock_mhz <= 0:
            raise ValueError(f"SM clock must be positive, got {sm_clock_mhz} MHz")
        unknown = [k for k in self.peaks if self.clock_of(k) <= 0]
        if unknown:
            raise ValueError(f"{self.name}: no clock is known for the peaks of {unknown}; cannot rescale")
        return replace(
            self,
            peak_clock_mhz=sm_clock_mhz,
            peaks={k: v * sm_clock_mhz / self.clock_of(k) for k, v in self.peaks.items()},
            peak_clocks_mhz={},
            notes=(*self.notes, f"compute peaks scaled to SM clock {sm_clock_mhz:g} MHz"),
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field, with each peak's quote clock filled in."""
        d = asdict(self)
        d["notes"] = list(self.notes)
        d["peak_clocks_mhz"] = {k: self.clock_of(k) for k in self.peaks}
        return d


# ---------------------------------------------------------------------------------------------------------
# The GPU table. Peaks are given in TFLOP/s (TOPS for int8) as the vendor prints them, dense.

_H100_DS = "NVIDIA H100 Tensor Core GPU datasheet"
_H100_WP = "NVIDIA H100 Tensor Core GPU Architecture whitepaper (Hopper)"
_H200_DS = "NVIDIA H200 Tensor Core GPU datasheet"
_A100_DS = "NVIDIA A100 Tensor Core GPU datasheet"
_A100_WP = "NVIDIA A100 Tensor Core GPU Architecture whitepaper (Ampere)"
_B200_DS = "NVIDIA HGX B200 / DGX B200 datasheet (per-GPU column)"
_GB200_DS = "NVIDIA GB200 NVL72 datasheet (per-GPU column)"
_L40S_DS = "NVIDIA L40S datasheet"
_L4_DS = "NVIDIA L4 Tensor Core GPU datasheet"
_ADA_WP = "NVIDIA Ada GPU Architecture whitepaper, appendix (GeForce RTX 4090)"
_BW_RTX_WP = "NVIDIA RTX Blackwell GPU Architecture whitepaper, appendix (GeForce RTX 5090)"
_SPARSE = "; the vendor quotes it with 2:4 sparsity, halved here to the dense rate"
_FLOOR_SOURCE = (
    "measured on an H100 80GB HBM3 (driver 580.159.04, torch 2.11), 2026-11-26: a one-element kernel's "
    "duration in the PyTorch profiler (solgym's timing method), median of 100, 0.99 us; Hopper parts share "
    "it until `solgym hw --calibrate` measures them"
)
_ADA_FP64 = "derived: FP64 runs on CUDA cores at 1/64 of the FP32 rate (2 FP64 units per SM, {wp}); not on the datasheet"


def _gpu(
    name: str,
    slug: str,
    *,
    sm_count: int,
    boost_mhz: float,
    tensor_mhz: float,
    dram: float,
    l2_mib: int,
    memory_gb: float,
    tflops: dict[str, float],
    sources: dict[str, str],
    notes: tuple[str, ...] = (),
    launch_floor_ms: float | None = None,
) -> Profile:
    """A table entry: tensor-core classes are quoted at `tensor_mhz`, fp32/fp64 at the boost clock."""
    floor_source = {"launch_floor_ms": _FLOOR_SOURCE} if launch_floor_ms is not None else {}
    return Profile(
        name=name,
        slug=slug,
        sm_count=sm_count,
        peak_clock_mhz=boost_mhz,
        dram_bytes_per_s=dram,
        l2_bytes=l2_mib * _MIB,
        memory_bytes=int(memory_gb * 1e9),
        peaks={k: v * _T for k, v in tflops.items()},
        launch_floor_ms=launch_floor_ms,
        sources={**sources, **floor_source},
        notes=notes,
        peak_clocks_mhz={k: tensor_mhz for k in tflops if k in TENSOR_PRECISIONS},
    )


def _a100(name: str, slug: str, *, dram: float, memory_gb: int) -> Profile:
    """An A100 SXM4: the 40 GB and 80 GB parts differ only in memory size and bandwidth."""
    return _gpu(
        name,
        slug,
        sm_count=108,
        boost_mhz=1410,
        tensor_mhz=1410,
        dram=dram,
        l2_mib=40,
        memory_gb=memory_gb,
        tflops={"fp64": 19.5, "fp32": 19.5, "tf32": 156.0, "bf16": 312.0, "fp16": 312.0, "int8": 624.0},
        sources={
            "sm_count": _A100_WP,
            "peak_clock_mhz": _A100_WP,
            "dram_bytes_per_s": _A100_DS,
            "l2_bytes": _A100_WP,
            "memory_bytes": _A100_DS,
            "fp64": f"{_A100_DS}: FP64 tensor core (CUDA-core FP64 is half, 9.7)",
            "fp32": f"{_A100_DS}: CUDA core",
            "tf32": f"{_A100_DS} (dense figure; 312 sparse)",
            "bf16": f"{_A100_DS} (dense figure; 624 sparse)",
            "fp16": f"{_A100_DS} (dense figure; 624 sparse)",
            "int8": f"{_A100_DS} (dense figure; 1248 sparse)",
        },
    )


def _hopper_sxm(name: str, slug: str, dram: float, memory_gb: float, datasheet: str, floor: float) -> Profile:
    # H100 SXM and H200 share the GH100 configuration and the same compute figures.
    return _gpu(
        name,
        slug,
        sm_count=132,
        boost_mhz=1980,
        tensor_mhz=1830,
        dram=dram,
        l2_mib=50,
        memory_gb=memory_gb,
        tflops={
            "fp64": 66.9,
            "fp32": 66.9,
            "tf32": 494.7,
            "bf16": 989.4,
            "fp16": 989.4,
            "fp8": 1978.9,
            "int8": 1978.9,
        },
        sources={
            "sm_count": _H100_WP,
            "peak_clock_mhz": f"{_H100_WP}: CUDA-core and FP64 figures hold at 1980 MHz, tensor-core figures at 1830 MHz",
            "dram_bytes_per_s": datasheet,
            "l2_bytes": _H100_WP,
            "memory_bytes": datasheet,
            "fp64": f"{_H100_WP} / {datasheet}: FP64 tensor core (CUDA-core FP64 is half, 33.5)",
            "fp32": f"{datasheet} / {_H100_WP}: CUDA core",
            "tf32": f"{datasheet} / {_H100_WP}{_SPARSE} (989.4 sparse)",
            "bf16": f"{datasheet} / {_H100_WP}{_SPARSE} (1978.9 sparse)",
            "fp16": f"{datasheet} / {_H100_WP}{_SPARSE} (1978.9 sparse)",
            "fp8": f"{datasheet} / {_H100_WP}{_SPARSE} (3957.8 sparse)",
            "int8": f"{datasheet} / {_H100_WP}{_SPARSE} (3957.8 sparse)",
        },
        launch_floor_ms=floor,
    )


def _blackwell_dc(
    name: str,
    slug: str,
    *,
    dram: float,
    memory_gb: float,
    boost_mhz: float,
    tensor_mhz: float,
    bf16: float,
    fp32: float,
    fp64: float,
    ds: str,
    tf32_note: str,
    dram_source: str,
    notes: tuple[str, ...],
) -> Profile:
    # B200 and GB200 use the same dual-die GPU; the datasheets differ in clocks (1000 W vs 1200 W) only.
    return _gpu(
        name,
        slug,
        sm_count=148,
        boost_mhz=boost_mhz,
        tensor_mhz=tensor_mhz,
        dram=dram,
        l2_mib=126,
        memory_gb=memory_gb,
        # TF32, FP8, INT8 and FP4 rates are 1/2, 2x, 2x and 4x the BF16 rate per SM (5th-gen tensor core).
        tflops={
            "fp64": fp64,
            "fp32": fp32,
            "tf32": bf16 / 2,
            "bf16": bf16,
            "fp16": bf16,
            "fp8": 2 * bf16,
            "int8": 2 * bf16,
            "fp4": 4 * bf16,
        },
        sources={
            "sm_count": "148 SMs (2 dies x 74 enabled), as CUDA device properties report on B200; NVIDIA's datasheets give no SM count",
            "peak_clock_mhz": f"implied by {ds}: FP32 {fp32:g} TFLOP/s = SMs x 256 FLOP/clk x clock; tensor figures at {tensor_mhz:g} MHz",
            "dram_bytes_per_s": dram_source,
            "l2_bytes": "126 MB as CUDA device properties report on B200 (NVIDIA publishes no L2 size)",
            "memory_bytes": ds,
            "fp64": f"{ds}: FP64 = FP64 tensor core (no faster tensor-core FP64 on Blackwell)",
            "fp32": f"{ds}: CUDA core",
            "tf32": f"{ds}{_SPARSE}; half the BF16 rate, as the 5th-gen tensor core runs it ({tf32_note})",
            "bf16": f"{ds}{_SPARSE}",
            "fp16": f"{ds}{_SPARSE}",
            "fp8": f"{ds}{_SPARSE}",
            "int8": f"{ds}{_SPARSE}",
            "fp4": f"{ds}{_SPARSE} (NVFP4)",
        },
        notes=notes,
    )


_B200_TENSOR_MHZ = (
    1500 * 2250 / 1811
)  # 1863.6 MHz: the clock at which SOL-ExecBench's 1.811 PFLOP/s @ 1500 MHz is 2.25

_TABLE = (
    _hopper_sxm("NVIDIA H100 SXM5 80GB", "h100-sxm", 3.35 * _T, 80, _H100_DS, 0.001),
    _gpu(
        "NVIDIA H100 PCIe 80GB",
        "h100-pcie",
        sm_count=114,
        boost_mhz=1755,
        tensor_mhz=1620,
        dram=2.0 * _T,
        l2_mib=50,
        memory_gb=80,
        tflops={
            "fp64": 51.2,
            "fp32": 51.2,
            "tf32": 378.0,
            "bf16": 756.5,
            "fp16": 756.5,
            "fp8": 1513.0,
            "int8": 1513.0,
        },
        sources={
            "sm_count": _H100_WP,
            "peak_clock_mhz": f"{_H100_WP}: boost 1755 MHz; tensor-core figures imply 1620 MHz (114 SMs x 4096 FLOP/clk)",
            "dram_bytes_per_s": _H100_DS,
            "l2_bytes": _H100_WP,
            "memory_bytes": _H100_DS,
            "fp64": f"{_H100_WP}: FP64 tensor core (datasheet 51; CUDA-core FP64 is half)",
            "fp32": f"{_H100_WP}: CUDA core (datasheet 51)",
            "tf32": f"{_H100_DS}{_SPARSE} (756 sparse)",
            "bf16": f"{_H100_DS}{_SPARSE} (1513 sparse)",
            "fp16": f"{_H100_DS}{_SPARSE} (1513 sparse)",
            "fp8": f"{_H100_DS}{_SPARSE} (3026 sparse)",
            "int8": f"{_H100_DS}{_SPARSE} (3026 sparse)",
        },
        launch_floor_ms=0.001,
    ),
    _gpu(
        "NVIDIA H100 NVL 94GB",
        "h100-nvl",
        sm_count=132,
        boost_mhz=1785,
        tensor_mhz=1545,
        dram=3.9 * _T,
        l2_mib=50,
        memory_gb=94,
        tflops={
            "fp64": 60.0,
            "fp32": 60.0,
            "tf32": 417.5,
            "bf16": 835.5,
            "fp16": 835.5,
            "fp8": 1670.5,
            "int8": 1670.5,
        },
        sources={
            "sm_count": _H100_WP,
            "peak_clock_mhz": f"{_H100_DS} (H100 NVL): boost 1785 MHz; tensor-core figures imply 1545 MHz",
            "dram_bytes_per_s": f"{_H100_DS} (H100 NVL)",
            "l2_bytes": _H100_WP,
            "memory_bytes": f"{_H100_DS} (H100 NVL)",
            "fp64": f"{_H100_DS} (H100 NVL): FP64 tensor core (CUDA-core FP64 is half, 30)",
            "fp32": f"{_H100_DS} (H100 NVL): CUDA core",
            "tf32": f"{_H100_DS} (H100 NVL){_SPARSE} (835 sparse)",
            "bf16": f"{_H100_DS} (H100 NVL){_SPARSE} (1671 sparse)",
            "fp16": f"{_H100_DS} (H100 NVL){_SPARSE} (1671 sparse)",
            "fp8": f"{_H100_DS} (H100 NVL){_SPARSE} (3341 sparse)",
            "int8": f"{_H100_DS} (H100 NVL){_SPARSE} (3341 sparse)",
        },
        launch_floor_ms=0.001,
    ),
    _hopper_sxm("NVIDIA H200 SXM 141GB", "h200", 4.8 * _T, 141, _H200_DS, 0.001),
    _blackwell_dc(
        "NVIDIA B200",
        "b200",
        dram=7.667 * _T,
        memory_gb=180,
        boost_mhz=1980,
        tensor_mhz=_B200_TENSOR_MHZ,
        bf16=2250.0,
        fp32=75.0,
        fp64=37.0,
        ds=_B200_DS,
        tf32_note="the datasheet prints 2.2 PFLOP/s sparse, 2.25 rounded",
        dram_source=f"{_B200_DS}: 7.7 TB/s; 7.667 TB/s is SOL-ExecBench's figure for DRAM at 3996 MHz",
        notes=(
            "DRAM 7.667 TB/s: the datasheet's 7.7 TB/s, as SOL-ExecBench prices it with DRAM at 3996 MHz",
            "tensor peaks quoted at 1863.6 MHz, the clock at which SOL-ExecBench's 1.811 PFLOP/s BF16 at 1500 MHz "
            "equals the datasheet's 2.25 PFLOP/s (within 0.4% of 148 SMs x 8192 FLOP/clk)",
        ),
    ),
    _blackwell_dc(
        "NVIDIA GB200",
        "gb200",
        dram=8.0 * _T,
        memory_gb=186,
        boost_mhz=2111,
        tensor_mhz=2062,
        bf16=2500.0,
        fp32=80.0,
        fp64=40.0,
        ds=_GB200_DS,
        tf32_note="2.5 PFLOP/s sparse on the datasheet",
        dram_source=_GB200_DS,
        notes=("the GPU of a GB200 superchip at its 1200 W configuration; SM count assumed equal to B200's",),
    ),
    _a100("NVIDIA A100 SXM4 40GB", "a100-40gb", dram=1.555 * _T, memory_gb=40),
    _a100("NVIDIA A100 SXM4 80GB", "a100-80gb", dram=2.039 * _T, memory_gb=80),
    _gpu(
        "NVIDIA L40S",
        "l40s",
        sm_count=142,
        boost_mhz=2520,
        tensor_mhz=2520,
        dram=0.864 * _T,
        l2_mib=96,
        memory_gb=48,
        tflops={
            "fp64": 1.431,
            "fp32": 91.6,
            "tf32": 183.0,
            "bf16": 366.5,
            "fp16": 366.5,
            "fp8": 733.0,
            "int8": 733.0,
        },
        sources={
            "sm_count": f"{_L40S_DS} (18,176 CUDA cores / 128 per SM)",
            "peak_clock_mhz": _L40S_DS,
            "dram_bytes_per_s": _L40S_DS,
            "l2_bytes": "NVIDIA Ada GPU Architecture whitepaper (AD102: 96 MB L2)",
            "memory_bytes": _L40S_DS,
            "fp64": _ADA_FP64.format(wp="Ada whitepaper"),
            "fp32": f"{_L40S_DS}: CUDA core",
            "tf32": f"{_L40S_DS}{_SPARSE} (366 sparse)",
            "bf16": f"{_L40S_DS}{_SPARSE} (733 sparse; the sheet's dense 362.05 matches the L40's 2490 MHz clock)",
            "fp16": f"{_L40S_DS}{_SPARSE} (733 sparse)",
            "fp8": f"{_L40S_DS}{_SPARSE} (1466 sparse)",
            "int8": f"{_L40S_DS}{_SPARSE} (1466 sparse)",
        },
    ),
    _gpu(
        "NVIDIA L4",
        "l4",
        sm_count=58,
        boost_mhz=2040,
        tensor_mhz=2040,
        dram=0.300 * _T,
        l2_mib=48,
        memory_gb=24,
        tflops={
            "fp64": 0.473,
            "fp32": 30.3,
            "tf32": 60.0,
            "bf16": 121.0,
            "fp16": 121.0,
            "fp8": 242.5,
            "int8": 242.5,
        },
        sources={
            "sm_count": "NVIDIA Ada GPU Architecture whitepaper (AD104 as configured for L4: 7,424 CUDA cores / 128 per SM)",
            "peak_clock_mhz": _L4_DS,
            "dram_bytes_per_s": _L4_DS,
            "l2_bytes": "NVIDIA Ada GPU Architecture whitepaper (AD104: 48 MB L2)",
            "memory_bytes": _L4_DS,
            "fp64": _ADA_FP64.format(wp="Ada whitepaper"),
            "fp32": f"{_L4_DS}: CUDA core",
            "tf32": f"{_L4_DS}{_SPARSE} (120 sparse)",
            "bf16": f"{_L4_DS}{_SPARSE} (242 sparse)",
            "fp16": f"{_L4_DS}{_SPARSE} (242 sparse)",
            "fp8": f"{_L4_DS}{_SPARSE} (485 sparse)",
            "int8": f"{_L4_DS}{_SPARSE} (485 sparse)",
        },
    ),
    _gpu(
        "NVIDIA GeForce RTX 4090",
        "rtx-4090",
        sm_count=128,
        boost_mhz=2520,
        tensor_mhz=2520,
        dram=1.008 * _T,
        l2_mib=72,
        memory_gb=24,
        tflops={
            "fp64": 1.29,
            "fp32": 82.6,
            "tf32": 82.6,
            "bf16": 165.2,
            "fp16": 330.3,
            "fp8": 660.6,
            "int8": 660.6,
        },
        sources={
            "sm_count": _ADA_WP,
            "peak_clock_mhz": _ADA_WP,
            "dram_bytes_per_s": _ADA_WP,
            "l2_bytes": _ADA_WP,
            "memory_bytes": _ADA_WP,
            "fp64": f"{_ADA_WP}: CUDA core, 1/64 of FP32",
            "fp32": f"{_ADA_WP}: CUDA core",
            "tf32": f"{_ADA_WP} (dense)",
            "bf16": f"{_ADA_WP} (dense; BF16 accumulates in FP32, which GeForce runs at half rate)",
            "fp16": f"{_ADA_WP} (dense, FP16 accumulate; FP32 accumulate is half, 165.2)",
            "fp8": f"{_ADA_WP} (dense, FP16 accumulate; FP32 accumulate is half, 330.3)",
            "int8": f"{_ADA_WP} (dense)",
        },
        notes=(
            "GeForce: FP16/FP8 peaks are the FP16-accumulate rates (the fastest a correct kernel may use)",
        ),
    ),
    _gpu(
        "NVIDIA GeForce RTX 5090",
        "rtx-5090",
        sm_count=170,
        boost_mhz=2407,
        tensor_mhz=2407,
        dram=1.792 * _T,
        l2_mib=96,
        memory_gb=32,
        tflops={
            "fp64": 1.637,
            "fp32": 104.8,
            "tf32": 104.8,
            "bf16": 209.5,
            "fp16": 419.0,
            "fp8": 838.0,
            "int8": 838.0,
            "fp4": 1676.0,
        },
        sources={
            "sm_count": _BW_RTX_WP,
            "peak_clock_mhz": _BW_RTX_WP,
            "dram_bytes_per_s": _BW_RTX_WP,
            "l2_bytes": _BW_RTX_WP,
            "memory_bytes": _BW_RTX_WP,
            "fp64": _ADA_FP64.format(wp="same SM FP64 provision as Ada"),
            "fp32": f"{_BW_RTX_WP}: CUDA core",
            "tf32": f"{_BW_RTX_WP} (dense)",
            "bf16": f"{_BW_RTX_WP} (dense; BF16 accumulates in FP32, which GeForce runs at half rate)",
            "fp16": f"{_BW_RTX_WP}{_SPARSE} (838 sparse, FP16 accumulate)",
            "fp8": f"{_BW_RTX_WP}{_SPARSE} (1676 sparse, FP16 accumulate)",
            "int8": f"{_BW_RTX_WP}{_SPARSE} (1676 sparse)",
            "fp4": f"{_BW_RTX_WP}{_SPARSE} (3352 sparse 'AI TOPS')",
        },
        notes=(
            "GeForce: FP16/FP8 peaks are the FP16-accumulate rates (the fastest a correct kernel may use)",
        ),
    ),
)

PROFILES: dict[str, Profile] = {p.slug: p for p in _TABLE}

# Extra spellings (normalised by `_key`) beside each profile's slug and name; NVML names included.
_ALIASES: dict[str, tuple[str, ...]] = {
    "h100-sxm": ("H100", "H100 SXM", "H100-SXM5", "NVIDIA H100 80GB HBM3"),
    "h100-pcie": ("H100 PCIe", "NVIDIA H100 PCIe"),
    "h100-nvl": ("H100 NVL", "NVIDIA H100 NVL"),
    "h200": ("H200", "H200 SXM", "NVIDIA H200", "NVIDIA H200 141GB HBM3e"),
    "b200": ("B200", "NVIDIA B200"),
    "gb200": ("GB200", "NVIDIA GB200"),
    "a100-40gb": ("A100 40GB", "A100-SXM4-40GB", "NVIDIA A100-SXM4-40GB"),
    "a100-80gb": ("A100", "A100 80GB", "A100-SXM4-80GB", "NVIDIA A100-SXM4-80GB"),
    "l40s": ("L40S", "NVIDIA L40S"),
    "l4": ("L4", "NVIDIA L4"),
    "rtx-4090": ("RTX 4090", "4090", "GeForce RTX 4090", "NVIDIA GeForce RTX 4090"),
    "rtx-5090": ("RTX 5090", "5090", "GeForce RTX 5090", "NVIDIA GeForce RTX 5090"),
}


def _key(name: str) -> str:
    key = re.sub(r"[\s_]+", "-", name.strip().lower())
    return key.removeprefix("nvidia-")


_LOOKUP: dict[str, str] = {
    _key(spelling): slug
    for slug, profile in PROFILES.items()
    for spelling in (slug, profile.name, *_ALIASES.get(slug, ()))
}


def get_profile(name: str) -> Profile:
    """The profile for a GPU name, slug or NVML device name (case-insensitive), or `"cpu"` for this
    machine's measured CPU profile. Raises KeyError naming the known GPUs when nothing matches."""
    key = _key(name)
    if key == "cpu":
        return cpu_profile()
    if key in _LOOKUP:
        return PROFILES[_LOOKUP[key]]
    known = ", ".join(sorted(PROFILES))
    raise KeyError(f"unknown GPU {name!r}; known: {known} (or 'cpu'); `solgym hw --list` shows them")


# ---------------------------------------------------------------------------------------------------------
# NVML. Imported lazily: `pynvml` is a small ctypes wrapper, and NVML never creates a CUDA context.

_CLOCK_EVENT_REASONS = {  # NVML's clocks-event (throttle) reason bits
    0x1: "gpu_idle",
    0x2: "applications_clocks_setting",
    0x4: "sw_power_cap",
    0x8: "hw_slowdown",
    0x10: "sync_boost",
    0x20: "sw_thermal_slowdown",
    0x40: "hw_thermal_slowdown",
    0x80: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
}


def _nvml() -> Any | None:
    """The initialised `pynvml` module, or None when NVML cannot be used on this machine."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()  # reference-counted by NVML; left initialised for later snapshots
    except (pynvml.NVMLError, OSError):
        return None
    return pynvml


def _nvml_read(nvml: Any, fn_name: str, *args: Any) -> Any | None:
    """One NVML query, None when the driver, the GPU or this pynvml lacks it."""
    fn = getattr(nvml, fn_name, None)
    if fn is None:
        return None
    try:
        return fn(*args)
    except nvml.NVMLError:
        return None


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _nvml_handle(nvml: Any, index: int) -> Any | None:
    count = _nvml_read(nvml, "nvmlDeviceGetCount")
    if not count:
        return None
    if not 0 <= index < count:
        raise ValueError(f"GPU index {index} is out of range: NVML sees {count} GPU(s)")
    return _nvml_read(nvml, "nvmlDeviceGetHandleByIndex", index)


def detect(index: int = 0) -> Profile:
    """The profile of GPU `index` as NVML names it; a profile built from NVML for a GPU missing from the
    table (bandwidth and SM count, no compute peaks); the measured CPU profile without NVML or a GPU."""
    nvml = _nvml()
    handle = _nvml_handle(nvml, index) if nvml is not None else None
    if handle is None:
        return cpu_profile()
    name = _text(_nvml_read(nvml, "nvmlDeviceGetName", handle) or f"GPU {index}")
    try:
        return get_profile(name)
    except KeyError:
        return _profile_from_nvml(nvml, handle, name)


def _cores_per_sm(cc: tuple[int, int] | None) -> int | None:
    if cc is None:
        return None
    # FP32 cores per SM: 64 on GP100, Volta, Turing and GA100; 128 on every other architecture since Pascal.
    return 64 if cc in {(6, 0), (7, 0), (7, 2), (7, 5), (8, 0)} else 128


def _profile_from_nvml(nvml: Any, handle: Any, name: str) -> Profile:
    mem_clock = _nvml_read(nvml, "nvmlDeviceGetMaxClockInfo", handle, nvml.NVML_CLOCK_MEM)
    bus_bits = _nvml_read(nvml, "nvmlDeviceGetMemoryBusWidth", handle)
    sm_clock = _nvml_read(nvml, "nvmlDeviceGetMaxClockInfo", handle, nvml.NVML_CLOCK_SM)
    cores = _nvml_read(nvml, "nvmlDeviceGetNumGpuCores", handle)
    cc = _nvml_read(nvml, "nvmlDeviceGetCudaComputeCapability", handle)
    memory = _nvml_read(nvml, "nvmlDeviceGetMemoryInfo", handle)
    per_sm = _cores_per_sm(tuple(cc) if cc is not None else None)

    notes = [f"{name} is not in solgym's table: compute peaks unknown, so bounds cannot price compute on it"]
    sources = {"name": "NVML nvmlDeviceGetName"}
    dram = 0.0
    if mem_clock and bus_bits:
        # NVML reports the memory clock such that bytes/s = clock x 2 (double data rate) x bus width / 8,
        # which holds for HBM, GDDR6, GDDR6X and GDDR7 alike.
        dram = mem_clock * 1e6 * 2 * bus_bits / 8
        sources["dram_bytes_per_s"] = f"NVML: max memory clock {mem_clock} MHz x 2 (DDR) x {bus_bits}-bit bus"
    else:
        notes.append("DRAM bandwidth unknown: NVML gave no memory clock or bus width")
    sm_count = 0
    if cores and per_sm:
        sm_count = cores // per_sm
        sources["sm_count"] = (
            f"NVML: {cores} GPU cores / {per_sm} per SM (compute capability {cc[0]}.{cc[1]})"
        )
    else:
        notes.append("SM count unknown: NVML gave no core count")
    if sm_clock:
        sources["peak_clock_mhz"] = "NVML: max SM clock"
    if memory is not None:
        sources["memory_bytes"] = "NVML: total memory"
    notes.append("L2 size unknown: NVML does not report it")
    return Profile(
        name=name,
        slug=_key(name),
        sm_count=sm_count,
        peak_clock_mhz=float(sm_clock or 0.0),
        dram_bytes_per_s=dram,
        l2_bytes=0,
        memory_bytes=int(memory.total) if memory is not None else 0,
        peaks={},
        sources=sources,
        notes=tuple(notes),
    )


def nvml_snapshot(index: int = 0) -> dict[str, Any]:
    """Current SM/memory clocks (MHz), power draw and limit (W), temperature (C) and clocks-event
    (throttle) reasons of GPU `index`, read around a timed window. Keys whose query failed are absent;
    an empty dict means NVML is unavailable."""
    nvml = _nvml()
    if nvml is None:
        return {}
    count = _nvml_read(nvml, "nvmlDeviceGetCount")
    handle = _nvml_read(nvml, "nvmlDeviceGetHandleByIndex", index) if count and 0 <= index < count else None
    if handle is None:
        return {}
    snap: dict[str, Any] = {"index": index}
    reads = {
        "sm_clock_mhz": ("nvmlDeviceGetClockInfo", nvml.NVML_CLOCK_SM, 1.0),
        "mem_clock_mhz": ("nvmlDeviceGetClockInfo", nvml.NVML_CLOCK_MEM, 1.0),
        "power_w": ("nvmlDeviceGetPowerUsage", None, 1e-3),
        "power_limit_w": ("nvmlDeviceGetEnforcedPowerLimit", None, 1e-3),
        "temperature_c": ("nvmlDeviceGetTemperature", nvml.NVML_TEMPERATURE_GPU, 1.0),
    }
    for key, (fn_name, arg, scale) in reads.items():
        value = _nvml_read(nvml, fn_name, handle, *(() if arg is None else (arg,)))
        if value is not None:
            snap[key] = value * scale
    mask = _nvml_read(nvml, "nvmlDeviceGetCurrentClocksEventReasons", handle)
    if mask is None:  # drivers before 535 only have the older name
        mask = _nvml_read(nvml, "nvmlDeviceGetCurrentClocksThrottleReasons", handle)
    if mask is not None:
        snap["clock_event_mask"] = int(mask)
        snap["clock_event_reasons"] = [
            reason for bit, reason in _CLOCK_EVENT_REASONS.items() if int(mask) & bit
        ] + ([f"unknown_0x{int(mask) & ~0x1FF:x}"] if int(mask) & ~0x1FF else [])
    return snap


# ---------------------------------------------------------------------------------------------------------
# The CPU profile and calibration (measured).


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine() or "CPU"


def _cpu_mhz() -> float:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("cpu MHz"):
                return float(line.split(":", 1)[1])
    except (OSError, ValueError):
        pass
    return 0.0


def _last_level_cache_bytes() -> int:
    """The largest CPU cache of cpu0 per sysfs, or 32 MiB when sysfs does not say."""
    best = 0
    for index in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
        try:
            size = (index / "size").read_text().strip()
        except OSError:
            continue
        unit = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(size[-1:], 1)
        digits = size[:-1] if size[-1:] in "KMG" else size
        if digits.isdigit():
            best = max(best, int(digits) * unit)
    return best or 32 * _MIB


def _best_seconds(fn: Any, repeats: int, budget_s: float) -> float:
    """Fastest of at least `repeats` calls, going on until `budget_s` has passed: on a shared, loaded
    machine the best time needs a quiet moment, which more samples are likelier to catch."""
    fn()  # warm-up: page faults, thread-pool start, allocator
    best = float("inf")
    began = time.perf_counter()
    done = 0
    while done < repeats or time.perf_counter() - began < budget_s:
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
        done += 1
    return best


def _cpu_copy_bytes_per_s(repeats: int = 5, budget_s: float = 0.3) -> float:
    """Streaming copy rate, counting bytes read plus bytes written, on a buffer 4x the last-level cache
    (so that it streams from DRAM), best of `repeats`."""
    import torch

    n = min(max(4 * _last_level_cache_bytes(), 64 * _MIB), 512 * _MIB)
    src = torch.ones(n, dtype=torch.uint8)
    dst = torch.zeros(n, dtype=torch.uint8)
    return 2 * n / _best_seconds(lambda: dst.copy_(src), repeats, budget_s)


def _cpu_matmul_flops(
    n: int = 512, repeats: int = 10, budget_s: float = 0.4, one_thread: bool = False
) -> float:
    """fp32 matmul rate of torch.mm on n x n matrices, best of `repeats` or more. With `one_thread`, the
    rate of one thread times torch's thread count: on a loaded machine a multi-threaded matmul varies
    tenfold between runs (one busy core stalls the others), while one thread stays within a few percent."""
    import torch

    a = torch.randn(n, n)
    b = torch.randn(n, n)
    threads = torch.get_num_threads()
    if not one_thread:
        return 2 * n**3 / _best_seconds(lambda: torch.mm(a, b), repeats, budget_s)
    torch.set_num_threads(1)
    try:
        return threads * 2 * n**3 / _best_seconds(lambda: torch.mm(a, b), repeats, budget_s)
    finally:
        torch.set_num_threads(threads)


@functools.cache
def cpu_profile() -> Profile:
    """This machine's CPU, measured once per process (about 1 s): streaming copy bandwidth and fp32
    matmul rate. Every precision class gets the fp32 rate: CPU mode needs a consistent yardstick for
    scores, not the CPU's true per-dtype throughput (bf16 or fp8 matmuls on a CPU are often slower)."""
    copy = _cpu_copy_bytes_per_s()
    flops = _cpu_matmul_flops(budget_s=0.2, one_thread=True)
    llc = _last_level_cache_bytes()
    measured = "measured by cpu_profile() once per process"
    return Profile(
        name=_cpu_name(),
        slug="cpu",
        sm_count=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1,
        peak_clock_mhz=_cpu_mhz(),
        dram_bytes_per_s=copy,
        l2_bytes=llc,
        memory_bytes=os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
        peaks=dict.fromkeys(PRECISIONS, flops),
        sources={
            "name": "/proc/cpuinfo model name",
            "sm_count": "usable logical CPUs (sched_getaffinity)",
            "peak_clock_mhz": "/proc/cpuinfo cpu MHz",
            "dram_bytes_per_s": f"{measured}: torch copy of {min(max(4 * llc, 64 * _MIB), 512 * _MIB) >> 20} MiB, read + write bytes, best of 5 or more (0.3 s)",
            "l2_bytes": "sysfs: largest cache of cpu0 (the last-level cache)",
            "memory_bytes": "sysconf: physical pages x page size",
            **dict.fromkeys(
                PRECISIONS,
                f"{measured}: one-thread fp32 torch.mm 512x512 (best of 10 or more) x torch threads, used for every class",
            ),
        },
        notes=(
            "CPU profile: peaks measured, not quoted; every precision class uses the fp32 matmul rate",
            "sm_count holds logical CPUs and l2_bytes the last-level cache",
        ),
        is_cpu=True,
    )


def calibrate(device: str = "cuda") -> dict[str, Any]:
    """Measure achievable ceilings on `device` ("cpu", "cuda" or "cuda:N"): copy bandwidth, dense GEMM
    rates, and on a GPU the empty-kernel time (the launch floor). For reference only: bounds always use
    datasheet peaks, so that a bound is never above what the hardware can do."""
    import torch

    dev = torch.device(device)
    if dev.type == "cpu":
        return {
            "device": "cpu",
            "name": _cpu_name(),
            "copy_bytes_per_s": _cpu_copy_bytes_per_s(),
            "gemm_flops": {"fp32": _cpu_matmul_flops(n=512, repeats=20, budget_s=1.0)},
            "launch_floor_ms": None,
            "launch_floor_profiler_ms": None,
            "method": {
                "copy": "torch copy_ of a buffer 4x the last-level cache; read + write bytes; best of 5 or more (0.3 s)",
                "gemm": "torch.mm fp32 512x512, best of 20 or more (1 s)",
                "launch_floor": "not measured on a CPU",
            },
            "note": "for reference only: bounds use datasheet peaks",
        }
    if dev.type != "cuda":
        raise ValueError(f"calibrate supports cpu and cuda devices, not {device!r}")
    if not torch.cuda.is_available():
        raise ValueError(f"calibrate({device!r}): CUDA is not available on this machine; use 'cpu'")
    with torch.cuda.device(dev):
        return _calibrate_cuda(torch, torch.device("cuda", torch.cuda.current_device()))


def _cuda_best_ms(torch: Any, fn: Any, inner: int, trials: int = 5) -> float:
    """Best over `trials` of the mean time of `inner` back-to-back calls, timed with CUDA events."""
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    best = float("inf")
    for _ in range(trials):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(inner):
            fn()
        end.record()
        end.synchronize()
        best = min(best, start.elapsed_time(end) / inner)
    return best


def _cuda_copy_ms(torch: Any, dev: Any, n_bytes: int) -> float:
    src = torch.ones(n_bytes, dtype=torch.uint8, device=dev)
    dst = torch.empty_like(src)
    return _cuda_best_ms(torch, lambda: dst.copy_(src), inner=10)


def _calibrate_cuda(torch: Any, dev: Any) -> dict[str, Any]:
    free, _total = torch.cuda.mem_get_info(dev)
    n_copy = min(1 << 30, free // 4)
    copy_ms = _cuda_copy_ms(torch, dev, n_copy)

    gemm: dict[str, float] = {}
    previous = torch.get_float32_matmul_precision()
    try:
        # "highest" keeps fp32 matmuls on CUDA cores; "high" lets them use TF32 tensor cores.
        for cls, dtype, n, precision in (
            ("fp32", torch.float32, 4096, "highest"),
            ("tf32", torch.float32, 8192, "high"),
            ("bf16", torch.bfloat16, 8192, "highest"),
            ("fp16", torch.float16, 8192, "highest"),
        ):
            torch.set_float32_matmul_precision(precision)
            a = torch.randn(n, n, device=dev, dtype=dtype)
            b = torch.randn(n, n, device=dev, dtype=dtype)
            out = torch.empty(n, n, device=dev, dtype=dtype)
            ms = _cuda_best_ms(torch, lambda a=a, b=b, out=out: torch.mm(a, b, out=out), inner=5)
            gemm[cls] = 2 * n**3 / (ms * 1e-3)
            del a, b, out
    finally:
        torch.set_float32_matmul_precision(previous)
    torch.cuda.empty_cache()

    floor_ms, floor_profiler_ms, profiler_error = _empty_kernel_ms(torch, dev)
    return {
        "device": str(dev),
        "name": torch.cuda.get_device_name(dev),
        "copy_bytes_per_s": 2 * n_copy / (copy_ms * 1e-3),
        "gemm_flops": gemm,
        "launch_floor_ms": floor_ms,
        "launch_floor_profiler_ms": floor_profiler_ms,
        "method": {
            "copy": f"device-to-device copy_ of {n_copy >> 20} MiB; read + write bytes; CUDA events, best of 5 x 10",
            "gemm": "torch.mm n x n (fp32 4096, others 8192), CUDA events, best of 5 x 5; fp32 with matmul "
            "precision 'highest', tf32 with 'high'",
            "launch_floor": "one-element fill kernel, each launch between two CUDA events behind a GPU spin "
            "kernel (so host launch latency is hidden), median of 200",
            "launch_floor_profiler": profiler_error
            or "torch.profiler kernel duration of the same kernel, median of 100",
        },
        "note": "for reference only: bounds use datasheet peaks",
    }


def _empty_kernel_ms(torch: Any, dev: Any) -> tuple[float, float | None, str | None]:
    """Median device time of a near-empty kernel: by CUDA events and by torch.profiler (None, with the
    reason, when the profiler cannot record kernels here)."""
    buf = torch.zeros(1, device=dev)
    spin = getattr(torch.cuda, "_sleep", None)  # a GPU busy-wait kernel; absent in some builds
    for _ in range(10):
        buf.fill_(1.0)
    torch.cuda.synchronize()
    samples = []
    for _ in range(200):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        if spin is not None:
            spin(100_000)  # ~50 us of GPU work: the events and the fill are queued before it ends
        start.record()
        buf.fill_(1.0)
        end.record()
        end.synchronize()
        samples.append(start.elapsed_time(end))
    events_ms = statistics.median(samples)

    try:
        from torch.autograd import DeviceType
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(100):
                buf.fill_(1.0)
            torch.cuda.synchronize()
        kernels = [
            e.time_range.elapsed_us()
            for e in prof.events()
            if e.device_type == DeviceType.CUDA
            and "memcpy" not in e.name.lower()
            and "memset" not in e.name.lower()
        ]
    except (RuntimeError, AttributeError, ImportError) as e:  # CUPTI missing or a profiler API change
        return events_ms, None, f"torch.profiler unavailable: {e}"
    if not kernels:
        return events_ms, None, "torch.profiler recorded no kernel (CUPTI unavailable?)"
    return events_ms, statistics.median(kernels) * 1e-3, None


# ---------------------------------------------------------------------------------------------------------
# Text tables for the command line.


def _fmt(value: float | None, scale: float, digits: int = 1) -> str:
    return "-" if value is None else f"{value / scale:,.{digits}f}"


def _rate(value: float, unit: str) -> str:
    """`value` per second with a T or G prefix, whichever reads better (GPUs T, CPUs G)."""
    return f"{value / _T:,.4g} T{unit}" if value >= _T else f"{value / 1e9:,.4g} G{unit}"


def describe(profile: Profile, calibration: dict[str, Any] | None = None) -> str:
    """A readable table of one profile; with a `calibrate()` result, measured ceilings beside the peaks."""
    measured = calibration or {}
    gemm = measured.get("gemm_flops", {})

    def vs(value: float | None, peak: float | None, unit: str) -> str:
        if value is None:
            return ""
        percent = f" ({100 * value / peak:.0f}% of peak)" if peak else ""
        return f"measured {_rate(value, unit)}{percent}"

    lines = [f"{profile.name}  [{profile.slug}]{'  (CPU, measured)' if profile.is_cpu else ''}"]
    rows = [
        ("SMs" if not profile.is_cpu else "CPUs", f"{profile.sm_count}", "sm_count", ""),
        ("boost clock", f"{profile.peak_clock_mhz:,.0f} MHz", "peak_clock_mhz", ""),
        (
            "DRAM bandwidth",
            _rate(profile.dram_bytes_per_s, "B/s"),
            "dram_bytes_per_s",
            vs(measured.get("copy_bytes_per_s"), profile.dram_bytes_per_s, "B/s"),
        ),
        (
            "L2" if not profile.is_cpu else "last-level cache",
            f"{profile.l2_bytes / _MIB:,.0f} MiB",
            "l2_bytes",
            "",
        ),
        ("memory", f"{profile.memory_bytes / 1e9:,.0f} GB", "memory_bytes", ""),
        (
            "launch floor",
            "-" if profile.launch_floor_ms is None else f"{profile.launch_floor_ms * 1e3:.1f} us",
            "launch_floor_ms",
            ""
            if measured.get("launch_floor_ms") is None
            else f"measured {measured['launch_floor_ms'] * 1e3:.1f} us (events)"
            + (
                ""
                if measured.get("launch_floor_profiler_ms") is None
                else f", {measured['launch_floor_profiler_ms'] * 1e3:.1f} us (profiler)"
            ),
        ),
    ]
    for precision in PRECISIONS:
        peak = profile.peak(precision)
        clock = (
            f" @ {profile.clock_of(precision):,.0f} MHz" if peak is not None and not profile.is_cpu else ""
        )
        rows.append(
            (
                f"{precision} peak",
                f"{_rate(peak, 'FLOP/s')}{clock}" if peak is not None else "- (not supported or unknown)",
                precision,
                vs(gemm.get(precision), peak, "FLOP/s"),
            )
        )
    width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    for label, value, key, extra in rows:
        source = profile.sources.get(key, "")
        line = f"  {label:<{width}}  {value:<{value_width}}"
        if extra:
            line += f"  {extra}"
        lines.append(line + (f"  | {source}" if source and not extra else ""))
    lines += [f"  note: {note}" for note in profile.notes]
    if calibration is not None:
        lines.append(
            f"  measured on {calibration.get('name')} ({calibration.get('device')}): {calibration.get('note')}"
        )
    return "\n".join(lines)


def describe_all(profiles: list[Profile]) -> str:
    """One line per profile: the headline figures of the GPU table."""
    header = (
        "slug",
        "name",
        "SMs",
        "MHz",
        "TB/s",
        "L2 MiB",
        "GB",
        "fp32",
        "tf32",
        "bf16",
        "fp8",
        "fp4",
        "floor us",
    )
    rows = [header]
    for p in profiles:
        rows.append(
            (
                p.slug,
                p.name,
                str(p.sm_count),
                f"{p.peak_clock_mhz:.0f}",
                f"{p.dram_bytes_per_s / _T:.3f}",
                f"{p.l2_bytes / _MIB:.0f}",
                f"{p.memory_bytes / 1e9:.0f}",
                *(_fmt(p.peak(k), _T) for k in ("fp32", "tf32", "bf16", "fp8", "fp4")),
                "-" if p.launch_floor_ms is None else f"{p.launch_floor_ms * 1e3:.1f}",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.ljust(w) if i < 2 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]
    lines.append("peaks: dense TFLOP/s at each GPU's quoted clock; `solgym hw --gpu SLUG` shows sources")
    return "\n".join(lines)
