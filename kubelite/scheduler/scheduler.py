"""The scheduler loop: watch unscheduled pods, filter and score nodes, bind.

Pods are kept in a work queue keyed by namespace/name.  A pod that fits nowhere is
retried with back-off and again whenever a node changes or a pod leaves a node,
which is when upstream's scheduling queue moves pods back to active.  The binding
goes through pods/binding; its reply, not the cache, decides success.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

from kubelite.api import meta
from kubelite.api.resources import NODES, PODS
from kubelite.client.errors import Conflict, NotFound, StatusError
from kubelite.client.events import NORMAL, WARNING, EventRecorder
from kubelite.client.informer import InformerFactory
from kubelite.client.protocols import APIClient
from kubelite.client.workqueue import WorkQueue, process_until
from kubelite.scheduler.plugins import FILTERS, UNRESOLVABLE, NodeInfo, failure_message, score

log = logging.getLogger("kubelite.scheduler")
Obj = dict[str, Any]
SCHEDULER_NAME = "default-scheduler"


def _is_active(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


class Scheduler:
    """Places pods whose spec.schedulerName is ours on nodes."""

    def __init__(self, client: APIClient):
        self.client = client
        self.factory = InformerFactory(client)
        self.pods = self.factory.informer(PODS)
        self.nodes = self.factory.informer(NODES)
        self.queue = WorkQueue("scheduler", base_delay=1.0, max_delay=10.0)
        self.recorder = EventRecorder(client, SCHEDULER_NAME)
        self._pods_api = client.resource(PODS)
        self._assumed: dict[str, str] = {}  # pod key -> node, until the informer sees the binding
        # Active pods per node, kept up to date by the pod handlers (and assumed binds), so a
        # scheduling cycle costs O(nodes), not O(all pods).
        self._by_node: dict[str, dict[str, Obj]] = {}
        self._node_of: dict[str, str] = {}
        self._unschedulable: set[str] = set()
        self.pods.add_handler(self._on_pod, lambda old, new: self._on_pod(new), self._on_pod_delete)
        self.nodes.add_handler(lambda n: self._retry_all(), lambda o, n: self._retry_all(), None)

    def _ours(self, pod: Obj) -> bool:
        spec = pod.get("spec") or {}
        return not spec.get("nodeName") and spec.get("schedulerName", SCHEDULER_NAME) == SCHEDULER_NAME \
            and not meta.is_deleting(pod) and _is_active(pod)

    def _place(self, key: str, node: str | None, pod: Obj | None) -> None:
        old = self._node_of.pop(key, None)
        if old is not None:
            self._by_node.get(old, {}).pop(key, None)
        if node and pod is not None:
            self._node_of[key] = node
            self._by_node.setdefault(node, {})[key] = pod

    def _on_pod(self, pod: Obj) -> None:
        k = meta.key(pod)
        node = (pod.get("spec") or {}).get("nodeName")
        if node:
            self._assumed.pop(k, None)
            self._place(k, node if _is_active(pod) else None, pod)
        elif k not in self._assumed:
            self._place(k, None, None)
        if self._ours(pod):
            self.queue.add(k)

    def _on_pod_delete(self, pod: Obj) -> None:
        k = meta.key(pod)
        self._assumed.pop(k, None)
        self._place(k, None, None)
        if (pod.get("spec") or {}).get("nodeName"):
            self._retry_all()  # freed capacity

    def _retry_all(self) -> None:
        for k in list(self._unschedulable):
            self.queue.add(k)

    def snapshot(self) -> list[NodeInfo]:
        """Nodes with the active pods placed (or assumed) on them."""
        infos = [NodeInfo(n, list(self._by_node.get(meta.name(n), {}).values())) for n in self.nodes.list()]
        return sorted(infos, key=lambda i: i.name)

    async def sync(self, key: str) -> None:
        """Try to place one pod."""
        pod = self.pods.get(key)
        if pod is None or not self._ours(pod) or key in self._assumed:
            self._unschedulable.discard(key)
            return
        nodes = self.snapshot()
        feasible: list[NodeInfo] = []
        reasons: dict[str, int] = {}
        preemptible = 0
        for n in nodes:
            failed = next(((f, r) for f in FILTERS if (r := f(n, pod)) is not None), None)
            if failed is None:
                feasible.append(n)
            else:
                reasons[failed[1]] = reasons.get(failed[1], 0) + 1
                preemptible += failed[0] not in UNRESOLVABLE
        if not feasible:
            msg = failure_message(len(nodes), reasons, preemptible) if nodes else "no nodes available to schedule pods"
            self._unschedulable.add(key)
            self.recorder.event(pod, WARNING, "FailedScheduling", msg)
            await self._mark_unschedulable(pod, msg)
            self.queue.add_rate_limited(key)
            return
        best = max(feasible, key=lambda n: (score(n, pod), n.name))
        self._unschedulable.discard(key)
        ns, name = meta.namespace(pod), meta.name(pod)
        binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name, "namespace": ns},
                   "target": {"apiVersion": "v1", "kind": "Node", "name": best.name}}
        self._assumed[key] = best.name
        self._place(key, best.name, pod)
        try:
            await self._pods_api.create_subresource(name, ns, "binding", binding)
        except (NotFound, Conflict):
            self._unassume(key, best.name)
            return  # gone, or someone else bound it
        except StatusError:
            self._unassume(key, best.name)
            raise
        self.recorder.event(pod, NORMAL, "Scheduled", f"Successfully assigned {ns}/{name} to {best.name}")

    def _unassume(self, key: str, node: str) -> None:
        """Undo the placement of a bind that failed (unless the informer has seen a real one)."""
        self._assumed.pop(key, None)
        if self._node_of.get(key) == node and not (self.pods.get(key) or {}).get("spec", {}).get("nodeName"):
            self._place(key, None, None)

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
        await process_until(self.queue, self.sync, stop, workers=8)
        await self.factory.stop()


async def run_scheduler(client: APIClient, *, stop: asyncio.Event) -> None:
    """Entry point used by ``kubelite server``."""
    await Scheduler(client).run(stop)
