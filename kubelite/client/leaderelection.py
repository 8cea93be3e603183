"""Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection.

Only one controller-manager may act at a time.  Candidates race to hold the Lease
``kube-system/<name>``; the holder renews it every ``retry_period`` and steps down if it
cannot renew within ``renew_deadline``; others take over once they have watched the
record stay unchanged for ``lease_duration``.  Expiry is judged by *local* observation
time of the record, never by the timestamps in it, so clock skew between machines
does not matter.  Defaults are upstream's: 15 s lease, 10 s renew deadline, 2 s retry.
"""
from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from kubelite.api import meta
from kubelite.api.resources import LEASES
from kubelite.client.errors import NotFound, StatusError
from kubelite.client.protocols import APIClient

log = logging.getLogger(__name__)
Obj = dict[str, Any]

LEASE_DURATION = 15.0
RENEW_DEADLINE = 10.0
RETRY_PERIOD = 2.0
JITTER_FACTOR = 1.2


class LeaderElector:
    """Acquires, renews and releases one Lease for one identity."""

    def __init__(self, client: APIClient, *, name: str, identity: str, namespace: str = "kube-system",
                 lease_duration: float = LEASE_DURATION, renew_deadline: float = RENEW_DEADLINE,
                 retry_period: float = RETRY_PERIOD, release_on_cancel: bool = True,
                 clock: Callable[[], float] = time.monotonic):
        self.leases = client.resource(LEASES)
        self.name, self.namespace, self.identity = name, namespace, identity
        self.lease_duration, self.renew_deadline, self.retry_period = lease_duration, renew_deadline, retry_period
        self.release_on_cancel = release_on_cancel
        self.clock = clock
        self._observed: Obj | None = None
        self._observed_time = 0.0

    def is_leader(self) -> bool:
        """True if the last observed record names us."""
        return (self._observed or {}).get("holderIdentity") == self.identity

    async def try_acquire_or_renew(self) -> bool:
        """One attempt to take or keep the Lease."""
        now = meta.rfc3339_micro()
        record: Obj = {"holderIdentity": self.identity, "leaseDurationSeconds": int(self.lease_duration),
                       "acquireTime": now, "renewTime": now, "leaseTransitions": 0}
        try:
            lease = await self.leases.get(self.name, self.namespace)
        except NotFound:
            try:
                await self.leases.create({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                                          "metadata": {"name": self.name, "namespace": self.namespace},
                                          "spec": record}, self.namespace)
            except StatusError as e2:
                log.debug("lease %s/%s: create failed: %s", self.namespace, self.name, e2.message)
                return False
            self._observe(record)
            return True
        except StatusError as e:
            log.debug("lease %s/%s: get failed: %s", self.namespace, self.name, e.message)
            return False
        old = dict(lease.get("spec") or {})
        if old != self._observed:
            self._observe(old)
        holder = old.get("holderIdentity") or ""
        duration = float(old.get("leaseDurationSeconds") or self.lease_duration)
        if holder and holder != self.identity and self._observed_time + duration > self.clock():
            return False  # someone else holds an unexpired lease
        if holder == self.identity:
            record["acquireTime"] = old.get("acquireTime") or now
            record["leaseTransitions"] = int(old.get("leaseTransitions") or 0)
        else:
            record["leaseTransitions"] = int(old.get("leaseTransitions") or 0) + 1
        lease["spec"] = record
        try:
            await self.leases.update(lease)
        except StatusError as e:
            log.debug("lease %s/%s: update failed: %s", self.namespace, self.name, e.message)
            return False
        self._observe(record)
        return True

    def _observe(self, record: Obj) -> None:
        self._observed = dict(record)
        self._observed_time = self.clock()

    async def release(self) -> None:
        """Give the Lease up at once (holder empty, 1 s duration) if we hold it."""
        if not self.is_leader():
            return
        try:
            lease = await self.leases.get(self.name, self.namespace)
            if (lease.get("spec") or {}).get("holderIdentity") != self.identity:
                return
            now = meta.rfc3339_micro()
            lease["spec"] = {"holderIdentity": "", "leaseDurationSeconds": 1, "acquireTime": now, "renewTime": now,
                             "leaseTransitions": int((lease.get("spec") or {}).get("leaseTransitions") or 0)}
            await self.leases.update(lease)
            self._observed = None
        except StatusError as e:
            log.debug("lease release failed: %s", e.message)

    async def _sleep(self, seconds: float, stop: asyncio.Event) -> bool:
        """Sleep unless stopped; True if stop was set."""
        try:
            await asyncio.wait_for(stop.wait(), seconds)
            return True
        except TimeoutError:
            return False

    async def acquire(self, stop: asyncio.Event) -> bool:
        """Retry (jittered retry_period) until we lead; False if stopped first."""
        while not stop.is_set():
            if await self.try_acquire_or_renew():
                log.info("became leader of %s/%s as %s", self.namespace, self.name, self.identity)
                return True
            # wait.JitterUntil: period plus up to JITTER_FACTOR × period.
            if await self._sleep(self.retry_period * (1 + random.random() * JITTER_FACTOR), stop):
                return False
        return False

    async def renew(self, stop: asyncio.Event) -> None:
        """Renew every retry_period; return when a renewal misses the deadline or on stop."""
        while not stop.is_set():
            deadline = self.clock() + self.renew_deadline
            renewed = False
            while self.clock() < deadline and not stop.is_set():
                if await self.try_acquire_or_renew():
                    renewed = True
                    break
                if await self._sleep(min(self.retry_period, max(0.0, deadline - self.clock())), stop):
                    return
            if not renewed:
                log.warning("lost leadership of %s/%s", self.namespace, self.name)
                return
            if await self._sleep(self.retry_period, stop):
                return

    async def run(self, lead: Callable[[asyncio.Event], Coroutine[Any, Any, None]], stop: asyncio.Event) -> None:
        """Acquire, run ``lead(lost)`` while renewing, repeat after losing; until stop."""
        while not stop.is_set():
            if not await self.acquire(stop):
                break
            lost = asyncio.Event()
            task = asyncio.create_task(lead(lost))
            try:
                await self.renew(stop)
            finally:
                lost.set()
                try:
                    await asyncio.wait_for(asyncio.shield(task), timeout=30)
                except (TimeoutError, Exception):
                    task.cancel()
            if stop.is_set() and self.release_on_cancel:
                await self.release()


async def run_elected(client: APIClient, lease: str, host: str, stop: asyncio.Event,
                      body: Callable[[asyncio.Event], Awaitable[None]], **elector_options: Any) -> None:
    """Run ``body(inner_stop)`` only while holding the Lease kube-system/<lease> (a component's
    --leader-elect); ``inner_stop`` is set on losing the Lease or on ``stop``. The identity is
    ``<host>_<uuid>`` as upstream's, so two candidates on one host stay distinct."""
    async def lead(lost: asyncio.Event) -> None:
        inner = asyncio.Event()
        waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(lost.wait())]

        async def relay() -> None:
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waits:
                    w.cancel()
            inner.set()
        relay_task = asyncio.create_task(relay())
        try:
            await body(inner)
        finally:
            relay_task.cancel()
    elector = LeaderElector(client, name=lease, identity=f"{host}_{uuid.uuid4()}", **elector_options)
    await elector.run(lead, stop)
