"""The process runtime's output pump closes a container's pipe exactly once, on uvloop too.

A second close of a number already given back closes whatever the process opened in
between: in the server that was a NodePort's listening socket or a /proc scan of another
thread (EBADF), and sometimes the server itself died. The test plays that other thread: the
moment a close gives the pipe's number back, it opens files until it holds that number, and
afterwards every file it opened must still be open.
"""
from __future__ import annotations

import asyncio
import io
import os
import types

import pytest
import uvloop

from kubelite.node.runtime import logs, process


class Grabber:
    """Opens /dev/null until it holds a given descriptor number (as a racing thread would)."""

    def __init__(self) -> None:
        self.held: list[int] = []

    def grab(self, number: int) -> None:
        spare = []
        for _ in range(256):
            fd = os.open(os.devnull, os.O_RDONLY)
            if fd == number:
                self.held.append(fd)
                break
            spare.append(fd)
        for fd in spare:
            os.close(fd)

    def closed_behind_our_back(self) -> list[int]:
        out = []
        for fd in self.held:
            try:
                os.fstat(fd)
            except OSError:
                out.append(fd)
        return out

    def release(self) -> None:
        for fd in self.held:
            try:
                os.close(fd)
            except OSError:
                pass


def racing_os(grabber: Grabber) -> types.SimpleNamespace:
    """The os module as process.py sees it, with another thread's open right after each close."""
    class Probe(io.FileIO):
        def __init__(self, fd: int, mode: str = "rb", buffering: int = -1) -> None:
            super().__init__(fd, mode)
            self.number = fd

        def close(self) -> None:
            if not self.closed:
                grabber.grab(self.number)  # free now only if someone else already closed it
            super().close()

    def close(fd: int) -> None:
        os.close(fd)
        grabber.grab(fd)

    fake = types.SimpleNamespace(**{k: getattr(os, k) for k in dir(os) if not k.startswith("__")})
    fake.fdopen = Probe
    fake.close = close
    return fake


@pytest.mark.parametrize("loop_factory", [uvloop.new_event_loop, asyncio.new_event_loop], ids=["uvloop", "asyncio"])
def test_output_pump_closes_the_pipe_once_and_nothing_else(monkeypatch, tmp_path, loop_factory):
    grabber = Grabber()
    log = logs.LogWriter(str(tmp_path / "c" / "0.log"))
    monkeypatch.setattr(process, "os", racing_os(grabber))

    async def run() -> None:
        r, w = os.pipe()
        pump = asyncio.create_task(process.ProcessRuntime._pump(r, "stdout", log))
        os.write(w, b"hello\n" * 1000)
        os.close(w)
        await asyncio.wait_for(pump, 10)
        for _ in range(5):  # let closes scheduled by the loop run
            await asyncio.sleep(0.01)

    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(run())
        log.close()
        assert (tmp_path / "c" / "0.log").read_text().count(" stdout F hello\n") == 1000
        assert grabber.held, "the pipe's number was never given back"
        assert grabber.closed_behind_our_back() == []
    finally:
        grabber.release()
