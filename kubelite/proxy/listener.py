"""TCP forwarding for one bound address:port of a service (a userspace kube-proxy).

Per accepted connection:

1. ask the balancer for candidates; none → reset the connection at once (the userspace
   equivalent of iptables' REJECT for a Service without endpoints);
2. connect to the first candidate; a refused / failed / slow connect moves on to the next,
   so a pod that just died costs the client nothing (it has sent no data yet).  A later
   candidate is tried only if it is still usable: the list was made before the failed
   attempt, and the pod may have stopped being routed (and been signalled) meanwhile;
3. copy bytes both ways; EOF in one direction is passed on as a half-close (``write_eof``)
   and the pair is closed once both directions are done, or at once on an error.

Per revision of the endpoint's pod, connections, failed connects and HTTP 5xx replies
are counted into the proxy's ``TrafficStats`` (``stats.py``), if one is given.

From the start of a connect to the close of the forwarded connection, the pod is held in
the proxy's ``PodTraffic`` (``traffic.py``), so the drain handshake can wait for it.

Closing a listener stops accepting; connections already forwarded are *not* cut but
drained: they run until their peers close them, or until ``drain(timeout)`` gives up.
Every per-connection error is contained: floods, resets and clients that vanish never
reach the accept loop.
"""
from __future__ import annotations

import asyncio
import logging
import socket
import struct
from collections.abc import Callable

from kubelite.proxy.balancer import Balancer, Endpoint
from kubelite.proxy.stats import ReplyWatch, TrafficStats
from kubelite.proxy.traffic import PodTraffic

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 3.0
MAX_CONNECT_ATTEMPTS = 8
MAX_CONNECTIONS = 8192   # per listener; beyond this new connections are reset
BUFFER = 65536


def reset(writer: asyncio.StreamWriter) -> None:
    """Close a connection with RST (SO_LINGER 0), as a refused connection looks to clients."""
    try:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    writer.transport.abort()


class TCPListener:
    """Accepts on one address:port and forwards to endpoints chosen by a Balancer."""

    def __init__(self, host: str, port: int, balancer: Balancer, *, external: bool = False,
                 name: str = "", on_connect: Callable[[Endpoint], None] | None = None,
                 traffic: PodTraffic | None = None, stats: TrafficStats | None = None,
                 service_key: str = ""):
        self.host = host
        self.port = port
        self.balancer = balancer
        self.external = external
        self.name = name or f"{host}:{port}"
        self._server: asyncio.base_events.Server | None = None
        self._conns: set[asyncio.Task] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._on_connect = on_connect
        self.traffic = traffic if traffic is not None else PodTraffic()
        self.connect_timeout = CONNECT_TIMEOUT
        self.stats = stats
        self.service_key = service_key  # "namespace/name": what the counts are filed under

    @property
    def active(self) -> int:
        """Connections currently being handled."""
        return len(self._conns)

    @property
    def serving(self) -> bool:
        """True while accepting connections."""
        return self._server is not None

    async def start(self) -> None:
        """Bind and start accepting (raises OSError if the address cannot be bound)."""
        self._server = await asyncio.start_server(self._accepted, self.host, self.port,
                                                  reuse_address=True, backlog=1024, limit=BUFFER)

    def close(self) -> None:
        """Stop accepting new connections; existing ones keep running."""
        if self._server is not None:
            self._server.close()
            self._server = None

    async def drain(self, timeout: float | None = None) -> bool:
        """Wait for forwarded connections to finish; after ``timeout`` cut the rest. True if none were cut."""
        self.close()
        if not self._conns:
            return True
        done, pending = await asyncio.wait(set(self._conns), timeout=timeout)
        if not pending:
            return True
        for w in list(self._writers):
            w.transport.abort()
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        return False

    # -- per connection ------------------------------------------------------------------
    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None  # asyncio.start_server runs each connection in its own task
        if len(self._conns) >= MAX_CONNECTIONS:
            reset(writer)
            return
        self._conns.add(task)
        self._writers.add(writer)
        try:
            await self._handle(reader, writer)
        except asyncio.CancelledError:
            writer.transport.abort()
            raise
        except Exception as e:  # contain everything: the accept loop must never see it
            log.debug("%s: connection failed: %s", self.name, e)
            writer.transport.abort()
        finally:
            self._conns.discard(task)
            self._writers.discard(writer)

    async def _connect(self, client_ip: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, Endpoint] | None:
        """Connect to the first reachable candidate; on success its pod stays held for the caller."""
        attempts = 0
        for ep in self.balancer.candidates(client_ip, external=self.external):
            if attempts >= MAX_CONNECT_ATTEMPTS:
                break
            # Checked and held in one step (no await between): a pod that stopped being
            # routed during an earlier attempt is not tried, and one that stops later
            # sees this connect as traffic it must wait for.
            if ep not in self.balancer.usable(self.external):
                continue
            attempts += 1
            self.traffic.hold(ep.pod_uid)
            try:
                r, w = await asyncio.wait_for(asyncio.open_connection(ep.ip, ep.port, limit=BUFFER),
                                              self.connect_timeout)
            except (TimeoutError, OSError) as e:
                self.traffic.release(ep.pod_uid)
                if self.stats is not None:
                    self.stats.failed(self.service_key, ep.pod_name)
                log.debug("%s: endpoint %s:%s unreachable (%s), trying another", self.name, ep.ip, ep.port, e)
                continue
            except BaseException:
                self.traffic.release(ep.pod_uid)
                raise
            self.balancer.connected(client_ip, ep)
            if self._on_connect is not None:
                self._on_connect(ep)
            return r, w, ep
        return None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername") or ("", 0)
        backend = await self._connect(peer[0])
        if backend is None:
            reset(writer)
            return
        b_reader, b_writer, ep = backend
        self._writers.add(b_writer)
        watch: ReplyWatch | None = None
        if self.stats is not None:
            watch = self.stats.connected(self.service_key, ep.pod_name)
        try:
            up = asyncio.create_task(_pipe(reader, b_writer, watch.up if watch else None))
            down = asyncio.create_task(_pipe(b_reader, writer, watch.down if watch else None))
            try:
                done, pending = await asyncio.wait({up, down}, return_when=asyncio.FIRST_EXCEPTION)
                failed = any(t.exception() is not None for t in done)
                if failed:
                    # One side broke: the other cannot finish meaningfully.
                    for t in pending:
                        t.cancel()
                    await asyncio.gather(*pending, return_exceptions=True)
                    writer.transport.abort()
                    b_writer.transport.abort()
                    return
            except asyncio.CancelledError:
                up.cancel()
                down.cancel()
                await asyncio.gather(up, down, return_exceptions=True)
                b_writer.transport.abort()
                raise
            writer.close()
            b_writer.close()
        finally:
            self._writers.discard(b_writer)
            self.traffic.release(ep.pod_uid)


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, peek: Callable[[bytes], None] | None = None) -> None:
    """Copy until EOF, then half-close dst (so request/response protocols finish cleanly);
    ``peek`` sees each chunk before it is passed on (counting replies, stats.py)."""
    while True:
        data = await src.read(BUFFER)
        if not data:
            break
        if peek is not None:
            peek(data)
        dst.write(data)
        await dst.drain()
    if dst.can_write_eof() and not dst.transport.is_closing():
        try:
            dst.write_eof()
        except OSError:
            pass
