"""The store over etcd v3 (``kubelite server --datastore-endpoint``), through gRPC.

The request and message types are the generated stubs shipped in the ``aetcd`` package
(``aetcd.rpc``); the channel is our own, because aetcd's client speaks plaintext to one
host only, and etcd is normally reached over TLS with client certificates and several
members.

How the store's semantics map onto etcd:
- resourceVersion is etcd's ``mod_revision``; create, update and delete are transactions
  that compare ``create_revision``/``mod_revision``/``version`` before writing;
- keys are laid out as kube-apiserver lays them (``/registry/pods/<ns>/<name>``,
  ``/registry/minions/<name>`` …, ``KeyLayout``); the API server's own keys are
  ``/registry/<group>/<plural>/…`` and are translated on the way in and out;
- values are the API server's JSON, as the SQLite store keeps them (kube-apiserver stores
  protobuf, so its own tools cannot read an etcd written by kubelite);
- each server follows etcd with one watch on the whole key space (its watch cache, as
  kube-apiserver's cacher): every client watch is served from that window of recent
  events, so writes made through any server reach the watchers of every server, in order;
  a revision older than the window, or compacted, is refused with ``Compacted`` (410);
- a list at a past revision is a Range at that revision, read in pages of ``PAGE`` keys;
  etcd refuses a compacted one and that becomes ``Compacted`` too;
- a write returns once its own event has reached this server's window, so whatever follows
  it here (a watch opened at once, the RBAC cache) sees it, as with the SQLite store;
- ``compact`` is etcd's Compact (the API server calls it every 5 minutes);
- leases only where kube-apiserver uses them: Events are written on a lease shared per
  minute and expire ``event_ttl`` seconds after their last write.
"""
from __future__ import annotations

import asyncio
import builtins
import heapq
import itertools
import logging
import os
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

from kubelite.store.base import (
    KV,
    Compacted,
    Event,
    KeyExists,
    KeyNotFound,
    RevisionMismatch,
    Store,
    StoreError,
    StoreUnavailable,
    Watch,
)
from kubelite.store.watchqueue import QueuedWatch

# The server forks (then execs at once) for pods and image tools while gRPC's threads run:
# gRPC's fork handlers have nothing to do then, and would log a line for every fork.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
import grpc
from aetcd import rpc

log = logging.getLogger(__name__)

HISTORY_EVENTS = 100_000    # watch window kept in memory (as the SQLite store's)
PREFILL_REVISIONS = 5_000   # at start-up the window is refilled with this much of etcd's history
PAGE = 1_000                # keys per Range when listing
RPC_TIMEOUT = 10.0          # seconds for one unary call to etcd
EVENT_TTL = 3600.0          # Events live this long (kube-apiserver's --event-ttl default, 1 h) ...
LEASE_REUSE = 60.0          # ... on a lease shared by the Events written within this many seconds
CATCH_UP_TIMEOUT = 5.0      # longest a write waits for its own event to reach this server's watchers
ROOT = "/"                  # the key space followed (every key the API server writes starts so)
GET_BATCH = 64              # most gets read in one transaction (etcd refuses more than 128 operations)

# kube-apiserver's prefixes that differ from the resource's plural.
UPSTREAM_PREFIXES = {
    "nodes": "minions",
    "services": "services/specs",
    "endpoints": "services/endpoints",
    "replicationcontrollers": "controllers",
    "ingresses": "ingress",
}
# Groups kube-apiserver keeps under their group name, as custom resources are.
GROUP_QUALIFIED = {"apiextensions.k8s.io", "apiregistration.k8s.io"}

T = TypeVar("T")


class Unavailable(StoreUnavailable):
    """etcd could not be reached or answered with an error."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One etcd member's client URL."""

    scheme: str
    host: str
    port: int

    @property
    def target(self) -> str:
        """host:port as gRPC dials it."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_endpoints(text: str) -> list[Endpoint]:
    """``https://h:p[,https://h2:p2]`` → endpoints (ValueError with a reason otherwise)."""
    out: list[Endpoint] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        u = urlsplit(part if "://" in part else "http://" + part)
        if u.scheme not in ("http", "https"):
            raise ValueError(f"{part!r}: an etcd endpoint is http://HOST:PORT or https://HOST:PORT")
        try:
            port = u.port or 2379
        except ValueError:
            raise ValueError(f"{part!r}: the port is not a number from 1 to 65535") from None
        if not u.hostname:
            raise ValueError(f"{part!r}: no host")
        if u.path not in ("", "/"):
            raise ValueError(f"{part!r}: an etcd endpoint has no path")
        out.append(Endpoint(u.scheme, u.hostname, port))
    if not out:
        raise ValueError("no etcd endpoint given")
    if len({e.scheme for e in out}) > 1:
        raise ValueError("etcd endpoints must all be http:// or all https://")
    return out


@dataclass(frozen=True, slots=True)
class TLSFiles:
    """The client's TLS material for https:// endpoints (paths; empty = none)."""

    cafile: str = ""
    certfile: str = ""
    keyfile: str = ""


class KeyLayout:
    """Translates the API server's keys (``/registry/<group>/<plural>/…``) to the layout
    kube-apiserver uses in etcd and back.  Keys of resources not named here (custom
    resources, CRDs themselves) keep their group-qualified form, as upstream's do."""

    def __init__(self, prefixes: Iterable[str] = ()):
        self._to_etcd: dict[str, str] = {}
        self._to_kube: dict[str, str] = {}
        for prefix in prefixes:
            parts = prefix.split("/")
            if len(parts) != 5 or parts[:2] != ["", "registry"] or parts[4] != "" or parts[2] in GROUP_QUALIFIED:
                continue
            if prefix in self._to_etcd:
                continue  # one storage for two APIs (events and events.k8s.io events)
            target = f"/registry/{UPSTREAM_PREFIXES.get(parts[3], parts[3])}/"
            if target in self._to_kube:
                continue  # the same plural in two groups: the second stays group-qualified
            self._to_etcd[prefix] = target
            self._to_kube[target] = prefix

    def to_etcd(self, key: str) -> str:
        """The etcd key (or key prefix) of an API server key."""
        parts = key.split("/", 4)
        if len(parts) == 5:
            head = "/".join(parts[:4]) + "/"
            mapped = self._to_etcd.get(head)
            if mapped is not None:
                return mapped + parts[4]
        return key

    def to_kube(self, key: str) -> str:
        """The API server key of an etcd key."""
        parts = key.split("/", 4)
        for n in (4, 3):
            if len(parts) > n:
                head = "/".join(parts[:n]) + "/"
                mapped = self._to_kube.get(head)
                if mapped is not None:
                    return mapped + key[len(head):]
        return key

    def ranges(self, prefix: str) -> list[str]:
        """The etcd prefixes that together hold every key under an API server prefix."""
        direct = self.to_etcd(prefix)
        if direct != prefix or not any(k.startswith(prefix) for k in self._to_etcd):
            return [direct]
        # A prefix above the translated ones (say every RBAC kind): its own range, and the
        # translated range of each resource under it.
        found = [prefix] + [v for k, v in self._to_etcd.items() if k.startswith(prefix)]
        found.sort()
        out: list[str] = []
        for p in found:
            if not any(p.startswith(q) for q in out):
                out.append(p)
        return out


def _range_end(prefix: bytes) -> bytes:
    """The end of etcd's range of every key starting with ``prefix``."""
    b = bytearray(prefix)
    while b:
        if b[-1] < 0xFF:
            b[-1] += 1
            return bytes(b)
        b.pop()
    return b"\0"  # every key


def _compacted(e: grpc.aio.AioRpcError) -> bool:
    return "required revision has been compacted" in (e.details() or "")


class EtcdStore(Store):
    """The store on an etcd v3 cluster; open it with ``await EtcdStore.open(...)``."""

    def __init__(self, endpoints: list[Endpoint], tls: TLSFiles | None = None, layout: KeyLayout | None = None,
                 root: str = ROOT, timeout: float = RPC_TIMEOUT, event_ttl: float = EVENT_TTL):
        self.endpoints = endpoints
        self._tls = tls or TLSFiles()
        self.layout = layout or KeyLayout()
        self._root = root
        self._timeout = timeout
        self._channels: list[grpc.aio.Channel | None] = [None] * len(endpoints)
        # A stub builds a callable per method of its service: made once per channel, not per call.
        self._stubs: dict[tuple[int, Callable[[grpc.aio.Channel], rpc.KVStub]],
                          tuple[grpc.aio.Channel, rpc.KVStub]] = {}
        self._current = 0
        self._rev = 0
        self._compact_rev = 0
        self._history: deque[Event] = deque(maxlen=HISTORY_EVENTS)
        self._hist_start = 1
        self._watchers: set[QueuedWatch] = set()
        self._follower: asyncio.Task[None] | None = None
        self._synced = asyncio.Event()
        self._open_rev = 0
        self._cache_rev = 0  # every event up to this revision has reached the watchers
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []  # writers waiting for their event
        self._waiter_ids = itertools.count()
        self._closed = False
        # Events expire as upstream's do: etcd deletes them with their lease (0: never).
        self._event_ttl = event_ttl
        self._event_prefix = self.layout.to_etcd("/registry/core/events/").encode()
        self._lease: tuple[int, float] | None = None  # (lease ID, when granted)
        # Gets that arrived while a read was under way, read together in the next one.
        self._gets: list[tuple[bytes, asyncio.Future[KV | None]]] = []
        self._getter: asyncio.Task[None] | None = None

    # -- connection ---------------------------------------------------------------------
    @classmethod
    async def open(cls, endpoints: list[Endpoint], tls: TLSFiles | None = None, layout: KeyLayout | None = None,
                   *, root: str = ROOT, timeout: float = RPC_TIMEOUT, sync_timeout: float = 30.0,
                   event_ttl: float = EVENT_TTL) -> EtcdStore:
        """Connect, read the current revision and start following etcd (raises Unavailable)."""
        store = cls(endpoints, tls, layout, root, timeout, event_ttl)
        try:
            resp = await store._call(lambda kv: kv.Range(rpc.RangeRequest(key=b"/", count_only=True), timeout=timeout))
            store._rev = store._open_rev = resp.header.revision
            store._hist_start = max(1, store._rev - PREFILL_REVISIONS + 1)
            store._follower = asyncio.create_task(store._follow(store._hist_start), name="etcd-watch-cache")
            # Serve watches only once the window holds everything up to the opening revision.
            try:
                await asyncio.wait_for(store._synced.wait(), sync_timeout)
            except TimeoutError:
                raise Unavailable("etcd did not answer the watch that follows it") from None
        except BaseException:
            await store.close()
            raise
        return store

    def _credentials(self) -> grpc.ChannelCredentials:
        def read(path: str) -> bytes | None:
            if not path:
                return None
            with open(path, "rb") as f:
                return f.read()
        return grpc.ssl_channel_credentials(root_certificates=read(self._tls.cafile),
                                            private_key=read(self._tls.keyfile),
                                            certificate_chain=read(self._tls.certfile))

    def _channel(self) -> grpc.aio.Channel:
        ch = self._channels[self._current]
        if ch is None:
            ep = self.endpoints[self._current]
            # etcd's default request limit is 1.5 MiB, but a page of a list can be larger.
            options = [("grpc.max_receive_message_length", 64 << 20), ("grpc.keepalive_time_ms", 30_000)]
            if ep.scheme == "https":
                ch = grpc.aio.secure_channel(ep.target, self._credentials(), options=options)
            else:
                ch = grpc.aio.insecure_channel(ep.target, options=options)
            self._channels[self._current] = ch
        return ch

    def _stub(self, make: Callable[[grpc.aio.Channel], rpc.KVStub]) -> rpc.KVStub:
        """The ``make`` stub on the current endpoint's channel."""
        ch = self._channel()
        key = (self._current, make)
        hit = self._stubs.get(key)
        if hit is None or hit[0] is not ch:
            hit = self._stubs[key] = (ch, make(ch))
        return hit[1]

    def _failover(self, failed: int) -> None:
        """Move to the next endpoint after ``failed`` did not answer."""
        if len(self.endpoints) > 1 and self._current == failed:
            self._current = (failed + 1) % len(self.endpoints)
            log.warning("etcd %s unavailable, using %s", self.endpoints[failed].target,
                        self.endpoints[self._current].target)

    async def _call(self, fn: Callable[[rpc.KVStub], Awaitable[T]],
                    stub: Callable[[grpc.aio.Channel], rpc.KVStub] = rpc.KVStub) -> T:
        """One call (on the KV service unless ``stub`` names another), tried on each endpoint in
        turn while they are unreachable."""
        last: Exception | None = None
        for _ in range(len(self.endpoints)):
            idx = self._current
            try:
                return await fn(self._stub(stub))
            except grpc.aio.AioRpcError as e:
                if e.code() == grpc.StatusCode.UNAVAILABLE:
                    last = e
                    self._failover(idx)
                    continue
                if e.code() == grpc.StatusCode.OUT_OF_RANGE and _compacted(e):
                    raise
                raise Unavailable(f"etcd: {e.details()}") from e
            except (OSError, ssl.SSLError) as e:  # a TLS file could not be read
                raise Unavailable(f"etcd TLS: {e}") from e
        raise Unavailable(f"etcd unreachable: {last.details() if isinstance(last, grpc.aio.AioRpcError) else last}")

    def _saw(self, revision: int) -> None:
        if revision > self._rev:
            self._rev = revision

    def _kv(self, kv: rpc.KeyValue) -> KV:
        return KV(self.layout.to_kube(kv.key.decode()), bytes(kv.value), kv.mod_revision, kv.create_revision)

    # -- reads --------------------------------------------------------------------------
    @property
    def revision(self) -> int:
        """The newest revision this server has seen (written, read or followed)."""
        return self._rev

    async def get(self, key: str) -> KV | None:
        """The live value of a key (a linearizable read), or None.

        Gets that come while another read is in flight are read together, in one read-only
        transaction, as soon as it returns: each is still a quorum read that starts after
        its caller asked, and a gRPC call costs the server more than etcd's answer does."""
        fut: asyncio.Future[KV | None] = asyncio.get_running_loop().create_future()
        self._gets.append((self.layout.to_etcd(key).encode(), fut))
        if self._getter is None or self._getter.done():
            self._getter = asyncio.create_task(self._read_gets(), name="etcd-gets")
        return await fut

    async def _read_gets(self) -> None:
        """Read the queued gets, a batch at a time, until none is left."""
        while self._gets:
            batch, self._gets = self._gets[:GET_BATCH], self._gets[GET_BATCH:]
            try:
                found = await self._read_keys([k for k, _ in batch])
            except Exception as e:
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(e)
                continue
            except BaseException:  # cancelled (the store closes): nobody will read these
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(Unavailable("etcd: the store is closing"))
                raise
            for (_, fut), kv in zip(batch, found, strict=True):
                if not fut.done():
                    fut.set_result(kv)

    async def _read_keys(self, keys: builtins.list[bytes]) -> builtins.list[KV | None]:
        """One linearizable read of several keys: a Range for one, a read-only Txn for more."""
        if len(keys) == 1:
            one = rpc.RangeRequest(key=keys[0])
            resp = await self._call(lambda kv: kv.Range(one, timeout=self._timeout))
            self._saw(resp.header.revision)
            return [self._kv(resp.kvs[0]) if resp.kvs else None]
        txn = rpc.TxnRequest(success=[rpc.RequestOp(request_range=rpc.RangeRequest(key=k)) for k in keys])
        tresp = await self._call(lambda kv: kv.Txn(txn, timeout=self._timeout))
        self._saw(tresp.header.revision)
        out: builtins.list[KV | None] = []
        for r in tresp.responses:
            kvs = r.response_range.kvs
            out.append(self._kv(kvs[0]) if kvs else None)
        return out

    async def _read_range(self, req: rpc.RangeRequest) -> rpc.RangeResponse:
        return await self._call(lambda kv: kv.Range(req, timeout=self._timeout))

    async def _range(self, prefix: str, revision: int) -> tuple[builtins.list[KV], int]:
        """Every key under prefix at ``revision`` (0 = now), in pages, and the revision read."""
        out: builtins.list[KV] = []
        for etcd_prefix in self.layout.ranges(prefix):
            start = etcd_prefix.encode()
            end = _range_end(start)
            while True:
                req = rpc.RangeRequest(key=start, range_end=end, limit=PAGE, revision=revision)
                try:
                    resp = await self._read_range(req)
                except grpc.aio.AioRpcError as e:  # only a compacted revision comes through
                    raise Compacted(revision, self._compact_rev) from e
                if revision == 0:
                    revision = resp.header.revision  # later pages and ranges read the same snapshot
                    self._saw(revision)
                out.extend(self._kv(kv) for kv in resp.kvs)
                if not resp.more or not resp.kvs:
                    break
                start = resp.kvs[-1].key + b"\0"
        if revision == 0:
            revision = self._rev
        out = [kv for kv in out if kv.key.startswith(prefix)]
        out.sort(key=lambda kv: kv.key)
        return out, revision

    async def list(self, prefix: str) -> tuple[builtins.list[KV], int]:
        """Every live key under prefix (sorted by key) and the revision of the snapshot."""
        return await self._range(prefix, 0)

    async def list_at(self, prefix: str, revision: int) -> builtins.list[KV]:
        """Every key under prefix as it was at ``revision`` (Compacted when etcd forgot it)."""
        if revision < self._compact_rev:
            raise Compacted(revision, self._compact_rev)
        return (await self._range(prefix, min(revision, max(self._rev, 1))))[0]

    # -- writes -------------------------------------------------------------------------
    async def _txn(self, req: rpc.TxnRequest) -> rpc.TxnResponse:
        resp = await self._call(lambda kv: kv.Txn(req, timeout=self._timeout))
        self._saw(resp.header.revision)
        if resp.succeeded:
            await self._caught_up(resp.header.revision)
        return resp

    async def _caught_up(self, revision: int) -> None:
        """Wait until this server's watchers have the change made at ``revision``, as with the
        embedded store: whatever follows a write here (an RBAC cache, a watch opened at once)
        sees it.  Bounded, since etcd may be slow to stream it; the write stands either way."""
        if self._cache_rev >= revision or self._closed:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (revision, next(self._waiter_ids), fut))
        try:
            await asyncio.wait_for(asyncio.shield(fut), CATCH_UP_TIMEOUT)
        except TimeoutError:
            log.warning("the change at revision %d has not come back from etcd's watch yet", revision)

    def _advance(self, revision: int) -> None:
        """Every event up to ``revision`` has been published: release the writers waiting for it."""
        if revision <= self._cache_rev:
            return
        self._cache_rev = revision
        while self._waiting and self._waiting[0][0] <= revision:
            fut = heapq.heappop(self._waiting)[2]
            if not fut.done():
                fut.set_result(None)

    async def _lease_for(self, k: bytes) -> int:
        """The lease an Event is written with (0 for every other key), shared by the Events
        of one LEASE_REUSE window as upstream shares them, so etcd keeps few leases."""
        if not self._event_ttl or not k.startswith(self._event_prefix):
            return 0
        now = time.monotonic()
        if self._lease is not None and now - self._lease[1] < LEASE_REUSE:
            return self._lease[0]
        ttl = max(1, round(self._event_ttl + LEASE_REUSE))
        resp = await self._call(lambda ls: ls.LeaseGrant(rpc.LeaseGrantRequest(TTL=ttl), timeout=self._timeout),
                                stub=rpc.LeaseStub)
        self._lease = (resp.ID, now)
        return int(resp.ID)

    @staticmethod
    def _guard(k: bytes, expected_revision: int | None) -> rpc.Compare:
        if expected_revision is None:  # it exists
            return rpc.Compare(key=k, target=rpc.Compare.VERSION, result=rpc.Compare.GREATER, version=0)
        return rpc.Compare(key=k, target=rpc.Compare.MOD, result=rpc.Compare.EQUAL, mod_revision=expected_revision)

    def _refused(self, key: str, resp: rpc.TxnResponse) -> StoreError:
        """Why a guarded write did not happen: the key is gone, or it changed."""
        kvs = resp.responses[0].response_range.kvs if resp.responses else []
        if not kvs:
            return KeyNotFound(key)
        return RevisionMismatch(self._kv(kvs[0]))

    async def create(self, key: str, value: bytes) -> KV:
        """Store a new key (raises KeyExists)."""
        k = self.layout.to_etcd(key).encode()
        resp = await self._txn(rpc.TxnRequest(
            compare=[rpc.Compare(key=k, target=rpc.Compare.CREATE, result=rpc.Compare.EQUAL, create_revision=0)],
            success=[rpc.RequestOp(request_put=rpc.PutRequest(key=k, value=value, lease=await self._lease_for(k)))]))
        if not resp.succeeded:
            raise KeyExists(key)
        rev = resp.header.revision
        return KV(key, value, rev, rev)

    async def update(self, key: str, value: bytes, expected_revision: int | None) -> KV:
        """Replace a value if it is still at ``expected_revision`` (None: unconditional)."""
        k = self.layout.to_etcd(key).encode()
        resp = await self._txn(rpc.TxnRequest(
            compare=[self._guard(k, expected_revision)],
            success=[rpc.RequestOp(request_put=rpc.PutRequest(key=k, value=value, prev_kv=True,
                                                              lease=await self._lease_for(k)))],
            failure=[rpc.RequestOp(request_range=rpc.RangeRequest(key=k))]))
        if not resp.succeeded:
            raise self._refused(key, resp)
        prev = resp.responses[0].response_put.prev_kv
        return KV(key, value, resp.header.revision, prev.create_revision)

    async def delete(self, key: str, expected_revision: int | None) -> KV:
        """Delete a key; the deleted KV carries the deletion's revision."""
        k = self.layout.to_etcd(key).encode()
        resp = await self._txn(rpc.TxnRequest(
            compare=[self._guard(k, expected_revision)],
            success=[rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=k, prev_kv=True))],
            failure=[rpc.RequestOp(request_range=rpc.RangeRequest(key=k))]))
        if not resp.succeeded:
            raise self._refused(key, resp)
        prevs = resp.responses[0].response_delete_range.prev_kvs
        if not prevs:  # deleted by someone else between the compare and the delete cannot happen in a txn
            raise KeyNotFound(key)
        prev = prevs[0]
        return KV(key, bytes(prev.value), resp.header.revision, prev.create_revision)

    # -- the watch cache ------------------------------------------------------------------
    def _event(self, ev: rpc.Event) -> Event:
        kv = ev.kv
        key = self.layout.to_kube(kv.key.decode())
        prev = self._kv(ev.prev_kv) if ev.HasField("prev_kv") else None
        if ev.type == rpc.Event.DELETE:
            last = prev or KV(key, b"", kv.mod_revision, kv.create_revision)
            return Event("DELETE", KV(key, last.value, kv.mod_revision, last.create_revision), prev)
        new = KV(key, bytes(kv.value), kv.mod_revision, kv.create_revision)
        if kv.version == 1:
            prev = None  # a create (etcd may still hand the deleted predecessor's value)
        elif prev is None:
            prev = new  # history before this update is gone; still an update, not a create
        return Event("PUT", new, prev)

    def _publish(self, ev: Event) -> None:
        self._saw(ev.revision)
        if ev.revision <= self._compact_rev:
            return  # compacted by this server before the event reached us
        if not self._history:
            self._hist_start = min(self._hist_start, ev.revision)
        self._history.append(ev)
        if len(self._history) == self._history.maxlen:
            self._hist_start = self._history[0].revision
        for w in list(self._watchers):
            if ev.kv.key.startswith(w.prefix):
                w.push(ev)

    def _reset(self, revision: int) -> None:
        """Events were lost (etcd compacted past what we had): every watcher must start over."""
        log.warning("the etcd watch fell behind a compaction; watchers restart from revision %d", revision)
        for w in list(self._watchers):
            w.close()
        self._history.clear()
        self._hist_start = revision + 1
        self._saw(revision)
        self._advance(revision)

    async def _follow(self, start: int) -> None:
        """Follow every change under the root from ``start`` on, reconnecting as needed."""
        root = self._root.encode()
        first = True
        backoff = 0.1
        while not self._closed:
            idx = self._current
            call = None
            asker: asyncio.Task[None] | None = None
            try:
                call = rpc.WatchStub(self._channel()).Watch()
                await call.write(rpc.WatchRequest(create_request=rpc.WatchCreateRequest(
                    key=root, range_end=_range_end(root), start_revision=start, prev_kv=True, progress_notify=True)))
                if not self._synced.is_set():
                    asker = asyncio.create_task(self._ask_progress(call))
                async for resp in call:
                    backoff = 0.1
                    if resp.compact_revision:
                        # start is compacted: take what is left, or start over if we had more.
                        if first:
                            start = resp.compact_revision
                            self._hist_start = start
                        else:
                            self._reset(self._rev)
                            start = self._rev + 1
                        break
                    if resp.canceled:
                        raise Unavailable(f"etcd cancelled the watch: {resp.cancel_reason}")
                    if resp.created:
                        continue
                    for ev in resp.events:
                        self._publish(self._event(ev))
                    if resp.events:
                        start = resp.events[-1].kv.mod_revision + 1
                        self._advance(start - 1)
                        if start > self._open_rev:
                            first = False
                            self._synced.set()
                    else:
                        # A progress answer: every event up to this revision has been sent.
                        self._saw(resp.header.revision)
                        self._advance(resp.header.revision)
                        start = max(start, resp.header.revision + 1)
                        first = False
                        self._synced.set()
                else:
                    await asyncio.sleep(backoff)  # etcd ended the stream (it is stopping): reconnect soon
            except asyncio.CancelledError:
                raise
            except (grpc.aio.AioRpcError, Unavailable) as e:
                if self._closed:
                    return
                detail = e.details() if isinstance(e, grpc.aio.AioRpcError) else str(e)
                log.warning("etcd watch interrupted (%s); resuming from revision %d", detail, start)
                if isinstance(e, grpc.aio.AioRpcError) and e.code() == grpc.StatusCode.UNAVAILABLE:
                    self._failover(idx)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
            finally:
                if asker is not None:
                    asker.cancel()
                if call is not None:
                    call.cancel()

    async def _ask_progress(self, call: grpc.aio.StreamStreamCall) -> None:
        """Ask for a progress answer until the window has caught up (etcd 3.4 drops the
        question while the watch is still replaying history)."""
        while not self._synced.is_set():
            await call.write(rpc.WatchRequest(progress_request=rpc.WatchProgressRequest()))
            await asyncio.sleep(0.2)

    def watch(self, prefix: str, from_revision: int) -> Watch:
        """Changes under prefix with revision > from_revision (Compacted when older than the window)."""
        oldest = max(self._hist_start - 1, self._compact_rev)
        if from_revision < oldest:
            raise Compacted(from_revision, oldest)
        w = QueuedWatch(prefix, self._watchers.discard, after=from_revision)
        for ev in self._history:
            if ev.revision > from_revision and ev.kv.key.startswith(prefix):
                w.push(ev)
        self._watchers.add(w)
        return w

    async def compact(self, revision: int) -> None:
        """etcd's Compact at ``revision``, and the window forgets that history too."""
        revision = min(revision, self._rev)
        if revision <= self._compact_rev:
            return
        try:
            await self._call(lambda kv: kv.Compact(rpc.CompactionRequest(revision=revision), timeout=self._timeout))
        except grpc.aio.AioRpcError as e:
            if not _compacted(e):  # another server compacted further already
                raise
        self._compact_rev = revision
        while self._history and self._history[0].revision <= revision:
            self._history.popleft()
        self._hist_start = max(self._hist_start, revision + 1)

    async def close(self) -> None:
        """Stop following etcd, close every watch and the connections."""
        self._closed = True
        if self._getter is not None:
            self._getter.cancel()
            await asyncio.gather(self._getter, return_exceptions=True)
        for _, pending in self._gets:
            if not pending.done():
                pending.set_exception(Unavailable("etcd: the store is closing"))
        self._gets.clear()
        for _, _, fut in self._waiting:
            if not fut.done():
                fut.set_result(None)
        self._waiting.clear()
        for w in list(self._watchers):
            w.close()
        if self._follower is not None:
            self._follower.cancel()
            try:
                await self._follower
            except (asyncio.CancelledError, Exception):
                pass
        for ch in self._channels:
            if ch is not None:
                await ch.close()
        self._channels = [None] * len(self.endpoints)
        self._stubs.clear()

