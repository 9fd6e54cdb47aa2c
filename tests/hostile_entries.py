"""Entry functions for the sandbox and pool tests. Apart from `echo` and `timed_window`, each behaves like
a hostile candidate: it drops privileges first, as the harness does before importing an action, then
misbehaves. Every one is bounded by the limits the tests give it."""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import subprocess
import threading
import time


def echo(payload: dict, ctx) -> dict:
    """A well-behaved job: returns its payload and what it sees of its sandbox."""
    ctx.report_stage("start")
    ctx.drop_privileges()
    return {
        "echo": payload,
        "uid": os.getuid(),
        "env": sorted(os.environ),
        "home": os.environ.get("HOME"),
        "workdir": str(ctx.workdir),
        "device": ctx.device,
    }


def timed_window(payload: dict, ctx) -> dict:
    """Holds the timing slot for `hold_s` and reports when, on the machine-wide monotonic clock."""
    ctx.drop_privileges()
    with ctx.timed():
        start = time.monotonic()
        time.sleep(payload["hold_s"])
        end = time.monotonic()
    return {"start": start, "end": end}


def segfault(payload: dict, ctx) -> dict:
    """Reads address 0."""
    ctx.drop_privileges()
    ctypes.string_at(0)
    return {"survived": True}


def hang(payload: dict, ctx) -> dict:
    """Never returns."""
    ctx.drop_privileges()
    while True:
        time.sleep(1)


def hog_memory(payload: dict, ctx) -> dict:
    """Allocates (and touches) 16 MiB blocks without end."""
    ctx.drop_privileges()
    blocks = []
    while True:
        blocks.append(bytearray(16 << 20))


def exit_early(payload: dict, ctx) -> dict:
    """Leaves without a result."""
    ctx.drop_privileges()
    os._exit(3)


def fork_bomb(payload: dict, ctx) -> dict:
    """Every process forks until the kernel refuses; the first then reports how many it made itself."""
    ctx.drop_privileges()
    made = 0
    first = os.getpid()
    while True:
        try:
            pid = os.fork()
        except BlockingIOError:
            if os.getpid() == first:
                return {"refused_after": made}
            time.sleep(600)
            os._exit(0)
        if pid and os.getpid() == first:
            made += 1


def flood_stdout(payload: dict, ctx) -> dict:
    """Writes `mib` MiB to stdout and stderr, then returns."""
    ctx.drop_privileges()
    chunk = b"x" * (1 << 20)
    for _ in range(payload["mib"]):
        os.write(1, chunk)
        os.write(2, chunk)
    return {"written_mib": payload["mib"]}


def orphan(payload: dict, ctx) -> dict:
    """Leaves a grandchild in its own session, renamed to `marker`, sleeping."""
    ctx.drop_privileges()
    pid = os.fork()
    if pid == 0:
        os.setsid()
        if os.fork() == 0:
            os.execv("/bin/sleep", [payload["marker"], "600"])
        os._exit(0)
    os.waitpid(pid, 0)
    return {"left": payload["marker"]}


def write_outside(payload: dict, ctx) -> dict:
    """Tries to open root-owned files for writing (without writing a byte) and to create one in /, then
    writes into its own workdir. Reports the errno name of each attempt, or "opened"."""
    ctx.drop_privileges()
    attempts = {}
    for path in payload["paths"]:
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_APPEND))
            attempts[path] = "opened"
        except OSError as exc:
            attempts[path] = errno.errorcode[exc.errno]
    try:
        os.close(os.open(payload["create"], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        os.unlink(payload["create"])
        attempts[payload["create"]] = "opened"
    except OSError as exc:
        attempts[payload["create"]] = errno.errorcode[exc.errno]
    (ctx.workdir / "own.txt").write_text("mine")
    return {"attempts": attempts, "workdir_written": (ctx.workdir / "own.txt").read_text() == "mine"}


def connect_tcp(payload: dict, ctx) -> dict:
    """Tries to reach a TCP port on 127.0.0.1."""
    ctx.drop_privileges()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(2)
            sock.connect(("127.0.0.1", payload["port"]))
            return {"connected": True}
    except OSError as exc:
        return {"connected": False, "error": type(exc).__name__}


def probe_syscalls(payload: dict, ctx) -> dict:
    """Tries what the seccomp filter denies and what builds need."""
    ctx.drop_privileges()
    libc = ctypes.CDLL(None, use_errno=True)

    def errno_of(result: int) -> str:
        return "ok" if result == 0 else errno.errorcode[ctypes.get_errno()]

    results = {
        "ptrace": errno_of(libc.ptrace(0, 0, None, None)),  # PTRACE_TRACEME
        "unshare_user": errno_of(libc.unshare(0x10000000)),  # CLONE_NEWUSER
    }
    a, b = socket.socketpair()
    a.sendall(b"ok")
    results["unix_socket"] = b.recv(2).decode()
    a.close()
    b.close()
    results["subprocess"] = subprocess.run(
        ["/bin/echo", "built"], capture_output=True, text=True
    ).stdout.strip()
    box = []
    thread = threading.Thread(target=box.append, args=("ran",))
    thread.start()
    thread.join()
    results["thread"] = box[0]
    return results


def raises(payload: dict, ctx) -> dict:
    """An ordinary exception."""
    ctx.drop_privileges()
    raise ValueError(payload.get("message", "bad candidate"))


def cuda_job(payload: dict, ctx) -> dict:
    """A GPU job: allocates `mib` MiB on its pinned GPU and holds the timing slot for `hold_s`."""
    import torch

    ctx.drop_privileges()
    block = torch.empty(payload["mib"] << 20, dtype=torch.uint8, device="cuda")
    block.fill_(1)
    with ctx.timed():
        start = time.monotonic()
        time.sleep(payload["hold_s"])
        torch.cuda.synchronize()
        end = time.monotonic()
    return {
        "device": ctx.device,
        "visible_devices": torch.cuda.device_count(),
        "sum": int(block[:1024].sum()),
        "start": start,
        "end": end,
    }


def cuda_illegal_address(payload: dict, ctx) -> dict:
    """Stores far outside its allocation from a Triton kernel."""
    import torch
    import triton
    import triton.language as tl

    @triton.jit
    def poke(pointer):
        tl.store(pointer + (1 << 40), 1.0)

    ctx.drop_privileges()
    target = torch.zeros(1, device="cuda")
    poke[(1,)](target)
    torch.cuda.synchronize()
    return {"survived": True}


def fill_file(payload: dict, ctx) -> dict:
    """Writes `mib` MiB into one file of its workdir."""
    ctx.drop_privileges()
    with open(ctx.workdir / "big.bin", "wb") as out:
        for _ in range(payload["mib"]):
            out.write(b"\0" * (1 << 20))
    return {"written_mib": payload["mib"]}


def forge_protocol(payload: dict, ctx) -> dict:
    """Writes a frame header announcing 4 GiB on the control socket it shares with the harness."""
    ctx.drop_privileges()
    os.write(ctx._control.fileno(), b"\xff\xff\xff\xff")
    time.sleep(30)
    return {"survived": True}
