"""The PVC and PV protection controllers: the finalizers that admission puts on every new
claim (``kubernetes.io/pvc-protection``) and volume (``kubernetes.io/pv-protection``) are
removed only once a deleted claim is used by no pod, and a deleted volume is no longer
Bound, as upstream's two controllers do."""
from __future__ import annotations

import asyncio
import copy
import logging
from typing import Any

from kubelite.api import meta
from kubelite.api.resources import PERSISTENTVOLUMECLAIMS, PERSISTENTVOLUMES, PODS
from kubelite.client.errors import Conflict, NotFound
from kubelite.client.protocols import APIClient, ResourceAPI, SharedInformerFactory
from kubelite.client.workqueue import WorkQueue, process_until
from kubelite.storage import util

log = logging.getLogger(__name__)
Obj = dict[str, Any]


async def _drop_finalizer(api: ResourceAPI, obj: Obj, finalizer: str) -> None:
    new = copy.deepcopy(obj)
    new["metadata"]["finalizers"] = [f for f in new["metadata"].get("finalizers") or [] if f != finalizer]
    try:
        await api.update(new)
    except (NotFound, Conflict):
        pass


class PVCProtectionController:
    """Removes ``kubernetes.io/pvc-protection`` from deleted claims no pod uses any more."""

    name = "pvc-protection"

    def __init__(self, client: APIClient, factory: SharedInformerFactory):
        self.pvcs = client.resource(PERSISTENTVOLUMECLAIMS)
        self.pods = client.resource(PODS)
        self.pvc_informer = factory.informer(PERSISTENTVOLUMECLAIMS)
        self.pod_informer = factory.informer(PODS)
        self.queue = WorkQueue("pvcprotection")
        self.pvc_informer.add_handler(self._claim, lambda _o, c: self._claim(c), None)
        self.pod_informer.add_handler(None, lambda _o, p: self._pod(p), self._pod)

    def _claim(self, claim: Obj) -> None:
        if meta.is_deleting(claim) and util.PVC_PROTECTION in (claim["metadata"].get("finalizers") or []):
            self.queue.add(meta.key(claim))

    def _pod(self, pod: Obj) -> None:
        ns = meta.namespace(pod)
        for name in util.claim_names(pod):
            self.queue.add(f"{ns}/{name}")

    async def run(self, stop: asyncio.Event) -> None:
        """Start the informers and the queue until ``stop``."""
        self.pvc_informer.start()
        self.pod_informer.start()
        await self.pvc_informer.wait_synced()
        await self.pod_informer.wait_synced()
        await process_until(self.queue, self.sync, stop, 2)

    def _used(self, pods: list[Obj], name: str) -> bool:
        return any(util.pod_is_active(p) and name in util.claim_names(p) for p in pods)

    async def sync(self, key: str) -> None:
        """Drop the finalizer if the deleted claim is unused (asking the server, not only the cache)."""
        claim = self.pvc_informer.get(key)
        if claim is None or not meta.is_deleting(claim) or \
                util.PVC_PROTECTION not in (claim["metadata"].get("finalizers") or []):
            return
        ns, name = meta.namespace(claim), meta.name(claim)
        if self._used(self.pod_informer.list(ns), name):
            return
        live = (await self.pods.list(ns)).get("items") or []
        if self._used(live, name):
            return
        log.info("claim %s is no longer used: removing %s", key, util.PVC_PROTECTION)
        await _drop_finalizer(self.pvcs, claim, util.PVC_PROTECTION)


class PVProtectionController:
    """Removes ``kubernetes.io/pv-protection`` from deleted volumes that are not Bound."""

    name = "pv-protection"

    def __init__(self, client: APIClient, factory: SharedInformerFactory):
        self.pvs = client.resource(PERSISTENTVOLUMES)
        self.informer = factory.informer(PERSISTENTVOLUMES)
        self.queue = WorkQueue("pvprotection")
        self.informer.add_handler(self._volume, lambda _o, v: self._volume(v), None)

    def _volume(self, pv: Obj) -> None:
        if meta.is_deleting(pv) and util.PV_PROTECTION in (pv["metadata"].get("finalizers") or []):
            self.queue.add(meta.name(pv))

    async def run(self, stop: asyncio.Event) -> None:
        """Start the informer and the queue until ``stop``."""
        self.informer.start()
        await self.informer.wait_synced()
        await process_until(self.queue, self.sync, stop, 1)

    async def sync(self, key: str) -> None:
        """Drop the finalizer once the volume is not Bound."""
        pv = self.informer.get(key)
        if pv is None or not meta.is_deleting(pv) or util.PV_PROTECTION not in (pv["metadata"].get("finalizers") or []):
            return
        if (pv.get("status") or {}).get("phase") == "Bound":
            return
        await _drop_finalizer(self.pvs, pv, util.PV_PROTECTION)
