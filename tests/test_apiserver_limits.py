"""The API server's limits at unit level: which requests are long-running, the in-flight caps
with upstream's 429, and the connection table's caps and evictions."""
from __future__ import annotations

import asyncio

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from kubelite.apiserver.authn import User
from kubelite.apiserver.limits import (
    Conn,
    ConnectionTable,
    InFlight,
    LimitsConfig,
    connection_budget,
    is_long_running,
)


@pytest.mark.parametrize("method,path,long_running", [
    ("GET", "/api/v1/namespaces/default/pods?watch=true", True),
    ("GET", "/api/v1/pods?watch=1", True),
    ("GET", "/apis/apps/v1/namespaces/default/deployments?watch=true&resourceVersion=5", True),
    ("GET", "/api/v1/watch/namespaces/default/pods", True),
    ("GET", "/apis/apps/v1/watch/deployments", True),
    ("POST", "/api/v1/namespaces/default/pods/web/exec?command=ls", True),
    ("GET", "/api/v1/namespaces/default/pods/web/exec?command=ls", True),
    ("POST", "/api/v1/namespaces/default/pods/web/attach", True),
    ("POST", "/api/v1/namespaces/default/pods/web/portforward", True),
    ("GET", "/api/v1/namespaces/default/pods/web/log?follow=true", True),
    ("GET", "/api/v1/namespaces/default/pods/web/log", True),  # upstream counts every log request as long-running
    ("GET", "/api/v1/namespaces/default/pods/web/proxy/some/path", True),
    ("GET", "/api/v1/namespaces/default/services/web:80/proxy/", True),
    ("GET", "/api/v1/nodes/n1/proxy/metrics", True),
    ("GET", "/api/v1/namespaces/default/pods", False),
    ("GET", "/api/v1/namespaces/default/pods?watch=false", False),
    ("GET", "/api/v1/namespaces/default/pods/web", False),
    ("POST", "/api/v1/namespaces/default/pods", False),
    ("PUT", "/api/v1/namespaces/default/pods/web/status", False),
    ("PATCH", "/apis/apps/v1/namespaces/default/deployments/web/scale", False),
    ("POST", "/api/v1/namespaces/default/pods/web/eviction", False),
    ("PUT", "/api/v1/namespaces/exec/finalize", False),
    ("GET", "/api/v1/namespaces/log", False),
    ("GET", "/healthz", False),
    ("GET", "/version", False),
    ("GET", "/openapi/v2", False),
])
def test_long_running_requests_as_upstream(method, path, long_running):
    assert is_long_running(make_mocked_request(method, path)) is long_running


class Held:
    """A handler that holds its request until released."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.arrived = asyncio.Event()
        self.entered = 0

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        self.entered += 1
        self.arrived.set()
        await self.release.wait()
        return web.Response(text="done")


# The API server keys request["user"] by a string, as the mocked requests here do.
pytestmark = pytest.mark.filterwarnings("ignore:It is recommended to use web.RequestKey")


def _req(method: str, path: str, *groups: str) -> web.Request:
    r = make_mocked_request(method, path)
    r["user"] = User("someone", list(groups))
    return r


async def _enter(inflight: InFlight, handler: Held, *reqs: web.Request) -> list[asyncio.Task]:
    """Start requests and wait until each one is inside the handler."""
    want = handler.entered + len(reqs)
    tasks = [asyncio.create_task(inflight.middleware(r, handler)) for r in reqs]

    async def all_in() -> None:
        while handler.entered < want:
            handler.arrived.clear()
            await handler.arrived.wait()
    await asyncio.wait_for(all_in(), 10)  # a request that never reaches the handler fails the test
    return tasks


async def test_read_only_requests_over_the_cap_get_upstreams_429_with_retry_after():
    inflight = InFlight(LimitsConfig(max_requests_inflight=2, max_mutating_requests_inflight=1))
    h = Held()
    held = await _enter(inflight, h, _req("GET", "/api/v1/pods"), _req("GET", "/api/v1/namespaces"))
    resp = await inflight.middleware(_req("GET", "/api/v1/services"), h)
    assert resp.status == 429
    assert resp.headers["Retry-After"] == "1"
    assert resp.content_type == "text/plain"
    assert isinstance(resp, web.Response) and resp.text == "Too many requests, please try again later.\n"
    # The other bucket, long-running requests and system:masters are still served.
    others = await _enter(inflight, h, _req("POST", "/api/v1/namespaces/default/configmaps"),
                          _req("GET", "/api/v1/pods?watch=true"),
                          _req("GET", "/api/v1/namespaces/default/pods/p/log?follow=true"),
                          _req("GET", "/api/v1/services", "system:masters"))
    assert (inflight.read_only, inflight.mutating) == (2, 1)
    h.release.set()
    for r in await asyncio.gather(*held, *others):
        assert r.status == 200
    assert (inflight.read_only, inflight.mutating) == (0, 0)
    # Seats are free again.
    assert (await inflight.middleware(_req("GET", "/api/v1/services"), h)).status == 200


async def test_mutating_requests_over_the_cap_get_429_but_masters_always_get_an_answer():
    inflight = InFlight(LimitsConfig(max_requests_inflight=1, max_mutating_requests_inflight=2))
    h = Held()
    held = await _enter(inflight, h, _req("POST", "/api/v1/namespaces/a/configmaps"),
                        _req("DELETE", "/api/v1/namespaces/a/configmaps/x"))
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        resp = await inflight.middleware(_req(method, "/api/v1/namespaces/a/configmaps/y"), h)
        assert resp.status == 429, method
    assert inflight.rejected == {"mutating": 4, "readOnly": 0}
    masters = await _enter(inflight, h, _req("PATCH", "/api/v1/namespaces/a/configmaps/y", "system:masters"))
    exec_ = await _enter(inflight, h, _req("POST", "/api/v1/namespaces/a/pods/p/exec"))
    assert inflight.mutating == 2  # neither took a seat
    h.release.set()
    assert [r.status for r in await asyncio.gather(*held, *masters, *exec_)] == [200] * 4


async def test_zero_means_no_limit():
    inflight = InFlight(LimitsConfig(max_requests_inflight=0, max_mutating_requests_inflight=0))
    h = Held()
    held = await _enter(inflight, h, *[_req("GET", "/api/v1/pods") for _ in range(50)],
                        *[_req("POST", "/api/v1/namespaces/a/configmaps") for _ in range(50)])
    h.release.set()
    assert all(r.status == 200 for r in await asyncio.gather(*held))


class FakeTransport:
    def __init__(self) -> None:
        self.aborted = False

    def abort(self) -> None:
        self.aborted = True


class FakeHandler:
    def __init__(self) -> None:
        self.closed = False
        self.transport = FakeTransport()

    def force_close(self) -> None:
        assert self.transport.aborted  # no waiting for a TLS goodbye from a stalled peer
        self.closed = True


def _admit(table: ConnectionTable, address: str) -> Conn:
    conn = table.admit(address)
    assert conn is not None
    conn.handler = FakeHandler()
    return conn


def test_per_address_cap_evicts_that_address_longest_idle_connection():
    table = ConnectionTable(max_connections=100, max_per_address=3)
    a1, a2, a3 = (_admit(table, "127.0.0.1") for _ in range(3))
    b1 = _admit(table, "127.0.0.2")
    table.request_started(a1)  # a1 is busy: not a candidate
    a4 = _admit(table, "127.0.0.1")
    assert a2.handler.closed and a2.closed  # the longest idle of that address went
    assert not (a1.handler.closed or a3.handler.closed or b1.handler.closed)
    assert table.by_address == {"127.0.0.1": 3, "127.0.0.2": 1} and table.total == 4
    # An idle connection that served a request is the newest idle again.
    table.request_started(a3)
    table.request_done(a3)
    table.request_done(a1)
    _admit(table, "127.0.0.1")
    assert a4.handler.closed and not a3.handler.closed and not a1.handler.closed


def test_a_new_connection_is_refused_when_every_connection_of_its_address_is_busy():
    table = ConnectionTable(max_connections=100, max_per_address=2)
    for c in (_admit(table, "10.0.0.1"), _admit(table, "10.0.0.1")):
        table.request_started(c)
    assert table.admit("10.0.0.1") is None
    assert table.refused == 1
    assert table.admit("10.0.0.9") is not None  # another address is not affected


def test_global_cap_evicts_the_longest_idle_connection_of_any_address():
    table = ConnectionTable(max_connections=3, max_per_address=0)
    first = _admit(table, "127.0.0.5")
    busy = _admit(table, "127.0.0.6")
    table.request_started(busy)
    _admit(table, "127.0.0.7")
    _admit(table, "127.0.0.8")
    assert first.handler.closed and not busy.handler.closed
    assert table.total == 3 and table.evicted == 1
    table.forget(busy)
    table.forget(busy)  # closing twice counts once
    assert table.total == 2 and "127.0.0.6" not in table.by_address


async def test_a_connection_still_in_its_handshake_is_evicted_by_cancelling_it():
    table = ConnectionTable(max_connections=10, max_per_address=1)
    conn = table.admit("127.0.0.1")
    assert conn is not None
    conn.handshake = asyncio.create_task(asyncio.sleep(3600))
    assert table.admit("127.0.0.1") is not None
    with pytest.raises(asyncio.CancelledError):
        await conn.handshake
    assert conn.closed


def test_connection_budget_leaves_room_for_everything_else():
    assert connection_budget(20_000) < 10_000
    assert connection_budget(1024) >= 64


async def test_accepted_connections_send_small_responses_without_nagle_delay():
    # Without TCP_NODELAY a response written in two segments waits for the client's delayed
    # ACK (up to 40 ms): the listener must set it on every connection it accepts.
    import socket

    from kubelite.apiserver.limits import Listener
    seen: list[int] = []

    async def handler(request: web.Request) -> web.Response:
        sock = request.transport.get_extra_info("socket") if request.transport else None
        assert sock is not None
        seen.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        return web.Response(text="ok")

    server = web.Server(handler)
    listener = Listener(server, ConnectionTable(100, 100), None, header_timeout=5.0)
    await listener.start("127.0.0.1", 0, 16)
    try:
        assert listener._sock is not None
        port = listener._sock.getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert (await reader.read()).endswith(b"ok")
        writer.close()
    finally:
        await listener.stop()
        await server.shutdown()
    assert seen and seen[0] != 0
