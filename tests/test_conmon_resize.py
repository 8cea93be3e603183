"""Terminal resizes reach conmon's ctl FIFO one message per write, newest size last."""
from __future__ import annotations

import asyncio
import os

from kubelite.node.runtime.oci import conmon


async def test_back_to_back_resizes_end_with_the_last_size_written_alone(tmp_path, monkeypatch):
    monkeypatch.setattr(conmon.PacedResizer, "GAP", 0.02)
    monkeypatch.setattr(conmon.PacedResizer, "CONFIRM", 0.05)
    fifo = tmp_path / "ctl"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    chunks: list[bytes] = []
    try:
        r = conmon.PacedResizer(str(tmp_path))
        # kubectl attach: one larger than the terminal, then the terminal's own size.
        r(102, 34)
        r(101, 33)
        r(101, 33)
        assert r._task is not None
        while not r._task.done():
            try:
                data = os.read(reader, 4096)
            except BlockingIOError:
                data = b""
            if data:
                chunks.append(data)
            await asyncio.sleep(0.005)
        try:
            chunks.append(os.read(reader, 4096))
        except BlockingIOError:
            pass
    finally:
        os.close(reader)
    lines = b"".join(chunks).decode().splitlines()
    assert lines == ["1 34 102", "1 33 101", "1 33 101"]
    # The last size is repeated in a write of its own: even a reader that applies only the
    # first message of a chunk ends at 33x101.
    assert chunks[-1] == b"1 33 101\n"


async def test_a_resize_after_the_confirmation_is_written_again(tmp_path, monkeypatch):
    monkeypatch.setattr(conmon.PacedResizer, "GAP", 0.0)
    monkeypatch.setattr(conmon.PacedResizer, "CONFIRM", 0.0)
    fifo = tmp_path / "ctl"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        r = conmon.PacedResizer(str(tmp_path))
        r(80, 24)
        assert r._task is not None
        await r._task
        r(132, 41)
        await r._task
        data = os.read(reader, 4096).decode().splitlines()
    finally:
        os.close(reader)
    assert data == ["1 24 80", "1 24 80", "1 41 132", "1 41 132"]
