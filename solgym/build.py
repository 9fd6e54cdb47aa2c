"""CUDA C++ builds for actions: `torch.utils.cpp_extension.load_inline` through a cached, time-limited
build (DESIGN §4, §11.13).

The harness replaces `load_inline` with `Builder.load_inline` before the action is imported, so the
action's own call (which the static analyser sees as written) goes through here. The build writes the
same two translation units as the stock function (`main.cpp` with the pybind11 bindings, `cuda.cu` with
the CUDA sources behind the implicit headers), then compiles them itself rather than through ninja:

- the two compilers run in parallel, each under the time limit, and are killed (process group) when it
  runs out;
- `main.cpp` uses a precompiled `torch/extension.h` when trusted code has built one into the shared cache
  (`build_pch`), which takes the host binding from tens of seconds to about a second;
- `#line` markers make every compiler message name `cpp_sources` / `cuda_sources` and the action's own
  line numbers, so `COMPILE_ERROR` carries lines an author can act on.

**Caches.** A build is keyed by the SHA-256 of everything that decides its bytes (sources, functions,
flags, GPU architecture, torch / nvcc / compiler versions). A key is looked up first in the shared cache,
then built in the evaluation's private directory. The shared cache is read-only to every child and
written only by the trusted parent (`publish`), from a separate build job (`build_main`) that compiles
the sources an evaluation reported in a fresh child where no action is ever imported, under the key the
parent recomputes from those sources. A candidate therefore never writes where another candidate reads,
and what a build job returns can fill only the entry of its own sources.

On a CPU host CUDA sources are compile-checked only (nvcc's front end, `check_cuda_syntax`) and the
returned module raises `CompileCheckedOnly` when called, which the harness reports as such.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.machinery
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import types
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_TIMEOUT_S = 180.0
ERROR_LINES = 25


class BuildError(Exception):
    """A build that failed because of the action's sources: `status` (COMPILE_ERROR) and the compiler's
    useful lines in `message`."""

    status = "COMPILE_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class CompileCheckedOnly(BuildError):
    """Raised when a CUDA C++ function built in CPU mode is called: it compiled, but cannot run here."""

    status = "UNSUPPORTED"


@dataclass(frozen=True)
class Spec:
    """What decides one extension's bytes: its sources as the compilers see them and the flags."""

    main_cpp: str
    cuda_cu: str | None
    extra_cflags: tuple[str, ...] = ()
    extra_cuda_cflags: tuple[str, ...] = ()
    extra_ldflags: tuple[str, ...] = ()
    arch: str | None = None  # "90" for sm_90; None in CPU mode

    def key(self) -> str:
        """The content hash that names this build in every cache."""
        blob = json.dumps(
            [
                self.main_cpp,
                self.cuda_cu,
                self.extra_cflags,
                self.extra_cuda_cflags,
                self.extra_ldflags,
                self.arch,
                _toolchain(),
            ]
        )
        return hashlib.sha256(blob.encode()).hexdigest()


_DTYPE_ALIASES = (
    "using Dtype = at::ScalarType; constexpr auto kUInt8 = at::kByte; constexpr auto kInt8 = at::kChar; "
    "constexpr auto kInt16 = at::kShort; constexpr auto kInt32 = at::kInt; constexpr auto kInt64 = at::kLong; "
    "constexpr auto kFloat16 = at::kHalf; constexpr auto kFloat32 = at::kFloat; constexpr auto kFloat64 = at::kDouble;"
)
_UMBRELLA = re.compile(
    r"^[ \t]*#[ \t]*include[ \t]*[<\"]torch/(?:extension|types|all|torch)\.h[>\"][^\n]*$", re.M
)
_CALLED = re.compile(r"\b([A-Za-z_]\w*)\s*\(")
MAX_OP_HEADERS = 64


def light_prelude(text: str) -> list[str]:
    """Includes that declare what `text` uses of ATen, instead of all of it: the Tensor class (its methods,
    TensorOptions, TORCH_CHECK), one `ATen/ops/<op>.h` per called name that is an ATen operator, the
    dispatch macros when used, and the `torch::` names that `torch/types.h` adds. Most of the time the
    stock implicit header spends is parsing the roughly two thousand operators no kernel calls."""
    ops_dir = _torch_dir() / "include" / "ATen" / "ops"
    called = sorted({name for name in _CALLED.findall(text) if (ops_dir / f"{name}.h").is_file()})[
        :MAX_OP_HEADERS
    ]
    lines = ["#include <ATen/core/Tensor.h>", *(f"#include <ATen/ops/{name}.h>" for name in called)]
    if "AT_DISPATCH" in text:
        lines.append("#include <ATen/Dispatch.h>")
    lines.append("namespace torch { using namespace at; " + _DTYPE_ALIASES + " }")
    return lines


_LAUNCH_BOUNDS = re.compile(r"__launch_bounds__\s*\([^)]*\)")
_GLOBAL = re.compile(r"__global__[^;{(]*?\b([A-Za-z_]\w*)\s*\(")


def global_functions(source: str) -> set[str]:
    """Names of the `__global__` functions a CUDA source defines or declares."""
    return set(_GLOBAL.findall(_LAUNCH_BOUNDS.sub(" ", source)))


def make_spec(
    cpp_sources: str | list[str],
    cuda_sources: str | list[str] | None = None,
    functions: str | list[str] | dict[str, str] | None = None,
    *,
    extra_cflags: list[str] | None = None,
    extra_cuda_cflags: list[str] | None = None,
    extra_ldflags: list[str] | None = None,
    with_pytorch_error_handling: bool = True,
    no_implicit_headers: bool = False,
    arch: str | None = None,
    light: bool = False,
) -> Spec:
    """The two translation units `load_inline` would write, with `#line` markers naming the action's
    sources, and the flags. `light` swaps the implicit `torch/extension.h` / `torch/types.h` for
    `light_prelude` (and the pybind11 glue alone in main.cpp)."""
    cpp = [cpp_sources] if isinstance(cpp_sources, str) else list(cpp_sources)
    cuda = [cuda_sources] if isinstance(cuda_sources, str) else list(cuda_sources or [])
    if light and not no_implicit_headers:
        # Most actions include torch's umbrella headers themselves; the light variant blanks those lines
        # (keeping the line numbers) so that the light prelude stands in for them too.
        cpp = [_UMBRELLA.sub("", text) for text in cpp]
        cuda = [_UMBRELLA.sub("", text) for text in cuda]
    if no_implicit_headers:
        main: list[str] = []
    elif light:
        main = [
            "#include <torch/csrc/utils/pybind.h>",
            "#include <torch/csrc/Exceptions.h>",
            *light_prelude("\n".join(cpp)),
        ]
    else:
        main = ["#include <torch/extension.h>"]
    main += ['#line 1 "cpp_sources"', *cpp]
    if functions is not None:
        if isinstance(functions, str):
            functions = [functions]
        if isinstance(functions, list):
            functions = {f: f for f in functions}
        if not isinstance(functions, dict):
            raise BuildError(f"load_inline: functions must be a list or dict, not {type(functions).__name__}")
        main.append('#line 1 "solgym_bindings"')
        main.append("PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {")
        for name, doc in functions.items():
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_:]*", name):
                raise BuildError(f"load_inline: {name!r} is not a C++ function name")
            target = f"torch::wrap_pybind_function({name})" if with_pytorch_error_handling else name
            main.append(f'm.def("{name}", {target}, {json.dumps(str(doc))});')
        main.append("}")
    cuda_cu = None
    if cuda:
        torch_head = light_prelude("\n".join(cuda)) if light else ["#include <torch/types.h>"]
        head = [] if no_implicit_headers else [*torch_head, "#include <cuda.h>", "#include <cuda_runtime.h>"]
        cuda_cu = "\n".join([*head, '#line 1 "cuda_sources"', *cuda]) + "\n"
    return Spec(
        "\n".join(main) + "\n",
        cuda_cu,
        tuple(extra_cflags or ()),
        tuple(extra_cuda_cflags or ()),
        tuple(extra_ldflags or ()),
        arch,
    )


# ------------------------------------------------------------------------------------------------ toolchain


def _torch_dir() -> Path:
    spec = importlib.util.find_spec("torch")
    assert spec is not None and spec.origin is not None
    return Path(spec.origin).parent


def cuda_home() -> Path | None:
    """The CUDA toolkit: $CUDA_HOME, the folder of `nvcc` on PATH, or /usr/local/cuda."""
    for candidate in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH")):
        if candidate and (Path(candidate) / "bin" / "nvcc").exists():
            return Path(candidate)
    nvcc = shutil.which("nvcc")
    if nvcc:
        return Path(os.path.realpath(nvcc)).parent.parent
    default = Path("/usr/local/cuda")
    return default if (default / "bin" / "nvcc").exists() else None


_TOOLCHAIN: list[str] = []


def _toolchain() -> list[str]:
    """Versions that change a build's bytes: torch, nvcc, the host compiler."""
    if not _TOOLCHAIN:
        import torch

        home = cuda_home()
        nvcc = _version([str(home / "bin" / "nvcc"), "--version"]) if home else "none"
        _TOOLCHAIN.extend([torch.__version__, nvcc, _version([_cxx(), "--version"])])
    return _TOOLCHAIN


def _version(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip().splitlines()[-1]
    except (OSError, subprocess.SubprocessError, IndexError):
        return "unknown"


def _cxx() -> str:
    return os.environ.get("CXX", "c++")


def _includes() -> list[str]:
    torch_inc = _torch_dir() / "include"
    paths = [torch_inc, torch_inc / "torch" / "csrc" / "api" / "include"]
    home = cuda_home()
    if home:
        paths.append(home / "include")
    return [f"-I{p}" for p in paths] + ["-isystem", sysconfig.get_paths()["include"]]


def _defines(name: str) -> list[str]:
    import torch

    abi = int(getattr(torch._C, "_GLIBCXX_USE_CXX11_ABI", True))
    return [
        f"-DTORCH_EXTENSION_NAME={name}",
        "-DTORCH_API_INCLUDE_EXTENSION_H",
        f"-D_GLIBCXX_USE_CXX11_ABI={abi}",
    ]


_CXX_STD = "-std=c++20"  # torch >= 2.10 headers use C++20 features
# No -O: like the stock load_inline, host code (bindings, launch wrappers) is compiled without
# optimisation, which halves the host compiler's time; device code is optimised by ptxas (-O3) anyway,
# and the timing counts device time only. An action's extra_cflags / extra_cuda_cflags can still ask.


def _host_flags(name: str) -> list[str]:
    return [*_includes(), *_defines(name), "-fPIC", _CXX_STD, "-w"]


def _cuda_flags(name: str, arch: str | None) -> list[str]:
    from torch.utils.cpp_extension import COMMON_NVCC_FLAGS

    gencode = [f"-gencode=arch=compute_{arch},code=sm_{arch}"] if arch else []
    return [
        *_includes(),
        *_defines(name),
        *COMMON_NVCC_FLAGS,
        "-Xcompiler",
        "-fPIC",
        _CXX_STD,
        "-w",
        *gencode,
    ]


def gpu_arch() -> str:
    """The current GPU's architecture for `-gencode`, e.g. "90a" on an H100 (the `a` variants unlock the
    architecture-specific instructions kernels for Hopper and Blackwell use)."""
    import torch

    major, minor = torch.cuda.get_device_capability()
    return f"{major}{minor}{'a' if major >= 9 else ''}"


def pch_path(cache: Path) -> Path:
    """Where the precompiled `torch/extension.h` for this toolchain lives in a cache."""
    tag = hashlib.sha256(json.dumps([_toolchain(), _host_flags("X")]).encode()).hexdigest()[:16]
    return cache / "pch" / tag / "torch_extension.h"


def build_pch(cache: str | Path, timeout_s: float = 600.0) -> Path:
    """Precompile `torch/extension.h` into a (trusted) cache; returns the header path to `-include`.
    Done once per toolchain; run by trusted code only (e.g. `solgym baseline`, the pool's start)."""
    header = pch_path(Path(cache))
    gch = header.with_suffix(".h.gch")
    if gch.exists():
        return header
    header.parent.mkdir(parents=True, exist_ok=True)
    header.write_text("#include <torch/extension.h>\n")
    tmp = gch.with_suffix(f".tmp{os.getpid()}")
    _run(
        [_cxx(), "-x", "c++-header", str(header), *_host_flags("X"), "-o", str(tmp)], timeout_s, header.parent
    )
    os.replace(tmp, gch)
    return header


# ------------------------------------------------------------------------------------------------ building


def _run(cmd: list[str], timeout_s: float, cwd: Path) -> str:
    """Run one compiler under the time limit (the whole process group is killed when it runs out)."""
    proc = subprocess.Popen(
        cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise BuildError(f"compilation exceeded the time limit of {timeout_s:g} s") from None
    if proc.returncode != 0:
        raise BuildError(useful_lines(out) or f"{Path(cmd[0]).name} failed with exit code {proc.returncode}")
    return out


def _start(cmd: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )


def _finish(procs: list[subprocess.Popen], deadline: float) -> None:
    """Wait for parallel compilers; kill all at the deadline; raise on the first failure."""
    failures = []
    for proc in procs:
        try:
            out, _ = proc.communicate(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for p in procs:
                if p.poll() is None:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.communicate()
            raise BuildError("compilation exceeded its time limit") from None
        if proc.returncode != 0:
            failures.append(
                useful_lines(out) or f"{Path(proc.args[0]).name} failed with exit code {proc.returncode}"
            )
    if failures:
        raise BuildError("\n".join(failures))


_ERROR_RE = re.compile(r"(error|fatal|undefined reference|cannot find)", re.IGNORECASE)


def useful_lines(output: str, limit: int = ERROR_LINES) -> str:
    """The compiler lines an author can act on: errors with their location and the lines that follow
    them (source excerpt, caret), without the include-chain noise."""
    lines = output.splitlines()
    keep: list[str] = []
    for i, line in enumerate(lines):
        if _ERROR_RE.search(line) and not line.lstrip().startswith("In file included"):
            keep.extend(lines[i : i + 3])
    seen = []
    for line in keep:
        if line not in seen:
            seen.append(line)
    return "\n".join(seen[:limit])


def build_extension(
    spec: Spec,
    out_dir: Path,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    pch_cache: Path | None = None,
    key: str | None = None,
) -> Path:
    """Compile and link `spec` into `out_dir/<key>/` (`key` defaults to the spec's own; a light variant is
    filed under the key of the stock request it stands for); returns the shared object. Trusted callers
    pass a shared cache as `out_dir`; the child passes its private directory."""
    key = key or spec.key()
    name = f"solgym_ext_{key[:16]}"
    folder = out_dir / key
    so = folder / f"{name}.so"
    if so.exists():
        return so
    work = out_dir / f"{key}.tmp{os.getpid()}"
    work.mkdir(parents=True, exist_ok=True)
    (work / "main.cpp").write_text(spec.main_cpp)
    deadline = time.monotonic() + timeout_s
    host = [_cxx(), "-c", "main.cpp", "-o", "main.o", *_host_flags(name), *spec.extra_cflags]
    header = pch_path(pch_cache) if pch_cache else None
    if header is not None and header.with_suffix(".h.gch").exists():
        host[1:1] = ["-include", str(header)]
    procs = [_start(host, work)]
    objects = ["main.o"]
    if spec.cuda_cu is not None:
        home = cuda_home()
        if home is None:
            raise BuildError("CUDA sources need nvcc, and no CUDA toolkit was found (set CUDA_HOME)")
        (work / "cuda.cu").write_text(spec.cuda_cu)
        procs.append(
            _start(
                [
                    str(home / "bin" / "nvcc"),
                    "-c",
                    "cuda.cu",
                    "-o",
                    "cuda.o",
                    *_cuda_flags(name, spec.arch),
                    *spec.extra_cuda_cflags,
                ],
                work,
            )
        )
        objects.append("cuda.o")
    _finish(procs, deadline)
    torch_lib = _torch_dir() / "lib"
    libs = ["-lc10", "-ltorch", "-ltorch_cpu", "-ltorch_python"]
    if spec.cuda_cu is not None:
        libs += ["-lc10_cuda", "-ltorch_cuda", f"-L{cuda_home() / 'lib64'}", "-lcudart"]
    _run(
        [
            _cxx(),
            "-shared",
            *objects,
            "-o",
            so.name,
            f"-L{torch_lib}",
            f"-Wl,-rpath,{torch_lib}",
            *libs,
            *spec.extra_ldflags,
        ],
        max(1.0, deadline - time.monotonic()),
        work,
    )
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(work, folder)  # atomic publish: readers see a complete build or none
    except OSError:
        shutil.rmtree(work, ignore_errors=True)
    return so


def check_cuda_syntax(spec: Spec, work: Path, timeout_s: float) -> None:
    """CPU mode: compile-check the CUDA sources with nvcc's front end (`-cuda`: preprocessing and
    cudafe++, which parses and checks host and device code alike) and stop before code generation, the
    half of an nvcc run that a host without a GPU has no use for. `cpp_sources` are not compiled here:
    on a CPU only the CUDA translation unit is checked, which the result says."""
    home = cuda_home()
    if spec.cuda_cu is None:
        return
    if home is None:
        raise BuildError(
            "CUDA sources need nvcc to be checked, and no CUDA toolkit was found (set CUDA_HOME)"
        )
    work.mkdir(parents=True, exist_ok=True)
    (work / "cuda.cu").write_text(spec.cuda_cu)
    _run(
        [
            str(home / "bin" / "nvcc"),
            "-cuda",
            "cuda.cu",
            "-o",
            "cuda.ii",
            *_cuda_flags("check", "90"),
            *spec.extra_cuda_cflags,
        ],
        timeout_s,
        work,
    )


# ------------------------------------------------------------------------------------------------ the hook


@dataclass
class Builder:
    """The `load_inline` the harness binds for one evaluation, and what it built."""

    mode: str
    workdir: Path
    shared_cache: Path | None
    timeout_s: float
    builds: list[dict[str, Any]] = field(default_factory=list)
    kernel_names: set[str] = field(default_factory=set)
    _log: list[str] = field(default_factory=list)

    def load_inline(
        self,
        name: str,
        cpp_sources: Any,
        cuda_sources: Any = None,
        functions: Any = None,
        extra_cflags: Any = None,
        extra_cuda_cflags: Any = None,
        extra_ldflags: Any = None,
        extra_include_paths: Any = None,
        build_directory: Any = None,
        verbose: bool = False,
        with_cuda: Any = None,
        is_python_module: bool = True,
        with_pytorch_error_handling: bool = True,
        keep_intermediates: bool = True,
        use_pch: bool = False,
        no_implicit_headers: bool = False,
        sycl_sources: Any = None,
        **_: Any,
    ) -> Any:
        """Same parameters and result as `torch.utils.cpp_extension.load_inline`; `build_directory`,
        `verbose`, `use_pch` and the like are ignored (solgym decides where and how it builds)."""
        if sycl_sources:
            raise BuildError("load_inline: SYCL sources are not supported; solgym builds CUDA C++")
        if extra_include_paths:
            raise BuildError(
                "load_inline: extra_include_paths is not allowed in an action (sources must be inline)"
            )
        arch = gpu_arch() if self.mode == "gpu" else None
        options = {
            "extra_cflags": extra_cflags,
            "extra_cuda_cflags": extra_cuda_cflags,
            "extra_ldflags": extra_ldflags,
            "with_pytorch_error_handling": with_pytorch_error_handling,
            "no_implicit_headers": no_implicit_headers,
            "arch": arch,
        }
        spec = make_spec(cpp_sources, cuda_sources, functions, **options)
        self.kernel_names |= global_functions(spec.cuda_cu or "")
        light = make_spec(cpp_sources, cuda_sources, functions, **options, light=True)
        key = spec.key()
        start = time.perf_counter()
        record: dict[str, Any] = {"name": str(name)[:64], "key": key, "cached": False}
        self.builds.append(record)
        if self.mode != "gpu":
            record["variant"] = _light_first(
                lambda s: check_cuda_syntax(s, self.workdir / "build_check", self.timeout_s), light, spec
            )[0]
            record["ms"] = (time.perf_counter() - start) * 1e3
            self._log.append(
                f"{name}: CUDA sources compile-checked by nvcc's front end in {record['ms']:.0f} ms "
                "(CPU mode: cpp_sources not compiled, nothing run)"
            )
            return _checked_only_module(name, functions)
        so = None
        if self.shared_cache is not None:
            shared = self.shared_cache / key / f"solgym_ext_{key[:16]}.so"
            if shared.exists():
                so, record["cached"], record["variant"] = shared, True, "cache"
        if so is None:
            out = self.workdir / "build"
            record["variant"], so = _light_first(
                lambda s: build_extension(
                    s, out, timeout_s=self.timeout_s, pch_cache=self.shared_cache, key=key
                ),
                light,
                spec,
            )
        record["ms"] = (time.perf_counter() - start) * 1e3
        if not record["cached"]:
            # What a trusted rebuild needs (`rebuild_payloads`); the candidate's claim, re-keyed there.
            record["rebuild"] = {"spec": asdict(spec), "light": asdict(light)}
        self._log.append(f"{name}: {'cache hit' if record['cached'] else 'built'} in {record['ms']:.0f} ms")
        module_name = so.stem
        loader = importlib.machinery.ExtensionFileLoader(module_name, str(so))
        module_spec = importlib.util.spec_from_file_location(module_name, so, loader=loader)
        module = importlib.util.module_from_spec(module_spec)
        loader.exec_module(module)
        sys.modules[module_name] = module
        return module

    def summary(self) -> dict[str, Any]:
        """What was built, for the report, with what a trusted rebuild into the shared cache needs."""
        return {"builds": list(self.builds)}

    def log(self) -> str:
        """One line per build."""
        return "\n".join(self._log)


_SYNTAX_ERROR = re.compile(
    r"expected an? |unrecognized token|missing closing|unexpected end of file|extra text after|expected declaration|"
    r"expected primary-expression|expected unqualified-id|expected '[;,)}\]]'"
)


def _light_first(step: Any, light: Spec, stock: Spec) -> tuple[str, Any]:
    """Run `step` on the light variant; when it fails for a reason other than a plain syntax error (which
    the stock headers would report just the same), run it on the stock variant, whose outcome decides.
    Returns which variant succeeded and what `step` returned."""
    if light == stock:
        return "stock", step(stock)
    try:
        return "light", step(light)
    except BuildError as e:
        if "time limit" in e.message:
            raise
        errors = [line for line in e.message.splitlines() if "error" in line.lower()]
        if errors and all(_SYNTAX_ERROR.search(line) for line in errors):
            raise
    return "stock", step(stock)


def _checked_only_module(name: str, functions: Any) -> types.ModuleType:
    module = types.ModuleType(str(name))
    names = [functions] if isinstance(functions, str) else list(functions or [])

    def unavailable(*_args: Any, **_kwargs: Any) -> Any:
        raise CompileCheckedOnly("CUDA C++ compiled (compile-checked only): a CPU host cannot run it")

    for fn in names:
        setattr(module, fn, unavailable)
    return module


def install(
    *, mode: str, workdir: Path, shared_cache: str | Path | None, timeout_s: float = DEFAULT_TIMEOUT_S
) -> Builder:
    """Bind a Builder's `load_inline` in place of torch's, before the action is imported. Arguments are
    matched by the installed torch's own signature, so positional calls mean what they mean there."""
    import functools
    import inspect

    import torch.utils.cpp_extension as cpp_extension

    builder = Builder(mode, workdir, Path(shared_cache) if shared_cache else None, timeout_s)
    stock = cpp_extension.load_inline
    signature = inspect.signature(stock)

    @functools.wraps(stock)
    def load_inline(*args: Any, **kwargs: Any) -> Any:
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as e:
            raise BuildError(f"load_inline: {e}") from None
        return builder.load_inline(**bound.arguments)

    cpp_extension.load_inline = load_inline
    return builder


# ------------------------------------------------------------------------------------------------ the shared cache

BUILD_ENTRY = "solgym.build:build_main"
SO_CAP = 48 << 20  # bytes of a shared object a build job may hand back


def rebuild_payloads(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Build jobs for the extensions an evaluation built privately, so that trusted code can publish
    them into the shared cache (`build_main` in a fresh child, then `publish`)."""
    jobs = []
    for record in (report.get("build") or {}).get("builds") or []:
        rebuild = record.get("rebuild")
        if (
            isinstance(rebuild, dict)
            and isinstance(rebuild.get("spec"), dict)
            and isinstance(rebuild.get("light"), dict)
        ):
            jobs.append({"spec": rebuild["spec"], "light": rebuild["light"], "timeout_s": DEFAULT_TIMEOUT_S})
    return jobs


def _spec(data: dict[str, Any]) -> Spec:
    fields = Spec.__dataclass_fields__
    unknown = set(data) - set(fields)
    if unknown:
        raise ValueError(f"unknown build spec fields {sorted(unknown)}")
    values = dict(data)
    for name in ("extra_cflags", "extra_cuda_cflags", "extra_ldflags"):
        values[name] = tuple(str(x) for x in values.get(name) or ())
    return Spec(**values)


def build_main(payload: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Pool entry: compile one extension in a fresh child. No action is imported here; the compilers run
    only after the privileges are dropped, so the sources see no more of the host than a candidate does.
    Returns the shared object (base64) under the key recomputed from the sources."""
    ctx.drop_privileges()
    spec, light = _spec(payload["spec"]), _spec(payload["light"])
    key = spec.key()
    out = Path(ctx.workdir) / "build"
    timeout_s = float(payload.get("timeout_s", DEFAULT_TIMEOUT_S))
    try:
        pch = Path(payload["pch_cache"]) if payload.get("pch_cache") else None
        variant, so = _light_first(
            lambda s: build_extension(s, out, timeout_s=timeout_s, pch_cache=pch, key=key), light, spec
        )
    except BuildError as e:
        return {"key": key, "error": e.message}
    data = so.read_bytes()
    if len(data) > SO_CAP:
        return {"key": key, "error": f"the shared object is {len(data)} bytes, over the {SO_CAP}-byte cap"}
    return {"key": key, "variant": variant, "so_b64": base64.b64encode(data).decode()}


def publish(shared_cache: str | Path, job: dict[str, Any], result: dict[str, Any]) -> Path | None:
    """Write what `build_main` returned into the shared cache (trusted side), under the key the parent
    computes itself from the job's sources: a child's claim can fill only the entry of its own sources.
    Returns the published file, or None when the build failed."""
    if not result or "so_b64" not in result:
        return None
    key = _spec(job["spec"]).key()
    folder = Path(shared_cache) / key
    target = folder / f"solgym_ext_{key[:16]}.so"
    if target.exists():
        return target
    data = base64.b64decode(result["so_b64"], validate=True)
    tmp = Path(shared_cache) / f"{key}.publish{os.getpid()}"
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / target.name).write_bytes(data)
    (tmp / target.name).chmod(0o644)
    tmp.chmod(0o755)
    try:
        os.replace(tmp, folder)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
