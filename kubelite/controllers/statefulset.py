"""The StatefulSet controller: pods with stable names, created and replaced in order.

Wiring as upstream's stateful_set.go: informers on StatefulSets, pods and
ControllerRevisions; handlers only enqueue set keys.  One ``sync(key)``:

1. adopt orphan revisions and claim pods (selector match and a ``<set>-<ordinal>`` name);
2. history: the update revision is a snapshot of the current template (an equal older
   revision is renumbered, which is what a rollback looks like); the current revision is
   the one status.currentRevision names, or the update revision for a new set;
3. ``update_statefulset`` - upstream's algorithm: pods with ordinals in range are
   replicas, the rest are condemned; missing replicas are created (at the current
   revision below the partition, at the update revision above); with OrderedReady each
   step waits for every lower ordinal to be Running and Ready (and available after
   minReadySeconds), condemned pods go highest ordinal first, one at a time; with
   Parallel everything happens at once.  A RollingUpdate then deletes the highest
   ordinal >= partition not at the update revision (or, when maxUnavailable is set, as
   many as maxUnavailable allows), waiting for unhealthy pods; OnDelete never deletes;
4. status (replicas, ready, available, current, updated, revisions, collisionCount,
   observedGeneration), finishing a rollout by making the update revision current;
5. history beyond revisionHistoryLimit that no pod uses is deleted.

The pure parts (ordinals, pod identity, status counts, rolling-update targets) are
module functions so the arithmetic is testable without a server.
"""
from __future__ import annotations

import asyncio
import copy
import datetime as _dt
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from kubelite.api import meta
from kubelite.api.resources import CONTROLLERREVISIONS, PERSISTENTVOLUMECLAIMS, PODS, STATEFULSETS
from kubelite.client.errors import AlreadyExists, Conflict, NotFound, StatusError
from kubelite.client.events import EventRecorder
from kubelite.client.protocols import APIClient, Recorder, SharedInformerFactory
from kubelite.client.workqueue import WorkQueue, process_until
from kubelite.controllers import history as hist
from kubelite.controllers.ownerref import controlling_owner
from kubelite.controllers.podcontrol import can_adopt_check, claim, is_pod_available, is_pod_ready, selector_matcher

log = logging.getLogger(__name__)
Obj = dict[str, Any]

KIND = "StatefulSet"
API_VERSION = "apps/v1"
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
REVISION_LABEL = "controller-revision-hash"
_NAME_RE = re.compile(r"^(.*)-([0-9]+)$")


# --- identity ------------------------------------------------------------------------------

def parent_and_ordinal(pod: Obj) -> tuple[str, int]:
    """(set name, ordinal) parsed from ``<set>-<ordinal>``; ("", -1) when it does not parse."""
    m = _NAME_RE.match(meta.name(pod))
    if not m:
        return "", -1
    return m.group(1), int(m.group(2))


def ordinal_of(pod: Obj) -> int:
    """The pod's ordinal, -1 when its name has none."""
    return parent_and_ordinal(pod)[1]


def start_ordinal(sts: Obj) -> int:
    """spec.ordinals.start (0 when unset)."""
    return int(((sts.get("spec") or {}).get("ordinals") or {}).get("start") or 0)


def end_ordinal(sts: Obj) -> int:
    """The highest ordinal a replica may have."""
    return start_ordinal(sts) + int((sts.get("spec") or {}).get("replicas", 1)) - 1


def in_ordinal_range(sts: Obj, pod: Obj) -> bool:
    """Whether the pod's ordinal belongs to a replica (not a condemned pod)."""
    o = ordinal_of(pod)
    return start_ordinal(sts) <= o <= end_ordinal(sts)


def is_member_of(sts: Obj, pod: Obj) -> bool:
    """The pod's name says it belongs to this set."""
    return parent_and_ordinal(pod)[0] == meta.name(sts)


def pod_name(sts: Obj, ordinal: int) -> str:
    """``<set>-<ordinal>``."""
    return f"{meta.name(sts)}-{ordinal}"


def pod_revision(pod: Obj) -> str:
    """The controller-revision-hash label (the revision's name)."""
    return meta.labels(pod).get(REVISION_LABEL, "")


def claim_name(template_name: str, sts: Obj, ordinal: int) -> str:
    """The PersistentVolumeClaim of one claim template for one pod."""
    return f"{template_name}-{pod_name(sts, ordinal)}"


def retention_policy(sts: Obj) -> tuple[str, str]:
    """(whenDeleted, whenScaled) of the set, Retain when unset."""
    p = (sts.get("spec") or {}).get("persistentVolumeClaimRetentionPolicy") or {}
    return p.get("whenDeleted") or "Retain", p.get("whenScaled") or "Retain"


def claim_owner_refs(sts: Obj, pod: Obj | None, have: list[Obj], *, condemned: bool) -> list[Obj]:
    """A claim's owner references under the retention policy: the set owns it when it goes
    with the set (whenDeleted Delete) and the pod is kept; the pod owns it when it goes with
    a scale-down (whenScaled Delete) and the pod is condemned.  Other owners are kept."""
    when_deleted, when_scaled = retention_policy(sts)
    set_ref = meta.new_controller_ref(sts, API_VERSION, KIND)
    pod_ref = {"apiVersion": "v1", "kind": "Pod", "name": meta.name(pod), "uid": meta.uid(pod)} if pod else None
    if when_scaled == "Delete" and condemned:
        want_set, want_pod = False, True
    else:
        want_set, want_pod = when_deleted == "Delete", False
    out = [r for r in have if r.get("uid") not in (meta.uid(sts), pod_ref and pod_ref["uid"])
           and not (r.get("kind") == KIND and r.get("name") == meta.name(sts))]
    keep_set = next((r for r in have if r.get("uid") == meta.uid(sts)), None)
    if want_set:
        out.append(keep_set or set_ref)
    if want_pod and pod_ref is not None:
        out.append(next((r for r in have if r.get("uid") == pod_ref["uid"]), pod_ref))
    return out


def _update_identity(sts: Obj, pod: Obj, ordinal: int) -> None:
    md = pod.setdefault("metadata", {})
    md["name"] = pod_name(sts, ordinal)
    md["namespace"] = meta.namespace(sts)
    labels = dict(md.get("labels") or {})
    labels[POD_NAME_LABEL] = md["name"]
    labels[POD_INDEX_LABEL] = str(ordinal)
    md["labels"] = labels


def _update_storage(sts: Obj, pod: Obj, ordinal: int) -> None:
    """One persistentVolumeClaim volume per claim template, replacing a template volume of that name."""
    templates = (sts.get("spec") or {}).get("volumeClaimTemplates") or []
    if not templates:
        return
    spec = pod.setdefault("spec", {})
    claims = {t["metadata"]["name"]: claim_name(t["metadata"]["name"], sts, ordinal)
              for t in templates if (t.get("metadata") or {}).get("name")}
    # Claim volumes first, then the template's other volumes (as upstream's updateStorage).
    vols = [{"name": name, "persistentVolumeClaim": {"claimName": cname}} for name, cname in sorted(claims.items())]
    vols += [v for v in spec.get("volumes") or [] if v.get("name") not in claims]
    spec["volumes"] = vols


def identity_matches(sts: Obj, pod: Obj) -> bool:
    """Name, namespace and the pod-name / pod-index labels are what the set would give."""
    parent, o = parent_and_ordinal(pod)
    labels = meta.labels(pod)
    return (o >= 0 and parent == meta.name(sts) and meta.namespace(pod) == meta.namespace(sts)
            and labels.get(POD_NAME_LABEL) == meta.name(pod) and labels.get(POD_INDEX_LABEL) == str(o))


def storage_matches(sts: Obj, pod: Obj) -> bool:
    """Every claim template has its volume in the pod."""
    o = ordinal_of(pod)
    vols = {v.get("name"): v for v in (pod.get("spec") or {}).get("volumes") or []}
    for t in (sts.get("spec") or {}).get("volumeClaimTemplates") or []:
        name = str((t.get("metadata") or {}).get("name") or "")
        v = vols.get(name)
        if v is None or (v.get("persistentVolumeClaim") or {}).get("claimName") != claim_name(name, sts, o):
            return False
    return True


def new_pod(sts: Obj, template: Obj, ordinal: int, revision: str) -> Obj:
    """The pod of one ordinal from a template: stable name, identity labels, hostname and
    subdomain, claim volumes and the revision label (newStatefulSetPod)."""
    tmd = template.get("metadata") or {}
    md: Obj = {"labels": dict(tmd.get("labels") or {}),
               "ownerReferences": [meta.new_controller_ref(sts, API_VERSION, KIND)]}
    if tmd.get("annotations"):
        md["annotations"] = dict(tmd["annotations"])
    if tmd.get("finalizers"):
        md["finalizers"] = list(tmd["finalizers"])
    pod: Obj = {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": copy.deepcopy(template.get("spec") or {})}
    _update_identity(sts, pod, ordinal)
    pod["spec"]["hostname"] = pod["metadata"]["name"]
    service = (sts.get("spec") or {}).get("serviceName")
    if service:
        pod["spec"]["subdomain"] = service
    _update_storage(sts, pod, ordinal)
    pod["metadata"]["labels"][REVISION_LABEL] = revision
    return pod


# --- pod state -----------------------------------------------------------------------------

def _phase(pod: Obj) -> str:
    return (pod.get("status") or {}).get("phase") or ""


def is_created(pod: Obj) -> bool:
    """Pods we only planned have no phase yet."""
    return _phase(pod) != ""


def is_terminating(pod: Obj) -> bool:
    """The pod has a deletionTimestamp."""
    return meta.is_deleting(pod)


def is_running_and_ready(pod: Obj) -> bool:
    """Phase Running and the Ready condition True."""
    return _phase(pod) == "Running" and is_pod_ready(pod)


def is_running_and_available(pod: Obj, min_ready: int, now: _dt.datetime) -> bool:
    """Running and ready for at least minReadySeconds."""
    return _phase(pod) == "Running" and is_pod_available(pod, min_ready, now)


def is_healthy(pod: Obj) -> bool:
    """Running, ready and not terminating."""
    return is_running_and_ready(pod) and not is_terminating(pod)


def is_unavailable(pod: Obj, min_ready: int, now: _dt.datetime) -> bool:
    """Not healthy, or not yet ready for minReadySeconds."""
    return not is_healthy(pod) or not is_pod_available(pod, min_ready, now)


# --- arithmetic ----------------------------------------------------------------------------

def scaled_value(v: Any, total: int, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent."""
    if isinstance(v, str):
        if not v.endswith("%"):
            try:
                return int(v)
            except ValueError:
                raise ValueError(f"invalid value for IntOrString: invalid value {v!r}") from None
        pct = int(v[:-1])
        num = pct * total
        return -(-num // 100) if round_up else num // 100
    return int(v or 0)


def max_unavailable(sts: Obj) -> int:
    """getStatefulSetMaxUnavailable: maxUnavailable scaled on replicas, rounded down, at least 1."""
    ru = ((sts.get("spec") or {}).get("updateStrategy") or {}).get("rollingUpdate") or {}
    v = ru.get("maxUnavailable")
    if v is None:
        return 1
    n = scaled_value(v, int((sts.get("spec") or {}).get("replicas", 1)), False)
    return max(n, 1)


def partition(sts: Obj) -> int:
    """spec.updateStrategy.rollingUpdate.partition (0 when unset)."""
    ru = ((sts.get("spec") or {}).get("updateStrategy") or {}).get("rollingUpdate") or {}
    return int(ru.get("partition") or 0)


def uses_current_revision(sts: Obj, ordinal: int) -> bool:
    """newVersionedStatefulSetPod: whether a recreated pod of this ordinal gets the current
    revision (below the partition, or below the current count without a rollingUpdate)."""
    spec = sts.get("spec") or {}
    strategy = spec.get("updateStrategy") or {}
    ru = strategy.get("rollingUpdate")
    current = int((sts.get("status") or {}).get("currentReplicas") or 0)
    # Upstream's condition binds as (RollingUpdate and no rollingUpdate and below current)
    # or (a rollingUpdate and below partition); kept as is.
    if strategy.get("type") == "RollingUpdate" and ru is None and ordinal < start_ordinal(sts) + current:
        return True
    return ru is not None and ordinal < start_ordinal(sts) + int(ru.get("partition") or 0)


def rolling_update_victims(sts: Obj, replicas: list[Obj], update_revision: str, now: _dt.datetime) -> list[Obj]:
    """The replicas a RollingUpdate deletes in this sync (they come back at the update revision).

    Without maxUnavailable: from the highest ordinal down to the partition, the first pod not at
    the update revision - unless an unhealthy pod is met first, which is waited for.
    With maxUnavailable: up to maxUnavailable minus the unavailable replicas, highest first."""
    spec = sts.get("spec") or {}
    update_min = partition(sts)
    min_ready = int(spec.get("minReadySeconds") or 0)
    ru = (spec.get("updateStrategy") or {}).get("rollingUpdate") or {}
    if ru.get("maxUnavailable") is None:
        for target in range(len(replicas) - 1, update_min - 1, -1):
            pod = replicas[target]
            if pod_revision(pod) != update_revision and not is_terminating(pod):
                return [pod]
            if is_unavailable(pod, min_ready, now):
                return []
        return []
    allowed = max_unavailable(sts)
    unavailable = sum(1 for p in replicas if is_unavailable(p, min_ready, now))
    if unavailable >= allowed:
        return []
    out: list[Obj] = []
    for target in range(len(replicas) - 1, update_min - 1, -1):
        if len(out) >= allowed - unavailable:
            break
        pod = replicas[target]
        if pod_revision(pod) != update_revision and not is_terminating(pod):
            out.append(pod)
    return out


@dataclass
class ReplicaStatus:
    """The counters of StatefulSetStatus."""

    replicas: int = 0
    ready: int = 0
    available: int = 0
    current: int = 0
    updated: int = 0


def compute_replica_status(pods: list[Obj], min_ready: int, current_revision: str, update_revision: str,
                           now: _dt.datetime) -> ReplicaStatus:
    """computeReplicaStatus: created, ready, available, and at which revision."""
    st = ReplicaStatus()
    for p in pods:
        if is_created(p):
            st.replicas += 1
        if is_running_and_ready(p):
            st.ready += 1
            if is_running_and_available(p, min_ready, now):
                st.available += 1
        if is_created(p) and not is_terminating(p):
            rev = pod_revision(p)
            if rev == current_revision:
                st.current += 1
            if rev == update_revision:
                st.updated += 1
    return st


def complete_rolling_update(sts: Obj, status: Obj) -> None:
    """When every replica is updated and ready, the update revision becomes the current one."""
    strategy = ((sts.get("spec") or {}).get("updateStrategy") or {}).get("type")
    if (strategy == "RollingUpdate" and status.get("updatedReplicas", 0) == status.get("replicas", 0)
            and status.get("readyReplicas", 0) == status.get("replicas", 0)):
        status["currentReplicas"] = status.get("updatedReplicas", 0)
        status["currentRevision"] = status.get("updateRevision", "")


# --- the controller ------------------------------------------------------------------------

class StatefulSetController:
    """Reconciles StatefulSets against their pods and revisions."""

    name = "statefulset"

    def __init__(self, client: APIClient, factory: SharedInformerFactory, *, workers: int = 5,
                 recorder: Recorder | None = None, now: Callable[[], _dt.datetime] = meta.now):
        self.client = client
        self.sts_client = client.resource(STATEFULSETS)
        self.pod_client = client.resource(PODS)
        self.sts_informer = factory.informer(STATEFULSETS)
        self.pod_informer = factory.informer(PODS)
        self.rev_informer = factory.informer(CONTROLLERREVISIONS)
        self.pvc_informer = factory.informer(PERSISTENTVOLUMECLAIMS)
        self.history = hist.History(client)
        self.recorder: Recorder = recorder or EventRecorder(client, "statefulset-controller")
        self.workers = workers
        self.now = now
        self.queue = WorkQueue("statefulset")
        self.sts_informer.add_handler(self._add_sts, self._update_sts, self._add_sts)
        self.pod_informer.add_handler(self._add_pod, self._update_pod, self._pod_deleted)

    async def run(self, stop: asyncio.Event) -> None:
        """Start the informers, wait for their first list, run workers until ``stop``."""
        informers = (self.sts_informer, self.pod_informer, self.rev_informer, self.pvc_informer)
        for inf in informers:
            inf.start()
        await asyncio.gather(*(inf.wait_synced() for inf in informers))
        await process_until(self.queue, self.sync, stop, self.workers)

    # -- handlers ---------------------------------------------------------------------------
    def _add_sts(self, sts: Obj) -> None:
        self.queue.add(meta.key(sts))

    def _update_sts(self, old: Obj, cur: Obj) -> None:
        self.queue.add(meta.key(cur))

    def _owner(self, pod: Obj) -> Obj | None:
        return controlling_owner(self.sts_informer, pod, KIND)

    def _matching_sets(self, pod: Obj) -> list[Obj]:
        out = []
        for sts in self.sts_informer.list(meta.namespace(pod)):
            try:
                if selector_matcher((sts.get("spec") or {}).get("selector"))(meta.labels(pod)):
                    out.append(sts)
            except StatusError:
                continue
        return out

    def _add_pod(self, pod: Obj) -> None:
        owner = self._owner(pod)
        if owner is not None:
            self.queue.add(meta.key(owner))
        elif meta.controller_ref(pod) is None:
            for sts in self._matching_sets(pod):
                self.queue.add(meta.key(sts))

    def _update_pod(self, old: Obj, cur: Obj) -> None:
        if meta.resource_version(old) == meta.resource_version(cur):
            return
        old_owner = self._owner(old)
        if old_owner is not None and meta.controller_ref(old) != meta.controller_ref(cur):
            self.queue.add(meta.key(old_owner))
        owner = self._owner(cur)
        if owner is not None:
            self.queue.add(meta.key(owner))
            min_ready = int((owner.get("spec") or {}).get("minReadySeconds") or 0)
            if min_ready > 0 and not is_pod_ready(old) and is_pod_ready(cur):
                self.queue.add_after(meta.key(owner), min_ready + 1)
        elif meta.controller_ref(cur) is None:
            for sts in self._matching_sets(cur):
                self.queue.add(meta.key(sts))

    def _pod_deleted(self, pod: Obj) -> None:
        owner = self._owner(pod)
        if owner is not None:
            self.queue.add(meta.key(owner))

    # -- sync -------------------------------------------------------------------------------
    async def sync(self, key: str) -> None:
        """One step of one StatefulSet toward its spec; writes status."""
        cached = self.sts_informer.get(key)
        if cached is None:
            return
        sts = copy.deepcopy(cached)
        sts.setdefault("kind", KIND)
        sts.setdefault("apiVersion", API_VERSION)
        try:
            matches = selector_matcher((sts.get("spec") or {}).get("selector"))
        except StatusError as e:
            self.recorder.event(sts, "Warning", "InvalidSelector", f"Error parsing selector: {e.message}")
            return
        revisions = await self._claim_revisions(sts, matches)
        pods = await self._claim_pods(sts, matches)
        status, err = await self._update(sts, pods, revisions)
        if status is not None:
            min_ready = int((sts.get("spec") or {}).get("minReadySeconds") or 0)
            if min_ready > 0 and int(status.get("availableReplicas") or 0) != int(sts["spec"].get("replicas", 1)):
                self.queue.add_after(key, min_ready)
        if err is not None:
            raise err

    async def _claim_pods(self, sts: Obj, matches: Callable[[dict[str, str] | None], bool]) -> list[Obj]:
        async def get_fresh() -> Obj:
            return await self.sts_client.get(meta.name(sts), meta.namespace(sts))

        async def patch(pod: Obj, body: Obj) -> Obj:
            return await self.pod_client.patch(meta.name(pod), body, meta.namespace(pod))

        pods = self.pod_informer.list(meta.namespace(sts))
        return await claim(pods, owner=sts, api_version=API_VERSION, kind=KIND,
                           matches=lambda p: matches(meta.labels(p)) and is_member_of(sts, p), patch=patch,
                           can_adopt=lambda: can_adopt_check(get_fresh, sts))

    async def _claim_revisions(self, sts: Obj, matches: Callable[[dict[str, str] | None], bool]) -> list[Obj]:
        """The set's revisions, adopting orphans whose labels match its selector."""
        owned: list[Obj] = []
        for rev in self.rev_informer.list(meta.namespace(sts)):
            ref = meta.controller_ref(rev)
            if ref is not None:
                if ref.get("uid") == meta.uid(sts):
                    owned.append(rev)
                continue
            if meta.is_deleting(sts) or not matches(meta.labels(rev)):
                continue
            refs = list(rev["metadata"].get("ownerReferences") or []) + [
                meta.new_controller_ref(sts, API_VERSION, KIND)]
            try:
                owned.append(await self.history.patch_owner_refs(rev, {"metadata": {
                    "ownerReferences": refs, "uid": meta.uid(rev), "resourceVersion": meta.resource_version(rev)}}))
            except NotFound:
                continue
        return hist.sort_revisions(owned)

    async def _revisions(self, sts: Obj, revisions: list[Obj]) -> tuple[Obj, Obj, int]:
        """getStatefulSetRevisions: (current, update, collisionCount)."""
        collision = int((sts.get("status") or {}).get("collisionCount") or 0)
        data = hist.template_patch(sts)
        labels = ((sts.get("spec") or {}).get("template") or {}).get("metadata", {}).get("labels")
        update = hist.new_revision(sts, KIND, labels, data, hist.next_revision(revisions), collision)
        equal = hist.find_equal_revisions(revisions, update)
        if equal and hist.equal_revision(revisions[-1], equal[-1]):
            update = revisions[-1]
        elif equal:
            update = await self.history.update_revision(equal[-1], int(update["revision"]))
        else:
            update, collision = await self.history.create(sts, update, collision)
        current_name = (sts.get("status") or {}).get("currentRevision")
        current = next((r for r in revisions if meta.name(r) == current_name), None) or update
        return current, update, collision

    async def _update(self, sts: Obj, pods: list[Obj],
                      revisions: list[Obj]) -> tuple[Obj | None, Exception | None]:
        """UpdateStatefulSet: revisions, the pod steps, status, history truncation."""
        current, update, collision = await self._revisions(sts, revisions)
        status, err = await self._update_pods(sts, current, update, collision, pods)
        if status:
            await self._write_status(sts, status)
        try:
            await self._truncate_history(sts, pods, revisions, current, update)
        except StatusError as e:
            err = err or e
        return (status or None), err

    def _status_base(self, sts: Obj, current: Obj, update: Obj, collision: int) -> Obj:
        return {"observedGeneration": int(sts["metadata"].get("generation") or 0),
                "currentRevision": meta.name(current), "updateRevision": meta.name(update),
                "collisionCount": collision}

    def _fill_counts(self, status: Obj, sts: Obj, pods: list[Obj], current: Obj, update: Obj) -> None:
        min_ready = int((sts.get("spec") or {}).get("minReadySeconds") or 0)
        c = compute_replica_status(pods, min_ready, meta.name(current), meta.name(update), self.now())
        status.update(replicas=c.replicas, readyReplicas=c.ready, availableReplicas=c.available,
                      currentReplicas=c.current, updatedReplicas=c.updated)

    async def _update_pods(self, sts: Obj, current: Obj, update: Obj, collision: int,
                           pods: list[Obj]) -> tuple[Obj, StatusError | None]:
        """updateStatefulSet: the status to write, and the error that stopped the step, if any."""
        spec = sts.get("spec") or {}
        now = self.now()
        min_ready = int(spec.get("minReadySeconds") or 0)
        status = self._status_base(sts, current, update, collision)
        self._fill_counts(status, sts, pods, current, update)
        current_tpl, update_tpl = hist.template_of(current), hist.template_of(update)

        replica_count = int(spec.get("replicas", 1))
        replicas: list[Obj | None] = [None] * replica_count
        condemned: list[Obj] = []
        for p in pods:
            if in_ordinal_range(sts, p):
                replicas[ordinal_of(p) - start_ordinal(sts)] = p
            elif ordinal_of(p) >= 0:
                condemned.append(p)
        for i in range(replica_count):
            if replicas[i] is None:
                o = start_ordinal(sts) + i
                if uses_current_revision(sts, o):
                    replicas[i] = new_pod(sts, current_tpl, o, meta.name(current))
                else:
                    replicas[i] = new_pod(sts, update_tpl, o, meta.name(update))
        reps: list[Obj] = [p for p in replicas if p is not None]
        condemned.sort(key=ordinal_of, reverse=True)
        first_unhealthy: Obj | None = next((p for p in reps if is_unavailable(p, min_ready, now)), None)
        if first_unhealthy is None:
            first_unhealthy = next((p for p in reversed(condemned) if is_unavailable(p, min_ready, now)), None)

        if meta.is_deleting(sts):
            return status, None
        try:
            await self._retain_claims(sts, [p for p in reps + condemned if is_created(p)])
        except StatusError as e:
            return status, e
        monotonic = spec.get("podManagementPolicy", "OrderedReady") != "Parallel"

        def finish() -> Obj:
            self._fill_counts(status, sts, reps + condemned, current, update)
            return status

        async def process_replica(i: int) -> bool:
            pod = reps[i]
            if _phase(pod) in ("Failed", "Succeeded"):
                if not is_terminating(pod):
                    await self._delete_pod(sts, pod)
                return True
            if not is_created(pod):
                created = await self._create_pod(sts, pod)
                if created is not None:
                    reps[i] = created
                return monotonic
            if is_terminating(pod) and monotonic:
                return True
            if not is_running_and_ready(pod) and monotonic:
                return True
            if not is_running_and_available(pod, min_ready, now) and monotonic:
                return True
            if identity_matches(sts, pod) and storage_matches(sts, pod):
                return False
            await self._fix_identity(sts, pod)
            return False

        try:
            if await _run_for_all(len(reps), process_replica, monotonic):
                return finish(), None

            async def process_condemned(i: int) -> bool:
                pod = condemned[i]
                if is_terminating(pod):
                    return monotonic
                if monotonic and pod is not first_unhealthy and (
                        not is_running_and_ready(pod) or not is_running_and_available(pod, min_ready, now)):
                    return True
                await self._delete_pod(sts, pod)
                return True

            if await _run_for_all(len(condemned), process_condemned, monotonic):
                return finish(), None
            finish()
            if (spec.get("updateStrategy") or {}).get("type") == "OnDelete":
                return status, None
            for victim in rolling_update_victims(sts, reps, meta.name(update), now):
                try:
                    await self._delete_pod(sts, victim)
                except NotFound:
                    pass
                status["currentReplicas"] = int(status.get("currentReplicas") or 0) - 1
            return status, None
        except StatusError as e:
            return finish(), e

    async def _create_pod(self, sts: Obj, pod: Obj) -> Obj | None:
        """CreateStatefulPod: claims first (when the API serves them), then the pod."""
        await self._create_claims(sts, pod)
        name = meta.name(pod)
        try:
            created = await self.pod_client.create(pod, meta.namespace(sts))
        except AlreadyExists:
            return None  # our cache lags: the next sync sees it
        except StatusError as e:
            self.recorder.event(sts, "Warning", "FailedCreate",
                                f"create Pod {name} in StatefulSet {meta.name(sts)} failed error: {e.message}")
            raise
        self.recorder.event(sts, "Normal", "SuccessfulCreate",
                            f"create Pod {name} in StatefulSet {meta.name(sts)} successful")
        return created

    async def _create_claims(self, sts: Obj, pod: Obj) -> None:
        """Create the pod's missing PersistentVolumeClaims (createPersistentVolumeClaims):
        the template with the set's selector labels, owned as the retention policy says."""
        templates = (sts.get("spec") or {}).get("volumeClaimTemplates") or []
        if not templates:
            return
        claims = self.client.resource(PERSISTENTVOLUMECLAIMS)
        o = ordinal_of(pod)
        for t in templates:
            tname = (t.get("metadata") or {}).get("name")
            if not tname:
                continue
            name = claim_name(tname, sts, o)
            if self.pvc_informer.get(f"{meta.namespace(sts)}/{name}") is not None:
                continue
            tmd = t.get("metadata") or {}
            labels = dict(tmd.get("labels") or {})
            labels.update(((sts.get("spec") or {}).get("selector") or {}).get("matchLabels") or {})
            md: Obj = {"name": name, "labels": labels}
            if tmd.get("annotations"):
                md["annotations"] = dict(tmd["annotations"])
            refs = claim_owner_refs(sts, None, [], condemned=not in_ordinal_range(sts, pod))
            if refs:
                md["ownerReferences"] = refs
            body = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": md,
                    "spec": copy.deepcopy(t.get("spec") or {})}
            try:
                await claims.create(body, meta.namespace(sts))
            except AlreadyExists:
                continue
            except StatusError as e:
                self.recorder.event(sts, "Warning", "FailedCreate",
                                    f"create Claim {name} for Pod {meta.name(pod)} in StatefulSet {meta.name(sts)} "
                                    f"failed error: {e.message}")
                raise
            self.recorder.event(sts, "Normal", "SuccessfulCreate",
                                f"create Claim {name} Pod {meta.name(pod)} in StatefulSet {meta.name(sts)} success")

    async def _retain_claims(self, sts: Obj, pods: list[Obj]) -> None:
        """Bring every existing pod's claims' owner references in line with the retention
        policy (updateClaimOwnerRefForSetAndPod), before any condemned pod is deleted."""
        claims = self.client.resource(PERSISTENTVOLUMECLAIMS)
        ns = meta.namespace(sts)
        for pod in pods:
            if not meta.uid(pod):
                continue
            for t in (sts.get("spec") or {}).get("volumeClaimTemplates") or []:
                tname = (t.get("metadata") or {}).get("name")
                cached = self.pvc_informer.get(f"{ns}/{claim_name(tname, sts, ordinal_of(pod))}") if tname else None
                if cached is None or meta.is_deleting(cached):
                    continue
                have = list(cached["metadata"].get("ownerReferences") or [])
                want = claim_owner_refs(sts, pod, have, condemned=not in_ordinal_range(sts, pod))
                if want == have:
                    continue
                fixed = copy.deepcopy(cached)
                fixed["metadata"]["ownerReferences"] = want
                try:
                    await claims.update(fixed)
                except (Conflict, NotFound):
                    self.queue.add_after(meta.key(sts), 1.0)

    async def _delete_pod(self, sts: Obj, pod: Obj) -> None:
        name = meta.name(pod)
        try:
            await self.pod_client.delete(name, meta.namespace(sts))
        except NotFound:
            return
        except StatusError as e:
            self.recorder.event(sts, "Warning", "FailedDelete",
                                f"delete Pod {name} in StatefulSet {meta.name(sts)} failed error: {e.message}")
            raise
        self.recorder.event(sts, "Normal", "SuccessfulDelete",
                            f"delete Pod {name} in StatefulSet {meta.name(sts)} successful")

    async def _fix_identity(self, sts: Obj, pod: Obj) -> None:
        """UpdateStatefulPod: restore identity labels (and claim volumes cannot change: only labels)."""
        for _ in range(5):
            fixed = copy.deepcopy(pod)
            _update_identity(sts, fixed, ordinal_of(fixed))
            try:
                await self.pod_client.update(fixed)
                self.recorder.event(sts, "Normal", "SuccessfulUpdate",
                                    f"update Pod {meta.name(pod)} in StatefulSet {meta.name(sts)} successful")
                return
            except Conflict:
                pod = await self.pod_client.get(meta.name(pod), meta.namespace(pod))

    async def _write_status(self, sts: Obj, status: Obj) -> None:
        """updateStatefulSetStatus: finish a rollout, then PUT /status only if something changed."""
        complete_rolling_update(sts, status)
        old = sts.get("status") or {}
        keys = ("replicas", "readyReplicas", "currentReplicas", "updatedReplicas", "availableReplicas",
                "currentRevision", "updateRevision", "collisionCount", "observedGeneration")
        if all((old.get(k) or 0) == (status.get(k) or 0) for k in keys):  # omitted means zero
            return
        obj = sts
        for _ in range(2):
            body = dict(obj)
            # Go omits these when zero or empty; replicas, availableReplicas and the
            # collisionCount pointer are always written.
            new_status = {k: v for k, v in status.items()
                          if k in ("replicas", "availableReplicas", "collisionCount") or v not in (None, "", 0)}
            if (obj.get("status") or {}).get("conditions"):
                new_status["conditions"] = obj["status"]["conditions"]
            body["status"] = new_status
            try:
                await self.sts_client.update_status(body)
                return
            except Conflict:
                obj = await self.sts_client.get(meta.name(sts), meta.namespace(sts))

    async def _truncate_history(self, sts: Obj, pods: list[Obj], revisions: list[Obj], current: Obj,
                                update: Obj) -> None:
        live = {meta.name(current), meta.name(update)} | {pod_revision(p) for p in pods}
        limit = int((sts.get("spec") or {}).get("revisionHistoryLimit", 10) or 0)
        for rev in hist.revisions_to_truncate(revisions, live, limit):
            await self.history.delete(rev)


async def _run_for_all(n: int, fn: Callable[[int], Awaitable[bool]], monotonic: bool) -> bool:
    """runForAll: in order, stopping at the first step that says so (OrderedReady), or all at
    once in slow-start batches (Parallel).  True when the sync should stop here."""
    if monotonic:
        for i in range(n):
            if await fn(i):
                return True
        return False
    i, batch = 0, 1
    while i < n:
        chunk = range(i, min(n, i + batch))
        results = await asyncio.gather(*(fn(j) for j in chunk), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]
        i += len(chunk)
        batch *= 2
    return False
