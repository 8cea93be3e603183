"""The DNS listeners: UDP (answers cut to the client's size with TC set) and TCP.

Each query is answered from the cluster index when it is ours, else forwarded.  A UDP
answer larger than the client can take (512 bytes, or its EDNS buffer size) keeps as many
whole records as fit and sets TC, so the client asks again over TCP, as CoreDNS does.

Answers from the cluster index are cached in wire form, keyed by the query's bytes after
its ID (so a name asked in another letter case is another entry: answers echo the asked
case), until the index changes.  Parsing and rendering with dnspython costs far more than
the lookup itself; a repeated question (every pod asks the same few names) skips both.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections.abc import Coroutine
from typing import Any, cast

import dns.exception
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rrset

from kubelite.dns.forward import Forwarder
from kubelite.dns.records import Resolver

log = logging.getLogger("kubelite.dns")

UDP_MIN = 512
CACHE_MAX = 10_000  # entries; the whole cache is dropped when full (names are few)
TCP_MAX = 65535
TCP_IDLE_TIMEOUT = 10.0
# Binding an address the node does not carry yet (the pod bridge's gateway appears with
# the first pod); Python 3.11's socket module does not name the Linux constant.
IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)


def _singles(rrsets: list[dns.rrset.RRset]) -> list[dns.rrset.RRset]:
    """Each record in an RRset of its own, so truncation can keep some of a large set."""
    out: list[dns.rrset.RRset] = []
    for rs in rrsets:
        for rd in rs:
            one = dns.rrset.RRset(rs.name, rs.rdclass, rs.rdtype)
            one.add(rd, rs.ttl)
            out.append(one)
    return out


def to_wire(resp: dns.message.Message, max_size: int) -> bytes:
    """The wire form of ``resp`` within ``max_size`` bytes, truncated (TC) when it does not fit."""
    try:
        return resp.to_wire(max_size=max_size)
    except dns.exception.TooBig:
        pass
    resp.additional = []
    resp.answer = _singles(resp.answer)
    resp.flags |= dns.flags.TC
    return resp.to_wire(max_size=max_size, prefer_truncation=True)


def _formerr(wire: bytes) -> bytes | None:
    """A FORMERR reply to a message we cannot parse (nothing when even the header is short)."""
    if len(wire) < 12:
        return None
    qid, flags = struct.unpack("!HH", wire[:4])
    if flags & dns.flags.QR:
        return None  # never answer a response
    return struct.pack("!HHHHHH", qid, dns.flags.QR | (flags & dns.flags.RD) | dns.rcode.FORMERR, 0, 0, 0, 0)


class DNSServer:
    """Answers DNS queries over UDP and TCP on one address."""

    def __init__(self, resolver: Resolver, forwarder: Forwarder) -> None:
        self.resolver = resolver
        self.forwarder = forwarder
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.address: tuple[str, int] = ("", 0)
        self._cache: dict[bytes, tuple[int, bytes]] = {}

    def cached(self, wire: bytes, *, tcp: bool) -> bytes | None:
        """The cached reply to this query with its ID, if the cluster has not changed since."""
        if len(wire) < 12:
            return None
        hit = self._cache.get((b"T" if tcp else b"U") + wire[2:])
        if hit is None or hit[0] != self.resolver.index.generation:
            return None
        return wire[:2] + hit[1][2:]

    async def handle(self, wire: bytes, *, tcp: bool) -> bytes | None:
        """The reply to one query in wire form (None: send nothing)."""
        hit = self.cached(wire, tcp=tcp)
        if hit is not None:
            return hit
        generation = self.resolver.index.generation
        cacheable = False
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return _formerr(wire)
        if query.flags & dns.flags.QR:
            return None
        if query.opcode() != dns.opcode.QUERY:
            resp = dns.message.make_response(query)
            resp.set_rcode(dns.rcode.NOTIMP)
        else:
            answered, cacheable = await self.resolver.answer_cacheable(query)
            resp = answered if answered is not None else await self.forwarder.forward(query, tcp=tcp)
        size = TCP_MAX if tcp else max(UDP_MIN, query.payload) if query.edns >= 0 else UDP_MIN
        out = to_wire(resp, size)
        if cacheable:
            if len(self._cache) >= CACHE_MAX:
                self._cache.clear()
            self._cache[(b"T" if tcp else b"U") + wire[2:]] = (generation, out)
        return out

    async def start(self, host: str, port: int, *, freebind: bool = False) -> tuple[str, int]:
        """Listen on host:port over UDP and TCP (port 0: any free port, the same for both)."""
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        for _ in range(20):  # port 0: find a port free for both protocols
            udp = socket.socket(family, socket.SOCK_DGRAM)
            tcp = socket.socket(family, socket.SOCK_STREAM)
            try:
                for s in (udp, tcp):
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    if freebind:
                        s.setsockopt(socket.IPPROTO_IP, IP_FREEBIND, 1)
                udp.bind((host, port))
                tcp.bind((host, udp.getsockname()[1]))
            except OSError:
                udp.close()
                tcp.close()
                if port:
                    raise
                continue
            break
        else:
            raise OSError(f"no port free for both UDP and TCP on {host}")
        tcp.listen(128)
        tcp.setblocking(False)
        udp.setblocking(False)
        self._udp, _ = await loop.create_datagram_endpoint(lambda: _UDPProtocol(self), sock=udp)
        self._tcp = await asyncio.start_server(self._serve_tcp, sock=tcp)
        self.address = (host, udp.getsockname()[1])
        log.info("cluster DNS listening on %s:%d (UDP and TCP)", host, self.address[1])
        return self.address

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run a query handler as a task that ``stop`` can cancel."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await asyncio.wait_for(reader.readexactly(2), TCP_IDLE_TIMEOUT)
                body = await asyncio.wait_for(reader.readexactly(struct.unpack("!H", head)[0]), TCP_IDLE_TIMEOUT)
                out = await self.handle(body, tcp=True)
                if out is None:
                    break
                writer.write(struct.pack("!H", len(out)) + out)
                await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            pass
        except Exception:
            log.exception("cluster DNS: TCP query failed")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def stop(self) -> None:
        """Close both listeners and cancel queries in flight."""
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
            with contextlib.suppress(Exception):
                await self._tcp.wait_closed()
            self._tcp = None
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


class _UDPProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: DNSServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio's selector transport does not subclass DatagramTransport, though it is one.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        hit = self.server.cached(data, tcp=False)
        if hit is not None and self.transport is not None:
            self.transport.sendto(hit, addr)  # no task for a cached answer
            return
        self.server.spawn(self._answer(data, addr))

    async def _answer(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            out = await self.server.handle(data, tcp=False)
        except Exception:
            log.exception("cluster DNS: UDP query failed")
            return
        if out is not None and self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(out, addr)
