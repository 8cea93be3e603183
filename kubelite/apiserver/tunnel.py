"""Byte-for-byte tunnelling of upgrade requests (WebSocket, SPDY) to a node agent.

Like kube-apiserver's UpgradeAwareHandler: the client's request line and headers are
replayed to the agent; if the agent answers ``101 Switching Protocols`` the same
answer goes back to the client and from then on both connections are spliced, so the
streaming protocol is the agent's business alone.
"""
from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web

from kubelite.api import errors
from kubelite.streams.upgrade import RawFeeder

_SKIP_REQ = {"host", "authorization", "content-length", "transfer-encoding"}
_SKIP_RESP = {"content-length", "transfer-encoding", "date", "server", "content-type"}


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, str, list[tuple[str, str]]]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    status = int(parts[1])
    reason = parts[2] if len(parts) > 2 else ""
    headers = []
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers.append((k.strip(), v.strip()))
    return status, reason, headers


async def _pipe(src_read: Callable[[], Awaitable[bytes]], dst_write: Callable[[bytes], Awaitable[None]],
                on_done: Callable[[], None]) -> None:
    try:
        while True:
            data = await src_read()
            if not data:
                break
            await dst_write(data)
    except (ConnectionError, asyncio.IncompleteReadError, RuntimeError, OSError):
        pass
    finally:
        on_done()


async def tunnel_upgrade(request: web.Request, target: str, ssl_ctx: ssl.SSLContext) -> web.StreamResponse:
    """Forward an upgrade request to ``target`` and splice the connections after 101."""
    u = urlsplit(target)
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(u.hostname, u.port, ssl=ssl_ctx if u.scheme == "https" else None,
                                    server_hostname=u.hostname if u.scheme == "https" else None), 10)
    except (TimeoutError, OSError) as e:
        raise errors.service_unavailable(f"error dialing backend: {e}") from None
    path = u.path + (f"?{u.query}" if u.query else "")
    lines = [f"{request.method} {path} HTTP/1.1", f"Host: {u.hostname}:{u.port}"]
    for k, v in request.headers.items():
        if k.lower() not in _SKIP_REQ:
            lines.append(f"{k}: {v}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    await writer.drain()
    try:
        status, reason, headers = await asyncio.wait_for(_read_head(reader), 30)
    except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, OSError) as e:
        writer.close()
        raise errors.service_unavailable(f"error reading from backend: {e}") from None
    if status != 101:
        length = next((int(v) for k, v in headers if k.lower() == "content-length"), None)
        body = await reader.readexactly(length) if length else b""
        writer.close()
        ctype = next((v for k, v in headers if k.lower() == "content-type"), "text/plain")
        return web.Response(status=status, reason=reason, body=body, headers={"Content-Type": ctype})
    resp = web.StreamResponse(status=101, reason=reason or "Switching Protocols")
    for k, v in headers:
        if k.lower() not in _SKIP_RESP:
            resp.headers.add(k, v)
    resp.force_close()
    client_reader = asyncio.StreamReader(limit=2**31)
    request.protocol.set_parser(RawFeeder(client_reader))  # type: ignore[arg-type]
    request.protocol.keep_alive(False)
    await resp.prepare(request)
    done = asyncio.Event()

    async def agent_read() -> bytes:
        return await reader.read(65536)

    async def agent_write(data: bytes) -> None:
        writer.write(data)
        await writer.drain()

    async def client_read() -> bytes:
        return await client_reader.read(65536)

    t1 = asyncio.create_task(_pipe(client_read, agent_write, done.set))
    t2 = asyncio.create_task(_pipe(agent_read, resp.write, done.set))
    try:
        await done.wait()
        # Let the other direction flush what is in flight before closing both ends.
        await asyncio.wait({t1, t2}, timeout=1.0)
    finally:
        t1.cancel()
        t2.cancel()
        writer.close()
    return resp
