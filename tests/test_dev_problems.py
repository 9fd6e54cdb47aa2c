"""Every SOL-ExecBench dev problem loads and its reference runs on the CPU for one (shrunk) workload.

The problems that cannot run here are listed with the reason, also in docs/problems.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import dev_problems, needs_dev

from solgym.inputs import footprint_bytes, make_inputs, run_reference, shrink
from solgym.problem import ProblemError, load_problem

# The workload is shrunk (var axes halved) to this many bytes of inputs and outputs where possible.
CPU_BUDGET_BYTES = 64 << 20

NEEDS_TRACE_BLOBS = {
    "013_gqa_paged_decode_h32_kv8_d128_ps1",
    "019_mla_paged_prefill_causal_h16_ckv512_kpe64_ps1",
}
CANNOT_RUN_ON_CPU = {
    "019_nvfp4_grouped_query_attention": "NVFP4 torch._scaled_mm has no CPU kernel",
    "025_nvfp4_attention_qkv_projection": "NVFP4 torch._scaled_mm has no CPU kernel",
    "031_nvfp4_grouped_query_attention_with_kv_repeat": "NVFP4 torch._scaled_mm has no CPU kernel",
    "025_moe_expert_parallel_execution_backward": "256 fp32 experts are 51 GB of const-axis weights and gradients",
}


@needs_dev
@pytest.mark.parametrize("folder", dev_problems(), ids=lambda p: p.name)
def test_dev_reference_runs_on_cpu(folder: Path):
    if folder.name in CANNOT_RUN_ON_CPU:
        pytest.skip(CANNOT_RUN_ON_CPU[folder.name])
    problem = load_problem(folder)
    workload = shrink(
        problem, min(problem.workloads, key=lambda w: footprint_bytes(problem, w)), CPU_BUDGET_BYTES
    )
    if folder.name in NEEDS_TRACE_BLOBS:
        with pytest.raises(ProblemError, match=r"safetensors blob .* not found"):
            make_inputs(problem, workload, seed=0)
        return
    outputs = run_reference(problem, make_inputs(problem, workload, seed=0))
    axes = problem.axes(workload)
    for (name, spec), out in zip(problem.definition.outputs.items(), outputs, strict=True):
        expected = problem.definition.shape(spec, axes)
        if expected is not None:
            assert tuple(out.shape) == expected, name
