"""Node IPAM's range allocator and the host-gw route plan, without a server."""
from __future__ import annotations

from kubelite.controllers.nodeipam import RangeAllocator
from kubelite.node.routes import wanted_routes


def _node(name: str, cidr: str, ip: str) -> dict:
    return {"metadata": {"name": name}, "spec": {"podCIDR": cidr, "podCIDRs": [cidr]} if cidr else {},
            "status": {"addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}]}}


def test_allocator_skips_the_network_slot_blocks_and_used_ones():
    r = RangeAllocator("10.244.0.0/16", 24)
    assert r.occupy("a", "10.244.89.0/24")
    assert r.allocate("b") == "10.244.90.0/24"
    assert r.allocate("c") == "10.244.91.0/24"
    assert r.allocate("b") == "10.244.90.0/24"  # a node keeps its block
    r.release("b")
    assert r.allocate("d") == "10.244.90.0/24"


def test_allocator_ignores_blocks_outside_the_cluster_cidr():
    r = RangeAllocator("10.244.0.0/16", 24)
    assert not r.occupy("fake", "127.128.0.0/16")
    assert not r.occupy("bad", "not-a-cidr")
    assert r.allocate("x") == "10.244.90.0/24"


def test_allocator_runs_out():
    r = RangeAllocator("10.245.0.0/23", 24)  # no slot block inside: both /24s are free
    assert r.allocate("a") == "10.245.0.0/24"
    assert r.allocate("b") == "10.245.1.0/24"
    assert r.allocate("c") is None


def test_routes_go_to_other_nodes_with_routable_addresses_only():
    nodes = [_node("me", "10.244.89.0/24", "198.51.100.1"), _node("b", "10.244.90.0/24", "198.51.100.2"),
             _node("fake", "127.129.0.0/16", "127.0.0.5"), _node("lo", "10.244.91.0/24", "127.0.0.1"),
             _node("new", "", "198.51.100.3"), _node("same-ip", "10.244.92.0/24", "198.51.100.1")]
    assert wanted_routes(nodes, "me", "198.51.100.1") == {"10.244.90.0/24": "198.51.100.2"}
