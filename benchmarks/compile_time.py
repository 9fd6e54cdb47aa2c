"""Compile time of a small load_inline CUDA extension: stock `torch.utils.cpp_extension.load_inline`
against solgym's build, uncached (each variant: split units, light headers, stock units; with and
without the precompiled headers) and cached, plus the time of each translation unit and nvcc's phases.

    python benchmarks/compile_time.py [--reps 5] [--json] [--skip-stock] [--source rmsnorm|dispatch]

Needs nvcc and a CUDA build of torch (the shared objects link against libtorch_cuda). Each uncached
repetition builds in a fresh directory; the precompiled headers are built once, untimed, into a
temporary shared cache (they are a once-per-toolchain cost: `pch_build_s` reports it). Prints a table,
then the whole record as JSON (`--json`: the JSON only).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from solgym import build

KERNEL = Path(__file__).resolve().parents[1] / "examples" / "kernels" / "rmsnorm_cuda.py"
# The other common shape of a load_inline action: a template kernel behind AT_DISPATCH, on torch's stream.
DISPATCH_CUDA = r"""#include <torch/extension.h>
#include <ATen/cuda/CUDAContext.h>
template <typename scalar_t>
__global__ void axpy_kernel(const scalar_t* x, scalar_t* y, scalar_t a, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = a * x[i] + y[i];
}
torch::Tensor axpy(torch::Tensor x, torch::Tensor y, double a) {
    auto out = y.clone();
    int n = x.numel();
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "axpy", ([&] {
        axpy_kernel<scalar_t><<<(n + 255) / 256, 256, 0, at::cuda::getCurrentCUDAStream()>>>(
            x.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), (scalar_t)a, n);
    }));
    return out;
}
"""


def sources(kind: str) -> tuple[str, str, list[str]]:
    """(cpp_sources, cuda_sources, functions) of the benchmarked extension."""
    if kind == "dispatch":
        return "torch::Tensor axpy(torch::Tensor x, torch::Tensor y, double a);", DISPATCH_CUDA, ["axpy"]
    text = KERNEL.read_text()
    cuda = re.search(r'CUDA_SOURCE = r"""(.*?)"""', text, re.S).group(1)
    cpp = re.search(r'CPP_SOURCE = "(.*?)"', text).group(1)
    return cpp, cuda, ["rmsnorm"]


def stock_once(cpp: str, cuda: str, functions: list[str]) -> float:
    from torch.utils.cpp_extension import load_inline

    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        load_inline(
            name="bench_stock",
            cpp_sources=cpp,
            cuda_sources=cuda,
            functions=functions,
            build_directory=folder,
        )
        return time.perf_counter() - start


def builder_once(cpp: str, cuda: str, functions: list[str], shared: Path | None) -> tuple[float, str]:
    """solgym's `load_inline` end to end (variant choice, build, import)."""
    with tempfile.TemporaryDirectory() as folder:
        builder = build.Builder("gpu", Path(folder), shared, build.DEFAULT_TIMEOUT_S)
        start = time.perf_counter()
        builder.load_inline(name="bench", cpp_sources=cpp, cuda_sources=cuda, functions=functions)
        return time.perf_counter() - start, builder.builds[-1].get("variant", "")


def variant_once(spec: build.Spec, pch: Path | None) -> float:
    """One variant's compile and link alone, forced (no fallback, no import)."""
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        build.build_extension(spec, Path(folder), pch_cache=pch)
        return time.perf_counter() - start


def unit_times(spec: build.Spec, pch: Path | None) -> dict[str, float]:
    """Seconds of each translation unit of `spec` compiled alone, one after the other (a split's kernels
    unit after its host unit, with the template instances the host unit calls, as in a build)."""
    name = "solgym_ext_bench"

    def precompiled(unit: str) -> list[str]:
        header = build.pch_path(pch, unit) if pch else None
        return ["-include", str(header)] if header and header.with_suffix(".h.gch").exists() else []

    units = {"main.cpp": [build._cxx(), *precompiled("main"), "-c", "main.cpp", *build._host_flags(name)]}
    texts = {
        "main.cpp": spec.main_cpp,
        "host.cpp": spec.host_cpp,
        "kernels.cu": spec.kernel_cu,
        "cuda.cu": spec.cuda_cu,
    }
    if spec.kernel_cu is not None:
        units["host.cpp"] = [
            build._cxx(),
            *precompiled("host"),
            "-c",
            "host.cpp",
            *build._split_host_flags(name, spec),
        ]
        nvcc = [build._nvcc(), "-c", "kernels.cu", *build._cuda_flags(name, spec.arch)]
        units["kernels.cu"] = nvcc + (
            ["--static-global-template-stub=false"] if spec.kernel_templates else []
        )
    elif spec.cuda_cu is not None:
        units["cuda.cu"] = [build._nvcc(), "-c", "cuda.cu", *build._cuda_flags(name, spec.arch)]
    times = {}
    with tempfile.TemporaryDirectory() as folder:
        for file, cmd in units.items():
            text = texts[file]
            if file == "kernels.cu" and spec.kernel_templates:
                text += build._instantiations(Path(folder), spec, time.monotonic() + 60)
            (Path(folder) / file).write_text(text)
            start = time.perf_counter()
            subprocess.run([*cmd, "-o", Path(file).stem + ".o"], cwd=folder, capture_output=True, check=True)
            times[file] = time.perf_counter() - start
    return times


def nvcc_phases(cuda_cu: str, arch: str) -> dict[str, float]:
    """nvcc --time: milliseconds per compilation phase of one CUDA unit."""
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        (work / "cuda.cu").write_text(cuda_cu)
        subprocess.run(
            [
                build._nvcc(),
                "-c",
                "cuda.cu",
                "-o",
                "cuda.o",
                "--time",
                "phases.csv",
                *build._cuda_flags("bench", arch),
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
    parser.add_argument("--json", action="store_true", help="print the JSON record only")
    parser.add_argument("--skip-stock", action="store_true", help="do not time the stock load_inline")
    parser.add_argument(
        "--solgym-only",
        action="store_true",
        help="only solgym's load_inline, uncached with the PCH ready and cached (no per-variant breakdown)",
    )
    parser.add_argument(
        "--source",
        choices=["rmsnorm", "dispatch"],
        default="rmsnorm",
        help="rmsnorm: examples/kernels/rmsnorm_cuda.py; dispatch: a template kernel behind AT_DISPATCH",
    )
    args = parser.parse_args()
    cpp, cuda, functions = sources(args.source)
    arch = build.gpu_arch()
    kernel = KERNEL.name if args.source == "rmsnorm" else "AT_DISPATCH axpy"
    result: dict = {"kernel": kernel, "reps": args.reps, "arch": arch, "cpus": os.cpu_count()}
    chain = dict(build.variants(cpp, cuda, functions, arch=arch))
    result["variants_available"] = list(chain)
    times: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as shared_dir:
        shared = Path(shared_dir)
        start = time.perf_counter()
        result["pch_built"] = [h.name for h in build.build_pch(shared)]
        result["pch_build_s"] = time.perf_counter() - start
        if not args.skip_stock:
            times["stock load_inline, uncached"] = [
                stock_once(cpp, cuda, functions) for _ in range(args.reps)
            ]
        runs = [builder_once(cpp, cuda, functions, shared) for _ in range(args.reps)]
        times["solgym load_inline, uncached (PCH ready)"] = [t for t, _ in runs]
        result["solgym_variant"] = runs[-1][1]
        print(f"solgym uncached (PCH ready): {[round(t, 2) for t, _ in runs]} s", flush=True)
        if args.solgym_only:
            stock_spec = chain["stock"]  # published under the key a request looks up first
            build.build_extension(stock_spec, shared, key=stock_spec.key())
            times["solgym load_inline, cached"] = [
                builder_once(cpp, cuda, functions, shared)[0] for _ in range(args.reps)
            ]
            chain = {}
        if not args.solgym_only:
            times["solgym load_inline, uncached, no PCH"] = [
                builder_once(cpp, cuda, functions, None)[0] for _ in range(args.reps)
            ]
        for name, spec in chain.items():
            times[f"  {name} units only, PCH"] = [variant_once(spec, shared) for _ in range(args.reps)]
        if "split" in chain:
            times["  split units only, no PCH"] = [
                variant_once(chain["split"], None) for _ in range(args.reps)
            ]
        if not args.solgym_only:
            stock_spec = chain["stock"]
            build.build_extension(stock_spec, shared, key=stock_spec.key())
            times["solgym load_inline, cached"] = [
                builder_once(cpp, cuda, functions, shared)[0] for _ in range(args.reps)
            ]
        result["unit_s"] = {
            f"{name}{' +PCH' if pch else ''}": unit_times(spec, pch)
            for name, spec in chain.items()
            for pch in ((None, shared) if name != "stock" else (None,))
        }
    # (a split with template kernels is left out: its kernels unit alone has no instances to compile)
    result["nvcc_phases_ms"] = {
        name: nvcc_phases(spec.kernel_cu or spec.cuda_cu, arch)
        for name, spec in chain.items()
        if not spec.kernel_templates
    }
    result["times_s"] = times
    result["p50_s"] = {k: statistics.median(v) for k, v in times.items()}
    if not args.json:
        print(
            f"{result['kernel']}: {args.reps} reps, {result['cpus']} CPUs, sm_{arch}, solgym picks {result['solgym_variant']}"
        )
        print(
            f"precompiled headers built once in {result['pch_build_s']:.1f} s ({', '.join(result['pch_built'])})"
        )
        print(f"{'build':48} {'p50 s':>8} {'min s':>8}")
        for k, v in times.items():
            print(f"{k:48} {statistics.median(v):8.2f} {min(v):8.2f}")
        print("translation units alone (s):")
        for k, v in result["unit_s"].items():
            print(f"  {k:22} " + "  ".join(f"{unit} {s:.2f}" for unit, s in v.items()))
        print("nvcc phases of the CUDA unit (ms):")
        for k, v in result["nvcc_phases_ms"].items():
            print(f"  {k:8} " + ", ".join(f"{p} {ms:.0f}" for p, ms in v.items()))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
