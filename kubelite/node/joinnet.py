"""What a joined node (`kubelite agent`) learns of the cluster network, and its Service path.

The server does not hand its agents a configuration file (k3s's agents get one from its
supervisor port); a joined agent reads what it needs from the API instead, with the
rights a kubelet has: the ``kubernetes`` Service's ClusterIP gives the
service range (the /20 block of 10.96.0.0/12 it lies in, kubelite's own claim size; a
server started with another ``--service-cidr`` needs the same ``--service-cidr`` on the
agent), and the ``kube-dns`` Service's ClusterIP is the node's cluster DNS address.

As root with nftables and pods in network namespaces, the node runs the kernel Service
path as the server does (``proxy/nftables.py``), in a table of its own
(``node_table_name``), whose name is kept in ``DATA_DIR/nft-table`` for `kubelite killall`.
"""
from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
import os
import re
import shutil
from dataclasses import dataclass

from kubelite.api.resources import NODES, SERVICES
from kubelite.client.errors import NotFound, StatusError
from kubelite.client.protocols import APIClient
from kubelite.node.netslot import GUARD_CIDR
from kubelite.proxy.ranges import BLOCK_PREFIX, SUPERNET

log = logging.getLogger("kubelite.node")

TABLE_FILE = "nft-table"
NETPOL_TABLE_FILE = "netpol-table"


@dataclass
class ClusterNetwork:
    """The cluster's service range and DNS address, as a joined node sees them."""

    service_cidr: str = ""
    cluster_dns: str = ""


def range_of(kubernetes_ip: str) -> str:
    """The service range a ``kubernetes`` ClusterIP belongs to ("" when it cannot be told)."""
    try:
        ip = ipaddress.ip_address(kubernetes_ip)
    except ValueError:
        return ""
    supernet = ipaddress.IPv4Network(SUPERNET)
    loopback = ipaddress.IPv4Network("127.96.0.0/12")
    if ip.version != 4 or not (ip in supernet or ip in loopback):
        return ""
    return str(ipaddress.ip_network(f"{ip}/{BLOCK_PREFIX}", strict=False))


async def discover(client: APIClient, service_cidr: str = "") -> ClusterNetwork:
    """Read the service range (unless given) and the kube-dns address from the API."""
    svc = client.resource(SERVICES)
    out = ClusterNetwork(service_cidr=service_cidr)
    if not out.service_cidr:
        try:
            k = await svc.get("kubernetes", "default")
            out.service_cidr = range_of((k.get("spec") or {}).get("clusterIP") or "")
        except NotFound:
            pass
    try:
        dns = await svc.get("kube-dns", "kube-system")
        ip = (dns.get("spec") or {}).get("clusterIP") or ""
        out.cluster_dns = ip if ip and ip != "None" else ""
    except NotFound:
        pass
    return out


def kernel_path_missing(runtime: str, network: str, service_cidr: str) -> str:
    """Why this node cannot run the nftables Service path ("" when it can)."""
    if os.geteuid() != 0:
        return "it needs root"
    if shutil.which("nft") is None:
        return "the nft tool is not installed (Debian package nftables)"
    if runtime == "fake" or (runtime == "process" and network == "host"):
        return "this node's pods have loopback addresses"
    if runtime == "process":
        from kubelite.node.runtime.netns import netns_supported
        if not netns_supported():
            return "pods cannot get network namespaces here"
    if not service_cidr:
        return "the service range is unknown (pass --service-cidr)"
    if ipaddress.ip_network(service_cidr, strict=False).is_loopback:
        return f"the service range {service_cidr} is loopback (the server runs the userspace proxy)"
    return ""


async def node_pod_cidr(client: APIClient, node_name: str, stop: asyncio.Event, *, timeout: float = 60.0) -> str:
    """The Node's spec.podCIDR once it has one ("" if none comes within ``timeout`` or at stop)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not stop.is_set() and loop.time() < deadline:
        try:
            node = await client.resource(NODES).get(node_name)
            if cidr := (node.get("spec") or {}).get("podCIDR"):
                return str(cidr)
        except (StatusError, OSError) as e:
            log.debug("reading node %s: %s", node_name, e)
        try:
            await asyncio.wait_for(stop.wait(), 0.5)
        except TimeoutError:
            pass
    return ""


def remember_table(data_dir: str, table: str, file: str = TABLE_FILE) -> None:
    """Note the node's table (the proxy's, or the NetworkPolicy enforcer's) for `kubelite killall`."""
    with open(os.path.join(data_dir, file), "w") as f:
        f.write(table + "\n")


def remembered_table(data_dir: str, file: str = TABLE_FILE) -> str:
    """The table a joined node's proxy (or enforcer) used in ``data_dir`` ("" if none)."""
    try:
        with open(os.path.join(data_dir, file)) as f:
            return f.read().strip()
    except OSError:
        return ""


def netpol_table_name(service_cidr: str, node_name: str) -> str:
    """The NetworkPolicy tables of a joined node: the server's name plus the node's, as the proxy's."""
    from kubelite.netpol.rules import table_name
    clean = re.sub(r"[^A-Za-z0-9_]", "_", node_name)[:40]
    digest = hashlib.sha256(node_name.encode()).hexdigest()[:6]
    return f"{table_name(service_cidr)}_n_{clean}_{digest}"


async def run_node_netpol(client: APIClient, *, node_name: str, data_dir: str, runtime: str, service_cidr: str,
                          bridge: str, stop: asyncio.Event) -> None:
    """The node's NetworkPolicy enforcer (``kubelite/netpol``) in tables of its own, until ``stop``.

    Its rules name every pod of the cluster, as the server's do: a connection between two
    nodes is judged on each node it passes through, and both verdicts agree."""
    from kubelite.netpol.enforcer import NetworkPolicyEnforcer
    from kubelite.proxy.nftables import NftError
    table = netpol_table_name(service_cidr, node_name)
    remember_table(data_dir, table, NETPOL_TABLE_FILE)
    # The oci runtime's pods outlive the agent: so do their policies (as the Services' rules).
    e = NetworkPolicyEnforcer(client, table=table, bridge=bridge, delete_on_stop=runtime != "oci")
    try:
        await e.start()
    except (NftError, OSError, StatusError) as err:
        # The Services keep working; say loudly that this node's policies do not.
        log.error("network-policy: NOT enforced on node %s: %s", node_name, err)
        await e.stop()
        await stop.wait()
        return
    log.info("network-policy: enforced on this node, table %s", table)
    try:
        await stop.wait()
    finally:
        await e.stop()


async def run_node_proxy(client: APIClient, *, node_name: str, node_ip: str, data_dir: str, runtime: str,
                         service_cidr: str, kernel: bool, stop: asyncio.Event, bridge: str = "") -> None:
    """The node's Service proxy: the kernel path when ``kernel`` (with the node's NetworkPolicy
    enforcer, ``bridge`` being its pod bridge), else the userspace one."""
    from kubelite.proxy.proxy import Proxy, run_proxy
    if not kernel:
        await run_proxy(client, node_name=node_name, stop=stop, node_ip=node_ip)
        return
    from kubelite.proxy import ranges
    from kubelite.proxy.nftables import NftProxy, node_table_name
    table = node_table_name(service_cidr, node_name)
    remember_table(data_dir, table)
    try:
        ranges.guard_route(service_cidr)
    except ranges.RangeError as e:
        log.warning("services: %s", e)
    # The pods of this node's bridge, masqueraded when they call each other through a Service.
    pod_cidr = await node_pod_cidr(client, node_name, stop) or GUARD_CIDR
    # The oci runtime's pods outlive the agent: so do their Services' rules.
    p: Proxy = NftProxy(client, node_name=node_name, node_ip=node_ip, service_cidr=service_cidr, table=table,
                        delete_on_stop=runtime != "oci", pod_cidr=pod_cidr)
    log.info("services: nftables data path, table %s, service range %s", table, service_cidr)
    from kubelite.node.routes import RouteSyncer
    routes = asyncio.create_task(RouteSyncer(client, node_name=node_name, node_ip=node_ip).run(
        stop, keep=runtime == "oci"), name="node-routes")
    netpol = asyncio.create_task(run_node_netpol(client, node_name=node_name, data_dir=data_dir, runtime=runtime,
                                                 service_cidr=service_cidr, bridge=bridge, stop=stop),
                                 name="node-network-policy")
    await p.start()
    try:
        await stop.wait()
    finally:
        await p.stop()
        if not stop.is_set():
            routes.cancel()
            netpol.cancel()
        for name, result in zip(("routes", "network-policy"),
                                await asyncio.gather(routes, netpol, return_exceptions=True), strict=True):
            if isinstance(result, Exception):
                log.error("node %s: %s stopped with an error: %s", node_name, name, result)
