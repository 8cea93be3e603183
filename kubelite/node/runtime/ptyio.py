"""The host side of a pty that an exec'd command uses as its terminal.

Both the process runtime and the oci runtime run `kubectl exec -t` commands on a pty
whose master end the agent holds; this pumps that end: what the command prints becomes
one output stream, what the client types is written back, and a resize is passed on.
"""
from __future__ import annotations

import asyncio
import fcntl
import os
import struct
import termios

CHUNK = 64 * 1024


class PtyStream:
    """The master end of a pty as an output stream plus input and resize calls."""

    def __init__(self, master: int):
        self.master = master
        self.stdout = asyncio.StreamReader()
        self.stderr: asyncio.StreamReader | None = None  # a terminal has one output
        self._loop = asyncio.get_running_loop()
        os.set_blocking(master, False)
        self._loop.add_reader(master, self._readable)
        self._closed = False

    def _readable(self) -> None:
        try:
            data = os.read(self.master, CHUNK)
        except BlockingIOError:
            return
        except OSError:  # EIO: every slave end is closed
            data = b""
        if data:
            self.stdout.feed_data(data)
        else:
            self._close()

    def _close(self) -> None:
        if not self._closed:
            self._closed = True
            self._loop.remove_reader(self.master)
            os.close(self.master)
            self.stdout.feed_eof()

    async def write(self, data: bytes) -> None:
        """Type bytes into the terminal."""
        view = memoryview(data)
        while view and not self._closed:
            try:
                n = os.write(self.master, view)
                view = view[n:]
            except BlockingIOError:
                await asyncio.sleep(0.01)
            except OSError:
                return

    async def close_stdin(self) -> None:
        """Ctrl-D: EOF for a terminal in canonical mode."""
        await self.write(b"\x04")

    def resize(self, width: int, height: int) -> None:
        """Set the terminal's size (the command, or runc for it, gets SIGWINCH)."""
        if not self._closed:
            fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))
