"""Single-use sandboxed children: each hostile job costs only itself, and nothing of it survives.

Entries live in tests/hostile_entries.py. Every fault is bounded by small limits (wall time, RLIMIT_DATA,
RLIMIT_NPROC after the uid drop, output cap) so that a failing test cannot take the machine down.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from pathlib import Path

import pytest

from solgym.sandbox import (
    PASSED_ENV,
    ChildOutcome,
    Lane,
    Limits,
    SandboxError,
    TimingSlot,
    child_environment,
    run_entry,
)

ROOT = os.geteuid() == 0
SMALL = Limits(wall_s=20.0, data_bytes=256 << 20, nproc=32, fsize_bytes=1 << 20, output_bytes=64 << 10)
CHILD_SET_ENV = set(
    "HOME TMPDIR USER LOGNAME TRITON_CACHE_DIR TORCH_EXTENSIONS_DIR TORCHINDUCTOR_CACHE_DIR CUDA_DEVICE_ORDER "
    "CUDA_VISIBLE_DEVICES TRITON_INTERPRET".split()
)


@pytest.fixture(scope="module")
def lane():
    with Lane(None, spares=2, limits=SMALL, prewarm=()) as lane:
        yield lane


def uid_of(outcome: ChildOutcome) -> int | None:
    drop = outcome.layers.get("uid_drop")
    return int(drop.split()[-1]) if isinstance(drop, str) and drop.startswith("per-child uid") else None


def processes_of_uid(uid: int) -> list[int]:
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            uid_line = next(line for line in status.read_text().splitlines() if line.startswith("Uid:"))
        except (OSError, StopIteration):
            continue
        if int(uid_line.split()[1]) == uid:
            found.append(int(status.parent.name))
    return found


def processes_with(text: str) -> list[int]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text.encode() in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return found


def assert_nothing_left(outcome: ChildOutcome) -> None:
    uid = uid_of(outcome)
    if ROOT:
        assert uid is not None, outcome.layers
    if uid is not None:
        assert processes_of_uid(uid) == []


def test_normal_entry_returns_its_result_and_sees_its_sandbox(lane):
    outcome = lane.run("hostile_entries:echo", {"n": 7, "text": "héllo"})
    assert outcome.error == ""
    assert outcome.result["echo"] == {"n": 7, "text": "héllo"}
    assert outcome.result["home"] == outcome.result["workdir"]
    assert outcome.result["device"] is None
    assert set(outcome.result["env"]) <= set(PASSED_ENV) | CHILD_SET_ENV
    assert list(outcome.stages_s) == ["start"]
    assert not Path(outcome.result["workdir"]).exists()
    if ROOT:
        assert outcome.result["uid"] != 0
        assert outcome.layers["no_new_privs"] is True
    for layer in (
        "process_group",
        "scrubbed_env",
        "rlimits",
        "uid_drop",
        "pid_namespace",
        "net_namespace",
        "seccomp",
    ):
        assert layer in outcome.layers


def test_environment_keeps_only_the_allow_list(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_TOKEN", "secret")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy:3128")
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    monkeypatch.setenv("CUDA_HOME", "/usr/local/cuda")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    env = child_environment(3, tmp_path)
    assert set(env) <= set(PASSED_ENV) | CHILD_SET_ENV
    assert env["CUDA_HOME"] == "/usr/local/cuda"
    assert env["CUDA_VISIBLE_DEVICES"] == "3" and env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    assert env["HOME"] == str(tmp_path) and env["TRITON_CACHE_DIR"].startswith(str(tmp_path))
    assert "TRITON_INTERPRET" not in env and "OMP_NUM_THREADS" not in env
    assert child_environment(None, tmp_path)["CUDA_VISIBLE_DEVICES"] == ""


def test_a_cpu_child_runs_one_intra_op_thread_unless_the_pool_says_otherwise(monkeypatch, tmp_path):
    # CPU jobs share the cores with each other: parallel regions that wait for a busy core made one
    # eager baseline 200x slower (docs/evaluation.md).
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert child_environment(None, tmp_path)["OMP_NUM_THREADS"] == "1"
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    assert child_environment(None, tmp_path)["OMP_NUM_THREADS"] == "4"
    assert child_environment(0, tmp_path)["OMP_NUM_THREADS"] == "4"  # passed through, as before


def test_segfault_is_reported_as_its_signal(lane):
    outcome = lane.run("hostile_entries:segfault", {})
    assert outcome.result is None
    assert outcome.signal == signal.SIGSEGV and not outcome.timed_out
    assert outcome.error == "killed by SIGSEGV"
    assert_nothing_left(outcome)


def test_hang_is_killed_at_the_wall_limit(lane):
    limits = Limits(wall_s=1.5, data_bytes=SMALL.data_bytes, nproc=SMALL.nproc)
    outcome = lane.run("hostile_entries:hang", {}, limits=limits)
    assert outcome.timed_out and outcome.result is None
    assert outcome.error == "exceeded wall limit 1.5 s"
    assert outcome.signal == signal.SIGKILL
    assert 1.5 <= outcome.wall_s < 5.0
    assert_nothing_left(outcome)


def test_memory_hog_stops_at_the_data_limit(lane):
    outcome = lane.run("hostile_entries:hog_memory", {})
    assert outcome.result is None and not outcome.timed_out
    assert outcome.error == "memory limit (RLIMIT_DATA 256 MiB): entry raised MemoryError"
    assert not outcome.is_infra_error


def test_early_exit_is_a_crash_without_result(lane):
    outcome = lane.run("hostile_entries:exit_early", {})
    assert outcome.result is None
    assert outcome.exit_code == 3 and outcome.signal is None
    assert outcome.error == "exited with code 3 before returning a result"


@pytest.mark.skipif(not ROOT, reason="RLIMIT_NPROC only bounds a fork bomb after the uid drop (root)")
def test_fork_bomb_is_bounded_and_swept(lane):
    outcome = lane.run("hostile_entries:fork_bomb", {})
    assert outcome.error == ""
    assert 0 < outcome.result["refused_after"] < SMALL.nproc
    assert_nothing_left(outcome)


def test_output_flood_is_capped_and_never_blocks_the_child(lane):
    outcome = lane.run("hostile_entries:flood_stdout", {"mib": 16})
    assert outcome.result == {"written_mib": 16}
    half = SMALL.output_bytes // 2
    assert outcome.stdout_tail.startswith(f"[{16 * (1 << 20) - half} earlier bytes discarded]")
    assert outcome.stdout_tail.endswith("x" * half)
    assert len(outcome.stderr_tail) < half + 100


@pytest.mark.parametrize(
    "disable",
    [(), ("pid_namespace",), ("pid_namespace", "uid_drop")],
    ids=["all-layers", "subreaper-and-uid", "subreaper-only"],
)
def test_orphan_grandchild_in_its_own_session_is_killed(disable):
    marker = f"solgym-orphan-{os.getpid()}-{len(disable)}"
    with Lane(None, spares=0, limits=SMALL, prewarm=(), disable=disable) as lane:
        outcome = lane.run("hostile_entries:orphan", {"marker": marker})
        assert outcome.result == {"left": marker}
        assert processes_with(marker) == []
        if "uid_drop" not in disable:
            assert_nothing_left(outcome)


@pytest.mark.skipif(not ROOT, reason="the uid drop needs root")
def test_after_the_drop_root_files_cannot_be_written(lane):
    outcome = lane.run("hostile_entries:write_outside", {"paths": ["/etc/passwd"], "create": "/solgym-probe"})
    assert outcome.result == {
        "attempts": {"/etc/passwd": "EACCES", "/solgym-probe": "EACCES"},
        "workdir_written": True,
    }
    assert not Path("/solgym-probe").exists()


PRIVATE_ENTRY = """
import errno, os
from pathlib import Path

def run(payload, ctx):
    ctx.drop_privileges()
    import private_helper
    try:
        (Path(private_helper.__file__).parent / "planted.py").write_text("VALUE = 6")
        planted = "written"
    except OSError as exc:
        planted = errno.errorcode[exc.errno]
    return {"helper": private_helper.VALUE, "planted": planted}
"""


def private_modules(tmp_path: Path, monkeypatch) -> None:
    """Modules in an open directory behind a closed one, as a Python installed under /root is."""
    modules = tmp_path / "modules"
    modules.mkdir(mode=0o755)
    (modules / "private_entry.py").write_text(PRIVATE_ENTRY)
    (modules / "private_helper.py").write_text("VALUE = 5\n")
    tmp_path.chmod(0o700)
    monkeypatch.syspath_prepend(str(modules))


@pytest.mark.skipif(not ROOT, reason="the uid drop needs root")
def test_import_path_behind_a_closed_directory_stays_readable_but_not_writable(tmp_path, monkeypatch):
    private_modules(tmp_path, monkeypatch)
    with Lane(None, spares=0, limits=SMALL, prewarm=()) as lane:
        outcome = lane.run("private_entry:run", {})
    assert outcome.error == ""
    assert outcome.result == {"helper": 5, "planted": "EROFS"}
    assert not (tmp_path / "modules" / "planted.py").exists()


EXPOSED_ENTRY = """
import os

def run(payload, ctx):
    ctx.drop_privileges()
    return {"names": sorted(os.listdir(payload["cache"])), "text": open(payload["cache"] + "/kernel.so").read()}
"""


@pytest.mark.skipif(not ROOT, reason="the uid drop needs root")
def test_an_exposed_trusted_cache_behind_a_closed_directory_is_readable_after_the_drop(tmp_path, monkeypatch):
    private_modules(tmp_path, monkeypatch)
    (tmp_path / "modules" / "exposed_entry.py").write_text(EXPOSED_ENTRY)
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o755)
    (cache / "kernel.so").write_text("built by trusted code")
    (tmp_path / "hidden.txt").write_text("not exposed")
    with Lane(None, spares=0, limits=SMALL, prewarm=(), expose=[cache]) as lane:
        outcome = lane.run("exposed_entry:run", {"cache": str(cache)})
    assert outcome.result == {"names": ["kernel.so"], "text": "built by trusted code"}


@pytest.mark.skipif(not ROOT, reason="the uid drop needs root")
def test_an_import_path_the_dropped_uid_could_not_read_is_an_infra_error(tmp_path, monkeypatch):
    private_modules(tmp_path, monkeypatch)
    with Lane(None, spares=0, limits=SMALL, prewarm=(), disable=("mount_namespace",)) as lane:
        outcome = lane.run("private_entry:run", {})
    assert outcome.result is None
    assert outcome.error.startswith("infra: isolation: after the uid drop the interpreter or import path")


def test_tcp_to_localhost_is_blocked_by_the_detected_layers(lane):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        outcome = lane.run("hostile_entries:connect_tcp", {"port": server.getsockname()[1]})
    if not (outcome.layers["net_namespace"] or outcome.layers["seccomp"]):
        pytest.skip(f"neither a network namespace nor seccomp on this host: {outcome.layers}")
    expected = "PermissionError" if outcome.layers["seccomp"] else "OSError"
    assert outcome.result["connected"] is False
    assert outcome.result["error"] in (expected, "ConnectionRefusedError")


def test_seccomp_denies_debugging_and_namespaces_but_not_builds(lane):
    outcome = lane.run("hostile_entries:probe_syscalls", {})
    if not outcome.layers["seccomp"]:
        pytest.skip(f"seccomp unavailable: {outcome.layers}")
    assert outcome.result == {
        "ptrace": "EPERM",
        "unshare_user": "EPERM",
        "unix_socket": "ok",
        "subprocess": "built",
        "thread": "ran",
    }


def test_a_file_past_the_size_limit_fails_the_write(lane):
    outcome = lane.run("hostile_entries:fill_file", {"mib": 2})
    assert outcome.result is None
    assert outcome.error == "entry raised OSError: [Errno 27] File too large"


def test_garbage_on_the_control_socket_ends_the_job_as_a_protocol_violation(lane):
    outcome = lane.run("hostile_entries:forge_protocol", {})
    assert outcome.result is None and not outcome.timed_out and outcome.wall_s < 10
    assert outcome.error.startswith("protocol violation on the control socket: message of 4294967295 bytes")
    assert_nothing_left(outcome)


@pytest.mark.skipif(not ROOT, reason="killing the spare's worker from the test needs root")
def test_a_spare_that_died_while_idle_is_replaced_before_the_job_runs():
    with Lane(None, spares=1, limits=SMALL, prewarm=()) as lane:
        for _ in range(200):
            if lane.health()["live_spares"] == 1:
                break
            time.sleep(0.05)
        os.kill(lane._ready[0].worker_pid, signal.SIGKILL)
        time.sleep(0.2)
        outcome = lane.run("hostile_entries:echo", {"after": "loss"})
        assert outcome.result["echo"] == {"after": "loss"}
        assert lane.health()["spares_lost"] == 1


def test_an_exception_in_the_entry_is_the_job_s_error(lane):
    outcome = lane.run("hostile_entries:raises", {"message": "no kernel"})
    assert outcome.result is None and outcome.exit_code == 0
    assert outcome.error == "entry raised ValueError: no kernel"


def test_a_spare_that_cannot_start_is_an_infra_error():
    with Lane(None, spares=0, prewarm=("solgym_no_such_module",)) as lane:
        outcome = lane.run("hostile_entries:echo", {})
        assert outcome.is_infra_error
        assert outcome.error.startswith("infra: worker failed to start: the worker exited while pre-warming")
        assert "solgym_no_such_module" in outcome.error
        assert lane.health()["start_failures"] == 2


def test_timed_windows_on_one_lane_never_overlap(lane):
    outcomes: list[ChildOutcome] = []
    threads = [
        threading.Thread(
            target=lambda: outcomes.append(lane.run("hostile_entries:timed_window", {"hold_s": 0.4}))
        )
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    first, second = sorted((outcome.result for outcome in outcomes), key=lambda result: result["start"])
    assert first["end"] <= second["start"]
    for outcome in outcomes:
        assert len(outcome.timed_windows_s) == 1 and 0.4 <= outcome.timed_windows_s[0] < 2.0


def test_timing_slots_of_one_gpu_exclude_each_other_across_pools():
    # Two slots for GPU 0 stand for two pools (or processes) sharing it: the per-GPU lock file orders them.
    first, second = TimingSlot(0), TimingSlot(0)
    taken = threading.Event()

    def take() -> None:
        second.acquire()
        taken.set()
        second.release()

    first.acquire()
    thread = threading.Thread(target=take)
    thread.start()
    assert not taken.wait(0.3)
    first.release()
    assert taken.wait(5.0)
    thread.join()
    first.close()
    second.close()


def test_spares_are_replenished_after_jobs(lane):
    lane.run("hostile_entries:segfault", {})
    for _ in range(200):
        if lane.health()["live_spares"] == 2:
            break
        time.sleep(0.05)
    health = lane.health()
    assert health["live_spares"] == 2 and health["spares_lost"] == 0
    assert health["children_replaced"] >= health["jobs_done"]


def test_run_entry_returns_the_result_or_raises_with_the_outcome():
    assert run_entry("hostile_entries:echo", {"k": 1}, limits=SMALL)["echo"] == {"k": 1}
    with pytest.raises(SandboxError) as raised:
        run_entry("hostile_entries:exit_early", {}, limits=SMALL)
    assert raised.value.outcome.exit_code == 3


def test_a_payload_that_is_not_json_is_refused_before_any_child_runs(lane):
    with pytest.raises(TypeError):
        lane.run("hostile_entries:echo", {"bad": object()})


def test_closing_a_lane_leaves_no_process_and_no_directory():
    lane = Lane(None, spares=2, limits=SMALL, prewarm=())
    lane.run("hostile_entries:echo", {})
    base = str(lane.base)
    lane.close()
    lane.close()
    assert processes_with(base) == []
    assert not Path(base).exists()


def test_a_payload_may_lower_the_wall_limit_but_never_raise_it():
    with Lane(None, spares=0, limits=Limits(wall_s=100.0), prewarm=()) as lane:
        assert lane._limits_for({"wall_s": 5}).wall_s == 5.0
        assert lane._limits_for({"wall_s": 1000}).wall_s == 100.0
        assert lane._limits_for({"wall_s": "1"}).wall_s == 100.0
        assert lane._limits_for({}).wall_s == 100.0
