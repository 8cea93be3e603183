"""Proxy forwarding, balancing and draining against local asyncio servers (127.0.0.0/8 only)."""
from __future__ import annotations

import asyncio
import socket

import pytest

from kubelite.proxy.balancer import Balancer, Endpoint, usable
from kubelite.proxy.listener import TCPListener
from kubelite.proxy.traffic import PodTraffic


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class Backend:
    """A tiny 'pod': answers each connection with its name (after reading the request to EOF)."""

    def __init__(self, name: str, host: str, port: int, *, echo: bool = False):
        self.name, self.host, self.port, self.echo = name, host, port, echo
        self.server: asyncio.base_events.Server | None = None
        self.hits = 0
        self.release = asyncio.Event()
        self.release.set()

    async def _serve(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        self.hits += 1
        try:
            data = await r.read()  # until the client half-closes
            await self.release.wait()
            w.write((self.name + ":").encode() + (data if self.echo else b""))
            await w.drain()
            w.close()
        except (ConnectionError, OSError):
            pass

    async def start(self) -> Backend:
        self.server = await asyncio.start_server(self._serve, self.host, self.port, reuse_address=True)
        return self

    async def stop(self) -> None:
        self.server.close()
        await self.server.wait_closed()

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint(self.host, self.port, pod_uid=self.name)


async def until(cond, what: str, timeout: float = 20.0) -> None:
    """Poll a plain predicate until it holds; fail after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() >= deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def request(host: str, port: int, payload: bytes = b"GET") -> bytes:
    r, w = await asyncio.open_connection(host, port)
    w.write(payload)
    w.write_eof()
    data = await r.read()
    w.close()
    return data


# -- balancer (pure) ---------------------------------------------------------------------
def E(ip, **kw):
    return Endpoint(ip, 80, **kw)


def test_usable_prefers_ready_then_serving_terminating():
    eps = [E("a", ready=False, serving=True, terminating=True), E("b"), E("c", ready=False, serving=False)]
    assert [e.ip for e in usable(eps)] == ["b"]
    only_terminating = [E("a", ready=False, serving=True, terminating=True),
                        E("d", ready=False, serving=False, terminating=True), E("c", ready=False, serving=False)]
    assert [e.ip for e in usable(only_terminating)] == ["a"]
    assert usable([E("c", ready=False, serving=False)]) == []


def test_local_traffic_policy_uses_this_nodes_endpoints_only():
    eps = [E("a", node_name="n1"), E("b", node_name="n2")]
    assert [e.ip for e in usable(eps, local_only=True, node_name="n2")] == ["b"]
    bal = Balancer(node_name="n1")
    bal.configure(affinity_timeout=None, internal_local=False, external_local=True)
    bal.set_endpoints(eps)
    assert {e.ip for e in bal.usable(external=False)} == {"a", "b"}
    assert [e.ip for e in bal.usable(external=True)] == ["a"]


def test_round_robin_offers_every_endpoint_in_turn_with_the_rest_as_fallbacks():
    bal = Balancer()
    bal.set_endpoints([E("a"), E("b"), E("c")])
    firsts = [bal.candidates("10.0.0.1")[0].ip for _ in range(6)]
    assert firsts == ["a", "b", "c", "a", "b", "c"]
    assert sorted(e.ip for e in bal.candidates()) == ["a", "b", "c"]


def test_client_ip_affinity_sticks_until_timeout_or_endpoint_gone():
    now = [1000.0]
    bal = Balancer(clock=lambda: now[0])
    bal.configure(affinity_timeout=10, internal_local=False, external_local=False)
    bal.set_endpoints([E("a"), E("b"), E("c")])
    first = bal.candidates("1.1.1.1")[0]
    bal.connected("1.1.1.1", first)
    assert all(bal.candidates("1.1.1.1")[0] == first for _ in range(5))
    now[0] += 11
    assert bal.candidates("1.1.1.1")[0] != first or len(bal.usable()) == 1
    bal.connected("1.1.1.1", first)
    bal.set_endpoints([e for e in [E("a"), E("b"), E("c")] if e.ip != first.ip])
    assert bal.candidates("1.1.1.1")[0].ip != first.ip


# -- listener (real sockets on loopback) --------------------------------------------------
@pytest.fixture
async def backends():
    port = free_port()
    bs = [await Backend(f"pod{i}", f"127.0.20.{i + 1}", port).start() for i in range(3)]
    yield bs
    for b in bs:
        await b.stop()


async def test_connections_are_balanced_over_ready_endpoints(backends):
    bal = Balancer()
    bal.set_endpoints([b.endpoint for b in backends])
    lst = TCPListener("127.0.0.1", free_port(), bal)
    await lst.start()
    try:
        answers = [await request("127.0.0.1", lst.port) for _ in range(9)]
        assert sorted(a.decode() for a in answers) == sorted(f"pod{i}:" for i in range(3) for _ in range(3))
    finally:
        await lst.drain(1)


async def test_half_close_passes_request_and_response_through(backends):
    for b in backends:
        b.echo = True
    bal = Balancer()
    bal.set_endpoints([backends[0].endpoint])
    lst = TCPListener("127.0.0.1", free_port(), bal)
    await lst.start()
    try:
        payload = b"x" * 300_000
        assert await request("127.0.0.1", lst.port, payload) == b"pod0:" + payload
    finally:
        await lst.drain(1)


async def test_refused_endpoint_is_skipped_before_the_client_sees_anything(backends):
    dead = Endpoint("127.0.20.9", free_port("127.0.20.9"), pod_uid="dead")
    bal = Balancer()
    bal.set_endpoints([dead] + [b.endpoint for b in backends[:1]])
    lst = TCPListener("127.0.0.1", free_port(), bal)
    await lst.start()
    try:
        for _ in range(6):
            assert await request("127.0.0.1", lst.port) == b"pod0:"
    finally:
        await lst.drain(1)


async def test_service_without_endpoints_refuses_connections_at_once():
    lst = TCPListener("127.0.0.1", free_port(), Balancer())
    await lst.start()
    try:
        r, w = await asyncio.open_connection("127.0.0.1", lst.port)
        with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError, ConnectionError)):
            data = await r.read()
            if data == b"":
                raise asyncio.IncompleteReadError(b"", None)
        w.close()
    finally:
        await lst.drain(1)


async def test_closing_listener_drains_open_connections_and_refuses_new_ones(backends):
    b = backends[0]
    b.release.clear()  # hold the response until we say so
    bal = Balancer()
    bal.set_endpoints([b.endpoint])
    lst = TCPListener("127.0.0.1", free_port(), bal)
    await lst.start()
    pending = asyncio.create_task(request("127.0.0.1", lst.port))
    await until(lambda: b.hits > 0, "the request reaching the backend")
    drain = asyncio.create_task(lst.drain(30))
    with pytest.raises(OSError):
        await request("127.0.0.1", lst.port)
    assert not drain.done()
    b.release.set()
    assert await pending == b"pod0:"
    assert await drain is True


async def test_endpoint_removed_from_balancer_keeps_existing_connection(backends):
    b0, b1 = backends[0], backends[1]
    b0.release.clear()
    bal = Balancer()
    bal.set_endpoints([b0.endpoint])
    lst = TCPListener("127.0.0.1", free_port(), bal)
    await lst.start()
    try:
        pending = asyncio.create_task(request("127.0.0.1", lst.port))
        await until(lambda: b0.hits > 0, "the request reaching pod0")
        bal.set_endpoints([b1.endpoint])  # b0 terminating: no new connections
        assert await request("127.0.0.1", lst.port) == b"pod1:"
        b0.release.set()
        assert await pending == b"pod0:"
    finally:
        await lst.drain(1)


async def test_floods_and_vanishing_clients_do_not_break_the_listener(backends):
    backends[0].release.clear()
    bal = Balancer()
    bal.set_endpoints([backends[0].endpoint])
    lst = TCPListener("127.0.0.1", free_port(), bal)
    await lst.start()
    try:
        async def vanish():
            try:
                r, w = await asyncio.open_connection("127.0.0.1", lst.port)
                w.write(b"half a request")
                sock = w.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                w.transport.abort()
            except OSError:
                pass
        await asyncio.gather(*(vanish() for _ in range(300)))
        backends[0].release.set()
        assert await request("127.0.0.1", lst.port) == b"pod0:"
        # Every vanished client's forwarded connection gets cleaned up.
        await until(lambda: not lst.active, "every forwarded connection closed")
    finally:
        await lst.drain(1)


async def test_session_affinity_client_ip_over_the_wire(backends):
    bal = Balancer()
    bal.configure(affinity_timeout=10800, internal_local=False, external_local=False)
    bal.set_endpoints([b.endpoint for b in backends])
    lst = TCPListener("127.0.0.1", free_port(), bal)
    await lst.start()
    try:
        answers = {await request("127.0.0.1", lst.port) for _ in range(6)}
        assert len(answers) == 1
    finally:
        await lst.drain(1)


async def test_forwarded_connection_holds_its_pod_until_closed(backends):
    b0 = backends[0]
    b0.release.clear()
    traffic = PodTraffic()
    bal = Balancer()
    bal.set_endpoints([b0.endpoint])
    lst = TCPListener("127.0.0.1", free_port(), bal, traffic=traffic)
    await lst.start()
    try:
        pending = asyncio.create_task(request("127.0.0.1", lst.port))
        await until(lambda: b0.hits > 0, "the request reaching pod0")
        bal.set_endpoints([b0.endpoint._replace(ready=False, terminating=True)])  # not routed any more
        assert traffic.connections("pod0") == 1 and traffic.busy("pod0")
        b0.release.set()
        assert await pending == b"pod0:"
        await until(lambda: not lst.active, "the forwarded connection closed")
        assert traffic.connections("pod0") == 0 and not traffic.busy("pod0")
    finally:
        await lst.drain(1)


async def test_connect_under_way_holds_its_pod_and_a_retry_skips_pods_no_longer_routed(backends, monkeypatch):
    b0, b1, b2 = backends
    gate = asyncio.Event()
    real_open = asyncio.open_connection

    async def slow_then_refused(host, port, **kw):
        if host == b0.host:  # pod0's connect hangs until the gate opens, then fails
            await gate.wait()
            raise ConnectionRefusedError("pod0 is gone")
        return await real_open(host, port, **kw)
    monkeypatch.setattr(asyncio, "open_connection", slow_then_refused)
    traffic = PodTraffic()
    bal = Balancer()
    bal.set_endpoints([b.endpoint for b in backends])  # round robin starts with pod0
    lst = TCPListener("127.0.0.1", free_port(), bal, traffic=traffic)
    await lst.start()
    try:
        pending = asyncio.create_task(request("127.0.0.1", lst.port))
        await until(lambda: traffic.connections("pod0") > 0, "the connect to pod0 under way")
        # pod0 stops being routed while its connect is under way: still busy.
        # pod1 stops too: the retry after pod0's failure must not pick it.
        bal.set_endpoints([b0.endpoint._replace(ready=False, terminating=True),
                           b1.endpoint._replace(ready=False, terminating=True), b2.endpoint])
        assert traffic.busy("pod0")
        gate.set()
        assert await pending == b"pod2:"
        assert b1.hits == 0
        assert traffic.connections("pod0") == 0 and traffic.connections("pod1") == 0
    finally:
        await lst.drain(1)
