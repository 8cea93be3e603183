"""The cluster as the DNS server sees it: Services, their ready endpoints, namespaces.

The informers' caches hold whole objects; a query needs lookups by name and by address.
Rather than update indexes in every event handler, a change only marks the index stale and
the next query rebuilds it from the caches in one pass: Services and slices are few next
to queries, and a rebuild can never drift from the caches.
"""
from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from kubelite.client.protocols import Lister

Obj = dict[str, Any]
SERVICE_NAME_LABEL = "kubernetes.io/service-name"


class Port(NamedTuple):
    """A port of a Service or an EndpointSlice; port -1 when a slice lists none."""

    name: str
    port: int
    protocol: str


class Address(NamedTuple):
    """One ready endpoint address and the label that names it under its Service."""

    ip: str
    hostname: str  # the endpoint's hostname, else its address with dashes


class Subset(NamedTuple):
    """The ready addresses of one EndpointSlice with the slice's ports."""

    addresses: list[Address]
    ports: list[Port]


@dataclass
class ServiceEntry:
    """What DNS needs of one Service."""

    namespace: str
    name: str
    headless: bool
    external_name: str          # set for type ExternalName
    cluster_ips: list[str]
    ports: list[Port]
    subsets: list[Subset] = field(default_factory=list)


def endpoint_label(ip: str, hostname: str) -> str:
    """The DNS label of an endpoint: its hostname, else its address with dashes."""
    if hostname:
        return hostname
    if ":" in ip:
        label = ip.replace(":", "-")
        return label + "0" if label.endswith("-") else label
    return ip.replace(".", "-")


def _ready(ep: Obj) -> bool:
    # A missing ready condition counts as ready (EndpointSlice API semantics).
    return (ep.get("conditions") or {}).get("ready") is not False


def _service_entry(svc: Obj) -> ServiceEntry:
    md, spec = svc.get("metadata") or {}, svc.get("spec") or {}
    ips = [ip for ip in (spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else []))
           if ip and ip != "None"]
    ports = [Port(p.get("name") or "", int(p.get("port") or 0), p.get("protocol") or "TCP")
             for p in spec.get("ports") or []]
    return ServiceEntry(namespace=md.get("namespace", ""), name=md.get("name", ""),
                        headless=spec.get("clusterIP") == "None",
                        external_name=spec.get("externalName") or "" if spec.get("type") == "ExternalName" else "",
                        cluster_ips=ips, ports=ports)


def _subset(eps: Obj) -> Subset:
    ports = [Port(p.get("name") or "", int(p["port"]) if p.get("port") is not None else -1, p.get("protocol") or "")
             for p in eps.get("ports") or []] or [Port("", -1, "")]
    addrs = [Address(a, endpoint_label(a, ep.get("hostname") or ""))
             for ep in eps.get("endpoints") or [] if _ready(ep) for a in ep.get("addresses") or []]
    return Subset(addrs, ports)


class ClusterIndex:
    """Services by name, names by address, namespaces; rebuilt lazily after a change."""

    def __init__(self, services: Lister, slices: Lister, namespaces: Lister) -> None:
        self._services, self._slices, self._namespaces = services, slices, namespaces
        self._stale = True
        self.generation = 0      # bumped by every change: answers cached before it are stale
        self.synced = False
        self.serial = int(time.time())
        self.by_name: dict[tuple[str, str], ServiceEntry] = {}
        self.by_cluster_ip: dict[str, ServiceEntry] = {}
        self.by_endpoint_ip: dict[str, list[tuple[ServiceEntry, str]]] = {}
        self.namespaces: set[str] = set()

    def changed(self, *_: object) -> None:
        """An informer handler: something changed, rebuild before the next answer."""
        self._stale = True
        self.generation += 1

    def refresh(self) -> None:
        """Rebuild the lookups if anything changed since the last one."""
        if not self._stale:
            return
        self._stale = False
        self.serial = max(self.serial + 1, int(time.time()))
        by_name: dict[tuple[str, str], ServiceEntry] = {}
        for svc in self._services.list():
            e = _service_entry(svc)
            by_name[(e.namespace, e.name)] = e
        for eps in self._slices.list():
            md = eps.get("metadata") or {}
            owner = by_name.get((md.get("namespace", ""), (md.get("labels") or {}).get(SERVICE_NAME_LABEL, "")))
            if owner is not None:
                owner.subsets.append(_subset(eps))
        by_cip: dict[str, ServiceEntry] = {}
        by_eip: dict[str, list[tuple[ServiceEntry, str]]] = {}
        for e in by_name.values():
            for ip in e.cluster_ips:
                by_cip.setdefault(_norm(ip), e)
            for sub in e.subsets:
                for a in sub.addresses:
                    by_eip.setdefault(_norm(a.ip), []).append((e, a.hostname))
        self.by_name, self.by_cluster_ip, self.by_endpoint_ip = by_name, by_cip, by_eip
        self.namespaces = {(o.get("metadata") or {}).get("name", "") for o in self._namespaces.list()}


def _norm(ip: str) -> str:
    try:
        return str(ipaddress.ip_address(ip))
    except ValueError:
        return ip
