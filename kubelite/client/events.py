"""Event recorder: core/v1 Events as client-go's record.EventRecorder writes them.

Three rules from upstream's event correlator decide what reaches the API server:
- a repeat of the same (object, type, reason, message, source) within 10 minutes bumps the
  existing Event's ``count`` and ``lastTimestamp`` instead of creating a new one, so `kubectl
  describe` shows ``(x3 over 20s)``;
- once one object has had 10 different messages for the same (type, reason, source) in 10
  minutes, further ones go to a single Event whose message starts
  ``(combined from similar events): `` (a ReplicaSet creating 1,000 pods gets 10 events
  "Created pod: …" and then one counted Event, not 1,000);
- each (source, object) may write 25 Events in a burst and then one per 5 minutes; the rest
  are dropped.
Writes are fire-and-forget: a failed event never fails the caller's sync.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from kubelite.api import meta
from kubelite.api.resources import EVENTS
from kubelite.client.errors import NotFound, StatusError
from kubelite.client.protocols import APIClient

log = logging.getLogger(__name__)
Obj = dict[str, Any]

# Event writes one recorder has in flight at once. Every write beyond the client's idle
# connections opens a new TLS connection (a handshake on both ends, and within the server
# process both ends are ours), and a burst of pods makes a burst of events: a few writers
# reuse the same connections and the rest of the burst waits its turn.
WRITES_IN_FLIGHT = 4

NORMAL = "Normal"
WARNING = "Warning"

# Upstream's correlator defaults (client-go tools/record).
SERIES_WINDOW = 600.0  # seconds a counted Event or a group of similar ones stays open
SIMILAR_LIMIT = 10  # different messages before they are combined into one Event
COMBINED_PREFIX = "(combined from similar events): "
SPAM_BURST = 25  # Events one (source, object) may write at once
SPAM_REFILL = 1.0 / 300.0  # and then one more every 5 minutes
KEYS_KEPT = 4096  # entries each of the three tables keeps (least recently used go first)

K = TypeVar("K")
V = TypeVar("V")


class _Bounded(Generic[K, V]):
    """A dict that forgets its least recently used entries beyond ``size``."""

    def __init__(self, size: int = KEYS_KEPT):
        self._d: OrderedDict[K, V] = OrderedDict()
        self._size = size

    def get(self, k: K) -> V | None:
        v = self._d.get(k)
        if v is not None:
            self._d.move_to_end(k)
        return v

    def put(self, k: K, v: V) -> None:
        self._d[k] = v
        self._d.move_to_end(k)
        while len(self._d) > self._size:
            self._d.popitem(last=False)

    def pop(self, k: K) -> None:
        self._d.pop(k, None)

    def __len__(self) -> int:
        return len(self._d)


@dataclass
class _Series:
    """One Event being counted: where it is, its count so far, and whether its create landed."""
    namespace: str
    name: str
    count: int
    last: float  # monotonic time of the latest repeat
    message: str  # the latest one (a combined Event shows its newest message)
    created: asyncio.Event = field(default_factory=asyncio.Event)
    ok: bool = False
    written: int = 1  # the count the API server has (or is being sent)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one count write at a time, in order


@dataclass
class _Similar:
    """The messages one (object, type, reason, source) had lately."""
    messages: set[str]
    last: float


@dataclass
class _Bucket:
    """The tokens one (source, object) has left for writing Events."""
    tokens: float
    at: float

    def take(self, now: float) -> bool:
        self.tokens = min(SPAM_BURST, self.tokens + (now - self.at) * SPAM_REFILL)
        self.at = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


Key = tuple[str | None, ...]


class EventRecorder:
    """Records Events about objects on behalf of one component (and host)."""

    def __init__(self, client: APIClient, component: str, host: str = "",
                 clock: Callable[[], float] = time.monotonic):
        self._events = client.resource(EVENTS)
        self._clock = clock
        self.component = component
        self.host = host
        self._series: _Bounded[Key, _Series] = _Bounded()
        self._similar: _Bounded[Key, _Similar] = _Bounded()
        self._buckets: _Bounded[Key, _Bucket] = _Bounded()
        self.dropped = 0  # Events the per-object limit dropped
        self._tasks: set[asyncio.Task[None]] = set()
        self._slots: asyncio.Semaphore | None = None  # made in the running loop, on first use

    def event(self, obj: Obj, type_: str, reason: str, message: str, *, field_path: str = "") -> None:
        """Record an event about obj (returns at once)."""
        md = obj.get("metadata", {})
        ns = md.get("namespace") or "default"
        involved = {
            "kind": obj.get("kind", ""),
            "namespace": md.get("namespace", "") or None,
            "name": md.get("name", ""),
            "uid": md.get("uid", ""),
            "apiVersion": obj.get("apiVersion", ""),
            "resourceVersion": md.get("resourceVersion", ""),
        }
        if field_path:
            involved["fieldPath"] = field_path
        involved = {k: v for k, v in involved.items() if v}
        now = self._clock()
        source_object: Key = (self.component, self.host, involved.get("kind"), ns, involved.get("name"),
                              involved.get("uid"), involved.get("apiVersion"))
        # The decision is made here, in call order, so that concurrent writes cannot create
        # the same counted Event twice.
        similar_key = source_object + (type_, reason)
        key: Key = similar_key + (field_path, message)
        similar = self._similar.get(similar_key)
        if similar is None or now - similar.last > SERIES_WINDOW:
            similar = _Similar(set(), now)
        similar.messages.add(message)
        similar.last = now
        self._similar.put(similar_key, similar)
        if len(similar.messages) >= SIMILAR_LIMIT:
            similar.messages.pop()  # the set never grows past the limit
            message = COMBINED_PREFIX + message
            key = similar_key + ("combined",)
        bucket = self._buckets.get(source_object)
        if bucket is None:
            bucket = _Bucket(float(SPAM_BURST), now)
            self._buckets.put(source_object, bucket)
        if not bucket.take(now):
            self.dropped += 1
            log.debug("event %s about %s dropped: too many events about it lately", reason, involved.get("name"))
            return
        series = self._series.get(key)
        if series is not None and now - series.last < SERIES_WINDOW:
            series.count += 1
            series.last = now
            series.message = message
            self._spawn(self._bump(key, series, reason))
            return
        # Upstream names events <object>.<hex of unix nanos>.
        series = _Series(ns, f"{involved.get('name', 'unknown')}.{time.time_ns():x}", 1, now, message)
        self._series.put(key, series)
        self._spawn(self._create(key, series, involved, type_, reason, message))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def flush(self) -> None:
        """Wait for pending event writes (tests and shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _slot(self) -> asyncio.Semaphore:
        if self._slots is None:
            self._slots = asyncio.Semaphore(WRITES_IN_FLIGHT)
        return self._slots

    async def _create(self, key: Key, series: _Series, involved: Obj, type_: str, reason: str, message: str) -> None:
        now = meta.rfc3339()
        source = {"component": self.component}
        if self.host:
            source["host"] = self.host
        ev = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": series.name, "namespace": series.namespace},
            "involvedObject": involved,
            "reason": reason, "message": message, "type": type_,
            "source": source,
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
            "reportingComponent": self.component, "reportingInstance": self.host,
        }
        try:
            async with self._slot():
                await self._events.create(ev, series.namespace)
            series.ok = True
        except Exception as e:  # never fail the caller; the next repeat starts a new Event
            self._forget(key, series)
            log.debug("event %s/%s not recorded: %s", reason, involved.get("name"),
                      e.message if isinstance(e, StatusError) else e)
        finally:
            series.created.set()

    async def _bump(self, key: Key, series: _Series, reason: str) -> None:
        await series.created.wait()  # the Event must exist before its count can change
        async with series.lock:
            if not series.ok or series.written >= series.count:
                return  # gone, or a later repeat's write already carried this count
            series.written = count = series.count
            patch = {"count": count, "lastTimestamp": meta.rfc3339(), "message": series.message}
            try:
                async with self._slot():
                    await self._events.patch(series.name, patch, series.namespace, patch_type="merge")
            except NotFound:
                series.ok = False
                self._forget(key, series)  # the Event being counted is gone: the next repeat creates one
            except Exception as e:  # never fail the caller
                log.debug("event %s/%s not counted: %s", reason, series.name,
                          e.message if isinstance(e, StatusError) else e)

    def _forget(self, key: Key, series: _Series) -> None:
        if self._series.get(key) is series:
            self._series.pop(key)
