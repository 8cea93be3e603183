"""conmon, the per-container monitor: it holds the container's stdio, writes its log and
records its exit code, so the container is never a child of the agent.

Start-up (what CRI-O does): we spawn `conmon … -b BUNDLE`; conmon double-forks into its
own session, runs `runc create`, and reports the container's pid (or runc's error)
as one JSON line on the sync pipe we hand it (`_OCI_SYNCPIPE`). The container then
waits for `runc start`. From there on conmon copies stdout/stderr into the CRI log
(`-l k8s-file:PATH`; timestamps in UTC as we run it with TZ=UTC), and when the
container exits writes its status to `BUNDLE/exit` (128+N for signal N), preceded
by `BUNDLE/oom` when the kernel's OOM killer struck — files that outlive the agent.

conmon also listens on `BUNDLE/attach` (a SOCK_SEQPACKET socket; `--full-attach` puts it
in the bundle): each packet it sends is one byte naming the stream (2 stdout, 3 stderr)
followed by output, and what a client writes there goes to the container's stdin when
it was started with `--stdin`. `kubectl attach -i` uses it (exec.py, AttachSocket).

`reopen_log` asks a running conmon to reopen its log file (after rotation), and `resize`
sets the size of a `tty: true` container's terminal, both through the `ctl` FIFO conmon
keeps in the bundle. A tty container's conmon (`--terminal`) holds the pty master: its
attach socket then carries the terminal's output (as stdout) and takes its input.
"""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .runc import Runc, runc_message

# conmon's ctl message types: "TYPE HEIGHT WIDTH\n" lines on BUNDLE/ctl.
WIN_RESIZE_EVENT = 1
REOPEN_LOGS_EVENT = 2


class ConmonError(Exception):
    """The container could not be created; the message is runc's."""


@dataclass
class Started:
    """A created (not yet started) container under its monitor."""

    pid: int          # the container's first process, in the host's PID namespace
    conmon_pid: int


def binary() -> str | None:
    """Path of conmon, if installed (Debian puts it in /usr/bin)."""
    return shutil.which("conmon") or next((p for p in ("/usr/bin/conmon", "/usr/libexec/crio/conmon")
                                           if os.path.exists(p)), None)


async def create(*, runc: Runc, cid: str, name: str, bundle: str, log_path: str, log_max: int,
                 stdin: bool = False, stdin_once: bool = False, terminal: bool = False,
                 timeout: float = 60.0) -> Started:
    """Create container `cid` from `bundle` under a new conmon; ConmonError on failure.

    With `stdin` (the container's `stdin: true`) conmon keeps a pipe open to the container's
    stdin, fed by whoever attaches to BUNDLE/attach; with `stdin_once` the first attached
    client's end of input closes it, as the kubelet does for `stdinOnce`. With `terminal`
    (the container's `tty: true`) conmon makes the pty, hands runc its console socket and
    holds the master: attached clients read and write the terminal, and resizes go
    through the ctl FIFO (`resize`)."""
    exe = binary()
    if exe is None:
        raise ConmonError("conmon is not installed")
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    argv = [exe, "--api-version", "1", "-c", cid, "-u", cid, "-n", name, "-r", runc.binary, "-b", bundle,
            "-p", os.path.join(bundle, "pidfile"), "-P", os.path.join(bundle, "conmon.pid"),
            "-l", f"k8s-file:{log_path}", "--log-size-max", str(log_max), "--persist-dir", bundle,
            "--full-attach", "--log-level", "error", "--runtime-arg", "--root", "--runtime-arg", runc.root]
    if terminal:
        argv.append("--terminal")
    if stdin:
        argv += ["--stdin"] + ([] if stdin_once else ["--leave-stdin-open"])
    read_end, write_end = os.pipe()
    env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "TZ": "UTC",
           "_OCI_SYNCPIPE": str(write_end)}
    err_path = os.path.join(bundle, "conmon.err")
    try:
        # conmon's own complaints (bad flags, a missing runc) go to a file: a pipe would stay
        # open in the forked monitor until it drops its stdio.
        err_fd = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, cwd=bundle, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=err_fd, pass_fds=(write_end,), start_new_session=True)
        finally:
            os.close(err_fd)
    finally:
        os.close(write_end)
    try:
        line = await asyncio.wait_for(asyncio.to_thread(_read_sync, read_end), timeout)
    except TimeoutError:
        raise ConmonError(f"conmon did not report container {cid} within {timeout:.0f}s") from None
    finally:
        os.close(read_end)
    # The process we started exits right after forking the real monitor.
    await proc.wait()
    try:
        err = Path(err_path).read_bytes().decode(errors="replace")
    except OSError:
        err = ""
    if line is None:
        raise ConmonError(runc_message(err) or f"conmon exited with {proc.returncode}")
    pid = int(line.get("data", -1))
    if pid <= 0:
        raise ConmonError(runc_message(str(line.get("message") or err or "runc create failed")))
    return Started(pid=pid, conmon_pid=read_pid(os.path.join(bundle, "conmon.pid")))


def _read_sync(fd: int) -> dict | None:
    """The first JSON line conmon writes to the sync pipe (None at EOF first)."""
    buf = b""
    while b"\n" not in buf:
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        buf += chunk
    text = buf.split(b"\n", 1)[0].strip()
    if not text:
        return None
    try:
        data: dict = json.loads(text)
    except ValueError:
        return None
    return data


def read_pid(path: str) -> int:
    """A pid file's number (0 when absent or empty)."""
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError:
        return 0
    return int(text) if text.isdigit() else 0


def exit_status(bundle: str) -> int | None:
    """The exit code conmon recorded, or None while the container runs."""
    try:
        with open(os.path.join(bundle, "exit")) as f:
            text = f.read().strip()
    except OSError:
        return None
    try:
        return int(text)
    except ValueError:
        return None


def oom_recorded(bundle: str) -> bool:
    """Whether conmon saw an OOM kill in the container's memory cgroup."""
    return os.path.exists(os.path.join(bundle, "oom"))


def alive(conmon_pid: int, cid: str) -> bool:
    """Whether `conmon_pid` is still the conmon of container `cid` (pids get reused)."""
    if conmon_pid <= 0:
        return False
    try:
        with open(f"/proc/{conmon_pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return False
    return bool(argv) and os.path.basename(argv[0]) == b"conmon" and cid.encode() in argv


def reopen_log(bundle: str) -> bool:
    """Ask the container's conmon to reopen its log file; False when it is not listening."""
    return _control(bundle, REOPEN_LOGS_EVENT, 0, 0)


def resize(bundle: str, width: int, height: int) -> bool:
    """Set the size of the container's terminal (conmon holds it); False when conmon is not
    listening. conmon ignores sizes outside 0..1000, so they are clamped here."""
    return _control(bundle, WIN_RESIZE_EVENT, max(0, min(1000, height)), max(0, min(1000, width)))


class PacedResizer:
    """Resizes for one attached terminal, written to conmon's ctl FIFO one at a time.

    Older conmon releases (Debian 12 ships 2.1.6) read the FIFO in chunks and, when one read
    returns several messages, apply the first one as often as there are messages (later
    releases fixed it): kubectl's attach sends a size one larger and then the real one back
    to back, and on a busy machine the real one was lost when both were read at once. So
    writes are spaced, the newest size wins, and the last one is written again a moment
    later so that the terminal ends at the size the client has."""

    GAP = 0.1      # between two writes
    CONFIRM = 0.5  # before the last size is written again

    def __init__(self, bundle: str):
        self.bundle = bundle
        self._want: tuple[int, int] = (0, 0)
        self._written: tuple[int, int] = (0, 0)
        self._task: asyncio.Task[None] | None = None

    def __call__(self, width: int, height: int) -> None:
        """Ask for this size: written at once when nothing was written lately, else soon."""
        self._want = (width, height)
        if self._task is None or self._task.done():
            resize(self.bundle, width, height)
            self._written = self._want
            self._task = asyncio.get_running_loop().create_task(self._pace())

    async def _pace(self) -> None:
        while True:
            await asyncio.sleep(self.GAP)
            if self._want != self._written:
                resize(self.bundle, *self._want)
                self._written = self._want
                continue
            await asyncio.sleep(self.CONFIRM)
            if self._want == self._written:
                resize(self.bundle, *self._written)
                return


def _control(bundle: str, kind: int, height: int, width: int) -> bool:
    """One message on conmon's ctl FIFO (non-blocking: a gone conmon must not hang us)."""
    try:
        fd = os.open(os.path.join(bundle, "ctl"), os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        os.write(fd, f"{kind} {height} {width}\n".encode())
    except OSError:
        return False
    finally:
        os.close(fd)
    return True
