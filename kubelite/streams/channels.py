"""The WebSocket channel protocol (k8s.io/apimachinery ``wsstream``) on aiohttp.

Every binary message starts with one byte naming the channel; the rest is payload.
With the ``base64.*`` subprotocols messages are text: an ASCII digit for the channel,
then the payload in standard base64.  ``v5.channel.k8s.io`` adds channel 255, the
close signal: ``[255, n]`` means "no more data on channel n" (kubectl sends it when
its stdin hits EOF).  The empty subprotocol (kr8s, very old clients) is binary v1.

A ``ChannelConn`` demultiplexes incoming messages into one ``asyncio.StreamReader`` per
readable channel; writes go straight out as one message each.
"""
from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import Iterable

from aiohttp import WSMsgType, web

log = logging.getLogger(__name__)

CLOSE_CHANNEL = 255

V1 = "channel.k8s.io"
V1_BASE64 = "base64.channel.k8s.io"
V4 = "v4.channel.k8s.io"
V4_BASE64 = "v4.base64.channel.k8s.io"
V5 = "v5.channel.k8s.io"

# subprotocol -> is it base64 (text) framing?
BASE64_PROTOCOLS = {V1_BASE64, V4_BASE64}


def is_websocket_request(request: web.Request) -> bool:
    """True for ``Connection: upgrade`` + ``Upgrade: websocket`` (upstream IsWebSocketRequest)."""
    if request.headers.get("Upgrade", "").lower() != "websocket":
        return False
    return any(t.strip().lower() == "upgrade" for t in request.headers.get("Connection", "").split(","))


def offered_protocols(request: web.Request) -> list[str]:
    """Subprotocols the client offered, in its order of preference."""
    return [p.strip() for h in request.headers.getall("Sec-WebSocket-Protocol", [])
            for p in h.split(",") if p.strip()]


def negotiate(request: web.Request, supported: Iterable[str]) -> str | None:
    """The first client-offered subprotocol we support; "" when none was offered; None = no match."""
    offered = offered_protocols(request)
    if not offered:
        return "" if "" in supported else None
    supported = list(supported)
    for proto in offered:
        if proto in supported and proto:
            return proto
    return None


async def accept_websocket(request: web.Request, protocol: str) -> web.WebSocketResponse:
    """Complete the WebSocket handshake, echoing ``protocol`` (none if empty)."""
    ws = web.WebSocketResponse(protocols=(protocol,) if protocol else (), autoping=True,
                               max_msg_size=0, compress=False)
    await ws.prepare(request)
    return ws


class ChannelConn:
    """A multiplexed channel connection over an accepted WebSocket."""

    def __init__(self, ws: web.WebSocketResponse, protocol: str, readable: Iterable[int]) -> None:
        self.ws = ws
        self.protocol = protocol
        self.base64 = protocol in BASE64_PROTOCOLS
        self.close_signal = protocol == V5
        self._readers = {ch: asyncio.StreamReader(limit=2**31) for ch in readable}
        self._write_lock = asyncio.Lock()
        self._task: asyncio.Task | None = None
        self.closed = asyncio.Event()  # the peer went away (or we closed)

    def start(self) -> None:
        """Begin demultiplexing incoming messages."""
        self._task = asyncio.create_task(self._read_loop())

    def reader(self, channel: int) -> asyncio.StreamReader:
        """The byte stream of a readable channel (EOF on close signal or disconnect)."""
        return self._readers[channel]

    async def send(self, channel: int, data: bytes) -> None:
        """Write ``data`` as one message on ``channel`` (an empty payload is allowed)."""
        if self.ws.closed:
            raise ConnectionResetError("websocket closed")
        async with self._write_lock:
            if self.base64:
                await self.ws.send_str(chr(ord("0") + channel) + base64.b64encode(data).decode())
            else:
                await self.ws.send_bytes(bytes([channel]) + data)

    async def close(self) -> None:
        """Send a normal close frame and stop reading."""
        with contextlib.suppress(Exception):
            await self.ws.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        self._finish()

    def _finish(self) -> None:
        for r in self._readers.values():
            if not r.at_eof():
                r.feed_eof()
        self.closed.set()

    async def _read_loop(self) -> None:
        try:
            async for msg in self.ws:
                if msg.type == WSMsgType.BINARY:
                    raw = msg.data
                elif msg.type == WSMsgType.TEXT:
                    raw = msg.data.encode()
                else:
                    continue
                if not raw:
                    continue
                self._dispatch(raw)
        except Exception as e:  # a broken socket ends the session like a close
            log.debug("websocket read failed: %s", e)
        finally:
            self._finish()

    def _dispatch(self, raw: bytes) -> None:
        channel, payload = raw[0], raw[1:]
        if self.base64:
            channel -= ord("0")
            try:
                payload = base64.b64decode(payload)
            except ValueError:
                log.debug("invalid base64 on channel %d", channel)
                return
        if channel == CLOSE_CHANNEL and self.close_signal:
            if payload and payload[0] in self._readers and not self._readers[payload[0]].at_eof():
                self._readers[payload[0]].feed_eof()
            return
        reader = self._readers.get(channel)
        if reader is None or reader.at_eof():
            return  # write-only or ignored channel, as upstream
        if payload:
            reader.feed_data(payload)
