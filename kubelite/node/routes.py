"""Routes between nodes, as flannel's host-gw backend: each node reaches another node's pod
CIDR through that node's InternalIP, a plain kernel route per node.

Host-gw and not VXLAN: kubelite's nodes share one layer-2 link (on this machine, the
veths or bridge the tests make; on a small real cluster, one switch), so the next hop of
every pod CIDR is directly reachable and no encapsulation is needed; packets keep their
pod addresses, cost nothing extra, and every tool sees them as they are.  VXLAN (or
routes through a router) is only needed when nodes are on different subnets.

The syncer is an API client (with kube-proxy's identity: a node may only read its own
Node, and flannel too runs with rights of its own): it watches Nodes and keeps one route per other node whose
``spec.podCIDR`` and InternalIP are set and not loopback (fake and host-network nodes
have loopback ones, and nothing is routed for them).  Routes carry the protocol number
``ROUTE_PROTO`` so the syncer only ever replaces or removes its own; a destination that
already has another route (a pod bridge of some other agent on this host) is left alone
and logged.  The link towards another node gets ``forwarding`` on (that interface only,
as the pod bridges do), since pod traffic from that node arrives there to be forwarded.
"""
from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
from typing import Any

from kubelite.api import meta
from kubelite.api.resources import NODES
from kubelite.client.informer import InformerFactory
from kubelite.client.protocols import APIClient

log = logging.getLogger("kubelite.node")
Obj = dict[str, Any]

ROUTE_PROTO = "107"  # kubelite's mark on the routes it owns (not a number iproute2 names)


def _ipv4(text: str, *, network: bool = False) -> bool:
    """A usable IPv4 address (or network) that is not loopback."""
    try:
        v = ipaddress.ip_network(text, strict=False) if network else ipaddress.ip_address(text)
    except ValueError:
        return False
    return v.version == 4 and not v.is_loopback and not v.is_unspecified


def wanted_routes(nodes: list[Obj], own_name: str, own_ip: str) -> dict[str, str]:
    """pod CIDR -> next hop (InternalIP) for every other node that can be routed to."""
    out: dict[str, str] = {}
    for node in sorted(nodes, key=meta.name):
        if meta.name(node) == own_name:
            continue
        spec, status = node.get("spec") or {}, node.get("status") or {}
        cidrs = spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else [])
        ip = next((a.get("address", "") for a in status.get("addresses") or [] if a.get("type") == "InternalIP"), "")
        if not _ipv4(ip) or ip == own_ip:
            continue
        for cidr in cidrs:
            if _ipv4(cidr, network=True):
                out[str(ipaddress.ip_network(cidr, strict=False))] = ip
    return out


async def _ip(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec("ip", *args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode().strip()


def _forwarding_on(dev: str) -> None:
    """net.ipv4.conf.<dev>.forwarding = 1 (a /proc write: never blocks)."""
    try:
        with open(f"/proc/sys/net/ipv4/conf/{dev}/forwarding", "w") as f:
            f.write("1")
    except OSError as e:
        log.warning("routes: cannot turn on forwarding on %s: %s", dev, e)


class RouteSyncer:
    """Keeps this node's routes to the other nodes' pod CIDRs in step with the Nodes."""

    def __init__(self, client: APIClient, *, node_name: str, node_ip: str):
        self.node_name = node_name
        self.node_ip = node_ip
        self.factory = InformerFactory(client)
        self.nodes = self.factory.informer(NODES)
        self.installed: dict[str, str] = {}  # pod CIDR -> next hop, routes this syncer added
        self._skipped: set[str] = set()      # destinations held by someone else's route (logged once)
        self._dirty = asyncio.Event()
        self.nodes.add_handler(self._changed, lambda _o, _n: self._changed(), lambda _o: self._changed())

    def _changed(self, _node: Obj | None = None) -> None:
        self._dirty.set()

    async def run(self, stop: asyncio.Event, *, keep: bool = False) -> None:
        """Sync after every Node change until ``stop``; then remove the routes unless ``keep``
        (pods that outlive their agent keep their routes too)."""
        self.factory.start()
        halt = asyncio.ensure_future(stop.wait())
        try:
            await self.nodes.wait_synced()
            self._dirty.set()
            while not stop.is_set():
                dirty = asyncio.ensure_future(self._dirty.wait())
                await asyncio.wait([dirty, halt], return_when=asyncio.FIRST_COMPLETED)
                dirty.cancel()
                if stop.is_set():
                    break
                self._dirty.clear()
                try:
                    await self.sync()
                except Exception:  # a failed ip call must not end the loop; the next change retries
                    log.exception("syncing routes to other nodes")
                    await asyncio.sleep(1.0)
                    self._dirty.set()
        finally:
            halt.cancel()
            await self.factory.stop()
            if not keep:
                await self.remove_all()

    async def sync(self) -> None:
        """Add, change and remove routes so they match the Nodes."""
        want = wanted_routes(self.nodes.list(), self.node_name, self.node_ip)
        for cidr in sorted(set(self.installed) - set(want)):
            await self._remove(cidr)
        for cidr, via in sorted(want.items()):
            if self.installed.get(cidr) == via:
                continue
            code, out, _ = await _ip("-j", "route", "show", "exact", cidr)
            routes = json.loads(out or "[]") if code == 0 else []
            foreign = [r for r in routes if str(r.get("protocol", "")) != ROUTE_PROTO]
            if foreign:
                if cidr not in self._skipped:
                    log.warning("routes: %s already has a route here (%s); not routing it to node at %s",
                                cidr, foreign[0].get("dev") or foreign[0].get("type"), via)
                    self._skipped.add(cidr)
                continue
            code, _, err = await _ip("route", "replace", cidr, "via", via, "proto", ROUTE_PROTO)
            if code != 0:
                log.warning("routes: cannot route %s via %s: %s", cidr, via, err)
                continue
            self.installed[cidr] = via
            self._skipped.discard(cidr)
            log.info("routes: %s via %s", cidr, via)
            await self._forward_on_link(via)

    async def _forward_on_link(self, via: str) -> None:
        """Forwarding on the interface towards ``via``: that node's pods' packets arrive there."""
        code, out, _ = await _ip("-j", "route", "get", via)
        if code != 0:
            return
        for r in json.loads(out or "[]"):
            dev = r.get("dev")
            if dev and dev != "lo":
                _forwarding_on(dev)

    async def _remove(self, cidr: str) -> None:
        via = self.installed.pop(cidr, None)
        if via is not None:
            await _ip("route", "del", cidr, "via", via, "proto", ROUTE_PROTO)

    async def remove_all(self) -> None:
        """Remove every route this syncer added."""
        for cidr in list(self.installed):
            await self._remove(cidr)
