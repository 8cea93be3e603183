"""SPDY/3.1, server side: the framing kubectl speaks for exec (≤1.29) and port-forward.

Design.  A ``Session`` owns one byte pipe (a hijacked HTTP connection, or the binary
messages of a WebSocket tunnel) given as two coroutines: ``read()`` returning the next
chunk (``b""`` at EOF) and ``write(bytes)``.  One task reads and dispatches frames; every
outgoing frame is encoded *at the moment it is queued* and written by a single writer
task, so the shared zlib header stream is emitted in exactly the order it was compressed.
The peer opens streams (SYN_STREAM); the application takes them from ``accept()`` and
answers with ``Stream.reply()`` (SYN_REPLY) or ``Stream.reset()``.

Flow control.  We grant the peer more window (WINDOW_UPDATE) as the application consumes
data, as SPDY/3.1 asks.  We track the peer's grants too, but only wait on them when
``enforce_send_window`` is set: github.com/moby/spdystream — the library behind every
kubectl — never sends WINDOW_UPDATE, so honouring a 64 KiB window would stall kubectl.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

VERSION = 3
FLAG_FIN = 0x01
FLAG_UNIDIRECTIONAL = 0x02

SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS = 1, 2, 3, 4
PING, GOAWAY, HEADERS, WINDOW_UPDATE = 6, 7, 8, 9

# RST_STREAM status codes.
PROTOCOL_ERROR, INVALID_STREAM, REFUSED_STREAM, UNSUPPORTED_VERSION, CANCEL = 1, 2, 3, 4, 5
INTERNAL_ERROR, FLOW_CONTROL_ERROR, STREAM_IN_USE, STREAM_ALREADY_CLOSED = 6, 7, 8, 9

SETTINGS_INITIAL_WINDOW_SIZE = 7
DEFAULT_WINDOW = 64 * 1024
MAX_DATA_CHUNK = 32 * 1024  # outgoing DATA frames are cut to this size
_WRITE_HIGH_WATER = 256 * 1024


def _build_dictionary() -> bytes:
    # The SPDY/3 zlib dictionary: length-prefixed header words, then one literal run.
    words = [
        "options", "head", "post", "put", "delete", "trace", "accept", "accept-charset",
        "accept-encoding", "accept-language", "accept-ranges", "age", "allow",
        "authorization", "cache-control", "connection", "content-base", "content-encoding",
        "content-language", "content-length", "content-location", "content-md5",
        "content-range", "content-type", "date", "etag", "expect", "expires", "from", "host",
        "if-match", "if-modified-since", "if-none-match", "if-range", "if-unmodified-since",
        "last-modified", "location", "max-forwards", "pragma", "proxy-authenticate",
        "proxy-authorization", "range", "referer", "retry-after", "server", "te", "trailer",
        "transfer-encoding", "upgrade", "user-agent", "vary", "via", "warning",
        "www-authenticate", "method", "get", "status", "200 OK", "version", "HTTP/1.1", "url",
        "public", "set-cookie", "keep-alive", "origin",
    ]
    tail = (
        "100101201202205206300302303304305306307402405406407408409410411412413414415416417"
        "502504505203 Non-Authoritative Information204 No Content301 Moved Permanently"
        "400 Bad Request401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error"
        "501 Not Implemented503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct "
        "Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,"
        "image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,"
        "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8"
        "charset=iso-8859-1,utf-,*,enq=0."
    )
    out = b"".join(struct.pack(">I", len(w)) + w.encode() for w in words)
    return out + tail.encode()


DICTIONARY = _build_dictionary()

Headers = dict[str, list[str]]


class ProtocolError(Exception):
    """The peer sent bytes that are not valid SPDY/3."""


class HeaderCodec:
    """The two zlib streams (one per direction) that carry SPDY header blocks."""

    def __init__(self) -> None:
        self._compressor = zlib.compressobj(9, zlib.DEFLATED, 15, 8, zlib.Z_DEFAULT_STRATEGY, DICTIONARY)
        self._decompressor = zlib.decompressobj(zdict=DICTIONARY)

    def encode(self, headers: Headers) -> bytes:
        """Compress one header block; names are lowercased, values NUL-joined."""
        block = [struct.pack(">I", len(headers))]
        for name, values in headers.items():
            n, v = name.lower().encode(), "\x00".join(values).encode()
            block += [struct.pack(">I", len(n)), n, struct.pack(">I", len(v)), v]
        return self._compressor.compress(b"".join(block)) + self._compressor.flush(zlib.Z_SYNC_FLUSH)

    def decode(self, data: bytes) -> Headers:
        """Decompress one header block into {lowercase name: [values]}."""
        try:
            raw = self._decompressor.decompress(data)
        except zlib.error as e:
            raise ProtocolError(f"bad header block: {e}") from e
        try:
            (count,) = struct.unpack_from(">I", raw, 0)
            pos = 4
            headers: Headers = {}
            for _ in range(count):
                (ln,) = struct.unpack_from(">I", raw, pos)
                name = raw[pos + 4:pos + 4 + ln].decode().lower()
                pos += 4 + ln
                (lv,) = struct.unpack_from(">I", raw, pos)
                value = raw[pos + 4:pos + 4 + lv].decode()
                pos += 4 + lv
                headers.setdefault(name, []).extend(value.split("\x00"))
        except (struct.error, UnicodeDecodeError) as e:
            raise ProtocolError(f"bad header block: {e}") from e
        return headers


@dataclass
class Frame:
    """One decoded frame.  ``kind`` is 0 for DATA, else the control frame type."""

    kind: int
    flags: int = 0
    stream_id: int = 0
    data: bytes = b""  # DATA payload
    headers: Headers = field(default_factory=dict)  # SYN_STREAM / SYN_REPLY / HEADERS
    status: int = 0  # RST_STREAM, GOAWAY
    value: int = 0  # PING id, WINDOW_UPDATE delta, GOAWAY last-good stream
    settings: dict[int, int] = field(default_factory=dict)


class FrameParser:
    """Incremental parser: ``feed(bytes)`` returns the complete frames seen so far."""

    def __init__(self, codec: HeaderCodec) -> None:
        self._codec = codec
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        """Buffer ``data`` and decode every complete frame in the buffer."""
        self._buf += data
        frames = []
        while len(self._buf) >= 8:
            (length,) = struct.unpack_from(">I", self._buf, 4)
            flags, length = length >> 24, length & 0xFFFFFF
            if len(self._buf) < 8 + length:
                break
            head = bytes(self._buf[:8])
            body = bytes(self._buf[8:8 + length])
            del self._buf[:8 + length]
            frames.append(self._decode(head, flags, body))
        return frames

    def _decode(self, head: bytes, flags: int, body: bytes) -> Frame:
        (word,) = struct.unpack_from(">I", head, 0)
        if not word & 0x80000000:
            return Frame(0, flags, word & 0x7FFFFFFF, data=body)
        version, kind = (word >> 16) & 0x7FFF, word & 0xFFFF
        if version != VERSION:
            raise ProtocolError(f"unsupported SPDY version {version}")
        try:
            if kind == SYN_STREAM:
                sid, _assoc = struct.unpack_from(">II", body, 0)
                return Frame(kind, flags, sid & 0x7FFFFFFF, headers=self._codec.decode(body[10:]))
            if kind in (SYN_REPLY, HEADERS):
                (sid,) = struct.unpack_from(">I", body, 0)
                return Frame(kind, flags, sid & 0x7FFFFFFF, headers=self._codec.decode(body[4:]))
            if kind == RST_STREAM:
                sid, status = struct.unpack_from(">II", body, 0)
                return Frame(kind, flags, sid & 0x7FFFFFFF, status=status)
            if kind == SETTINGS:
                (count,) = struct.unpack_from(">I", body, 0)
                values = {}
                for i in range(count):
                    fid, val = struct.unpack_from(">II", body, 4 + 8 * i)
                    values[fid & 0xFFFFFF] = val
                return Frame(kind, flags, settings=values)
            if kind == PING:
                return Frame(kind, flags, value=struct.unpack_from(">I", body, 0)[0])
            if kind == GOAWAY:
                last, status = struct.unpack_from(">II", body, 0)
                return Frame(kind, flags, value=last & 0x7FFFFFFF, status=status)
            if kind == WINDOW_UPDATE:
                sid, delta = struct.unpack_from(">II", body, 0)
                return Frame(kind, flags, sid & 0x7FFFFFFF, value=delta & 0x7FFFFFFF)
        except struct.error as e:
            raise ProtocolError(f"short control frame type {kind}") from e
        return Frame(kind, flags)  # unknown control frames are ignored, as the spec says


def _control(kind: int, flags: int, body: bytes) -> bytes:
    return struct.pack(">HHI", 0x8000 | VERSION, kind, (flags << 24) | len(body)) + body


def encode_data(stream_id: int, data: bytes, fin: bool = False) -> bytes:
    """A DATA frame."""
    return struct.pack(">II", stream_id & 0x7FFFFFFF, ((FLAG_FIN if fin else 0) << 24) | len(data)) + data


def encode_syn_stream(codec: HeaderCodec, stream_id: int, headers: Headers, flags: int = 0) -> bytes:
    """A SYN_STREAM frame (used by clients; we keep it for tests and symmetry)."""
    return _control(SYN_STREAM, flags, struct.pack(">IIBB", stream_id, 0, 0, 0) + codec.encode(headers))


def encode_syn_reply(codec: HeaderCodec, stream_id: int, headers: Headers, fin: bool = False) -> bytes:
    """A SYN_REPLY frame."""
    return _control(SYN_REPLY, FLAG_FIN if fin else 0, struct.pack(">I", stream_id) + codec.encode(headers))


def encode_rst_stream(stream_id: int, status: int) -> bytes:
    """A RST_STREAM frame."""
    return _control(RST_STREAM, 0, struct.pack(">II", stream_id, status))


def encode_settings(values: dict[int, int]) -> bytes:
    """A SETTINGS frame."""
    body = struct.pack(">I", len(values)) + b"".join(struct.pack(">II", k, v) for k, v in values.items())
    return _control(SETTINGS, 0, body)


def encode_ping(ping_id: int) -> bytes:
    """A PING frame."""
    return _control(PING, 0, struct.pack(">I", ping_id))


def encode_goaway(last_stream_id: int, status: int = 0) -> bytes:
    """A GOAWAY frame."""
    return _control(GOAWAY, 0, struct.pack(">II", last_stream_id, status))


def encode_window_update(stream_id: int, delta: int) -> bytes:
    """A WINDOW_UPDATE frame (stream 0 = the whole session)."""
    return _control(WINDOW_UPDATE, 0, struct.pack(">II", stream_id, delta))


class StreamClosed(Exception):
    """Writing to a stream that was reset, half-closed by us, or whose session ended."""


class Stream:
    """One peer-initiated stream: ``read``/``write``/``close`` like a socket half-pair."""

    def __init__(self, session: Session, stream_id: int, headers: Headers) -> None:
        self.session = session
        self.id = stream_id
        self.headers = headers
        self._reader = asyncio.StreamReader(limit=2**31)
        self.replied = False
        self.local_closed = False  # we sent FIN (or RST)
        self.remote_closed = False  # peer sent FIN (or RST)
        self.reset_by_peer = False
        self.send_window = session.initial_send_window
        self._window_open = asyncio.Event()
        self._window_open.set()
        self._unacked = 0  # bytes consumed but not yet granted back

    def header(self, name: str, default: str = "") -> str:
        """First value of a request header (names are case-insensitive)."""
        values = self.headers.get(name.lower())
        return values[0] if values else default

    @property
    def stream_type(self) -> str:
        """The ``streamType`` header kubectl puts on every stream."""
        return self.header("streamtype")

    def reply(self) -> None:
        """Accept the stream: send SYN_REPLY with no headers."""
        if not self.replied and not self.local_closed:
            self.replied = True
            self.session._send(encode_syn_reply(self.session.codec, self.id, {}))

    async def read(self, n: int = 65536) -> bytes:
        """Up to ``n`` bytes; ``b""`` once the peer closed or reset the stream."""
        data = await self._reader.read(n)
        if data:
            self._consumed(len(data))
        return data

    async def readall(self) -> bytes:
        """Everything until the peer's FIN."""
        chunks = []
        while chunk := await self.read():
            chunks.append(chunk)
        return b"".join(chunks)

    async def write(self, data: bytes) -> None:
        """Send data, cut into DATA frames, waiting for the socket to drain."""
        view = memoryview(data)
        while view:
            if self.local_closed or self.session.closed:
                raise StreamClosed(f"stream {self.id} is closed")
            size = min(len(view), MAX_DATA_CHUNK)
            if self.session.enforce_send_window:
                while self.send_window <= 0 and not self.local_closed:
                    self._window_open.clear()
                    await self._window_open.wait()
                size = min(size, max(self.send_window, 0)) or size
                self.send_window -= size
            self.session._send(encode_data(self.id, bytes(view[:size])))
            view = view[size:]
            await self.session.drain()

    def close(self) -> None:
        """Half-close: send an empty DATA frame with FIN."""
        if not self.local_closed and not self.session.closed:
            self.local_closed = True
            self.session._send(encode_data(self.id, b"", fin=True))
            self.session._maybe_forget(self)
        self.local_closed = True

    def reset(self, status: int = CANCEL) -> None:
        """Abort the stream in both directions with RST_STREAM."""
        if not self.session.closed and not (self.local_closed and self.remote_closed):
            self.session._send(encode_rst_stream(self.id, status))
        self.local_closed = True
        self._remote_done()
        self._window_open.set()
        self.session._maybe_forget(self)

    def _consumed(self, n: int) -> None:
        # Grant the window back in batches, as browsers and Go's SPDY stack did.
        self._unacked += n
        if self._unacked >= self.session.initial_recv_window // 2 and not self.remote_closed:
            self.session._send(encode_window_update(self.id, self._unacked))
            self._unacked = 0
        self.session._consumed(n)

    def _remote_done(self) -> None:
        if not self.remote_closed:
            self.remote_closed = True
            self._reader.feed_eof()


Sink = Callable[[bytes], Awaitable[None]]
Source = Callable[[], Awaitable[bytes]]


class Session:
    """A server-side SPDY/3.1 connection over an arbitrary byte pipe."""

    def __init__(self, read: Source, write: Sink, *, enforce_send_window: bool = False) -> None:
        self.codec = HeaderCodec()
        self._parser = FrameParser(self.codec)
        self._read, self._write = read, write
        self.enforce_send_window = enforce_send_window
        self.initial_send_window = DEFAULT_WINDOW
        self.initial_recv_window = DEFAULT_WINDOW
        self.streams: dict[int, Stream] = {}
        self._incoming: asyncio.Queue[Stream | None] = asyncio.Queue()
        self._outq: list[bytes] = []
        self._pending = 0
        self._wake_writer = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self._session_unacked = 0
        self._last_stream_id = 0
        self.closed = False
        self.done = asyncio.Event()  # set once the pipe is finished in both directions
        self._tasks: list[asyncio.Task] = []

    def start(self) -> None:
        """Begin reading and writing frames."""
        self._tasks = [asyncio.create_task(self._read_loop()), asyncio.create_task(self._write_loop())]

    async def accept(self) -> Stream | None:
        """The next stream the peer opened, or None once the session is over."""
        if self.closed and self._incoming.empty():
            return None
        return await self._incoming.get()

    async def drain(self) -> None:
        """Wait until queued output is below the high-water mark."""
        while self._pending > _WRITE_HIGH_WATER and not self.closed:
            self._drained.clear()
            await self._drained.wait()

    async def close(self, status: int = 0) -> None:
        """Send GOAWAY, flush what is queued and stop the session."""
        if not self.closed:
            self._send(encode_goaway(self._last_stream_id, status))
            await self._flush()
        self._shutdown()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _flush(self) -> None:
        while self._pending > 0 and not self.closed:
            self._drained.clear()
            await self._drained.wait()

    # -- internals -----------------------------------------------------------------------

    def _send(self, frame: bytes) -> None:
        if self.closed:
            return
        self._outq.append(frame)
        self._pending += len(frame)
        self._wake_writer.set()

    async def _write_loop(self) -> None:
        try:
            while not self.closed:
                await self._wake_writer.wait()
                self._wake_writer.clear()
                while self._outq:
                    batch, self._outq = b"".join(self._outq), []
                    await self._write(batch)
                    self._pending -= len(batch)
                self._drained.set()
        except (ConnectionError, RuntimeError) as e:
            log.debug("spdy write failed: %s", e)
        finally:
            self._shutdown()

    async def _read_loop(self) -> None:
        try:
            while not self.closed:
                chunk = await self._read()
                if not chunk:
                    break
                for frame in self._parser.feed(chunk):
                    if self._handle(frame):
                        return
        except ProtocolError as e:
            log.warning("spdy protocol error: %s", e)
            self._send(encode_goaway(self._last_stream_id, 1))
            await self._flush()
        except (ConnectionError, asyncio.IncompleteReadError) as e:
            log.debug("spdy read failed: %s", e)
        finally:
            self._shutdown()

    def _handle(self, f: Frame) -> bool:
        """Apply one frame; True means the peer said GOAWAY."""
        if f.kind == 0:
            stream = self.streams.get(f.stream_id)
            if stream is None or stream.remote_closed:
                return False
            if f.data:
                stream._reader.feed_data(f.data)
            if f.flags & FLAG_FIN:
                stream._remote_done()
                self._maybe_forget(stream)
        elif f.kind == SYN_STREAM:
            if f.stream_id in self.streams or f.stream_id <= self._last_stream_id or f.stream_id % 2 == 0:
                self._send(encode_rst_stream(f.stream_id, PROTOCOL_ERROR))
                return False
            self._last_stream_id = f.stream_id
            stream = Stream(self, f.stream_id, f.headers)
            self.streams[f.stream_id] = stream
            if f.flags & (FLAG_FIN | FLAG_UNIDIRECTIONAL):
                stream._remote_done()
            self._incoming.put_nowait(stream)
        elif f.kind == HEADERS:
            stream = self.streams.get(f.stream_id)
            if stream is not None and f.flags & FLAG_FIN:
                stream._remote_done()
                self._maybe_forget(stream)
        elif f.kind == RST_STREAM:
            stream = self.streams.pop(f.stream_id, None)
            if stream is not None:
                stream.reset_by_peer = stream.local_closed = True
                stream._remote_done()
                stream._window_open.set()
        elif f.kind == SETTINGS:
            if SETTINGS_INITIAL_WINDOW_SIZE in f.settings:
                new = f.settings[SETTINGS_INITIAL_WINDOW_SIZE]
                for s in self.streams.values():
                    s.send_window += new - self.initial_send_window
                self.initial_send_window = new
        elif f.kind == PING:
            if f.value % 2 == 1:  # client-initiated pings are odd; echo them
                self._send(encode_ping(f.value))
        elif f.kind == WINDOW_UPDATE:
            stream = self.streams.get(f.stream_id)
            if stream is not None:
                stream.send_window += f.value
                stream._window_open.set()
        elif f.kind == GOAWAY:
            return True
        return False

    def _consumed(self, n: int) -> None:
        self._session_unacked += n
        if self._session_unacked >= self.initial_recv_window // 2:
            self._send(encode_window_update(0, self._session_unacked))
            self._session_unacked = 0

    def _maybe_forget(self, stream: Stream) -> None:
        if stream.local_closed and stream.remote_closed:
            self.streams.pop(stream.id, None)

    def _shutdown(self) -> None:
        if self.closed:
            return
        self.closed = True
        for stream in list(self.streams.values()):
            stream.local_closed = True
            stream._remote_done()
            stream._window_open.set()
        self.streams.clear()
        self._incoming.put_nowait(None)
        self._drained.set()
        self._wake_writer.set()
        self.done.set()
