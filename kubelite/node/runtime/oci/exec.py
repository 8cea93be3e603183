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
import socket
import subprocess
import termios
import tty
from collections.abc import Callable

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
        # Raw from the start: runc makes its terminal raw too, but only once the exec runs, and
        # output that came before went through our pty's own line discipline (each "\n" became
        # "\r\n" a second time, after the container's terminal had already done it).
        tty.setraw(slave)
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


# The first byte of each packet conmon sends on its attach socket names the stream.
_ATTACH_STDOUT, _ATTACH_STDERR = 2, 3
_ATTACH_PACKET = 8192 + 1
_ATTACH_WRITE = 4096


class AttachSocket:
    """`kubectl attach -i` (and `-it` to a `tty: true` container): a connection to the
    container's conmon (BUNDLE/attach).

    Output the container writes from now on arrives as packets tagged with their stream;
    what is written goes to the container's stdin. Closing our sending side is the end of
    input: conmon then closes the container's stdin if it was started for `stdinOnce`.
    The session ends when conmon closes the socket, which it does when the container exits."""

    def __init__(self, sock: socket.socket, resize: Callable[[int, int], object] | None = None):
        self.sock = sock
        self.stdout = asyncio.StreamReader()
        # A terminal has one output stream (conmon tags it stdout).
        self.stderr: asyncio.StreamReader | None = asyncio.StreamReader() if resize is None else None
        self._resize = resize
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def open(cls, path: str, resize: Callable[[int, int], object] | None = None) -> AttachSocket:
        """Connect to conmon's attach socket at `path`; `resize(width, height)` sets the size
        of the container's terminal when it has one."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        sock.setblocking(False)
        # A socket address holds at most 107 bytes, and a bundle's path can be longer: go
        # through a descriptor of its directory instead.
        dir_fd = os.open(os.path.dirname(path), os.O_PATH | os.O_DIRECTORY)
        try:
            await asyncio.get_running_loop().sock_connect(sock, f"/proc/self/fd/{dir_fd}/{os.path.basename(path)}")
        except OSError:
            sock.close()
            raise
        finally:
            os.close(dir_fd)
        return cls(sock, resize)

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                packet = await loop.sock_recv(self.sock, _ATTACH_PACKET)
                if not packet:
                    break
                if packet[0] == _ATTACH_STDERR and self.stderr is not None:
                    self.stderr.feed_data(packet[1:])
                elif packet[0] == _ATTACH_STDOUT:
                    self.stdout.feed_data(packet[1:])
        except OSError:
            pass
        finally:
            self.stdout.feed_eof()
            if self.stderr is not None:
                self.stderr.feed_eof()

    async def write(self, data: bytes) -> None:
        """Send bytes to the container's stdin."""
        loop = asyncio.get_running_loop()
        try:
            for i in range(0, len(data), _ATTACH_WRITE):
                await loop.sock_sendall(self.sock, data[i:i + _ATTACH_WRITE])
        except OSError:
            pass

    async def close_stdin(self) -> None:
        """End of input."""
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def resize(self, width: int, height: int) -> None:
        """Set the container's terminal size (nothing without a terminal)."""
        if self._resize is not None and width > 0 and height > 0:
            self._resize(width, height)

    async def wait(self) -> int:
        """Until conmon closes the connection (the container exited); attach reports no exit code."""
        await asyncio.shield(self._reader)
        self.sock.close()
        return 0

    async def kill(self) -> None:
        """Detach (the container keeps running)."""
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)
        self.sock.close()
