"""kubelite.client.rest: watch streams are cut into lines in linear time, whatever the chunking."""
from __future__ import annotations

import itertools

import orjson
import pytest
from aiohttp import web

from kubelite.api.resources import PODS
from kubelite.client.errors import Gone
from kubelite.client.rest import Client, ClientConfig, LineSplitter


def burst(n: int) -> list[bytes]:
    """n watch events as JSON lines; every 100th carries a large annotation (a long line)."""
    out = []
    for i in range(n):
        md: dict = {"name": f"p{i}", "namespace": "default", "resourceVersion": str(i + 1)}
        if i % 100 == 0:
            md["annotations"] = {"big": "x" * 50_000}
        out.append(orjson.dumps({"type": "ADDED", "object": {"kind": "Pod", "metadata": md}}))
    return out


def test_line_splitter_reassembles_a_large_burst_fed_in_small_chunks():
    lines = burst(3000)
    stream = b"".join(line + b"\n" for line in lines) + b"\n"  # a trailing empty line, as keep-alives send
    longest = max(len(line) for line in lines)
    splitter = LineSplitter()
    got: list[bytes] = []
    sizes = itertools.cycle([1, 7, 64, 1000, 4096, 3])
    pos = 0
    while pos < len(stream):
        n = next(sizes)
        got.extend(splitter.feed(stream[pos:pos + n]))
        pos += n
        # Only the unfinished line is held, never what was already handed out.
        assert splitter.pending <= longest
    assert got == lines + [b""]
    assert splitter.pending == 0


def test_line_splitter_keeps_a_partial_line_until_its_newline_arrives():
    splitter = LineSplitter()
    assert splitter.feed(b'{"a":') == []
    assert splitter.feed(b"1}\n{") == [b'{"a":1}']
    assert splitter.feed(b"}") == []
    assert splitter.feed(b"\n\n") == [b"{}", b""]


@pytest.fixture
async def watch_server():
    """A local HTTP server that answers a pods watch with a large burst in small writes."""
    lines = burst(1500)
    gone = {"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                        "reason": "Expired", "code": 410, "message": "too old resource version"}}
    body = b"".join(line + b"\n" for line in lines) + orjson.dumps(gone) + b"\n"

    async def watch(request: web.Request) -> web.StreamResponse:
        assert request.query.get("watch") == "true"
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        for i in range(0, len(body), 1500):
            await resp.write(body[i:i + 1500])  # chunk edges fall inside lines
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_get("/api/v1/namespaces/default/pods", watch)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", lines
    finally:
        await runner.cleanup()


async def test_watch_delivers_every_event_of_a_burst_then_raises_gone(watch_server):
    url, lines = watch_server
    client = Client(ClientConfig(server=url))
    got = []
    try:
        with pytest.raises(Gone):
            async for typ, obj in client.resource(PODS).watch("default"):
                got.append((typ, obj))
    finally:
        await client.close()
    assert got == [(ev["type"], ev["object"]) for ev in map(orjson.loads, lines)]


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_requests_and_watches_fail_over_to_the_next_server_that_can_be_reached(watch_server):
    url, lines = watch_server
    dead = f"http://127.0.0.1:{_closed_port()}"
    client = Client(ClientConfig(server=dead, fallback_servers=(url,)))
    try:
        got = []
        with pytest.raises(Gone):
            async for _typ, obj in client.resource(PODS).watch("default"):
                got.append(obj)
        assert len(got) == len(lines)
        assert client.server == url  # it stays on the server that answered
    finally:
        await client.close()


async def test_without_another_server_a_connection_failure_is_raised():
    import aiohttp
    client = Client(ClientConfig(server=f"http://127.0.0.1:{_closed_port()}"))
    try:
        with pytest.raises(aiohttp.ClientConnectorError):
            await client.request("GET", "/api")
    finally:
        await client.close()
