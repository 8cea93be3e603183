"""The ResourceQuota controller: keep every quota's status (hard and used) true.

As upstream's resourcequota controller: status.hard follows spec.hard, and status.used is
recomputed from the namespace's objects (``api.quota`` evaluators: pods with their
compute resources and scopes, services, PVCs, object counts including any served
``count/<resource>.<group>``).  A quota is synced when it changes, when an object of a
kind it may count is added, changed or deleted in its namespace (pods, services,
configmaps, secrets, PVCs, replication controllers, quotas), and at every full resync.

Admission charges creates into status.used as they happen; the controller's write carries
the resourceVersion of the quota it read *before* listing the objects, so a charge made
while it counted turns its write into a conflict (and a retry) instead of being lost.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

from kubelite.api import meta
from kubelite.api import quota as q
from kubelite.api.resources import (
    CONFIGMAPS,
    PODS,
    RESOURCEQUOTAS,
    SECRETS,
    SERVICES,
    ResourceInfo,
    lookup,
    served,
)
from kubelite.client.errors import Conflict, NotFound
from kubelite.client.protocols import APIClient, SharedInformer, SharedInformerFactory
from kubelite.client.workqueue import WorkQueue, process_until

log = logging.getLogger(__name__)
Obj = dict[str, Any]

FULL_RESYNC = 300.0  # upstream's --resource-quota-sync-period default (5 minutes)


def _watched() -> list[ResourceInfo]:
    """The kinds whose changes trigger a sync of their namespace's quotas."""
    out = [PODS, SERVICES, CONFIGMAPS, SECRETS, RESOURCEQUOTAS]
    for plural in ("replicationcontrollers", "persistentvolumeclaims"):
        info = lookup("", "v1", plural)
        if info is not None:
            out.append(info)
    return out


class ResourceQuotaController:
    """Computes status.used / status.hard of every ResourceQuota."""

    name = "resourcequota"

    def __init__(self, client: APIClient, factory: SharedInformerFactory, *, workers: int = 5,
                 resync: float = FULL_RESYNC):
        self.client = client
        self.quotas_api = client.resource(RESOURCEQUOTAS)
        self.quotas = factory.informer(RESOURCEQUOTAS)
        self.resync = resync
        self.workers = workers
        self.queue = WorkQueue("resourcequota")
        self.factory = factory
        self.informers: list[SharedInformer] = []
        self._watching: set[tuple[str, str, str]] = {RESOURCEQUOTAS.gvr}
        self.quotas.add_handler(self._quota_added, self._quota_updated, None)
        for info in _watched():
            self._watch(info)
        self.quotas.add_handler(None, None, self._object_changed)  # a quota counts quotas too

    def _watch(self, info: ResourceInfo) -> None:
        """Sync a namespace's quotas whenever an object of this kind changes there; kinds that
        only a ``count/…`` name asks for are watched from the first quota that names them."""
        if info.gvr in self._watching:
            return
        self._watching.add(info.gvr)
        inf = self.factory.informer(info)
        inf.add_handler(self._object_changed, lambda _old, cur: self._object_changed(cur), self._object_changed)
        self.informers.append(inf)

    async def run(self, stop: asyncio.Event) -> None:
        """Start the informers, then sync quotas until ``stop`` (with periodic full resyncs)."""
        self.quotas.start()
        for inf in self.informers:
            inf.start()
        await self.quotas.wait_synced()
        for inf in self.informers:
            await inf.wait_synced()
        resync = asyncio.create_task(self._resync_loop(stop))
        try:
            await process_until(self.queue, self.sync, stop, self.workers)
        finally:
            resync.cancel()

    async def _resync_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), self.resync)
            except TimeoutError:
                for quota in self.quotas.list():
                    self.queue.add(meta.key(quota))

    # -- event handlers -------------------------------------------------------------------
    def _quota_added(self, quota: Obj) -> None:
        self.queue.add(meta.key(quota))

    def _quota_updated(self, old: Obj, cur: Obj) -> None:
        # Our own status writes come back here too; only a spec change or stale hard needs work.
        spec_hard = (cur.get("spec") or {}).get("hard") or {}
        status = cur.get("status") or {}
        if old.get("spec") != cur.get("spec") or status.get("hard") != spec_hard or \
                set(status.get("used") or {}) != set(spec_hard):
            self.queue.add(meta.key(cur))
        self._object_changed(cur)

    def _object_changed(self, obj: Obj) -> None:
        ns = meta.namespace(obj)
        if not ns:
            return
        for quota in self.quotas.list(ns):
            self.queue.add(meta.key(quota))

    # -- sync -----------------------------------------------------------------------------
    async def sync(self, key: str) -> None:
        """Recompute one quota's status and write it when it changed."""
        ns, _, name = key.partition("/")
        found = (await self.quotas_api.list(ns, field_selector=f"metadata.name={name}")).get("items") or []
        if not found:
            return
        quota = found[0]
        listed: dict[tuple[str, str], list[Obj] | None] = {}

        async def objects(group: str, plural: str) -> list[Obj] | None:
            info = next((r for r in served() if r.group == group and r.plural == plural and r.namespaced), None)
            if info is None:
                return None
            if info.gvr not in self._watching:
                self._watch(info)
                self.informers[-1].start()
            try:
                return list((await self.client.resource(info).list(ns)).get("items") or [])
            except NotFound:
                return None

        hard = (quota.get("spec") or {}).get("hard") or {}
        for name_ in hard:
            gr = q.evaluator_for(name_, q.served_count_resource)
            if gr is not None and gr not in listed:
                listed[gr] = await objects(*gr)
        used = q.calculate_used(quota, lambda g, p: listed.get((g, p)), q.served_count_resource)
        status = {"hard": {k: q.format_quantity(v) for k, v in hard.items()}, "used": q.to_json(used)}
        if _same_status(quota.get("status") or {}, status):
            return
        new = dict(quota, status=status)
        try:
            await self.quotas_api.update_status(new)
        except Conflict:
            self.queue.add(key)  # charged or changed meanwhile: count again
        except NotFound:
            return


def _same_status(cur: Obj, new: Obj) -> bool:
    """Whether two statuses mean the same quantities (``1000m`` equals ``1``)."""
    for field in ("hard", "used"):
        a, b = cur.get(field) or {}, new.get(field) or {}
        if set(a) != set(b):
            return False
        for k in a:
            try:
                if q.parse(a[k]).value != q.parse(b[k]).value:
                    return False
            except ValueError:
                return False
    return True
