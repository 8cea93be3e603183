"""The kernel Service path's rules for a joined node's pods calling the `kubernetes` Service:
the API servers are off the pod network, so that DNAT (and only that) may leave the node,
masqueraded to the node's address."""
from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from kubelite.proxy.nftables import build_ruleset

TABLE = "kubelite_test_mn"
APISERVER = "198.51.100.1"


def _svc(name: str, ip: str, port: int) -> dict:
    return {"metadata": {"name": name, "namespace": "default"},
            "spec": {"type": "ClusterIP", "clusterIP": ip, "ports": [{"name": "https", "port": port}]}}


def _slice(service: str, ip: str, port: int, node: str | None) -> dict:
    ep: dict = {"addresses": [ip], "conditions": {"ready": True}}
    if node:
        ep["nodeName"] = node
    return {"metadata": {"name": f"{service}-x", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": service}},
            "addressType": "IPv4", "ports": [{"name": "https", "port": port, "protocol": "TCP"}], "endpoints": [ep]}


def _build() -> str:
    services = [_svc("kubernetes", "10.96.0.1", 443), _svc("web", "10.96.0.10", 80)]
    slices = [_slice("kubernetes", APISERVER, 6443, None), _slice("web", "203.0.113.7", 8080, "n1")]
    return build_ruleset(TABLE, services, slices, node_name="n2", node_ips=["198.51.100.2"],
                         pod_cidr="10.244.90.0/24", service_cidr="10.96.0.0/20").text


def _chain(text: str, name_part: str) -> str:
    m = re.search(rf"chain (\S*{re.escape(name_part)}\S*) \{{\n(.*?)\n\t\}}", text, re.S)
    assert m is not None, text
    return m.group(2)


def test_pods_may_open_connections_off_the_node_only_to_the_kubernetes_service_endpoints():
    forward = _chain(_build(), "filter-forward").splitlines()
    assert len(forward) == 3, forward  # hook, the API servers' accept, the drop
    accept, drop = forward[1].strip(), forward[2].strip()
    assert "ct status & dnat == dnat" in accept and accept.endswith("accept")
    assert f"{{ {APISERVER} . tcp . 6443 }}" in accept
    # An endpoint off the pod network of any other Service (203.0.113.7) stays blocked.
    assert "203.0.113.7" not in accept
    assert drop.endswith("ip daddr != 10.244.0.0/16 drop")


def test_pods_calling_the_api_server_on_another_host_are_masqueraded():
    text = _build()
    api = _chain(text, f"{APISERVER}_6443")
    assert "ip saddr 10.244.0.0/16 meta mark set meta mark | 0x4000" in api
    web = _chain(text, "203.0.113.7_8080")
    assert "ip saddr 10.244.0.0/16 meta mark" not in web


def test_without_off_network_api_servers_nothing_but_pod_cidrs_leaves():
    services = [_svc("kubernetes", "10.96.0.1", 443)]
    slices = [_slice("kubernetes", "10.244.0.1", 6443, None)]
    text = build_ruleset(TABLE, services, slices, node_name="n1", node_ips=["10.244.0.1"],
                         pod_cidr="10.244.0.0/24", service_cidr="10.96.0.0/20").text
    forward = _chain(text, "filter-forward").splitlines()
    assert len(forward) == 2 and forward[1].strip().endswith("drop"), forward


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("nft") is None, reason="nft -c needs root and nftables")
def test_the_ruleset_with_api_servers_off_the_node_is_accepted_by_nft():
    text = _build()
    # -c: checked by the kernel in a transaction that is never committed.
    p = subprocess.run(["nft", "-c", "-f", "-"], input=text, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr + text
