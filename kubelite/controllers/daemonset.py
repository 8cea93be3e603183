"""The DaemonSet controller: one pod on every node the pod template fits.

Wiring as upstream's daemon_controller.go: informers on DaemonSets, pods, nodes and
ControllerRevisions; handlers enqueue DaemonSet keys (every set when a node joins,
leaves or changes labels, taints or schedulability).  One ``sync(key)``:

1. history: the current revision is the one whose data equals the set's template patch
   (created as ``<ds>-<hash>`` when missing, renumbered to be the newest); its hash
   labels new pods (``controller-revision-hash``, plus ``pod-template-generation``);
2. ``manage``: per node, ``node_should_run`` (template nodeName, nodeSelector, required
   node affinity, taints against the tolerations plus the ones upstream adds to every
   daemon pod) decides whether a pod should be created, kept, or deleted; failed pods
   are replaced; extra pods go (the oldest is kept); new pods carry a required node
   affinity on ``metadata.name`` so the scheduler binds them to their node;
3. RollingUpdate (when expectations are met): upstream's two algorithms - without surge,
   delete old pods while fewer than maxUnavailable nodes are unavailable; with surge,
   start a new pod beside an old one on up to maxSurge nodes and delete the old pod once
   the new one is available.  OnDelete leaves old pods alone;
4. history beyond revisionHistoryLimit that no pod uses is deleted; status is written.

The arithmetic (node eligibility, surge and unavailability counts, the rolling-update
choices) is in module functions, testable without a server.
"""
from __future__ import annotations

import asyncio
import copy
import datetime as _dt
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubelite.api import meta
from kubelite.api.nodeselector import terms_match
from kubelite.api.resources import CONTROLLERREVISIONS, DAEMONSETS, NODES, PODS
from kubelite.api.tolerations import tolerates
from kubelite.client.errors import AlreadyExists, Conflict, NotFound, StatusError
from kubelite.client.events import EventRecorder
from kubelite.client.protocols import APIClient, Recorder, SharedInformerFactory
from kubelite.client.workqueue import WorkQueue, process_until
from kubelite.controllers import history as hist
from kubelite.controllers import replicaset_util as rsutil
from kubelite.controllers.deployment.history import compute_hash
from kubelite.controllers.expectations import Expectations
from kubelite.controllers.ownerref import controlling_owner
from kubelite.controllers.podcontrol import (
    PodControl,
    can_adopt_check,
    claim,
    is_pod_available,
    is_pod_ready,
    namespace_terminating,
    pod_key,
    selector_matcher,
)

log = logging.getLogger(__name__)
Obj = dict[str, Any]

KIND = "DaemonSet"
API_VERSION = "apps/v1"
HASH_LABEL = "controller-revision-hash"
GENERATION_LABEL = "pod-template-generation"
TEMPLATE_GENERATION = "deprecated.daemonset.template.generation"
BURST_REPLICAS = 250

# The tolerations every daemon pod gets, so node conditions never evict or block it.
DAEMON_TOLERATIONS = (
    ("node.kubernetes.io/not-ready", "NoExecute"),
    ("node.kubernetes.io/unreachable", "NoExecute"),
    ("node.kubernetes.io/disk-pressure", "NoSchedule"),
    ("node.kubernetes.io/memory-pressure", "NoSchedule"),
    ("node.kubernetes.io/pid-pressure", "NoSchedule"),
    ("node.kubernetes.io/unschedulable", "NoSchedule"),
)
NETWORK_UNAVAILABLE = ("node.kubernetes.io/network-unavailable", "NoSchedule")


# --- pods for nodes ------------------------------------------------------------------------

def add_daemon_tolerations(spec: Obj) -> None:
    """AddOrUpdateDaemonPodTolerations: the automatic tolerations (Exists), replacing same-key ones."""
    wanted = list(DAEMON_TOLERATIONS)
    if spec.get("hostNetwork"):
        wanted.append(NETWORK_UNAVAILABLE)
    tols = list(spec.get("tolerations") or [])
    for key, effect in wanted:
        tol = {"key": key, "operator": "Exists", "effect": effect}
        tols = [t for t in tols if not (t.get("key") == key and t.get("effect") == effect)]
        tols.append(tol)
    spec["tolerations"] = tols


def node_name_affinity(affinity: Obj | None, node: str) -> Obj:
    """ReplaceDaemonSetPodNodeNameNodeAffinity: require ``metadata.name In [node]``, keeping the
    rest of the affinity."""
    term = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}
    out = copy.deepcopy(affinity) if affinity else {}
    na = out.setdefault("nodeAffinity", {})
    req = na.get("requiredDuringSchedulingIgnoredDuringExecution")
    if req is None:
        na["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": [term]}
    else:
        req["nodeSelectorTerms"] = [term]
    return out


def target_node(pod: Obj) -> str:
    """GetTargetNodeName: spec.nodeName, or the node a daemon pod's affinity pins it to."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return str(spec["nodeName"])
    req = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
           .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    for term in req.get("nodeSelectorTerms") or []:
        for f in term.get("matchFields") or []:
            if f.get("key") == "metadata.name" and f.get("operator") == "In" and len(f.get("values") or []) == 1:
                return str(f["values"][0])
    return ""


def _untolerated(taints: list[Obj], tols: list[Obj], effects: tuple[str, ...]) -> bool:
    return any(t.get("effect") in effects and not any(tolerates(tol, t) for tol in tols) for t in taints)


def fits_node_affinity(pod_spec: Obj, node: Obj) -> bool:
    """nodeSelector and required node affinity (terms ORed, expressions ANDed)."""
    labels = meta.labels(node)
    if any(labels.get(k) != v for k, v in (pod_spec.get("nodeSelector") or {}).items()):
        return False
    req = (((pod_spec.get("affinity") or {}).get("nodeAffinity") or {})
           .get("requiredDuringSchedulingIgnoredDuringExecution"))
    if req is None:
        return True
    return terms_match(req.get("nodeSelectorTerms") or [], node)


def node_should_run(node: Obj, ds: Obj) -> tuple[bool, bool]:
    """NodeShouldRunDaemonPod: (should run a new pod, may keep a running one)."""
    template_spec = copy.deepcopy(((ds.get("spec") or {}).get("template") or {}).get("spec") or {})
    if template_spec.get("nodeName") and template_spec["nodeName"] != meta.name(node):
        return False, False
    add_daemon_tolerations(template_spec)
    if not fits_node_affinity(template_spec, node):
        return False, False
    taints = (node.get("spec") or {}).get("taints") or []
    tols = template_spec.get("tolerations") or []
    if _untolerated(taints, tols, ("NoSchedule", "NoExecute")):
        # A running pod stays as long as it tolerates the NoExecute taints.
        return False, not _untolerated(taints, tols, ("NoExecute",))
    return True, True


# --- arithmetic ----------------------------------------------------------------------------

def scaled_value(v: Any, total: int, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent."""
    if isinstance(v, str) and v.endswith("%"):
        num = int(v[:-1]) * total
        return -(-num // 100) if round_up else num // 100
    return int(v or 0)


def surge_and_unavailable(ds: Obj, desired: int) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) scaled on the desired node count, rounded up; both 0 means
    unavailable 1 (upstream's fallback for an impossible configuration)."""
    strategy = (ds.get("spec") or {}).get("updateStrategy") or {}
    if strategy.get("type") != "RollingUpdate":
        return 0, 0
    ru = strategy.get("rollingUpdate") or {}
    surge = scaled_value(ru.get("maxSurge") or 0, desired, True)
    unavailable = scaled_value(ru.get("maxUnavailable") or 0, desired, True)
    if desired > 0 and surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def template_generation(ds: Obj) -> int | None:
    """The deprecated template generation (None when absent or unreadable)."""
    try:
        return int(meta.annotations_of(ds)[TEMPLATE_GENERATION])
    except (KeyError, ValueError):
        return None


def is_pod_updated(pod: Obj, hash_: str, generation: int | None) -> bool:
    """IsPodUpdated: the pod carries the current hash, or the current template generation."""
    labels = meta.labels(pod)
    if generation is not None and labels.get(GENERATION_LABEL) == str(generation):
        return True
    return bool(hash_) and labels.get(HASH_LABEL) == hash_


def split_updated(pods: list[Obj], hash_: str, generation: int | None) -> tuple[Obj | None, Obj | None, bool]:
    """findUpdatedPodsOnNode: (new pod, old pod, ok); not ok when a node has two of a kind."""
    new: Obj | None = None
    old: Obj | None = None
    for p in pods:
        if meta.is_deleting(p):
            continue
        if is_pod_updated(p, hash_, generation):
            if new is not None:
                return None, None, False
            new = p
        else:
            if old is not None:
                return None, None, False
            old = p
    return new, old, True


def _creation_then_phase(a: Obj, b: Obj) -> int:
    """podByCreationTimestampAndPhase: older first; on a tie, the Running/Ready one first."""
    ta, tb = a["metadata"].get("creationTimestamp") or "", b["metadata"].get("creationTimestamp") or ""
    if ta != tb:
        return -1 if ta < tb else 1
    ra = (a.get("status") or {}).get("phase") == "Running" and is_pod_ready(a)
    rb = (b.get("status") or {}).get("phase") == "Running" and is_pod_ready(b)
    return (rb - ra) if ra != rb else 0


def oldest_first(pods: list[Obj]) -> list[Obj]:
    """Pods sorted as upstream's podByCreationTimestampAndPhase."""
    return sorted(pods, key=functools.cmp_to_key(_creation_then_phase))


@dataclass
class Plan:
    """What a sync decided: pods to delete (by name) and nodes that need a new pod."""

    delete: list[str] = field(default_factory=list)
    create_on: list[str] = field(default_factory=list)


def rolling_update_plan(ds: Obj, nodes: list[Obj], node_pods: dict[str, list[Obj]], hash_: str,
                        now: _dt.datetime) -> Plan:
    """The rollingUpdate step: which old pods to delete and, when surging, where to start new ones.

    ``node_pods`` maps node names to the set's pods there (nodes without pods may be absent)."""
    min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
    gen = template_generation(ds)
    node_pods = {k: list(v) for k, v in node_pods.items()}
    by_name = {meta.name(n): n for n in nodes}
    desired = 0
    for n in nodes:
        if node_should_run(n, ds)[0]:
            desired += 1
            node_pods.setdefault(meta.name(n), [])
    surge, unavailable_max = surge_and_unavailable(ds, desired)
    plan = Plan()

    def available(p: Obj) -> bool:
        return is_pod_available(p, min_ready, now)

    if surge == 0:
        unavailable = 0
        replace: list[str] = []
        candidates: list[str] = []
        for name in sorted(node_pods):
            new, old, ok = split_updated(node_pods[name], hash_, gen)
            if not ok:
                unavailable += 1
                continue
            if (old is None and new is None) or (old is not None and new is not None):
                unavailable += 1
            elif new is not None:
                if not available(new):
                    unavailable += 1
            elif old is not None:
                if not available(old):
                    replace.append(meta.name(old))
                    unavailable += 1
                elif unavailable >= unavailable_max:
                    continue
                else:
                    candidates.append(meta.name(old))
        room = min(max(unavailable_max - unavailable, 0), len(candidates))
        plan.delete = replace + candidates[:room]
        return plan

    surged = 0
    available_count = 0
    allowed_new: list[str] = []
    candidate_new: list[str] = []
    should_not_run: list[str] = []
    for name in sorted(node_pods):
        new, old, ok = split_updated(node_pods[name], hash_, gen)
        if not ok:
            surged += 1
            continue
        if old is not None:
            available_count += available(old)
        elif new is not None:
            available_count += available(new)
        if old is None:
            continue
        node = by_name.get(name)
        if new is None:
            runs = node is not None and node_should_run(node, ds)[0]
            if not available(old):
                if not runs:
                    plan.delete.append(meta.name(old))
                    continue
                allowed_new.append(name)
            else:
                if not runs:
                    should_not_run.append(meta.name(old))
                    continue
                if surged >= surge:
                    continue
                candidate_new.append(name)
        else:
            if not available(new):
                surged += 1
                continue
            plan.delete.append(meta.name(old))
    # With surge the owner expects full availability: pods on nodes that should no longer
    # run one go only once enough pods elsewhere are available.
    deletable = min(available_count - desired, len(should_not_run))
    if deletable > 0:
        plan.delete += should_not_run[:deletable]
    room = min(max(surge - surged, 0), len(candidate_new))
    plan.create_on = allowed_new + candidate_new[:room]
    return plan


def manage_plan(ds: Obj, nodes: list[Obj], node_pods: dict[str, list[Obj]], hash_: str,
                now: _dt.datetime) -> tuple[Plan, list[Obj]]:
    """podsShouldBeOnNode over every node, plus pods pinned to nodes that no longer exist.

    Returns the plan and the failed pods it deletes (for the FailedDaemonPod event)."""
    plan = Plan()
    failed: list[Obj] = []
    min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
    ru = ((ds.get("spec") or {}).get("updateStrategy") or {})
    allows_surge = ru.get("type") == "RollingUpdate" and scaled_value(
        (ru.get("rollingUpdate") or {}).get("maxSurge") or 0, 100, True) != 0
    known = set()
    for node in nodes:
        name = meta.name(node)
        known.add(name)
        should_run, keep = node_should_run(node, ds)
        pods = node_pods.get(name)
        if should_run and not pods:
            plan.create_on.append(name)
            continue
        if keep:
            running: list[Obj] = []
            for p in pods or []:
                if meta.is_deleting(p):
                    continue
                phase = (p.get("status") or {}).get("phase")
                if phase == "Failed":
                    failed.append(p)
                    plan.delete.append(meta.name(p))
                elif phase == "Succeeded":
                    plan.delete.append(meta.name(p))
                else:
                    running.append(p)
            if not allows_surge:
                if len(running) > 1:
                    plan.delete += [meta.name(p) for p in oldest_first(running)[1:]]
                continue
            if len(running) <= 1:
                if not running and should_run:
                    plan.create_on.append(name)
                continue
            oldest_new: Obj | None = None
            oldest_old: Obj | None = None
            for p in oldest_first(running):
                if meta.labels(p).get(HASH_LABEL) == hash_:
                    if oldest_new is None:
                        oldest_new = p
                        continue
                elif oldest_old is None:
                    oldest_old = p
                    continue
                plan.delete.append(meta.name(p))
            if oldest_new is not None and oldest_old is not None and (
                    not is_pod_ready(oldest_old) or is_pod_available(oldest_new, min_ready, now)):
                plan.delete.append(meta.name(oldest_old))
        elif pods:
            plan.delete += [meta.name(p) for p in pods if not meta.is_deleting(p)]
    for name, pods in node_pods.items():
        if name in known:
            continue
        # Unscheduled pods aimed at a node that is gone.
        plan.delete += [meta.name(p) for p in pods
                        if not (p.get("spec") or {}).get("nodeName") and not meta.is_deleting(p)]
    return plan, failed


@dataclass
class DaemonStatus:
    """The counters of DaemonSetStatus."""

    desired: int = 0
    current: int = 0
    misscheduled: int = 0
    ready: int = 0
    updated: int = 0
    available: int = 0


def compute_status(ds: Obj, nodes: list[Obj], node_pods: dict[str, list[Obj]], hash_: str,
                   now: _dt.datetime) -> DaemonStatus:
    """updateDaemonSetStatus's counts, judged on the oldest pod of each node."""
    st = DaemonStatus()
    min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
    gen = template_generation(ds)
    for node in nodes:
        should_run, _ = node_should_run(node, ds)
        pods = node_pods.get(meta.name(node)) or []
        if not should_run:
            st.misscheduled += bool(pods)
            continue
        st.desired += 1
        if not pods:
            continue
        st.current += 1
        pod = oldest_first(pods)[0]
        if is_pod_ready(pod):
            st.ready += 1
            if is_pod_available(pod, min_ready, now):
                st.available += 1
        if is_pod_updated(pod, hash_, gen):
            st.updated += 1
    return st


class FailedPodBackoff:
    """Per (DaemonSet, node) back-off for replacing failed pods: 1 s doubling to 15 min, so a
    node that keeps rejecting the pod is not hot-looped (upstream's failedPodsBackoff)."""

    INITIAL = 1.0
    MAX = 15 * 60.0

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, float]] = {}  # key -> (delay, last update)

    def in_backoff(self, key: str, now: float) -> float:
        """Seconds left to wait (0 when a replacement may happen now)."""
        entry = self._entries.get(key)
        if entry is None:
            return 0.0
        delay, last = entry
        return max(0.0, last + delay - now)

    def next(self, key: str, now: float) -> None:
        """Record a replacement: the next one waits twice as long (reset after a quiet spell)."""
        entry = self._entries.get(key)
        if entry is None or now - entry[1] > 2 * self.MAX:
            self._entries[key] = (self.INITIAL, now)
        else:
            self._entries[key] = (min(entry[0] * 2, self.MAX), now)


# --- the controller ------------------------------------------------------------------------

class DaemonSetController:
    """Reconciles DaemonSets against nodes, pods and revisions."""

    name = "daemonset"

    def __init__(self, client: APIClient, factory: SharedInformerFactory, *, workers: int = 2,
                 recorder: Recorder | None = None, now: Callable[[], _dt.datetime] = meta.now):
        self.ds_client = client.resource(DAEMONSETS)
        self.pod_client = client.resource(PODS)
        self.ds_informer = factory.informer(DAEMONSETS)
        self.pod_informer = factory.informer(PODS)
        self.node_informer = factory.informer(NODES)
        self.rev_informer = factory.informer(CONTROLLERREVISIONS)
        self.history = hist.History(client)
        self.recorder: Recorder = recorder or EventRecorder(client, "daemonset-controller")
        self.pod_control = PodControl(client, self.recorder)
        self.expectations = Expectations()
        self.failed_backoff = FailedPodBackoff()
        self.workers = workers
        self.now = now
        self.queue = WorkQueue("daemonset")
        self.ds_informer.add_handler(self._enqueue, lambda old, cur: self._enqueue(cur), self._ds_deleted)
        self.pod_informer.add_handler(self._add_pod, self._update_pod, self._pod_deleted)
        self.node_informer.add_handler(self._node_changed, self._update_node, self._node_changed)

    async def run(self, stop: asyncio.Event) -> None:
        """Start the informers, wait for their first list, run workers until ``stop``."""
        informers = (self.ds_informer, self.pod_informer, self.node_informer, self.rev_informer)
        for inf in informers:
            inf.start()
        await asyncio.gather(*(inf.wait_synced() for inf in informers))
        await process_until(self.queue, self.sync, stop, self.workers)

    # -- handlers ---------------------------------------------------------------------------
    def _enqueue(self, ds: Obj) -> None:
        self.queue.add(meta.key(ds))

    def _ds_deleted(self, ds: Obj) -> None:
        self.expectations.delete(meta.key(ds))
        self.queue.add(meta.key(ds))

    def _owner(self, pod: Obj) -> Obj | None:
        return controlling_owner(self.ds_informer, pod, KIND)

    def _orphan_owners(self, pod: Obj) -> list[Obj]:
        out = []
        for ds in self.ds_informer.list(meta.namespace(pod)):
            try:
                if selector_matcher((ds.get("spec") or {}).get("selector"))(meta.labels(pod)):
                    out.append(ds)
            except StatusError:
                continue
        return out

    def _add_pod(self, pod: Obj) -> None:
        if meta.is_deleting(pod):
            self._pod_deleted(pod)
            return
        owner = self._owner(pod)
        if owner is not None:
            self.expectations.creation_observed(meta.key(owner))
            self.queue.add(meta.key(owner))
        elif meta.controller_ref(pod) is None:
            for ds in self._orphan_owners(pod):
                self.queue.add(meta.key(ds))

    def _update_pod(self, old: Obj, cur: Obj) -> None:
        if meta.resource_version(old) == meta.resource_version(cur):
            return
        if meta.is_deleting(cur):
            self._pod_deleted(cur)
            return
        owner = self._owner(cur)
        if owner is not None:
            self.queue.add(meta.key(owner))
            min_ready = int((owner.get("spec") or {}).get("minReadySeconds") or 0)
            if min_ready > 0 and not is_pod_ready(old) and is_pod_ready(cur):
                self.queue.add_after(meta.key(owner), min_ready + 1)
        elif meta.controller_ref(cur) is None:
            for ds in self._orphan_owners(cur):
                self.queue.add(meta.key(ds))

    def _pod_deleted(self, pod: Obj) -> None:
        owner = self._owner(pod)
        if owner is not None:
            self.expectations.deletion_observed(meta.key(owner), pod_key(pod))
            self.queue.add(meta.key(owner))

    def _node_changed(self, node: Obj) -> None:
        for ds in self.ds_informer.list():
            self.queue.add(meta.key(ds))

    def _update_node(self, old: Obj, cur: Obj) -> None:
        def shape(n: Obj) -> tuple[Any, ...]:
            spec = n.get("spec") or {}
            return (meta.labels(n), spec.get("taints"), spec.get("unschedulable"))
        if shape(old) != shape(cur):
            self._node_changed(cur)

    # -- sync -------------------------------------------------------------------------------
    async def sync(self, key: str) -> None:
        """One step of one DaemonSet: history, pods per node, rolling update, status."""
        cached = self.ds_informer.get(key)
        if cached is None:
            self.expectations.delete(key)
            return
        ds = copy.deepcopy(cached)
        ds.setdefault("kind", KIND)
        ds.setdefault("apiVersion", API_VERSION)
        sel = (ds.get("spec") or {}).get("selector") or {}
        if not sel.get("matchLabels") and not sel.get("matchExpressions"):
            self.recorder.event(ds, "Warning", "SelectingAll",
                                "This daemon set is selecting all pods. A non-empty selector is required.")
            return
        try:
            matches = selector_matcher(sel)
        except StatusError:
            return
        if meta.is_deleting(ds):
            return
        nodes = self.node_informer.list()
        cur, old = await self._construct_history(ds, matches)
        hash_ = meta.labels(cur).get(HASH_LABEL, "")
        node_pods = await self._node_pods(ds, matches)
        if not self.expectations.satisfied(key):
            await self._write_status(ds, nodes, node_pods, hash_, observe=False)
            return
        plan, failed = manage_plan(ds, nodes, node_pods, hash_, self.now())
        clock = time.monotonic()
        for p in failed:
            bkey = f"{meta.uid(ds)}/{target_node(p)}"
            wait = self.failed_backoff.in_backoff(bkey, clock)
            if wait > 0:
                plan.delete.remove(meta.name(p))
                self.queue.add_after(key, wait)
                continue
            self.failed_backoff.next(bkey, clock)
            self.recorder.event(ds, "Warning", "FailedDaemonPod",
                                f"Found failed daemon pod {pod_key(p)} on node {target_node(p)}, will try to kill it")
        await self._sync_nodes(ds, plan, node_pods, hash_)
        if self.expectations.satisfied(key) and \
                ((ds.get("spec") or {}).get("updateStrategy") or {}).get("type") == "RollingUpdate":
            node_pods = await self._node_pods(ds, matches)
            plan = rolling_update_plan(ds, nodes, node_pods, hash_, self.now())
            await self._sync_nodes(ds, plan, node_pods, hash_)
        await self._cleanup_history(ds, old, node_pods)
        await self._write_status(ds, nodes, await self._node_pods(ds, matches), hash_, observe=True)

    async def _node_pods(self, ds: Obj, matches: Callable[[dict[str, str] | None], bool]) -> dict[str, list[Obj]]:
        """The set's claimed pods grouped by target node (terminal pods being deleted left out)."""
        async def get_fresh() -> Obj:
            return await self.ds_client.get(meta.name(ds), meta.namespace(ds))

        async def patch(pod: Obj, body: Obj) -> Obj:
            return await self.pod_client.patch(meta.name(pod), body, meta.namespace(pod))

        pods = await claim(self.pod_informer.list(meta.namespace(ds)), owner=ds, api_version=API_VERSION, kind=KIND,
                           matches=lambda p: matches(meta.labels(p)), patch=patch,
                           can_adopt=lambda: can_adopt_check(get_fresh, ds))
        out: dict[str, list[Obj]] = {}
        for p in pods:
            phase = (p.get("status") or {}).get("phase")
            if meta.is_deleting(p) and phase in ("Succeeded", "Failed"):
                continue
            node = target_node(p)
            if node:
                out.setdefault(node, []).append(p)
        return out

    async def _construct_history(self, ds: Obj, matches: Callable[[dict[str, str] | None], bool]) -> tuple[Obj, list[Obj]]:
        """constructHistory: the current revision (made or renumbered) and the old ones."""
        revs: list[Obj] = []
        for rev in self.rev_informer.list(meta.namespace(ds)):
            ref = meta.controller_ref(rev)
            if ref is not None:
                if ref.get("uid") == meta.uid(ds):
                    revs.append(rev)
                continue
            if not matches(meta.labels(rev)):
                continue
            refs = list(rev["metadata"].get("ownerReferences") or []) + [meta.new_controller_ref(ds, API_VERSION, KIND)]
            try:
                revs.append(await self.history.patch_owner_refs(rev, {"metadata": {
                    "ownerReferences": refs, "uid": meta.uid(rev), "resourceVersion": meta.resource_version(rev)}}))
            except NotFound:
                continue
        data = hist.template_patch(ds)
        current = [r for r in revs if hist.go_json(r.get("data")) == hist.go_json(data)]
        old = [r for r in revs if r not in current]
        next_rev = max((int(r.get("revision") or 0) for r in old), default=0) + 1
        if not current:
            return await self._snapshot(ds, data, next_rev), old
        current = hist.sort_revisions(current)
        keep = current[-1]
        for dup in current[:-1]:
            await self.history.delete(dup)
        if int(keep.get("revision") or 0) < next_rev:
            keep = await self.history.update_revision(keep, next_rev)
        return keep, old

    async def _snapshot(self, ds: Obj, data: Obj, revision: int) -> Obj:
        """A new revision ``<ds>-<hash>``; a clash with different data bumps collisionCount."""
        collision = (ds.get("status") or {}).get("collisionCount")
        template = (ds.get("spec") or {}).get("template") or {}
        h = compute_hash(template, collision)
        labels = dict((template.get("metadata") or {}).get("labels") or {})
        labels[HASH_LABEL] = h
        md: Obj = {"name": f"{meta.name(ds)}-{h}", "namespace": meta.namespace(ds), "labels": labels,
                   "ownerReferences": [meta.new_controller_ref(ds, API_VERSION, KIND)]}
        if (ds["metadata"].get("annotations")):
            md["annotations"] = dict(ds["metadata"]["annotations"])
        body = {"apiVersion": API_VERSION, "kind": "ControllerRevision", "metadata": md, "data": data,
                "revision": revision}
        try:
            return await self.history.revisions.create(body, meta.namespace(ds))
        except AlreadyExists:
            existing = await self.history.revisions.get(md["name"], meta.namespace(ds))
            if hist.go_json(existing.get("data")) == hist.go_json(data):
                return existing
            fresh = await self.ds_client.get(meta.name(ds), meta.namespace(ds))
            fresh["status"] = dict(fresh.get("status") or {})
            fresh["status"]["collisionCount"] = int(fresh["status"].get("collisionCount") or 0) + 1
            await self.ds_client.update_status(fresh)
            raise Conflict(409, "Conflict", f"found a stale revision {md['name']} for DaemonSet {meta.key(ds)}; "
                                            "collisionCount increased") from None

    async def _sync_nodes(self, ds: Obj, plan: Plan, node_pods: dict[str, list[Obj]], hash_: str) -> None:
        """syncNodes: create pods on ``plan.create_on`` and delete ``plan.delete`` (bounded by burst)."""
        key = meta.key(ds)
        creates = plan.create_on[:BURST_REPLICAS]
        deletes = list(dict.fromkeys(plan.delete))[:BURST_REPLICAS]
        if not creates and not deletes:
            return
        ns = meta.namespace(ds)
        self.expectations.expect(key, len(creates), [f"{ns}/{n}" for n in deletes])
        template = copy.deepcopy((ds.get("spec") or {}).get("template") or {})
        add_daemon_tolerations(template.setdefault("spec", {}))
        labels = dict((template.get("metadata") or {}).get("labels") or {})
        gen = template_generation(ds)
        if gen is not None:
            labels[GENERATION_LABEL] = str(gen)
        labels[HASH_LABEL] = hash_
        template.setdefault("metadata", {})["labels"] = labels
        ref = meta.new_controller_ref(ds, API_VERSION, KIND)
        errors: list[Exception] = []
        names = iter(creates)

        async def create_one() -> None:
            node = next(names)
            t = copy.deepcopy(template)
            t["spec"]["affinity"] = node_name_affinity(t["spec"].get("affinity"), node)
            try:
                await self.pod_control.create_pod(ns, t, ds, ref)
            except StatusError as e:
                if namespace_terminating(e):
                    return
                raise
        if creates:
            done, err = await rsutil.slow_start_batch(len(creates), rsutil.SLOW_START_INITIAL_BATCH, create_one)
            for _ in range(len(creates) - done):
                self.expectations.creation_observed(key)
            if err is not None:
                errors.append(err)

        async def delete_one(name: str) -> None:
            try:
                await self.pod_control.delete_pod(ns, name, ds)
            except NotFound:
                self.expectations.deletion_observed(key, f"{ns}/{name}")
            except StatusError as e:
                self.expectations.deletion_observed(key, f"{ns}/{name}")
                errors.append(e)
        await asyncio.gather(*(delete_one(n) for n in deletes))
        if errors:
            raise errors[0]

    async def _cleanup_history(self, ds: Obj, old: list[Obj], node_pods: dict[str, list[Obj]]) -> None:
        """Delete the oldest revisions beyond revisionHistoryLimit whose hash no pod carries."""
        limit = int((ds.get("spec") or {}).get("revisionHistoryLimit", 10) or 0)
        to_kill = len(old) - limit
        if to_kill <= 0:
            return
        live = {meta.labels(p).get(HASH_LABEL) for pods in node_pods.values() for p in pods}
        for rev in hist.sort_revisions(old):
            if to_kill <= 0:
                break
            if meta.labels(rev).get(HASH_LABEL) in live:
                continue
            await self.history.delete(rev)
            to_kill -= 1

    async def _write_status(self, ds: Obj, nodes: list[Obj], node_pods: dict[str, list[Obj]], hash_: str,
                            *, observe: bool) -> None:
        """storeDaemonSetStatus: PUT /status when a counter (or observedGeneration) moved."""
        st = compute_status(ds, nodes, node_pods, hash_, self.now())
        want = {"desiredNumberScheduled": st.desired, "currentNumberScheduled": st.current,
                "numberMisscheduled": st.misscheduled, "numberReady": st.ready,
                "updatedNumberScheduled": st.updated, "numberAvailable": st.available,
                "numberUnavailable": st.desired - st.available}
        gen = int(ds["metadata"].get("generation") or 0)
        old = ds.get("status") or {}
        if all(int(old.get(k) or 0) == v for k, v in want.items()) and int(old.get("observedGeneration") or 0) >= gen:
            return
        obj = ds
        for _ in range(2):
            status = dict(obj.get("status") or {})
            status.update(want)
            if observe:
                status["observedGeneration"] = gen
            for k in ("updatedNumberScheduled", "numberAvailable", "numberUnavailable"):
                if not status.get(k):
                    status.pop(k, None)  # omitempty upstream
            body = dict(obj)
            body["status"] = status
            try:
                await self.ds_client.update_status(body)
                break
            except Conflict:
                obj = await self.ds_client.get(meta.name(ds), meta.namespace(ds))
        min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
        if min_ready > 0 and st.ready != st.available:
            self.queue.add_after(meta.key(ds), min_ready)
