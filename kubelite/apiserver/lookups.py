"""In-memory copies of the few kinds admission reads on every create, fed by the store's watch.

A pod create needs its Namespace (does it exist, is it terminating), its ServiceAccount,
the global-default PriorityClass, and whether its namespace has ResourceQuotas or
LimitRanges.  Reading those from the store costs a round trip each (a gRPC call on etcd),
more than the create itself; upstream's admission plugins read them from informers
instead.  Each ``KindCopy`` here is that informer, inside the API server: it lists its
kind once, then applies the store's watch from the list's revision, and lists again when
the watch ends (a compaction, a reset, a watcher that fell behind).

Why a read from the copy is as good as a store read for this server's own writes: both
stores return a write only after its event has been queued for this server's watchers,
and a lookup first applies whatever is queued (``current``).  So an object created here is
in the copy by the time its client hears back.  Writes made through another API server on
the same etcd reach the copy a moment later: callers treat a miss as "ask the store"
(``Lookups`` does), never as "does not exist", as upstream's plugins fall back to a live
lookup.  While the copy is not following the store (before the first list, after its
watch ended) every lookup goes to the store.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from kubelite.api.resources import (
    LIMITRANGES,
    NAMESPACES,
    PRIORITYCLASSES,
    RESOURCEQUOTAS,
    SERVICEACCOUNTS,
    ResourceInfo,
)
from kubelite.apiserver.registry import decode
from kubelite.store.base import Event, Store, Watch
from kubelite.store.watchqueue import QueuedWatch

log = logging.getLogger(__name__)
Obj = dict[str, Any]

# How long an empty answer from the store for "which quotas / limit ranges does this
# namespace have" stands in for the copy's empty answer (upstream's live-lookup TTL).
LIVE_TTL = 30.0


class KindCopy:
    """Every object of one kind, by namespace and name, kept current by a store watch."""

    def __init__(self, store: Store, info: ResourceInfo):
        self.store = store
        self.info = info
        self.prefix = info.store_prefix()
        self._by_ns: dict[str, dict[str, Obj]] = {}
        self._watch: Watch | None = None
        self._task: asyncio.Task[None] | None = None

    # -- following the store ----------------------------------------------------------------
    async def load(self) -> None:
        """List the kind and watch from the list's revision (replaces the copy)."""
        kvs, rev = await self.store.list(self.prefix)
        w = self.store.watch(self.prefix, rev)  # Compacted: the follower lists again
        by_ns: dict[str, dict[str, Obj]] = {}
        for kv in kvs:
            by_ns.setdefault(self._namespace(kv.key), {})[kv.key.rpartition("/")[2]] = decode(kv, self.info)
        if self._watch is not None:  # a load that ran meanwhile: this one is newer
            self._watch.close()
        self._by_ns = by_ns
        self._watch = w

    def start(self) -> None:
        """Follow the store in the background (the first list happens there)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._follow(), name=f"lookups-{self.info.plural}")

    async def stop(self) -> None:
        """Stop following; lookups go to the store from now on."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._watch is not None:
            self._watch.close()
            self._watch = None

    async def _follow(self) -> None:
        backoff = 0.1
        while True:
            try:
                w = self._watch
                if w is None or self._closed(w):
                    await self.load()
                    continue
                async for ev in w:
                    self._apply(ev)
                # The watch ended (compaction, reset, fell behind): stale until listed again,
                # unless a reload has already put a new watch in its place.
                if self._watch is w:
                    self._watch = None
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as e:  # the store is away, or compacted past the list: list again
                log.warning("%s copy stopped following the store (%s); lookups go to the store",
                            self.info.plural, e)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)

    @staticmethod
    def _closed(w: Watch) -> bool:
        return isinstance(w, QueuedWatch) and w.closed

    def _namespace(self, key: str) -> str:
        if not self.info.namespaced:
            return ""
        return key[len(self.prefix):].partition("/")[0]

    def _apply(self, ev: Event) -> None:
        ns = self._namespace(ev.kv.key)
        name = ev.kv.key.rpartition("/")[2]
        if ev.type == "DELETE":
            objs = self._by_ns.get(ns)
            if objs is not None:
                objs.pop(name, None)
                if not objs:
                    del self._by_ns[ns]
        else:
            self._by_ns.setdefault(ns, {})[name] = decode(ev.kv, self.info)

    def current(self) -> bool:
        """Apply the events already queued for this copy; whether it follows the store now.

        Queued events are applied here, not only by the background task, so that a write
        which has returned (its event queued) is seen by the very next lookup."""
        w = self._watch
        if w is None:
            return False
        if isinstance(w, QueuedWatch):
            while not w.queue.empty():
                ev = w.queue.get_nowait()
                if ev is None:  # the end of the watch: leave it for the follower to see
                    w.queue.put_nowait(None)
                    return False
                self._apply(ev)
            return not w.closed
        return True

    # -- reads (callers check ``current()`` first) --------------------------------------------
    def get(self, ns: str, name: str) -> Obj | None:
        """The object, if the copy has it (not to be modified)."""
        return self._by_ns.get(ns, {}).get(name)

    def in_namespace(self, ns: str) -> list[Obj]:
        """The objects of one namespace ("" for a cluster-scoped kind), not to be modified."""
        return list(self._by_ns.get(ns, {}).values())


class Lookups:
    """What admission reads on a create, from the copies, with the store behind every miss."""

    def __init__(self, store: Store):
        self.store = store
        self.namespaces = KindCopy(store, NAMESPACES)
        self.service_accounts = KindCopy(store, SERVICEACCOUNTS)
        self.priority_classes = KindCopy(store, PRIORITYCLASSES)
        self.quotas = KindCopy(store, RESOURCEQUOTAS)
        self.limit_ranges = KindCopy(store, LIMITRANGES)
        self._copies = (self.namespaces, self.service_accounts, self.priority_classes, self.quotas,
                        self.limit_ranges)
        # (plural, namespace) -> monotonic time until which the store's empty answer stands: see LIVE_TTL.
        self._empty_until: dict[tuple[str, str], float] = {}

    def start(self) -> None:
        """Follow the store (each copy lists, then watches)."""
        for c in self._copies:
            c.start()

    async def stop(self) -> None:
        """Stop following the store."""
        for c in self._copies:
            await c.stop()

    async def reload(self) -> None:
        """List every copy again now (the store was reset under us)."""
        self._empty_until.clear()
        for c in self._copies:
            await c.load()

    async def _live_get(self, info: ResourceInfo, ns: str, name: str) -> Obj | None:
        kv = await self.store.get(info.store_key(ns, name))
        return decode(kv, info) if kv is not None else None

    async def _get(self, copy: KindCopy, ns: str, name: str) -> Obj | None:
        if copy.current():
            obj = copy.get(ns, name)
            if obj is not None:
                return obj
        # A miss may be an object written through another API server a moment ago.
        return await self._live_get(copy.info, ns, name)

    async def namespace(self, name: str) -> Obj | None:
        """The Namespace, or None when the store has none either."""
        return await self._get(self.namespaces, "", name)

    async def service_account(self, ns: str, name: str) -> Obj | None:
        """The ServiceAccount, or None when the store has none either."""
        return await self._get(self.service_accounts, ns, name)

    async def priority_class(self, name: str) -> Obj | None:
        """The PriorityClass, or None when the store has none either."""
        return await self._get(self.priority_classes, "", name)

    async def priority_classes_now(self) -> list[Obj]:
        """Every PriorityClass: the copy's, or the store's while the copy is not following it."""
        if self.priority_classes.current():
            return self.priority_classes.in_namespace("")
        kvs, _ = await self.store.list(PRIORITYCLASSES.store_prefix())
        return [decode(kv, PRIORITYCLASSES) for kv in kvs]

    async def _in_namespace(self, copy: KindCopy, ns: str) -> list[Obj]:
        """The objects of a namespace; an empty copy is checked against the store at most once
        per LIVE_TTL (objects made through another server may not be here yet)."""
        key = (copy.info.plural, ns)
        now = time.monotonic()
        if copy.current():
            objs = copy.in_namespace(ns)
            if objs or self._empty_until.get(key, 0.0) > now:
                return objs
        kvs, _ = await self.store.list(copy.info.store_prefix() + f"{ns}/")
        objs = [decode(kv, copy.info) for kv in kvs]
        if not objs:
            if len(self._empty_until) > 4096:
                self._empty_until.clear()
            self._empty_until[key] = now + LIVE_TTL
        return objs

    async def has_quotas(self, ns: str) -> bool:
        """Whether the namespace has any ResourceQuota (quota admission reads them live if so)."""
        return bool(await self._in_namespace(self.quotas, ns))

    async def limit_ranges_of(self, ns: str) -> list[Obj]:
        """The LimitRanges of a namespace (not to be modified)."""
        return await self._in_namespace(self.limit_ranges, ns)
