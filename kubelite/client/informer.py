"""Shared informers: list+watch one resource into a local cache and call handlers.

Design (as client-go's reflector + DeltaFIFO, simplified):
- one task per informer runs LIST, then WATCH from the list's resourceVersion; on a
  410 Expired, a dropped connection or a closed stream it resumes from the last seen
  resourceVersion, or re-lists when that is too old;
- the cache is replaced on every re-list and the differences are delivered as
  add/update/delete events, so handlers never miss a deletion that happened while the
  watch was down;
- handlers are called synchronously in event order and must only enqueue keys
  (level-based controllers read the cache, never the event); a handler that raises is
  logged and skipped;
- the task runs under ``supervise``: any other exception is logged with its traceback
  and the task starts over with a fresh list, so the cache never goes stale in silence.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import aiohttp

from kubelite.api import meta
from kubelite.api.resources import ResourceInfo
from kubelite.client.errors import Gone, StatusError
from kubelite.client.protocols import AddFunc, APIClient, DeleteFunc, UpdateFunc
from kubelite.client.supervise import spawn

log = logging.getLogger(__name__)
Obj = dict[str, Any]

# Restarts after an unexpected failure: soon at first, then no faster than every 10 s.
RESTART_DELAY = 0.1
MAX_RESTART_DELAY = 10.0


class Informer:
    """A watched, cached view of one resource (optionally one namespace / selector)."""

    def __init__(self, client: APIClient, info: ResourceInfo, *, namespace: str = "",
                 label_selector: str = "", field_selector: str = ""):
        self.info = info
        self._rc = client.resource(info)
        self._namespace = namespace
        self._label_selector = label_selector
        self._field_selector = field_selector
        self._cache: dict[str, Obj] = {}
        self._by_ns: dict[str, dict[str, Obj]] = {}
        # Named secondary indexes (client-go's Indexers): index name → (the values an object
        # files under, value → key → object). Controllers look pods up by owner instead of
        # walking a namespace's pods on every sync.
        self._indexers: dict[str, Callable[[Obj], tuple[str, ...]]] = {}
        self._indexes: dict[str, dict[str, dict[str, Obj]]] = {}
        self._handlers: list[tuple[AddFunc | None, UpdateFunc | None, DeleteFunc | None]] = []
        self._synced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.resource_version = ""

    # -- handlers and cache -------------------------------------------------------------
    def add_handler(self, on_add: AddFunc | None = None, on_update: UpdateFunc | None = None,
                    on_delete: DeleteFunc | None = None) -> None:
        """Register event handlers; objects already cached are replayed as adds."""
        self._handlers.append((on_add, on_update, on_delete))
        if on_add:
            for obj in list(self._cache.values()):
                on_add(obj)

    def add_index(self, name: str, values: Callable[[Obj], tuple[str, ...]]) -> None:
        """Keep an index ``name`` of the cache by ``values(obj)`` (idempotent per name: a
        shared informer's controllers may each ask for the same index)."""
        if name in self._indexers:
            return
        self._indexers[name] = values
        index: dict[str, dict[str, Obj]] = {}
        for k, obj in self._cache.items():
            for v in values(obj):
                index.setdefault(v, {})[k] = obj
        self._indexes[name] = index

    def by_index(self, name: str, value: str) -> list[Obj]:
        """Cached objects filed under ``value`` in index ``name`` (KeyError if no such index)."""
        return list(self._indexes[name].get(value, {}).values())

    def get(self, key: str) -> Obj | None:
        """The cached object for a namespace/name key."""
        return self._cache.get(key)

    def get_by_name(self, namespace: str, name: str) -> Obj | None:
        """The cached object by namespace and name."""
        return self._cache.get(f"{namespace}/{name}" if namespace else name)

    def list(self, namespace: str | None = None) -> list[Obj]:
        """Cached objects, of one namespace or all."""
        if namespace is None:
            return list(self._cache.values())
        return list(self._by_ns.get(namespace, {}).values())

    async def wait_synced(self) -> None:
        """Wait for the first list."""
        await self._synced.wait()

    def _put(self, obj: Obj) -> Obj | None:
        k = meta.key(obj)
        old = self._cache.get(k)
        self._cache[k] = obj
        self._by_ns.setdefault(meta.namespace(obj), {})[k] = obj
        if self._indexers:
            self._reindex(k, old, obj)
        return old

    def _remove(self, obj: Obj) -> Obj | None:
        k = meta.key(obj)
        old = self._cache.pop(k, None)
        self._by_ns.get(meta.namespace(obj), {}).pop(k, None)
        if self._indexers and old is not None:
            self._reindex(k, old, None)
        return old

    def _reindex(self, k: str, old: Obj | None, new: Obj | None) -> None:
        for name, values in self._indexers.items():
            index = self._indexes[name]
            before = values(old) if old is not None else ()
            after = values(new) if new is not None else ()
            for v in before:
                if v not in after:
                    bucket = index.get(v)
                    if bucket is not None:
                        bucket.pop(k, None)
                        if not bucket:
                            del index[v]
            if new is not None:
                for v in after:
                    index.setdefault(v, {})[k] = new

    def _emit_add(self, obj: Obj) -> None:
        for a, _, _ in self._handlers:
            if a:
                self._call(a, obj)

    def _emit_update(self, old: Obj, new: Obj) -> None:
        for _, u, _ in self._handlers:
            if u:
                self._call(u, old, new)

    def _emit_delete(self, obj: Obj) -> None:
        for _, _, d in self._handlers:
            if d:
                self._call(d, obj)

    @staticmethod
    def _call(fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception:  # a buggy handler must not stop the informer
            log.exception("informer handler failed")

    # -- list and watch -----------------------------------------------------------------
    async def _relist(self) -> None:
        lst = await self._rc.list(self._namespace, label_selector=self._label_selector,
                                  field_selector=self._field_selector)
        self.resource_version = lst["metadata"].get("resourceVersion", "")
        kind = self.info.kind
        fresh: dict[str, Obj] = {}
        for item in lst.get("items") or []:
            item.setdefault("kind", kind)
            item.setdefault("apiVersion", self.info.api_version)
            fresh[meta.key(item)] = item
        for k in [k for k in self._cache if k not in fresh]:
            old = self._remove(self._cache[k])
            if old is not None:
                self._emit_delete(old)
        for obj in fresh.values():
            old = self._put(obj)
            if old is None:
                self._emit_add(obj)
            elif old.get("metadata", {}).get("resourceVersion") != obj["metadata"].get("resourceVersion"):
                self._emit_update(old, obj)
        self._synced.set()

    def _apply(self, typ: str, obj: Obj) -> None:
        rv = obj.get("metadata", {}).get("resourceVersion")
        if rv:
            self.resource_version = rv
        if typ == "BOOKMARK":
            return
        if typ in ("ADDED", "MODIFIED"):
            old = self._put(obj)
            if old is None:
                self._emit_add(obj)
            else:
                self._emit_update(old, obj)
        elif typ == "DELETED":
            old = self._remove(obj)
            self._emit_delete(old if old is not None else obj)

    async def run(self) -> None:
        """List, then watch forever, re-listing when the history is gone (the supervised loop)."""
        need_list = True
        backoff = 0.05
        while True:
            try:
                if need_list:
                    await self._relist()
                    need_list = False
                async for typ, obj in self._rc.watch(self._namespace, resource_version=self.resource_version,
                                                     label_selector=self._label_selector,
                                                     field_selector=self._field_selector,
                                                     timeout_seconds=300):
                    self._apply(typ, obj)
                backoff = 0.05
            except Gone:
                need_list = True
            except StatusError as e:
                log.warning("watch %s: %s", self.info.plural, e.message)
                need_list = True
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
            except (TimeoutError, aiohttp.ClientError, OSError) as e:
                log.debug("watch %s dropped: %s", self.info.plural, e)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)

    def start(self) -> None:
        """Start the supervised list/watch task (idempotent)."""
        if self._task is None:
            self._task = spawn(f"informer-{self.info.plural}", self.run, initial_delay=RESTART_DELAY,
                               max_delay=MAX_RESTART_DELAY, logger=log)

    async def stop(self) -> None:
        """Stop the list/watch task."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None


class InformerFactory:
    """One informer per resource, shared by every controller of a process (SharedInformerFactory)."""

    def __init__(self, client: APIClient):
        self.client = client
        self._informers: dict[tuple[tuple[str, str, str], str, str, str], Informer] = {}

    def informer(self, info: ResourceInfo, *, namespace: str = "", label_selector: str = "",
                 field_selector: str = "") -> Informer:
        """The shared informer for a resource (and optional scope)."""
        k = (info.gvr, namespace, label_selector, field_selector)
        if k not in self._informers:
            self._informers[k] = Informer(self.client, info, namespace=namespace,
                                          label_selector=label_selector, field_selector=field_selector)
        return self._informers[k]

    def start(self) -> None:
        """Start every informer created so far."""
        for inf in self._informers.values():
            inf.start()

    async def wait_synced(self) -> None:
        """Wait until every informer has listed once."""
        await asyncio.gather(*(inf.wait_synced() for inf in self._informers.values()))

    async def stop(self) -> None:
        """Stop every informer."""
        await asyncio.gather(*(inf.stop() for inf in self._informers.values()))
