"""Node IPAM: every Node gets its own pod CIDR from the cluster CIDR (upstream's node-ipam
controller with the range allocator).

The cluster CIDR is 10.244.0.0/16, cut into /24s (upstream's default node mask for IPv4).
A Node that arrives with ``spec.podCIDR`` set keeps it, and the block is marked used (the
kubelet's ``--pod-cidr`` way: kubelite's own node agents on the server's machine register
the /24 of their network slot, see ``node/netslot.py``; fake nodes' loopback ranges are
outside the cluster CIDR and ignored).  A Node without one is given the first free block,
patched into ``spec.podCIDR`` and ``spec.podCIDRs`` (set once, as validation allows); a
deleted Node's block is free again.

The blocks of the network slots (10.244.0.0/24 to 10.244.89.0/24) are never handed out:
any agent on the server's machine, of this cluster or another, may take one of them at
any moment, and a route to another host for it would break that agent's pods.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
from typing import Any

from kubelite.api import meta
from kubelite.api.resources import NODES
from kubelite.client.errors import NotFound, StatusError
from kubelite.client.protocols import APIClient, SharedInformerFactory
from kubelite.client.workqueue import WorkQueue, process_until
from kubelite.node.netslot import GUARD_CIDR, MAX_SLOTS

log = logging.getLogger(__name__)
Obj = dict[str, Any]

CLUSTER_CIDR = GUARD_CIDR
NODE_MASK = 24


def slot_blocks(cluster: ipaddress.IPv4Network, mask: int) -> set[ipaddress.IPv4Network]:
    """The blocks local network slots may take (never allocated to a Node without one)."""
    out = set()
    for i in range(MAX_SLOTS):
        net = ipaddress.IPv4Network(f"10.244.{i}.0/24")
        if net.prefixlen == mask and net.subnet_of(cluster):
            out.add(net)
    return out


class RangeAllocator:
    """The used and free /mask blocks of one cluster CIDR."""

    def __init__(self, cluster_cidr: str = CLUSTER_CIDR, mask: int = NODE_MASK):
        self.cluster = ipaddress.IPv4Network(cluster_cidr, strict=False)
        self.mask = mask
        self.reserved = slot_blocks(self.cluster, mask)
        self.used: dict[ipaddress.IPv4Network, str] = {}  # block -> node name

    def occupy(self, node: str, cidr: str) -> bool:
        """Mark a Node's own block used; False when it is not a block of the cluster CIDR."""
        try:
            net = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            return False
        if not isinstance(net, ipaddress.IPv4Network) or not net.subnet_of(self.cluster):
            return False
        self.used[net] = node
        return True

    def allocate(self, node: str) -> str | None:
        """The first free block for ``node`` (its own if it already has one); None when all are used."""
        for net, owner in self.used.items():
            if owner == node:
                return str(net)
        for net in self.cluster.subnets(new_prefix=self.mask):
            if net not in self.used and net not in self.reserved:
                self.used[net] = node
                return str(net)
        return None

    def release(self, node: str) -> None:
        """Free every block held for ``node``."""
        for net in [n for n, owner in self.used.items() if owner == node]:
            del self.used[net]


class NodeIPAMController:
    """Assigns ``spec.podCIDR(s)`` to Nodes that have none."""

    def __init__(self, client: APIClient, factory: SharedInformerFactory, *, cluster_cidr: str = CLUSTER_CIDR,
                 mask: int = NODE_MASK):
        self.nodes_api = client.resource(NODES)
        self.informer = factory.informer(NODES)
        self.ranges = RangeAllocator(cluster_cidr, mask)
        self.queue = WorkQueue("nodeipam")
        self.informer.add_handler(self._enqueue, lambda _old, cur: self._enqueue(cur), self._deleted)

    async def run(self, stop: asyncio.Event) -> None:
        """Mark every existing Node's block used, then assign blocks as Nodes come."""
        self.informer.start()
        await self.informer.wait_synced()
        for node in self.informer.list():
            for cidr in _pod_cidrs(node):
                self.ranges.occupy(meta.name(node), cidr)
        # One worker: two Nodes must never be handed the same block.
        await process_until(self.queue, self.sync, stop, 1)

    def _enqueue(self, node: Obj) -> None:
        self.queue.add(meta.name(node))

    def _deleted(self, node: Obj) -> None:
        self.ranges.release(meta.name(node))

    async def sync(self, name: str) -> None:
        """Occupy the Node's block, or give it one."""
        node = self.informer.get(name)
        if node is None or meta.is_deleting(node):
            return
        have = _pod_cidrs(node)
        if have:
            for cidr in have:
                self.ranges.occupy(name, cidr)
            return
        got = self.ranges.allocate(name)
        if got is None:
            log.error("node %s: no pod CIDR left in %s (every /%d is used)", name, self.ranges.cluster, self.ranges.mask)
            return
        cidr = got
        try:
            await self.nodes_api.patch(name, {"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}}, patch_type="merge",
                                       field_manager="node-ipam-controller")
        except NotFound:
            self.ranges.release(name)
            return
        except StatusError:
            # Most likely the Node got a block meanwhile (podCIDR is set once): read it again.
            self.ranges.release(name)
            raise
        log.info("node %s: pod CIDR %s", name, cidr)


def _pod_cidrs(node: Obj) -> list[str]:
    spec = node.get("spec") or {}
    return [c for c in (spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else [])) if c]
