"""Event recorder: core/v1 Events as client-go's record.EventRecorder writes them.

Repeats of the same (object, reason, message, source) within 10 minutes update the
existing Event's ``count`` and ``lastTimestamp`` instead of creating a new one, the way
upstream's event correlator does, so `kubectl describe` shows ``(x3 over 20s)``.
Writes are fire-and-forget: a failed event never fails the caller's sync.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

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


class EventRecorder:
    """Records Events about objects on behalf of one component (and host)."""

    def __init__(self, client: APIClient, component: str, host: str = ""):
        self._events = client.resource(EVENTS)
        self.component = component
        self.host = host
        self._seen: dict[tuple[str | None, ...], tuple[str, str, int, float]] = {}  # key -> (ns, name, count, t)
        self._tasks: set[asyncio.Task[None]] = set()
        self._slots: asyncio.Semaphore | None = None  # made in the running loop, on first use

    def event(self, obj: Obj, type_: str, reason: str, message: str, *, field_path: str = "") -> None:
        """Record an event about obj (returns at once)."""
        task = asyncio.get_running_loop().create_task(self._write(obj, type_, reason, message, field_path))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def flush(self) -> None:
        """Wait for pending event writes (tests and shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _write(self, obj: Obj, type_: str, reason: str, message: str, field_path: str) -> None:
        if self._slots is None:
            self._slots = asyncio.Semaphore(WRITES_IN_FLIGHT)
        async with self._slots:
            await self._write_now(obj, type_, reason, message, field_path)

    async def _write_now(self, obj: Obj, type_: str, reason: str, message: str, field_path: str) -> None:
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
        key = (ns, involved.get("uid"), involved.get("name"), reason, message, type_, field_path)
        now = meta.rfc3339()
        prev = self._seen.get(key)
        try:
            if prev and time.monotonic() - prev[3] < 600:
                ev_ns, ev_name, count, _ = prev
                patch = {"count": count + 1, "lastTimestamp": now}
                await self._events.patch(ev_name, patch, ev_ns, patch_type="merge")
                self._seen[key] = (ev_ns, ev_name, count + 1, time.monotonic())
                return
            # Upstream names events <object>.<hex of unix nanos>.
            ev_name = f"{involved.get('name', 'unknown')}.{time.time_ns():x}"
            source = {"component": self.component}
            if self.host:
                source["host"] = self.host
            ev = {
                "apiVersion": "v1", "kind": "Event",
                "metadata": {"name": ev_name, "namespace": ns},
                "involvedObject": involved,
                "reason": reason, "message": message, "type": type_,
                "source": source,
                "firstTimestamp": now, "lastTimestamp": now, "count": 1,
                "reportingComponent": self.component, "reportingInstance": self.host,
            }
            await self._events.create(ev, ns)
            self._seen[key] = (ns, ev_name, 1, time.monotonic())
        except NotFound as e:
            self._seen.pop(key, None)  # the Event being counted is gone: the next repeat creates one
            log.debug("event %s/%s not recorded: %s", reason, involved.get("name"), e.message)
        except StatusError as e:
            log.debug("event %s/%s not recorded: %s", reason, involved.get("name"), e.message)
        except Exception as e:  # never fail the caller
            log.debug("event %s not recorded: %s", reason, e)
