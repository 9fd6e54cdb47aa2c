"""The evaluation pool: futures over lanes, hostile jobs cost only themselves, the pool heals itself."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
import types
from pathlib import Path

import pytest

from solgym import pool as pool_module
from solgym.pool import EvalPool, visible_gpus
from solgym.sandbox import Limits

LIMITS = Limits(wall_s=3.0, data_bytes=256 << 20, nproc=32, fsize_bytes=1 << 20, output_bytes=64 << 10)


def processes_with(text: str) -> list[int]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text.encode() in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return found


def wait_for_spares(pool: EvalPool, count: int) -> dict:
    for _ in range(200):
        health = pool.health()
        if health["live_spares"] == count:
            return health
        time.sleep(0.05)
    return pool.health()


def test_a_mixed_batch_returns_the_normal_results_unchanged_and_heals():
    jobs = [
        ("hostile_entries:echo", {"i": 0}),
        ("hostile_entries:segfault", {}),
        ("hostile_entries:echo", {"i": 1}),
        ("hostile_entries:hang", {}),
        ("hostile_entries:hog_memory", {}),
        ("hostile_entries:echo", {"i": 2}),
        ("hostile_entries:exit_early", {}),
        ("hostile_entries:flood_stdout", {"mib": 4}),
        ("hostile_entries:orphan", {"marker": "solgym-pool-orphan"}),
        ("hostile_entries:echo", {"i": 3}),
    ]
    with EvalPool("cpu", spares_per_device=2, limits=LIMITS, jobs_per_device=3, prewarm=()) as pool:
        outcomes = pool.run_jobs(jobs)
        assert [o.result["echo"] for o in outcomes if o.result and "echo" in o.result] == [
            {"i": 0},
            {"i": 1},
            {"i": 2},
            {"i": 3},
        ]
        assert outcomes[1].signal == signal.SIGSEGV
        assert outcomes[3].timed_out and outcomes[3].error == "exceeded wall limit 3 s"
        assert outcomes[4].error.startswith("memory limit")
        assert outcomes[6].exit_code == 3
        assert outcomes[7].result == {"written_mib": 4}
        assert not any(outcome.is_infra_error for outcome in outcomes)
        assert processes_with("solgym-pool-orphan") == []

        health = wait_for_spares(pool, 2)
        assert health["live_spares"] == 2 and health["jobs_done"] == len(jobs)
        assert health["children_replaced"] >= len(jobs)
        again = pool.submit_job("hostile_entries:echo", {"again": True}).result()
        assert again.result["echo"] == {"again": True}
        base = pool._lanes[0].base
    assert processes_with(str(base)) == []


def test_jobs_go_to_the_least_loaded_lane():
    with EvalPool(
        "cpu", cpu_lanes=2, spares_per_device=0, jobs_per_device=1, limits=LIMITS, prewarm=()
    ) as pool:
        futures = [pool.submit_job("hostile_entries:timed_window", {"hold_s": 1.0}) for _ in range(2)]
        outcomes = [future.result() for future in futures]
        assert all(outcome.error == "" for outcome in outcomes)
        assert [lane["jobs_done"] for lane in pool.health()["lanes"]] == [1, 1]
        # Two CPU lanes are two timing slots: their windows may overlap, unlike two jobs of one lane.
        first, second = sorted((o.result for o in outcomes), key=lambda r: r["start"])
        assert second["start"] < first["end"]


def test_arun_job_serves_asyncio_callers():
    async def main(pool: EvalPool) -> list:
        return await asyncio.gather(*(pool.arun_job("hostile_entries:echo", {"i": i}) for i in range(3)))

    with EvalPool("cpu", spares_per_device=1, limits=LIMITS, prewarm=()) as pool:
        outcomes = asyncio.run(main(pool))
    assert [outcome.result["echo"] for outcome in outcomes] == [{"i": 0}, {"i": 1}, {"i": 2}]


def test_auto_falls_back_to_cpu_lanes_without_gpus(monkeypatch):
    monkeypatch.setattr(pool_module, "visible_gpus", lambda: [])
    with EvalPool("auto", cpu_lanes=2, spares_per_device=0, prewarm=()) as pool:
        assert pool.devices == [None, None]


def test_device_arguments_are_checked():
    with pytest.raises(ValueError, match="'auto', 'cpu'"):
        EvalPool("gpu")
    with pytest.raises(ValueError, match="jobs_per_device"):
        EvalPool("cpu", jobs_per_device=0)


def fake_nvml(count: int | None) -> types.ModuleType:
    module = types.ModuleType("pynvml")

    def init() -> None:
        if count is None:
            raise RuntimeError("NVML Shared Library Not Found")

    module.nvmlInit = init
    module.nvmlDeviceGetCount = lambda: count
    return module


def test_visible_gpus_come_from_nvml_narrowed_by_cuda_visible_devices(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(4))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert visible_gpus() == [0, 1, 2, 3]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,0")
    assert visible_gpus() == [2, 0]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1,7,2")
    assert visible_gpus() == [1]
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(None))
    assert visible_gpus() == []


def test_close_is_idempotent_and_refuses_new_jobs():
    pool = EvalPool("cpu", spares_per_device=1, limits=LIMITS, prewarm=())
    pool.close()
    pool.close()
    with pytest.raises(RuntimeError, match="closed"):
        pool.submit_job("hostile_entries:echo", {})


def resident_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


@pytest.mark.gpu
def test_gpu_lanes_pin_time_one_job_at_a_time_survive_an_illegal_address_and_leak_nothing():
    import torch

    # Other GPU tests in the same process may have initialised CUDA; the pool must not be what does it.
    initialised_before = torch.cuda.is_initialized()
    with EvalPool("auto", spares_per_device=1, limits=Limits(wall_s=300.0)) as pool:
        assert pool.devices and None not in pool.devices
        wait_for_spares(pool, len(pool.devices))
        warm = pool._lanes[0]._ready[0]
        assert resident_mib(warm.worker_pid) < 2048
        jobs = [("hostile_entries:cuda_job", {"mib": 256, "hold_s": 0.3})] * (2 * len(pool.devices))
        jobs.append(("hostile_entries:cuda_illegal_address", {}))
        outcomes = pool.run_jobs(jobs)
        *normal, crash = outcomes
        assert [o.error for o in normal] == [""] * len(normal)
        assert {o.result["visible_devices"] for o in normal} == {1}
        assert {o.result["device"] for o in normal} == set(pool.devices)
        for device in pool.devices:
            windows = sorted(
                (o.result["start"], o.result["end"]) for o in normal if o.result["device"] == device
            )
            assert all(
                end <= next_start for (_, end), (next_start, _) in zip(windows, windows[1:], strict=False)
            )
        assert crash.result is None and crash.error and not crash.is_infra_error
        assert all(o.gpu_memory_leak_bytes in (0, None) for o in outcomes)
        after = pool.run_jobs([("hostile_entries:cuda_job", {"mib": 16, "hold_s": 0.0})])[0]
        assert after.error == ""
    assert torch.cuda.is_initialized() == initialised_before
