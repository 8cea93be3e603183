"""The Deployment controller: wiring, event handlers and the sync decision ladder.

Handlers only enqueue Deployment keys (a ReplicaSet or Pod event is mapped to the
Deployment that controls it, or to every Deployment whose selector matches an orphan).
``sync(key)`` reads the cache and climbs one ladder, as upstream's syncDeployment:

    being deleted       → status only                      (sync.py)
    paused              → scale + cleanup, no rollout      (sync.py)
    rollback annotation → deprecated rollbackTo            (rollback.py)
    scaling event       → proportional scaling             (sync.py)
    failing new pods    → automatic rollback, if opted in  (autorollback.py)
    canary / blue-green → weighted steps, if opted in      (canary.py)
    strategy            → Recreate or RollingUpdate        (recreate.py / rolling.py)

Progress deadlines and conditions live in progress.py, revision history and the
pod-template-hash in history.py, the arithmetic in util.py.  The other modules hold
functions that take this controller as their first argument (``dc``), the way
upstream's files are methods of one DeploymentController.
"""
from __future__ import annotations

import asyncio
import copy
import datetime as _dt
import logging
from collections.abc import Callable
from typing import Any

from kubelite.api import meta
from kubelite.api.resources import DEPLOYMENTS, LEASES, PODS, REPLICASETS
from kubelite.client.errors import StatusError
from kubelite.client.events import EventRecorder
from kubelite.client.protocols import APIClient, Recorder, SharedInformerFactory
from kubelite.client.workqueue import WorkQueue, process_until
from kubelite.controllers import replicaset_util as rsutil
from kubelite.controllers.deployment import autorollback, canary, recreate, rollback, rolling, sync, util
from kubelite.controllers.ownerref import resolve_controller_ref
from kubelite.controllers.podcontrol import can_adopt_check, claim, selector_is_empty, selector_matcher
from kubelite.proxy.drain import COMPONENT, COMPONENT_LABEL, LEASE_NAMESPACE

log = logging.getLogger(__name__)
Obj = dict[str, Any]

KIND = "Deployment"
API_VERSION = "apps/v1"


class DeploymentController:
    """Reconciles Deployments through their ReplicaSets."""

    name = "deployment"

    def __init__(self, client: APIClient, factory: SharedInformerFactory, *, workers: int = 5,
                 recorder: Recorder | None = None, now: Callable[[], _dt.datetime] = meta.now):
        self.d_client = client.resource(DEPLOYMENTS)
        self.rs_client = client.resource(REPLICASETS)
        self.d_informer = factory.informer(DEPLOYMENTS)
        self.rs_informer = factory.informer(REPLICASETS)
        self.pod_informer = factory.informer(PODS)
        # Each node's proxy Lease carries its traffic counts (canary error rate, errorrate.py).
        self.lease_informer = factory.informer(LEASES, namespace=LEASE_NAMESPACE,
                                               label_selector=f"{COMPONENT_LABEL}={COMPONENT}")
        self.pod_informer.add_index(rsutil.CONTROLLER_INDEX, rsutil.controller_index_values)
        self.recorder: Recorder = recorder or EventRecorder(client, "deployment-controller")
        self.now = now
        self.workers = workers
        self.queue = WorkQueue("deployment")
        self.d_informer.add_handler(self._add_deployment, self._update_deployment, self._delete_deployment)
        self.rs_informer.add_handler(self._add_rs, self._update_rs, self._delete_rs)
        self.pod_informer.add_handler(None, self._update_pod, self._delete_pod)

    async def run(self, stop: asyncio.Event) -> None:
        """Start the informers, wait for their first list, run workers until ``stop``."""
        informers = (self.d_informer, self.rs_informer, self.pod_informer)
        for inf in informers:
            inf.start()
        # Not waited for: without counts a canary is simply not judged by its error rate yet.
        self.lease_informer.start()
        await asyncio.gather(*(inf.wait_synced() for inf in informers))
        await process_until(self.queue, self.sync, stop, self.workers)

    # -- queue ---------------------------------------------------------------------------
    def enqueue(self, d: Obj) -> None:
        """Queue a Deployment's key."""
        self.queue.add(meta.key(d))

    def enqueue_after(self, d: Obj, seconds: float) -> None:
        """Queue a Deployment's key after a delay (progress-deadline checks)."""
        self.queue.add_after(meta.key(d), seconds)

    def enqueue_rate_limited(self, d: Obj) -> None:
        """Queue a Deployment's key with back-off."""
        self.queue.add_rate_limited(meta.key(d))

    # -- event handlers: enqueue only ----------------------------------------------------
    def _add_deployment(self, d: Obj) -> None:
        self.enqueue(d)

    def _update_deployment(self, old: Obj, cur: Obj) -> None:
        self.enqueue(cur)

    def _delete_deployment(self, d: Obj) -> None:
        self.enqueue(d)

    def _resolve(self, namespace: str, ref: Obj) -> Obj | None:
        return resolve_controller_ref(self.d_informer, namespace, ref, KIND)

    def _deployments_for_rs(self, rs: Obj) -> list[Obj]:
        """Deployments whose (non-empty) selector matches an orphan RS's labels."""
        if not meta.labels(rs):
            return []
        out = []
        for d in self.d_informer.list(meta.namespace(rs)):
            sel = d.get("spec", {}).get("selector")
            if sel is None or selector_is_empty(sel):
                continue
            try:
                if selector_matcher(sel)(meta.labels(rs)):
                    out.append(d)
            except StatusError:
                continue
        return out

    def _add_rs(self, rs: Obj) -> None:
        if meta.is_deleting(rs):
            self._delete_rs(rs)
            return
        ref = meta.controller_ref(rs)
        if ref is not None:
            d = self._resolve(meta.namespace(rs), ref)
            if d is not None:
                self.enqueue(d)
            return
        for d in self._deployments_for_rs(rs):
            self.enqueue(d)

    def _update_rs(self, old: Obj, cur: Obj) -> None:
        if meta.resource_version(old) == meta.resource_version(cur):
            return
        cur_ref, old_ref = meta.controller_ref(cur), meta.controller_ref(old)
        ref_changed = cur_ref != old_ref
        if ref_changed and old_ref is not None:
            d = self._resolve(meta.namespace(old), old_ref)
            if d is not None:
                self.enqueue(d)
        if cur_ref is not None:
            d = self._resolve(meta.namespace(cur), cur_ref)
            if d is not None:
                self.enqueue(d)
            return
        if meta.labels(old) != meta.labels(cur) or ref_changed:
            for d in self._deployments_for_rs(cur):
                self.enqueue(d)

    def _delete_rs(self, rs: Obj) -> None:
        ref = meta.controller_ref(rs)
        if ref is None:
            return
        d = self._resolve(meta.namespace(rs), ref)
        if d is not None:
            self.enqueue(d)

    def _update_pod(self, old: Obj, cur: Obj) -> None:
        # Upstream needs no pod updates (RS status carries readiness); a pod that starts or
        # stops failing (ImagePullBackOff, CrashLoopBackOff, OOM) changes no RS status, and
        # fail-fast / auto-rollback must hear of it.  Other pod updates are ignored.
        if autorollback.pod_failure(old) == autorollback.pod_failure(cur):
            return
        d = self._deployment_of_pod(cur)
        if d is not None:
            self.enqueue(d)

    def _deployment_of_pod(self, pod: Obj) -> Obj | None:
        ref = meta.controller_ref(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return None
        rs = self.rs_informer.get(f"{meta.namespace(pod)}/{ref.get('name')}")
        if rs is None or meta.uid(rs) != ref.get("uid"):
            return None
        rs_ref = meta.controller_ref(rs)
        return self._resolve(meta.namespace(rs), rs_ref) if rs_ref else None

    def _delete_pod(self, pod: Obj) -> None:
        # Only Recreate cares: it waits for the last old pod to be gone; and a canary's
        # traffic weights, which stay until then (canary.py).
        d = self._deployment_of_pod(pod)
        if d is None:
            return
        if util.TRAFFIC_WEIGHTS in meta.annotations_of(d):
            self.enqueue(d)  # rare: only while such a rollout's old pods go
            return
        if util.strategy_type(d) != "Recreate":
            return
        owned = [r for r in self.rs_informer.list(meta.namespace(d))
                 if (meta.controller_ref(r) or {}).get("uid") == meta.uid(d)]
        if sum(len(v) for v in self.pod_map(d, owned).values()) == 0:
            self.enqueue(d)

    # -- reading the world ---------------------------------------------------------------
    async def replicasets_for(self, d: Obj) -> list[Obj]:
        """The RSs this Deployment controls, after adopting and releasing by selector."""
        matches = selector_matcher(d.get("spec", {}).get("selector"))

        async def get_fresh() -> Obj:
            return await self.d_client.get(meta.name(d), meta.namespace(d))

        async def patch(rs: Obj, body: Obj) -> Obj:
            return await self.rs_client.patch(meta.name(rs), body, meta.namespace(rs))

        claimed = await claim(self.rs_informer.list(meta.namespace(d)), owner=d, api_version=API_VERSION, kind=KIND,
                              matches=lambda rs: matches(meta.labels(rs)), patch=patch,
                              can_adopt=lambda: can_adopt_check(get_fresh, d))
        # Work on copies: the cache is shared with every other controller.
        return [copy.deepcopy(rs) for rs in claimed]

    def pod_map(self, d: Obj, rs_list: list[Obj]) -> dict[str, list[Obj]]:
        """RS uid → the pods (matching the Deployment's selector) that RS controls."""
        matches = selector_matcher(d.get("spec", {}).get("selector"))
        ns = meta.namespace(d)
        out: dict[str, list[Obj]] = {}
        for rs in rs_list:
            uid = meta.uid(rs)
            out[uid] = [p for p in self.pod_informer.by_index(rsutil.CONTROLLER_INDEX, f"{ns}/{uid}")
                        if matches(meta.labels(p))] if uid else []
        return out

    def replicaset_pods(self, d: Obj, rs: Obj) -> list[Obj]:
        """The cached pods this ReplicaSet of the Deployment controls."""
        return self.pod_map(d, [rs])[meta.uid(rs)]

    def proxy_leases(self) -> list[Obj]:
        """The cached proxy Leases (each node's traffic counts)."""
        return self.lease_informer.list()

    # -- writes shared by the rungs --------------------------------------------------------
    async def update_status(self, d: Obj) -> Obj:
        """PUT the Deployment's /status (annotations ride along, as upstream)."""
        updated = await self.d_client.update_status(d)
        # Later writes of the same sync build on our own write instead of conflicting.
        d["metadata"]["resourceVersion"] = meta.resource_version(updated)
        return updated

    async def update(self, d: Obj) -> Obj:
        """PUT the Deployment itself (rollback rewrites its template)."""
        updated = await self.d_client.update(d)
        d["metadata"]["resourceVersion"] = meta.resource_version(updated)
        return updated

    def event(self, d: Obj, type_: str, reason: str, message: str) -> None:
        """Record an event about the Deployment."""
        self.recorder.event(d, type_, reason, message)

    # -- the ladder ----------------------------------------------------------------------
    async def sync(self, key: str) -> None:
        """Move one Deployment one step toward its spec."""
        cached = self.d_informer.get(key)
        if cached is None:
            return
        d = copy.deepcopy(cached)
        d.setdefault("kind", KIND)
        d.setdefault("apiVersion", API_VERSION)
        selector = d.get("spec", {}).get("selector")
        if selector is not None and selector_is_empty(selector):
            self.event(d, "Warning", "SelectingAll",
                       "This deployment is selecting all pods. A non-empty selector is required.")
            gen = int(d["metadata"].get("generation") or 0)
            if util.status_int(d, "observedGeneration") < gen:
                d.setdefault("status", {})["observedGeneration"] = gen
                await self.update_status(d)
            return
        rs_list = await self.replicasets_for(d)
        pod_map = self.pod_map(d, rs_list)
        if meta.is_deleting(d):
            await sync.sync_status_only(self, d, rs_list)
            return
        await sync.check_paused_conditions(self, d)
        holding = canary.in_progress(d)
        if d.get("spec", {}).get("paused"):
            if holding:
                # A canary held by its own indefinite pause step is still judged (error rate,
                # failing pods): a rollback then lifts the pause the step set.
                if util.paused_at_step(d) and await autorollback.reconcile(self, d, rs_list, pod_map):
                    return
                # A canary paused at a step keeps its sizes (proportional scaling would not).
                await sync.sync_status_only(self, d, rs_list)
            else:
                await sync.sync(self, d, rs_list)
            return
        if rollback.get_rollback_to(d) is not None:
            await rollback.rollback(self, d, rs_list)
            return
        if not holding and await sync.is_scaling_event(self, d, rs_list):
            await sync.sync(self, d, rs_list)
            return
        if await autorollback.reconcile(self, d, rs_list, pod_map):
            return
        if await canary.reconcile(self, d, rs_list):
            return
        kind = util.strategy_type(d)
        if kind == "Recreate":
            await recreate.rollout_recreate(self, d, rs_list, pod_map)
        elif kind == "RollingUpdate":
            await rolling.rollout_rolling(self, d, rs_list)
        else:
            raise ValueError(f"unexpected deployment strategy type: {kind}")
