"""ServiceLB controller: LoadBalancer Services get the nodes' addresses as ingress (k3s's servicelb).

There is no cloud load balancer here.  Like k3s, every node answers on the Service's port
(the per-node proxy binds ``<node InternalIP>:<port>`` for each ingress IP that is its own),
so ``status.loadBalancer.ingress`` lists the InternalIP of every Ready node, sorted.
Services that stop being LoadBalancers have their ingress cleared.  A Service with
``spec.loadBalancerClass`` set belongs to another implementation and is left alone.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

from kubelite.api import meta
from kubelite.api.resources import NODES, SERVICES
from kubelite.client.protocols import APIClient, SharedInformerFactory
from kubelite.client.workqueue import WorkQueue, process_until

log = logging.getLogger(__name__)
Obj = dict[str, Any]


def node_internal_ip(node: Obj) -> str:
    """The node's InternalIP address ('' when it reports none)."""
    for a in (node.get("status") or {}).get("addresses") or []:
        if a.get("type") == "InternalIP" and a.get("address"):
            return a["address"]
    return ""


def node_ready(node: Obj) -> bool:
    """The node's Ready condition is True."""
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (node.get("status") or {}).get("conditions") or [])


def desired_ingress(svc: Obj, nodes: list[Obj]) -> list[Obj]:
    """status.loadBalancer.ingress for a Service given the cluster's nodes."""
    spec = svc.get("spec") or {}
    if spec.get("type") != "LoadBalancer" or spec.get("loadBalancerClass"):
        return []
    ips = sorted({node_internal_ip(n) for n in nodes if node_ready(n) and not meta.is_deleting(n)} - {""})
    return [{"ip": ip} for ip in ips]


class ServiceLBController:
    """Writes status.loadBalancer for LoadBalancer Services."""

    def __init__(self, client: APIClient, factory: SharedInformerFactory):
        self.services = factory.informer(SERVICES)
        self.nodes = factory.informer(NODES)
        self._rc = client.resource(SERVICES)
        self.queue = WorkQueue("servicelb")
        self.services.add_handler(self._svc, lambda o, n: self._svc(n), None)
        self.nodes.add_handler(self._node, lambda o, n: self._node(n), self._node)

    def _svc(self, svc: Obj) -> None:
        spec = svc.get("spec") or {}
        if spec.get("type") == "LoadBalancer" or (svc.get("status") or {}).get("loadBalancer", {}).get("ingress"):
            self.queue.add(meta.key(svc))

    def _node(self, _node: Obj) -> None:
        for svc in self.services.list():
            if (svc.get("spec") or {}).get("type") == "LoadBalancer":
                self.queue.add(meta.key(svc))

    async def sync(self, key: str) -> None:
        """Write one Service's load-balancer status if it differs."""
        svc = self.services.get(key)
        if svc is None:
            return
        if (svc.get("spec") or {}).get("loadBalancerClass"):
            return
        want = desired_ingress(svc, self.nodes.list())
        have = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        if [{"ip": i.get("ip")} for i in have] == want and all(set(i) <= {"ip", "ipMode"} for i in have):
            return
        status = dict(svc.get("status") or {})
        status["loadBalancer"] = {"ingress": want} if want else {}
        await self._rc.update_status({**svc, "status": status})

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set."""
        self.services.start()
        self.nodes.start()
        await asyncio.gather(self.services.wait_synced(), self.nodes.wait_synced())
        await process_until(self.queue, self.sync, stop, 2)
