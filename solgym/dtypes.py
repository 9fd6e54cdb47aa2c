"""The dtypes of the problem schema: their torch types, storage widths and precision classes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class DType:
    """One schema dtype: `name` as written in definition.json, how torch stores it, what it is."""

    name: str
    torch_name: str
    bytes_per_element: float  # storage bytes per schema element (a packed fp4 pair is one element)
    kind: str  # "float", "int", "bool"
    precision: (
        str  # precision class used for tensor-core pricing: fp64, fp32, fp16, bf16, fp8, fp4, int8, int, bool
    )

    @property
    def torch(self) -> torch.dtype:
        # torch is imported on first use so that loading problems and analysing actions stay torch-free.
        import torch

        return getattr(torch, self.torch_name)

    @property
    def is_float(self) -> bool:
        return self.kind == "float"


_TABLE = [
    DType("float64", "float64", 8, "float", "fp64"),
    DType("float32", "float32", 4, "float", "fp32"),
    DType("float16", "float16", 2, "float", "fp16"),
    DType("bfloat16", "bfloat16", 2, "float", "bf16"),
    DType("float8_e4m3fn", "float8_e4m3fn", 1, "float", "fp8"),
    DType("float8_e5m2", "float8_e5m2", 1, "float", "fp8"),
    DType("float8_e4m3fnuz", "float8_e4m3fnuz", 1, "float", "fp8"),
    DType("float8_e5m2fnuz", "float8_e5m2fnuz", 1, "float", "fp8"),
    DType("float8_e8m0fnu", "float8_e8m0fnu", 1, "float", "fp8"),
    DType("float4_e2m1fn_x2", "float4_e2m1fn_x2", 1, "float", "fp4"),
    DType("int64", "int64", 8, "int", "int"),
    DType("int32", "int32", 4, "int", "int"),
    DType("int16", "int16", 2, "int", "int"),
    DType("int8", "int8", 1, "int", "int8"),
    DType("uint8", "uint8", 1, "int", "int"),
    DType("bool", "bool", 1, "bool", "bool"),
]
DTYPES: dict[str, DType] = {d.name: d for d in _TABLE}


def dtype(name: str) -> DType:
    """The schema dtype called `name`; KeyError names the supported ones."""
    try:
        return DTYPES[name]
    except KeyError:
        raise KeyError(f"unsupported dtype {name!r}; supported: {', '.join(DTYPES)}") from None


def of_torch(dt: torch.dtype) -> DType:
    """The schema dtype of a torch dtype."""
    name = str(dt).removeprefix("torch.")
    if name not in DTYPES:
        raise KeyError(f"torch dtype {dt} has no schema name")
    return DTYPES[name]
