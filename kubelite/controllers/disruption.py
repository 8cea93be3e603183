"""The disruption controller: keep every PodDisruptionBudget's status current.

Behaviour as upstream's ``pkg/controller/disruption``:

- the pods a budget covers are its namespace's pods matching its selector (an empty
  selector matches every pod, a missing one none);
- *expected pods*: with an integer minAvailable, the number of covered pods; otherwise
  the summed scale of the controllers owning them (a Deployment through its ReplicaSet, a
  ReplicaSet, a ReplicationController, a StatefulSet, or any kind with a scale
  subresource); a pod without a controller is "unmanaged", one whose controller has no
  scale makes the sync fail;
- *desired healthy*: minAvailable (percentages of the expected pods, rounded up), or the
  expected pods minus maxUnavailable (rounded up), never below 0;
- *current healthy*: covered pods that are Ready, not terminating and not in the budget's
  ``disruptedPods`` map (entries the eviction API adds; dropped two minutes after the
  eviction or when the pod is seen terminating);
- disruptionsAllowed = current - desired, 0 when negative or when no pod is expected, and
  the ``DisruptionAllowed`` condition (SufficientPods / InsufficientPods); a failed sync
  writes disruptionsAllowed 0 with reason SyncFailed (a conflict is just retried);
- a pod left with a ``DisruptionTarget=True`` condition but never deleted gets that
  condition set to False two minutes after it was added.
"""
from __future__ import annotations

import asyncio
import copy
import dataclasses
import datetime as _dt
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import quote

from kubelite.api import meta
from kubelite.api import resources as catalogue
from kubelite.api.disruption import CONDITION, SYNC_FAILED, allowed_condition, set_condition
from kubelite.api.resources import (
    DEPLOYMENTS,
    PODDISRUPTIONBUDGETS,
    PODS,
    REPLICASETS,
    REPLICATIONCONTROLLERS,
    STATEFULSETS,
)
from kubelite.api.selectors import selector_from_dict
from kubelite.client.errors import Conflict, NotFound, StatusError
from kubelite.client.events import EventRecorder
from kubelite.client.protocols import APIClient, Lister, Recorder, SharedInformerFactory
from kubelite.client.workqueue import WorkQueue, process_until
from kubelite.controllers.podcontrol import is_pod_ready, selector_matcher

log = logging.getLogger(__name__)
Obj = dict[str, Any]

DELETION_TIMEOUT = _dt.timedelta(minutes=2)       # how long an evicted pod may take to show up deleted
STALE_DISRUPTION_TIMEOUT = _dt.timedelta(minutes=2)
RESYNC_SECONDS = 30.0
FIELD_MANAGER = "DisruptionController"
POLICY_API = "policy/v1"

# (uid, replicas) of the controller owning a pod, or None when this finder does not know it.
Scale = tuple[str, int]
ScaleFinder = Callable[[Obj, str], Awaitable[Scale | None]]


class SyncError(Exception):
    """A budget whose numbers cannot be computed (its status says SyncFailed)."""


# --- arithmetic (pure) -------------------------------------------------------------------

def scaled_value(v: Any, total: int) -> int:
    """intstr.GetScaledValueFromIntOrPercent rounding up, as the controller calls it."""
    if isinstance(v, str):
        if not v.endswith("%"):
            raise SyncError("invalid value for IntOrString: invalid type: string is not a percentage")
        try:
            pct = int(v[:-1])
        except ValueError:
            raise SyncError(f'invalid value "{v}": strconv.Atoi: parsing "{v[:-1]}": invalid syntax') from None
        return -(-pct * total // 100)
    return int(v or 0)


def needs_scale(spec: Obj) -> bool:
    """Whether the expected count comes from the owning controllers (not the pod count)."""
    if spec.get("maxUnavailable") is not None:
        return True
    return isinstance(spec.get("minAvailable"), str)


def expected_and_desired(spec: Obj, pod_count: int, scale_total: int) -> tuple[int, int]:
    """(expectedPods, desiredHealthy) from the spec, the covered pod count and the owners' summed scale."""
    max_unavailable = spec.get("maxUnavailable")
    min_available = spec.get("minAvailable")
    if max_unavailable is not None:
        expected = scale_total
        return expected, max(0, expected - scaled_value(max_unavailable, expected))
    if min_available is not None:
        if isinstance(min_available, str):
            return scale_total, scaled_value(min_available, scale_total)
        return pod_count, int(min_available)
    return 0, 0


def disruptions_allowed(current_healthy: int, desired_healthy: int, expected: int) -> int:
    """current - desired, but 0 when negative or when no pod is expected (a new budget is safe)."""
    allowed = current_healthy - desired_healthy
    return 0 if expected <= 0 or allowed <= 0 else allowed


def build_disrupted_pod_map(pods: Iterable[Obj], recorded: Obj | None, now: _dt.datetime,
                            on_expired: Callable[[Obj], None] | None = None,
                            ) -> tuple[dict[str, str], _dt.datetime | None]:
    """The disruptedPods entries still pending, and when the earliest of them expires."""
    out: dict[str, str] = {}
    recheck: _dt.datetime | None = None
    if not recorded:
        return out, recheck
    for pod in pods:
        if meta.is_deleting(pod):
            continue  # the eviction went through: nothing to wait for
        stamp = recorded.get(meta.name(pod))
        if not isinstance(stamp, str):
            continue
        when = meta.parse_time(stamp)
        if when is None:
            continue
        expires = when + DELETION_TIMEOUT
        if expires < now:
            if on_expired is not None:
                on_expired(pod)
            continue
        if recheck is None or expires < recheck:
            recheck = expires
        out[meta.name(pod)] = stamp
    return out, recheck


def count_healthy(pods: Iterable[Obj], disrupted: dict[str, str], now: _dt.datetime) -> int:
    """Ready pods that are neither terminating nor waiting to be deleted after an eviction."""
    n = 0
    for pod in pods:
        if meta.is_deleting(pod):
            continue
        when = meta.parse_time(disrupted.get(meta.name(pod)))
        if when is not None and when + DELETION_TIMEOUT > now:
            continue
        if is_pod_ready(pod):
            n += 1
    return n


def condition_equal(conditions: list[Obj], want: Obj) -> bool:
    """IsStatusConditionPresentAndEqual on type, status, reason, message and observedGeneration."""
    for c in conditions:
        if c.get("type") == want["type"]:
            return (c.get("status") == want["status"] and (c.get("reason") or "") == want.get("reason", "")
                    and (c.get("message") or "") == want.get("message", "")
                    and int(c.get("observedGeneration") or 0) == int(want.get("observedGeneration") or 0))
    return False


def stale_disruption_wait(pod: Obj, now: _dt.datetime) -> _dt.timedelta | None:
    """How long until a pod's DisruptionTarget condition counts as stale (None: nothing to clean)."""
    if meta.is_deleting(pod):
        return None
    status = pod.get("status") or {}
    cond = next((c for c in status.get("conditions") or [] if c.get("type") == "DisruptionTarget"), None)
    if (cond is None or cond.get("status") != "True" or cond.get("reason") == "TerminationByKubelet"
            or status.get("phase") in ("Succeeded", "Failed")):
        return None
    since = meta.parse_time(cond.get("lastTransitionTime")) or now
    return max(_dt.timedelta(0), STALE_DISRUPTION_TIMEOUT - (now - since))


# --- the controller ------------------------------------------------------------------------

class DisruptionController:
    """Computes PodDisruptionBudget status from pods and the scale of their controllers."""

    name = "disruption"

    def __init__(self, client: APIClient, factory: SharedInformerFactory, *, workers: int = 2,
                 recorder: Recorder | None = None, now: Callable[[], _dt.datetime] = meta.now):
        self.client = client
        self.pdb_client = client.resource(PODDISRUPTIONBUDGETS)
        self.pod_client = client.resource(PODS)
        self.pdb_informer = factory.informer(PODDISRUPTIONBUDGETS)
        self.pod_informer = factory.informer(PODS)
        self.rs_informer = factory.informer(REPLICASETS)
        self.deploy_informer = factory.informer(DEPLOYMENTS)
        self.rc_informer = factory.informer(REPLICATIONCONTROLLERS)
        self.sts_informer = factory.informer(STATEFULSETS)
        self.recorder: Recorder = recorder or EventRecorder(client, "controllermanager")
        self.now = now
        self.workers = workers
        self.queue = WorkQueue("disruption")
        self.recheck_queue = WorkQueue("disruption_recheck")
        self.stale_queue = WorkQueue("stale_pod_disruption")
        self.pdb_informer.add_handler(self._add_pdb, lambda _old, cur: self._add_pdb(cur), self._add_pdb)
        self.pod_informer.add_handler(self._add_pod, self._update_pod, self._delete_pod)
        self.finders: list[ScaleFinder] = [self._replicaset_scale, self._deployment_scale,
                                           self._rc_scale, self._statefulset_scale, self._subresource_scale]

    async def run(self, stop: asyncio.Event) -> None:
        """Start the informers, wait for their first list, then work the three queues."""
        informers = (self.pdb_informer, self.pod_informer, self.rs_informer, self.deploy_informer,
                     self.rc_informer, self.sts_informer)
        for inf in informers:
            inf.start()
        await asyncio.gather(*(inf.wait_synced() for inf in informers))
        resync = asyncio.create_task(self._resync(stop))
        try:
            await asyncio.gather(
                process_until(self.queue, self.sync, stop, self.workers),
                process_until(self.recheck_queue, self._recheck, stop, 1),
                process_until(self.stale_queue, self.sync_stale_pod_disruption, stop, self.workers))
        finally:
            resync.cancel()
            await asyncio.gather(resync, return_exceptions=True)

    async def _resync(self, stop: asyncio.Event) -> None:
        # Owners' scale changes have no handler (as upstream): a periodic pass catches them.
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), RESYNC_SECONDS)
            except TimeoutError:
                for pdb in self.pdb_informer.list():
                    self.queue.add(meta.key(pdb))

    async def _recheck(self, key: str) -> None:
        self.queue.add(key)

    # -- event handlers ------------------------------------------------------------------
    def _add_pdb(self, pdb: Obj) -> None:
        self.queue.add(meta.key(pdb))

    def _pdbs_for_pod(self, pod: Obj) -> list[Obj]:
        """Every budget of the pod's namespace whose selector matches the pod's labels."""
        if not meta.labels(pod):
            return []
        out = []
        for pdb in self.pdb_informer.list(meta.namespace(pod)):
            try:
                if selector_matcher((pdb.get("spec") or {}).get("selector"))(meta.labels(pod)):
                    out.append(pdb)
            except StatusError:
                continue
        return out

    def _enqueue_for_pod(self, pod: Obj) -> None:
        pdbs = self._pdbs_for_pod(pod)
        if len(pdbs) > 1:
            self.recorder.event(pod, "Warning", "MultiplePodDisruptionBudgets",
                                f'Pod "{meta.namespace(pod)}"/"{meta.name(pod)}" matches multiple '
                                f'PodDisruptionBudgets.  Chose "{meta.name(pdbs[0])}" arbitrarily.')
        if pdbs:
            self.queue.add(meta.key(pdbs[0]))

    def _add_pod(self, pod: Obj) -> None:
        self._enqueue_for_pod(pod)
        self._enqueue_stale(pod)

    def _update_pod(self, old: Obj, cur: Obj) -> None:
        if meta.resource_version(old) == meta.resource_version(cur):
            return
        self._enqueue_for_pod(cur)
        if meta.labels(old) != meta.labels(cur):
            self._enqueue_for_pod(old)
        self._enqueue_stale(cur)

    def _delete_pod(self, pod: Obj) -> None:
        self._enqueue_for_pod(pod)

    def _enqueue_stale(self, pod: Obj) -> None:
        wait = stale_disruption_wait(pod, self.now())
        if wait is not None:
            self.stale_queue.add_after(meta.key(pod), wait.total_seconds())

    # -- owners' scale -------------------------------------------------------------------
    @staticmethod
    def _owned(lister: Lister, ref: Obj, namespace: str, api_group: str, kind: str) -> Obj | None:
        """The ref's object from a lister when the ref names that kind and the uid matches."""
        group = (ref.get("apiVersion") or "").rpartition("/")[0]
        if ref.get("kind") != kind or group != api_group:
            return None
        obj = lister.get_by_name(namespace, ref.get("name") or "")
        if obj is None or meta.uid(obj) != ref.get("uid"):
            return None
        return obj

    async def _replicaset_scale(self, ref: Obj, namespace: str) -> Scale | None:
        rs = self._owned(self.rs_informer, ref, namespace, "apps", "ReplicaSet")
        if rs is None:
            return None
        owner = meta.controller_ref(rs)
        if owner is not None and owner.get("kind") == "Deployment":
            return None  # the Deployment's scale counts, found by the next finder
        return meta.uid(rs), int((rs.get("spec") or {}).get("replicas", 1))

    async def _deployment_scale(self, ref: Obj, namespace: str) -> Scale | None:
        rs = self._owned(self.rs_informer, ref, namespace, "apps", "ReplicaSet")
        if rs is None:
            return None
        owner = meta.controller_ref(rs)
        if owner is None:
            return None
        deploy = self._owned(self.deploy_informer, owner, namespace, "apps", "Deployment")
        if deploy is None:
            return None
        return meta.uid(deploy), int((deploy.get("spec") or {}).get("replicas", 1))

    async def _rc_scale(self, ref: Obj, namespace: str) -> Scale | None:
        rc = self._owned(self.rc_informer, ref, namespace, "", "ReplicationController")
        if rc is None:
            return None
        return meta.uid(rc), int((rc.get("spec") or {}).get("replicas", 1))

    async def _statefulset_scale(self, ref: Obj, namespace: str) -> Scale | None:
        sts = self._owned(self.sts_informer, ref, namespace, "apps", "StatefulSet")
        if sts is None:
            return None
        return meta.uid(sts), int((sts.get("spec") or {}).get("replicas", 1))

    async def _subresource_scale(self, ref: Obj, namespace: str) -> Scale | None:
        """Any other owner: its scale subresource, when its kind has one."""
        api_version, kind, name = ref.get("apiVersion") or "", ref.get("kind") or "", ref.get("name") or ""
        info = catalogue.by_kind(api_version, kind)
        if info is None:
            group = api_version.rpartition("/")[0]
            raise SyncError(f'no matches for kind "{kind}" in group "{group}"')
        gr = f"{info.plural}.{info.group}" if info.group else info.plural
        if info.subresource("scale") is None:
            raise SyncError(f"{gr} does not implement the scale subresource")
        # GET …/<plural>/<name>/scale: the typed client only builds object paths, so the
        # object's name rides in the plural of a copy of the resource description.
        scoped = dataclasses.replace(info, plural=f"{info.plural}/{quote(name, safe='')}")
        try:
            scale = await self.client.resource(scoped).get("scale", namespace)
        except NotFound:
            return None
        if (scale.get("metadata") or {}).get("uid") != ref.get("uid"):
            return None
        return ref.get("uid") or "", int((scale.get("spec") or {}).get("replicas") or 0)

    async def expected_scale(self, pods: list[Obj]) -> tuple[int, list[str]]:
        """The summed scale of the pods' controllers, and the names of pods with none."""
        scales: dict[str, int] = {}
        unmanaged: list[str] = []
        for pod in pods:
            ref = meta.controller_ref(pod)
            if ref is None:
                unmanaged.append(meta.name(pod))
                continue
            if ref.get("uid") in scales:
                continue
            for finder in self.finders:
                found = await finder(ref, meta.namespace(pod))
                if found is not None:
                    scales[found[0]] = found[1]
                    break
            else:
                raise SyncError(f'found no controllers for pod "{meta.name(pod)}"')
        return sum(scales.values()), unmanaged

    # -- sync ----------------------------------------------------------------------------
    def _pods_for(self, pdb: Obj) -> list[Obj]:
        matches = selector_matcher((pdb.get("spec") or {}).get("selector"))
        return [p for p in self.pod_informer.list(meta.namespace(pdb)) if matches(meta.labels(p))]

    async def sync(self, key: str) -> None:
        """Recompute one budget's status; on failure write the fail-safe status."""
        cached = self.pdb_informer.get(key)
        if cached is None:
            return
        pdb = copy.deepcopy(cached)
        try:
            await self._try_sync(pdb)
        except Conflict:
            raise  # a newer budget is on its way: retry without failing safe
        except (SyncError, StatusError) as e:
            message = str(e) if isinstance(e, SyncError) else e.message
            await self._fail_safe(pdb, message)
            if isinstance(e, StatusError):
                raise

    async def _try_sync(self, pdb: Obj) -> None:
        spec = pdb.get("spec") or {}
        pods = self._pods_for(pdb)
        if not pods:
            self.recorder.event(pdb, "Normal", "NoPods", "No matching pods found")
        scale_total, unmanaged = 0, list[str]()
        if needs_scale(spec):
            try:
                scale_total, unmanaged = await self.expected_scale(pods)
                expected, desired = expected_and_desired(spec, len(pods), scale_total)
            except SyncError as e:
                self.recorder.event(pdb, "Warning", "CalculateExpectedPodCountFailed",
                                    f"Failed to calculate the number of expected pods: {e}")
                raise
        else:
            expected, desired = expected_and_desired(spec, len(pods), 0)
        if unmanaged:
            # Not an error (that would hot-loop): the numbers are computed without those pods.
            shown = str(selector_from_dict(spec.get("selector")))
            self.recorder.event(pdb, "Warning", "UnmanagedPods",
                                f"Pods selected by this PodDisruptionBudget (selector: {shown}) were found to be "
                                "unmanaged. As a result, the status of the PDB cannot be calculated correctly, which "
                                "may result in undefined behavior. To account for these pods please set "
                                '".spec.minAvailable" field of the PDB to an integer value.')
        now = self.now()

        def expired(pod: Obj) -> None:
            self.recorder.event(pod, "Warning", "NotDeleted", f"Pod was expected by PDB {meta.key(pdb)} "
                                "to be deleted but it wasn't")
        disrupted, recheck = build_disrupted_pod_map(pods, (pdb.get("status") or {}).get("disruptedPods"),
                                                     now, expired)
        healthy = count_healthy(pods, disrupted, now)
        await self._update_status(pdb, healthy, desired, expected, disrupted, now)
        if recheck is not None:
            self.recheck_queue.add_after(meta.key(pdb), max(0.0, (recheck - now).total_seconds()))

    async def _update_status(self, pdb: Obj, healthy: int, desired: int, expected: int,
                             disrupted: dict[str, str], now: _dt.datetime) -> None:
        status = pdb.get("status") or {}
        generation = int(pdb["metadata"].get("generation") or 0)
        allowed = disruptions_allowed(healthy, desired, expected)
        cond = allowed_condition(allowed, generation)
        conditions = status.get("conditions") or []
        if (int(status.get("currentHealthy") or 0) == healthy and int(status.get("desiredHealthy") or 0) == desired
                and int(status.get("expectedPods") or 0) == expected
                and int(status.get("disruptionsAllowed") or 0) == allowed
                and (status.get("disruptedPods") or {}) == disrupted
                and int(status.get("observedGeneration") or 0) == generation
                and condition_equal(conditions, cond)):
            return
        new_status: Obj = {"currentHealthy": healthy, "desiredHealthy": desired, "expectedPods": expected,
                           "disruptionsAllowed": allowed}
        if disrupted:
            new_status["disruptedPods"] = disrupted
        if generation:
            new_status["observedGeneration"] = generation
        new_status["conditions"] = set_condition(conditions, cond, now)
        pdb["status"] = new_status
        await self.pdb_client.update_status(pdb)

    async def _fail_safe(self, pdb: Obj, message: str) -> None:
        """No disruption allowed while the budget cannot be computed (SyncFailed)."""
        status = dict(pdb.get("status") or {})
        status["disruptionsAllowed"] = 0
        cond = {"type": CONDITION, "status": "False", "reason": SYNC_FAILED, "message": message,
                "observedGeneration": int(status.get("observedGeneration") or 0)}
        status["conditions"] = set_condition(status.get("conditions") or [], cond, self.now())
        if status == pdb.get("status"):
            return  # already failed safe with this message: nothing to write
        pdb["status"] = status
        await self.pdb_client.update_status(pdb)

    async def sync_stale_pod_disruption(self, key: str) -> None:
        """Set a DisruptionTarget condition to False once it is stale (the pod was never deleted)."""
        pod = self.pod_informer.get(key)
        if pod is None:
            return
        wait = stale_disruption_wait(pod, self.now())
        if wait is None:
            return
        if wait > _dt.timedelta(0):
            self.stale_queue.add_after(key, wait.total_seconds())
            return
        body = {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": meta.name(pod), "namespace": meta.namespace(pod),
                             "resourceVersion": meta.resource_version(pod)},
                "status": {"conditions": [{"type": "DisruptionTarget", "status": "False",
                                           "lastTransitionTime": meta.rfc3339(self.now())}]}}
        try:
            await self.pod_client.patch(meta.name(pod), body, meta.namespace(pod), patch_type="apply",
                                        subresource="status", field_manager=FIELD_MANAGER, force=True)
        except NotFound:
            return
