"""CUDA C++ builds: the translation units solgym writes for load_inline, cache keys, error lines, limits
(no compiler needed except where marked)."""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import pytest

from solgym import build

CUDA = "#include <torch/extension.h>\n__global__ void k(float* y) { y[0] = 1.f; }\ntorch::Tensor f(torch::Tensor x) { return torch::empty_like(x); }\n"
CPP = "torch::Tensor f(torch::Tensor x);"
# The usual shape of an LLM-written load_inline source: checks as macros, a device helper, a struct
# shared by host and device, a kernel with launch bounds, one in a namespace, launches with 2 and 4
# configuration arguments. Line numbers matter to the tests below.
SPLITTABLE = """#include <torch/extension.h>
#include <cuda_runtime.h>
#define CHECK_INPUT(x) TORCH_CHECK(x.is_contiguous(), #x " must be contiguous; {")
constexpr int BLOCK = 256;  // threads; "a string with ; and }"
struct Params { int n; float scale; };
__device__ __forceinline__ float twice(float v) { return 2.f * v; }
__host__ __device__ inline int cdiv(int a, int b) { return (a + b - 1) / b; }
/* __global__ void in_a_comment(float* y) { } */
__global__ void __launch_bounds__(BLOCK) scale_kernel(const float* x, float* y, Params p) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < p.n) y[i] = twice(x[i]) * p.scale;
}
namespace ops {
__global__ void add_kernel(const float* a, float* c, int n) { if (threadIdx.x < n) c[threadIdx.x] += a[threadIdx.x]; }
}
torch::Tensor scale(torch::Tensor x, double s) {
    CHECK_INPUT(x);
    auto y = torch::empty_like(x);
    Params p{(int)x.numel(), (float)s};
    cudaStream_t stream = 0;
    scale_kernel<<<cdiv(p.n, BLOCK), BLOCK, 0, stream>>>(
        x.data_ptr<float>(), y.data_ptr<float>(), p);
    ops::add_kernel<<<1, BLOCK>>>(x.data_ptr<float>(), y.data_ptr<float>(), p.n);
    return y;
}
"""


def test_stock_spec_matches_load_inline_layout():
    spec = build.make_spec(CPP, CUDA, ["f"])
    assert spec.main_cpp.startswith("#include <torch/extension.h>\n")
    assert 'm.def("f", torch::wrap_pybind_function(f), "f");' in spec.main_cpp
    assert spec.cuda_cu.startswith("#include <torch/types.h>\n#include <cuda.h>\n#include <cuda_runtime.h>\n")


def test_line_markers_name_the_action_sources():
    spec = build.make_spec(CPP, CUDA, ["f"])
    assert '#line 1 "cuda_sources"\n#include <torch/extension.h>' in spec.cuda_cu
    assert '#line 1 "cpp_sources"\n' + CPP in spec.main_cpp


def test_light_variant_declares_only_the_called_operators():
    spec = build.make_spec(CPP, CUDA, ["f"], light=True)
    assert "#include <ATen/core/Tensor.h>" in spec.cuda_cu
    assert "#include <ATen/ops/empty_like.h>" in spec.cuda_cu
    assert "torch/types.h" not in spec.cuda_cu
    # the action's own umbrella include is blanked, keeping line numbers
    body = spec.cuda_cu.split('#line 1 "cuda_sources"\n', 1)[1]
    assert body.splitlines()[0] == ""
    assert body.splitlines()[1].startswith("__global__")


def test_key_depends_on_sources_flags_and_arch_only():
    a = build.make_spec(CPP, CUDA, ["f"], arch="90a")
    assert a.key() == build.make_spec(CPP, CUDA, ["f"], arch="90a").key()
    assert a.key() != build.make_spec(CPP, CUDA + " ", ["f"], arch="90a").key()
    assert a.key() != build.make_spec(CPP, CUDA, ["f"], arch="100a").key()
    assert a.key() != build.make_spec(CPP, CUDA, ["f"], arch="90a", extra_cuda_cflags=["-O3"]).key()


def test_function_names_must_be_identifiers():
    with pytest.raises(build.BuildError):
        build.make_spec(CPP, CUDA, ['f"); system("x'])


def test_useful_lines_keep_errors_and_their_excerpt():
    output = (
        "In file included from x.h:1,\n"
        'cuda_sources(6): error: expected a ";"\n'
        "      float acc = 0.f\n"
        "                     ^\n"
        '1 error detected in the compilation of "cuda.cu".\n'
    )
    lines = build.useful_lines(output)
    assert lines.splitlines()[0] == 'cuda_sources(6): error: expected a ";"'
    assert "In file included" not in lines
    assert "float acc" in lines


def test_a_compiler_past_its_time_limit_is_killed(tmp_path: Path):
    with pytest.raises(build.BuildError, match="time limit"):
        build._run([sys.executable, "-c", "import time; time.sleep(30)"], 0.5, tmp_path)


def test_light_syntax_error_is_final_but_other_failures_fall_back_to_stock():
    light = build.make_spec(CPP, CUDA, ["f"], light=True)
    stock = build.make_spec(CPP, CUDA, ["f"])
    seen = []

    def undefined(spec: build.Spec) -> str:
        seen.append(spec is stock)
        if spec is light:
            raise build.BuildError('cuda_sources(3): error: identifier "foo" is undefined')
        return "ok"

    assert build._first_that_builds(undefined, [("light", light), ("stock", stock)]) == ("stock", "ok")
    assert seen == [False, True]

    def syntax(spec: build.Spec) -> str:
        raise build.BuildError('cuda_sources(3): error: expected a ";"')

    with pytest.raises(build.BuildError, match="expected a"):
        build._first_that_builds(syntax, [("light", light), ("stock", stock)])


def test_a_failed_split_always_falls_back_even_on_a_syntax_error():
    chain = build.variants(CPP, SPLITTABLE, ["scale"], arch="90a")
    tried = []

    def step(spec: build.Spec) -> str:
        tried.append(spec)
        if spec.kernel_cu is not None:
            raise build.BuildError('cuda_sources(9): error: expected a ";"')
        return "built"

    assert build._first_that_builds(step, chain) == ("light", "built")
    assert [s.kernel_cu is not None for s in tried] == [True, False]


def test_extra_include_paths_are_refused(tmp_path: Path):
    builder = build.Builder("cpu", tmp_path, None, 10.0)
    with pytest.raises(build.BuildError, match="extra_include_paths"):
        builder.load_inline("x", CPP, CUDA, ["f"], extra_include_paths=["/etc"])


@pytest.mark.skipif(not shutil.which("nvcc"), reason="nvcc is not installed")
def test_cpu_mode_returns_a_module_that_says_it_was_only_checked(tmp_path: Path):
    source = "__global__ void k(float* y) { y[0] = 1.f; }\nvoid f() {}\n"
    builder = build.Builder("cpu", tmp_path, None, 300.0)
    module = builder.load_inline("x", "void f();", source, ["f"], no_implicit_headers=True)
    with pytest.raises(build.CompileCheckedOnly):
        module.f()
    assert builder.summary()["builds"][0]["variant"] == "stock"


class _BuildContext:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.dropped = False

    def drop_privileges(self) -> None:
        self.dropped = True


def _plain_job() -> dict:
    request = build._request(
        {
            "cpp_sources": 'extern "C" int solgym_answer() { return 42; }',
            "no_implicit_headers": True,
        }
    )
    return {"request": request, "timeout_s": 120}


@pytest.mark.skipif(not shutil.which("c++"), reason="no C++ compiler")
def test_build_job_compiles_unprivileged_and_the_parent_publishes_under_its_own_key(tmp_path: Path):
    job = _plain_job()
    ctx = _BuildContext(tmp_path / "child")
    result = build.build_main(job, ctx)
    assert ctx.dropped
    assert "so_b64" in result, result.get("error")
    target = build.publish(tmp_path / "shared", job, result)
    key = build.make_spec(**job["request"]).key()
    assert target == tmp_path / "shared" / key / f"solgym_ext_{key[:16]}.so"
    assert target.read_bytes()[:4] == b"\x7fELF"


def test_a_build_result_cannot_fill_another_sources_entry(tmp_path: Path):
    job = _plain_job()
    forged = {"key": "0" * 64, "so_b64": "AAAA"}
    target = build.publish(tmp_path / "shared", job, forged)
    assert target.parent.name == build.make_spec(**job["request"]).key()
    assert not (tmp_path / "shared" / ("0" * 64)).exists()


def test_rebuild_jobs_carry_the_request_only_so_variants_are_derived_by_the_build_job(tmp_path: Path):
    request = build._request({"cpp_sources": CPP, "cuda_sources": SPLITTABLE, "functions": ["scale"]})
    report = {
        "build": {
            "builds": [
                {"cached": True},
                # a child may claim anything beside the request; only the request travels
                {"cached": False, "rebuild": {"request": request, "light": {"main_cpp": "evil"}}},
            ]
        }
    }
    jobs = build.rebuild_payloads(report, tmp_path)
    assert jobs == [{"request": request, "timeout_s": build.DEFAULT_TIMEOUT_S, "pch_cache": str(tmp_path)}]


def test_build_requests_with_wrong_types_are_refused():
    with pytest.raises(build.BuildError, match="cuda_sources"):
        build._request({"cpp_sources": "x", "cuda_sources": [1]})
    with pytest.raises(build.BuildError, match="unknown"):
        build._request({"cpp_sources": "x", "main_cpp": "y"})
    with pytest.raises(build.BuildError, match="architecture"):
        build._request({"cpp_sources": "x", "arch": "90; rm"})


def test_installed_load_inline_maps_positional_arguments_by_torchs_signature(tmp_path: Path, monkeypatch):
    import torch.utils.cpp_extension as cpp_extension

    monkeypatch.setattr(cpp_extension, "load_inline", cpp_extension.load_inline)  # restored after the test
    builder = build.install(mode="cpu", workdir=tmp_path, shared_cache=None)
    seen = {}
    monkeypatch.setattr(builder, "load_inline", lambda **kwargs: seen.update(kwargs) or "module")
    import inspect

    names = list(inspect.signature(cpp_extension.load_inline).parameters)
    assert cpp_extension.load_inline("ext", "cpp", "cuda") == "module"
    assert seen == {names[0]: "ext", names[1]: "cpp", names[2]: "cuda"}
    with pytest.raises(build.BuildError):
        cpp_extension.load_inline("ext", "cpp", nonsense=1)


# ------------------------------------------------------------------------------------------------ split


def _units() -> tuple[str, str]:
    spec = build.make_spec(
        "torch::Tensor scale(torch::Tensor x, double s);", SPLITTABLE, ["scale"], split=True
    )
    return spec.kernel_cu, spec.host_cpp


def test_split_is_tried_first_then_light_then_stock():
    chain = build.variants(CPP, SPLITTABLE, ["scale"], arch="90a")
    assert [name for name, _ in chain] == ["split", "light", "stock"]
    split = chain[0][1]
    assert split.cuda_cu is None and split.kernel_cu and split.host_cpp
    assert split.main_cpp == chain[1][1].main_cpp  # main.cpp is the light one


def test_kernels_unit_has_device_code_and_no_torch():
    kernels, _ = _units()
    assert "torch" not in kernels.replace("#include <cuda", "") and "TORCH_CHECK" not in kernels
    assert "__global__ void __launch_bounds__(BLOCK) scale_kernel" in kernels
    assert "__device__ __forceinline__ float twice" in kernels
    assert "struct Params" in kernels and "constexpr int BLOCK" in kernels
    assert "namespace ops {" in kernels and "add_kernel" in kernels
    assert "empty_like" not in kernels  # the host function stays on the host side


def test_host_unit_declares_kernels_and_lowers_launches_as_nvcc_does():
    _, host = _units()
    assert "__global__ void   scale_kernel(const float* x, float* y, Params p);" in host
    assert (
        "(__cudaPushCallConfiguration(cdiv(p.n, BLOCK), BLOCK, 0, stream) ? (void)0 : scale_kernel(" in host
    )
    assert "(__cudaPushCallConfiguration(1, BLOCK) ? (void)0 : ops::add_kernel(x.data_ptr<float>()" in host
    assert "twice(" not in host  # device-only helper
    assert "inline int cdiv" in host  # host-and-device helper: both sides
    assert "#include <ATen/ops/empty_like.h>" in host


def test_split_units_keep_the_action_line_numbers():
    kernels, host = _units()
    # scale_kernel is on line 9 of the action's cuda_sources, scale() on line 16
    assert '#line 9 "cuda_sources"\n__global__ void __launch_bounds__(BLOCK) scale_kernel' in kernels
    assert '#line 16 "cuda_sources"\ntorch::Tensor scale(' in host
    launch = host.split('#line 16 "cuda_sources"\n', 1)[1]
    assert launch.splitlines()[5].lstrip().startswith("(__cudaPushCallConfiguration(cdiv")  # line 21


def test_comments_and_strings_do_not_count_as_code():
    kernels, host = _units()
    assert "in_a_comment" not in kernels + host  # a kernel inside a comment is no kernel
    # a macro whose string holds ";" and "{" stays one intact line (host side: it names TORCH_CHECK)
    assert '#define CHECK_INPUT(x) TORCH_CHECK(x.is_contiguous(), #x " must be contiguous; {")\n' in host
    assert "constexpr int BLOCK = 256;\n" in kernels


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("static __global__ void k(float* x) {}\nvoid f(float* x) { k<<<1, 1>>>(x); }", "internal"),
        ("namespace { __global__ void k(float* x) {} }\nvoid f(float* x) { k<<<1, 1>>>(x); }", "internal"),
        ("__global__ void k(at::Half* x) {}\nvoid f(at::Half* x) { k<<<1, 1>>>(x); }", "torch"),
        ("__global__ void c() {}\n__global__ void k() { c<<<1, 1>>>(); }", "dynamic parallelism"),
        ("__global__ void k() {}\nvoid f(void (*g)()) { g<<<1, 1>>>(); }", "other than a kernel"),
        ("void f(float* x) { x[0] = 1; }", "no kernels"),
        ("__global__ void k() {\n", "not closed"),
    ],
)
def test_sources_the_split_cannot_reproduce_are_not_split(source: str, reason: str):
    with pytest.raises(build.SplitUnavailable, match=reason):
        build.split_units(source)


def test_host_unit_reads_only_headers_the_host_compiler_reads_as_nvcc_does():
    source = "#include <cub/cub.cuh>\n#include <vector>\n#include <cuda_fp16.h>\n" + SPLITTABLE
    kernels, host, _ = build.split_units(source)
    assert "#include <cub/cub.cuh>" in kernels and "#include <cub/cub.cuh>" not in host
    assert "#include <vector>" in host and "#include <cuda_fp16.h>" in host


TEMPLATED = """template <typename T>
__global__ void fill(T* y, T v) { y[threadIdx.x] = v; }
void launch(float* a, double* b) {
    fill<float><<<1, 32>>>(a, 1.f);
    fill<<<1, 32>>>(b, 2.0);
}
"""


def test_template_kernels_are_split_and_their_launches_keep_the_template_arguments():
    spec = build.make_spec("void launch(float* a, double* b);", TEMPLATED, None, split=True)
    assert spec.kernel_templates == ("fill",)
    assert "(__cudaPushCallConfiguration(1, 32) ? (void)0 : fill<float>(a, 1.f));" in spec.host_cpp
    assert "(__cudaPushCallConfiguration(1, 32) ? (void)0 : fill(b, 2.0));" in spec.host_cpp  # deduced
    assert "template <typename T>\n__global__ void fill(T* y, T v);" in spec.host_cpp


@pytest.mark.skipif(not (shutil.which("nvcc") and shutil.which("c++")), reason="needs nvcc and c++")
def test_template_kernels_are_instantiated_for_what_the_host_unit_calls(tmp_path: Path):
    spec = build.make_spec("void launch(float* a, double* b);", TEMPLATED, None, split=True)
    host = [build._cxx(), "-c", "host.cpp", "-o", "host.o", *build._split_host_flags("t", spec)]
    (tmp_path / "host.cpp").write_text(spec.host_cpp)
    build._finish([build._start(host, tmp_path)], time.monotonic() + 300)
    lines = build._instantiations(tmp_path, spec, time.monotonic() + 60).splitlines()
    assert sorted(lines[1:]) == [
        "template __global__ void fill<double>(double*, double);",
        "template __global__ void fill<float>(float*, float);",
    ]
    (tmp_path / "kernels.cu").write_text(spec.kernel_cu + "\n".join(lines) + "\n")
    nvcc = [build._nvcc(), "-c", "kernels.cu", "-o", "kernels.o", *build._cuda_flags("t", "90a")]
    build._finish(
        [build._start([*nvcc, "--static-global-template-stub=false"], tmp_path)], time.monotonic() + 300
    )
    build._check_launch_targets(tmp_path, spec, time.monotonic() + 60)  # every instance is defined


def test_a_template_kernel_instantiated_over_torch_types_fails_the_split(tmp_path: Path, monkeypatch):
    spec = build.make_spec("void launch(float* a, double* b);", TEMPLATED, None, split=True)
    outputs = {
        "nm": "                 U _Z4fillIN3c104HalfEEvPT_S2_\n",
        "c++filt": "void fill<c10::Half>(c10::Half*, c10::Half)\n",
    }
    monkeypatch.setattr(build, "_run", lambda cmd, timeout_s, cwd: outputs[cmd[0]])
    with pytest.raises(build.BuildError, match="torch types"):
        build._instantiations(tmp_path, spec, time.monotonic() + 60)


def test_sources_that_test_nvccs_macros_are_not_split():
    with pytest.raises(build.SplitUnavailable, match="nvcc's own macros"):
        build.split_units("#ifdef __CUDACC__\n#endif\n" + SPLITTABLE)


@pytest.mark.skipif(not (shutil.which("nvcc") and shutil.which("c++")), reason="needs nvcc and c++")
def test_a_launch_the_kernels_unit_does_not_define_fails_the_split_before_linking(tmp_path: Path):
    spec = build.Spec(
        main_cpp="",
        cuda_cu=None,
        arch="90a",
        kernel_cu="__global__ void k(int n) {}\n",
        host_cpp="void k(float n);\nvoid launch() { k(1.f); }\n",  # mangles as k(float), defined k(int)
    )
    with pytest.raises(build.BuildError, match="does not define"):
        build._check_launch_targets(_compiled(tmp_path, spec), spec, time.monotonic() + 60)


def _compiled(folder: Path, spec: build.Spec) -> Path:
    (folder / "kernels.cu").write_text(spec.kernel_cu)
    (folder / "host.cpp").write_text(spec.host_cpp)
    nvcc = [build._nvcc(), "-c", "kernels.cu", "-o", "kernels.o", *build._cuda_flags("t", "90a")]
    host = [build._cxx(), "-c", "host.cpp", "-o", "host.o", *build._split_host_flags("t", spec)]
    build._finish([build._start(nvcc, folder), build._start(host, folder)], time.monotonic() + 300)
    return folder


def test_nvcc_options_that_touch_host_code_prevent_the_split():
    with pytest.raises(build.SplitUnavailable, match="Xcompiler"):
        build.make_spec(CPP, SPLITTABLE, ["scale"], split=True, extra_cuda_cflags=["-Xcompiler", "-O3"])
    spec = build.make_spec(
        CPP, SPLITTABLE, ["scale"], split=True, extra_cuda_cflags=["-O3", "--use_fast_math", "-DTILE=4"]
    )
    assert build._split_host_flags("x", spec)[-1] == "-DTILE=4"  # the host unit sees the action's defines


def test_split_variant_is_filed_under_the_stock_key():
    chain = build.variants(CPP, SPLITTABLE, ["scale"], arch="90a")
    stock_key = build.make_spec(CPP, SPLITTABLE, ["scale"], arch="90a").key()
    assert chain[-1][1].key() == stock_key
    assert chain[0][1].key() != stock_key  # the split itself is a different set of units


@pytest.mark.skipif(not (shutil.which("nvcc") and shutil.which("c++")), reason="needs nvcc and c++")
def test_split_units_compile_and_host_launches_resolve_to_the_kernels_stubs(tmp_path: Path):
    import subprocess

    spec = build.make_spec(
        "torch::Tensor scale(torch::Tensor x, double s);", SPLITTABLE, ["scale"], split=True
    )
    _compiled(tmp_path, spec)

    def symbols(obj: str, kind: str) -> set[str]:
        out = subprocess.run(["nm", obj], cwd=tmp_path, capture_output=True, text=True, check=True).stdout
        return {line.split()[-1] for line in out.splitlines() if line.split()[-2:-1] == [kind]}

    needed = {s for s in symbols("host.o", "U") if "kernel" in s}
    assert needed == {"_Z12scale_kernelPKfPf6Params", "_ZN3ops10add_kernelEPKfPfi"}
    assert needed <= symbols("kernels.o", "T")
    assert "__cudaPushCallConfiguration" in symbols("host.o", "U")
    build._check_launch_targets(tmp_path, spec, time.monotonic() + 60)  # passes: nothing missing


# ------------------------------------------------------------------------------------------------ PCH


@pytest.mark.skipif(not shutil.which("c++"), reason="no C++ compiler")
def test_precompiled_headers_are_built_once_readable_by_all_and_used_by_main_cpp(tmp_path: Path, monkeypatch):
    import stat

    monkeypatch.setattr(build, "PCH_HEADERS", {"main": ("vector",), "host": ("string",)})
    headers = build.build_pch(tmp_path / "shared")
    assert [h.name for h in headers] == ["solgym_main.h", "solgym_host.h"]
    gch = headers[0].with_suffix(".h.gch")
    assert stat.S_IMODE(gch.stat().st_mode) == 0o644
    assert stat.S_IMODE(gch.parent.stat().st_mode) == 0o755
    before = gch.stat().st_mtime_ns
    assert build.build_pch(tmp_path / "shared") == headers and gch.stat().st_mtime_ns == before
    started = []
    real_start = build._start
    monkeypatch.setattr(build, "_start", lambda cmd, cwd: started.append(cmd) or real_start(cmd, cwd))
    job = _plain_job()
    spec = build.make_spec(**job["request"])
    build.build_extension(spec, tmp_path / "out", pch_cache=tmp_path / "shared")
    assert started[0][1:3] == ["-include", str(headers[0])]


@pytest.mark.skipif(not shutil.which("c++"), reason="no C++ compiler")
def test_publishing_builds_first_precompiles_the_headers_the_rebuild_then_uses(tmp_path: Path, monkeypatch):
    from solgym import judge

    monkeypatch.setattr(build, "PCH_HEADERS", {"main": ("vector",), "host": ("string",)})
    request = _plain_job()["request"]
    outcome = {"result": {"build": {"builds": [{"cached": False, "rebuild": {"request": request}}]}}}
    jobs = []

    def run_build(job: dict) -> dict:
        jobs.append(job)
        assert build.pch_path(Path(job["pch_cache"]), "main").with_suffix(".h.gch").exists()
        return {"result": build.build_main(job, _BuildContext(tmp_path / f"child{len(jobs)}"))}

    assert judge.publish_builds(outcome, tmp_path / "shared", run_build) == 1
    key = build.make_spec(**request).key()
    assert (tmp_path / "shared" / key / f"solgym_ext_{key[:16]}.so").exists()


# ------------------------------------------------------------------------------------------------ GPU

GPU_SOURCE = SPLITTABLE.replace(
    "#include <cuda_runtime.h>\n", "#include <cuda_runtime.h>\n#include <ATen/cuda/CUDAContext.h>\n"
).replace("cudaStream_t stream = 0;", "auto stream = at::cuda::getCurrentCUDAStream();")


@pytest.mark.gpu
@pytest.mark.parametrize("precompiled", [False, True])
def test_split_build_runs_on_a_gpu_and_computes_what_the_source_says(tmp_path: Path, precompiled: bool):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    shared = None
    if precompiled:
        shared = tmp_path / "shared"
        assert len(build.build_pch(shared)) == 2
    builder = build.Builder("gpu", tmp_path / "work", shared, 300.0)
    module = builder.load_inline(
        "split_gpu", "torch::Tensor scale(torch::Tensor x, double s);", GPU_SOURCE, ["scale"]
    )
    assert builder.builds[0]["variant"] == "split"
    x = torch.randn(5000, device="cuda")
    expected = 6 * x
    expected[:256] += x[:256]  # add_kernel: one block of 256 threads
    torch.testing.assert_close(module.scale(x, 3.0), expected)


DISPATCHED = """#include <torch/extension.h>
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


@pytest.mark.gpu
def test_split_template_kernels_run_on_a_gpu_for_every_dispatched_type(tmp_path: Path):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    builder = build.Builder("gpu", tmp_path, None, 300.0)
    source = "#include <ATen/cuda/CUDAContext.h>\n" + DISPATCHED
    module = builder.load_inline(
        "split_dispatch", "torch::Tensor axpy(torch::Tensor x, torch::Tensor y, double a);", source, ["axpy"]
    )
    assert builder.builds[0]["variant"] == "split"
    for dtype in (torch.float32, torch.float64):
        x = torch.randn(3000, device="cuda", dtype=dtype)
        y = torch.randn(3000, device="cuda", dtype=dtype)
        torch.testing.assert_close(module.axpy(x, y, 0.5), 0.5 * x + y)
