"""Container logs in the CRI format, with rotation, and a reader with `kubectl logs` semantics.

Each record is one line: `<timestamp> <stream> <tag> <content>`, tag `F` for a full line
and `P` for a fragment of a longer line (split at MAX_LINE bytes, as containerd does),
so a process that never prints a newline cannot grow our memory. Timestamps are
written in fixed-width RFC 3339 UTC with nanoseconds, which keeps them comparable as
strings.

Rotation keeps `<name>` plus up to `max_files - 1` older files `<name>.1` (newest) …
`<name>.N`; the reader walks them oldest first. A follower notices rotation by the
file's inode changing under the same name.
"""
from __future__ import annotations

import asyncio
import os
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO

MAX_LINE = 16 * 1024
DEFAULT_MAX_SIZE = 10 * 1024 * 1024
DEFAULT_MAX_FILES = 5


def rfc3339_nano(ns: int | None = None) -> str:
    """Fixed-width RFC 3339 UTC timestamp with nanoseconds."""
    ns = time.time_ns() if ns is None else ns
    secs, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


def parse_time_ns(text: str) -> int:
    """Parse an RFC 3339 timestamp (any fraction length, Z or offset) to Unix nanoseconds."""
    frac_ns = 0
    main = text
    tz = "+00:00"
    if main.endswith(("Z", "z")):
        main = main[:-1]
    elif len(main) > 6 and main[-6] in "+-" and main[-3] == ":":
        main, tz = main[:-6], main[-6:]
    if "." in main:
        main, frac = main.split(".", 1)
        frac_ns = int((frac + "000000000")[:9])
    dt = datetime.fromisoformat(main + tz)
    return int(dt.timestamp()) * 1_000_000_000 + frac_ns


@dataclass
class LogLine:
    """One logical line (fragments joined) as kubectl logs shows it."""

    time: str
    stream: str
    content: bytes   # without the trailing newline


class LogWriter:
    """Writes CRI records for one container, rotating at `max_size` bytes."""

    def __init__(self, path: str, *, max_size: int = DEFAULT_MAX_SIZE, max_files: int = DEFAULT_MAX_FILES):
        self.path = path
        self.max_size = max_size
        self.max_files = max(1, max_files)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self._f = open(path, "ab")  # noqa: SIM115 (the writer owns the file until close())
        self._size = self._f.tell()
        self._pending: dict[str, bytearray] = {}

    def write(self, stream: str, data: bytes) -> None:
        """Record raw output of `stream` ("stdout"/"stderr"); incomplete lines wait for more."""
        buf = self._pending.setdefault(stream, bytearray())
        buf += data
        while True:
            nl = buf.find(b"\n")
            if nl == -1 or nl > MAX_LINE:
                if len(buf) >= MAX_LINE:
                    self._record(stream, "P", bytes(buf[:MAX_LINE]))
                    del buf[:MAX_LINE]
                    continue
                break
            self._record(stream, "F", bytes(buf[:nl]))
            del buf[:nl + 1]
        self._f.flush()

    def close(self) -> None:
        """Flush unterminated output as a full line and close the file."""
        for stream, buf in self._pending.items():
            if buf:
                self._record(stream, "F", bytes(buf))
                buf.clear()
        self._f.close()

    def _record(self, stream: str, tag: str, content: bytes) -> None:
        line = f"{rfc3339_nano()} {stream} {tag} ".encode() + content + b"\n"
        if self._size and self._size + len(line) > self.max_size:
            self._rotate()
        self._f.write(line)
        self._size += len(line)

    def _rotate(self) -> None:
        self._f.close()
        if self.max_files == 1:
            os.unlink(self.path)
        else:
            oldest = f"{self.path}.{self.max_files - 1}"
            if os.path.exists(oldest):
                os.unlink(oldest)
            for i in range(self.max_files - 2, 0, -1):
                if os.path.exists(f"{self.path}.{i}"):
                    os.replace(f"{self.path}.{i}", f"{self.path}.{i + 1}")
            os.replace(self.path, f"{self.path}.1")
        self._f = open(self.path, "ab")  # noqa: SIM115 (the writer owns the file until close())
        self._size = 0


def log_files(path: str) -> list[str]:
    """The rotated files of `path`, oldest first, then `path` itself."""
    older = []
    i = 1
    while os.path.exists(f"{path}.{i}"):
        older.append(f"{path}.{i}")
        i += 1
    return list(reversed(older)) + ([path] if os.path.exists(path) else [])


def parse_record(raw: bytes) -> tuple[str, str, bool, bytes] | None:
    """Split one CRI record into (time, stream, is_full, content); None if malformed."""
    parts = raw.rstrip(b"\n").split(b" ", 3)
    if len(parts) < 3:
        return None
    content = parts[3] if len(parts) == 4 else b""
    return parts[0].decode(), parts[1].decode(), parts[2] != b"P", content


class _Joiner:
    """Turns records into logical lines, joining P fragments per stream."""

    def __init__(self) -> None:
        self.partial: dict[str, tuple[str, bytearray]] = {}

    def feed(self, raw: bytes) -> LogLine | None:
        rec = parse_record(raw)
        if rec is None:
            return None
        ts, stream, full, content = rec
        first_ts, buf = self.partial.pop(stream, (ts, bytearray()))
        buf += content
        if not full:
            self.partial[stream] = (first_ts, buf)
            return None
        return LogLine(first_ts, stream, bytes(buf))


def _matches(line: LogLine, since_ns: int | None, streams: tuple[str, ...]) -> bool:
    if line.stream not in streams:
        return False
    return since_ns is None or parse_time_ns(line.time) >= since_ns


def format_line(line: LogLine, timestamps: bool) -> bytes:
    """The bytes kubectl logs prints for one line."""
    prefix = (line.time.encode() + b" ") if timestamps else b""
    return prefix + line.content + b"\n"


def read_lines(path: str, *, tail: int | None = None, since: str | None = None,
               streams: tuple[str, ...] = ("stdout", "stderr")) -> Iterator[LogLine]:
    """Logical lines of a container's log (all rotated files), filtered like kubectl logs.

    `tail` keeps only the last N lines (memory bounded by N); `since` is an RFC 3339 time.
    """
    since_ns = parse_time_ns(since) if since else None
    joiner = _Joiner()

    def lines() -> Iterator[LogLine]:
        for name in log_files(path):
            f = _open_or_none(name)
            if f is None:  # rotated away under us
                continue
            with f:
                yield from _feed_all(f, joiner, since_ns, streams)

    if tail is None or tail < 0:
        yield from lines()
    elif tail > 0:
        yield from deque(lines(), maxlen=tail)


def read_logs(path: str, *, tail: int | None = None, since: str | None = None, timestamps: bool = False,
              limit_bytes: int | None = None) -> bytes:
    """The whole (non-follow) `kubectl logs` answer as bytes."""
    out = bytearray()
    for line in read_lines(path, tail=tail, since=since):
        out += format_line(line, timestamps)
        if limit_bytes is not None and len(out) >= limit_bytes:
            return bytes(out[:limit_bytes])
    return bytes(out)


async def follow_logs(path: str, *, tail: int | None = None, since: str | None = None, timestamps: bool = False,
                      done: Callable[[], bool] = lambda: False, poll: float = 0.1) -> AsyncIterator[bytes]:
    """Yield formatted lines: the existing ones (per tail/since), then new ones as they come.

    Stops once `done()` is true (the container exited and its output is flushed) and the
    file has been read to the end.
    """
    since_ns = parse_time_ns(since) if since else None
    streams = ("stdout", "stderr")
    joiner = _Joiner()
    # Open the live file first so nothing written after the backlog read is missed.
    f = _open_or_none(path)
    older = [name for name in log_files(path) if name != path]

    carry = [b""]  # an unterminated record at the end of the live file

    def backlog() -> Iterator[LogLine]:
        for name in older:
            g = _open_or_none(name)
            if g is None:
                continue
            with g:
                yield from _feed_all(g, joiner, since_ns, streams)
        if f is not None:
            data = f.read()
            cut = data.rfind(b"\n") + 1
            carry[0] = data[cut:]
            yield from _feed_all(data[:cut].splitlines(keepends=True), joiner, since_ns, streams)

    history: Iterator[LogLine] | deque[LogLine] = backlog()
    if tail is not None and tail >= 0:
        history = deque(history, maxlen=tail) if tail > 0 else deque(history, maxlen=0)
    try:
        for old in history:
            yield format_line(old, timestamps)
        pending = carry[0]
        finishing = False
        while True:
            if f is None:
                f = _open_or_none(path)
            chunk = f.read(1 << 16) if f is not None else b""
            if chunk:
                pending += chunk
                *records, pending = pending.split(b"\n")
                for raw in records:
                    line = joiner.feed(raw + b"\n")
                    if line is not None and _matches(line, since_ns, streams):
                        yield format_line(line, timestamps)
                continue
            if f is not None and _rotated(f, path):
                f.close()
                f = _open_or_none(path)
                continue
            if finishing:
                return
            if done():
                finishing = True  # one more read: output may have landed just before exit
                continue
            await asyncio.sleep(poll)
    finally:
        if f is not None:
            f.close()


def _feed_all(raws: Iterable[bytes], joiner: _Joiner, since_ns: int | None, streams: tuple[str, ...]) -> Iterator[LogLine]:
    for raw in raws:
        line = joiner.feed(raw)
        if line is not None and _matches(line, since_ns, streams):
            yield line


def _open_or_none(path: str) -> BinaryIO | None:
    try:
        return open(path, "rb")
    except FileNotFoundError:
        return None


def _rotated(f: BinaryIO, path: str) -> bool:
    try:
        return os.stat(path).st_ino != os.fstat(f.fileno()).st_ino
    except FileNotFoundError:
        return False
