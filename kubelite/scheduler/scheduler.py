"""The scheduler loop: watch unscheduled pods, filter and score nodes, bind.

Pods are kept in a work queue keyed by namespace/name.  A pod that fits nowhere is
retried with back-off and again whenever a node changes or a pod leaves a node,
which is when upstream's scheduling queue moves pods back to active.  The binding
goes through pods/binding; its reply, not the cache, decides success.  What is
placed where lives in cache.py (assume, forget, expire, and the periodic check
against the informer).
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from kubelite.api import meta
from kubelite.api.resources import NODES, PERSISTENTVOLUMECLAIMS, PODS
from kubelite.client.errors import Conflict, NotFound, StatusError
from kubelite.client.events import NORMAL, WARNING, EventRecorder
from kubelite.client.informer import InformerFactory
from kubelite.client.protocols import APIClient, Recorder, SharedInformerFactory
from kubelite.client.workqueue import WorkQueue, process_until
from kubelite.scheduler.cache import SchedulerCache, bound_node, is_active
from kubelite.scheduler.plugins import FILTERS, UNRESOLVABLE, NodeInfo, failure_message, node_unschedulable, score
from kubelite.scheduler.priorityqueue import PriorityWorkQueue
from kubelite.scheduler.volumebinding import VolumeBinding

log = logging.getLogger("kubelite.scheduler")
Obj = dict[str, Any]
SCHEDULER_NAME = "default-scheduler"


# The cache debugger's period (upstream runs its comparer on a signal; a periodic check
# finds drift without anyone asking) and the assumed-pod expiry sweep's.
CHECK_EVERY = 30.0
EXPIRE_EVERY = 1.0

# percentageOfNodesToScore: in a big cluster a placement stops filtering once it has found
# this many feasible nodes, and scores only those (upstream's numbers).
MIN_FEASIBLE_NODES_TO_FIND = 100
MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND = 5


def num_feasible_nodes_to_find(num_all_nodes: int, percentage: int = 0) -> int:
    """How many feasible nodes a placement looks for among num_all_nodes; percentage 0 is
    upstream's adaptive default (50 % less 1 % per 125 nodes, at least 5 %)."""
    if num_all_nodes < MIN_FEASIBLE_NODES_TO_FIND:
        return num_all_nodes
    if percentage <= 0:
        percentage = max(50 - num_all_nodes // 125, MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND)
    return max(num_all_nodes * min(percentage, 100) // 100, MIN_FEASIBLE_NODES_TO_FIND)


class Scheduler:
    """Places pods whose spec.schedulerName is ours on nodes."""

    def __init__(self, client: APIClient, factory: SharedInformerFactory | None = None, *,
                 recorder: Recorder | None = None, cache: SchedulerCache | None = None,
                 percentage_of_nodes_to_score: int = 0):
        self.client = client
        self.percentage_of_nodes_to_score = percentage_of_nodes_to_score
        # Where the next placement starts filtering, so sampled placements take turns over
        # every node instead of always the first ones (upstream's nextStartNodeIndex).
        self._next_start = 0
        self.factory: SharedInformerFactory = factory or InformerFactory(client)
        self.pods = self.factory.informer(PODS)
        self.nodes = self.factory.informer(NODES)
        self.queue: WorkQueue = PriorityWorkQueue("scheduler", self._priority, base_delay=1.0, max_delay=10.0)
        self.recorder: Recorder = recorder or EventRecorder(client, SCHEDULER_NAME)
        self._pods_api = client.resource(PODS)
        # Active pods per node with running totals, fed by the pod informer and our own
        # binds, so a scheduling cycle costs O(nodes), not O(all pods).
        self.cache = cache or SchedulerCache()
        self._unschedulable: set[str] = set()
        self.pods.add_handler(self._on_pod, lambda old, new: self._on_pod(new), self._on_pod_delete)
        # Pods with claims: placed only once their claims are bound (see volumebinding.py).
        self.volume_binding = VolumeBinding(self.factory, client.resource(PERSISTENTVOLUMECLAIMS))
        self._waiting_volumes: set[str] = set()
        self.volume_binding.claims.add_handler(lambda c: self._claims_changed(),
                                               lambda o, c: self._claims_changed(), None)
        self.nodes.add_handler(lambda n: self._retry_all(), lambda o, n: self._retry_all(), None)

    def _priority(self, key: str) -> int:
        """A queued pod's spec.priority (0 when unknown)."""
        pod = self.pods.get(key)
        try:
            return int(((pod or {}).get("spec") or {}).get("priority") or 0)
        except (TypeError, ValueError):
            return 0

    def _ours(self, pod: Obj) -> bool:
        spec = pod.get("spec") or {}
        return not spec.get("nodeName") and spec.get("schedulerName", SCHEDULER_NAME) == SCHEDULER_NAME \
            and not meta.is_deleting(pod) and is_active(pod)

    def _on_pod(self, pod: Obj) -> None:
        self.cache.on_pod(pod)
        if self._ours(pod):
            self.queue.add(meta.key(pod))

    def _on_pod_delete(self, pod: Obj) -> None:
        self.cache.on_pod_deleted(pod)
        if bound_node(pod):
            self._retry_all()  # freed capacity

    def _claims_changed(self) -> None:
        for k in list(self._waiting_volumes):
            self.queue.add(k)
        self._retry_all()

    def _retry_all(self) -> None:
        for k in list(self._unschedulable):
            self.queue.add(k)

    def snapshot(self) -> list[NodeInfo]:
        """Nodes with the active pods placed (or assumed) on them."""
        return [self.cache.node_info(n) for n in self._sorted_nodes()]

    def _sorted_nodes(self) -> list[Obj]:
        """The cached nodes by name (a placement's NodeInfos are made only for the nodes it visits)."""
        return sorted(self.nodes.list(), key=lambda n: n["metadata"]["name"])

    async def sync(self, key: str) -> None:
        """Try to place one pod."""
        pod = self.pods.get(key)
        if pod is None or not self._ours(pod) or self.cache.is_assumed(key):
            self._unschedulable.discard(key)
            return
        nodes = self._sorted_nodes()
        feasible: list[NodeInfo] = []
        reasons: dict[str, int] = {}
        preemptible = 0
        with_claims = self.volume_binding.uses_claims(pod)
        pre = self.volume_binding.prefilter(pod) if with_claims and nodes else None
        if pre is not None:
            # A PreFilter failure names no nodes: upstream prints it without counts.
            msg = failure_message(len(nodes), {}, 0).replace(" nodes are available.", f" nodes are available: {pre}.", 1)
            self._unschedulable.add(key)
            self.recorder.event(pod, WARNING, "FailedScheduling", msg)
            await self._mark_unschedulable(pod, msg)
            self.queue.add_rate_limited(key)
            return
        want = num_feasible_nodes_to_find(len(nodes), self.percentage_of_nodes_to_score)
        start = self._next_start % len(nodes) if nodes else 0
        processed = 0
        for node in nodes[start:] + nodes[:start]:
            if len(feasible) >= want:
                break
            processed += 1
            n = self.cache.node_info(node)
            failed = next(((f, r) for f in FILTERS if (r := f(n, pod)) is not None), None)
            if failed is None and with_claims and (why := self.volume_binding.filter(n.node, pod)) is not None:
                failed = (node_unschedulable, why)  # volume conflicts are unresolvable too
            if failed is None:
                feasible.append(n)
            else:
                reasons[failed[1]] = reasons.get(failed[1], 0) + 1
                preemptible += failed[0] not in UNRESOLVABLE
        if nodes:
            self._next_start = (start + processed) % len(nodes)
        if not feasible:
            msg = failure_message(len(nodes), reasons, preemptible) if nodes else "no nodes available to schedule pods"
            self._unschedulable.add(key)
            self.recorder.event(pod, WARNING, "FailedScheduling", msg)
            await self._mark_unschedulable(pod, msg)
            self.queue.add_rate_limited(key)
            return
        best = max(feasible, key=lambda n: (score(n, pod), n.name))
        self._unschedulable.discard(key)
        if with_claims:
            try:
                ready = await self.volume_binding.reserve(pod, best.name)
            except NotFound:
                ready = False
            if not ready:
                self._waiting_volumes.add(key)  # a claim change brings it back
                return
            self._waiting_volumes.discard(key)
        ns, name = meta.namespace(pod), meta.name(pod)
        binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name, "namespace": ns},
                   "target": {"apiVersion": "v1", "kind": "Node", "name": best.name}}
        self.cache.assume(key, best.name, pod)
        try:
            await self._pods_api.create_subresource(name, ns, "binding", binding)
        except (NotFound, Conflict):
            self.cache.forget(key)
            return  # gone, or someone else bound it
        except BaseException:
            # Whatever went wrong (a status, a dropped connection, cancellation), the pod
            # must not stay counted on the node: the informer will say if it was bound.
            self.cache.forget(key)
            raise
        self.cache.finish_binding(key)
        self.recorder.event(pod, NORMAL, "Scheduled", f"Successfully assigned {ns}/{name} to {best.name}")

    async def housekeeping(self) -> None:
        """Expire assumed pods whose binding never showed up (asking the server first); retry pods that may fit now."""
        freed = False
        for key in self.cache.expired():
            if not self.cache.is_assumed(key):
                continue  # confirmed or deleted while we were asking about another
            ns, _, name = key.rpartition("/")
            try:
                live: Obj | None = await self._pods_api.get(name, ns)
            except NotFound:
                live = None
            except Exception as e:  # cannot tell now: keep it counted, ask again next round
                log.debug("checking assumed pod %s: %s", key, e)
                continue
            if not self.cache.is_assumed(key):
                continue
            if live is not None and bound_node(live):
                log.info("assumed pod %s: the watch is late, the server has it bound to %s", key, bound_node(live))
                self.cache.on_pod(live)
                continue
            log.warning("assumed pod %s expired: its binding to %s never showed up", key, self.cache.node_of(key))
            self.cache.forget(key)
            freed = True
            if live is not None and self._ours(live):
                self.queue.add(key)
        if freed:
            self._retry_all()

    def check_cache(self) -> list[str]:
        """The cache debugger: compare with the informer, log and repair differences."""
        diffs = self.cache.compare(self.pods.list())
        for d in diffs:
            log.warning("scheduler cache out of sync, repaired: %s", d)
        if diffs:
            self._retry_all()
        return diffs

    async def _maintain(self, stop: asyncio.Event) -> None:
        last_check = time.monotonic()
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), EXPIRE_EVERY)
            except TimeoutError:
                pass
            try:
                await self.housekeeping()
                if time.monotonic() - last_check >= CHECK_EVERY:
                    last_check = time.monotonic()
                    self.check_cache()
            except Exception:  # a bug here must not end the scheduler's other loops
                log.exception("scheduler cache maintenance")

    async def _mark_unschedulable(self, pod: Obj, msg: str) -> None:
        conds = (pod.get("status") or {}).get("conditions") or []
        cur = next((c for c in conds if c.get("type") == "PodScheduled"), None)
        if cur and cur.get("status") == "False" and cur.get("message") == msg:
            return
        cond = {"type": "PodScheduled", "status": "False", "lastProbeTime": None,
                "lastTransitionTime": meta.rfc3339(), "reason": "Unschedulable", "message": msg}
        try:
            await self._pods_api.patch(meta.name(pod), {"status": {"conditions": [cond]}}, meta.namespace(pod),
                                       patch_type="strategic", subresource="status")
        except StatusError:
            pass

    async def run(self, stop: asyncio.Event) -> None:
        """Run until stop is set."""
        self.factory.start()
        await self.factory.wait_synced()
        # Several binds in flight at once; a pod is "assumed" on its node before its bind
        # request goes out, so concurrent workers see each other's placements.
        maintain = asyncio.create_task(self._maintain(stop))
        try:
            await process_until(self.queue, self.sync, stop, workers=8)
        finally:
            maintain.cancel()
            await asyncio.gather(maintain, return_exceptions=True)
            await self.factory.stop()


LEASE_NAME = "kube-scheduler"  # the Lease schedulers sharing a cluster elect their leader with


async def run_scheduler(client: APIClient, *, stop: asyncio.Event) -> None:
    """Entry point used by ``kubelite server``."""
    await Scheduler(client).run(stop)
