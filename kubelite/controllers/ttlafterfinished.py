"""The TTL-after-finished controller: delete finished Jobs once their TTL has passed.

As upstream's ttlafterfinished controller: a Job with ``spec.ttlSecondsAfterFinished``
and a Complete or Failed condition is deleted (foreground propagation, so its pods go
first, with a uid precondition) ``ttl`` seconds after that condition's
lastTransitionTime.  Before deleting, the Job is read fresh from the API server, since
its TTL may have been changed or removed meanwhile.  A Job not expired yet is queued
again for the moment it will be.
"""
from __future__ import annotations

import asyncio
import datetime as _dt
import logging
from collections.abc import Callable
from typing import Any

from kubelite.api import meta
from kubelite.api.resources import JOBS
from kubelite.client.errors import Conflict, NotFound
from kubelite.client.protocols import APIClient, SharedInformerFactory
from kubelite.client.workqueue import WorkQueue, process_until
from kubelite.controllers.job.util import finish_time, is_finished

log = logging.getLogger(__name__)
Obj = dict[str, Any]


def time_left(job: Obj, now: _dt.datetime) -> float | None:
    """Seconds until the Job expires (<= 0: expired); None when it has no TTL or is not finished."""
    ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
    if ttl is None or meta.is_deleting(job) or not is_finished(job):
        return None
    finished = finish_time(job)
    if finished is None:
        return None
    return (finished + _dt.timedelta(seconds=int(ttl)) - now).total_seconds()


class TTLAfterFinishedController:
    """Deletes finished Jobs whose ttlSecondsAfterFinished has passed."""

    name = "ttl-after-finished"

    def __init__(self, client: APIClient, factory: SharedInformerFactory, *, workers: int = 5,
                 now: Callable[[], _dt.datetime] = meta.now):
        self.jobs = client.resource(JOBS)
        self.informer = factory.informer(JOBS)
        self.now = now
        self.workers = workers
        self.queue = WorkQueue("ttl-after-finished")
        self.informer.add_handler(self._enqueue, lambda _old, cur: self._enqueue(cur), None)

    async def run(self, stop: asyncio.Event) -> None:
        """Start the informer, wait for its first list, run workers until ``stop``."""
        self.informer.start()
        await self.informer.wait_synced()
        await process_until(self.queue, self.sync, stop, self.workers)

    def _enqueue(self, job: Obj) -> None:
        if time_left(job, self.now()) is not None:
            self.queue.add(meta.key(job))

    async def sync(self, key: str) -> None:
        """Delete the Job if it expired, else look again when it will have."""
        cached = self.informer.get(key)
        if cached is None:
            return
        left = time_left(cached, self.now())
        if left is None:
            return
        if left > 0:
            self.queue.add_after(key, left)
            return
        try:
            fresh = await self.jobs.get(meta.name(cached), meta.namespace(cached))
        except NotFound:
            return
        left = time_left(fresh, self.now())
        if left is None:
            return
        if left > 0:
            self.queue.add_after(key, left)
            return
        log.info("deleting job %s: its ttlSecondsAfterFinished passed", key)
        try:
            await self.jobs.delete(meta.name(fresh), meta.namespace(fresh), propagation_policy="Foreground",
                                   preconditions={"uid": meta.uid(fresh)})
        except (NotFound, Conflict):
            return
