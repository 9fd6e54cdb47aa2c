"""Compile time of a small load_inline CUDA extension: stock `torch.utils.cpp_extension.load_inline`
against solgym's build, uncached and cached, plus nvcc's per-phase times.

    python benchmarks/compile_time.py [--reps 5] [--json]

Needs nvcc; the stock and solgym builds also need a CUDA build of torch (linking against libtorch_cuda).
Each uncached repetition uses a fresh build directory, so nothing is reused between repetitions.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from solgym import build

KERNEL = Path(__file__).resolve().parents[1] / "examples" / "kernels" / "rmsnorm_cuda.py"


def sources() -> tuple[str, str]:
    text = KERNEL.read_text()
    cuda = re.search(r'CUDA_SOURCE = r"""(.*?)"""', text, re.S).group(1)
    cpp = re.search(r'CPP_SOURCE = "(.*?)"', text).group(1)
    return cpp, cuda


def stock_once(cpp: str, cuda: str) -> float:
    from torch.utils.cpp_extension import load_inline

    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        load_inline(
            name="bench_stock",
            cpp_sources=cpp,
            cuda_sources=cuda,
            functions=["rmsnorm"],
            build_directory=folder,
        )
        return time.perf_counter() - start


def solgym_once(cpp: str, cuda: str, shared: Path | None) -> tuple[float, str]:
    with tempfile.TemporaryDirectory() as folder:
        builder = build.Builder("gpu", Path(folder), shared, build.DEFAULT_TIMEOUT_S)
        start = time.perf_counter()
        builder.load_inline(name="bench", cpp_sources=cpp, cuda_sources=cuda, functions=["rmsnorm"])
        return time.perf_counter() - start, builder.builds[-1].get("variant", "")


def nvcc_phases(cuda_cu: str) -> dict[str, float]:
    """nvcc --time: milliseconds per compilation phase of one TU."""
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        (work / "cuda.cu").write_text(cuda_cu)
        subprocess.run(
            [
                str(build.cuda_home() / "bin" / "nvcc"),
                "-c",
                "cuda.cu",
                "-o",
                "cuda.o",
                "--time",
                "phases.csv",
                *build._cuda_flags("bench", "90"),
            ],
            cwd=work,
            capture_output=True,
            check=True,
        )
        phases: dict[str, float] = {}
        for line in (work / "phases.csv").read_text().splitlines()[1:]:
            cells = [c.strip() for c in line.split(",")]
            if len(cells) >= 8 and cells[7] == "ms":
                phases[cells[1]] = phases.get(cells[1], 0.0) + float(cells[6])
        return phases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--skip-stock", action="store_true", help="do not time the stock load_inline")
    args = parser.parse_args()
    cpp, cuda = sources()
    result: dict = {"kernel": str(KERNEL.name), "reps": args.reps}
    if not args.skip_stock:
        result["stock_uncached_s"] = [stock_once(cpp, cuda) for _ in range(args.reps)]
    runs = [solgym_once(cpp, cuda, None) for _ in range(args.reps)]
    result["solgym_uncached_s"] = [t for t, _ in runs]
    result["solgym_variant"] = runs[-1][1]
    with tempfile.TemporaryDirectory() as shared_dir:
        shared = Path(shared_dir)
        spec = build.make_spec(cpp, cuda, ["rmsnorm"], arch=build.gpu_arch())
        build.build_extension(spec, shared, key=spec.key())
        result["solgym_cached_s"] = [solgym_once(cpp, cuda, shared)[0] for _ in range(args.reps)]
    for light in (False, True):
        tu = build.make_spec(cpp, cuda, ["rmsnorm"], light=light).cuda_cu
        result[f"nvcc_phases_ms_{'light' if light else 'stock'}"] = nvcc_phases(tu)
    summary = {k: statistics.median(v) for k, v in result.items() if k.endswith("_s")}
    result["p50_s"] = summary
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        for k, v in summary.items():
            print(f"{k:22} p50 {v:8.2f} s")
        for k in ("nvcc_phases_ms_stock", "nvcc_phases_ms_light"):
            print(k, {p: round(ms) for p, ms in result[k].items()})


if __name__ == "__main__":
    main()
