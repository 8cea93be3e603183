"""Limits like kube-apiserver's, so that slow or greedy clients cannot lock kubectl out.

Connections (the listener here accepts them itself, so it sees every one, TLS handshake
included):

- a connection has ``header_timeout`` (upstream's ReadHeaderTimeout, 32 s) to finish its
  TLS handshake and then to deliver a complete request header, and again after each
  response: aiohttp's keep-alive timer closes a connection that is still waiting for a
  header then.  Upstream keeps idle connections 90 s; here idle and half-sent headers
  share the one bound;
- a request body must arrive within ``body_timeout`` (upstream bounds the whole request
  by its 60 s request timeout); a late body is answered 408 and the connection closed;
- at most ``max_connections`` connections in all (kept below the file-descriptor limit,
  which ``raise_nofile_limit`` lifts to the hard limit at start) and
  ``max_connections_per_address`` from one client address.  A connection over either
  cap takes the place of the connection that has waited longest without a request in
  progress (a stalled handshake or half-sent header, or an idle keep-alive connection);
  when every connection is busy with a request, the newcomer is closed at once.  A flood
  of stalled connections therefore only ever pushes out its own kind, and a new kubectl
  connection always gets in.

Requests in flight, as upstream's max-in-flight filter (used when priority and fairness
is off): at most ``max_requests_inflight`` read-only requests (get, list; any GET or
HEAD) and ``max_mutating_requests_inflight`` others at a time, 0 meaning no limit.  One
over the cap is answered 429 with ``Retry-After: 1`` and upstream's plain-text body,
except for members of ``system:masters``, who are always served.  Long-running requests
(watches, and the exec, attach, portforward, proxy and log subresources) are not counted.
"""
from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import resource
import socket
import ssl
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from kubelite.api import errors
from kubelite.apiserver import negotiation as neg
from kubelite.apiserver.handlers import qbool

log = logging.getLogger("kubelite.apiserver.limits")

# Upstream's defaults (kube-apiserver --max-requests-inflight / --max-mutating-requests-inflight).
MAX_REQUESTS_INFLIGHT = 400
MAX_MUTATING_REQUESTS_INFLIGHT = 200
HEADER_TIMEOUT = 32.0  # upstream's ReadHeaderTimeout
BODY_TIMEOUT = 60.0    # upstream's default request timeout
MAX_CONNECTIONS_PER_ADDRESS = 1024
# Descriptors kept out of the connection budget: the store, logs, the pods' pipes, the
# proxy's forwarded connections (two each) and the in-process components' own sockets.
RESERVED_FDS = 1024
MIN_CONNECTIONS = 64

RETRY_AFTER = "1"
TOO_MANY_REQUESTS = "Too many requests, please try again later.\n"
PRIVILEGED_GROUP = "system:masters"
READ_ONLY_METHODS = frozenset({"GET", "HEAD"})
LONG_RUNNING_SUBRESOURCES = frozenset({"attach", "exec", "log", "portforward", "proxy"})
# A closing TLS connection sends its close_notify and waits this long for the peer's
# (Go's server does not wait at all): a silent peer must not keep the descriptor long.
SSL_SHUTDOWN_TIMEOUT = 2.0
ACCEPT_PAUSE = 0.1  # after accept() fails (out of descriptors): let connections close first

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class LimitsConfig:
    """The limits of one API server."""

    max_requests_inflight: int = MAX_REQUESTS_INFLIGHT
    max_mutating_requests_inflight: int = MAX_MUTATING_REQUESTS_INFLIGHT
    max_connections: int = 0  # 0: derived from the file-descriptor limit
    max_connections_per_address: int = MAX_CONNECTIONS_PER_ADDRESS
    header_timeout: float = HEADER_TIMEOUT
    body_timeout: float = BODY_TIMEOUT


def raise_nofile_limit() -> int:
    """Lift the soft RLIMIT_NOFILE to the hard limit; the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as e:
            log.warning("cannot raise the open-files limit from %d to %d: %s", soft, hard, e)
    elif hard == resource.RLIM_INFINITY and soft != hard:
        # An unlimited hard limit still has the kernel's per-process ceiling.
        try:
            with open("/proc/sys/fs/nr_open") as f:
                ceiling = int(f.read())
            resource.setrlimit(resource.RLIMIT_NOFILE, (ceiling, hard))
            soft = ceiling
        except (ValueError, OSError) as e:
            log.warning("cannot raise the open-files limit from %d: %s", soft, e)
    return soft


def nofile_limit() -> int:
    """The soft RLIMIT_NOFILE in force."""
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def connection_budget(nofile: int) -> int:
    """How many client connections fit in ``nofile`` descriptors with room for everything else."""
    return max(MIN_CONNECTIONS, (nofile - RESERVED_FDS) // 2)


# -- connections -------------------------------------------------------------------------


@dataclass(eq=False)
class Conn:
    """One accepted connection, from accept to close."""

    address: str
    busy: int = 0  # requests in progress on it
    handshake: asyncio.Task[None] | None = None  # until TLS is set up
    handler: web.RequestHandler | None = None
    closed: bool = False


class ConnectionTable:
    """Every open connection, by address, with the idle ones in the order they fell idle."""

    def __init__(self, max_connections: int, max_per_address: int):
        self.max_connections = max_connections
        self.max_per_address = max_per_address
        self.total = 0
        self.by_address: dict[str, int] = {}
        self._idle: OrderedDict[Conn, None] = OrderedDict()
        self._idle_by_address: dict[str, OrderedDict[Conn, None]] = {}
        self.evicted = 0
        self.refused = 0

    def admit(self, address: str) -> Conn | None:
        """Make room for a new connection from ``address``; None if every candidate is busy."""
        if self.max_per_address > 0 and self.by_address.get(address, 0) >= self.max_per_address \
                and not self._evict(self._idle_by_address.get(address)):
            self.refused += 1
            return None
        if self.max_connections > 0 and self.total >= self.max_connections and not self._evict(self._idle):
            self.refused += 1
            return None
        conn = Conn(address)
        self.total += 1
        self.by_address[address] = self.by_address.get(address, 0) + 1
        self._set_idle(conn)
        return conn

    def forget(self, conn: Conn) -> None:
        """The connection is closed (idempotent)."""
        if conn.closed:
            return
        conn.closed = True
        self._unset_idle(conn)
        self.total -= 1
        left = self.by_address[conn.address] - 1
        if left:
            self.by_address[conn.address] = left
        else:
            del self.by_address[conn.address]

    def request_started(self, conn: Conn) -> None:
        """A request is being served on the connection: it may not be evicted."""
        conn.busy += 1
        self._unset_idle(conn)

    def request_done(self, conn: Conn) -> None:
        """A request on the connection is done; without others it is idle again (newest idle)."""
        conn.busy -= 1
        if conn.busy == 0 and not conn.closed:
            self._set_idle(conn)

    def close_all(self) -> None:
        """Close every connection still in its TLS handshake (the web server closes the rest)."""
        for conn in list(self._idle):
            if conn.handshake is not None:
                conn.handshake.cancel()

    def _set_idle(self, conn: Conn) -> None:
        self._idle[conn] = None
        self._idle_by_address.setdefault(conn.address, OrderedDict())[conn] = None

    def _unset_idle(self, conn: Conn) -> None:
        self._idle.pop(conn, None)
        per = self._idle_by_address.get(conn.address)
        if per is not None:
            per.pop(conn, None)
            if not per:
                del self._idle_by_address[conn.address]

    def _evict(self, idle: OrderedDict[Conn, None] | None) -> bool:
        """Close the connection idle for longest among ``idle``; False if there is none."""
        if not idle:
            return False
        victim = next(iter(idle))
        handler = victim.handler
        if handler is not None and handler.transport is not None:
            # No TLS goodbye: a stalled peer would keep the descriptor for the whole shutdown timeout.
            handler.transport.abort()
            handler.force_close()
        elif victim.handshake is not None:
            victim.handshake.cancel()
        self.forget(victim)
        self.evicted += 1
        return True


class _TrackedHandler(web.RequestHandler):
    """aiohttp's per-connection protocol, telling the table when its connection ends."""

    def __init__(self, table: ConnectionTable, conn: Conn, manager: web.Server, **kwargs: Any):
        super().__init__(manager, **kwargs)
        self.table = table
        self.conn = conn

    def connection_lost(self, exc: BaseException | None) -> None:
        """Closed by either side: the connection leaves the table."""
        super().connection_lost(exc)
        self.table.forget(self.conn)


class Listener:
    """Accepts connections for an aiohttp server, within the table's caps and timeouts."""

    def __init__(self, server: web.Server, table: ConnectionTable, ssl_context: ssl.SSLContext | None,
                 header_timeout: float):
        self.server = server
        self.table = table
        self.ssl_context = ssl_context
        self.header_timeout = header_timeout
        self._sock: socket.socket | None = None
        self._accepting: asyncio.Task[None] | None = None
        self._last_accept_error = 0.0

    async def start(self, host: str, port: int, backlog: int) -> None:
        """Bind and listen (raises OSError as a server socket would), then accept in the background."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6 and host in ("::", ""):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            sock.bind((host, port))
            sock.listen(backlog)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._accepting = asyncio.create_task(self._accept_loop(), name="apiserver-accept")

    async def stop(self) -> None:
        """Stop accepting and drop connections still in their handshake."""
        if self._accepting is not None:
            self._accepting.cancel()
            await asyncio.gather(self._accepting, return_exceptions=True)
            self._accepting = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self.table.close_all()

    async def _accept_loop(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._sock is not None
        while True:
            try:
                sock, addr = await loop.sock_accept(self._sock)
            except OSError as e:
                # Out of descriptors (or a connection that died in the queue): never stop
                # accepting for good; give closing connections a moment instead.
                now = time.monotonic()
                if e.errno in (errno.EMFILE, errno.ENFILE) and now - self._last_accept_error > 10:
                    log.warning("accepting a connection failed: %s", e.strerror or e)
                    self._last_accept_error = now
                await asyncio.sleep(ACCEPT_PAUSE)
                continue
            address = addr[0] if isinstance(addr, tuple) else str(addr)
            sock.setblocking(False)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = self.table.admit(address)
            if conn is None:
                sock.close()
                continue
            conn.handshake = asyncio.create_task(self._connect(sock, conn))

    async def _connect(self, sock: socket.socket, conn: Conn) -> None:
        """TLS handshake (bounded by the header timeout), then aiohttp serves the connection."""
        loop = asyncio.get_running_loop()

        def protocol() -> _TrackedHandler:
            handler = _TrackedHandler(self.table, conn, self.server, loop=loop,
                                      keepalive_timeout=self.header_timeout, access_log=None)
            conn.handler = handler
            return handler
        try:
            if self.ssl_context is not None:
                await loop.connect_accepted_socket(protocol, sock, ssl=self.ssl_context,
                                                   ssl_handshake_timeout=self.header_timeout,
                                                   ssl_shutdown_timeout=SSL_SHUTDOWN_TIMEOUT)
            else:
                await loop.connect_accepted_socket(protocol, sock)
        except asyncio.CancelledError:
            self.table.forget(conn)  # evicted or stopping; the transport closed the socket
        except (OSError, ssl.SSLError, TimeoutError, ConnectionError) as e:
            log.debug("connection from %s failed before its first request: %s", conn.address, e)
            self.table.forget(conn)
        finally:
            conn.handshake = None


# -- requests ------------------------------------------------------------------------------


class BodyTimeout(Exception):
    """The request body did not arrive in time."""


@dataclass
class InFlight:
    """Counts requests in flight and serves the limits middleware."""

    config: LimitsConfig
    table: ConnectionTable | None = None
    read_only: int = 0
    mutating: int = 0
    rejected: dict[str, int] = field(default_factory=lambda: {"readOnly": 0, "mutating": 0})

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Mark the connection busy, apply the in-flight caps and the body timeout."""
        proto = request.protocol
        conn = proto.conn if isinstance(proto, _TrackedHandler) else None
        if conn is not None and self.table is not None:
            self.table.request_started(conn)
        try:
            if is_long_running(request):
                return await handler(request)
            mutating = request.method not in READ_ONLY_METHODS
            cap = self.config.max_mutating_requests_inflight if mutating else self.config.max_requests_inflight
            if cap <= 0:
                return await self._bounded(request, handler)
            used = self.mutating if mutating else self.read_only
            if used >= cap:
                if _privileged(request):  # upstream: a system:masters caller always gets an answer
                    return await self._bounded(request, handler)
                self.rejected["mutating" if mutating else "readOnly"] += 1
                return too_many_requests()
            if mutating:
                self.mutating += 1
            else:
                self.read_only += 1
            try:
                return await self._bounded(request, handler)
            finally:
                if mutating:
                    self.mutating -= 1
                else:
                    self.read_only -= 1
        finally:
            if conn is not None and self.table is not None:
                self.table.request_done(conn)

    async def _bounded(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Run the handler; a body still arriving after ``body_timeout`` fails the request with 408."""
        if not request.body_exists or self.config.body_timeout <= 0:
            return await handler(request)
        content = request.content
        timer = asyncio.get_running_loop().call_later(self.config.body_timeout, _expire, content,
                                                      self.config.body_timeout)
        content.on_eof(timer.cancel)
        try:
            return await handler(request)
        except BodyTimeout as e:
            resp = neg.respond_error(errors.status_error(408, "Timeout", str(e)))
            resp.force_close()  # the rest of the body would be read as the next request
            return resp
        finally:
            timer.cancel()


def _expire(content: Any, seconds: float) -> None:
    if not content.is_eof():
        content.set_exception(BodyTimeout(f"Timeout: the request body did not arrive within {seconds:g}s"))


def _privileged(request: web.Request) -> bool:
    user = request.get("user")
    return PRIVILEGED_GROUP in (getattr(user, "groups", None) or ())


def too_many_requests() -> web.Response:
    """Upstream's 429: plain text, Retry-After one second."""
    return web.Response(status=429, text=TOO_MANY_REQUESTS, content_type="text/plain", charset="utf-8",
                        headers={"Retry-After": RETRY_AFTER, "X-Content-Type-Options": "nosniff"})


def is_long_running(request: web.Request) -> bool:
    """Watches and the streaming subresources, which upstream leaves out of the in-flight count."""
    if request.method == "GET" and qbool(request, "watch"):
        return True
    parts = [p for p in request.path.split("/") if p]
    if parts[:1] == ["api"]:
        rest = parts[2:]
    elif parts[:1] == ["apis"]:
        rest = parts[3:]
    else:
        return False
    if rest[:1] in (["watch"], ["proxy"]):  # the old /watch/… and /proxy/… verb paths
        return True
    if rest[:1] == ["namespaces"] and len(rest) >= 3 and not (len(rest) == 3 and rest[2] in ("status", "finalize")):
        rest = rest[2:]
    return len(rest) > 2 and rest[2] in LONG_RUNNING_SUBRESOURCES
