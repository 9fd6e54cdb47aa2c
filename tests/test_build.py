"""CUDA C++ builds: the translation units solgym writes for load_inline, cache keys, error lines, limits
(no compiler needed except where marked)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from solgym import build

CUDA = "#include <torch/extension.h>\n__global__ void k(float* y) { y[0] = 1.f; }\ntorch::Tensor f(torch::Tensor x) { return torch::empty_like(x); }\n"
CPP = "torch::Tensor f(torch::Tensor x);"


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


def test_light_first_falls_back_to_stock_unless_it_is_a_syntax_error():
    light = build.make_spec(CPP, CUDA, ["f"], light=True)
    stock = build.make_spec(CPP, CUDA, ["f"])
    seen = []

    def undefined(spec: build.Spec) -> str:
        seen.append(spec is stock)
        if spec is light:
            raise build.BuildError('cuda_sources(3): error: identifier "foo" is undefined')
        return "ok"

    assert build._light_first(undefined, light, stock) == ("stock", "ok")
    assert seen == [False, True]

    def syntax(spec: build.Spec) -> str:
        raise build.BuildError('cuda_sources(3): error: expected a ";"')

    with pytest.raises(build.BuildError, match="expected a"):
        build._light_first(syntax, light, stock)


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
    from dataclasses import asdict

    spec = build.make_spec(
        'extern "C" int solgym_answer() { return 42; }', None, None, no_implicit_headers=True
    )
    return {"spec": asdict(spec), "light": asdict(spec), "timeout_s": 120}


@pytest.mark.skipif(not shutil.which("c++"), reason="no C++ compiler")
def test_build_job_compiles_unprivileged_and_the_parent_publishes_under_its_own_key(tmp_path: Path):
    job = _plain_job()
    ctx = _BuildContext(tmp_path / "child")
    result = build.build_main(job, ctx)
    assert ctx.dropped
    assert "so_b64" in result, result.get("error")
    target = build.publish(tmp_path / "shared", job, result)
    key = build._spec(job["spec"]).key()
    assert target == tmp_path / "shared" / key / f"solgym_ext_{key[:16]}.so"
    assert target.read_bytes()[:4] == b"\x7fELF"


def test_a_build_result_cannot_fill_another_sources_entry(tmp_path: Path):
    job = _plain_job()
    forged = {"key": "0" * 64, "so_b64": "AAAA"}
    target = build.publish(tmp_path / "shared", job, forged)
    assert target.parent.name == build._spec(job["spec"]).key()
    assert not (tmp_path / "shared" / ("0" * 64)).exists()


def test_rebuild_payloads_come_from_private_builds_only():
    report = {
        "build": {
            "builds": [
                {"cached": True},
                {
                    "cached": False,
                    "rebuild": {
                        "spec": {"main_cpp": "x", "cuda_cu": None},
                        "light": {"main_cpp": "x", "cuda_cu": None},
                    },
                },
            ]
        }
    }
    jobs = build.rebuild_payloads(report)
    assert len(jobs) == 1
    assert jobs[0]["spec"]["main_cpp"] == "x"


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
