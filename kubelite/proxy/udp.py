"""UDP forwarding for Service ports with protocol UDP (kube-proxy's conntrack, in user space).

Each client address gets a flow: an upstream socket connected to one endpoint chosen by
the Service's Balancer, so a client's datagrams keep going to the same pod and replies
come back from the Service address.  A flow ends after ``FLOW_IDLE`` seconds without
traffic, or at once when its endpoint stops being a candidate (not ready, removed), so
new datagrams move to a serving pod, as upstream clears conntrack entries of removed
endpoints.  With no endpoint at all, datagrams are dropped (UDP has no refusal).

Every datagram a flow carries, either way, is noted in the proxy's ``PodTraffic``: a pod
that stopped being routed is reported drained only once its flows have been quiet for a
moment (``traffic.UDP_QUIET``), so a reply to a request sent just before is not lost.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import time
from typing import Any, cast

from kubelite.proxy.balancer import Balancer, Endpoint
from kubelite.proxy.traffic import PodTraffic

log = logging.getLogger(__name__)
Addr = tuple[Any, ...]  # a client's (host, port[, flowinfo, scope]) as the socket reports it

FLOW_IDLE = 30.0
MAX_FLOWS = 4096
MAX_PENDING = 64  # datagrams kept per flow while its upstream socket is being opened


class _Front(asyncio.DatagramProtocol):
    def __init__(self, listener: UDPListener):
        self.listener = listener

    def datagram_received(self, data: bytes, addr: Addr) -> None:
        self.listener._from_client(data, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("%s: %s", self.listener.name, exc)


class _Flow(asyncio.DatagramProtocol):
    """One client's association with one endpoint."""

    def __init__(self, listener: UDPListener, client: Addr, ep: Endpoint):
        self.listener = listener
        self.client = client
        self.ep = ep
        self.transport: asyncio.DatagramTransport | None = None
        self.pending: list[bytes] = []
        self.last = time.monotonic()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # create_datagram_endpoint hands its protocols a datagram transport (uvloop's too).
        self.transport = dgram = cast(asyncio.DatagramTransport, transport)
        for d in self.pending:
            dgram.sendto(d)
        self.pending.clear()

    def datagram_received(self, data: bytes, addr: Addr) -> None:
        self.last = time.monotonic()
        self.listener.traffic.datagram(self.ep.pod_uid)
        front = self.listener._front
        if front is not None:
            front.sendto(data, self.client)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable from the pod: drop the flow so the next datagram re-picks.
        self.listener._end(self.client)

    def send(self, data: bytes) -> None:
        self.last = time.monotonic()
        self.listener.traffic.datagram(self.ep.pod_uid)
        if self.transport is not None:
            self.transport.sendto(data)
        elif len(self.pending) < MAX_PENDING:
            self.pending.append(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class UDPListener:
    """Receives on one address:port and forwards to endpoints chosen by a Balancer."""

    def __init__(self, host: str, port: int, balancer: Balancer, *, external: bool = False, name: str = "",
                 traffic: PodTraffic | None = None):
        self.host = host
        self.port = port
        self.balancer = balancer
        self.external = external
        self.name = name or f"{host}:{port}/udp"
        self.traffic = traffic if traffic is not None else PodTraffic()
        self._front: asyncio.DatagramTransport | None = None
        self._flows: dict[Addr, _Flow] = {}
        self._reaper: asyncio.Task[None] | None = None

    @property
    def active(self) -> int:
        """Live flows."""
        return len(self._flows)

    @property
    def serving(self) -> bool:
        """True while receiving."""
        return self._front is not None

    async def start(self) -> None:
        """Bind (raises OSError if the address cannot be bound)."""
        loop = asyncio.get_running_loop()
        self._front, _ = await loop.create_datagram_endpoint(lambda: _Front(self), local_addr=(self.host, self.port))
        self._reaper = asyncio.create_task(self._reap())

    def close(self) -> None:
        """Stop receiving and end every flow."""
        if self._front is not None:
            self._front.close()
            self._front = None
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None
        for c in list(self._flows):
            self._end(c)

    async def drain(self, timeout: float | None = None) -> bool:
        """Datagrams have no connection to finish: closing is draining."""
        self.close()
        return True

    def _end(self, client: Addr) -> None:
        flow = self._flows.pop(client, None)
        if flow is not None:
            flow.close()

    def _from_client(self, data: bytes, client: Addr) -> None:
        cands = self.balancer.candidates(client[0], external=self.external)
        flow = self._flows.get(client)
        if flow is not None and flow.ep not in cands:
            self._end(client)
            flow = None
        if flow is None:
            if not cands or len(self._flows) >= MAX_FLOWS:
                return
            ep = cands[0]
            self.balancer.connected(client[0], ep)
            new = flow = _Flow(self, client, ep)
            self._flows[client] = new
            loop = asyncio.get_running_loop()
            task = loop.create_task(loop.create_datagram_endpoint(lambda: new, remote_addr=ep.addr))
            task.add_done_callback(functools.partial(self._opened, client=client))
        flow.send(data)

    def _opened(self, task: asyncio.Task[tuple[asyncio.DatagramTransport, _Flow]], client: Addr) -> None:
        if task.cancelled() or task.exception() is not None:
            log.debug("%s: upstream socket failed: %s", self.name, None if task.cancelled() else task.exception())
            self._end(client)

    async def _reap(self) -> None:
        while True:
            await asyncio.sleep(FLOW_IDLE / 3)
            now = time.monotonic()
            for c, f in list(self._flows.items()):
                if now - f.last > FLOW_IDLE:
                    self._end(c)
