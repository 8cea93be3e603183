"""EndpointSlice mirroring: EndpointSlices for Endpoints written by hand.

Upstream twin: ``pkg/controller/endpointslicemirroring``.  A Service without a selector
gets no slices from the EndpointSlice controller; whoever manages its Endpoints object
writes that by hand, and this controller mirrors it into discovery.k8s.io/v1
EndpointSlices so that slice readers (the service proxy, ``kubectl describe``) see it.

What is mirrored, as upstream:
- only Endpoints whose Service exists and has no selector, and that carry neither the
  ``endpointslice.kubernetes.io/skip-mirror: "true"`` label nor a leader-election
  annotation; the slices of anything else are deleted;
- each subset's ports become the slice ports; ``addresses`` become endpoints with
  ``ready: true``, ``notReadyAddresses`` with ``ready: false`` (at most 1000 addresses per
  subset; addresses that are not IPs are skipped, with a Warning event);
- endpoints are grouped by (address type, ports); each group is one slice named
  ``<endpoints>-<random>``, owned by the Endpoints object, carrying its labels plus
  ``kubernetes.io/service-name`` and ``endpointslice.kubernetes.io/managed-by:
  endpointslicemirroring-controller.k8s.io``, and its annotations except the
  last-change-trigger-time and kubectl's last-applied-configuration;
- a slice that would be deleted is reused for a slice that would be created.

Slices follow their Endpoints: updated with it, deleted with it.
"""
from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
from typing import Any

from kubelite.api import meta
from kubelite.api.resources import ENDPOINTS, ENDPOINTSLICES, SERVICES, ResourceInfo
from kubelite.client.errors import Forbidden, NotFound
from kubelite.client.events import WARNING, EventRecorder
from kubelite.client.informer import InformerFactory
from kubelite.client.rest import Client
from kubelite.client.workqueue import WorkQueue, process_until
from kubelite.controllers.endpointslice import LABEL_MANAGED_BY, LABEL_SERVICE_NAME, Plan, _SliceTracker

log = logging.getLogger(__name__)
Obj = dict[str, Any]

CONTROLLER_NAME = "endpointslicemirroring-controller.k8s.io"
LABEL_SKIP_MIRROR = "endpointslice.kubernetes.io/skip-mirror"
LEADER_ANNOTATION = "control-plane.alpha.kubernetes.io/leader"
NOT_COPIED_ANNOTATIONS = ("endpoints.kubernetes.io/last-change-trigger-time",
                          "kubectl.kubernetes.io/last-applied-configuration")
MAX_ENDPOINTS_PER_SUBSET = 1000
REASON_INVALID_IP = "InvalidIPAddress"
REASON_TOO_MANY = "TooManyAddressesToMirror"


def _known(info: ResourceInfo | None) -> ResourceInfo:
    """A catalogue entry the controller cannot run without."""
    if info is None:
        raise RuntimeError("resource catalogue lacks a kind the EndpointSlice mirroring controller needs")
    return info


def should_mirror(endpoints: Obj) -> bool:
    """Not opted out by label, and not a leader-election record."""
    return meta.labels(endpoints).get(LABEL_SKIP_MIRROR) != "true" \
        and LEADER_ANNOTATION not in meta.annotations_of(endpoints)


def service_wants_mirroring(svc: Obj | None) -> bool:
    """The Service exists and has no selector (so its Endpoints are written by hand)."""
    return svc is not None and not (svc.get("spec") or {}).get("selector")


def mirrored(slc: Obj) -> bool:
    """The slice was made by this controller."""
    return meta.labels(slc).get(LABEL_MANAGED_BY) == CONTROLLER_NAME


def slice_ports(subset_ports: list[Obj]) -> list[Obj]:
    """Endpoints ports as EndpointSlice ports."""
    out = []
    for p in subset_ports:
        q: Obj = {"name": p.get("name") or "", "port": p.get("port"), "protocol": p.get("protocol") or "TCP"}
        if p.get("appProtocol"):
            q["appProtocol"] = p["appProtocol"]
        out.append(q)
    return out


def to_endpoint(address: Obj, ready: bool) -> tuple[Obj, str] | None:
    """An Endpoints address as a slice endpoint and its address type; None when not an IP."""
    try:
        ip = ipaddress.ip_address(str(address.get("ip") or "").strip())
    except ValueError:
        return None
    ep: Obj = {"addresses": [str(ip)], "conditions": {"ready": ready}}
    if address.get("targetRef"):
        ep["targetRef"] = address["targetRef"]
    if address.get("nodeName"):
        ep["nodeName"] = address["nodeName"]
    if address.get("hostname"):
        ep["hostname"] = address["hostname"]
    return ep, "IPv6" if ip.version == 6 else "IPv4"


def _group_key(address_type: str, ports: list[Obj]) -> str:
    # Normalised, so a slice read back from the server (defaults filled or dropped) matches.
    norm = [{"name": p.get("name") or "", "port": p.get("port"), "protocol": p.get("protocol") or "TCP",
             "appProtocol": p.get("appProtocol") or ""} for p in ports]
    return address_type + json.dumps(sorted(json.dumps(p, sort_keys=True) for p in norm))


def _ep_id(ep: Obj) -> str:
    ref = {k: v for k, v in (ep.get("targetRef") or {}).items() if k != "resourceVersion"}
    return json.dumps([sorted(ep.get("addresses") or []), bool((ep.get("conditions") or {}).get("ready")),
                       ep.get("hostname") or "", ep.get("nodeName") or "", ref], sort_keys=True)


class Desired:
    """The slices an Endpoints object asks for, grouped by (address type, ports)."""

    def __init__(self, endpoints: Obj, max_per_subset: int = MAX_ENDPOINTS_PER_SUBSET):
        self.ports: dict[str, list[Obj]] = {}
        self.endpoints: dict[str, dict[str, Obj]] = {}
        self.invalid = 0
        self.skipped = 0
        for subset in endpoints.get("subsets") or []:
            ports = slice_ports(subset.get("ports") or [])
            added = 0
            candidates = [(a, True) for a in subset.get("addresses") or []] + \
                         [(a, False) for a in subset.get("notReadyAddresses") or []]
            for address, ready in candidates:
                if added >= max_per_subset:
                    self.skipped += 1
                    continue
                found = to_endpoint(address, ready)
                if found is None:
                    self.invalid += 1
                    continue
                ep, address_type = found
                key = _group_key(address_type, ports)
                self.ports.setdefault(key, ports)
                self.endpoints.setdefault(key, {})[_ep_id(ep)] = ep
                added += 1


def slice_metadata(endpoints: Obj) -> tuple[dict[str, str], dict[str, str]]:
    """(labels, annotations) of a slice mirrored from ``endpoints``."""
    labels = dict(meta.labels(endpoints))
    labels[LABEL_SERVICE_NAME] = meta.name(endpoints)
    labels[LABEL_MANAGED_BY] = CONTROLLER_NAME
    annotations = {k: v for k, v in meta.annotations_of(endpoints).items() if k not in NOT_COPIED_ANNOTATIONS}
    return labels, annotations


def new_slice(endpoints: Obj, ports: list[Obj], address_type: str, eps: list[Obj]) -> Obj:
    """A slice owned by the Endpoints object (the server picks the name)."""
    labels, annotations = slice_metadata(endpoints)
    md: Obj = {"generateName": f"{meta.name(endpoints)}-", "namespace": meta.namespace(endpoints),
               "labels": labels,
               "ownerReferences": [meta.new_controller_ref(endpoints, "v1", "Endpoints")]}
    if annotations:
        md["annotations"] = annotations
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": md,
            "addressType": address_type, "ports": ports, "endpoints": eps}


def _same(existing: Obj, want: Obj) -> bool:
    """The existing slice already shows what ``want`` would write."""
    have_eps = {_ep_id(e) for e in existing.get("endpoints") or []}
    want_eps = {_ep_id(e) for e in want.get("endpoints") or []}
    md, wmd = existing.get("metadata") or {}, want["metadata"]
    return have_eps == want_eps and (md.get("labels") or {}) == wmd["labels"] \
        and (md.get("annotations") or {}) == (wmd.get("annotations") or {})


def reconcile(endpoints: Obj, existing: list[Obj], *, max_per_subset: int = MAX_ENDPOINTS_PER_SUBSET) -> Plan:
    """Pure reconcile: the Endpoints object vs the slices mirrored so far → the writes to make."""
    plan = Plan()
    desired = Desired(endpoints, max_per_subset)
    by_key: dict[str, list[Obj]] = {}
    for s in existing:
        by_key.setdefault(_group_key(s.get("addressType") or "IPv4", s.get("ports") or []), []).append(s)
    for key, eps in desired.endpoints.items():
        have = by_key.pop(key, [])
        address_type = "IPv6" if key.startswith("IPv6") else "IPv4"
        want = new_slice(endpoints, desired.ports[key], address_type, list(eps.values())[:max_per_subset])
        plan.delete.extend(have[1:])
        if not have:
            plan.create.append(want)
        elif not _same(have[0], want):
            want["metadata"] = {**have[0]["metadata"], "labels": want["metadata"]["labels"],
                                "annotations": want["metadata"].get("annotations") or {}}
            plan.update.append({**have[0], **{k: want[k] for k in ("ports", "endpoints", "metadata")}})
    for stale in by_key.values():
        plan.delete.extend(stale)
    # Reuse a slice about to be deleted for one about to be created (same address type).
    for new in list(plan.create):
        victim = next((s for s in plan.delete if s.get("addressType") == new["addressType"]), None)
        if victim is None:
            continue
        plan.create.remove(new)
        plan.delete.remove(victim)
        meta_new = {**victim["metadata"], "labels": new["metadata"]["labels"],
                    "annotations": new["metadata"].get("annotations") or {}}
        plan.update.append({**victim, "metadata": meta_new, "ports": new["ports"], "endpoints": new["endpoints"]})
    return plan


class EndpointSliceMirroringController:
    """Mirrors hand-written Endpoints of selector-less Services into EndpointSlices."""

    def __init__(self, client: Client, factory: InformerFactory, *, workers: int = 2,
                 max_endpoints_per_subset: int = MAX_ENDPOINTS_PER_SUBSET):
        self.endpoints = factory.informer(_known(ENDPOINTS))
        self.services = factory.informer(_known(SERVICES))
        self.slices = factory.informer(_known(ENDPOINTSLICES), label_selector=f"{LABEL_MANAGED_BY}={CONTROLLER_NAME}")
        self._rc = client.resource(_known(ENDPOINTSLICES))
        self.recorder = EventRecorder(client, "endpointslice-mirroring-controller")
        self.queue = WorkQueue("endpointslicemirroring")
        self.workers = workers
        self.max_per_subset = max_endpoints_per_subset
        self._tracker = _SliceTracker()
        self.services.add_handler(self._svc_added, self._svc_updated, self._svc_added)
        self.endpoints.add_handler(self._ep_added, self._ep_updated, self._ep_added)
        self.slices.add_handler(self._slice_changed, lambda _o, n: self._slice_changed(n),
                                lambda s: self._slice_changed(s, deleted=True))

    # -- event handlers: only enqueue ------------------------------------------------------
    def _svc_added(self, svc: Obj) -> None:
        if service_wants_mirroring(svc):
            self.queue.add(meta.key(svc))

    def _svc_updated(self, old: Obj, new: Obj) -> None:
        if service_wants_mirroring(old) != service_wants_mirroring(new):
            self.queue.add(meta.key(new))

    def _ep_added(self, ep: Obj) -> None:
        if should_mirror(ep):
            self.queue.add(meta.key(ep))

    def _ep_updated(self, old: Obj, new: Obj) -> None:
        if should_mirror(old) or should_mirror(new):
            self.queue.add(meta.key(new))

    def _slice_changed(self, slc: Obj, deleted: bool = False) -> None:
        name = meta.labels(slc).get(LABEL_SERVICE_NAME)
        if not mirrored(slc) or not name:
            return
        key = f"{meta.namespace(slc)}/{name}"
        self._tracker.observed(key, slc, deleted=deleted)
        self.queue.add(key)

    # -- sync ------------------------------------------------------------------------------
    def _mirrored_slices(self, namespace: str, name: str) -> list[Obj]:
        return [s for s in self.slices.list(namespace)
                if mirrored(s) and meta.labels(s).get(LABEL_SERVICE_NAME) == name]

    async def sync(self, key: str) -> None:
        """Bring the mirrored slices of one Endpoints object (namespace/name) in line with it."""
        ns, _, name = key.partition("/")
        existing = self._mirrored_slices(ns, name)
        ep = self.endpoints.get(key)
        if ep is None or not should_mirror(ep) or not service_wants_mirroring(self.services.get(key)):
            for s in existing:
                await self._delete(key, s)
            self._tracker.forget(key)
            return
        if self._tracker.stale(key, {meta.name(s): s for s in existing}):
            self.queue.add_after(key, 0.5)  # the informer event normally re-queues first
            return
        desired = Desired(ep, self.max_per_subset)
        if desired.invalid:
            self.recorder.event(ep, WARNING, REASON_INVALID_IP,
                                f"Skipped {desired.invalid} invalid IP addresses when mirroring to EndpointSlices")
        if desired.skipped:
            self.recorder.event(ep, WARNING, REASON_TOO_MANY,
                                f"A max of {self.max_per_subset} addresses can be mirrored to EndpointSlices per "
                                f"Endpoints subset. {desired.skipped} addresses were skipped")
        plan = reconcile(ep, existing, max_per_subset=self.max_per_subset)
        for s in plan.delete:
            await self._delete(key, s)
        for s in plan.update:
            out = await self._rc.update(s)
            self._tracker.wrote(key, meta.name(out), meta.resource_version(out))
        if meta.is_deleting(ep):
            return
        for s in plan.create:
            try:
                out = await self._rc.create(s, ns)
            except (Forbidden, NotFound):  # namespace terminating or gone
                return
            self._tracker.wrote(key, meta.name(out), meta.resource_version(out))

    async def _delete(self, key: str, slc: Obj) -> None:
        try:
            await self._rc.delete(meta.name(slc), meta.namespace(slc))
        except NotFound:
            pass
        self._tracker.wrote(key, meta.name(slc), None)

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set."""
        for inf in (self.endpoints, self.services, self.slices):
            inf.start()
        await asyncio.gather(self.endpoints.wait_synced(), self.services.wait_synced(), self.slices.wait_synced())
        # Slices whose Endpoints went away while we were down.
        for s in self.slices.list():
            self._slice_changed(s)
        try:
            await process_until(self.queue, self.sync, stop, self.workers)
        finally:
            await self.recorder.flush()
