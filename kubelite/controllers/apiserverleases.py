"""The ``kubernetes`` Service lists every live API server (upstream's lease endpoint reconciler).

Each server keeps a Lease ``kube-system/kube-apiserver-<id>`` naming its address and port
(annotations) and renews it every RENEW_INTERVAL seconds; every server then writes the
Endpoints and EndpointSlices of ``default/kubernetes`` from the Leases renewed within
their duration.  A server that stops deletes its Lease and rewrites the list without
itself; one killed drops out once its Lease expires.  Upstream keeps these records as
etcd keys with a TTL (``/registry/masterleases/<ip>``) and all its servers share one port;
here they are Lease objects (``kubectl get leases -n kube-system`` shows them), and when
servers listen on different ports (several on one host) the Endpoints get one subset per
port, and each port past the first its own EndpointSlice ``kubernetes-<port>``.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from typing import Any

from kubelite.api import meta
from kubelite.api.resources import ENDPOINTS, ENDPOINTSLICES, LEASES, ResourceInfo
from kubelite.client.errors import AlreadyExists, Conflict, NotFound, StatusError
from kubelite.client.rest import Client

Obj = dict[str, Any]
log = logging.getLogger(__name__)

NAMESPACE = "kube-system"
IDENTITY_LABEL = "apiserver.kubernetes.io/identity"
IDENTITY_VALUE = "kube-apiserver"
ADDRESS_ANNOTATION = "kubelite.dev/apiserver-address"
PORT_ANNOTATION = "kubelite.dev/apiserver-port"
LEASE_DURATION = 15      # seconds a Lease counts as live after its renewal (upstream's master lease TTL)
RENEW_INTERVAL = 5.0     # seconds between renewals (and reconciliations)
SERVICE = "kubernetes"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"


def lease_name(address: str, port: int, host: str) -> str:
    """A stable name for one server: the same after a restart, distinct per address and port."""
    digest = hashlib.sha256(f"{host}|{address}|{port}".encode()).hexdigest()[:16]
    return f"kube-apiserver-{digest}"


def live_servers(leases: list[Obj], now: float) -> list[tuple[str, int]]:
    """The (address, port) of every Lease renewed within its duration, sorted."""
    out: set[tuple[str, int]] = set()
    for lease in leases:
        spec = lease.get("spec") or {}
        ann = lease.get("metadata", {}).get("annotations") or {}
        renewed = meta.parse_time(spec.get("renewTime") or "")
        if renewed is None or not ann.get(ADDRESS_ANNOTATION) or not ann.get(PORT_ANNOTATION):
            continue
        if now >= renewed.timestamp() + float(spec.get("leaseDurationSeconds") or LEASE_DURATION):
            continue
        try:
            out.add((ann[ADDRESS_ANNOTATION], int(ann[PORT_ANNOTATION])))
        except ValueError:
            continue
    return sorted(out)


def by_port(servers: list[tuple[str, int]]) -> list[tuple[int, list[str]]]:
    """Addresses grouped by port; the port most servers use first (then the lowest)."""
    groups: dict[int, list[str]] = {}
    for addr, port in servers:
        groups.setdefault(port, []).append(addr)
    return sorted(((p, sorted(a)) for p, a in groups.items()), key=lambda g: (-len(g[1]), g[0]))


def endpoints_subsets(servers: list[tuple[str, int]]) -> list[Obj]:
    """The ``subsets`` of Endpoints default/kubernetes."""
    return [{"addresses": [{"ip": a} for a in addrs], "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}
            for port, addrs in sorted(by_port(servers))]


def endpoint_slices(servers: list[tuple[str, int]]) -> dict[str, Obj]:
    """The EndpointSlices of default/kubernetes by name (``kubernetes``, ``kubernetes-<port>``)."""
    out: dict[str, Obj] = {}
    for i, (port, addrs) in enumerate(by_port(servers)):
        name = SERVICE if i == 0 else f"{SERVICE}-{port}"
        out[name] = {
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name, "namespace": "default", "labels": {SERVICE_NAME_LABEL: SERVICE}},
            "addressType": "IPv6" if ":" in addrs[0] else "IPv4",
            "endpoints": [{"addresses": [a], "conditions": {"ready": True}} for a in addrs],
            "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
        }
    return out


class APIServerLeases:
    """Keeps this server's Lease and the ``kubernetes`` Service's endpoints."""

    def __init__(self, client: Client, *, address: str, port: int, host: str = ""):
        self.client = client
        self.address = address
        self.port = port
        self.name = lease_name(address, port, host)

    async def renew(self) -> None:
        """Create or renew this server's Lease."""
        leases = self.client.resource(LEASES)
        now = meta.rfc3339_micro()
        try:
            cur = await leases.get(self.name, NAMESPACE)
        except NotFound:
            await leases.create({
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.name, "namespace": NAMESPACE,
                             "labels": {IDENTITY_LABEL: IDENTITY_VALUE},
                             "annotations": {ADDRESS_ANNOTATION: self.address, PORT_ANNOTATION: str(self.port)}},
                "spec": {"holderIdentity": self.name, "leaseDurationSeconds": LEASE_DURATION,
                         "acquireTime": now, "renewTime": now}}, NAMESPACE)
            return
        cur.setdefault("spec", {})["renewTime"] = now
        cur["spec"]["holderIdentity"] = self.name
        cur["spec"]["leaseDurationSeconds"] = LEASE_DURATION
        ann = cur["metadata"].setdefault("annotations", {})
        ann[ADDRESS_ANNOTATION], ann[PORT_ANNOTATION] = self.address, str(self.port)
        await leases.update(cur)

    async def reconcile(self, *, without_self: bool = False) -> None:
        """Write the endpoints of ``default/kubernetes`` from the live Leases."""
        listed = await self.client.resource(LEASES).list(NAMESPACE, label_selector=f"{IDENTITY_LABEL}={IDENTITY_VALUE}")
        items = [i for i in listed.get("items") or [] if not (without_self and i["metadata"]["name"] == self.name)]
        servers = live_servers(items, time.time())
        if not servers:
            return  # nobody to list (this server stopping last): leave the last list
        await self._put(ENDPOINTS, SERVICE, {"subsets": endpoints_subsets(servers)},
                        {"apiVersion": "v1", "kind": "Endpoints",
                         "metadata": {"name": SERVICE, "namespace": "default",
                                      "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}}})
        want = endpoint_slices(servers)
        for name, obj in want.items():
            await self._put(ENDPOINTSLICES, name, {k: obj[k] for k in ("addressType", "endpoints", "ports")}, obj)
        slices = await self.client.resource(ENDPOINTSLICES).list("default", label_selector=f"{SERVICE_NAME_LABEL}={SERVICE}")
        for s in slices.get("items") or []:
            name = s["metadata"]["name"]
            if name not in want and name.startswith(f"{SERVICE}-") and name[len(SERVICE) + 1:].isdigit():
                try:
                    await self.client.resource(ENDPOINTSLICES).delete(name, "default")
                except NotFound:
                    pass

    async def _put(self, info: ResourceInfo, name: str, fields: Obj, fresh: Obj) -> None:
        """Make the object's ``fields`` these (create it when missing); retried on conflicts."""
        res = self.client.resource(info)
        for _ in range(10):
            try:
                cur = await res.get(name, "default")
            except NotFound:
                try:
                    await res.create({**fresh, **fields}, "default")
                    return
                except AlreadyExists:
                    continue
            if all(cur.get(k) == v for k, v in fields.items()):
                return
            cur.update(fields)
            try:
                await res.update(cur)
                return
            except Conflict:
                continue

    async def run(self, stop: asyncio.Event) -> None:
        """Renew and reconcile until ``stop``; then delete the Lease and list the others."""
        while not stop.is_set():
            try:
                await self.renew()
                await self.reconcile()
            except Exception as e:  # the API may be busy or briefly unreachable: next round
                log.warning("apiserver lease %s: %s", self.name, e)
            try:
                await asyncio.wait_for(stop.wait(), RENEW_INTERVAL)
            except TimeoutError:
                pass
        try:
            await self.client.resource(LEASES).delete(self.name, NAMESPACE)
        except (StatusError, OSError):
            pass
        try:
            await self.reconcile(without_self=True)
        except (StatusError, OSError) as e:
            log.warning("apiserver lease %s: removing this server from the endpoints: %s", self.name, e)
