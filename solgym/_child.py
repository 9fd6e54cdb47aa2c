"""The inside of one sandboxed evaluation child (see `solgym.sandbox` for the contract).

This file is started as a script (`python -I .../solgym/_child.py CONFIG`), not as `-m solgym._child`:
importing the `solgym` package imports torch, and a lane that pre-warms nothing must start in tens of
milliseconds. It therefore uses the standard library only.

One child is two processes:

- the **supervisor** (root, a bare interpreter): makes itself a child subreaper, moves its future children
  into a new PID namespace where the host allows it, forks the worker, and then only waits. When the
  worker exits, or when the pool closes the supervisor's stdin (the lifeline), it kills the worker and
  every descendant left (orphans re-parent to it, and in a PID namespace the worker's death kills them
  all), reports the worker's exit status on its status pipe and exits.
- the **worker**: PID 1 of that namespace. It enters network and mount namespaces, mounts a private
  /proc, /tmp and /dev/shm, imports the pre-warm modules (and initialises CUDA on its pinned GPU), says
  "ready", and waits for exactly one job. It applies the job's resource limits, calls the entry
  function with a `ChildContext`, sends back what the entry returned, and exits.

Messages between the worker and the pool are length-prefixed JSON objects on a socket pair.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import importlib
import json
import os
import platform
import resource
import select
import signal
import socket
import stat
import struct
import sys
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

# A worker's uid is UID_BASE + the supervisor's pid: unique while the child lives, so concurrent children
# cannot signal each other and RLIMIT_NPROC counts one child's processes only. systemd documents
# 1879048192-2147483647 as a range nothing allocates.
UID_BASE = 0x70000000
NOBODY = 65534
MESSAGE_CAP = 64 << 20  # bytes of one message; a larger one is a protocol violation

_libc = ctypes.CDLL(None, use_errno=True)

PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
NAMESPACE_FLAGS = (
    CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET
)

MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_RDONLY = 1
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2


class ProtocolError(Exception):
    """A message on the control socket was malformed or too large."""


class IsolationError(RuntimeError):
    """The child cannot be isolated as configured (solgym's or the host's fault, never the job's)."""


def send_message(sock: socket.socket, message: dict) -> None:
    """Send one length-prefixed JSON object."""
    data = json.dumps(message).encode()
    sock.sendall(struct.pack(">I", len(data)) + data)


class MessageReader:
    """Reads length-prefixed JSON objects from a socket, with a timeout that never loses a partial message."""

    def __init__(self, sock: socket.socket, cap: int = MESSAGE_CAP) -> None:
        self.sock = sock
        self.cap = cap
        self._buffer = bytearray()

    def read(self, timeout: float | None = None) -> dict | None:
        """The next message; None at end of stream. Raises TimeoutError when none is complete in `timeout`
        seconds, ProtocolError on garbage."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            message = self._take()
            if message is not None:
                return message
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            readable, _, _ = select.select([self.sock], [], [], wait)
            if not readable:
                raise TimeoutError
            try:
                chunk = self.sock.recv(1 << 20)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                if self._buffer:
                    raise ProtocolError(f"stream ended inside a message ({len(self._buffer)} bytes pending)")
                return None
            self._buffer += chunk

    def _take(self) -> dict | None:
        if len(self._buffer) < 4:
            return None
        (size,) = struct.unpack(">I", self._buffer[:4])
        if size > self.cap:
            raise ProtocolError(f"message of {size} bytes exceeds the cap of {self.cap}")
        if len(self._buffer) < 4 + size:
            return None
        body = bytes(self._buffer[4 : 4 + size])
        del self._buffer[: 4 + size]
        try:
            message = json.loads(body)
        except ValueError as exc:
            raise ProtocolError(f"message is not JSON: {exc}") from None
        if not isinstance(message, dict):
            raise ProtocolError("message is not a JSON object")
        return message


class ChildContext:
    """What an entry function receives inside the child.

    `device` is the GPU index this child is pinned to (CUDA_VISIBLE_DEVICES holds only that GPU, so it is
    `cuda:0` here), None on a CPU lane. `workdir` is this evaluation's private directory (also HOME,
    TMPDIR, TRITON_CACHE_DIR and TORCH_EXTENSIONS_DIR live in it). `layers` names the isolation layers
    active in this child; `drop_privileges()` adds the ones it applies.
    """

    def __init__(
        self,
        device: int | None,
        workdir: Path,
        layers: dict,
        reader: MessageReader,
        uid: int,
        disabled: frozenset[str],
        essential: tuple[str, ...] = (),
    ) -> None:
        self.device = device
        self.workdir = workdir
        self.layers = layers
        self._control = reader.sock
        self._reader = reader
        self._uid = uid
        self._disabled = disabled
        self._dropped = False
        self._essential = essential

    def drop_privileges(self) -> None:
        """Call right before the untrusted action is imported. From root: switch to this child's own
        unprivileged uid/gid (setgroups([]), setgid, setuid) so that RLIMIT_NPROC bites and nothing owned by
        root can be written, handing it the workdir. Then set PR_SET_NO_NEW_PRIVS and install the seccomp
        filter. Not root: no uid change (recorded as such). Calling it twice does nothing."""
        if self._dropped:
            return
        self._dropped = True
        if os.geteuid() == 0 and "uid_drop" not in self._disabled:
            blocked = sorted({ancestor for path in self._essential if (ancestor := blocked_ancestor(path))})
            if blocked:
                raise IsolationError(
                    f"after the uid drop the interpreter or import path would be unreadable behind {blocked} "
                    "and no mount namespace could expose it: install Python where other users can read it"
                )
        try:
            self.layers["uid_drop"] = (
                _drop_uid(self._uid, self.workdir) if "uid_drop" not in self._disabled else None
            )
        except OSError as exc:
            raise IsolationError(f"the uid drop failed: {exc}") from None
        self.layers["no_new_privs"] = _prctl(PR_SET_NO_NEW_PRIVS, 1) == 0
        self.layers["seccomp"] = (
            install_seccomp() if self.layers["no_new_privs"] and "seccomp" not in self._disabled else False
        )
        send_message(self._control, {"t": "layers", "layers": self.layers})

    @contextlib.contextmanager
    def timed(self) -> Iterator[None]:
        """Hold this lane's timing slot: blocks until no other job on the GPU is timing. The parent
        measures the window from grant to release."""
        send_message(self._control, {"t": "timed_acquire"})
        reply = self._reader.read()
        if reply is None or reply.get("t") != "granted":
            raise RuntimeError(f"the pool did not grant the timing slot (got {reply!r})")
        try:
            yield
        finally:
            send_message(self._control, {"t": "timed_release"})

    def report_stage(self, name: str) -> None:
        """Mark the start of a stage (build, correctness, timing); the parent timestamps it."""
        send_message(self._control, {"t": "stage", "name": str(name)[:64]})


def _prctl(option: int, value: int) -> int:
    return _libc.prctl(option, ctypes.c_ulong(value), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0))


def _unshare(flags: int) -> bool:
    return _libc.unshare(ctypes.c_int(flags)) == 0


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> bool:
    def arg(text: str | None) -> bytes | None:
        return None if text is None else text.encode()

    return _libc.mount(arg(source), arg(target), arg(fstype), ctypes.c_ulong(flags), arg(data)) == 0


def _mapped(uid: int) -> bool:
    """Whether `uid` exists in this process's user namespace (a container may map only a small range)."""
    try:
        lines = Path("/proc/self/uid_map").read_text().splitlines()
    except OSError:
        return False
    for line in lines:
        inside, _, count = (int(field) for field in line.split())
        if inside <= uid < inside + count:
            return True
    return False


def _drop_uid(uid: int, workdir: Path) -> str | None:
    """Switch every thread of this process to `uid` (or to nobody where `uid` is not mapped) and hand it
    the workdir. Returns a description of the uid, None when not root."""
    if os.geteuid() != 0:
        return None
    if not _mapped(uid):
        uid = NOBODY
    for root, dirs, files in os.walk(workdir):
        for name in (*dirs, *files):
            os.lchown(os.path.join(root, name), uid, uid)
    os.chown(workdir, uid, uid)
    # glibc applies set*id to every thread of the process, so threads started by torch drop too.
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    if os.getuid() != uid or os.geteuid() != uid:
        raise IsolationError(f"uid drop to {uid} did not take")
    return f"nobody({NOBODY})" if uid == NOBODY else f"per-child uid {uid}"


# --- seccomp -------------------------------------------------------------------------------------------

AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
# Denied system calls: debugging/reading other processes, kernel and namespace administration, io_uring
# (whose operations bypass seccomp) and kernel attack surface a kernel build never needs. Nothing that
# CUDA, Triton or a compiler needs (execve, clone without namespace flags, ioctl, mmap...) is here.
DENIED = (
    "ptrace process_vm_readv process_vm_writev mount umount2 pivot_root chroot unshare setns bpf kexec_load "
    "kexec_file_load keyctl add_key request_key perf_event_open init_module finit_module delete_module swapon "
    "swapoff reboot acct userfaultfd open_by_handle_at name_to_handle_at kcmp io_uring_setup io_uring_enter "
    "io_uring_register fsopen fsconfig fsmount fspick open_tree move_mount mount_setattr"
).split()
# System-call numbers: name, x86_64, aarch64 (asm/unistd_64.h and asm-generic/unistd.h).
_SYSCALL_TABLE = """
ptrace 101 117
process_vm_readv 310 270
process_vm_writev 311 271
mount 165 40
umount2 166 39
pivot_root 155 41
chroot 161 51
unshare 272 97
setns 308 268
bpf 321 280
kexec_load 246 104
kexec_file_load 320 294
keyctl 250 219
add_key 248 217
request_key 249 218
perf_event_open 298 241
init_module 175 105
finit_module 313 273
delete_module 176 106
swapon 167 224
swapoff 168 225
reboot 169 142
acct 163 89
userfaultfd 323 282
open_by_handle_at 304 265
name_to_handle_at 303 264
kcmp 312 272
io_uring_setup 425 425
io_uring_enter 426 426
io_uring_register 427 427
fsopen 430 430
fsconfig 431 431
fsmount 432 432
fspick 433 433
open_tree 428 428
move_mount 429 429
mount_setattr 442 442
socket 41 198
clone 56 220
clone3 435 435
seccomp 317 277
"""
SYSCALLS = {
    machine: {row.split()[0]: int(row.split()[column]) for row in _SYSCALL_TABLE.strip().splitlines()}
    for column, machine in ((1, "x86_64"), (2, "aarch64"))
}
AF_UNIX = 1
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
X32_SYSCALL_BIT = 0x40000000

_BPF_LD_W_ABS = 0x20
_BPF_JEQ = 0x15
_BPF_JGE = 0x35
_BPF_JSET = 0x45
_BPF_RET = 0x06
_ARCH_OFFSET = 4
_NR_OFFSET = 0
_ARG0_OFFSET = 16  # low 32 bits of args[0] on little-endian machines


def seccomp_program(machine: str) -> list[tuple[int, int, int, int]]:
    """The BPF filter (code, jt, jf, k) for `machine`: deny DENIED with EPERM, allow only AF_UNIX sockets,
    refuse clone with namespace flags, make clone3 (whose flags BPF cannot read) fail with ENOSYS so that
    libc falls back to clone, and refuse foreign system-call ABIs (int 0x80, x32)."""
    numbers = SYSCALLS[machine]
    deny = ("ret", SECCOMP_RET_ERRNO | errno.EPERM)
    code: list[tuple] = [
        ("ld", _ARCH_OFFSET),
        ("jeq", AUDIT_ARCH[machine], None, "deny"),
        ("ld", _NR_OFFSET),
    ]
    if machine == "x86_64":
        code.append(("jge", X32_SYSCALL_BIT, "deny", None))
    for name in DENIED:
        code.append(("jeq", numbers[name], "deny", None))
    code += [
        ("jeq", numbers["clone3"], "enosys", None),
        ("jeq", numbers["socket"], None, "not_socket"),
        ("ld", _ARG0_OFFSET),
        ("jeq", AF_UNIX, "allow", "deny"),
        ("label", "not_socket"),
        ("jeq", numbers["clone"], None, "allow"),
        ("ld", _ARG0_OFFSET),
        ("jset", NAMESPACE_FLAGS, "deny", "allow"),
        ("label", "allow"),
        ("ret", SECCOMP_RET_ALLOW),
        ("label", "deny"),
        deny,
        ("label", "enosys"),
        ("ret", SECCOMP_RET_ERRNO | errno.ENOSYS),
    ]
    return _assemble(code)


def _assemble(code: list[tuple]) -> list[tuple[int, int, int, int]]:
    labels: dict[str, int] = {}
    instructions = []
    for item in code:
        if item[0] == "label":
            labels[item[1]] = len(instructions)
        else:
            instructions.append(item)
    program = []
    for index, item in enumerate(instructions):
        op = item[0]
        if op == "ld":
            program.append((_BPF_LD_W_ABS, 0, 0, item[1]))
        elif op == "ret":
            program.append((_BPF_RET, 0, 0, item[1]))
        else:
            jumps = [0 if target is None else labels[target] - index - 1 for target in item[2:4]]
            if not all(0 <= jump < 256 for jump in jumps):
                raise ValueError("seccomp program jump out of range")
            opcode = {"jeq": _BPF_JEQ, "jge": _BPF_JGE, "jset": _BPF_JSET}[op]
            program.append((opcode, jumps[0], jumps[1], item[1]))
    return program


class _SockFilter(ctypes.Structure):
    _fields_ = [
        ("code", ctypes.c_ushort),
        ("jt", ctypes.c_ubyte),
        ("jf", ctypes.c_ubyte),
        ("k", ctypes.c_uint32),
    ]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def install_seccomp() -> bool:
    """Install the filter on every thread of this process (needs no_new_privs or root). Returns False,
    never raises, where the architecture is unknown or the kernel refuses: the layer is then absent."""
    machine = platform.machine()
    if machine not in SYSCALLS:
        return False
    program = seccomp_program(machine)
    filters = (_SockFilter * len(program))(*program)
    fprog = _SockFprog(len(program), ctypes.cast(filters, ctypes.POINTER(_SockFilter)))
    seccomp_set_mode_filter, seccomp_filter_flag_tsync = 1, 1
    # TSYNC puts threads that torch or CUDA already started under the filter too.
    result = _libc.syscall(
        ctypes.c_long(SYSCALLS[machine]["seccomp"]),
        ctypes.c_uint(seccomp_set_mode_filter),
        ctypes.c_uint(seccomp_filter_flag_tsync),
        ctypes.byref(fprog),
    )
    return result == 0


# --- namespaces ----------------------------------------------------------------------------------------


def blocked_ancestor(path: str) -> str | None:
    """The topmost directory on the way to `path` that a fresh unprivileged uid cannot enter (no
    execute bit for others, as /root usually is), or None."""
    parts = Path(os.path.realpath(path)).parts
    for depth in range(2, len(parts) + 1):
        ancestor = os.path.join(*parts[:depth])
        try:
            if not os.stat(ancestor).st_mode & stat.S_IXOTH:
                return ancestor
        except OSError:
            return None
    return None


def _private_mounts(workdir: Path, keep: list[str], pid_namespace: bool, tmpfs_bytes: int) -> list[str]:
    """In a fresh mount namespace: stop propagation to the host, then give the child its own /proc (when in
    a PID namespace), /dev/shm and /tmp. Directories the child needs (the workdir read-write; `keep`, the
    interpreter, import path and toolchains, read-only) that lie under /tmp, or behind a directory an
    unprivileged uid cannot enter (a Python installed under /root), are bound back into a fresh tmpfs laid
    over that directory, which hides everything else in it. Returns the mount points made private; an
    empty list when propagation could not be stopped (then nothing is mounted)."""
    if not _mount(None, "/", None, MS_REC | MS_PRIVATE):
        return []
    done = []
    if pid_namespace and _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC):
        done.append("/proc")
    tmpfs_options = f"size={tmpfs_bytes},mode=1777"
    if os.path.isdir("/dev/shm") and _mount(
        "tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, tmpfs_options
    ):
        done.append("/dev/shm")
    tmp = os.path.realpath("/tmp")
    masks: dict[str, list[tuple[str, bool]]] = {tmp: []}
    for path, read_only in [(str(workdir), False), *((path, True) for path in keep)]:
        real = os.path.realpath(path)
        if not os.path.isdir(real):
            continue
        root = tmp if os.path.commonpath([real, tmp]) == tmp else blocked_ancestor(real)
        if root is not None and real != root:
            masks.setdefault(root, []).append((real, read_only))
    for root, paths in masks.items():
        options = tmpfs_options if root == tmp else "size=1m,mode=755"
        if _mask(root, paths, options):
            done.append(root)
    return done


def _mask(root: str, paths: list[tuple[str, bool]], options: str) -> bool:
    """Lay a fresh tmpfs over `root` and bind `paths` (which lie below it) back, read-only where asked.
    Undoes itself and returns False when a bind fails."""
    handles = [(path, read_only, os.open(path, os.O_PATH | os.O_DIRECTORY)) for path, read_only in paths]
    try:
        if not _mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, options):
            return False
        # Shorter paths first, so that a path nested in another is bound on top of it.
        for path, read_only, handle in sorted(handles, key=lambda item: len(item[0])):
            os.makedirs(path, mode=0o755, exist_ok=True)
            bound = _mount(f"/proc/self/fd/{handle}", path, None, MS_BIND | MS_REC)
            if bound and read_only:
                bound = _mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
            if not bound:
                _libc.umount2(root.encode(), ctypes.c_int(MNT_DETACH))
                return False
        return True
    finally:
        for _, _, handle in handles:
            os.close(handle)


# --- the worker ----------------------------------------------------------------------------------------


def _apply_limits(limits: dict) -> list[str]:
    """Set soft = hard so that the candidate cannot raise them back."""
    applied = []
    table = {
        "data_bytes": resource.RLIMIT_DATA,
        "nofile": resource.RLIMIT_NOFILE,
        "nproc": resource.RLIMIT_NPROC,
        "fsize_bytes": resource.RLIMIT_FSIZE,
    }
    for key, which in table.items():
        value = limits.get(key)
        if value is None:
            continue
        resource.setrlimit(which, (int(value), int(value)))
        applied.append(key.removesuffix("_bytes"))
    if not limits.get("core", False):
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        applied.append("core")
    return applied


def _resolve_entry(entry: str):
    module_name, sep, function_name = entry.partition(":")
    if not sep or not module_name or not function_name:
        raise ValueError(f"entry {entry!r} is not 'module:function'")
    function = getattr(importlib.import_module(module_name), function_name)
    if not callable(function):
        raise TypeError(f"entry {entry!r} is not callable")
    return function


def _describe(exc: BaseException) -> dict:
    # Clearing the frames first frees what the entry held (a memory hog's list) before formatting.
    tb = exc.__traceback__
    lines = traceback.format_exception(type(exc), exc, tb)
    traceback.clear_frames(tb)
    return {
        "t": "error",
        "kind": type(exc).__name__,
        "message": str(exc)[:4000],
        "traceback": "".join(lines)[-8000:],
    }


def _worker(config: dict, uid: int, layers: dict) -> None:
    control = socket.socket(fileno=config["control_fd"])
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    workdir = Path(config["workdir"])
    disabled = frozenset(config["disable"])
    if os.geteuid() == 0:
        want = {"net_namespace": CLONE_NEWNET, "mount_namespace": CLONE_NEWNS}
        for name, flag in want.items():
            layers[name] = name not in disabled and _unshare(flag)
        if layers["mount_namespace"]:
            layers["private_mounts"] = _private_mounts(
                workdir, config["keep"], layers["pid_namespace"], config["tmpfs_bytes"]
            )
    else:
        layers["net_namespace"] = layers["mount_namespace"] = False
    # "module" entries are imported; "module:function" entries are called once CUDA is up (trusted set-up
    # that a spare pays before any job reaches it).
    for name in config["prewarm"]:
        importlib.import_module(name.partition(":")[0])
    if config["device"] is not None and config["init_cuda"]:
        import torch

        torch.zeros(1, device="cuda")
        torch.cuda.synchronize()
    for name in config["prewarm"]:
        if ":" in name:
            _resolve_entry(name)()
    reader = MessageReader(control)
    send_message(control, {"t": "ready", "layers": layers})
    job = reader.read()
    if job is None:
        os._exit(0)
    send_message(control, {"t": "accepted"})
    layers["rlimits"] = _apply_limits(job["limits"])
    send_message(control, {"t": "layers", "layers": layers})
    ctx = ChildContext(config["device"], workdir, layers, reader, uid, disabled, tuple(config["essential"]))
    try:
        result = _resolve_entry(job["entry"])(job["payload"], ctx)
        message = {"t": "result", "result": result}
        json.dumps(message)
    except BaseException as exc:
        message = _describe(exc)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # the job may have closed or replaced them
            stream.flush()
    send_message(control, message)
    # Leave at once: no atexit handler, finaliser or thread the candidate left behind gets to run.
    os._exit(0)


# --- the supervisor ------------------------------------------------------------------------------------


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            text = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        ppid = int(text[text.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def descendants(pid: int) -> list[int]:
    """Every live process below `pid` in the process tree (a /proc scan)."""
    children = _children_map()
    found, stack = [], list(children.get(pid, ()))
    while stack:
        child = stack.pop()
        found.append(child)
        stack.extend(children.get(child, ()))
    return found


def _sweep(limit_s: float = 10.0) -> None:
    """Kill and reap every descendant of this (subreaper) process until none is left. Orphans of the
    worker re-parent here, so a grandchild that called setsid() is still found."""
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        left = descendants(os.getpid())
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG if left else 0)
            except ChildProcessError:
                break
            if pid == 0:
                break
        if not left and not descendants(os.getpid()):
            return
        time.sleep(0.005)


def _wait_worker(pid: int) -> int:
    """Wait for the worker; kill it if the lifeline (stdin) closes first. Returns its wait status."""
    pidfd = os.pidfd_open(pid)
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    poller.register(0, select.POLLIN | select.POLLHUP)
    while True:
        events = dict(poller.poll())
        if pidfd in events:
            break
        if 0 in events:
            if not os.read(0, 4096):
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                poller.unregister(0)
    _, status = os.waitpid(pid, 0)
    os.close(pidfd)
    return status


def supervise(config: dict) -> None:
    """The supervisor's whole life (see the module docstring)."""
    status = os.fdopen(config["status_fd"], "w", buffering=1)
    disabled = frozenset(config["disable"])
    root = os.geteuid() == 0
    layers: dict[str, object] = {"subreaper": _prctl(PR_SET_CHILD_SUBREAPER, 1) == 0}
    layers["pid_namespace"] = root and "pid_namespace" not in disabled and _unshare(CLONE_NEWPID)
    uid = UID_BASE + os.getpid()
    sys.path[:0] = [path for path in config["sys_path"] if path not in sys.path]
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        try:
            status.close()
            _worker(config, uid, layers)
        except BaseException:
            traceback.print_exc()
            sys.stderr.flush()
            os._exit(70)
        os._exit(0)
    os.close(config["control_fd"])
    status.write(json.dumps({"t": "started", "worker_pid": pid, "uid": uid, "layers": layers}) + "\n")
    wait_status = _wait_worker(pid)
    _sweep()
    code = os.waitstatus_to_exitcode(wait_status)
    message = {"t": "exit", "code": code if code >= 0 else None, "signal": -code if code < 0 else None}
    status.write(json.dumps(message) + "\n")
    status.close()
    os._exit(0)


if __name__ == "__main__":
    # Importing solgym later (the harness does) must find this very module, not a second copy.
    sys.modules.setdefault("solgym._child", sys.modules["__main__"])
    supervise(json.loads(sys.argv[1]))
