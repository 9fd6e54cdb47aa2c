"""CUDA C++ builds for actions: `torch.utils.cpp_extension.load_inline` through a cached, time-limited
build (DESIGN §4, §11.13).

The harness replaces `load_inline` with `Builder.load_inline` before the action is imported, so the
action's own call (which the static analyser sees as written) goes through here. A call is a request
from which `variants` derives up to three builds, tried fastest first, each compiled by the compilers
directly (one process per translation unit, all in parallel, killed as a process group at the time limit):

- **split** (`split_units`): the kernels and device code in a unit nvcc compiles without any torch
  header, the host functions in a unit g++ compiles, launches lowered as nvcc lowers them (template
  kernels instantiated for what the host unit calls), and the pybind11 bindings in `main.cpp`. Torch's
  headers are most of a stock build's time and the kernels need none of them;
- **light** (`light_prelude`): the unit torch would write for the CUDA sources, behind the declarations
  of what the sources use instead of all of ATen;
- **stock**: the two units `load_inline` writes (`main.cpp`, `cuda.cu`); it decides when the others
  fail, so a variant changes how fast a build is, never whether it compiles.

The g++ units start from headers precompiled once per toolchain into the shared cache (`build_pch`, by
trusted code). `#line` markers make every compiler message name `cpp_sources` / `cuda_sources` and the
action's own line numbers, so `COMPILE_ERROR` carries lines an author can act on.

**Caches.** A build is keyed by the SHA-256 of everything that decides its stock bytes (sources,
functions, flags, GPU architecture, torch / nvcc / compiler versions), whichever variant built it. A key
is looked up first in the shared cache, then built in the evaluation's private directory. The shared
cache is read-only to every child and written only by the trusted parent (`publish`), from a separate
build job (`build_main`) that compiles the request an evaluation reported in a fresh child where no
action is ever imported, under the key the parent recomputes from that request. A candidate therefore
never writes where another candidate reads, and what a build job returns can fill only the entry of its
own sources.

On a CPU host CUDA sources are compile-checked only (nvcc's front end, `check_cuda_syntax`) and the
returned module raises `CompileCheckedOnly` when called, which the harness reports as such.
"""

from __future__ import annotations

import base64
import bisect
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
import threading
import time
import types
from dataclasses import dataclass, field
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
    # The split variant (`split_units`): `cuda_cu` is None, the torch-facing host code goes to the host
    # compiler and the kernels to nvcc without torch headers.
    host_cpp: str | None = None
    kernel_cu: str | None = None
    kernel_templates: tuple[str, ...] = ()  # template kernels: instantiated for what host.o calls

    def key(self) -> str:
        """The content hash that names this build in every cache."""
        parts: list[Any] = [
            self.main_cpp,
            self.cuda_cu,
            self.extra_cflags,
            self.extra_cuda_cflags,
            self.extra_ldflags,
            self.arch,
            _toolchain(),
        ]
        if self.kernel_cu is not None:
            parts += [self.host_cpp, self.kernel_cu]
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


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


# ------------------------------------------------------------------------------------------------ split units


class SplitUnavailable(ValueError):
    """The CUDA sources cannot be split into a kernels unit and a host unit safely; the reason says why."""


_TORCH_NAME = re.compile(
    r"\b(?:torch|at|c10|caffe2|pybind11|py)\s*::|\bnamespace\s+(?:torch|at|c10)\b"
    r"|\b(?:TORCH|AT|C10)_[A-Z_]+\b|\bTensor\b|\bPy[A-Z]\w*"
)
_TORCH_INCLUDE = re.compile(r"\s*#\s*include\s*[<\"](?:torch|ATen|c10|caffe2|pybind11|Python)\b")
_DEFINE = re.compile(r"\s*#\s*define\b")
# Headers the host compiler reads as nvcc's host pass does; any other include (CUB, Thrust, CUTLASS,
# cooperative groups...) goes to the kernels unit only, and host code that needs it fails to compile,
# which falls back to the whole unit.
_HOST_INCLUDE = re.compile(
    r"\s*#\s*include\s*<(?:[a-z_]+|(?:std\w*|math|stdio|string|assert|limits|float)\.h"
    r"|cuda(?:_runtime(?:_api)?|_fp16|_bf16|_fp8)?\.h|vector_types\.h|driver_types\.h)>"
)
# The host compiler does not define these, nvcc's host pass does: code that tests them is not split.
_NVCC_MACROS = re.compile(r"\b__(?:CUDACC|NVCC)\w*__\b|\b__CUDACC_VER\w*")
# What the kernels unit includes first: the CUDA runtime, and the standard headers that torch's headers
# bring into the whole unit, so that kernels find there what they find in the stock build (printf,
# assert, std::numeric_limits, INFINITY...).
KERNELS_PRELUDE = (
    "cuda.h",
    "cuda_runtime.h",
    "cstdio",
    "cstdint",
    "cmath",
    "climits",
    "cfloat",
    "cassert",
    "limits",
    "algorithm",
    "type_traits",
    "utility",
)
_DIGRAPH = re.compile(r"<%|%>|<:|:>|%:|\?\?[=/'()!<>-]")
_TYPE_HEAD = re.compile(r"\b(?:struct|class|union|enum)\b")
_NAMESPACE_HEAD = re.compile(r"^\s*(?:inline\s+)?namespace\b\s*([\w:]*)\s*$")
_EXTERN_C_HEAD = re.compile(r'^\s*extern\s*"\s*"\s*$')  # on masked text: the "C" is blanked
_DEVICE_DATA = re.compile(r"\b(?:__device__|__constant__|__shared__|__managed__)\b")
_CALLEE = re.compile(r"([A-Za-z_]\w*(?:\s*::\s*[A-Za-z_]\w*)*)\s*$")
# nvcc lowers `k<<<grid, block, smem, stream>>>(args)` to exactly this call: push the launch configuration,
# then call the kernel's host stub, which pops it and launches. The stub lives in the kernels unit.
_PUSH_CONFIG = (
    'extern "C" unsigned __cudaPushCallConfiguration(dim3 gridDim, dim3 blockDim = 1, '
    "size_t sharedMem = 0, struct CUstream_st *stream = 0);"
)
# nvcc options an action may pass that leave the host code's meaning alone (or that the host unit gets
# too: -D, -U, -std); with any other option the sources are not split.
_DEVICE_OPTIONS = re.compile(
    r"-O[0-3s]?|--?use_fast_math|-lineinfo|--generate-line-info|--?(?:restrict|res-usage|resource-usage)"
    r"|--expt-relaxed-constexpr|--expt-extended-lambda|--extended-lambda"
    r"|-(?:Xptxas|-ptxas-options)=\S+|--?maxrregcount=\d+|-(?:ftz|prec-div|prec-sqrt|fmad)=(?:true|false)"
    r"|-arch=\S+|--gpu-architecture=\S+|-gencode=\S+|--generate-code=\S+"
)
_HOST_OPTIONS = re.compile(r"-[DU]\w+(?:=.*)?|-std=c\+\+\d\d")
_OPTION_PAIRS = ("-Xptxas", "--ptxas-options", "-gencode", "--generate-code", "-arch", "-maxrregcount")


def _mask(text: str) -> str:
    """`text` with the insides of comments and string / character literals blanked (same length, newlines
    kept), so that brackets and semicolons in them do not count."""
    out = list(text)
    i, n = 0, len(text)

    def blank(a: int, b: int) -> None:
        for k in range(a, min(b, n)):
            if out[k] != "\n":
                out[k] = " "

    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            blank(i, j)
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            blank(i, j)
            i = j
        elif (
            c == '"'
            and i > 0
            and text[i - 1] == "R"
            and (i < 2 or not (text[i - 2].isalnum() or text[i - 2] == "_") or text[i - 2] in "uUL8")
        ):
            opening = text.find("(", i)
            delimiter = text[i + 1 : opening] if opening > 0 else ""
            j = text.find(")" + delimiter + '"', opening)
            j = n if j < 0 or opening < 0 else j + len(delimiter) + 2
            blank(i + 1, j - 1)
            i = j
        elif c == '"' or (c == "'" and not (i > 0 and (text[i - 1].isalnum() or text[i - 1] == "_"))):
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            blank(i + 1, j)
            i = j + 1
        else:
            i += 1
    return "".join(out)


@dataclass
class _Item:
    """One top-level declaration, definition or preprocessor line of a source: [start, end) in the text,
    `brace` the offset of its first top-level `{` (or -1) and, for a namespace or `extern "C"` block,
    the items inside it."""

    start: int
    end: int
    brace: int = -1
    directive: bool = False
    inner: list[_Item] | None = None


def _items(masked: str, lo: int, hi: int, nesting: int = 0) -> list[_Item]:
    """Top-level items of masked[lo:hi]; namespace and `extern "C"` blocks are opened (up to 8 deep:
    each level rescans its block)."""
    if nesting > 8:
        raise SplitUnavailable("namespaces nested too deeply")
    items: list[_Item] = []
    i, depth, item = lo, 0, None
    while i < hi:
        c = masked[i]
        if item is None:
            if c.isspace() or c == ";":
                i += 1
                continue
            if c == "#":
                j = i
                while True:
                    j = masked.find("\n", j)
                    if j < 0 or j >= hi:
                        j = hi
                        break
                    last = j - 2 if masked[j - 1] == "\r" else j - 1
                    if masked[last] != "\\":  # a line ending in a backslash goes on
                        break
                    j += 1
                items.append(_Item(i, j, directive=True))
                i = j
                continue
            item = _Item(i, -1)
        if c in "([{":
            if c == "{" and depth == 0 and item.brace < 0:
                item.brace = i
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth < 0:
                raise SplitUnavailable("unbalanced brackets")
            if c == "}" and depth == 0:
                head = masked[item.start : item.brace]
                if not _TYPE_HEAD.search(head) and not _initialises(head):
                    item.end = i + 1
                    if _NAMESPACE_HEAD.match(head) or _EXTERN_C_HEAD.match(head):
                        item.inner = _items(masked, item.brace + 1, i, nesting + 1)
                    items.append(item)
                    item = None
        elif c == ";" and depth == 0:
            item.end = i + 1
            items.append(item)
            item = None
        i += 1
    if depth != 0 or item is not None:
        raise SplitUnavailable("a declaration is not closed")
    return items


def _initialises(head: str) -> bool:
    """Whether a top-level head (the text before its first `{`) declares a variable with an initialiser,
    as in `int table[] = {...}` or `auto f = [](...) {...}`, rather than a function with default
    arguments."""
    if head.lstrip().startswith("template"):
        depth, opened = 0, False
        for i, c in enumerate(head):
            if c == "<":
                depth, opened = depth + 1, True
            elif c == ">":
                depth -= 1
                if opened and depth == 0:
                    head = head[i + 1 :]
                    break
    return "=" in re.sub(r"\boperator\b.*", "", head.split("(", 1)[0])


def _balanced_end(masked: str, start: int, launch: bool) -> int | None:
    """Scanning from `start` with bracket depth tracked: the offset of the first `>>>` at depth 0
    (`launch`), or of the bracket that brings the depth back to 0 (the one closing `start`'s)."""
    depth = 0
    for i in range(start, len(masked)):
        if masked[i] in "([{":
            depth += 1
        elif masked[i] in ")]}":
            depth -= 1
            if not launch and depth == 0:
                return i
        elif launch and depth == 0 and masked.startswith(">>>", i):
            return i
    return None


def _config_end(masked: str, start: int) -> int:
    """The offset of the `>>>` that closes a launch configuration starting at `start`."""
    end = _balanced_end(masked, start, launch=True)
    if end is None:
        raise SplitUnavailable("a launch configuration is not closed")
    return end


def _closing(masked: str, start: int) -> int:
    """The offset of the bracket closing the one at `start`."""
    end = _balanced_end(masked, start, launch=False)
    if end is not None:
        return end
    raise SplitUnavailable("a launch's arguments are not closed")


def _rewrite_launches(text: str, masked: str, start: int, end: int, kernels: set[str]) -> str:
    """text[start:end] with each `kernel<<<config>>>(args)` written as nvcc itself lowers it, so that a
    host compiler can build it (line breaks kept, so compiler lines stay right)."""
    out, i = [], start
    while True:
        p = masked.find("<<<", i, end)
        if p < 0:
            out.append(text[i:end])
            return "".join(out)
        name_end = p
        while name_end > i and masked[name_end - 1].isspace():
            name_end -= 1
        if name_end > i and masked[name_end - 1] == ">":  # k<T, 4><<<...>>>: skip the template arguments
            depth = 0
            for j in range(name_end - 1, max(i, p - 512) - 1, -1):
                depth += {">": 1, "<": -1}.get(masked[j], 0)
                if depth == 0:
                    name_end = j
                    break
            else:
                raise SplitUnavailable("a launch's template arguments are not closed")
        window = max(i, name_end - 512)  # a callee name is short; a bounded window keeps the search linear
        callee = _CALLEE.search(masked, window, name_end)
        name = callee.group(1).split("::")[-1].strip() if callee else ""
        if name not in kernels:
            raise SplitUnavailable("a launch of something other than a kernel these sources define")
        close = _config_end(masked, p + 3)
        paren = close + 3
        while paren < end and masked[paren].isspace():
            paren += 1
        if paren >= end or masked[paren] != "(":
            raise SplitUnavailable("a launch without arguments")
        args_end = _closing(masked, paren)
        out += [
            text[i : callee.start()],
            f"(__cudaPushCallConfiguration({text[p + 3 : close]}) ? (void)0 : {text[callee.start() : p].rstrip()}",
            text[paren : args_end + 1],
            ")",
        ]
        i = args_end + 1


def _split_options(flags: tuple[str, ...]) -> list[str]:
    """The host unit's share of an action's nvcc options (-D, -U, -std); raises when an option could
    change the host code's meaning in a way the split would not reproduce."""
    host, pending = [], False
    for flag in flags:
        if pending:
            pending = False
        elif flag in _OPTION_PAIRS:
            pending = True
        elif _HOST_OPTIONS.fullmatch(flag):
            host.append(flag)
        elif not _DEVICE_OPTIONS.fullmatch(flag):
            raise SplitUnavailable(f"nvcc option {flag!r}")
    return host


def split_units(cuda_text: str) -> tuple[str, str, tuple[str, ...]]:
    """Split CUDA sources (as `cuda_sources` lines, umbrella torch includes already blanked) into a kernels
    unit, compiled by nvcc without any torch header, and a host unit, compiled by the host compiler, and
    return `(kernels_unit_body, host_unit_body, template_kernel_names)`, each item behind a `#line` marker
    of its own. Template kernels are instantiated in the kernels unit for what the compiled host unit
    calls (`build_extension`).

    The kernels unit keeps every kernel and device function, type, macro and shared declaration; the host
    unit keeps every host function, with the kernels declared and each `<<<...>>>` launch lowered the way
    nvcc lowers it (push the configuration, call the kernel's host stub). Types, macros and constants go to
    both. Anything the split cannot reproduce exactly raises `SplitUnavailable` (internal-linkage
    kernels, launches from device code, kernels that need torch), and a split that does not compile is
    rebuilt whole, so the split decides speed only, never what compiles."""
    masked = _mask(cuda_text)
    if _NVCC_MACROS.search(masked):
        raise SplitUnavailable("the sources test nvcc's own macros")
    if _DIGRAPH.search(masked):
        raise SplitUnavailable("digraphs or trigraphs (brackets the scan would not see)")
    items = _items(masked, 0, len(masked))
    line_starts = [i for i, c in enumerate(cuda_text) if c == "\n"]
    kernels: set[str] = set()
    templates: set[str] = set()

    def find_kernels(group: list[_Item], anonymous: bool) -> None:
        for item in group:
            head = masked[item.start : item.brace if item.brace >= 0 else item.end]
            if item.inner is not None:
                name = _NAMESPACE_HEAD.match(head)
                find_kernels(item.inner, anonymous or (name is not None and not name.group(1)))
            elif "__global__" in head:
                if re.search(r"\bstatic\b", head) or anonymous:
                    raise SplitUnavailable("an internal-linkage kernel")
                kernels.update(global_functions(head))
                if re.match(r"\s*template\b", head):
                    templates.update(global_functions(head))

    find_kernels(items, False)
    if not kernels:
        raise SplitUnavailable("no kernels")

    def line_of(offset: int) -> str:
        return f'#line {bisect.bisect_left(line_starts, offset) + 1} "cuda_sources"'

    def split(group: list[_Item]) -> tuple[list[str], list[str]]:
        device: list[str] = []
        host: list[str] = []
        for item in group:
            text = cuda_text[item.start : item.end]
            marked = [line_of(item.start), text]
            if item.directive:
                torch_only = _TORCH_INCLUDE.match(text) or (_DEFINE.match(text) and _TORCH_NAME.search(text))
                if not torch_only:
                    device.extend(marked)
                if torch_only or not re.match(r"\s*#\s*include\b", text) or _HOST_INCLUDE.match(text):
                    host.extend(marked)
                continue
            head = masked[item.start : item.brace if item.brace >= 0 else item.end]
            body = masked[item.start : item.end]
            if item.inner is not None:
                inner_device, inner_host = split(item.inner)
                opening = cuda_text[item.start : item.brace + 1]
                for unit, inner in ((device, inner_device), (host, inner_host)):
                    unit.extend([line_of(item.start), opening, *inner, "}"])
                continue
            is_function = (
                item.brace >= 0 and "(" in head and not _TYPE_HEAD.search(head) and not _initialises(head)
            )
            if is_function and "__global__" in head:
                if "<<<" in body:
                    raise SplitUnavailable("a kernel launches kernels (dynamic parallelism)")
                device.extend(marked)
                # The declaration the launches call; g++ has no use for (or meaning of) launch bounds.
                declaration = _LAUNCH_BOUNDS.sub(" ", cuda_text[item.start : item.brace]).rstrip() + ";"
                host.extend([line_of(item.start), declaration])
            elif is_function and "__device__" in head:
                if "<<<" in body:
                    raise SplitUnavailable("device code launches kernels (dynamic parallelism)")
                device.extend(marked)
                if "__host__" in head:
                    host.extend(marked)
            elif is_function and not re.search(r"\bconstexpr\b", head):
                host.extend(
                    [line_of(item.start), _rewrite_launches(cuda_text, masked, item.start, item.end, kernels)]
                )
            elif _DEVICE_DATA.search(head) and not is_function:
                device.extend(marked)
                if "__host__" in head:  # a host-and-device function's declaration
                    host.extend(marked)
            elif _TORCH_NAME.search(body):
                host.extend(marked)
            else:
                device.extend(marked)
                host.extend(marked)
        return device, host

    device, host = split(items)
    device_text = "\n".join(device)
    if _TORCH_NAME.search(_mask(device_text)):
        raise SplitUnavailable("the kernels use torch")
    return device_text + "\n", "\n".join(host) + "\n", tuple(sorted(templates))


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
    split: bool = False,
) -> Spec:
    """The two translation units `load_inline` would write, with `#line` markers naming the action's
    sources, and the flags. `light` swaps the implicit `torch/extension.h` / `torch/types.h` for
    `light_prelude` (and the pybind11 glue alone in main.cpp). `split` (implies `light`) replaces the CUDA
    unit by the kernels unit and the host unit of `split_units`, or raises `SplitUnavailable`."""
    light = light or split
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
    cuda_cu = host_cpp = kernel_cu = None
    if split:
        if not cuda or no_implicit_headers:
            raise SplitUnavailable("no CUDA sources" if not cuda else "no_implicit_headers")
        _split_options(tuple(extra_cuda_cflags or ()))
        kernel_body, host_body, templates = split_units("\n".join(cuda))
        kernel_cu = "".join(f"#include <{h}>\n" for h in KERNELS_PRELUDE) + kernel_body
        host_cpp = "\n".join(
            [
                *light_prelude(host_body),
                "#include <cuda.h>",
                "#include <cuda_runtime.h>",
                _PUSH_CONFIG,
                host_body,
            ]
        )
    elif cuda:
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
        host_cpp,
        kernel_cu,
        templates if split else (),
    )


def variants(
    cpp_sources: str | list[str],
    cuda_sources: str | list[str] | None = None,
    functions: Any = None,
    **options: Any,
) -> list[tuple[str, Spec]]:
    """The builds of one `load_inline` request, fastest first: the split units (when the sources allow
    it), the light headers (when they differ from the stock ones), and the stock translation units last,
    whose outcome decides when the others fail. `options` are `make_spec`'s keywords."""
    stock = make_spec(cpp_sources, cuda_sources, functions, **options)
    chain = []
    try:
        chain.append(("split", make_spec(cpp_sources, cuda_sources, functions, **options, split=True)))
    except SplitUnavailable:
        pass
    light = make_spec(cpp_sources, cuda_sources, functions, **options, light=True)
    if light != stock:
        chain.append(("light", light))
    return [*chain, ("stock", stock)]


# ------------------------------------------------------------------------------------------------ toolchain


def _torch_dir() -> Path:
    spec = importlib.util.find_spec("torch")
    assert spec is not None and spec.origin is not None
    return Path(spec.origin).parent


def cuda_home() -> Path | None:
    """The CUDA toolkit: $CUDA_HOME, the toolkit of `nvcc` on PATH, or /usr/local/cuda."""
    for candidate in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH")):
        if candidate and (Path(candidate) / "bin" / "nvcc").exists():
            return Path(candidate)
    nvcc = shutil.which("nvcc")
    # A wrapper script on PATH is no toolkit: the host unit needs the toolkit's headers.
    if nvcc and (Path(os.path.realpath(nvcc)).parent.parent / "include" / "cuda_runtime.h").exists():
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
    # The whole banner: g++ names its version on the first line, nvcc its build on the last.
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
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


# Precompiled headers, one per kind of host translation unit: what every light main.cpp includes first
# (pybind11 and torch's glue), and what every host unit of a split build includes first (the Tensor
# class, what each `ATen/ops/<op>.h` includes, the CUDA runtime). Each is a fixed cost the trusted side
# pays once per toolchain. One header for both, or all of `torch/extension.h` (~800 MB), is slower to load
# than the headers are to parse (measured: docs/evaluation.md).
PCH_HEADERS = {
    "main": ("torch/csrc/utils/pybind.h", "torch/csrc/Exceptions.h", "ATen/core/Tensor.h"),
    "host": (
        "ATen/core/Tensor.h",
        "ATen/Context.h",
        "ATen/DeviceGuard.h",
        "ATen/TensorUtils.h",
        "ATen/TracerMode.h",
        "ATen/core/Generator.h",
        "ATen/core/Reduction.h",
        "ATen/Dispatch.h",
        "cuda.h",
        "cuda_runtime.h",
    ),
}
_PCH_LOCK = threading.Lock()


def _pch_flags(unit: str) -> list[str]:
    # The module name is the one define that differs between builds; the headers do not use it, so a
    # precompiled header is built without it and stays valid for every build. (GCC itself refuses a
    # precompiled header that a define of the build would change, e.g. an action's -DNDEBUG, and then
    # parses the header's text instead.)
    flags = _host_flags("X") if unit == "main" else _split_host_flags("X", Spec("", None))
    return [f for f in flags if not f.startswith("-DTORCH_EXTENSION_NAME=")]


def pch_path(cache: Path, unit: str = "main") -> Path:
    """Where the precompiled header of one kind of unit (`PCH_HEADERS`: "main" or "host") for this
    toolchain lives in a cache; its `.gch` lies beside it."""
    blob = json.dumps([_toolchain(), _pch_flags(unit), PCH_HEADERS[unit]])
    return cache / "pch" / hashlib.sha256(blob.encode()).hexdigest()[:16] / f"solgym_{unit}.h"


def build_pch(cache: str | Path, timeout_s: float = 600.0) -> list[Path]:
    """Precompile `PCH_HEADERS` into a trusted cache; returns the headers built or found (a unit whose
    header the host compiler could not build is left out: its builds parse the headers, slower but the
    same). Done once per toolchain, by trusted code only (`judge.publish_builds`, before the first
    rebuild), since every child reads them. Compiles torch's and CUDA's own headers, nothing an action
    wrote; the two compile in parallel."""
    ready, procs = [], []
    with _PCH_LOCK:
        for unit, headers in PCH_HEADERS.items():
            header = pch_path(Path(cache), unit)
            gch = header.with_suffix(".h.gch")
            if gch.exists():
                ready.append(header)
                continue
            unique = f"{os.getpid()}_{threading.get_ident()}"
            tmp = gch.with_suffix(f".tmp{unique}")
            try:
                header.parent.mkdir(parents=True, exist_ok=True)
                for folder in (header.parent, header.parent.parent):
                    folder.chmod(0o755)  # every child reads them, whatever uid it runs as
                text_tmp = header.with_suffix(f".tmp{unique}")
                text_tmp.write_text("".join(f"#include <{h}>\n" for h in headers))
                text_tmp.chmod(0o644)
                os.replace(text_tmp, header)
                cmd = [_cxx(), "-x", "c++-header", str(header), *_pch_flags(unit), "-o", str(tmp)]
                procs.append((header, tmp, _start(cmd, header.parent)))
            except OSError:  # an unwritable cache or no compiler: builds parse the headers instead
                continue
        for header, tmp, proc in procs:
            try:
                _finish([proc], time.monotonic() + timeout_s)
                tmp.chmod(0o644)
                os.replace(tmp, header.with_suffix(".h.gch"))  # readers see a whole header or none
                ready.append(header)
            except BuildError:
                pass
            finally:
                tmp.unlink(missing_ok=True)
    return ready


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


def _nvcc() -> str:
    home = cuda_home()
    if home is None:
        raise BuildError("CUDA sources need nvcc, and no CUDA toolkit was found (set CUDA_HOME)")
    return str(home / "bin" / "nvcc")


def _split_host_flags(name: str, spec: Spec) -> list[str]:
    """The host unit's flags: what nvcc would give its host compiler for the CUDA unit (torch's CUDA
    defines, the action's -D / -U / -std)."""
    from torch.utils.cpp_extension import COMMON_NVCC_FLAGS

    defines = [f for f in COMMON_NVCC_FLAGS if f.startswith("-D")]
    return [*_host_flags(name), *defines, *_split_options(spec.extra_cuda_cflags)]


def _kill(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()


_INSTANCE = re.compile(r"void ((?:[A-Za-z_]\w*::)*([A-Za-z_]\w*))<(.*)>\((.*)\)")


def _instantiations(work: Path, spec: Spec, deadline: float) -> str:
    """Explicit instantiations, for the kernels unit, of the template kernels the compiled host unit
    calls: its undefined symbols, demangled, are the instances (`void k<float>(float const*, int)`).
    Instances over torch's types (which the kernels unit does not see) fail the split."""
    if shutil.which("nm") is None or shutil.which("c++filt") is None:
        raise BuildError("split build: `nm` / `c++filt` (binutils) are missing")
    limit = max(1.0, deadline - time.monotonic())
    symbols = [
        line.split()[-1] for line in _run(["nm", "-u", "host.o"], limit, work).splitlines() if line.strip()
    ]
    names = _run(["c++filt", *symbols], limit, work).splitlines() if symbols else []
    lines = ['#line 1 "solgym_instantiations"']
    for demangled in names:
        match = _INSTANCE.fullmatch(demangled.strip())
        if not match or match.group(2) not in spec.kernel_templates:
            continue
        if re.search(r"\b(?:c10|at|torch)::|anonymous|\(", match.group(3) + match.group(4)):
            raise BuildError(f"split build: a template kernel instantiated over torch types: {demangled}")
        lines.append(f"template __global__ {demangled.strip()};")
    return "\n".join(lines) + "\n"


def _check_launch_targets(work: Path, spec: Spec, deadline: float) -> None:
    """Every kernel the host unit calls must be defined by the kernels unit under the same symbol. A
    shared object links with undefined symbols and fails only when imported, so a mismatch (a type that
    mangles differently in the two units) is caught here and the build falls back to the whole unit."""
    kernels = global_functions(spec.kernel_cu or "")
    if shutil.which("nm") is None:
        raise BuildError("split build: `nm` (binutils) is missing, so the launches cannot be checked")

    def symbols(*args: str) -> set[str]:
        out = _run(["nm", *args], max(1.0, deadline - time.monotonic()), work)
        return {line.split()[-1] for line in out.splitlines() if line.strip()}

    wanted = {
        symbol
        for symbol in symbols("-u", "host.o")
        if any(symbol == k or f"{len(k)}{k}" in symbol for k in kernels)
    }
    missing = wanted - symbols("--defined-only", "kernels.o")
    if missing:
        raise BuildError(f"split build: the kernels unit does not define {sorted(missing)[:3]}")


def build_extension(
    spec: Spec,
    out_dir: Path,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    pch_cache: Path | None = None,
    key: str | None = None,
) -> Path:
    """Compile and link `spec` into `out_dir/<key>/` (`key` defaults to the spec's own; a light or split
    variant is filed under the key of the stock request it stands for); returns the shared object. Every
    translation unit compiles in its own process, all in parallel. Trusted callers pass a shared cache as
    `out_dir`; the child passes its private directory."""
    key = key or spec.key()
    name = f"solgym_ext_{key[:16]}"
    folder = out_dir / key
    so = folder / f"{name}.so"
    if so.exists():
        return so
    work = out_dir / f"{key}.tmp{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)  # what a failed variant left
    work.mkdir(parents=True)
    (work / "main.cpp").write_text(spec.main_cpp)
    deadline = time.monotonic() + timeout_s

    def precompiled(unit: str) -> list[str]:
        header = pch_path(pch_cache, unit) if pch_cache else None
        return ["-include", str(header)] if header and header.with_suffix(".h.gch").exists() else []

    main = [
        _cxx(),
        *precompiled("main"),
        "-c",
        "main.cpp",
        "-o",
        "main.o",
        *_host_flags(name),
        *spec.extra_cflags,
    ]
    procs = [_start(main, work)]
    objects = ["main.o"]
    if spec.kernel_cu is not None:
        (work / "host.cpp").write_text(spec.host_cpp or "")
        host = [
            _cxx(),
            *precompiled("host"),
            "-c",
            "host.cpp",
            "-o",
            "host.o",
            *_split_host_flags(name, spec),
        ]
        host_proc = _start(host, work)
        kernels_cu = spec.kernel_cu
        nvcc = [_nvcc(), "-c", "kernels.cu", "-o", "kernels.o", *_cuda_flags(name, spec.arch)]
        if spec.kernel_templates:
            # Template kernels are instantiated where the host unit calls them, so the kernels unit
            # waits for host.o and instantiates what it calls; weak stubs let host.o reach them.
            try:
                _finish([host_proc], deadline)
                kernels_cu += _instantiations(work, spec, deadline)
            except BuildError:
                _kill(procs)
                raise
            nvcc.append("--static-global-template-stub=false")
        else:
            procs.append(host_proc)
        (work / "kernels.cu").write_text(kernels_cu)
        procs.append(_start([*nvcc, *spec.extra_cuda_cflags], work))
        objects += ["kernels.o", "host.o"]
    elif spec.cuda_cu is not None:
        (work / "cuda.cu").write_text(spec.cuda_cu)
        nvcc = [_nvcc(), "-c", "cuda.cu", "-o", "cuda.o", *_cuda_flags(name, spec.arch)]
        procs.append(_start([*nvcc, *spec.extra_cuda_cflags], work))
        objects.append("cuda.o")
    _finish(procs, deadline)
    if spec.kernel_cu is not None:
        _check_launch_targets(work, spec, deadline)
    torch_lib = _torch_dir() / "lib"
    libs = ["-lc10", "-ltorch", "-ltorch_cpu", "-ltorch_python"]
    if spec.cuda_cu is not None or spec.kernel_cu is not None:
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
        request = _request(
            {
                "cpp_sources": cpp_sources,
                "cuda_sources": cuda_sources,
                "functions": functions,
                "extra_cflags": extra_cflags,
                "extra_cuda_cflags": extra_cuda_cflags,
                "extra_ldflags": extra_ldflags,
                "with_pytorch_error_handling": with_pytorch_error_handling,
                "no_implicit_headers": no_implicit_headers,
                "arch": gpu_arch() if self.mode == "gpu" else None,
            }
        )
        chain = variants(**request)
        spec = chain[-1][1]
        self.kernel_names |= global_functions(spec.cuda_cu or "")
        key = spec.key()
        start = time.perf_counter()
        record: dict[str, Any] = {"name": str(name)[:64], "key": key, "cached": False}
        self.builds.append(record)
        if self.mode != "gpu":
            # The front-end check covers the CUDA unit as a whole (light headers, then stock).
            record["variant"] = _first_that_builds(
                lambda s: check_cuda_syntax(s, self.workdir / "build_check", self.timeout_s),
                [(n, s) for n, s in chain if n != "split"],
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
            record["variant"], so = _first_that_builds(
                lambda s: build_extension(
                    s, out, timeout_s=self.timeout_s, pch_cache=self.shared_cache, key=key
                ),
                chain,
            )
        record["ms"] = (time.perf_counter() - start) * 1e3
        if not record["cached"]:
            # What a trusted rebuild needs (`rebuild_payloads`); the candidate's claim, re-keyed there.
            record["rebuild"] = {"request": request}
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


def _first_that_builds(step: Any, chain: list[tuple[str, Spec]]) -> tuple[str, Any]:
    """Run `step` on each variant of `chain` (`variants`) until one succeeds; returns which did and what
    `step` returned. The last variant (stock) decides. A failure stops the chain early only when the
    stock headers would report it just the same: a time limit, or a plain syntax error in the light
    variant (which differs from stock by include lines only). A failed split always goes on, since its
    units are solgym's rewriting of the sources."""
    for position, (name, spec) in enumerate(chain):
        if position == len(chain) - 1:
            return name, step(spec)
        try:
            return name, step(spec)
        except BuildError as e:
            if "time limit" in e.message:
                raise
            errors = [line for line in e.message.splitlines() if "error" in line.lower()]
            if name == "light" and errors and all(_SYNTAX_ERROR.search(line) for line in errors):
                raise
    raise AssertionError("variants() always ends with the stock build")


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


def rebuild_payloads(report: dict[str, Any], shared_cache: str | Path | None = None) -> list[dict[str, Any]]:
    """Build jobs for the extensions an evaluation built privately, so that trusted code can publish
    them into the shared cache (`build_main` in a fresh child, then `publish`). A job carries the
    `load_inline` request only: the build job derives every variant from it, and `publish` the key, so a
    child's report cannot make a variant's sources differ from the entry's. `shared_cache` lets the job
    use the precompiled header there."""
    jobs = []
    for record in (report.get("build") or {}).get("builds") or []:
        rebuild = record.get("rebuild")
        if isinstance(rebuild, dict) and isinstance(rebuild.get("request"), dict):
            job = {"request": rebuild["request"], "timeout_s": DEFAULT_TIMEOUT_S}
            if shared_cache is not None:
                job["pch_cache"] = str(shared_cache)
            jobs.append(job)
    return jobs


_REQUEST_LISTS = ("cpp_sources", "cuda_sources", "extra_cflags", "extra_cuda_cflags", "extra_ldflags")


def _request(data: dict[str, Any]) -> dict[str, Any]:
    """A `load_inline` request in a plain, JSON-safe form (the `make_spec` / `variants` arguments), with
    the types checked: what the child records and what a build job trusts no further than this."""
    known = {*_REQUEST_LISTS, "functions", "with_pytorch_error_handling", "no_implicit_headers", "arch"}
    unknown = set(data) - known
    if unknown:
        raise BuildError(f"load_inline: unknown build request fields {sorted(unknown)}")
    request: dict[str, Any] = {}
    for field_name in _REQUEST_LISTS:
        value = data.get(field_name)
        if isinstance(value, str):
            value = [value]
        if value is not None and not (
            isinstance(value, list | tuple) and all(isinstance(x, str) for x in value)
        ):
            raise BuildError(f"load_inline: {field_name} must be a string or a list of strings")
        request[field_name] = None if value is None else list(value)
    if request["cpp_sources"] is None:
        request["cpp_sources"] = []
    functions = data.get("functions")
    if isinstance(functions, str):
        functions = [functions]
    if isinstance(functions, tuple):
        functions = list(functions)
    valid = (
        functions is None
        or (isinstance(functions, list) and all(isinstance(f, str) for f in functions))
        or (isinstance(functions, dict) and all(isinstance(f, str) for f in functions))
    )
    if not valid:
        raise BuildError(f"load_inline: functions must be a list or dict, not {type(functions).__name__}")
    request["functions"] = (
        {str(k): str(v) for k, v in functions.items()} if isinstance(functions, dict) else functions
    )
    request["with_pytorch_error_handling"] = bool(data.get("with_pytorch_error_handling", True))
    request["no_implicit_headers"] = bool(data.get("no_implicit_headers", False))
    arch = data.get("arch")
    if arch is not None and not (isinstance(arch, str) and re.fullmatch(r"\d{2,3}[a-z]?", arch)):
        raise BuildError(f"load_inline: bad GPU architecture {arch!r}")
    request["arch"] = arch
    return request


def build_main(payload: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Pool entry: compile one extension in a fresh child. No action is imported here; the compilers run
    only after the privileges are dropped, so the sources see no more of the host than a candidate does.
    Returns the shared object (base64) under the key recomputed from the request."""
    ctx.drop_privileges()
    try:
        chain = variants(**_request(payload["request"]))
    except (BuildError, SplitUnavailable) as e:
        return {"error": str(e)}
    key = chain[-1][1].key()
    out = Path(ctx.workdir) / "build"
    timeout_s = float(payload.get("timeout_s", DEFAULT_TIMEOUT_S))
    try:
        pch = Path(payload["pch_cache"]) if payload.get("pch_cache") else None
        variant, so = _first_that_builds(
            lambda s: build_extension(s, out, timeout_s=timeout_s, pch_cache=pch, key=key), chain
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
    try:
        key = make_spec(**_request(job["request"])).key()
    except BuildError:
        return None
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
