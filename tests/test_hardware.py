"""Hardware profiles: the GPU table, lookup, clock scaling, NVML detection (faked) and the CPU profile."""

from __future__ import annotations

import json
import sys
import types

import pytest

from solgym import hardware
from solgym.cli import main
from solgym.hardware import PRECISIONS, PROFILES, Profile, detect, get_profile, nvml_snapshot

GPUS = list(PROFILES.values())
ARCH = {
    "h100-sxm": "hopper",
    "h100-pcie": "hopper",
    "h100-nvl": "hopper",
    "h200": "hopper",
    "b200": "blackwell",
    "gb200": "blackwell",
    "a100-40gb": "ampere",
    "a100-80gb": "ampere",
    "l40s": "ada",
    "l4": "ada",
    "rtx-4090": "geforce-ada",
    "rtx-5090": "geforce-blackwell",
}
# Dense FLOP (2 per FMA) per SM per clock, from the architecture whitepapers. GeForce parts run TF32 and
# BF16 (FP32 accumulate) at half the professional rate; their fp16/fp8 entries are FP16-accumulate rates.
PER_SM_PER_CLOCK = {
    "ampere": {"fp64": 128, "fp32": 128, "tf32": 1024, "bf16": 2048, "fp16": 2048, "int8": 4096},
    "hopper": {"fp64": 256, "fp32": 256, "tf32": 2048, "bf16": 4096, "fp16": 4096, "fp8": 8192, "int8": 8192},
    "blackwell": {
        "fp64": 128,
        "fp32": 256,
        "tf32": 4096,
        "bf16": 8192,
        "fp16": 8192,
        "fp8": 16384,
        "int8": 16384,
        "fp4": 32768,
    },
    "ada": {"fp64": 4, "fp32": 256, "tf32": 512, "bf16": 1024, "fp16": 1024, "fp8": 2048, "int8": 2048},
    "geforce-ada": {
        "fp64": 4,
        "fp32": 256,
        "tf32": 256,
        "bf16": 512,
        "fp16": 1024,
        "fp8": 2048,
        "int8": 2048,
    },
    "geforce-blackwell": {
        "fp64": 4,
        "fp32": 256,
        "tf32": 256,
        "bf16": 512,
        "fp16": 1024,
        "fp8": 2048,
        "int8": 2048,
        "fp4": 4096,
    },
}


# --- the table ------------------------------------------------------------------------------------------


def test_table_holds_the_gpus_the_design_names():
    assert set(PROFILES) == set(ARCH)


@pytest.mark.parametrize("gpu", GPUS, ids=lambda p: p.slug)
def test_every_gpu_has_positive_sizes_and_rates(gpu: Profile):
    assert gpu.sm_count > 0 and gpu.peak_clock_mhz > 0
    assert gpu.dram_bytes_per_s > 1e11
    assert gpu.l2_bytes >= 40 << 20
    assert gpu.memory_bytes >= 24e9
    assert set(gpu.peaks) <= set(PRECISIONS)
    assert all(v > 0 for v in gpu.peaks.values())
    assert not gpu.is_cpu


@pytest.mark.parametrize("gpu", GPUS, ids=lambda p: p.slug)
def test_every_number_has_a_source(gpu: Profile):
    needed = {"sm_count", "peak_clock_mhz", "dram_bytes_per_s", "l2_bytes", "memory_bytes", *gpu.peaks}
    if gpu.launch_floor_ms is not None:
        needed.add("launch_floor_ms")
    assert needed <= {k for k, v in gpu.sources.items() if v.strip()}


@pytest.mark.parametrize("gpu", GPUS, ids=lambda p: p.slug)
def test_tensor_core_bf16_beats_cuda_core_fp32(gpu: Profile):
    assert gpu.peak("bf16") > gpu.peak("fp32")
    assert gpu.peak("tf32") >= gpu.peak("fp32")


@pytest.mark.parametrize("slug", ["h100-sxm", "h100-pcie", "h100-nvl", "h200"])
def test_hopper_fp8_is_twice_bf16(slug: str):
    gpu = get_profile(slug)
    assert gpu.peak("fp8") == pytest.approx(2 * gpu.peak("bf16"), rel=1e-3)
    assert gpu.peak("fp16") == gpu.peak("bf16")


def test_fp4_only_on_blackwell_and_fp8_not_on_ampere():
    assert {p.slug for p in GPUS if p.peak("fp4") is not None} == {"b200", "gb200", "rtx-5090"}
    assert {p.slug for p in GPUS if p.peak("fp8") is None} == {"a100-40gb", "a100-80gb"}


@pytest.mark.parametrize("gpu", GPUS, ids=lambda p: p.slug)
def test_peaks_equal_sms_times_per_sm_rate_at_their_quoted_clock(gpu: Profile):
    # Catches a typo in a peak, an SM count or a clock: each datasheet figure must be what its SMs do at
    # the clock the profile says it is quoted at (datasheets round, hence 1.5%).
    rates = PER_SM_PER_CLOCK[ARCH[gpu.slug]]
    assert set(gpu.peaks) == set(rates)
    for precision, peak in gpu.peaks.items():
        expected = gpu.sm_count * rates[precision] * gpu.clock_of(precision) * 1e6
        assert peak == pytest.approx(expected, rel=0.015), precision


@pytest.mark.parametrize("gpu", GPUS, ids=lambda p: p.slug)
def test_no_peak_is_quoted_above_the_boost_clock(gpu: Profile):
    assert all(gpu.clock_of(k) <= gpu.peak_clock_mhz for k in gpu.peaks)


def test_launch_floor_is_known_for_hopper_only():
    floors = {p.slug: p.launch_floor_ms for p in GPUS if p.launch_floor_ms is not None}
    assert floors == {"h100-sxm": 0.001, "h100-pcie": 0.001, "h100-nvl": 0.001, "h200": 0.001}


def test_to_dict_is_json_and_names_each_peaks_clock():
    d = json.loads(json.dumps(get_profile("H100").to_dict()))
    assert d["peak_clocks_mhz"]["bf16"] == 1830 and d["peak_clocks_mhz"]["fp32"] == 1980
    assert d["peaks"]["bf16"] == pytest.approx(989.4e12)


# --- lookup ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spelling", "slug"),
    [
        ("H100", "h100-sxm"),
        ("h100-sxm", "h100-sxm"),
        ("NVIDIA H100 80GB HBM3", "h100-sxm"),
        ("  nvidia   h100 80gb hbm3 ", "h100-sxm"),
        ("NVIDIA H100 PCIe", "h100-pcie"),
        ("NVIDIA H100 NVL", "h100-nvl"),
        ("NVIDIA H200", "h200"),
        ("h200_sxm", "h200"),
        ("B200", "b200"),
        ("NVIDIA B200", "b200"),
        ("NVIDIA GB200", "gb200"),
        ("NVIDIA A100-SXM4-40GB", "a100-40gb"),
        ("NVIDIA A100-SXM4-80GB", "a100-80gb"),
        ("A100", "a100-80gb"),
        ("NVIDIA L40S", "l40s"),
        ("NVIDIA L4", "l4"),
        ("NVIDIA GeForce RTX 4090", "rtx-4090"),
        ("rtx 5090", "rtx-5090"),
        ("NVIDIA GeForce RTX 5090", "rtx-5090"),
    ],
)
def test_lookup_accepts_names_slugs_and_nvml_names(spelling: str, slug: str):
    assert get_profile(spelling) is PROFILES[slug]


@pytest.mark.parametrize("name", ["NVIDIA H200 NVL", "H100 80GB", "L40", "TPU v5"])
def test_lookup_never_guesses_a_near_name(name: str):
    with pytest.raises(KeyError) as err:
        get_profile(name)
    assert repr(name) in str(err.value)
    assert "h100-sxm" in str(err.value) and "rtx-5090" in str(err.value)


# --- clocks ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("precision", "published"),
    [("bf16", 1.811e15), ("fp16", 1.811e15), ("fp8", 3.62e15), ("fp4", 7.25e15), ("tf32", 0.906e15)],
)
def test_b200_at_1500_mhz_gives_solexecbench_figures(precision: str, published: float):
    b200 = get_profile("B200").at_clock(1500)
    assert b200.peak(precision) == pytest.approx(published, rel=0.005)
    assert b200.peak_clock_mhz == 1500


def test_at_clock_leaves_dram_bandwidth_alone():
    assert get_profile("B200").at_clock(1500).dram_bytes_per_s == pytest.approx(7.667e12)


def test_at_clock_scales_each_peak_from_its_own_quoted_clock():
    h100 = get_profile("H100").at_clock(1830)
    assert h100.peak("bf16") == pytest.approx(989.4e12)  # already quoted at 1830 MHz
    assert h100.peak("fp32") == pytest.approx(66.9e12 * 1830 / 1980)
    assert h100.clock_of("fp32") == h100.clock_of("bf16") == 1830
    assert "1830" in h100.notes[-1]


def test_at_clock_rejects_a_cpu_profile_and_nonpositive_clocks():
    with pytest.raises(ValueError, match="positive"):
        get_profile("H100").at_clock(0)
    cpu = Profile("cpu", "cpu", 2, 2000.0, 1e10, 1 << 25, 1 << 34, {"fp32": 1e11}, is_cpu=True)
    with pytest.raises(ValueError, match="CPU"):
        cpu.at_clock(1000)


# --- NVML (faked) ---------------------------------------------------------------------------------------


class FakeNVMLError(Exception):
    pass


def fake_nvml(
    name: str = "NVIDIA H100 80GB HBM3", count: int = 1, broken: frozenset[str] = frozenset(), **overrides
) -> types.ModuleType:
    """A pynvml stand-in: one GPU whose queries answer as a driver would; those in `broken` raise."""
    values = {
        "nvmlDeviceGetCount": count,
        "nvmlDeviceGetHandleByIndex": "handle",
        "nvmlDeviceGetName": name,
        "nvmlDeviceGetMaxClockInfo": {1: 2617, 2: 14001},  # SM, memory (MHz)
        "nvmlDeviceGetClockInfo": {1: 1755, 2: 13801},
        "nvmlDeviceGetMemoryBusWidth": 512,
        "nvmlDeviceGetNumGpuCores": 24064,
        "nvmlDeviceGetCudaComputeCapability": (12, 0),
        "nvmlDeviceGetMemoryInfo": types.SimpleNamespace(total=97_887_174_656),
        "nvmlDeviceGetPowerUsage": 412_345,  # mW
        "nvmlDeviceGetEnforcedPowerLimit": 600_000,
        "nvmlDeviceGetTemperature": 61,
        "nvmlDeviceGetCurrentClocksEventReasons": 0x4 | 0x40,
        **overrides,
    }
    module = types.ModuleType("pynvml")
    module.NVMLError = FakeNVMLError
    module.NVML_CLOCK_SM, module.NVML_CLOCK_MEM, module.NVML_TEMPERATURE_GPU = 1, 2, 0
    module.nvmlInit = lambda: None

    def query(fn_name: str, value):
        def fn(*args):
            if fn_name in broken:
                raise FakeNVMLError(fn_name)
            return value[args[-1]] if isinstance(value, dict) else value

        return fn

    for fn_name, value in values.items():
        if value is not None:
            setattr(module, fn_name, query(fn_name, value))
    return module


@pytest.fixture
def cpu_sentinel(monkeypatch) -> Profile:
    """Stands in for the measured CPU profile so fallback tests do not measure."""
    sentinel = Profile("test CPU", "cpu", 1, 1000.0, 1e10, 1 << 25, 1 << 30, {"fp32": 1e11}, is_cpu=True)
    monkeypatch.setattr(hardware, "cpu_profile", lambda: sentinel)
    return sentinel


def test_detect_without_pynvml_returns_the_cpu_profile(monkeypatch, cpu_sentinel):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # makes `import pynvml` raise ImportError
    assert detect() is cpu_sentinel
    assert nvml_snapshot() == {}


def test_detect_when_nvml_cannot_start_returns_the_cpu_profile(monkeypatch, cpu_sentinel):
    module = fake_nvml()

    def no_driver():
        raise FakeNVMLError("driver not loaded")

    module.nvmlInit = no_driver
    monkeypatch.setitem(sys.modules, "pynvml", module)
    assert detect() is cpu_sentinel


def test_detect_without_a_gpu_returns_the_cpu_profile(monkeypatch, cpu_sentinel):
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(count=0))
    assert detect() is cpu_sentinel


def test_detect_maps_the_nvml_name_to_the_table(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(name=b"NVIDIA H100 80GB HBM3"))  # old pynvml: bytes
    assert detect() is PROFILES["h100-sxm"]


def test_detect_rejects_an_index_beyond_the_gpus(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(count=2))
    with pytest.raises(ValueError, match="index 2 .* 2 GPU"):
        detect(2)


def test_unknown_gpu_gets_nvml_bandwidth_and_sms_but_no_peaks(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(name="NVIDIA RTX PRO 6000 Blackwell Server Edition"))
    gpu = detect()
    assert gpu.name == "NVIDIA RTX PRO 6000 Blackwell Server Edition"
    assert gpu.dram_bytes_per_s == pytest.approx(14001e6 * 2 * 512 / 8)  # 1.792 TB/s
    assert gpu.sm_count == 24064 // 128
    assert gpu.peak_clock_mhz == 2617
    assert gpu.memory_bytes == 97_887_174_656
    assert gpu.peaks == {} and gpu.peak("bf16") is None
    assert "compute peaks unknown" in gpu.notes[0]
    assert "NVML" in gpu.sources["dram_bytes_per_s"] and "NVML" in gpu.sources["sm_count"]


def test_unknown_gpu_with_failing_queries_says_what_is_unknown(monkeypatch):
    broken = frozenset({"nvmlDeviceGetMemoryBusWidth", "nvmlDeviceGetNumGpuCores", "nvmlDeviceGetMemoryInfo"})
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(name="Some Future GPU", broken=broken))
    gpu = detect()
    assert gpu.dram_bytes_per_s == 0.0 and gpu.sm_count == 0 and gpu.memory_bytes == 0
    assert any("DRAM bandwidth unknown" in n for n in gpu.notes)
    assert any("SM count unknown" in n for n in gpu.notes)


def test_snapshot_reads_clocks_power_temperature_and_reasons(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml())
    assert nvml_snapshot(0) == {
        "index": 0,
        "sm_clock_mhz": 1755,
        "mem_clock_mhz": 13801,
        "power_w": pytest.approx(412.345),
        "power_limit_w": pytest.approx(600.0),
        "temperature_c": 61,
        "clock_event_mask": 0x44,
        "clock_event_reasons": ["sw_power_cap", "hw_thermal_slowdown"],
    }


def test_snapshot_keeps_what_it_could_read(monkeypatch):
    broken = frozenset({"nvmlDeviceGetPowerUsage", "nvmlDeviceGetTemperature", "nvmlDeviceGetClockInfo"})
    # An older pynvml: only the throttle-reasons name exists.
    module = fake_nvml(broken=broken, nvmlDeviceGetCurrentClocksEventReasons=None)
    module.nvmlDeviceGetCurrentClocksThrottleReasons = lambda handle: 0x1 | 0x800
    monkeypatch.setitem(sys.modules, "pynvml", module)
    assert nvml_snapshot() == {
        "index": 0,
        "power_limit_w": pytest.approx(600.0),
        "clock_event_mask": 0x801,
        "clock_event_reasons": ["gpu_idle", "unknown_0x800"],
    }


def test_snapshot_of_a_missing_gpu_is_empty(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(count=1))
    assert nvml_snapshot(3) == {}


# --- the CPU (measured) ---------------------------------------------------------------------------------


def test_cpu_profile_is_measured_once_and_uses_fp32_for_every_class():
    cpu = hardware.cpu_profile()
    assert hardware.cpu_profile() is cpu
    assert cpu.is_cpu and cpu.slug == "cpu" and cpu.name
    assert cpu.dram_bytes_per_s > 1e8
    assert cpu.peak("fp32") > 1e8
    assert cpu.peaks == dict.fromkeys(PRECISIONS, cpu.peak("fp32"))
    assert {"dram_bytes_per_s", *PRECISIONS} <= set(cpu.sources)
    assert get_profile("CPU") is cpu


def test_calibrate_on_cpu_measures_copy_and_gemm():
    result = hardware.calibrate("cpu")
    assert result["device"] == "cpu"
    assert result["copy_bytes_per_s"] > 1e8
    assert result["gemm_flops"]["fp32"] > 1e8
    assert result["launch_floor_ms"] is None
    assert "reference only" in result["note"]


def test_calibrate_refuses_other_devices():
    with pytest.raises(ValueError, match="cpu and cuda"):
        hardware.calibrate("meta")


# --- the command line -----------------------------------------------------------------------------------


def test_cli_hw_json_without_a_gpu_shows_the_cpu(monkeypatch, capsys, cpu_sentinel):
    monkeypatch.setitem(sys.modules, "pynvml", None)
    assert main(["hw", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["slug"] == "cpu" and shown["is_cpu"] is True and shown["name"] == "test CPU"


def test_cli_hw_named_gpu_json(capsys):
    assert main(["hw", "--gpu", "H100", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["slug"] == "h100-sxm"
    assert shown["peaks"]["bf16"] == pytest.approx(989.4e12)
    assert shown["sources"]["bf16"]


def test_cli_hw_named_gpu_table_shows_peaks_and_sources(capsys):
    assert main(["hw", "--gpu", "b200"]) == 0
    out = capsys.readouterr().out
    assert "NVIDIA B200" in out and "7.667 TB/s" in out and "2,250 TFLOP/s" in out and "datasheet" in out


def test_cli_hw_list_shows_every_gpu(capsys):
    assert main(["hw", "--list"]) == 0
    out = capsys.readouterr().out
    assert all(slug in out for slug in PROFILES)


def test_cli_hw_list_json(capsys):
    assert main(["hw", "--list", "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)) == set(PROFILES)


def test_cli_hw_unknown_gpu_is_a_user_error(capsys):
    assert main(["hw", "--gpu", "Voodoo 2"]) == 2
    assert "unknown GPU 'Voodoo 2'" in capsys.readouterr().err


def test_cli_hw_calibrate_refuses_a_named_gpu(capsys):
    assert main(["hw", "--gpu", "H100", "--calibrate"]) == 2
    assert "--calibrate" in capsys.readouterr().err


def test_cli_hw_on_an_unknown_gpu_says_its_peaks_are_unknown(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml(name="NVIDIA RTX PRO 6000 Blackwell Server Edition"))
    assert main(["hw"]) == 0
    out = capsys.readouterr().out
    assert "1.792 TB/s" in out and "compute peaks unknown" in out and "bf16 peak" in out


@pytest.mark.gpu
def test_calibrated_ceilings_stay_below_the_datasheet_peaks():
    # Validity of the table on a real GPU: nothing measured may beat the peak a bound is priced at.
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    gpu = detect()
    if not gpu.peaks:
        pytest.skip(f"{gpu.name} is not in the table")
    result = hardware.calibrate("cuda:0")
    assert 0.3 * gpu.dram_bytes_per_s < result["copy_bytes_per_s"] <= gpu.dram_bytes_per_s
    for precision, rate in result["gemm_flops"].items():
        assert 0.2 * gpu.peak(precision) < rate <= gpu.peak(precision), precision
    assert 0.0005 < result["launch_floor_ms"] < 0.05
