"""`kubelite agent --runtime fake --node-count N`: many simulated nodes joined from one
process (kwok-like), each a node of its own to the cluster.

What is checked: every simulated node registers under its own name and address and gets
Ready; a DaemonSet puts a Running pod on each; each node's pods get addresses from a
loopback range of its own; fake nodes draw their ranges from a pool of their own, so a
machine can hold more of them than the 90 network slots real agents use; and a node's
Lease renewal costs one write, as the kubelet's does.
"""
from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
from typing import Any

import pytest
from conftest import create_namespace, start_server
from fakeapi import FakeAPI
from nodeharness import apply, condition, start_agent, stop_proc

from kubelite.api.resources import LEASES
from kubelite.node import netslot
from kubelite.node.agent import Agent, AgentOptions
from kubelite.node.runtime.fake import pod_cidr_for_slot

LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
COUNT = 4


def ready(node: dict) -> bool:
    """The node's Ready condition is True."""
    return any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"].get("conditions") or [])


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """A fake-runtime server and one agent process simulating COUNT nodes."""
    tmp = tmp_path_factory.mktemp("simnodes")
    srv = start_server(tmp, "--runtime", "fake")
    agent = start_agent(srv, tmp, "sim", "127.0.7.1", "--node-count", str(COUNT))
    try:
        srv.wait_for(lambda: sum(ready(n) for n in srv.kjson("get", "nodes")["items"]) == COUNT + 1,
                     timeout=90, interval=0.5, what=f"{COUNT + 1} Ready nodes")
        yield srv
    finally:
        stop_proc(agent)
        srv.stop()


def test_one_agent_process_registers_each_simulated_node_under_its_own_name_and_address(fleet):
    nodes = {n["metadata"]["name"]: n for n in fleet.kjson("get", "nodes")["items"]}
    sim = {name: n for name, n in nodes.items() if name.startswith("sim-")}
    assert sorted(sim) == [f"sim-{i:03d}" for i in range(1, COUNT + 1)]
    ips = [next(a["address"] for a in n["status"]["addresses"] if a["type"] == "InternalIP") for n in sim.values()]
    assert sorted(ips) == [f"127.0.7.{i}" for i in range(1, COUNT + 1)]
    assert all(ready(n) for n in sim.values())
    # Each node has a lease of its own, renewed by its own agent.
    leases = {item["metadata"]["name"] for item in fleet.kjson("get", "leases", "-n", "kube-node-lease")["items"]}
    assert set(sim) <= leases


def test_daemonset_runs_a_pod_on_every_simulated_node_inside_that_nodes_range(fleet, request):
    ns = create_namespace(fleet, request, "simds")
    labels = {"app": "sim"}
    apply(fleet, ns, {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "sim"},
                      "spec": {"selector": {"matchLabels": labels},
                               "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                                   {"name": "c", "image": "gcr.io/google-samples/kubernetes-bootcamp:v1"}]}}}})

    def running_everywhere():
        pods = fleet.kjson("get", "pods", "-n", ns)["items"]
        up = {p["spec"].get("nodeName"): p for p in pods
              if p["status"].get("phase") == "Running" and condition(p, "Ready") == "True"}
        return len(up) == COUNT + 1 and up
    by_node = fleet.wait_for(running_everywhere, 90, interval=0.5, what="a Ready pod on every node")
    cidrs = {}
    for n in fleet.kjson("get", "nodes")["items"]:
        cidr = ipaddress.ip_network(n["spec"]["podCIDR"])
        assert cidr.subnet_of(LOOPBACK)
        cidrs[n["metadata"]["name"]] = cidr
        assert ipaddress.ip_address(by_node[n["metadata"]["name"]]["status"]["podIP"]) in cidr
    ranges = list(cidrs.values())
    assert not any(a.overlaps(b) for i, a in enumerate(ranges) for b in ranges[i + 1:]), ranges


def test_fake_nodes_take_no_network_slot_and_more_than_max_slots_fit():
    held = []
    try:
        for _ in range(netslot.MAX_SLOTS + 5):
            held.append(netslot.acquire_fake())
        indexes = [s.index for s in held]
        assert len(set(indexes)) == len(indexes)
        ranges = [ipaddress.ip_network(pod_cidr_for_slot(i)) for i in indexes]
        assert not any(a.overlaps(b) for i, a in enumerate(ranges) for b in ranges[i + 1:])
        # The network slots' lock files are untouched: a real agent can still take one.
        real = netslot.acquire()
        real.release()
    finally:
        for s in held:
            s.release()


def test_node_count_needs_the_fake_runtime(tmp_path):
    p = subprocess.run([sys.executable, "-m", "kubelite.cli", "agent", "--server", "https://127.0.0.1:1",
                        "--token", "x", "--ca-file", os.devnull, "--runtime", "process", "--node-count", "3",
                        "--data-dir", str(tmp_path / "a")], capture_output=True, text=True, timeout=60)
    assert p.returncode == 1
    assert "--node-count above 1 needs --runtime fake" in p.stderr


class CountingAPI(FakeAPI):
    """A FakeAPI that counts Lease reads."""

    def __init__(self) -> None:
        super().__init__()
        self.lease_gets = 0

    def get_obj(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        if plural == "leases":
            self.lease_gets += 1
        return super().get_obj(plural, namespace, name)


async def test_lease_renewals_write_from_the_last_written_lease_and_reread_only_on_conflict(tmp_path):
    api = CountingAPI()
    api.objects.setdefault("nodes", {})["/n1"] = {"metadata": {"name": "n1", "uid": "node-uid"}}
    a = Agent(api.client, AgentOptions(node_name="n1", data_dir=str(tmp_path), runtime="fake"), api.factory)
    try:
        await a._renew_lease()  # creates it
        first = api.get_obj("leases", "kube-node-lease", "n1")["spec"]["renewTime"]
        reads = api.lease_gets
        for _ in range(3):
            await a._renew_lease()
        assert api.lease_gets == reads  # no read before each write
        assert api.get_obj("leases", "kube-node-lease", "n1")["spec"]["renewTime"] >= first
        # Someone else wrote the Lease: the stale write conflicts, and the agent reads it again.
        other = api.get_obj("leases", "kube-node-lease", "n1")
        other["spec"]["holderIdentity"] = "someone-else"
        api.update(LEASES, other)
        reads = api.lease_gets
        await a._renew_lease()
        lease = api.get_obj("leases", "kube-node-lease", "n1")
        assert lease["spec"]["holderIdentity"] == "n1"
        assert api.lease_gets > reads
    finally:
        a.slot.release()
