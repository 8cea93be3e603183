"""Node lifecycle: node health from Leases, condition taints, NoExecute eviction, pod GC.

Upstream twins: ``pkg/controller/nodelifecycle/node_lifecycle_controller.go`` (health and
taints), ``pkg/controller/tainteviction/taint_eviction.go`` (evicting pods from NoExecute
nodes) and the orphaned-pod part of ``pkg/controller/podgc/gc_controller.go``.

- ``NodeLifecycleController`` keeps a probe time per node, moved forward whenever the
  node's Lease in ``kube-node-lease`` is renewed or its Ready heartbeat changes (a node
  first seen gets a fresh grace period).  Past the grace period (40 s; 60 s for a node
  that never posted Ready) it writes Ready/MemoryPressure/DiskPressure/PIDPressure as
  Unknown through nodes/status.  Taints follow the conditions: NoSchedule taints for
  every condition upstream maps (not-ready, unreachable, pressures, network) and
  ``spec.unschedulable``; NoExecute ``unreachable`` / ``not-ready`` from Ready, unless
  every zone is fully disrupted (then none at all, so a cluster that lost its whole
  network does not evict everything) or the node's small zone is partially disrupted
  (then no new ones).  Upstream's per-zone eviction rate limiter is not modelled.
- ``TaintEvictionController`` deletes pods on NoExecute-tainted nodes once the shortest
  matching tolerationSeconds has passed since it first saw the taint (at once when some
  taint is not tolerated; never when tolerated forever), with the DisruptionTarget
  condition and a ``TaintManagerEviction`` event.
- ``PodGCController`` force-deletes pods bound to a node that does not exist (after a
  quarantine, confirmed by a live GET), marking them Failed first.
"""
from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kubelite.api import meta
from kubelite.api.resources import LEASES, NODES, PODS
from kubelite.api.tolerations import tolerates
from kubelite.client.errors import Conflict, NotFound
from kubelite.client.events import NORMAL, EventRecorder
from kubelite.client.protocols import APIClient, SharedInformerFactory
from kubelite.client.supervise import supervise
from kubelite.client.workqueue import WorkQueue, process_until

log = logging.getLogger(__name__)
Obj = dict[str, Any]

LEASE_NAMESPACE = "kube-node-lease"
NODE_MONITOR_PERIOD = 5.0
NODE_MONITOR_GRACE_PERIOD = 40.0
NODE_STARTUP_GRACE_PERIOD = 60.0
UNHEALTHY_ZONE_THRESHOLD = 0.55
LARGE_CLUSTER_THRESHOLD = 50

TAINT_NOT_READY = "node.kubernetes.io/not-ready"
TAINT_UNREACHABLE = "node.kubernetes.io/unreachable"
TAINT_UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
NO_SCHEDULE = "NoSchedule"
NO_EXECUTE = "NoExecute"
# Upstream's nodeConditionToTaintKeyStatusMap: condition → status → NoSchedule taint key.
CONDITION_TAINTS = {
    "Ready": {"False": TAINT_NOT_READY, "Unknown": TAINT_UNREACHABLE},
    "MemoryPressure": {"True": "node.kubernetes.io/memory-pressure"},
    "DiskPressure": {"True": "node.kubernetes.io/disk-pressure"},
    "NetworkUnavailable": {"True": "node.kubernetes.io/network-unavailable"},
    "PIDPressure": {"True": "node.kubernetes.io/pid-pressure"},
}
MANAGED_NO_SCHEDULE = {k for m in CONDITION_TAINTS.values() for k in m.values()} | {TAINT_UNSCHEDULABLE}
MANAGED_NO_EXECUTE = {TAINT_NOT_READY, TAINT_UNREACHABLE}
UNKNOWN_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")

NORMAL_ZONE, PARTIAL_DISRUPTION, FULL_DISRUPTION = "Normal", "PartialDisruption", "FullDisruption"


# -- pure helpers ---------------------------------------------------------------------------
def condition(node: Obj, type_: str) -> Obj | None:
    """The node condition of a type, if present."""
    for c in (node.get("status") or {}).get("conditions") or []:
        if c.get("type") == type_:
            return c
    return None


def ready_status(node: Obj) -> str | None:
    """Ready's status ('True', 'False', 'Unknown') or None when never posted."""
    c = condition(node, "Ready")
    return c.get("status") if c else None


def mark_unknown(node: Obj, now: str) -> bool:
    """Set the kubelet's conditions to Unknown in place (upstream wording); True if anything changed."""
    conds = node.setdefault("status", {}).setdefault("conditions", [])
    changed = False
    for t in UNKNOWN_CONDITIONS:
        c = condition(node, t)
        if c is None:
            conds.append({"type": t, "status": "Unknown", "reason": "NodeStatusNeverUpdated",
                          "message": "Kubelet never posted node status.",
                          "lastHeartbeatTime": node["metadata"].get("creationTimestamp"), "lastTransitionTime": now})
            changed = True
        elif c.get("status") != "Unknown":
            c.update(status="Unknown", reason="NodeStatusUnknown", message="Kubelet stopped posting node status.",
                     lastTransitionTime=now)
            changed = True
    return changed


def zone_of(node: Obj) -> str:
    """Upstream's zone key: region and zone labels joined by ':\\x00:'."""
    labels = meta.labels(node)
    region = labels.get("topology.kubernetes.io/region", "")
    zone = labels.get("topology.kubernetes.io/zone", "")
    return f"{region}:\x00:{zone}" if region or zone else ""


def zone_state(ready: Iterable[str | None], threshold: float = UNHEALTHY_ZONE_THRESHOLD) -> str:
    """Normal, PartialDisruption or FullDisruption from the Ready statuses of a zone's nodes."""
    statuses = [s for s in ready if s is not None]
    ok = sum(1 for s in statuses if s == "True")
    bad = len(statuses) - ok
    if ok == 0 and bad > 0:
        return FULL_DISRUPTION
    if bad > 2 and bad / (ok + bad) >= threshold:
        return PARTIAL_DISRUPTION
    return NORMAL_ZONE


def wanted_no_schedule(node: Obj) -> set[str]:
    """NoSchedule taint keys the node's conditions and spec.unschedulable call for."""
    keys = set()
    for c in (node.get("status") or {}).get("conditions") or []:
        key = CONDITION_TAINTS.get(c.get("type", ""), {}).get(c.get("status", ""))
        if key:
            keys.add(key)
    if (node.get("spec") or {}).get("unschedulable"):
        keys.add(TAINT_UNSCHEDULABLE)
    return keys


def wanted_no_execute(node: Obj, mode: str) -> set[str]:
    """NoExecute taint keys from Ready; mode is 'allow', 'hold' (no new ones) or 'none'."""
    current = {t["key"] for t in (node.get("spec") or {}).get("taints") or []
               if t.get("effect") == NO_EXECUTE and t.get("key") in MANAGED_NO_EXECUTE}
    status = ready_status(node)
    if mode == "none" or status == "True":
        return set()
    if status is None:
        return current  # upstream leaves a node that never posted Ready alone
    want = {TAINT_NOT_READY} if status == "False" else {TAINT_UNREACHABLE}
    if mode == "hold":
        # A swap between the two is not a new eviction; otherwise keep what is there.
        return want if current else set()
    return want


def reconcile_taints(current: list[Obj], no_schedule: set[str], no_execute: set[str], now: str) -> list[Obj]:
    """The node's taints with controller-managed ones set to exactly the wanted keys."""
    want = {(k, NO_SCHEDULE) for k in no_schedule} | {(k, NO_EXECUTE) for k in no_execute}
    managed = {(k, NO_SCHEDULE) for k in MANAGED_NO_SCHEDULE} | {(k, NO_EXECUTE) for k in MANAGED_NO_EXECUTE}
    keep = [t for t in current if (t.get("key"), t.get("effect")) not in managed or (t.get("key"), t.get("effect")) in want]
    have = {(t.get("key"), t.get("effect")) for t in keep}
    return keep + [{"key": k, "effect": e, "timeAdded": now} for k, e in sorted(want - have)]


def min_toleration_seconds(tolerations: list[Obj], taints: list[Obj]) -> float | None:
    """Seconds until eviction for pods on NoExecute ``taints``: 0 at once, None never.

    Each taint must be tolerated (else 0); the shortest tolerationSeconds among the
    tolerations used wins; none with tolerationSeconds means tolerated forever."""
    used = []
    for taint in taints:
        match = [t for t in tolerations if tolerates(t, taint)]
        if not match:
            return 0.0
        used.extend(match)
    secs = [t["tolerationSeconds"] for t in used if t.get("tolerationSeconds") is not None]
    if not secs:
        return None
    return float(max(min(secs), 0))


@dataclass
class NodeHealth:
    """What the controller last saw of a node's liveness."""

    probe: float
    heartbeat: str | None
    renew: str | None


# -- node lifecycle -------------------------------------------------------------------------
class NodeLifecycleController:
    """Marks silent nodes Unknown and keeps condition taints in step with node status."""

    def __init__(self, client: APIClient, factory: SharedInformerFactory, *, monitor_period: float = NODE_MONITOR_PERIOD,
                 grace_period: float = NODE_MONITOR_GRACE_PERIOD,
                 startup_grace_period: float = NODE_STARTUP_GRACE_PERIOD,
                 unhealthy_zone_threshold: float = UNHEALTHY_ZONE_THRESHOLD,
                 large_cluster_threshold: int = LARGE_CLUSTER_THRESHOLD):
        self.nodes = factory.informer(NODES)
        self.leases = factory.informer(LEASES, namespace=LEASE_NAMESPACE)
        self._rc = client.resource(NODES)
        self.monitor_period = monitor_period
        self.grace_period = grace_period
        self.startup_grace_period = startup_grace_period
        self.unhealthy_zone_threshold = unhealthy_zone_threshold
        self.large_cluster_threshold = large_cluster_threshold
        self.queue = WorkQueue("node-lifecycle")
        self.health: dict[str, NodeHealth] = {}
        self._all_disrupted = False
        # Zone states from the node cache, recomputed only after a node event: each sync of one
        # node used to read every node's conditions (100 nodes: 10,000 reads per monitor pass).
        self._zones: tuple[dict[str, list[str | None]], dict[str, str]] | None = None
        self.nodes.add_handler(self._node_event, lambda _o, n: self._node_event(n), self._node_deleted)
        self.leases.add_handler(self._lease_event, lambda _o, n: self._lease_event(n), None)

    def _node_event(self, node: Obj) -> None:
        self._zones = None
        self.queue.add(meta.name(node))

    def _node_deleted(self, node: Obj) -> None:
        self._zones = None
        self.health.pop(meta.name(node), None)

    def _lease_event(self, lease: Obj) -> None:
        self.queue.add(meta.name(lease))

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _observe(self, node: Obj) -> float:
        """Move the node's probe time on fresh signs of life; returns its grace period."""
        name = meta.name(node)
        now = self._now()
        ready = condition(node, "Ready")
        heartbeat = ready.get("lastHeartbeatTime") if ready else None
        lease = self.leases.get_by_name(LEASE_NAMESPACE, name)
        renew = ((lease or {}).get("spec") or {}).get("renewTime")
        h = self.health.get(name)
        if h is None:
            self.health[name] = NodeHealth(now, heartbeat, renew)
        else:
            if heartbeat != h.heartbeat:
                h.probe, h.heartbeat = now, heartbeat
            if renew and renew != h.renew:
                h.probe, h.renew = now, renew
        return self.grace_period if ready else self.startup_grace_period

    def _no_execute_mode(self, node: Obj) -> str:
        """'none' in full (all-zone) disruption, 'hold' in a small partially disrupted zone, else 'allow'."""
        if self._zones is None:
            by_zone: dict[str, list[str | None]] = {}
            for n in self.nodes.list():
                by_zone.setdefault(zone_of(n), []).append(ready_status(n))
            self._zones = by_zone, {z: zone_state(s, self.unhealthy_zone_threshold) for z, s in by_zone.items()}
        zones, states = self._zones
        all_disrupted = bool(states) and all(s == FULL_DISRUPTION for s in states.values())
        if self._all_disrupted and not all_disrupted:
            # Leaving master disruption mode: every node gets a fresh grace period, as upstream.
            for h in self.health.values():
                h.probe = self._now()
        self._all_disrupted = all_disrupted
        if all_disrupted:
            return "none"
        zone = zone_of(node)
        if states.get(zone) == PARTIAL_DISRUPTION and len(zones[zone]) <= self.large_cluster_threshold:
            return "hold"
        return "allow"

    async def sync(self, name: str) -> None:
        """Check one node's health, write Unknown conditions if silent, reconcile its taints."""
        cached = self.nodes.get(name)
        if cached is None:
            self.health.pop(name, None)
            return
        node = copy.deepcopy(cached)
        grace = self._observe(node)
        left = self.health[name].probe + grace - self._now()
        if left < 0:
            if mark_unknown(node, meta.rfc3339()):
                log.info("node %s: kubelet stopped posting node status", name)
                node = await self._rc.update_status(node)
        else:
            self.queue.add_after(name, left + 0.05)
        taints = (node.get("spec") or {}).get("taints") or []
        new = reconcile_taints(taints, wanted_no_schedule(node), wanted_no_execute(node, self._no_execute_mode(node)),
                               meta.rfc3339())
        if new != taints:
            patch = {"metadata": {"resourceVersion": meta.resource_version(node)}, "spec": {"taints": new or None}}
            try:
                await self._rc.patch(name, patch)
            except NotFound:
                pass  # the node was deleted meanwhile

    async def _monitor(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            for n in self.nodes.list():
                self.queue.add(meta.name(n))
            try:
                await asyncio.wait_for(stop.wait(), self.monitor_period)
            except TimeoutError:
                pass

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set."""
        self.nodes.start()
        self.leases.start()
        await asyncio.gather(self.nodes.wait_synced(), self.leases.wait_synced())
        # Both end once stop is set; a cancel of run cancels both.
        await asyncio.gather(process_until(self.queue, self.sync, stop),
                             supervise("node-lifecycle monitor", lambda: self._monitor(stop), stop=stop, logger=log))


def _disruption_condition(reason: str, message: str) -> Obj:
    return {"type": "DisruptionTarget", "status": "True", "reason": reason, "message": message,
            "lastTransitionTime": meta.rfc3339()}


def _with_condition(pod: Obj, cond: Obj) -> list[Obj]:
    conds = [c for c in (pod.get("status") or {}).get("conditions") or [] if c.get("type") != cond["type"]]
    return conds + [cond]


# -- taint eviction -------------------------------------------------------------------------
class TaintEvictionController:
    """Evicts pods from nodes with NoExecute taints they do not tolerate (long enough)."""

    def __init__(self, client: APIClient, factory: SharedInformerFactory, *, workers: int = 4):
        self.pods = factory.informer(PODS)
        self.nodes = factory.informer(NODES)
        self._rc = client.resource(PODS)
        self.recorder = EventRecorder(client, "taint-controller")
        self.queue = WorkQueue("taint-eviction")
        self.workers = workers
        self.scheduled: dict[str, float] = {}  # pod key -> when its countdown started
        self.pods.add_handler(self._pod_event, lambda _o, n: self._pod_event(n), self._pod_event)
        self.nodes.add_handler(self._node_event, self._node_update, None)

    def _pod_event(self, pod: Obj) -> None:
        if (pod.get("spec") or {}).get("nodeName") or meta.key(pod) in self.scheduled:
            self.queue.add(meta.key(pod))

    def _node_event(self, node: Obj) -> None:
        if no_execute_taints(node):
            self._enqueue_node_pods(meta.name(node))

    def _node_update(self, old: Obj, new: Obj) -> None:
        if no_execute_taints(old) != no_execute_taints(new):
            self._enqueue_node_pods(meta.name(new))

    def _enqueue_node_pods(self, node: str) -> None:
        for p in self.pods.list():
            if (p.get("spec") or {}).get("nodeName") == node:
                self.queue.add(meta.key(p))

    def _cancel(self, key: str, pod: Obj | None) -> None:
        if self.scheduled.pop(key, None) is not None and pod is not None:
            self.recorder.event(pod, NORMAL, "TaintManagerEviction", f"Cancelling deletion of Pod {key}")

    async def sync(self, key: str) -> None:
        """Schedule, cancel or carry out one pod's eviction."""
        pod = self.pods.get(key)
        node_name = ((pod or {}).get("spec") or {}).get("nodeName")
        node = self.nodes.get(node_name) if node_name else None
        if pod is None or meta.is_deleting(pod) or node is None:
            self.scheduled.pop(key, None)
            return
        taints = no_execute_taints(node)
        if not taints:
            self._cancel(key, pod)
            return
        wait = min_toleration_seconds((pod.get("spec") or {}).get("tolerations") or [], taints)
        if wait is None:
            self._cancel(key, pod)  # tolerated forever
            return
        now = asyncio.get_running_loop().time()
        start = self.scheduled.setdefault(key, now)
        left = start + wait - now
        if left > 0:
            self.queue.add_after(key, left)
            return
        await self._evict(pod)
        self.scheduled.pop(key, None)

    async def _evict(self, pod: Obj) -> None:
        key = meta.key(pod)
        self.recorder.event(pod, NORMAL, "TaintManagerEviction", f"Marking for deletion Pod {key}")
        ns, name = meta.namespace(pod), meta.name(pod)
        cond = _disruption_condition("DeletionByTaintManager", "Taint manager: deleting due to NoExecute taint")
        try:
            await self._rc.patch(name, {"status": {"conditions": _with_condition(pod, cond)}}, ns,
                                 subresource="status")
            await self._rc.delete(name, ns, preconditions={"uid": meta.uid(pod)})
        except (NotFound, Conflict):
            pass  # gone already, or replaced by a pod of the same name
        log.info("evicted pod %s from tainted node %s", key, pod["spec"].get("nodeName"))

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set."""
        self.pods.start()
        self.nodes.start()
        await asyncio.gather(self.pods.wait_synced(), self.nodes.wait_synced())
        await process_until(self.queue, self.sync, stop, self.workers)
        await self.recorder.flush()


def no_execute_taints(node: Obj) -> list[Obj]:
    """The node's NoExecute taints."""
    return [t for t in (node.get("spec") or {}).get("taints") or [] if t.get("effect") == NO_EXECUTE]


# -- pod GC: orphaned pods ------------------------------------------------------------------
class PodGCController:
    """Force-deletes pods bound to nodes that no longer exist."""

    def __init__(self, client: APIClient, factory: SharedInformerFactory, *, gc_period: float = 20.0,
                 quarantine: float = 40.0):
        self.pods = factory.informer(PODS)
        self.nodes = factory.informer(NODES)
        self._pods = client.resource(PODS)
        self._nodes = client.resource(NODES)
        self.gc_period = gc_period
        self.quarantine = quarantine
        self.missing_since: dict[str, float] = {}  # node name -> first seen absent
        self._wake = asyncio.Event()
        self.nodes.add_handler(None, None, lambda _n: self._wake.set())

    async def gc_orphaned(self) -> None:
        """One pass: pods whose node has been missing for the quarantine are deleted."""
        now = asyncio.get_running_loop().time()
        existing = {meta.name(n) for n in self.nodes.list()}
        bound: dict[str, list[Obj]] = {}
        for p in self.pods.list():
            node = (p.get("spec") or {}).get("nodeName")
            if node and node not in existing:
                bound.setdefault(node, []).append(p)
        self.missing_since = {n: t for n, t in self.missing_since.items() if n in bound}
        for node, pods in bound.items():
            since = self.missing_since.setdefault(node, now)
            if now - since < self.quarantine:
                continue
            try:
                await self._nodes.get(node)
                continue  # the informer is behind: the node exists
            except NotFound:
                pass
            for p in pods:
                await self._delete_orphan(p)

    async def _delete_orphan(self, pod: Obj) -> None:
        ns, name = meta.namespace(pod), meta.name(pod)
        status: Obj = {"conditions": _with_condition(
            pod, _disruption_condition("DeletionByPodGC", "PodGC: node no longer exists"))}
        if (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
            status["phase"] = "Failed"
        try:
            await self._pods.patch(name, {"status": status}, ns, subresource="status")
            await self._pods.delete(name, ns, grace_period_seconds=0, preconditions={"uid": meta.uid(pod)})
            log.info("deleted orphaned pod %s/%s (node %s is gone)", ns, name, pod["spec"].get("nodeName"))
        except (NotFound, Conflict):
            pass  # gone already, or replaced by a pod of the same name

    async def run(self, stop: asyncio.Event) -> None:
        """Run a pass every gc_period (and soon after a node deletion) until ``stop``."""
        self.pods.start()
        self.nodes.start()
        await asyncio.gather(self.pods.wait_synced(), self.nodes.wait_synced())
        while not stop.is_set():
            try:
                await self.gc_orphaned()
            except Exception as e:  # a failed pass is retried on the next one
                log.warning("pod gc: %s", e)
            self._wake.clear()
            waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
            done, pending = await asyncio.wait(waits, timeout=self.gc_period, return_when=asyncio.FIRST_COMPLETED)
            for w in pending:
                w.cancel()
            if self._wake.is_set() and not stop.is_set():
                # A node just went: look again once its quarantine is over.
                try:
                    await asyncio.wait_for(stop.wait(), self.quarantine)
                except TimeoutError:
                    pass
