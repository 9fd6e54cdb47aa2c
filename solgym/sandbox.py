"""Single-use isolated child processes for evaluations (DESIGN §8, §11.12, §11.13).

A `Lane` owns one device (a GPU index, or None for the CPU) and keeps `spares` pre-warmed children ready,
so that the 4-6 s start of a Python+CUDA process stays off the critical path. A child takes exactly one
job and exits; the lane starts a fresh spare in the background.

The job is an *entry*: ``"module:function"``, called inside the child as ``function(payload, ctx)`` and
returning a JSON-able dict. `ctx` is a `ChildContext`:

- ``ctx.device``: the GPU index (CUDA_VISIBLE_DEVICES holds only that GPU, so it is ``cuda:0``), None on CPU.
- ``ctx.workdir``: this evaluation's private directory; HOME, TMPDIR (``workdir/tmp``), TRITON_CACHE_DIR
  (``workdir/triton``) and TORCH_EXTENSIONS_DIR (``workdir/torch_extensions``) point into it unless the
  payload names a trusted shared cache that the entry sets up itself.
- ``ctx.drop_privileges()``: trusted code calls it right before the untrusted action is imported. From root
  it switches to the child's own unprivileged uid/gid (so RLIMIT_NPROC bites and nothing owned by root can
  be written), hands it the workdir, sets PR_SET_NO_NEW_PRIVS and installs the seccomp filter. Not root:
  no uid change (``layers["uid_drop"]`` is None).
- ``with ctx.timed():``: holds the lane's timing slot; one timed window per lane at a time (per GPU across
  the whole host, through a lock file), and the parent measures each window
  (``ChildOutcome.timed_windows_s``) with its own clock.
- ``ctx.report_stage(name)``: a progress mark the parent timestamps (``ChildOutcome.stages_s``).
- ``ctx.layers``: the isolation layers active in this child.

What the child returns, or how it died, comes back as a `ChildOutcome`. Failures of solgym itself (a
spare that cannot start, a supervisor that does not answer) have an `error` starting with ``"infra:"``;
every other failure is the job's.

The pool's process never initialises CUDA: GPU memory is read through NVML only.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from solgym import triton_cache
from solgym._child import UID_BASE, ChildContext, MessageReader, ProtocolError, send_message

__all__ = [
    "ChildContext",
    "ChildOutcome",
    "Lane",
    "Limits",
    "SandboxError",
    "TimingSlot",
    "child_environment",
    "run_entry",
]

CHILD_SCRIPT = Path(__file__).resolve().with_name("_child.py")
PACKAGE_PARENT = str(Path(__file__).resolve().parent.parent)
UID_SPAN = 1 << 22  # pid_max can not exceed 2**22

# Passed through from the pool's environment when set: what compilers, CUDA and Triton need, nothing else
# (no tokens, keys, proxies or Python settings).
PASSED_ENV = (
    "PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "LD_LIBRARY_PATH", "CUDA_HOME", "CUDA_PATH", "CUDA_ROOT",
    "TORCH_CUDA_ARCH_LIST", "MAX_JOBS", "CC", "CXX", "NVCC_CCBIN", "OMP_NUM_THREADS", "TRITON_PTXAS_PATH",
    "TRITON_CUOBJDUMP_PATH", "TRITON_NVDISASM_PATH", "TRITON_LIBCUDA_PATH",
    "SOLGYM_TRACE_DATA",  # the trusted trace dataset whose blobs hold workloads' index tensors (exposed too)
)  # fmt: skip
LAYER_NAMES = ("pid_namespace", "net_namespace", "mount_namespace", "seccomp", "uid_drop")
START_TIMEOUT_S = 180.0
EXIT_GRACE_S = 10.0
WINDOW_CAP = 10_000  # timed windows recorded per job
TMPFS_CAP = 1 << 30  # size of the child's private /tmp and /dev/shm (memory, not counted by RLIMIT_DATA)
NOT_ACCEPTED = "infra: the worker died before it took the job"


@dataclass(frozen=True)
class Limits:
    """Resource limits of one job. `wall_s` counts from the moment the job reaches the child (time spent
    waiting for the lane's timing slot is added back); the rlimits are set with soft = hard."""

    wall_s: float = 600.0
    data_bytes: int | None = 16 << 30  # RLIMIT_DATA; never RLIMIT_AS, which breaks CUDA start-up
    nofile: int = 1024
    nproc: int = 256  # bites because the child runs as its own unprivileged uid
    fsize_bytes: int = 4 << 30
    output_bytes: int = 1 << 20  # stdout+stderr kept (tails); the rest is read and discarded
    core: bool = False


@dataclass
class ChildOutcome:
    """What one job in one child came to. `result` is what the entry returned (None if it raised or the
    child died first); `error` says why it failed, empty when it did not."""

    result: dict | None
    exit_code: int | None
    signal: int | None
    timed_out: bool
    stdout_tail: str
    stderr_tail: str
    wall_s: float
    timed_windows_s: list[float] = field(default_factory=list)
    stages_s: dict[str, float] = field(default_factory=dict)
    layers: dict[str, object] = field(default_factory=dict)
    gpu_memory_leak_bytes: int | None = None
    error: str = ""

    @property
    def ok(self) -> bool:
        """The entry returned a result."""
        return self.result is not None and not self.error

    @property
    def is_infra_error(self) -> bool:
        """solgym's own fault, not the job's."""
        return self.error.startswith("infra:")

    def to_dict(self) -> dict:
        """Plain JSON-able data."""
        return asdict(self)


class SandboxError(RuntimeError):
    """An entry run by `run_entry` did not return a result."""

    def __init__(self, outcome: ChildOutcome) -> None:
        super().__init__(outcome.error)
        self.outcome = outcome


def _infra_outcome(reason: str, stderr: str = "") -> ChildOutcome:
    return ChildOutcome(None, None, None, False, "", stderr, 0.0, error=f"infra: {reason}")


def child_environment(device: int | None, workdir: Path) -> dict[str, str]:
    """The complete environment of a child: an allow-list of the pool's variables plus the child's own."""
    env = {name: os.environ[name] for name in PASSED_ENV if name in os.environ}
    # The interpreter's own bin/ (a venv's ninja) comes first so that builds find the same tools.
    env["PATH"] = os.pathsep.join(
        filter(None, (str(Path(sys.executable).parent), env.get("PATH", os.defpath)))
    )
    env.update(
        HOME=str(workdir),
        TMPDIR=str(workdir / "tmp"),
        USER="solgym",
        LOGNAME="solgym",
        TRITON_CACHE_DIR=str(workdir / "triton"),
        TORCH_EXTENSIONS_DIR=str(workdir / "torch_extensions"),
        TORCHINDUCTOR_CACHE_DIR=str(workdir / "inductor"),
        # NVML numbers GPUs in PCI order; CUDA must agree or the child would time another GPU.
        CUDA_DEVICE_ORDER="PCI_BUS_ID",
        CUDA_VISIBLE_DEVICES="" if device is None else str(device),
    )
    if device is None:
        # Triton runs on a CPU only through its interpreter.
        env["TRITON_INTERPRET"] = os.environ.get("TRITON_INTERPRET", "1")
        env["OMP_NUM_THREADS"] = cpu_child_threads()
    return env


def cpu_child_threads() -> str:
    """Intra-op threads of a CPU-mode child: `OMP_NUM_THREADS` as the pool's environment sets it, else 1.
    CPU jobs run side by side (two per lane) next to other work; a child whose parallel regions need a
    core that another process holds waits for it, and one eager baseline read 46 ms instead of 0.24 ms
    that way (docs/evaluation.md). CPU-mode shapes are small, so one thread costs them little."""
    return os.environ.get("OMP_NUM_THREADS") or "1"


def _needed_paths(
    sys_path: list[str], env: dict[str, str], expose: Sequence[str]
) -> tuple[list[str], list[str]]:
    """Directories the child must still read after the uid drop: the interpreter and its import path
    (essential), then also the toolchains its environment names and the trusted directories in `expose`."""
    essential = [
        sys.prefix,
        sys.base_prefix,
        sys.exec_prefix,
        str(Path(sys.executable).resolve().parent),
        *sys_path,
    ]
    tools = [
        *(env.get(name, "") for name in ("CUDA_HOME", "CUDA_PATH", "CUDA_ROOT")),
        *env.get("PATH", "").split(os.pathsep),
        *env.get("LD_LIBRARY_PATH", "").split(os.pathsep),
        *expose,
    ]

    def existing(paths: list[str]) -> list[str]:
        return list(dict.fromkeys(p for p in paths if p and os.path.isabs(p) and os.path.isdir(p)))

    return existing(essential), existing(essential + tools)


class _Tail(threading.Thread):
    """Drains one pipe so that the child never blocks on it, keeping the last `cap` bytes."""

    def __init__(self, stream, cap: int) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.cap = cap
        self.data = bytearray()
        self.discarded = 0
        self.start()

    def run(self) -> None:
        while chunk := self.stream.read1(1 << 16):
            self.data += chunk
            if len(self.data) > self.cap:
                excess = len(self.data) - self.cap
                self.discarded += excess
                del self.data[:excess]
        self.stream.close()

    def text(self) -> str:
        prefix = f"[{self.discarded} earlier bytes discarded]\n" if self.discarded else ""
        return prefix + self.data.decode(errors="replace")


class _StatusPipe:
    """Line-oriented reader of the supervisor's status pipe (written only by the root supervisor)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = b""
        self.closed = False

    def read(self, timeout: float) -> dict | None:
        end = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            if self.closed:
                return None
            readable, _, _ = select.select([self.fd], [], [], max(0.0, end - time.monotonic()))
            if not readable:
                return None
            chunk = os.read(self.fd, 65536)
            if not chunk:
                self.closed = True
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return json.loads(line)

    def close(self) -> None:
        os.close(self.fd)


def _processes_of_uid(uid: int) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(os.path.join(entry.path, "status"), "rb") as status:
                for line in status:
                    if line.startswith(b"Uid:"):
                        if int(line.split()[1]) == uid:
                            found.append(int(entry.name))
                        break
        except (OSError, ValueError):
            continue
    return found


def _kill_uid(uid: int, limit_s: float = 5.0) -> int:
    """SIGKILL every process whose real uid is `uid` until none is left; the count killed. Only ever
    called with a child's own uid (UID_BASE + its supervisor's pid), which no other process has."""
    if not UID_BASE <= uid < UID_BASE + UID_SPAN:
        raise ValueError(f"refusing to sweep uid {uid}: not a child uid")
    killed = 0
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        pids = _processes_of_uid(uid)
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                killed += 1
        time.sleep(0.01)
    return killed


def _nvml_process_memory(device: int) -> dict[int, int] | None:
    """Device memory held per process on GPU `device` (NVML, never CUDA); None when NVML is unavailable."""
    try:
        import pynvml

        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(device)
        return {p.pid: int(p.usedGpuMemory or 0) for p in pynvml.nvmlDeviceGetComputeRunningProcesses(handle)}
    except Exception:
        return None


def _gpu_key(device: int) -> str:
    """A host-wide name for GPU `device`: its NVML UUID, else its index."""
    try:
        import pynvml

        pynvml.nvmlInit()
        uuid = pynvml.nvmlDeviceGetUUID(pynvml.nvmlDeviceGetHandleByIndex(device))
        return uuid.decode() if isinstance(uuid, bytes) else str(uuid)
    except Exception:
        return f"gpu{device}"


class TimingSlot:
    """One timed window per device at a time: across the threads of this process by a lock and, for a
    GPU, across processes of this host (several pools sharing a GPU) by flock on a per-GPU lock file."""

    def __init__(self, device: int | None) -> None:
        self._lock = threading.Lock()
        self._fd: int | None = None
        if device is not None:
            path = Path(tempfile.gettempdir()) / f"solgym-timing-{_gpu_key(device)}.lock"
            self._fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)

    def acquire(self) -> None:
        """Block until the slot is free, then hold it."""
        self._lock.acquire()
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_EX)

    def release(self) -> None:
        """Give the slot back."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._lock.release()

    def close(self) -> None:
        """Drop the lock file handle (the slot must not be held)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _failure(
    reply: dict | None, exit_code: int | None, sig: int | None, timed_out: bool, protocol: str, limits: Limits
) -> str:
    """Why a job failed, for humans; empty when the entry returned a result."""
    if timed_out:
        return f"exceeded wall limit {limits.wall_s:g} s"
    if protocol:
        return f"protocol violation on the control socket: {protocol}"
    if reply is not None and reply.get("t") == "result":
        return ""
    if reply is not None:
        kind, message = reply.get("kind", "?"), reply.get("message", "")
        if kind == "IsolationError":
            return f"infra: isolation: {message}"
        if kind == "MemoryError":
            limit = "" if limits.data_bytes is None else f" (RLIMIT_DATA {limits.data_bytes >> 20} MiB)"
            return f"memory limit{limit}: entry raised MemoryError"
        return f"entry raised {kind}: {message}"
    if sig == signal.SIGXFSZ:
        return f"file size limit (RLIMIT_FSIZE {limits.fsize_bytes} bytes): killed by SIGXFSZ"
    if sig == signal.SIGKILL:
        return "killed by SIGKILL (the kernel's out-of-memory killer?)"
    if sig is not None:
        return f"killed by {_signal_name(sig)}"
    return f"exited with code {exit_code} before returning a result"


class _Child:
    """One started child: supervisor process, worker, pipes and sockets, as the pool sees them."""

    def __init__(self, lane: Lane) -> None:
        self.lane = lane
        self.workdir = lane.base / f"job-{os.urandom(6).hex()}"
        self.workdir.mkdir(mode=0o700)
        for sub in ("tmp", "triton", "torch_extensions", "inductor"):
            (self.workdir / sub).mkdir(mode=0o700)
        sys_path = [PACKAGE_PARENT, *(p for p in sys.path if os.path.isabs(p) and os.path.isdir(p))]
        env = child_environment(lane.device, self.workdir)
        essential, keep = _needed_paths(sys_path, env, lane.expose)
        control, control_child = socket.socketpair()
        status_read, status_write = os.pipe()
        config = {
            "device": lane.device,
            "workdir": str(self.workdir),
            "control_fd": control_child.fileno(),
            "status_fd": status_write,
            "prewarm": list(lane.prewarm),
            "init_cuda": lane.init_cuda,
            "disable": sorted(lane.disable),
            "sys_path": sys_path,
            "essential": essential,
            "keep": keep,
            "tmpfs_bytes": min(lane.limits.fsize_bytes, TMPFS_CAP),
        }
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-I", str(CHILD_SCRIPT), json.dumps(config)],
                stdin=subprocess.PIPE,  # the lifeline: closing it makes the supervisor kill the worker
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                cwd=self.workdir,
                start_new_session=True,
                pass_fds=(control_child.fileno(), status_write),
            )
        finally:
            control_child.close()
            os.close(status_write)
        self.reader = MessageReader(control)
        self.status = _StatusPipe(status_read)
        cap = max(1, lane.limits.output_bytes // 2)
        self.stdout, self.stderr = _Tail(self.proc.stdout, cap), _Tail(self.proc.stderr, cap)
        self.worker_pid: int | None = None
        self.worker_pidfd: int | None = None
        self.triton_shared: Path | None = None  # the action's shared Triton cache (GPU jobs that name one)
        self.uid: int | None = None
        self.layers: dict[str, object] = {
            "process_group": True,
            "scrubbed_env": True,
            "private_workdir": True,
        }
        self.exit: dict | None = None
        self.finished = False
        self.nvml_sees_worker = False

    def wait_ready(self, timeout: float) -> str:
        """Wait until the worker has pre-warmed; an empty string, or why it did not."""
        started = self.status.read(timeout)
        if started is None or started.get("t") != "started":
            return "the supervisor did not start"
        self.worker_pid, self.uid = started["worker_pid"], started["uid"]
        self.layers.update(started["layers"])
        with contextlib.suppress(ProcessLookupError):
            self.worker_pidfd = os.pidfd_open(self.worker_pid)
        try:
            ready = self.reader.read(timeout)
        except (TimeoutError, ProtocolError) as exc:
            return f"the worker did not get ready in {timeout:g} s ({type(exc).__name__})"
        if ready is None or ready.get("t") != "ready":
            return "the worker exited while pre-warming"
        self.layers.update(ready["layers"])
        return ""

    def alive(self) -> bool:
        """Still waiting for its job (checks without blocking)."""
        if self.proc.poll() is not None:
            return False
        readable, _, _ = select.select([self.reader.sock, self.status.fd], [], [], 0)
        return not readable

    def _kill_worker(self) -> None:
        if self.worker_pidfd is not None:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self.worker_pidfd, signal.SIGKILL)
        with contextlib.suppress(OSError):
            self.proc.stdin.close()

    def run(self, entry: str, payload: dict, limits: Limits) -> ChildOutcome:
        """Hand the job over and follow it to the end; always tears the child down."""
        timing = self.lane.timing
        self.stdout.cap = self.stderr.cap = max(1, limits.output_bytes // 2)
        # NVML names processes by host pid: only where it lists this worker can a leak be attributed.
        held = _nvml_process_memory(self.lane.device) if self.lane.device is not None else None
        self.nvml_sees_worker = held is not None and self.worker_pid in held
        start = time.perf_counter()
        deadline = start + limits.wall_s
        reply, protocol, timed_out = None, "", False
        windows: list[float] = []
        stages: dict[str, float] = {}
        grant_at: float | None = None
        final_layers = accepted = False
        shared_cache = payload.get("triton_cache")
        if shared_cache and self.lane.device is not None:
            self.triton_shared = Path(shared_cache)
            with contextlib.suppress(OSError):  # a cache, never a reason to fail
                triton_cache.seed(self.triton_shared, self.workdir / "triton")
        try:
            send_message(
                self.reader.sock, {"t": "job", "entry": entry, "payload": payload, "limits": asdict(limits)}
            )
        except OSError:
            pass  # the worker died since it was checked: the end of stream below says so
        while True:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                timed_out = True
                break
            try:
                message = self.reader.read(remaining)
            except TimeoutError:
                continue
            except ProtocolError as exc:
                protocol = str(exc)
                break
            if message is None:
                break
            kind = message.get("t")
            if kind == "accepted":
                accepted = True
            elif kind == "timed_acquire" and grant_at is None:
                asked = time.perf_counter()
                timing.acquire()
                grant_at = time.perf_counter()
                deadline += grant_at - asked
                with contextlib.suppress(OSError):
                    send_message(self.reader.sock, {"t": "granted"})
            elif kind == "timed_release" and grant_at is not None:
                if len(windows) < WINDOW_CAP:
                    windows.append(time.perf_counter() - grant_at)
                grant_at = None
                timing.release()
            elif kind == "stage" and len(stages) < 64:
                stages.setdefault(str(message.get("name"))[:64], time.perf_counter() - start)
            elif kind == "layers" and not final_layers and isinstance(message.get("layers"), dict):
                # Trusted code sends these before the action is imported; later ones could be forged.
                self.layers.update(message["layers"])
                final_layers = "uid_drop" in message["layers"]
            elif kind in ("result", "error"):
                reply = message
                break
        wall = time.perf_counter() - start
        if reply is None:
            self._kill_worker()
        self.exit = self.status.read(max(0.0, min(deadline - time.perf_counter(), EXIT_GRACE_S)))
        if self.exit is None:
            self._kill_worker()
            self.exit = self.status.read(EXIT_GRACE_S)
        if grant_at is not None:
            windows.append(time.perf_counter() - grant_at)
            timing.release()
        infra = self.teardown()
        leak = self._gpu_memory_leak()
        exit_code = sig = None
        if self.exit is not None:
            exit_code, sig = self.exit.get("code"), self.exit.get("signal")
        result = reply.get("result") if reply is not None and reply.get("t") == "result" else None
        if result is not None and not isinstance(result, dict):
            result, protocol = None, f"the entry returned {type(result).__name__}, not a dict"
        if not infra and not accepted and not timed_out:
            infra = NOT_ACCEPTED
        error = infra or _failure(reply, exit_code, sig, timed_out, protocol, limits)
        return ChildOutcome(
            result=result,
            exit_code=exit_code,
            signal=sig,
            timed_out=timed_out,
            stdout_tail=self.stdout.text(),
            stderr_tail=self.stderr.text(),
            wall_s=wall,
            timed_windows_s=windows,
            stages_s=stages,
            layers=dict(self.layers),
            gpu_memory_leak_bytes=leak,
            error=error,
        )

    def teardown(self) -> str:
        """Kill whatever is left of the child, reap it, remove its workdir. Returns an "infra:" reason
        when the supervisor did not do its part."""
        if self.finished:
            return ""
        self.finished = True
        infra = ""
        self._kill_worker()
        if self.exit is None:
            self.exit = self.status.read(EXIT_GRACE_S)
        try:
            self.proc.wait(EXIT_GRACE_S)
        except subprocess.TimeoutExpired:
            infra = "infra: the supervisor did not exit; killed its process group"
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        if self.exit is None and not infra and self.worker_pid is not None:
            infra = "infra: the supervisor exited without reporting the worker's status"
        if self.uid is not None:
            _kill_uid(self.uid)
        for tail in (self.stdout, self.stderr):
            tail.join(EXIT_GRACE_S)
        self.status.close()
        self.reader.sock.close()
        if self.worker_pidfd is not None:
            os.close(self.worker_pidfd)
        if self.triton_shared is not None:  # every process of the child is gone: its files hold still
            with contextlib.suppress(OSError):
                triton_cache.harvest(self.workdir / "triton", self.triton_shared)
                if os.urandom(1)[0] < 4:  # about one harvest in 64 checks the root's budget
                    triton_cache.trim(self.triton_shared.parent)
        shutil.rmtree(self.workdir, ignore_errors=True)
        return infra

    def _gpu_memory_leak(self) -> int | None:
        """Device memory NVML still attributes to the worker after it was killed and reaped; None on CPU,
        without NVML, or where NVML does not list the worker (a CUDA context not yet made, or another PID
        namespace)."""
        if not self.nvml_sees_worker:
            return None
        for _ in range(20):
            held = _nvml_process_memory(self.lane.device)
            if held is None:
                return None
            if self.worker_pid not in held:
                return 0
            time.sleep(0.1)
        return held[self.worker_pid]


class Lane:
    """One device (GPU index, or None for the CPU) with `spares` pre-warmed children ready.

    `run` is thread-safe and several jobs may run at once (builds overlap), but `ctx.timed()` windows of
    one lane never overlap. `disable` names isolation layers to leave out (see LAYER_NAMES), for hosts where
    one of them breaks a toolchain. `expose` lists trusted directories children must read after the uid
    drop (read-only), such as a shared build cache; None means solgym's cache directory
    (`$SOLGYM_CACHE` or `~/.cache/solgym`).
    """

    def __init__(
        self,
        device: int | None,
        *,
        spares: int = 1,
        limits: Limits = Limits(),  # noqa: B008 - frozen, shared safely
        prewarm: Sequence[str] = ("torch",),
        init_cuda: bool = True,
        disable: Sequence[str] = (),
        expose: Sequence[str | Path] | None = None,
    ) -> None:
        unknown = set(disable) - set(LAYER_NAMES)
        if unknown:
            raise ValueError(f"unknown isolation layers {sorted(unknown)}; known: {', '.join(LAYER_NAMES)}")
        self.device = device
        self.spares = spares
        self.limits = limits
        self.prewarm = tuple(prewarm)
        self.init_cuda = init_cuda
        self.disable = frozenset(disable)
        if expose is None:
            from solgym.inputs import TRACE_DATA_ENV
            from solgym.rewards import cache_dir

            # The cache, and the trace dataset where one is named: children read blobs from it.
            expose = [cache_dir(), *filter(None, [os.environ.get(TRACE_DATA_ENV)])]
        self.expose = [str(Path(path).resolve()) for path in expose]
        self.timing = TimingSlot(device)
        self.base = Path(tempfile.mkdtemp(prefix=f"solgym-lane-{'cpu' if device is None else device}-"))
        self.base.chmod(0o711)  # the child's uid must traverse it to reach its own workdir
        self._cond = threading.Condition()
        self._ready: deque[_Child] = deque()
        self._starting = 0
        self._start_failures = 0  # consecutive failed starts of spares
        self._running = 0
        self._closed = False
        self.stats = {"jobs_done": 0, "children_started": 0, "spares_lost": 0, "start_failures": 0}
        self._refill = threading.Thread(target=self._keep_spares, name=f"solgym-lane-{device}", daemon=True)
        if spares > 0:
            self._refill.start()

    def _start_child(self) -> tuple[_Child | None, str]:
        try:
            child = _Child(self)
        except OSError as exc:
            return None, f"could not start a worker: {exc}"
        reason = child.wait_ready(START_TIMEOUT_S)
        with self._cond:
            self.stats["children_started"] += 1
        if reason:
            child.teardown()
            with self._cond:
                self.stats["start_failures"] += 1
            tail = child.stderr.text()[-2000:]
            return None, f"{reason}: {tail.strip()}" if tail.strip() else reason
        return child, ""

    def _keep_spares(self) -> None:
        # Spares start side by side, each in its own thread: a child takes seconds to start (Python, torch,
        # CUDA, the prewarm), longer than a cached evaluation runs, so one start at a time would cap a lane
        # at one evaluation per start time.
        while True:
            with self._cond:
                while not self._closed and len(self._ready) + self._starting >= self.spares:
                    self._cond.wait()
                if self._closed:
                    return
                self._starting += 1
                backoff = min(30.0, 0.5 * 2**self._start_failures) if self._start_failures else 0.0
            threading.Thread(target=self._start_spare, name=f"{self._refill.name}-start", daemon=True).start()
            if backoff:  # starts are failing (a broken prewarm module): slow down, never give up on the lane
                with self._cond:
                    self._cond.wait(backoff)

    def _start_spare(self) -> None:
        child, _ = self._start_child()
        with self._cond:
            kept = child is not None and not self._closed
            if kept:
                self._ready.append(child)
        if child is not None and not kept:
            child.teardown()
        with self._cond:  # counted as starting until torn down, so that `close` waits for it
            self._starting -= 1
            self._start_failures = 0 if child is not None else self._start_failures + 1
            self._cond.notify_all()

    def _take(self) -> tuple[_Child | None, str]:
        with self._cond:
            while self._ready:
                child = self._ready.popleft()
                self._cond.notify_all()
                if child.alive():
                    return child, ""
                self.stats["spares_lost"] += 1
                threading.Thread(target=child.teardown, daemon=True).start()
        reason = ""
        for _ in range(2):
            child, reason = self._start_child()
            if child is not None:
                return child, ""
        return None, reason

    def run(self, entry: str, payload: dict, *, limits: Limits | None = None) -> ChildOutcome:
        """Run one job in a fresh child of this lane and return how it went. Never raises for anything
        the job does; raises TypeError for a payload that is not JSON and RuntimeError on a closed lane."""
        json.dumps(payload)
        with self._cond:
            if self._closed:
                raise RuntimeError("this lane is closed")
            self._running += 1
        try:
            for _ in range(2):  # a worker lost before it took the job is our fault: one more try
                child, reason = self._take()
                if child is None:
                    return _infra_outcome(f"worker failed to start: {reason}")
                outcome = child.run(entry, payload, limits or self._limits_for(payload))
                if outcome.error != NOT_ACCEPTED:
                    break
            with self._cond:
                self.stats["jobs_done"] += 1
            return outcome
        finally:
            with self._cond:
                self._running -= 1
                self._cond.notify_all()

    def _limits_for(self, payload: dict) -> Limits:
        """The lane's limits, with the wall limit lowered to the payload's `wall_s` where trusted code that
        wrote the payload asked for less (a torch.compile baseline that must not eat an anchoring run)."""
        asked = payload.get("wall_s")
        if isinstance(asked, int | float) and 0 < asked < self.limits.wall_s:
            return replace(self.limits, wall_s=float(asked))
        return self.limits

    def health(self) -> dict:
        """Live spares, jobs running and done, children started and replaced (beyond the first spares),
        spares lost while idle, start failures."""
        with self._cond:
            live = sum(child.alive() for child in self._ready)
            replaced = max(0, self.stats["children_started"] - self.spares)
            return {
                "device": self.device,
                "live_spares": live,
                "running": self._running,
                "children_replaced": replaced,
                **self.stats,
            }

    def close(self) -> None:
        """Stop refilling, kill the spares, wait for running jobs and starting spares, remove the lane's
        directory."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
            spares, self._ready = list(self._ready), deque()
        for child in spares:
            child.teardown()
        if self._refill.is_alive():
            self._refill.join()
        with self._cond:
            while self._running or self._starting:
                self._cond.wait()
        self.timing.close()
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> Lane:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_entry(entry: str, payload: dict, *, device: int | None = None, limits: Limits | None = None) -> dict:
    """Run one entry in a one-off isolated child (no spare kept) and return what it returned. Raises
    SandboxError, carrying the ChildOutcome, when it returned nothing."""
    with Lane(device, spares=0, limits=limits or Limits(), prewarm=()) as lane:
        outcome = lane.run(entry, payload)
    if not outcome.ok:
        raise SandboxError(outcome)
    return outcome.result
