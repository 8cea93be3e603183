"""port-forward: the node agent's side of kubectl's and the Python clients' protocols.

* SPDY (kubectl ≤1.30) and SPDY tunnelled in a WebSocket (``SPDY/3.1+portforward.k8s.io``,
  kubectl ≥1.31): for every local connection the client opens an *error* stream and a
  *data* stream carrying the same ``requestID`` and ``port`` headers.  Once both of a
  pair exist we dial the pod's port and copy bytes until the pod side is finished, then
  FIN the data and error streams (kubectl waits for the error stream's EOF).  A failure
  is reported as text on the error stream (upstream kubelet ``portforward/httpstream.go``).
* Legacy WebSocket channels (``?ports=a,b``; Python ``kubernetes`` with
  ``v4.channel.k8s.io``, kr8s with no subprotocol): port *i* uses channel 2i for data
  and 2i+1 for errors, and the first message on each starts with the port as 2-byte
  little-endian (upstream ``portforward/websocket.go``).  One TCP connection per port
  lives as long as the WebSocket.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import struct
from collections.abc import Awaitable, Callable

from aiohttp import web

from kubelite.api.errors import StatusError, bad_request
from kubelite.streams import channels, upgrade
from kubelite.streams.spdy import Session, Stream

log = logging.getLogger(__name__)

PROTOCOL_V1 = "portforward.k8s.io"
WEBSOCKET_PROTOCOLS = ["", channels.V4, channels.V4_BASE64]
STREAM_CREATION_TIMEOUT = 30.0

Connect = Callable[[int], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


def _describe(request: web.Request) -> str:
    name = request.match_info.get("name") or request.path.rstrip("/").split("/")[-2]
    return name


async def serve_portforward(request: web.Request, connect: Connect) -> web.StreamResponse:
    """Serve ``pods/NAME/portforward`` in whichever protocol the client speaks."""
    owner: web.StreamResponse  # a WebSocketResponse when tunnelled, the hijacked response otherwise
    try:
        if upgrade.is_spdy_tunnel_request(request):
            protocol = upgrade.negotiate_tunnel(request, [PROTOCOL_V1])
            session, owner = await upgrade.upgrade_spdy_tunnel(request, protocol)
        elif channels.is_websocket_request(request):
            return await _serve_websocket(request, connect)
        else:
            protocol = upgrade.negotiate_spdy(request, [PROTOCOL_V1])
            session, owner = await upgrade.upgrade_spdy(request, protocol)
    except upgrade.HandshakeError as err:
        return err.response
    except StatusError as err:
        return web.Response(status=err.code, body=json.dumps(err.status).encode(),
                            content_type="application/json")
    try:
        await _SpdyForwarder(session, connect, _describe(request)).run()
    finally:
        await upgrade.finish_spdy(session, owner)
    return owner


async def _pump_to_tcp(src: Callable[[], Awaitable[bytes]], writer: asyncio.StreamWriter) -> None:
    """Client → pod; half-close the pod connection when the client is done sending."""
    while data := await src():
        writer.write(data)
        await writer.drain()
    with contextlib.suppress(OSError):
        if writer.can_write_eof():
            writer.write_eof()


async def _forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                   from_client: Callable[[], Awaitable[bytes]],
                   to_client: Callable[[bytes], Awaitable[None]]) -> None:
    """Copy both ways until the pod side reaches EOF."""
    upstream = asyncio.create_task(_pump_to_tcp(from_client, writer))
    try:
        while data := await reader.read(32768):
            await to_client(data)
    finally:
        upstream.cancel()
        await asyncio.gather(upstream, return_exceptions=True)
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


# -- SPDY -------------------------------------------------------------------------------


class _Pair:
    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        self.data: Stream | None = None
        self.error: Stream | None = None


class _SpdyForwarder:
    """Pairs data/error streams by requestID and forwards each complete pair."""

    def __init__(self, session: Session, connect: Connect, pod: str) -> None:
        self.session = session
        self.connect = connect
        self.pod = pod
        self.pairs: dict[str, _Pair] = {}
        self.tasks: set[asyncio.Task] = set()

    async def run(self) -> None:
        """Accept streams until the client goes away."""
        try:
            while (stream := await self.session.accept()) is not None:
                self._received(stream)
        finally:
            for task in self.tasks:
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _received(self, stream: Stream) -> None:
        port, kind = stream.header("port"), stream.stream_type
        if not port.isdigit() or not 0 < int(port) < 65536 or kind not in ("data", "error"):
            log.warning("port-forward: rejecting stream (port=%r, streamType=%r)", port, kind)
            stream.reset()
            return
        stream.reply()
        rid = stream.header("requestid")
        if not rid:  # very old clients: derive the pair id from the stream ids
            rid = str(stream.id if kind == "error" else stream.id - 2)
        pair = self.pairs.get(rid)
        if pair is None:
            pair = self.pairs[rid] = _Pair(rid)
            self._spawn(self._expire(pair))
        if getattr(pair, kind) is not None:
            self._spawn(self._report(pair, f"error processing stream for request {rid}: "
                                           f"{kind} stream already assigned"))
            return
        setattr(pair, kind, stream)
        if pair.data is not None and pair.error is not None:
            self._spawn(self._forward(pair))

    async def _expire(self, pair: _Pair) -> None:
        await asyncio.sleep(STREAM_CREATION_TIMEOUT)
        if self.pairs.get(pair.request_id) is pair and (pair.data is None or pair.error is None):
            await self._report(pair, f"timed out waiting for streams (request={pair.request_id})")
            self.pairs.pop(pair.request_id, None)

    async def _report(self, pair: _Pair, message: str) -> None:
        if pair.error is not None:
            with contextlib.suppress(Exception):
                await pair.error.write(message.encode())

    async def _forward(self, pair: _Pair) -> None:
        assert pair.data is not None and pair.error is not None
        self.pairs.pop(pair.request_id, None)
        data, error = pair.data, pair.error
        port = int(data.header("port"))
        try:
            reader, writer = await self.connect(port)
            await _forward(reader, writer, data.read, data.write)
        except Exception as e:
            msg = f"error forwarding port {port} to pod {self.pod}: {e}"
            log.info("%s", msg)
            with contextlib.suppress(Exception):
                await error.write(msg.encode())
        finally:
            data.close()
            error.close()


# -- legacy WebSocket channels ----------------------------------------------------------


def parse_ports(request: web.Request) -> list[int]:
    """The ``ports`` query parameter(s): repeated and/or comma-separated."""
    values = request.query.getall("ports", [])
    if not values:
        raise bad_request('query parameter "ports" is required')
    ports = []
    for value in values:
        if not value:
            raise bad_request('query parameter "ports" cannot be empty')
        for part in value.split(","):
            if not part.isdigit() or not 0 < int(part) < 65536:
                raise bad_request(f'unable to parse "{value}" as a port')
            ports.append(int(part))
    return ports


async def _serve_websocket(request: web.Request, connect: Connect) -> web.StreamResponse:
    ports = parse_ports(request)
    protocol = channels.negotiate(request, WEBSOCKET_PROTOCOLS)
    if protocol is None:
        raise upgrade.HandshakeError(web.Response(status=403, text=(
            f"requested protocol(s) are not supported: {channels.offered_protocols(request)}; "
            f"supports {WEBSOCKET_PROTOCOLS}\n")))
    ws = await channels.accept_websocket(request, protocol)
    conn = channels.ChannelConn(ws, protocol, readable=[2 * i for i in range(len(ports))])
    conn.start()
    pod = _describe(request)
    try:
        for i, port in enumerate(ports):
            prefix = struct.pack("<H", port)
            await conn.send(2 * i, prefix)
            await conn.send(2 * i + 1, prefix)
        await asyncio.gather(*(_forward_channel(conn, connect, i, port, pod) for i, port in enumerate(ports)))
    finally:
        await conn.close()
    return ws


async def _forward_channel(conn: channels.ChannelConn, connect: Connect, index: int, port: int, pod: str) -> None:
    data_ch, err_ch = 2 * index, 2 * index + 1
    reader_from_client = conn.reader(data_ch)

    async def from_client() -> bytes:
        return await reader_from_client.read(32768)

    async def to_client(data: bytes) -> None:
        await conn.send(data_ch, data)

    try:
        reader, writer = await connect(port)
        await _forward(reader, writer, from_client, to_client)
    except Exception as e:
        with contextlib.suppress(Exception):
            await conn.send(err_ch, f"error forwarding port {port} to pod {pod}: {e}".encode())
