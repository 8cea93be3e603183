"""The ReplicaSet controller: keep spec.replicas active pods for every ReplicaSet.

Wiring as upstream's replica_set.go: informers on ReplicaSets and Pods whose handlers
only enqueue ReplicaSet keys (and lower expectations when a pod we created or deleted
shows up in the cache); one ``sync(key)`` per key reads the cache and acts:

1. claim pods: adopt matching orphans, release owned pods that stopped matching;
2. if expectations are satisfied and the RS is not being deleted, create (slow start,
   at most 500 per sync) or delete (ranked, most deletable first) the difference;
3. write status (replicas, fullyLabeled, ready, available after minReadySeconds,
   observedGeneration, ReplicaFailure on create/delete errors); requeue after
   minReadySeconds while ready pods are still waiting to count as available.
"""
from __future__ import annotations

import asyncio
import copy
import datetime as _dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubelite.api import meta
from kubelite.api.resources import PODS, REPLICASETS, ResourceInfo
from kubelite.client.errors import NotFound, StatusError
from kubelite.client.events import EventRecorder
from kubelite.client.protocols import APIClient, Recorder, SharedInformerFactory
from kubelite.client.workqueue import WorkQueue, process_until
from kubelite.controllers import replicaset_util as rsutil
from kubelite.controllers.expectations import Expectations
from kubelite.controllers.ownerref import resolve_controller_ref
from kubelite.controllers.podcontrol import (
    PodControl,
    can_adopt_check,
    claim,
    filter_active_pods,
    is_pod_ready,
    namespace_terminating,
    pod_key,
    pods_to_delete,
    selector_matcher,
)

log = logging.getLogger(__name__)
Obj = dict[str, Any]

KIND = "ReplicaSet"
API_VERSION = "apps/v1"


@dataclass(frozen=True)
class ControlledKind:
    """What the controller needs to know about the kind it manages (upstream runs this
    controller for ReplicationControllers too, through an adapter)."""

    info: ResourceInfo
    kind: str
    api_version: str
    name: str                                   # controller, work queue and event source
    selector: Callable[[Obj], Obj | None]       # the object's selector as a metav1.LabelSelector


def _label_selector(obj: Obj) -> Obj | None:
    return (obj.get("spec") or {}).get("selector")


REPLICASET_KIND = ControlledKind(REPLICASETS, KIND, API_VERSION, "replicaset", _label_selector)


class ReplicaSetController:
    """Reconciles ReplicaSets against their pods."""

    name = "replicaset"

    def __init__(self, client: APIClient, factory: SharedInformerFactory, *, workers: int = 5,
                 recorder: Recorder | None = None, burst_replicas: int = rsutil.BURST_REPLICAS,
                 now: Callable[[], _dt.datetime] = meta.now, expectations: Expectations | None = None,
                 kind: ControlledKind = REPLICASET_KIND):
        self.kind = kind
        self.name = kind.name
        self.rs_client = client.resource(kind.info)
        self.pod_client = client.resource(PODS)
        self.rs_informer = factory.informer(kind.info)
        self.pod_informer = factory.informer(PODS)
        self.pod_informer.add_index(rsutil.CONTROLLER_INDEX, rsutil.controller_index_values)
        self.recorder: Recorder = recorder or EventRecorder(client, f"{kind.name}-controller")
        self.pod_control = PodControl(client, self.recorder)
        self.expectations = expectations or Expectations()
        self.burst_replicas = burst_replicas
        self.workers = workers
        self.now = now
        self.queue = WorkQueue(kind.name)
        self.rs_informer.add_handler(self._add_rs, self._update_rs, self._delete_rs)
        self.pod_informer.add_handler(self._add_pod, self._update_pod, self._delete_pod)

    async def run(self, stop: asyncio.Event) -> None:
        """Start the informers, wait for their first list, run workers until ``stop``."""
        informers = (self.rs_informer, self.pod_informer)
        for inf in informers:
            inf.start()
        await asyncio.gather(*(inf.wait_synced() for inf in informers))
        await process_until(self.queue, self.sync, stop, self.workers)

    # -- event handlers: enqueue only ----------------------------------------------------
    def _resolve(self, namespace: str, ref: Obj) -> Obj | None:
        return resolve_controller_ref(self.rs_informer, namespace, ref, self.kind.kind)

    def _pod_replicasets(self, pod: Obj) -> list[Obj]:
        out = []
        for rs in self.rs_informer.list(meta.namespace(pod)):
            sel = self.kind.selector(rs)
            if not sel or not (sel.get("matchLabels") or sel.get("matchExpressions")):
                continue  # an empty selector matches nothing here
            try:
                if selector_matcher(sel)(meta.labels(pod)):
                    out.append(rs)
            except StatusError:
                continue
        return out

    def _add_rs(self, rs: Obj) -> None:
        self.queue.add(meta.key(rs))

    def _update_rs(self, old: Obj, cur: Obj) -> None:
        if meta.uid(old) != meta.uid(cur):
            self._delete_rs(old)
        self.queue.add(meta.key(cur))

    def _delete_rs(self, rs: Obj) -> None:
        self.expectations.delete(meta.key(rs))
        self.queue.add(meta.key(rs))

    def _add_pod(self, pod: Obj) -> None:
        if meta.is_deleting(pod):
            # Restarted controller: a pod already marked for deletion counts as deleted.
            self._delete_pod(pod)
            return
        ref = meta.controller_ref(pod)
        if ref is not None:
            rs = self._resolve(meta.namespace(pod), ref)
            if rs is None:
                return
            self.expectations.creation_observed(meta.key(rs))
            self.queue.add(meta.key(rs))
            return
        for rs in self._pod_replicasets(pod):
            self.queue.add(meta.key(rs))

    def _update_pod(self, old: Obj, cur: Obj) -> None:
        if meta.resource_version(old) == meta.resource_version(cur):
            return  # periodic resync: nothing changed
        label_changed = meta.labels(old) != meta.labels(cur)
        if meta.is_deleting(cur):
            self._delete_pod(cur)
            if label_changed:
                self._delete_pod(old)
            return
        cur_ref, old_ref = meta.controller_ref(cur), meta.controller_ref(old)
        ref_changed = cur_ref != old_ref
        if ref_changed and old_ref is not None:
            rs = self._resolve(meta.namespace(old), old_ref)
            if rs is not None:
                self.queue.add(meta.key(rs))
        if cur_ref is not None:
            rs = self._resolve(meta.namespace(cur), cur_ref)
            if rs is None:
                return
            self.queue.add(meta.key(rs))
            min_ready = int(rs.get("spec", {}).get("minReadySeconds") or 0)
            if not is_pod_ready(old) and is_pod_ready(cur) and min_ready > 0:
                # Sync again once the pod has been ready long enough to count as available.
                self.queue.add_after(meta.key(rs), min_ready + 1)
            return
        if label_changed or ref_changed:
            for rs in self._pod_replicasets(cur):
                self.queue.add(meta.key(rs))

    def _delete_pod(self, pod: Obj) -> None:
        ref = meta.controller_ref(pod)
        if ref is None:
            return
        rs = self._resolve(meta.namespace(pod), ref)
        if rs is None:
            return
        self.expectations.deletion_observed(meta.key(rs), pod_key(pod))
        self.queue.add(meta.key(rs))

    # -- sync ----------------------------------------------------------------------------
    async def sync(self, key: str) -> None:
        """Move one ReplicaSet one step toward spec.replicas pods; write its status."""
        cached = self.rs_informer.get(key)
        if cached is None:
            self.expectations.delete(key)
            return
        rs = copy.deepcopy(cached)
        rs.setdefault("kind", self.kind.kind)
        rs.setdefault("apiVersion", self.kind.api_version)
        need_sync = self.expectations.satisfied(key)
        try:
            matches = selector_matcher(self.kind.selector(rs))
        except StatusError as e:
            log.warning("%s %s has an invalid selector: %s", self.kind.name, key, e.message)
            return
        # Only this ReplicaSet's pods and the namespace's orphans can be claimed: the index
        # spares a walk over every pod of the namespace on each sync.
        pods = filter_active_pods(rsutil.controlled_and_orphans(self.pod_informer, meta.namespace(rs), meta.uid(rs)))
        pods = await self._claim_pods(rs, matches, pods)

        manage_error: Exception | None = None
        if need_sync and not meta.is_deleting(rs):
            try:
                await self._manage_replicas(pods, rs)
            except Exception as e:
                manage_error = e
        new_status = rsutil.calculate_status(rs, pods, manage_error, self.now())
        updated = await self._update_status(rs, new_status)
        spec = updated.get("spec", {})
        min_ready = int(spec.get("minReadySeconds") or 0)
        st = updated.get("status") or {}
        if (manage_error is None and min_ready > 0 and int(st.get("readyReplicas") or 0) == int(spec.get("replicas", 1))
                and int(st.get("availableReplicas") or 0) != int(spec.get("replicas", 1))):
            self.queue.add_after(key, min_ready)
        if manage_error is not None:
            raise manage_error

    async def _claim_pods(self, rs: Obj, matches: Callable[[dict[str, str] | None], bool], pods: list[Obj]) -> list[Obj]:
        async def get_fresh() -> Obj:
            return await self.rs_client.get(meta.name(rs), meta.namespace(rs))

        async def patch(pod: Obj, body: Obj) -> Obj:
            return await self.pod_client.patch(meta.name(pod), body, meta.namespace(pod))

        return await claim(pods, owner=rs, api_version=self.kind.api_version, kind=self.kind.kind,
                           matches=lambda p: matches(meta.labels(p)), patch=patch,
                           can_adopt=lambda: can_adopt_check(get_fresh, rs))

    async def _manage_replicas(self, pods: list[Obj], rs: Obj) -> None:
        key = meta.key(rs)
        ns = meta.namespace(rs)
        diff = len(pods) - int(rs.get("spec", {}).get("replicas", 1))
        if diff < 0:
            n = min(-diff, self.burst_replicas)
            self.expectations.expect_creations(key, n)
            template = rs.get("spec", {}).get("template") or {}
            ref = meta.new_controller_ref(rs, self.kind.api_version, self.kind.kind)

            async def create_one() -> None:
                try:
                    await self.pod_control.create_pod(ns, template, rs, ref)
                except StatusError as e:
                    if namespace_terminating(e):
                        return  # the namespace is going away: not a failure
                    raise
            successes, err = await rsutil.slow_start_batch(n, rsutil.SLOW_START_INITIAL_BATCH, create_one)
            for _ in range(n - successes):
                # Creates we skipped or that failed will never be observed.
                self.expectations.creation_observed(key)
            if err is not None:
                raise err
        elif diff > 0:
            n = min(diff, self.burst_replicas)
            victims = pods_to_delete(pods, self._indirectly_related_pods(rs), n, self.now())
            self.expectations.expect_deletions(key, [pod_key(p) for p in victims])

            async def delete_one(pod: Obj) -> Exception | None:
                try:
                    await self.pod_control.delete_pod(ns, meta.name(pod), rs)
                except NotFound:
                    self.expectations.deletion_observed(key, pod_key(pod))  # gone already: not an error
                except StatusError as e:
                    self.expectations.deletion_observed(key, pod_key(pod))
                    return e
                return None
            errors = [e for e in await asyncio.gather(*(delete_one(p) for p in victims)) if e is not None]
            if errors:
                raise errors[0]

    def _indirectly_related_pods(self, rs: Obj) -> list[Obj]:
        """Pods of every RS with the same controller (the siblings of a rollout)."""
        ref = meta.controller_ref(rs)
        if ref is None:
            return []
        seen: set[str] = set()
        out: list[Obj] = []
        ns_pods = self.pod_informer.list(meta.namespace(rs))
        for other in self.rs_informer.list(meta.namespace(rs)):
            oref = meta.controller_ref(other)
            if oref is None or oref.get("uid") != ref.get("uid"):
                continue
            try:
                m = selector_matcher(self.kind.selector(other))
            except StatusError:
                continue
            for p in ns_pods:
                if meta.uid(p) not in seen and m(meta.labels(p)):
                    seen.add(meta.uid(p))
                    out.append(p)
        return out

    async def _update_status(self, rs: Obj, new_status: Obj) -> Obj:
        """PUT /status unless nothing changed; one retry after a fresh GET, as upstream."""
        if rsutil.status_unchanged(rs, new_status):
            return rs
        gen = int(rs["metadata"].get("generation") or 0)
        if gen:
            new_status["observedGeneration"] = gen
        obj = rs
        for attempt in range(rsutil.STATUS_UPDATE_RETRIES + 1):
            obj = dict(obj)
            obj["status"] = new_status
            try:
                return await self.rs_client.update_status(obj)
            except StatusError:
                if attempt >= rsutil.STATUS_UPDATE_RETRIES:
                    raise
                obj = await self.rs_client.get(meta.name(rs), meta.namespace(rs))
                if int(obj["metadata"].get("generation") or 0):
                    new_status["observedGeneration"] = int(obj["metadata"]["generation"])
        return obj
