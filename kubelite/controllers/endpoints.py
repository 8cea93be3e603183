"""Endpoints controller: the legacy core/v1 Endpoints object of every selector Service.

Upstream twin: ``pkg/controller/endpoint/endpoints_controller.go``.  The Endpoints object
has the Service's name and labels (plus ``service.kubernetes.io/headless`` when headless);
each pod that is not terminal, has an IP and is not terminating (unless
publishNotReadyAddresses) contributes one address per service port it resolves, under
``addresses`` when Ready (or publishNotReadyAddresses) and ``notReadyAddresses``
otherwise.  Addresses with identical port sets are then repacked into subsets, sorted, so
the object is stable and writes happen only on real change.  More than 1000 addresses
are truncated (ready ones kept first) and annotated ``endpoints.kubernetes.io/over-capacity``.

`kubectl describe service` and `kubectl get endpoints` read this object.
"""
from __future__ import annotations

import asyncio
import json
import logging
import math
from typing import Any

from kubelite.api import meta
from kubelite.api.resources import ENDPOINTS, PODS, SERVICES
from kubelite.client.errors import Forbidden, NotFound
from kubelite.client.protocols import APIClient, SharedInformerFactory
from kubelite.client.workqueue import WorkQueue, process_until
from kubelite.controllers.endpointslice import (
    ANNOTATION_TRIGGER_TIME,
    LABEL_HEADLESS,
    find_port,
    is_headless,
    is_pod_ready,
    pod_ip,
    pods_for_service,
    service_selects,
    services_for_pod,
    services_for_pod_change,
    should_pod_be_in_endpoints,
    should_set_hostname,
    trigger_time,
)

log = logging.getLogger(__name__)
Obj = dict[str, Any]

MAX_CAPACITY = 1000
ANNOTATION_OVER_CAPACITY = "endpoints.kubernetes.io/over-capacity"
# Endpoints objects used as leader-election locks have no Service and must survive.
_LEADER_ANNOTATION = "control-plane.alpha.kubernetes.io/leader"


def _address(pod: Obj, svc: Obj) -> Obj:
    addr: Obj = {"ip": pod_ip(pod)}
    if should_set_hostname(pod, svc):
        addr["hostname"] = pod["spec"]["hostname"]
    node = (pod.get("spec") or {}).get("nodeName")
    if node:
        addr["nodeName"] = node
    addr["targetRef"] = {"kind": "Pod", "namespace": meta.namespace(pod), "name": meta.name(pod),
                         "uid": meta.uid(pod)}
    return addr


def _endpoint_port(sp: Obj, num: int) -> Obj:
    p: Obj = {"port": num, "protocol": sp.get("protocol") or "TCP"}
    if sp.get("name"):
        p["name"] = sp["name"]
    if sp.get("appProtocol"):
        p["appProtocol"] = sp["appProtocol"]
    return p


def _addr_sort_key(a: Obj) -> tuple[str, str]:
    # Upstream compares the IP strings byte-wise, then the pod uid.
    return (a.get("ip", ""), (a.get("targetRef") or {}).get("uid", ""))


def _canon(o: Any) -> str:
    return json.dumps(o, sort_keys=True)


def compute_subsets(svc: Obj, pods: list[Obj]) -> list[Obj]:
    """The repacked, sorted subsets for a Service and the pods its selector matches."""
    spec = svc.get("spec") or {}
    tolerate = bool(spec.get("publishNotReadyAddresses"))
    # (address, ready) -> list of ports; then group addresses with identical port sets.
    per_addr: dict[str, tuple[Obj, bool, list[Obj]]] = {}
    for pod in pods:
        if not should_pod_be_in_endpoints(pod, tolerate) or not pod_ip(pod):
            continue
        addr = _address(pod, svc)
        ready = tolerate or is_pod_ready(pod)
        ak = _canon([addr, ready])
        ports = spec.get("ports") or []
        if not ports:
            if is_headless(svc):  # a headless Service may have no ports at all
                per_addr.setdefault(ak, (addr, ready, []))
            continue
        for sp in ports:
            num = find_port(pod, sp)
            if num is None:
                continue
            per_addr.setdefault(ak, (addr, ready, []))[2].append(_endpoint_port(sp, num))
    groups: dict[str, tuple[list[Obj], list[Obj], list[Obj]]] = {}
    for addr, ready, ports in per_addr.values():
        ports = sorted({_canon(p): p for p in ports}.values(), key=_canon)
        g = groups.setdefault(_canon(ports), ([], [], ports))
        (g[0] if ready else g[1]).append(addr)
    subsets = []
    for k in sorted(groups):
        ready_addrs, not_ready, ports = groups[k]
        sub: Obj = {}
        if ready_addrs:
            sub["addresses"] = sorted(ready_addrs, key=_addr_sort_key)
        if not_ready:
            sub["notReadyAddresses"] = sorted(not_ready, key=_addr_sort_key)
        if ports:
            sub["ports"] = ports
        subsets.append(sub)
    return subsets


def truncate(subsets: list[Obj]) -> bool:
    """Cut subsets down to MAX_CAPACITY addresses, proportionally, ready ones first."""
    total_ready = sum(len(s.get("addresses") or []) for s in subsets)
    total_not = sum(len(s.get("notReadyAddresses") or []) for s in subsets)
    if total_ready + total_not <= MAX_CAPACITY:
        return False
    cut_ready = total_ready > MAX_CAPACITY
    budget = MAX_CAPACITY if cut_ready else MAX_CAPACITY - total_ready
    total = total_ready if cut_ready else total_not
    left = budget
    for s in subsets:
        field = "addresses" if cut_ready else "notReadyAddresses"
        n = len(s.get(field) or [])
        take = min(math.ceil(n / total * budget) if total else 0, left)
        s[field] = (s.get(field) or [])[:take]
        if cut_ready:
            s["notReadyAddresses"] = []
        left -= len(s[field])
        for f in ("addresses", "notReadyAddresses"):
            if not s.get(f):
                s.pop(f, None)
    return True


def _endpoints_labels(svc: Obj) -> dict[str, str]:
    labels = dict(meta.labels(svc))
    if is_headless(svc):
        labels[LABEL_HEADLESS] = ""
    else:
        labels.pop(LABEL_HEADLESS, None)
    return labels


def _strip_ref_rv(subsets: list[Obj]) -> str:
    def clean(a: Obj) -> Obj:
        if a.get("targetRef"):
            a = {**a, "targetRef": {k: v for k, v in a["targetRef"].items() if k != "resourceVersion"}}
        return a
    return _canon([{**s, "addresses": [clean(a) for a in s.get("addresses") or []],
                    "notReadyAddresses": [clean(a) for a in s.get("notReadyAddresses") or []]}
                   for s in subsets])


class EndpointsController:
    """Keeps core/v1 Endpoints in step with Services and their pods."""

    def __init__(self, client: APIClient, factory: SharedInformerFactory, *, workers: int = 4):
        self.client = client
        self.services = factory.informer(SERVICES)
        self.pods = factory.informer(PODS)
        self.endpoints = factory.informer(ENDPOINTS)
        self._rc = client.resource(ENDPOINTS)
        self.queue = WorkQueue("endpoints")
        self.workers = workers
        # key -> resourceVersion we replaced: a cache still showing it is stale.
        self._stale: dict[str, str] = {}
        self.services.add_handler(self._svc_event, lambda o, n: self._svc_event(n), self._svc_event)
        self.pods.add_handler(self._pod_add, self._pod_update, self._pod_add)
        self.endpoints.add_handler(None, self._ep_update, self._ep_delete)

    def _svc_event(self, svc: Obj) -> None:
        self.queue.add(meta.key(svc))

    def _pod_add(self, pod: Obj) -> None:
        for k in services_for_pod(self.services.list(meta.namespace(pod)), meta.labels(pod)):
            self.queue.add(k)

    def _pod_update(self, old: Obj, new: Obj) -> None:
        for k in services_for_pod_change(self.services.list(meta.namespace(new)), old, new):
            self.queue.add(k)

    def _ep_update(self, old: Obj, new: Obj) -> None:
        # Our own write arrived: the cache is fresh again for a sync that was waiting.
        k = meta.key(new)
        if k in self._stale and self._stale[k] != meta.resource_version(new):
            del self._stale[k]
            self.queue.add(k)

    def _ep_delete(self, ep: Obj) -> None:
        # Someone deleted an Endpoints we manage: put it back.
        if self.services.get(meta.key(ep)) is not None:
            self.queue.add(meta.key(ep))

    async def sync(self, key: str) -> None:
        """Write the Endpoints of one Service (namespace/name), or delete it if the Service is gone."""
        ns, _, name = key.partition("/")
        svc = self.services.get(key)
        if svc is None:
            try:
                await self._rc.delete(name, ns)
            except NotFound:
                pass
            self._stale.pop(key, None)
            return
        if not service_selects(svc):
            return  # selector-less Services get hand-written Endpoints
        pods = pods_for_service(self.pods.list(ns), svc)
        subsets = compute_subsets(svc, pods)
        current = self.endpoints.get(key)
        if current is not None and self._stale.get(key) == meta.resource_version(current):
            self.queue.add_after(key, 0.5)  # the informer event for our write re-queues sooner
            return
        labels = _endpoints_labels(svc)
        over = len([a for s in subsets for f in ("addresses", "notReadyAddresses") for a in s.get(f) or []]) > MAX_CAPACITY
        if current is not None:
            cur_over = ANNOTATION_OVER_CAPACITY in meta.annotations_of(current)
            if _strip_ref_rv(current.get("subsets") or []) == _strip_ref_rv(subsets) \
                    and meta.labels(current) == labels and cur_over == over:
                return
        truncated = truncate(subsets)
        ann = dict(meta.annotations_of(current)) if current else {}
        ttime = trigger_time(svc, pods)
        if ttime:
            ann[ANNOTATION_TRIGGER_TIME] = ttime
        if truncated:
            ann[ANNOTATION_OVER_CAPACITY] = "truncated"
        else:
            ann.pop(ANNOTATION_OVER_CAPACITY, None)
        if current is None:
            obj = {"apiVersion": "v1", "kind": "Endpoints",
                   "metadata": {"name": name, "namespace": ns, "labels": labels, "annotations": ann},
                   "subsets": subsets}
            try:
                await self._rc.create(obj, ns)
            except (Forbidden, NotFound) as e:
                if isinstance(e, NotFound) and "namespace" not in e.message.lower():
                    raise
                return  # namespace terminating: creates keep failing, drop the key
            return
        obj = {**current, "metadata": {**current["metadata"], "labels": labels, "annotations": ann},
               "subsets": subsets}
        out = await self._rc.update(obj)
        if meta.resource_version(out) != meta.resource_version(current):
            self._stale[key] = meta.resource_version(current)

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set."""
        for inf in (self.services, self.pods, self.endpoints):
            inf.start()
        await asyncio.gather(self.services.wait_synced(), self.pods.wait_synced(), self.endpoints.wait_synced())
        for svc in self.services.list():
            self.queue.add(meta.key(svc))
        # Leftovers: Endpoints whose Service vanished while we were down (once, as upstream).
        for ep in self.endpoints.list():
            if _LEADER_ANNOTATION not in meta.annotations_of(ep) and self.services.get(meta.key(ep)) is None:
                self.queue.add(meta.key(ep))
        await process_until(self.queue, self.sync, stop, self.workers)
