"""The scanner of C++/CUDA sources embedded in an action (load_inline strings, solution.json files).

C++ cannot be parsed here, so the scanner lexes: comments and literals are blanked, `#define`s (and
`-D` flags) are expanded with `#` and `##` as the preprocessor does, and the tokens are matched against
the API tables below. It scans three views of every source and reports the union: the expanded code,
the raw code (macro bodies included, so an unused macro is still seen), and the raw code with every
`a ## b` pasted literally. Anything it cannot expand within its budget is rejected, not trusted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

MAX_TOKENS = 400_000  # tokens produced by expansion before giving up


@dataclass(frozen=True)
class Finding:
    """A rule broken at a line of one C++ source (line counted in that source's own text)."""

    rule: str
    message: str
    line: int


@dataclass(frozen=True)
class _Tok:
    text: str
    line: int
    hide: frozenset[str] = frozenset()


@dataclass
class _Macro:
    params: tuple[str, ...] | None  # None for an object-like macro
    body: list[_Tok]
    variadic: bool = False


@dataclass
class _Source:
    name: str
    tokens: list[_Tok]
    directives: list[tuple[int, str]]  # (line, text after '#') with literals intact
    strings: list[tuple[int, str]]  # string literal contents (asm bodies, include names)
    macros: dict[str, _Macro] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------- API tables

# Functions (matched on the last component of a qualified name, followed by '(').
_CALLS: Mapping[str, str] = {
    **dict.fromkeys(
        (
            "system",
            "popen",
            "execl",
            "execle",
            "execlp",
            "execv",
            "execve",
            "execvp",
            "execvpe",
            "fork",
            "vfork",
            "posix_spawn",
            "posix_spawnp",
            "syscall",
            "_popen",
            "wordexp",
        ),
        "escape.process",
    ),
    **dict.fromkeys(
        (
            "dlopen",
            "dlmopen",
            "dlsym",
            "dlvsym",
            "LoadLibrary",
            "LoadLibraryA",
            "LoadLibraryW",
            "GetProcAddress",
            "cuGetProcAddress",
            "cudaGetDriverEntryPoint",
        ),
        "escape.native",
    ),
    **dict.fromkeys(
        (
            "fopen",
            "fopen64",
            "freopen",
            "fdopen",
            "open",
            "open64",
            "openat",
            "creat",
            "mmap",
            "unlink",
            "rename",
            "opendir",
            "readdir",
            "fread",
            "fwrite",
            "fgets",
            "mkdir",
            "rmdir",
            "chdir",
            "getcwd",
            "symlink",
            "chmod",
            "tmpfile",
            "mkstemp",
        ),
        "escape.filesystem",
    ),
    **dict.fromkeys(
        ("socket", "connect", "gethostbyname", "getaddrinfo", "curl_easy_init"), "escape.network"
    ),
    **dict.fromkeys(("setenv", "putenv", "unsetenv"), "escape.os"),
    **dict.fromkeys(
        ("printf", "fprintf", "dprintf", "puts", "fputs", "putchar", "perror", "vprintf", "vfprintf"),
        "output.stdio",
    ),
    **dict.fromkeys(
        ("pthread_create", "thrd_create", "cudaLaunchHostFunc", "cudaStreamAddCallback", "cuLaunchHostFunc"),
        "timing.concurrency",
    ),
    **dict.fromkeys(("cudaProfilerStart", "cudaProfilerStop"), "timing.event"),
    **dict.fromkeys(("signal", "sigaction", "atexit", "at_quick_exit", "raise"), "timing.signal"),
    **dict.fromkeys(
        (
            "cudaStreamCreate",
            "cudaStreamCreateWithFlags",
            "cudaStreamCreateWithPriority",
            "cuStreamCreate",
            "cuStreamCreateWithPriority",
            "getStreamFromPool",
            "getStreamFromExternal",
            "setCurrentCUDAStream",
            "getDefaultCUDAStream",
            "cudaStreamWaitEvent",
        ),
        "timing.stream",
    ),
    **dict.fromkeys(
        (
            "cudaEventCreate",
            "cudaEventCreateWithFlags",
            "cudaEventRecord",
            "cudaEventElapsedTime",
            "cudaEventSynchronize",
            "cudaEventQuery",
            "cuEventCreate",
            "cuEventRecord",
            "cuEventElapsedTime",
        ),
        "timing.event",
    ),
    **dict.fromkeys(
        (
            "cudaStreamBeginCapture",
            "cudaStreamEndCapture",
            "cudaGraphLaunch",
            "cudaGraphInstantiate",
            "cuGraphLaunch",
            "cudaGraphCreate",
        ),
        "timing.cuda-graph",
    ),
}

# Names that are dangerous wherever they appear (types, objects, stream handles).
_NAMES: Mapping[str, str] = {
    **dict.fromkeys(("ifstream", "ofstream", "fstream", "filebuf", "FILE"), "escape.filesystem"),
    **dict.fromkeys(("cout", "cerr", "clog", "stdout", "stderr"), "output.stdio"),
    **dict.fromkeys(
        ("cudaStreamPerThread", "CUDAStreamGuard", "OptionalCUDAStreamGuard", "CUDAMultiStreamGuard"),
        "timing.stream",
    ),
    **dict.fromkeys(("CUDAGraph", "cudaGraph_t", "cudaGraphExec_t"), "timing.cuda-graph"),
    **dict.fromkeys(("environ",), "escape.os"),
}

_LIBRARY_PREFIXES = (
    "cublas",
    "CUBLAS_",
    "cudnn",
    "CUDNN_",
    "cufft",
    "CUFFT_",
    "cusparse",
    "CUSPARSE_",
    "cusolver",
    "CUSOLVER_",
    "nccl",
    "cutensor",
)
_LIBRARY_HEADERS = re.compile(
    r"(cublas|cudnn|cufft|cusparse|cusolver|nccl|cutensor|CUDABlas|ATen/cudnn|ATen/native)", re.IGNORECASE
)

# Under strict, torch:: / at:: may only allocate, describe and access tensors.
_TORCH_ALLOWED = frozenset(
    (
        "empty",
        "empty_like",
        "empty_strided",
        "zeros",
        "zeros_like",
        "ones",
        "ones_like",
        "full",
        "full_like",
        "arange",
        "from_blob",
        "Tensor",
        "TensorOptions",
        "ScalarType",
        "Scalar",
        "Device",
        "DeviceType",
        "Layout",
        "MemoryFormat",
        "IntArrayRef",
        "ArrayRef",
        "Half",
        "BFloat16",
        "Float8_e4m3fn",
        "Float8_e5m2",
        "dtype",
        "device",
        "TensorAccessor",
        "PackedTensorAccessor",
        "PackedTensorAccessor32",
        "PackedTensorAccessor64",
        "GenericPackedTensorAccessor",
        "RestrictPtrTraits",
        "DefaultPtrTraits",
        "elementSize",
        "toString",
        "optional",
        "nullopt",
        "irange",
        "DeviceGuard",
        "OptionalDeviceGuard",
        "NoGradGuard",
        "InferenceMode",
        "Error",
        "detail",
        "ScalarTypeToCPPType",
        "CppTypeToScalarType",
        "typeMetaToScalarType",
        "kStrided",
        "TensorList",
        "cuda",
        "Stream",
        "string",
        "IValue",
        "Dict",
        "List",
        "SymInt",
        "hip",
    )
)
_TORCH_CUDA_ALLOWED = frozenset(
    (
        "getCurrentCUDAStream",
        "CUDAGuard",
        "OptionalCUDAGuard",
        "CUDAStream",
        "getCurrentDeviceProperties",
        "getDeviceProperties",
        "current_device",
        "device_count",
        "getCurrentCUDABlasHandle",
    )
)
# Tensor methods that compute (not allocation, views or metadata), for `.name(` and `->name(`.
TENSOR_COMPUTE_METHODS = frozenset(
    (
        "matmul",
        "mm",
        "bmm",
        "addmm",
        "addbmm",
        "baddbmm",
        "addmv",
        "mv",
        "dot",
        "vdot",
        "outer",
        "einsum",
        "softmax",
        "log_softmax",
        "sum",
        "mean",
        "nansum",
        "prod",
        "cumsum",
        "cumprod",
        "logsumexp",
        "var",
        "std",
        "norm",
        "exp",
        "exp2",
        "expm1",
        "log",
        "log2",
        "log1p",
        "relu",
        "relu_",
        "gelu",
        "silu",
        "sigmoid",
        "tanh",
        "softplus",
        "erf",
        "sin",
        "cos",
        "sqrt",
        "rsqrt",
        "pow",
        "square",
        "abs",
        "neg",
        "reciprocal",
        "add",
        "add_",
        "sub",
        "sub_",
        "mul",
        "mul_",
        "div",
        "div_",
        "addcmul",
        "addcdiv",
        "lerp",
        "clamp",
        "clamp_",
        "clip",
        "maximum",
        "minimum",
        "fmax",
        "fmin",
        "amax",
        "amin",
        "argmax",
        "argmin",
        "topk",
        "argsort",
        "masked_fill",
        "masked_fill_",
        "masked_scatter",
        "index_select",
        "index_add",
        "index_add_",
        "index_copy",
        "gather",
        "scatter",
        "scatter_",
        "scatter_add",
        "scatter_add_",
        "scatter_reduce",
        "where",
        "layer_norm",
        "rms_norm",
        "group_norm",
        "batch_norm",
        "linear",
        "conv1d",
        "conv2d",
        "conv3d",
        "conv_transpose2d",
        "tril",
        "triu",
        "diag",
        "trace",
        "kron",
        "cross",
        "sign",
        "floor_divide",
        "remainder",
        "fmod",
        "round",
        "floor",
        "ceil",
        "trunc",
        "frac",
        "sinh",
        "cosh",
        "atan",
        "atan2",
        "logical_and",
        "logical_or",
        "logical_not",
        "eq",
        "ne",
        "lt",
        "le",
        "gt",
        "ge",
        "allclose",
        "isclose",
        "cummax",
        "cummin",
        "median",
        "mode",
        "kthvalue",
        "histc",
        "bincount",
        "unique",
        "nonzero",
        "masked_select",
        "repeat_interleave",
        "flip",
        "roll",
        "cat",
        "stack",
        "pad",
        "interpolate",
        "dropout",
        "embedding",
        "one_hot",
        "normalize",
        "cosine_similarity",
        "mse_loss",
        "cross_entropy",
        "nll_loss",
        "scaled_dot_product_attention",
        "hardswish",
        "hardsigmoid",
        "leaky_relu",
        "elu",
        "selu",
        "celu",
        "mish",
        "glu",
        "logsigmoid",
        "softmin",
        "sigmoid_",
        "tanh_",
        "exp_",
        "log_",
        "sqrt_",
        "rsqrt_",
        "pow_",
        "neg_",
        "abs_",
        "fft",
        "rfft",
        "irfft",
        "ifft",
        "max",
        "min",
    )
)

_IDENT = r"[A-Za-z_\u00c0-\uffff][\w\u00c0-\uffff]*"
_TOKEN = re.compile(rf"{_IDENT}|\d[\w.]*(?:[eEpP][+-]\d+)?|##|#|<<<|>>>|::|->|\S")
_UCN = re.compile(r"\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})")
_STATIC_STATE = re.compile(
    r"\bstatic\s+(?:thread_local\s+)?(?!(?:const|constexpr|inline|void|__device__|__global__|__host__|"
    r"__forceinline__|__shared__)\b)([^;(){}=]*?(?:Tensor|map\s*<|vector\s*<|\*)[^;(){}=]*?)\s*(?:[;={])"
)
_SYSCALL_ASM = re.compile(r"\bsyscall\b|\bsysenter\b|\bint\s+\$?0x80\b")
_LIB_FLAG = re.compile(r"(cublas|cudnn|cufft|cusparse|cusolver|nccl|cutensor)", re.IGNORECASE)


def _ucn(match: re.Match[str]) -> str:
    try:
        return chr(int(match.group(1) or match.group(2), 16))
    except (ValueError, OverflowError):
        return "\ufffd"


def _lex(text: str, name: str) -> _Source:
    """Blank comments and literals (keeping line numbers), split directives, tokenise the rest."""
    text = text.replace("\\\r\n", "\\\n")
    out: list[str] = []
    strings: list[tuple[int, str]] = []
    i, n, line = 0, len(text), 1
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n and text[i + 1] == "\n":  # line continuation: keep the line count
            out.append(" \x00")  # \x00 marks a joined physical line, counted when numbering lines
            i += 2
            line += 1
            continue
        if c == "/" and text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" ")
            i = j
            continue
        if c == "/" and text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            blanked = text[i:j]
            out.append(" " + "\x00" * blanked.count("\n"))
            line += blanked.count("\n")
            i = j
            continue
        if c in "\"'" or (c == "R" and text.startswith('R"', i) and (i == 0 or not text[i - 1].isalnum())):
            start_line = line
            if c == "R":
                m = re.match(r'R"([^()\\ \n]{0,16})\(', text[i:])
                if m:
                    end = text.find(f'){m.group(1)}"', i + m.end())
                    end = n if end < 0 else end + len(m.group(1)) + 2
                    body = text[i + m.end() : end]
                    strings.append((start_line, body))
                    out.append('""' + "\x00" * body.count("\n"))
                    line += body.count("\n")
                    i = end
                    continue
                out.append(c)
                i += 1
                continue
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            body = text[i + 1 : min(j, n)]
            strings.append((start_line, body))
            out.append('""' if c == '"' else "0")
            i = j + 1 if j < n and text[j] == c else j
            continue
        if c == "\n":
            line += 1
        out.append(c)
        i += 1
    cleaned = "".join(out)
    tokens: list[_Tok] = []
    directives: list[tuple[int, str]] = []
    line = 1
    for logical in cleaned.split("\n"):
        joined = logical.count("\x00")
        logical = logical.replace("\x00", "")
        stripped = logical.lstrip()
        if stripped.startswith(("#", "%:")):
            body = stripped[1:] if stripped.startswith("#") else stripped[2:]
            directives.append((line, body.strip()))
        else:
            logical = _UCN.sub(_ucn, logical)
            tokens.extend(_Tok(m.group(0), line) for m in _TOKEN.finditer(logical))
        line += 1 + joined
    return _Source(name, tokens, directives, strings)


def _parse_define(body: str, line: int) -> tuple[str, _Macro] | None:
    body = _UCN.sub(_ucn, body)
    m = re.match(rf"define\s+({_IDENT})(\(([^)]*)\))?\s*(.*)$", body, re.DOTALL)
    if not m:
        return None
    tokens = [_Tok(t.group(0), line) for t in _TOKEN.finditer(m.group(4))]
    if m.group(2) is None:
        return m.group(1), _Macro(None, tokens)
    params = [p.strip() for p in m.group(3).split(",") if p.strip()]
    variadic = bool(params) and params[-1].endswith("...")
    if variadic:
        params[-1] = params[-1][:-3].strip() or "__VA_ARGS__"
    return m.group(1), _Macro(tuple(params), tokens, variadic)


class _Budget(Exception):
    pass


def _collect_args(tokens: list[_Tok], start: int) -> tuple[list[list[_Tok]], int] | None:
    """Arguments of a function-like macro call whose '(' is at `start`; None when unbalanced."""
    depth, args, current = 0, [], []
    for j in range(start, len(tokens)):
        t = tokens[j].text
        if t == "(":
            depth += 1
            if depth == 1:
                continue
        elif t == ")":
            depth -= 1
            if depth == 0:
                args.append(current)
                return args, j
        elif t == "," and depth == 1:
            args.append(current)
            current = []
            continue
        current.append(tokens[j])
    return None


def _expand(tokens: list[_Tok], macros: Mapping[str, _Macro], budget: list[int]) -> list[_Tok]:
    """Expand macros in `tokens` (object-like and function-like, with # and ##), rescanning results."""
    out: list[_Tok] = []
    pending = list(reversed(tokens))
    while pending:
        budget[0] -= 1
        if budget[0] < 0:
            raise _Budget
        tok = pending.pop()
        macro = macros.get(tok.text)
        if macro is None or tok.text in tok.hide:
            out.append(tok)
            continue
        hide = tok.hide | {tok.text}
        if macro.params is None:
            replacement = _paste([_Tok(b.text, tok.line, hide) for b in macro.body])
        else:
            rest = list(reversed(pending))
            if not rest or rest[0].text != "(":
                out.append(tok)
                continue
            collected = _collect_args(rest, 0)
            if collected is None:
                out.append(tok)
                continue
            args, end = collected
            pending = list(reversed(rest[end + 1 :]))
            replacement = _substitute(macro, args, tok.line, hide, macros, budget)
        budget[0] -= len(replacement)
        pending.extend(reversed(replacement))
    return out


def _substitute(
    macro: _Macro,
    args: list[list[_Tok]],
    line: int,
    hide: frozenset[str],
    macros: Mapping[str, _Macro],
    budget: list[int],
) -> list[_Tok]:
    params = list(macro.params or ())
    bound: dict[str, list[_Tok]] = {}
    for k, p in enumerate(params):
        if macro.variadic and k == len(params) - 1:
            rest = args[k:]
            joined: list[_Tok] = []
            for a, arg in enumerate(rest):
                if a:
                    joined.append(_Tok(",", line))
                joined.extend(arg)
            bound[p] = joined
        else:
            bound[p] = args[k] if k < len(args) else []
    body = macro.body
    result: list[_Tok] = []
    for idx, b in enumerate(body):
        if b.text == "#" and idx + 1 < len(body) and body[idx + 1].text in bound:
            continue  # stringification: the next parameter becomes a literal
        if b.text in bound:
            prev = body[idx - 1].text if idx else ""
            nxt = body[idx + 1].text if idx + 1 < len(body) else ""
            if prev == "#":
                result.append(_Tok('""', line, hide))
            elif prev == "##" or nxt == "##":
                result.extend(_Tok(t.text, line, hide) for t in bound[b.text])
            else:
                result.extend(
                    _Tok(t.text, line, t.hide | hide) for t in _expand(bound[b.text], macros, budget)
                )
        else:
            result.append(_Tok(b.text, line, hide))
    return _paste(result)


def _paste(tokens: list[_Tok]) -> list[_Tok]:
    if not any(t.text == "##" for t in tokens):
        return tokens
    out: list[_Tok] = []
    k = 0
    while k < len(tokens):
        t = tokens[k]
        if t.text == "##" and out and k + 1 < len(tokens):
            left = out.pop()
            out.append(_Tok(left.text + tokens[k + 1].text, left.line, left.hide))
            k += 2
            continue
        if t.text != "##":
            out.append(t)
        k += 1
    return out


def _qualified(tokens: list[_Tok]) -> Iterable[tuple[str, int, str, str]]:
    """(qualified name, line, previous token, next token) for every identifier chain `a::b::c`."""
    k, n = 0, len(tokens)
    while k < n:
        t = tokens[k].text
        if not (t[0].isalpha() or t[0] == "_" or ord(t[0]) > 127):
            k += 1
            continue
        parts, start = [t], k
        while k + 2 < n and tokens[k + 1].text == "::" and tokens[k + 2].text[:1].isidentifier():
            parts.append(tokens[k + 2].text)
            k += 2
        prev = tokens[start - 1].text if start else ""
        nxt = tokens[k + 1].text if k + 1 < n else ""
        yield "::".join(parts), tokens[start].line, prev, nxt
        k += 1


def _check_tokens(tokens: list[_Tok], strict: bool, in_macro: bool = False) -> list[Finding]:
    """Findings for a token stream; `in_macro` (a #define body) also counts API names not followed by '(',
    since the call may be written where the macro is used."""
    found: list[Finding] = []
    for qual, line, prev, nxt in _qualified(tokens):
        parts = qual.split("::")
        last = parts[-1]
        rule = _CALLS.get(last)
        # A call, a function pointer (&system), or a qualified use (std::system) of a listed function.
        used = nxt == "(" or in_macro or prev == "&" or (len(parts) > 1 and parts[0] in ("std", ""))
        if rule and used and prev not in (".", "->"):
            found.append(Finding(rule, f"C++ calls {qual}(); remove it", line))
        rule = _NAMES.get(last)
        if rule:
            found.append(Finding(rule, f"C++ uses {qual}; remove it", line))
        if "filesystem" in parts[:-1]:
            found.append(Finding("escape.filesystem", f"C++ uses {qual}; remove it", line))
        if parts[0] == "std" and last in ("thread", "jthread", "async"):
            found.append(Finding("timing.concurrency", f"C++ uses {qual}; remove it", line))
        if strict and (last.startswith(_LIBRARY_PREFIXES) or "blas" in parts[:-1]):
            found.append(
                Finding(
                    "substitution.cxx-library",
                    f"C++ uses the vendor library symbol {qual}; write the kernel yourself",
                    line,
                )
            )
        if parts[0] in ("torch", "at") and len(parts) > 1:
            if parts[1] == "library":
                found.append(
                    Finding("harness.op-override", f"C++ uses {qual}; do not register operators", line)
                )
            elif not strict or (parts[1] == "cuda" and len(parts) > 2 and parts[2] in _TORCH_CUDA_ALLOWED):
                pass
            elif parts[1] == "cuda" and len(parts) > 2 and (parts[2] in _CALLS or parts[2] in _NAMES):
                pass  # already reported by name
            elif (
                parts[1] == "cuda"
                and len(parts) == 2
                or (parts[1] in _TORCH_ALLOWED and parts[1] != "cuda")
                or re.match(r"k[A-Z]", parts[1])
            ):
                pass
            else:
                found.append(
                    Finding(
                        "substitution.torch-compute",
                        f"C++ calls {qual}; under strict torch::/at:: may only allocate "
                        "(empty, zeros, ...) and access tensors: compute it in your kernel",
                        line,
                    )
                )
        if last in ("TORCH_LIBRARY_IMPL", "TORCH_LIBRARY_FRAGMENT", "TORCH_LIBRARY"):
            found.append(
                Finding("harness.op-override", f"C++ registers operators with {last}; remove it", line)
            )
        if (
            strict
            and prev in (".", "->")
            and last in TENSOR_COMPUTE_METHODS
            and nxt == "("
            and len(parts) == 1
        ):
            found.append(
                Finding(
                    "substitution.torch-compute",
                    f"C++ calls the tensor method .{last}(); compute it in your kernel",
                    line,
                )
            )
    return found


def _global_kernels(tokens: list[_Tok]) -> list[tuple[str, int, int]]:
    """(name, line, token index) of every `__global__` function declared or defined."""
    kernels = []
    for k, t in enumerate(tokens):
        if t.text != "__global__":
            continue
        j = k + 1
        while j < len(tokens) and tokens[j].text not in ("(", ";", "{"):
            if tokens[j].text == "__launch_bounds__" and j + 1 < len(tokens) and tokens[j + 1].text == "(":
                collected = _collect_args(tokens, j + 1)
                j = collected[1] + 1 if collected else len(tokens)
                continue
            j += 1
        if j < len(tokens) and tokens[j].text == "(" and tokens[j - 1].text[:1].isidentifier():
            kernels.append((tokens[j - 1].text, tokens[j - 1].line, j - 1))
    return kernels


def scan(
    sources: Iterable[tuple[str, str]],
    *,
    strict: bool,
    defines: Mapping[str, str] | None = None,
    launched_from_python: Iterable[str] = (),
) -> list[tuple[str, Finding]]:
    """Scan C++/CUDA sources given as (name, text); returns (source name, finding) pairs.

    `defines` are macros from `-D` flags; `launched_from_python` names kernels the Python side launches
    directly (they are not decoys even if no C++ code launches them)."""
    lexed = [_lex(text, name) for name, text in sources]
    macros: dict[str, _Macro] = {}
    for name, value in (defines or {}).items():
        parsed = _parse_define(f"define {name} {value}", 0)
        if parsed:
            macros[parsed[0]] = parsed[1]
    results: list[tuple[str, Finding]] = []
    for src in lexed:
        for line, directive in src.directives:
            if directive.startswith("define"):
                parsed = _parse_define(directive, line)
                if parsed:
                    macros[parsed[0]] = parsed[1]
    for src in lexed:
        found: list[Finding] = []
        for line, directive in src.directives:
            words = directive.split()
            head = words[0] if words else ""
            if head == "include" and _LIBRARY_HEADERS.search(directive) and strict:
                found.append(
                    Finding(
                        "substitution.cxx-library",
                        f"C++ includes a vendor library header ({directive}); write the kernel yourself",
                        line,
                    )
                )
            elif head == "pragma" and len(words) > 1 and words[1] in ("omp", "comment"):
                found.append(
                    Finding(
                        "timing.concurrency" if words[1] == "omp" else "escape.native",
                        f"#{directive}: remove it",
                        line,
                    )
                )
            elif head == "define":
                body_tokens = [_Tok(t.group(0), line) for t in _TOKEN.finditer(_UCN.sub(_ucn, directive[6:]))]
                found.extend(_check_tokens(body_tokens, strict, in_macro=True))
                found.extend(_check_tokens(_paste_literal(body_tokens), strict, in_macro=True))
        for line, body in src.strings:
            if _SYSCALL_ASM.search(body):
                found.append(
                    Finding("escape.process", "inline assembly issues a system call; remove it", line)
                )
        budget = [MAX_TOKENS]
        try:
            expanded = _expand(src.tokens, macros, budget)
        except (_Budget, RecursionError):
            found.append(
                Finding(
                    "analysis.unanalysable",
                    "macro expansion exceeds the analyser's budget; simplify the macros",
                    1,
                )
            )
            expanded = src.tokens
        found.extend(_check_tokens(expanded, strict))
        found.extend(_check_tokens(src.tokens, strict))
        found.extend(_check_tokens(_paste_literal(src.tokens), strict))
        for m in _STATIC_STATE.finditer(" ".join(t.text for t in src.tokens)):
            declaration = re.sub(r"\s*::\s*", "::", m.group(1).strip())
            found.append(
                Finding(
                    "caching.static-state",
                    f"static state `static {declaration}` persists across calls; allocate per call instead",
                    _line_of_static(src.tokens, m.start()),
                )
            )
        src.tokens = expanded
        results.extend((src.name, f) for f in found)
    results.extend(_decoys(lexed, set(launched_from_python)))
    seen: set[tuple[str, str, int, str]] = set()
    unique = []
    for name, f in results:
        key = (name, f.rule, f.line, f.message)
        if key not in seen:
            seen.add(key)
            unique.append((name, f))
    return unique


def _paste_literal(tokens: list[_Tok]) -> list[_Tok]:
    """The tokens with every `a ## b` joined, whatever a and b are (conservative view of pasting)."""
    return _paste(tokens)


def _line_of_static(tokens: list[_Tok], offset: int) -> int:
    position = 0
    for t in tokens:
        position += len(t.text) + 1
        if position > offset:
            return t.line
    return tokens[-1].line if tokens else 1


def _decoys(sources: list[_Source], launched: set[str]) -> list[tuple[str, Finding]]:
    definitions: dict[str, tuple[str, int]] = {}
    sites: set[tuple[int, int]] = set()
    for s, src in enumerate(sources):
        for name, line, index in _global_kernels(src.tokens):
            definitions.setdefault(name, (src.name, line))
            sites.add((s, index))
    used: set[str] = set()
    for s, src in enumerate(sources):
        for k, t in enumerate(src.tokens):
            if t.text in definitions and (s, k) not in sites:
                used.add(t.text)
    return [
        (
            where,
            Finding(
                "decoy.unreachable-kernel",
                f"__global__ kernel {name} is never launched; delete it or launch it",
                line,
            ),
        )
        for name, (where, line) in definitions.items()
        if name not in used and name not in launched
    ]


def ldflag_findings(flags: Iterable[str], strict: bool) -> list[Finding]:
    """Findings for linker flags given to load_inline (vendor libraries, libraries by path)."""
    found = []
    for flag in flags:
        if _LIB_FLAG.search(flag):
            if strict:
                found.append(Finding("substitution.cxx-library", f"links a vendor library ({flag})", 0))
        elif (
            "/" in flag
            or flag.startswith(("-Wl", "-l", "-L", "-Xlinker"))
            and flag not in ("-lcuda", "-lcudart")
        ):
            found.append(Finding("escape.native", f"links an extra native library ({flag})", 0))
    return found


def rule_ids() -> frozenset[str]:
    """Rule ids this scanner can report (for the catalogue's consistency check)."""
    ids = set(_CALLS.values()) | set(_NAMES.values())
    ids |= {
        "substitution.cxx-library",
        "substitution.torch-compute",
        "harness.op-override",
        "escape.process",
        "caching.static-state",
        "decoy.unreachable-kernel",
        "analysis.unanalysable",
        "timing.concurrency",
        "escape.native",
    }
    return frozenset(ids)


__all__ = ["Finding", "TENSOR_COMPUTE_METHODS", "ldflag_findings", "rule_ids", "scan"]
