"""Shared fixtures: small problems written to tmp_path, and the location of the dev problems."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
import torch

# Without a GPU, Triton kernels run in its interpreter (set before anything imports triton).
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
# A test session starts with empty caches (op counts, baselines), not with what earlier runs left behind,
# and removes the ones it made when it ends.
if "SOLGYM_CACHE" not in os.environ:
    os.environ["SOLGYM_CACHE"] = tempfile.mkdtemp(prefix="solgym-test-cache-")
    atexit.register(shutil.rmtree, os.environ["SOLGYM_CACHE"], ignore_errors=True)

DEV = Path(__file__).resolve().parents[2] / "shared" / "solexecbench-dev"
REPO = Path(__file__).resolve().parents[1]
RMSNORM = REPO / "envs" / "core" / "rmsnorm_llama3_8b"


def dev_problems() -> list[Path]:
    """The SOL-ExecBench dev problem directories (empty when the data is absent)."""
    if not DEV.is_dir():
        return []
    return sorted(p for p in DEV.iterdir() if (p / "definition.json").is_file())


needs_dev = pytest.mark.skipif(
    not DEV.is_dir(), reason="SOL-ExecBench dev data (../shared/solexecbench-dev) is absent"
)


def write_problem(folder: Path, definition: dict, workloads: list[dict]) -> Path:
    """Write a problem directory and return it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "definition.json").write_text(json.dumps(definition))
    (folder / "workload.jsonl").write_text("".join(json.dumps(w) + "\n" for w in workloads))
    return folder


ADD_REFERENCE = """import torch

def run(x, y, alpha):
    return x + alpha * y
"""


def add_definition(**overrides) -> dict:
    """A small elementwise problem: out = x + alpha * y over [rows, cols]."""
    definition = {
        "name": "tiny_add",
        "description": "x + alpha * y",
        "axes": {"rows": {"type": "var"}, "cols": {"type": "const", "value": 8}},
        "inputs": {
            "x": {"shape": ["rows", "cols"], "dtype": "float32"},
            "y": {"shape": ["rows", "cols"], "dtype": "float32"},
            "alpha": {"shape": None, "dtype": "float32"},
        },
        "outputs": {"out": {"shape": ["rows", "cols"], "dtype": "float32"}},
        "reference": ADD_REFERENCE,
    }
    definition.update(overrides)
    return definition


def add_workload(rows: int = 4, uuid: str = "w1", **overrides) -> dict:
    workload = {
        "uuid": uuid,
        "axes": {"rows": rows},
        "inputs": {
            "x": {"type": "random"},
            "y": {"type": "random"},
            "alpha": {"type": "scalar", "value": 0.5},
        },
    }
    workload.update(overrides)
    return workload


@pytest.fixture
def tiny_add(tmp_path: Path) -> Path:
    return write_problem(
        tmp_path / "tiny_add", add_definition(), [add_workload(4, "w1"), add_workload(3, "w2")]
    )


def write_scale_problem(folder: Path) -> Path:
    """A one-input problem, y = 2x over N = 8, with workloads "a" and "b"."""
    definition = {
        "name": "scale",
        "axes": {"N": {"type": "var"}},
        "inputs": {"x": {"shape": ["N"], "dtype": "float32"}},
        "outputs": {"y": {"shape": ["N"], "dtype": "float32"}},
        "reference": "def run(x):\n    return x * 2\n",
    }
    workloads = [{"uuid": u, "axes": {"N": 8}, "inputs": {"x": {"type": "random"}}} for u in ("a", "b")]
    return write_problem(folder, definition, workloads)


RMSNORM_FP32 = "import torch\ndef run(x, weight):\n    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * weight\n"


def write_tiny_rmsnorm(folder: Path, uuid: str = "w-small", rows: int = 4) -> Path:
    """An fp32 RMSNorm over 32 columns with one workload of `rows` rows."""
    definition = {
        "name": "tiny_rmsnorm",
        "axes": {"B": {"type": "var"}, "H": {"type": "const", "value": 32}},
        "inputs": {
            "x": {"shape": ["B", "H"], "dtype": "float32"},
            "weight": {"shape": ["H"], "dtype": "float32"},
        },
        "outputs": {"out": {"shape": ["B", "H"], "dtype": "float32"}},
        "reference": RMSNORM_FP32,
    }
    workload = {
        "uuid": uuid,
        "axes": {"B": rows},
        "inputs": {"x": {"type": "random"}, "weight": {"type": "random"}},
    }
    return write_problem(folder, definition, [workload])
