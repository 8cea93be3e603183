"""`kubectl exec` inside a container: `runc exec` with the container's own process settings.

The exec'd process gets the container's user, capabilities, environment and
namespaces (runc joins them); only the command, the tty flag and extra environment
differ (spec.process_for_exec). runc stays in the foreground and copies the stdio:

- without a tty, through three pipes (stdout and stderr kept apart);
- with a tty, runc insists that its own stdin is a terminal: it is given the slave of a
  pty we hold as its controlling terminal, and relays a resize of that pty to the
  container's terminal when it gets SIGWINCH.

`kill` stops the exec'd process itself (runc's --pid-file gives its host pid), which
runc would not forward a SIGKILL to.
"""
from __future__ import annotations

import asyncio
import fcntl
import functools
import os
import pty
import signal
import subprocess
import termios

from ..ptyio import PtyStream
from .conmon import read_pid


def _kill_pid_file(pid_file: str) -> None:
    pid = read_pid(pid_file)
    if pid > 0:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def _cleanup(paths: tuple[str, ...]) -> None:
    for p in paths:
        try:
            os.unlink(p)
        except OSError:
            pass


def _code(returncode: int) -> int:
    """An exit status as the exec API reports it (128+N when killed by signal N)."""
    return 128 - returncode if returncode < 0 else returncode


class PipeExec:
    """exec without a tty."""

    def __init__(self, proc: asyncio.subprocess.Process, pid_file: str, files: tuple[str, ...]):
        if proc.stdout is None or proc.stderr is None:
            raise RuntimeError("exec without output pipes")
        self.proc = proc
        self.pid_file = pid_file
        self.files = files
        self.stdout: asyncio.StreamReader = proc.stdout
        self.stderr: asyncio.StreamReader | None = proc.stderr

    @classmethod
    async def start(cls, argv: list[str], pid_file: str, files: tuple[str, ...]) -> PipeExec:
        """Run `argv` (a runc exec) with stdin, stdout and stderr pipes."""
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        return cls(proc, pid_file, files)

    async def write(self, data: bytes) -> None:
        """Send bytes to the command's stdin."""
        if self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.write(data)
            try:
                await self.proc.stdin.drain()
            except (BrokenPipeError, ConnectionResetError):
                pass

    async def close_stdin(self) -> None:
        """EOF on the command's stdin."""
        if self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.close()

    def resize(self, width: int, height: int) -> None:
        """No terminal, nothing to resize."""

    async def wait(self) -> int:
        """The command's exit code."""
        code = await self.proc.wait()
        _cleanup(self.files)
        return _code(code)

    async def kill(self) -> None:
        """Stop the command."""
        if self.proc.returncode is None:
            _kill_pid_file(self.pid_file)
        await self.wait()


class TtyExec(PtyStream):
    """exec with a tty: one output stream."""

    def __init__(self, proc: asyncio.subprocess.Process, master: int, pid_file: str, files: tuple[str, ...]):
        super().__init__(master)
        self.proc = proc
        self.pid_file = pid_file
        self.files = files

    @classmethod
    async def start(cls, argv: list[str], pid_file: str, files: tuple[str, ...]) -> TtyExec:
        """Run `argv` (a runc exec --tty) on a pty of ours."""
        master, slave = pty.openpty()
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=slave, stdout=slave, stderr=slave, preexec_fn=functools.partial(_controlling_tty, slave))
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        return cls(proc, master, pid_file, files)

    async def wait(self) -> int:
        """The command's exit code."""
        code = await self.proc.wait()
        _cleanup(self.files)
        return _code(code)

    async def kill(self) -> None:
        """Stop the command."""
        if self.proc.returncode is None:
            _kill_pid_file(self.pid_file)
        await self.wait()
        self._close()


def _controlling_tty(slave: int) -> None:
    """In the child: a new session whose controlling terminal is the pty slave."""
    os.setsid()
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
