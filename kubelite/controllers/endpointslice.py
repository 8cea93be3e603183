"""EndpointSlice controller: one set of discovery.k8s.io/v1 EndpointSlices per selector Service.

Upstream twin: ``pkg/controller/endpointslice`` and the reconciler in
``staging/src/k8s.io/endpointslice``.  Behaviour kept from upstream:

- every pod matched by the Service's selector that is not terminal and has an IP becomes
  one endpoint, *including* terminating pods, with conditions ``ready`` (Ready and not
  terminating, or publishNotReadyAddresses), ``serving`` (Ready) and ``terminating``
  (deletionTimestamp set) — the proxy needs all three for its terminating fallback;
- endpoints are grouped by their resolved port list (a named targetPort can resolve to
  different numbers on different pods); each group is packed into slices of at most
  ``max_endpoints_per_slice`` (100), reusing existing slices and touching as few as
  possible; a Service with no endpoints keeps one empty placeholder slice;
- slices are named ``<service>-<random>`` (generateName), owned by the Service, labelled
  ``kubernetes.io/service-name`` and ``endpointslice.kubernetes.io/managed-by``, copy the
  Service's labels and carry ``service.kubernetes.io/headless`` for headless Services.

The pod/service helpers at the top are shared with the Endpoints controller, as upstream
shares ``k8s.io/endpointslice/util``.

Stale caches: right after we write a slice our own informer may still hold the previous
version; a sync computed from it would create duplicates or conflict.  ``_SliceTracker``
remembers what we wrote and a sync waits (the informer event re-queues it) until the cache
has caught up, like upstream's EndpointSliceTracker.
"""
from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable
from typing import Any

from kubelite.api import meta
from kubelite.api.resources import ENDPOINTSLICES, PODS, SERVICES
from kubelite.client.errors import Forbidden, NotFound
from kubelite.client.protocols import APIClient, SharedInformerFactory
from kubelite.client.workqueue import WorkQueue, process_until

log = logging.getLogger(__name__)
Obj = dict[str, Any]

CONTROLLER_NAME = "endpointslice-controller.k8s.io"
LABEL_SERVICE_NAME = "kubernetes.io/service-name"
LABEL_MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
LABEL_HEADLESS = "service.kubernetes.io/headless"
ANNOTATION_TRIGGER_TIME = "endpoints.kubernetes.io/last-change-trigger-time"
MAX_ENDPOINTS_PER_SLICE = 100
_RESERVED_LABELS = {LABEL_SERVICE_NAME, LABEL_MANAGED_BY, LABEL_HEADLESS}


# -- shared pod / service helpers (upstream endpointslice util) ---------------------------
def selector_matches(selector: dict[str, str] | None, labels: dict[str, str]) -> bool:
    """A Service selector (plain equality map) matches labels; empty selects nothing."""
    if not selector:
        return False
    return all(labels.get(k) == v for k, v in selector.items())


def service_selects(svc: Obj) -> bool:
    """True when the controllers manage endpoints for this Service (selector, not ExternalName)."""
    spec = svc.get("spec") or {}
    return bool(spec.get("selector")) and spec.get("type") != "ExternalName"


def is_headless(svc: Obj) -> bool:
    """clusterIP None (or unset): no virtual IP, endpoints only."""
    ip = (svc.get("spec") or {}).get("clusterIP") or ""
    return ip in ("", "None")


def is_pod_ready(pod: Obj) -> bool:
    """The pod's Ready condition is True."""
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


def pod_ip(pod: Obj, family: str = "IPv4") -> str:
    """The pod's address of one IP family ('' when it has none yet)."""
    st = pod.get("status") or {}
    ips = [p.get("ip", "") for p in st.get("podIPs") or []] or [st.get("podIP", "")]
    for ip in ips:
        if ip and ((":" in ip) == (family == "IPv6")):
            return ip
    return ""


def should_pod_be_in_endpoints(pod: Obj, include_terminating: bool) -> bool:
    """Not Succeeded/Failed, has an IP, and (unless allowed) not terminating."""
    st = pod.get("status") or {}
    if st.get("phase") in ("Succeeded", "Failed"):
        return False
    if not st.get("podIP") and not st.get("podIPs"):
        return False
    return include_terminating or not meta.is_deleting(pod)


def should_set_hostname(pod: Obj, svc: Obj) -> bool:
    """Pods with spec.hostname whose subdomain names this Service publish their hostname."""
    spec = pod.get("spec") or {}
    return bool(spec.get("hostname")) and spec.get("subdomain") == meta.name(svc) \
        and meta.namespace(svc) == meta.namespace(pod)


def find_port(pod: Obj, svc_port: Obj) -> int | None:
    """The pod port a service port targets: a number, or a named container port (same protocol)."""
    target = svc_port.get("targetPort", svc_port.get("port"))
    proto = svc_port.get("protocol") or "TCP"
    if isinstance(target, int):
        return target
    if not isinstance(target, str) or not target:
        return None
    spec = pod.get("spec") or {}
    containers = list(spec.get("containers") or [])
    # Sidecars (restartable init containers) may name ports too.
    containers += [c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
    for c in containers:
        for p in c.get("ports") or []:
            if p.get("name") == target and (p.get("protocol") or "TCP") == proto:
                return p.get("containerPort")
    return None


def pod_endpoint_changed(old: Obj, new: Obj) -> tuple[bool, bool]:
    """(pod changed in a way that affects its endpoint, labels/hostname changed)."""
    labels_changed = meta.labels(old) != meta.labels(new) or \
        (old.get("spec") or {}).get("hostname") != (new.get("spec") or {}).get("hostname") or \
        (old.get("spec") or {}).get("subdomain") != (new.get("spec") or {}).get("subdomain")
    os_, ns_ = old.get("status") or {}, new.get("status") or {}
    changed = (meta.is_deleting(old) != meta.is_deleting(new)
               or is_pod_ready(old) != is_pod_ready(new)
               or os_.get("podIP") != ns_.get("podIP") or os_.get("podIPs") != ns_.get("podIPs")
               or os_.get("phase") != ns_.get("phase")
               or (old.get("spec") or {}).get("nodeName") != (new.get("spec") or {}).get("nodeName"))
    return changed, labels_changed


def trigger_time(svc: Obj, pods: Iterable[Obj]) -> str:
    """The last-change-trigger-time annotation: the latest pod state change or service creation.

    Upstream tracks per-sync deltas; the latest Ready transition (or creation) among the
    selected pods is the same value in the common case and needs no memory."""
    best = (svc.get("metadata") or {}).get("creationTimestamp") or ""
    for pod in pods:
        t = (pod.get("metadata") or {}).get("creationTimestamp") or ""
        for c in (pod.get("status") or {}).get("conditions") or []:
            if c.get("type") == "Ready" and c.get("lastTransitionTime"):
                t = max(t, c["lastTransitionTime"])
        best = max(best, t)
    return best


def pods_for_service(pods: Iterable[Obj], svc: Obj) -> list[Obj]:
    """Pods of the Service's namespace its selector matches."""
    sel = (svc.get("spec") or {}).get("selector")
    return [p for p in pods if selector_matches(sel, meta.labels(p))]


def services_for_pod(services: Iterable[Obj], labels: dict[str, str]) -> set[str]:
    """Keys of the Services (of the pod's namespace) whose selector matches labels."""
    return {meta.key(s) for s in services if selector_matches((s.get("spec") or {}).get("selector"), labels)}


def services_for_pod_change(services: Iterable[Obj], old: Obj, new: Obj) -> set[str]:
    """Keys of the Services a pod update concerns (both label sets when labels changed);
    empty when nothing an endpoint shows has changed.  Shared by both endpoint controllers."""
    if meta.resource_version(old) == meta.resource_version(new):
        return set()
    changed, labels_changed = pod_endpoint_changed(old, new)
    if not changed and not labels_changed:
        return set()
    svcs = list(services)
    keys = services_for_pod(svcs, meta.labels(new))
    if labels_changed:  # over-enqueueing is harmless; missing a Service is not
        keys |= services_for_pod(svcs, meta.labels(old))
    return keys


def _rv_at_least(have: str, want: str) -> bool:
    if have.isdigit() and want.isdigit():
        return int(have) >= int(want)
    return have == want


# -- slice construction --------------------------------------------------------------------
def endpoint_ports(svc: Obj, pod: Obj) -> list[Obj]:
    """The slice ports for one pod (ports whose target cannot be resolved are left out)."""
    out = []
    for sp in (svc.get("spec") or {}).get("ports") or []:
        num = find_port(pod, sp)
        if num is None:
            continue
        p: Obj = {"name": sp.get("name", ""), "port": num, "protocol": sp.get("protocol") or "TCP"}
        if sp.get("appProtocol"):
            p["appProtocol"] = sp["appProtocol"]
        out.append(p)
    return out


def port_map_key(ports: list[Obj]) -> str:
    """Order-independent identity of a port list (upstream's PortMapKey)."""
    return json.dumps(sorted(json.dumps(p, sort_keys=True) for p in ports))


def pod_to_endpoint(pod: Obj, svc: Obj, family: str = "IPv4") -> Obj:
    """One discovery/v1 Endpoint for a pod."""
    serving = is_pod_ready(pod)
    terminating = meta.is_deleting(pod)
    publish = bool((svc.get("spec") or {}).get("publishNotReadyAddresses"))
    ep: Obj = {
        "addresses": [pod_ip(pod, family)],
        "conditions": {"ready": publish or (serving and not terminating),
                       "serving": serving, "terminating": terminating},
        "targetRef": {"kind": "Pod", "namespace": meta.namespace(pod), "name": meta.name(pod),
                      "uid": meta.uid(pod)},
    }
    node = (pod.get("spec") or {}).get("nodeName")
    if node:
        ep["nodeName"] = node
    if should_set_hostname(pod, svc):
        ep["hostname"] = pod["spec"]["hostname"]
    return ep


def _ep_id(ep: Obj) -> str:
    # Identity of an endpoint inside a slice (upstream hashes addresses, hostname, targetRef).
    ref = ep.get("targetRef") or {}
    return json.dumps([sorted(ep.get("addresses") or []), ep.get("hostname", ""), ref.get("uid", ""),
                       ref.get("name", "")])


def _ep_equal(a: Obj, b: Obj) -> bool:
    def strip(e: Obj) -> Obj:
        e = dict(e)
        if e.get("targetRef"):
            e["targetRef"] = {k: v for k, v in e["targetRef"].items() if k != "resourceVersion"}
        return e
    return strip(a) == strip(b)


def slice_labels(svc: Obj, current: dict[str, str] | None = None) -> dict[str, str]:
    """Service labels plus the reserved slice labels."""
    out = {k: v for k, v in meta.labels(svc).items() if k not in _RESERVED_LABELS}
    if is_headless(svc):
        out[LABEL_HEADLESS] = ""
    out[LABEL_SERVICE_NAME] = meta.name(svc)
    out[LABEL_MANAGED_BY] = CONTROLLER_NAME
    return out


def address_types(svc: Obj) -> list[str]:
    """The slice address types a Service needs (from spec.ipFamilies)."""
    fams = (svc.get("spec") or {}).get("ipFamilies") or []
    types = [f for f in ("IPv4", "IPv6") if f in fams]
    if types:
        return types
    ip = (svc.get("spec") or {}).get("clusterIP") or ""
    if ip and ip != "None":
        return ["IPv6" if ":" in ip else "IPv4"]
    return ["IPv4"]


def new_slice(svc: Obj, ports: list[Obj], address_type: str) -> Obj:
    """An empty EndpointSlice owned by the Service (the server picks the name)."""
    name = meta.name(svc)
    return {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"generateName": f"{name}-", "namespace": meta.namespace(svc),
                     "labels": slice_labels(svc),
                     "ownerReferences": [meta.new_controller_ref(svc, "v1", "Service")]},
        "addressType": address_type, "ports": ports, "endpoints": [],
    }


def owned_by(slc: Obj, svc: Obj) -> bool:
    """The slice is owned by this very Service object (same uid)."""
    return any(o.get("uid") == meta.uid(svc) and o.get("kind") == "Service" and o.get("apiVersion") == "v1"
               for o in (slc.get("metadata") or {}).get("ownerReferences") or [])


def _is_placeholder(slc: Obj) -> bool:
    return not slc.get("endpoints") and not slc.get("ports")


class Plan:
    """What one reconcile decided: slices to create, update (full objects) and delete."""

    def __init__(self) -> None:
        self.create: list[Obj] = []
        self.update: list[Obj] = []
        self.delete: list[Obj] = []


def reconcile(svc: Obj, pods: list[Obj], existing: list[Obj], *,
              max_per_slice: int = MAX_ENDPOINTS_PER_SLICE) -> Plan:
    """Pure reconcile: desired endpoints vs existing slices → the smallest set of writes."""
    plan = Plan()
    types = address_types(svc)
    by_type: dict[str, list[Obj]] = {}
    for s in existing:
        if s.get("addressType") in types:
            by_type.setdefault(s["addressType"], []).append(s)
        else:
            plan.delete.append(s)
    for at in types:
        _reconcile_address_type(svc, pods, by_type.get(at, []), at, max_per_slice, plan)
    # Turn creates into updates of slices we would delete anyway (fewer API objects churned).
    i = 0
    while i < len(plan.delete) and plan.create:
        victim = plan.delete[i]
        if owned_by(victim, svc) and victim.get("addressType") == plan.create[-1]["addressType"]:
            slc = plan.create.pop()
            slc["metadata"] = {**victim["metadata"], "labels": slc["metadata"]["labels"]}
            plan.update.append(slc)
            plan.delete.pop(i)
        else:
            i += 1
    return plan


def _reconcile_address_type(svc: Obj, pods: list[Obj], existing: list[Obj], at: str,
                            max_per_slice: int, plan: Plan) -> None:
    mine: dict[str, list[Obj]] = {}
    n_deleted_before = len(plan.delete)
    for s in existing:
        if owned_by(s, svc):
            mine.setdefault(port_map_key(s.get("ports") or []), []).append(s)
        else:
            plan.delete.append(s)
    desired: dict[str, dict[str, Obj]] = {}
    desired_ports: dict[str, list[Obj]] = {}
    for pod in pods:
        if not should_pod_be_in_endpoints(pod, True) or not pod_ip(pod, at):
            continue
        ports = endpoint_ports(svc, pod)
        k = port_map_key(ports)
        desired_ports.setdefault(k, ports)
        ep = pod_to_endpoint(pod, svc, at)
        desired.setdefault(k, {})[_ep_id(ep)] = ep
    n_create_before = len(plan.create)
    for k, eps in desired.items():
        _reconcile_port_map(svc, mine.get(k, []), eps, desired_ports[k], at, max_per_slice, plan)
    for k, slices in mine.items():
        if k not in desired:
            plan.delete.extend(slices)
    # Keep (or create) one empty placeholder so the Service always has a slice.
    deleted_here = plan.delete[n_deleted_before:]
    if len(deleted_here) == len(existing) and len(plan.create) == n_create_before:
        if len(deleted_here) == 1 and _is_placeholder(deleted_here[0]) and owned_by(deleted_here[0], svc):
            plan.delete.pop(plan.delete.index(deleted_here[0]))
            if deleted_here[0].get("metadata", {}).get("labels") != slice_labels(svc):
                upd = {**deleted_here[0], "metadata": {**deleted_here[0]["metadata"], "labels": slice_labels(svc)}}
                plan.update.append(upd)
        else:
            plan.create.append(new_slice(svc, [], at))


def _reconcile_port_map(svc: Obj, existing: list[Obj], desired: dict[str, Obj], ports: list[Obj],
                        at: str, max_per_slice: int, plan: Plan) -> None:
    remaining = dict(desired)
    to_update: list[Obj] = []
    unchanged: list[Obj] = []
    labels = slice_labels(svc)
    for s in existing:
        kept = []
        changed = False
        for ep in s.get("endpoints") or []:
            want = remaining.pop(_ep_id(ep), None)
            if want is None:
                changed = True
                continue
            if not _ep_equal(want, ep):
                changed = True
            kept.append(want)
        if (s.get("metadata") or {}).get("labels") != labels:
            changed = True
        if changed:
            upd = {**s, "metadata": {**s["metadata"], "labels": labels}, "endpoints": kept}
            if kept:
                to_update.append(upd)
            else:
                plan.delete.append(s)
        else:
            unchanged.append(s)
    new_eps = list(remaining.values())
    # First fill slices that are being written anyway.
    for s in to_update:
        room = max_per_slice - len(s["endpoints"])
        if room > 0 and new_eps:
            s["endpoints"] = s["endpoints"] + new_eps[:room]
            new_eps = new_eps[room:]
    # Then whole new slices; a last partial chunk may go into an unchanged slice with room.
    while new_eps:
        if len(new_eps) < max_per_slice:
            target = _slice_to_fill(unchanged, len(new_eps), max_per_slice)
            if target is not None:
                unchanged.remove(target)
                to_update.append({**target, "endpoints": list(target.get("endpoints") or []) + new_eps})
                break
        slc = new_slice(svc, ports, at)
        slc["endpoints"] = new_eps[:max_per_slice]
        new_eps = new_eps[max_per_slice:]
        plan.create.append(slc)
    plan.update.extend(to_update)


def _slice_to_fill(slices: list[Obj], n: int, max_per_slice: int) -> Obj | None:
    best, best_diff = None, max_per_slice
    for s in slices:
        diff = max_per_slice - (n + len(s.get("endpoints") or []))
        if 0 <= diff < best_diff:
            best, best_diff = s, diff
    return best


class _SliceTracker:
    """What we last wrote per service, so a sync never trusts a cache that lags our writes."""

    def __init__(self) -> None:
        self._want: dict[str, dict[str, str | None]] = {}  # svc key -> slice name -> rv (None: deleted)

    def wrote(self, svc_key: str, name: str, rv: str | None) -> None:
        self._want.setdefault(svc_key, {})[name] = rv

    def observed(self, svc_key: str, slc: Obj, deleted: bool = False) -> None:
        want = self._want.get(svc_key)
        if not want:
            return
        name = meta.name(slc)
        if name not in want:
            return
        rv = want[name]
        if deleted or (rv is not None and _rv_at_least(meta.resource_version(slc), rv)):
            want.pop(name, None)

    def stale(self, svc_key: str, cache: dict[str, Obj]) -> bool:
        want = self._want.get(svc_key) or {}
        for name, rv in list(want.items()):
            have = cache.get(name)
            if rv is None:
                if have is None:
                    want.pop(name)
            elif have is not None and _rv_at_least(meta.resource_version(have), rv):
                want.pop(name)
        return bool(want)

    def forget(self, svc_key: str) -> None:
        self._want.pop(svc_key, None)


class EndpointSliceController:
    """Keeps the EndpointSlices of every selector Service in step with its pods."""

    def __init__(self, client: APIClient, factory: SharedInformerFactory, *, workers: int = 4,
                 max_endpoints_per_slice: int = MAX_ENDPOINTS_PER_SLICE):
        self.client = client
        self.services = factory.informer(SERVICES)
        self.pods = factory.informer(PODS)
        self.slices = factory.informer(ENDPOINTSLICES)
        self._rc = client.resource(ENDPOINTSLICES)
        self.queue = WorkQueue("endpointslice")
        self.workers = workers
        self.max_per_slice = max_endpoints_per_slice
        self._tracker = _SliceTracker()
        self.services.add_handler(self._svc_event, lambda o, n: self._svc_event(n), self._svc_event)
        self.pods.add_handler(self._pod_add, self._pod_update, self._pod_add)
        self.slices.add_handler(self._slice_add, self._slice_update, self._slice_delete)

    # -- event handlers: only enqueue ------------------------------------------------------
    def _svc_event(self, svc: Obj) -> None:
        self.queue.add(meta.key(svc))

    def _pod_add(self, pod: Obj) -> None:
        for k in services_for_pod(self.services.list(meta.namespace(pod)), meta.labels(pod)):
            self.queue.add(k)

    def _pod_update(self, old: Obj, new: Obj) -> None:
        for k in services_for_pod_change(self.services.list(meta.namespace(new)), old, new):
            self.queue.add(k)

    @staticmethod
    def _svc_key_of(slc: Obj) -> str | None:
        labels = meta.labels(slc)
        if labels.get(LABEL_MANAGED_BY) != CONTROLLER_NAME or not labels.get(LABEL_SERVICE_NAME):
            return None
        return f"{meta.namespace(slc)}/{labels[LABEL_SERVICE_NAME]}"

    def _slice_add(self, slc: Obj) -> None:
        k = self._svc_key_of(slc)
        if k:
            self._tracker.observed(k, slc)
            self.queue.add(k)

    def _slice_update(self, old: Obj, new: Obj) -> None:
        k_old, k_new = self._svc_key_of(old), self._svc_key_of(new)
        if k_new:
            self._tracker.observed(k_new, new)
            self.queue.add(k_new)
        if k_old and k_old != k_new:
            self.queue.add(k_old)

    def _slice_delete(self, slc: Obj) -> None:
        k = self._svc_key_of(slc)
        if k:
            self._tracker.observed(k, slc, deleted=True)
            self.queue.add(k)

    # -- sync ------------------------------------------------------------------------------
    def _managed_slices(self, namespace: str, name: str) -> list[Obj]:
        return [s for s in self.slices.list(namespace)
                if meta.labels(s).get(LABEL_SERVICE_NAME) == name
                and meta.labels(s).get(LABEL_MANAGED_BY) == CONTROLLER_NAME]

    async def sync(self, key: str) -> None:
        """Bring the slices of one Service (namespace/name) in line with its pods."""
        ns, _, name = key.partition("/")
        existing = self._managed_slices(ns, name)
        svc = self.services.get(key)
        if svc is None or not service_selects(svc):
            # Upstream leaves a deleted Service's slices to the garbage collector; deleting
            # here keeps `get endpointslices` honest without one (404s are harmless).
            for s in existing:
                await self._delete(key, s)
            if svc is None:
                self._tracker.forget(key)
            return
        cache = {meta.name(s): s for s in existing}
        if self._tracker.stale(key, cache):
            self.queue.add_after(key, 0.5)  # the informer event normally re-queues first
            return
        pods = pods_for_service(self.pods.list(ns), svc)
        plan = reconcile(svc, pods, existing, max_per_slice=self.max_per_slice)
        ttime = trigger_time(svc, pods)
        for s in plan.delete:
            await self._delete(key, s)
        for s in plan.update:
            _set_trigger_time(s, ttime)
            out = await self._rc.update(s)
            self._tracker.wrote(key, meta.name(out), meta.resource_version(out))
        if meta.is_deleting(svc):
            return  # creating now would race the garbage collector
        for s in plan.create:
            _set_trigger_time(s, ttime)
            try:
                out = await self._rc.create(s, ns)
            except (Forbidden, NotFound) as e:
                if isinstance(e, NotFound) and "namespace" not in e.message.lower():
                    raise
                return  # namespace terminating
            self._tracker.wrote(key, meta.name(out), meta.resource_version(out))

    async def _delete(self, key: str, slc: Obj) -> None:
        try:
            await self._rc.delete(meta.name(slc), meta.namespace(slc))
        except NotFound:
            pass
        self._tracker.wrote(key, meta.name(slc), None)

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set."""
        for inf in (self.services, self.pods, self.slices):
            inf.start()
        await asyncio.gather(self.services.wait_synced(), self.pods.wait_synced(), self.slices.wait_synced())
        for svc in self.services.list():
            self.queue.add(meta.key(svc))
        # Slices whose Service is gone (deleted while we were down).
        for s in self.slices.list():
            k = self._svc_key_of(s)
            if k:
                self.queue.add(k)
        await process_until(self.queue, self.sync, stop, self.workers)


def _set_trigger_time(slc: Obj, t: str) -> None:
    md = slc.setdefault("metadata", {})
    ann = dict(md.get("annotations") or {})
    if t:
        ann[ANNOTATION_TRIGGER_TIME] = t
    else:
        ann.pop(ANNOTATION_TRIGGER_TIME, None)
    md["annotations"] = ann
