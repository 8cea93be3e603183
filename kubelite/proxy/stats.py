"""Requests and errors per Service and Deployment revision, counted by the proxy and published.

What is counted (cumulative since the proxy started), per (namespace, Service, revision)
where the revision is the pod-template-hash in the endpoint pod's name
(``<deployment>-<hash>-<suffix>``; endpoints of other pods are not counted):

- ``requests``: connections forwarded to a pod, plus every further HTTP reply seen on a
  kept-alive connection, plus failed connects;
- ``errors``: failed connects (refused, reset, timed out) plus HTTP 5xx replies;
- ``failed`` and ``http5xx``: the two kinds of error on their own.

The userspace listener (listener.py) peeks at the first bytes of each chunk the pod
sends.  A connection whose first chunk starts with ``HTTP/1.x NNN`` is HTTP; after
that, a chunk that starts with a status line is counted as a further reply only once the
client has sent bytes since the last counted one (a new request).  Nothing is copied or
held back: one ``startswith`` per chunk.  A reply whose status line starts in the middle
of a chunk (pipelining) is not seen; the first reply of every connection always is.

The nftables path cannot see replies: it counts new connections per revision in the
kernel (``requests``) and TCP resets sent by an endpoint in reply to a forwarded
connection (``failed``); see nftables.py.

Published where the proxy already writes: the annotation ``proxy.kubelite.io/traffic`` of
the proxy's own Lease ``kube-system/kubelite-proxy-<node>`` (drain.py), as compact JSON
``{"<ns>/<service>/<hash>": [requests, errors, failed, http5xx], ...}``.  Why there: the
Lease exists once per proxy, is already readable by one list with a label selector, lives
exactly as long as the proxy does, and the proxy may already write it; a new kind or a
ConfigMap per node would add an object to create, authorize and clean up.  The writer
patches only this annotation, at most every ``PUBLISH_INTERVAL`` seconds and only when a
count changed.  ``revision_traffic`` sums every node's Lease for a Deployment's revisions.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

import aiohttp

from kubelite.api import meta
from kubelite.api.resources import LEASES
from kubelite.client.errors import NotFound, StatusError
from kubelite.client.protocols import APIClient
from kubelite.client.supervise import spawn
from kubelite.proxy.drain import LEASE_NAMESPACE, lease_name

log = logging.getLogger(__name__)
Obj = dict[str, Any]

TRAFFIC_ANNOTATION = "proxy.kubelite.io/traffic"
PUBLISH_INTERVAL = 2.0
# A revision not seen among any endpoint for this long is dropped from the counts, so the
# annotation does not grow with every rollout a long-running proxy has seen.
FORGET_AFTER = 600.0


class Counts(NamedTuple):
    """Cumulative counts of one revision behind one Service."""

    requests: int = 0
    errors: int = 0
    failed: int = 0
    http5xx: int = 0

    def plus(self, other: Counts) -> Counts:
        """Element-wise sum (``+`` on a tuple would concatenate)."""
        return Counts(*(a + b for a, b in zip(self, other, strict=True)))

    def since(self, base: Counts) -> Counts:
        """The counts gained after ``base``; a proxy restart (a count going down) restarts from 0."""
        if any(a < b for a, b in zip(self, base, strict=True)):
            return self
        return Counts(*(a - b for a, b in zip(self, base, strict=True)))


def revision_of(pod_name: str) -> str:
    """The pod-template-hash in ``<deployment>-<hash>-<suffix>`` ("" when not of that shape)."""
    parts = pod_name.rsplit("-", 2)
    if len(parts) != 3 or not all(parts):
        return ""
    return parts[1]


def status_code(chunk: bytes) -> int | None:
    """The status of an HTTP/1.x status line at the start of ``chunk``, else None."""
    if len(chunk) < 12 or not chunk.startswith(b"HTTP/1.") or chunk[8:9] != b" ":
        return None
    code = chunk[9:12]
    return int(code) if code.isdigit() else None


class ReplyWatch:
    """Per forwarded connection: sees the chunks both ways and counts the HTTP replies."""

    __slots__ = ("_stats", "_key", "_http", "_replies", "_asked")

    def __init__(self, stats: TrafficStats, key: tuple[str, str, str]):
        self._stats = stats
        self._key = key
        self._http: bool | None = None  # None: nothing from the pod yet
        self._replies = 0
        self._asked = False            # the client sent bytes since the last counted reply

    def up(self, chunk: bytes) -> None:
        """A chunk from the client to the pod."""
        self._asked = True

    def down(self, chunk: bytes) -> None:
        """A chunk from the pod to the client."""
        if self._http is False:
            return
        code = status_code(chunk)
        if self._http is None:
            self._http = code is not None
            if code is None:
                return
        elif code is None or not self._asked:
            return
        self._asked = False
        self._replies += 1
        self._stats.reply(self._key, code, first=self._replies == 1)


@dataclass
class _Entry:
    requests: int = 0
    errors: int = 0
    failed: int = 0
    http5xx: int = 0
    seen: float = 0.0

    def counts(self) -> Counts:
        return Counts(self.requests, self.errors, self.failed, self.http5xx)


class TrafficStats:
    """The proxy's counters; listeners report into it, the publisher reads snapshots."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._entries: dict[tuple[str, str, str], _Entry] = {}

    def _entry(self, key: tuple[str, str, str]) -> _Entry:
        e = self._entries.get(key)
        if e is None:
            e = self._entries[key] = _Entry()
        e.seen = self._clock()
        return e

    @staticmethod
    def key(service_key: str, pod_name: str) -> tuple[str, str, str] | None:
        """(namespace, service, revision) for an endpoint of ``ns/service``; None if no revision."""
        h = revision_of(pod_name)
        if not h:
            return None
        ns, _, name = service_key.partition("/")
        return (ns, name, h)

    def connected(self, service_key: str, pod_name: str) -> ReplyWatch | None:
        """A connection to the pod was made: count it; the watch counts its replies."""
        k = self.key(service_key, pod_name)
        if k is None:
            return None
        self._entry(k).requests += 1
        return ReplyWatch(self, k)

    def failed(self, service_key: str, pod_name: str) -> None:
        """A connect to the pod was refused, reset or timed out."""
        k = self.key(service_key, pod_name)
        if k is None:
            return
        e = self._entry(k)
        e.requests += 1
        e.errors += 1
        e.failed += 1

    def reply(self, key: tuple[str, str, str], code: int, *, first: bool) -> None:
        """An HTTP reply was seen (the first one of a connection was counted as its request)."""
        if not first or code >= 500:
            e = self._entry(key)
            if not first:
                e.requests += 1
            if code >= 500:
                e.errors += 1
                e.http5xx += 1

    def add(self, key: tuple[str, str, str], counts: Counts) -> None:
        """Add counts read elsewhere (the kernel's counters)."""
        if not any(counts):
            self._entry(key)
            return
        e = self._entry(key)
        e.requests += counts.requests
        e.errors += counts.errors
        e.failed += counts.failed
        e.http5xx += counts.http5xx

    def snapshot(self) -> dict[tuple[str, str, str], Counts]:
        """Current counts; revisions idle for ``FORGET_AFTER`` are dropped first."""
        cutoff = self._clock() - FORGET_AFTER
        for k in [k for k, e in self._entries.items() if e.seen < cutoff]:
            del self._entries[k]
        return {k: e.counts() for k, e in self._entries.items()}


def encode(snapshot: dict[tuple[str, str, str], Counts]) -> str:
    """The annotation's JSON text (sorted, so equal counts give equal text)."""
    return json.dumps({"/".join(k): list(c) for k, c in sorted(snapshot.items())}, separators=(",", ":"))


def decode(text: str | None) -> dict[tuple[str, str, str], Counts]:
    """Parse the annotation; malformed entries are skipped (a Lease is anyone's to write)."""
    try:
        raw = json.loads(text or "{}")
    except ValueError:
        return {}
    out: dict[tuple[str, str, str], Counts] = {}
    if not isinstance(raw, dict):
        return out
    for k, v in raw.items():
        parts = str(k).split("/")
        if len(parts) != 3 or not isinstance(v, list) or len(v) != 4:
            continue
        if not all(isinstance(n, int) and n >= 0 for n in v):
            continue
        out[(parts[0], parts[1], parts[2])] = Counts(*v)
    return out


def revision_traffic(leases: Iterable[Obj], namespace: str, hashes: Iterable[str]) -> dict[str, Counts]:
    """Every node's counts for these revisions of one namespace, summed over Services and nodes."""
    want = set(hashes)
    out = {h: Counts() for h in want}
    for lease in leases:
        for (ns, _svc, h), c in decode(meta.annotations_of(lease).get(TRAFFIC_ANNOTATION)).items():
            if ns == namespace and h in want:
                out[h] = out[h].plus(c)
    return out


class StatsPublisher:
    """Writes the proxy's counts into its Lease's annotation (at most every PUBLISH_INTERVAL)."""

    def __init__(self, client: APIClient, node_name: str, stats: TrafficStats,
                 interval: float = PUBLISH_INTERVAL):
        self._rc = client.resource(LEASES)
        self.name = lease_name(node_name)
        self.stats = stats
        self.interval = interval
        self._written = ""
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the (supervised) writer task."""
        if self._task is None:
            self._task = spawn(f"proxy-stats-{self.name}", self._run, logger=log)

    async def stop(self) -> None:
        """Stop writing (the Lease itself goes with the drain reporter)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def publish(self) -> bool:
        """Write the counts if they changed; True if written (False also when the Lease is not there yet)."""
        text = encode(self.stats.snapshot())
        if text == self._written:
            return False
        try:
            await self._rc.patch(self.name, {"metadata": {"annotations": {TRAFFIC_ANNOTATION: text}}},
                                 LEASE_NAMESPACE, patch_type="merge")
        except NotFound:
            return False  # the drain reporter creates the Lease; the next round writes
        self._written = text
        return True

    async def _run(self) -> None:
        while True:
            try:
                await self.publish()
            except (StatusError, aiohttp.ClientError, OSError, TimeoutError) as e:  # API hiccups: next round
                log.debug("proxy stats %s write failed: %s", self.name, e)
            await asyncio.sleep(self.interval)
