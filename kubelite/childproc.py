"""Components of ``kubelite server`` run in processes of their own (``--separate-processes``).

The controller manager and the scheduler are API clients already: run as a child process each
(``kubelite component NAME``), they take the second core instead of sharing the API server's event
loop. The server supervises each child as it does an in-process component: started once the API
serves, restarted with back-off when it exits, stopped (SIGTERM, then SIGKILL) with the server. A
child asks the kernel for SIGTERM when its parent dies, so a ``kill -9`` of the server leaves no
orphan writing to the cluster. The only thing a child reports back is a line ``synced`` on its
standard output when its caches are filled, which feeds the server's ``/readyz``.
"""
from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

# What --separate-processes accepts.
SEPARABLE = ("controllers", "scheduler")
SYNCED_LINE = b"synced"
STOP_GRACE = 10.0  # seconds a child gets after SIGTERM before SIGKILL
PR_SET_PDEATHSIG = 1


@dataclass
class ChildCredentials:
    """How a child reaches the API server: its URL, the cluster CA and the component's certificate."""
    server: str
    ca_file: str
    cert_file: str
    key_file: str


def child_command(name: str, creds: ChildCredentials, identity: str, leader_elect: bool) -> list[str]:
    """The command line of the child running component ``name``."""
    return [sys.executable, "-m", "kubelite.cli", "component", name, "--server", creds.server,
            "--ca-file", creds.ca_file, "--cert-file", creds.cert_file, "--key-file", creds.key_file,
            "--identity", identity, "--parent-pid", str(os.getpid())] + ([] if leader_elect else ["--no-leader-elect"])


async def run_child(name: str, command: list[str], stop: asyncio.Event,
                    on_synced: Callable[[], None] = lambda: None) -> None:
    """Run ``command`` until ``stop``; raise when it exits on its own (the supervisor restarts it)."""
    proc = await asyncio.create_subprocess_exec(*command, stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.PIPE)
    log.info("%s: running in process %d", name, proc.pid)
    assert proc.stdout is not None

    async def read() -> None:
        assert proc.stdout is not None
        async for line in proc.stdout:
            if line.strip() == SYNCED_LINE:
                on_synced()
    reader = asyncio.create_task(read())
    stopping = asyncio.create_task(stop.wait())
    exited = asyncio.create_task(proc.wait())
    try:
        await asyncio.wait([stopping, exited], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(exited), STOP_GRACE)
            except TimeoutError:
                log.warning("%s: process %d did not stop within %gs; killing it", name, proc.pid, STOP_GRACE)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await exited
        reader.cancel()
    if not stop.is_set():
        raise RuntimeError(f"{name}: process {proc.pid} exited with {proc.returncode}")


def die_with_parent(parent_pid: int) -> None:
    """Ask the kernel for SIGTERM when the parent dies (Linux); exit at once if it already has."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        log.warning("cannot ask to be stopped with the server (no prctl here)")
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        sys.exit(0)


async def serve_component(name: str, run: Callable[[asyncio.Event, asyncio.Event], Awaitable[None]]) -> None:
    """The child's side: run ``run(stop, synced)`` until SIGTERM/SIGINT, printing ``synced`` once."""
    stop, synced = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    async def report() -> None:
        await synced.wait()
        sys.stdout.buffer.write(SYNCED_LINE + b"\n")
        sys.stdout.flush()
    reporter = asyncio.create_task(report())
    try:
        await run(stop, synced)
    finally:
        reporter.cancel()
        log.info("%s: stopped", name)
