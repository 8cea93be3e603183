"""Cluster DNS inside ``kubelite server``: where it listens, and the kube-dns Service.

k3s runs CoreDNS as a pod behind the ``kube-dns`` Service; kubelite answers that Service
itself.  The Service sits at upstream's fixed address, the 10th of the service range
(10.43.0.10 in k3s, 127.96.0.10 with kubelite's default range), with upstream's ports
(``dns`` 53/UDP, ``dns-tcp`` 53/TCP, ``metrics`` 9153/TCP); its endpoints name the
address where this server's DNS listener is:

- pods in network namespaces: the pod bridge's gateway (10.244.N.1), which every pod
  reaches; the listener binds it before the bridge exists (IP_FREEBIND);
- pods on the host network (and the fake runtime): 127.(N+1).255.254, inside the node
  slot's own loopback range, so two servers on one machine never share it.

The port is 53 when the server runs as root, else 10053 (a non-root process cannot bind
53); ``--cluster-dns-port`` chooses another.  The listener is an API client like every
component: it lists and watches Services, EndpointSlices and Namespaces with the rights
k3s gives CoreDNS (ClusterRole ``system:coredns``).
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

from kubelite.api import errors
from kubelite.api.resources import (
    CLUSTERROLEBINDINGS,
    CLUSTERROLES,
    ENDPOINTS,
    ENDPOINTSLICES,
    NAMESPACES,
    SERVICES,
    ResourceInfo,
)
from kubelite.apiserver.registry import Registry
from kubelite.client.informer import InformerFactory
from kubelite.client.protocols import APIClient
from kubelite.dns.forward import Forwarder, Upstream, choose_upstreams
from kubelite.dns.index import ClusterIndex
from kubelite.dns.options import DNSOptions
from kubelite.dns.records import Resolver
from kubelite.dns.server import DNSServer
from kubelite.images.offline import offline_from_env

Obj = dict[str, Any]
log = logging.getLogger("kubelite.dns")

NAMESPACE = "kube-system"
SERVICE = "kube-dns"
USER = "kubelite:coredns"      # the identity of the in-process DNS server
ROLE = "system:coredns"        # k3s's name for CoreDNS's ClusterRole
ROOT_PORT = 53
NONROOT_PORT = 10053
METRICS_PORT = 9153


def kube_dns_ip(service_cidr: str) -> str:
    """The kube-dns ClusterIP: the 10th address of the service range, as upstream."""
    return str(ipaddress.ip_network(service_cidr, strict=False).network_address + 10)


def default_port() -> int:
    """53 when we may bind it, else the documented high port."""
    return ROOT_PORT if os.geteuid() == 0 else NONROOT_PORT


def listen_address(network: object, slot_index: int) -> tuple[str, bool]:
    """(address, needs IP_FREEBIND) for the node's pod network."""
    from kubelite.node.runtime.netns import NetnsNetwork
    if isinstance(network, NetnsNetwork):
        return network.gateway, True
    return f"127.{slot_index + 1}.255.254", False


def service_object(cluster_ip: str) -> Obj:
    """The kube-dns Service, as upstream's addon manifest defines it."""
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": SERVICE, "namespace": NAMESPACE,
                     "labels": {"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true",
                                "kubernetes.io/name": "CoreDNS"},
                     "annotations": {"prometheus.io/port": str(METRICS_PORT), "prometheus.io/scrape": "true"}},
        "spec": {"type": "ClusterIP", "clusterIP": cluster_ip, "clusterIPs": [cluster_ip],
                 "sessionAffinity": "None",
                 "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                           {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                           {"name": "metrics", "port": METRICS_PORT, "protocol": "TCP", "targetPort": METRICS_PORT}]},
    }


def endpoint_objects(address: str, port: int) -> tuple[Obj, Obj]:
    """The Endpoints and EndpointSlice naming the DNS listener (no metrics: none is served)."""
    ports = [{"name": "dns", "port": port, "protocol": "UDP"}, {"name": "dns-tcp", "port": port, "protocol": "TCP"}]
    # The endpoints controllers leave a selector-less Service's endpoints alone, and the
    # mirroring controller skips what carries skip-mirror: these stay as written here.
    ep = {"apiVersion": "v1", "kind": "Endpoints",
          "metadata": {"name": SERVICE, "namespace": NAMESPACE,
                       "labels": {"k8s-app": "kube-dns", "endpointslice.kubernetes.io/skip-mirror": "true"}},
          "subsets": [{"addresses": [{"ip": address}], "ports": ports}]}
    family = "IPv6" if ":" in address else "IPv4"
    eps = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
           "metadata": {"name": SERVICE, "namespace": NAMESPACE,
                        "labels": {"kubernetes.io/service-name": SERVICE, "k8s-app": "kube-dns",
                                   "endpointslice.kubernetes.io/managed-by": "cluster-dns.kubelite.dev"}},
           "addressType": family,
           "endpoints": [{"addresses": [address], "conditions": {"ready": True, "serving": True, "terminating": False}}],
           "ports": ports}
    return ep, eps


def rbac_objects() -> list[tuple[ResourceInfo, Obj]]:
    """ClusterRole system:coredns and its binding to the DNS server's identity (and k3s's SA)."""
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": ROLE, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
            "rules": [{"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"],
                       "verbs": ["list", "watch"]},
                      {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
                       "verbs": ["list", "watch"]}]}
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": ROLE, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": ROLE},
               "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": USER},
                            {"kind": "ServiceAccount", "name": "coredns", "namespace": NAMESPACE}]}
    return [(CLUSTERROLES, role), (CLUSTERROLEBINDINGS, binding)]


async def _create_or_keep(reg: Registry, info: ResourceInfo, ns: str, obj: Obj) -> None:
    try:
        await reg.get(info, ns, obj["metadata"]["name"])
    except errors.NotFound:
        await reg.create(info, ns, obj)


async def _put(reg: Registry, info: ResourceInfo, ns: str, obj: Obj, fields: tuple[str, ...]) -> None:
    try:
        cur = await reg.get(info, ns, obj["metadata"]["name"])
    except errors.NotFound:
        await reg.create(info, ns, obj)
        return
    if all(cur.get(f) == obj.get(f) for f in fields):
        return

    def mutate(o: Obj) -> Obj:
        for f in fields:
            o[f] = obj[f]
        return o
    await reg.guaranteed_update(info, ns, obj["metadata"]["name"], mutate)


async def ensure_service(reg: Registry, service_cidr: str) -> None:
    """Create the kube-dns Service and the DNS server's RBAC (kept as they are when present)."""
    for info, obj in rbac_objects():
        await _create_or_keep(reg, info, "", obj)
    try:
        await _create_or_keep(reg, SERVICES, NAMESPACE, service_object(kube_dns_ip(service_cidr)))
    except errors.StatusError as e:  # e.g. someone's Service already holds the address
        log.warning("cannot create the %s/%s Service: %s", NAMESPACE, SERVICE, e)


async def publish_endpoints(reg: Registry, address: str, port: int) -> None:
    """Point kube-dns's Endpoints and EndpointSlice at the DNS listener."""
    ep, eps = endpoint_objects(address, port)
    await _put(reg, ENDPOINTS, NAMESPACE, ep, ("subsets",))
    await _put(reg, ENDPOINTSLICES, NAMESPACE, eps, ("endpoints", "ports", "addressType"))


Publish = Callable[[str, int], Awaitable[None]]


async def run_cluster_dns(client: APIClient, opts: DNSOptions, *, host: str, port: int, freebind: bool,
                          stop: asyncio.Event, publish: Publish | None = None, offline: bool = False) -> None:
    """Serve the cluster zone on host:port until ``stop``; ``publish`` learns the bound address.

    Offline (``--offline`` or KUBELITE_OFFLINE=1), nothing is forwarded off the machine."""
    factory = InformerFactory(client)
    index = ClusterIndex(factory.informer(SERVICES), factory.informer(ENDPOINTSLICES), factory.informer(NAMESPACES))
    for info in (SERVICES, ENDPOINTSLICES, NAMESPACES):
        factory.informer(info).add_handler(index.changed, index.changed, index.changed)
    own = {Upstream(host, port)} if port else set()
    upstreams = choose_upstreams(opts.upstreams, offline=offline or offline_from_env(), resolv_conf=opts.resolv_conf,
                                 own=own)
    forwarder = Forwarder(upstreams)
    resolver = Resolver(index, zone=opts.cluster_domain, ttl=opts.ttl, lookup=forwarder.lookup)
    server = DNSServer(resolver, forwarder)
    factory.start()
    try:
        await factory.wait_synced()
        index.synced = True
        addr = await server.start(host, port, freebind=freebind)
        log.info("cluster DNS: zone %s, upstreams %s", opts.cluster_domain,
                 ", ".join(map(str, upstreams)) or "none (names outside the cluster are refused)")
        if publish is not None:
            await publish(*addr)
        await stop.wait()
    finally:
        await server.stop()
        await factory.stop()
