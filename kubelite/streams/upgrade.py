"""Taking over an aiohttp connection for SPDY, plain or tunnelled in a WebSocket.

Plain SPDY (kubectl ≤1.29 exec, ≤1.30 port-forward): after the ``101 Switching Protocols``
the TCP connection carries raw SPDY frames.  aiohttp only hands a connection over for
``Upgrade: websocket``, so we do what ``WebSocketResponse`` does internally: install our
own payload parser on the request's protocol (``protocol.set_parser``), which from then
on receives every byte the client sends, and write the 101 and our frames through the
response's writer.  The parser goes in *before* the 101 leaves, so no byte can slip into
aiohttp's HTTP parser.

Tunnelled SPDY (kubectl ≥1.31 port-forward): a WebSocket whose subprotocol is
``SPDY/3.1+<protocol>``; its binary messages are just slices of the SPDY byte stream.

Handshake rules follow apimachinery ``httpstream.Handshake`` and ``spdy/upgrade.go``.
"""
from __future__ import annotations

import asyncio
from collections.abc import Iterable

from aiohttp import WSMsgType, web

from kubelite.streams import channels
from kubelite.streams.spdy import Session

SPDY_31 = "SPDY/3.1"
TUNNEL_PREFIX = "SPDY/3.1+"
HEADER_PROTOCOL_VERSION = "X-Stream-Protocol-Version"
HEADER_ACCEPTED_VERSIONS = "X-Accepted-Stream-Protocol-Versions"


class HandshakeError(Exception):
    """The upgrade cannot proceed; ``response`` is what to send instead."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.text)
        self.response = response


def is_spdy_request(request: web.Request) -> bool:
    """``Connection`` mentions upgrade and ``Upgrade`` mentions SPDY/3.1."""
    conn = request.headers.get("Connection", "").lower()
    return "upgrade" in conn and SPDY_31.lower() in request.headers.get("Upgrade", "").lower()


def is_spdy_tunnel_request(request: web.Request) -> bool:
    """A WebSocket request offering a ``SPDY/3.1+…`` subprotocol."""
    return channels.is_websocket_request(request) and any(
        p.startswith(TUNNEL_PREFIX) for p in channels.offered_protocols(request))


def _client_protocols(request: web.Request) -> list[str]:
    return [p.strip() for h in request.headers.getall(HEADER_PROTOCOL_VERSION, [])
            for p in h.split(",") if p.strip()]


def _first_match(offered: Iterable[str], supported: Iterable[str]) -> str:
    supported = list(supported)
    return next((p for p in offered if p in supported), "")


def negotiate_spdy(request: web.Request, supported: list[str]) -> str:
    """Pick the stream protocol for a SPDY upgrade, or raise HandshakeError (400/403)."""
    if HEADER_PROTOCOL_VERSION not in request.headers:
        raise HandshakeError(web.Response(status=400, text=(
            f"unable to upgrade: header {HEADER_PROTOCOL_VERSION} does not exist in request "
            f"with {len(request.headers)} headers\n")))
    offered = _client_protocols(request)
    if not offered:
        raise HandshakeError(web.Response(status=400, text=(
            f"unable to upgrade: header {HEADER_PROTOCOL_VERSION} contains "
            f"{request.headers.getall(HEADER_PROTOCOL_VERSION)}, but no valid protocols\n")))
    chosen = _first_match(offered, supported)
    if not chosen:
        resp = web.Response(status=403, text=(
            f"unable to upgrade: unable to negotiate protocol: client supports "
            f"[{' '.join(offered)}], server accepts [{' '.join(supported)}]\n"))
        for proto in supported:
            resp.headers.add(HEADER_ACCEPTED_VERSIONS, proto)
        raise HandshakeError(resp)
    if not is_spdy_request(request):
        raise HandshakeError(web.Response(status=400, text=(
            "unable to upgrade: missing upgrade headers in request\n")))
    return chosen


def negotiate_tunnel(request: web.Request, supported: list[str]) -> str:
    """Pick the inner protocol of a ``SPDY/3.1+…`` WebSocket tunnel, or raise HandshakeError."""
    offered = [p[len(TUNNEL_PREFIX):] for p in channels.offered_protocols(request)
               if p.startswith(TUNNEL_PREFIX)]
    chosen = _first_match(offered, supported)
    if not chosen:
        raise HandshakeError(web.Response(status=400, text=(
            f"unable to upgrade: unable to negotiate protocol: client supports "
            f"{offered}, server accepts {supported}\n")))
    return chosen


class RawFeeder:
    """Stands in for aiohttp's WebSocketReader: every received byte goes to ``reader``."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader = reader

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self.reader.feed_data(data)
        return False, b""

    def feed_eof(self) -> None:
        self.reader.feed_eof()


async def upgrade_spdy(request: web.Request, protocol: str) -> tuple[Session, web.StreamResponse]:
    """Answer 101 for SPDY/3.1 and start a Session over the hijacked connection."""
    resp = web.StreamResponse(status=101, headers={
        "Connection": "Upgrade", "Upgrade": SPDY_31, HEADER_PROTOCOL_VERSION: protocol})
    resp.force_close()
    reader = asyncio.StreamReader(limit=2**31)
    # set_parser is typed for aiohttp's WebSocketReader; RawFeeder has the two methods it calls.
    request.protocol.set_parser(RawFeeder(reader))  # type: ignore[arg-type]
    request.protocol.keep_alive(False)
    await resp.prepare(request)

    async def read() -> bytes:
        return await reader.read(65536)

    session = Session(read, resp.write)
    session.start()
    return session, resp


async def upgrade_spdy_tunnel(request: web.Request, protocol: str) -> tuple[Session, web.WebSocketResponse]:
    """Accept the WebSocket (subprotocol ``SPDY/3.1+protocol``) and run SPDY inside it."""
    ws = await channels.accept_websocket(request, TUNNEL_PREFIX + protocol)

    async def read() -> bytes:
        while True:
            msg = await ws.receive()
            if msg.type == WSMsgType.BINARY:
                if msg.data:
                    return msg.data
            elif msg.type == WSMsgType.TEXT:
                if msg.data:
                    return msg.data.encode()
            else:  # CLOSE, CLOSING, CLOSED, ERROR
                return b""

    async def write(data: bytes) -> None:
        await ws.send_bytes(data)

    session = Session(read, write)
    session.start()
    return session, ws


async def finish_spdy(session: Session, transport_owner: web.StreamResponse) -> None:
    """Say GOAWAY, flush, and release the underlying connection."""
    await session.close()
    if isinstance(transport_owner, web.WebSocketResponse):
        await transport_owner.close()
