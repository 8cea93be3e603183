"""Node lifecycle, taint eviction and pod GC against a real API server.

There is no real node: the tests create Node objects and their Leases themselves, and a
tiny fake kubelet on the controllers' loop renews the Lease of every node it is told
is alive.  Grace periods are shortened through the constructors; every check waits on a
condition, never on a clock.
"""
from __future__ import annotations

import asyncio
import json

import pytest
from conftest import API_ONLY, start_server
from test_gc import Harness

from kubelite.api import meta
from kubelite.api.resources import LEASES, NODES
from kubelite.controllers.nodelifecycle import (
    FULL_DISRUPTION,
    NORMAL_ZONE,
    PARTIAL_DISRUPTION,
    NodeLifecycleController,
    PodGCController,
    TaintEvictionController,
    mark_unknown,
    min_toleration_seconds,
    reconcile_taints,
    wanted_no_execute,
    wanted_no_schedule,
    zone_state,
)

UNREACHABLE = "node.kubernetes.io/unreachable"
NOT_READY = "node.kubernetes.io/not-ready"


# -- pure --------------------------------------------------------------------------------
@pytest.mark.parametrize("statuses,state", [
    (["True", "True"], NORMAL_ZONE),
    (["Unknown"], FULL_DISRUPTION),
    (["False", "Unknown", None], FULL_DISRUPTION),
    (["True", "False", "False"], NORMAL_ZONE),          # only 2 unhealthy: never partial
    (["True", "False", "False", "Unknown"], PARTIAL_DISRUPTION),  # 3/4 >= 0.55
    (["True", "True", "False", "False", "Unknown"], PARTIAL_DISRUPTION),  # 3/5 = 0.6
    (["True", "True", "True", "False", "False", "Unknown"], NORMAL_ZONE),  # 3/6 = 0.5
    ([None], NORMAL_ZONE),
])
def test_zone_state(statuses, state):
    assert zone_state(statuses) == state


def test_mark_unknown_uses_upstream_reasons():
    node = {"metadata": {"name": "n", "creationTimestamp": "t0"},
            "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                       "lastHeartbeatTime": "t1", "lastTransitionTime": "t1"},
                                      {"type": "MemoryPressure", "status": "Unknown", "reason": "X",
                                       "lastTransitionTime": "t1"}]}}
    assert mark_unknown(node, "t9")
    by = {c["type"]: c for c in node["status"]["conditions"]}
    assert by["Ready"] == {"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown",
                           "message": "Kubelet stopped posting node status.", "lastHeartbeatTime": "t1",
                           "lastTransitionTime": "t9"}
    assert by["MemoryPressure"]["reason"] == "X"  # already Unknown: untouched
    assert by["DiskPressure"]["reason"] == "NodeStatusNeverUpdated"
    assert not mark_unknown(node, "t10")


def test_taints_follow_conditions():
    node = {"spec": {"unschedulable": True, "taints": [{"key": "user", "effect": "NoSchedule"}]},
            "status": {"conditions": [{"type": "Ready", "status": "False"},
                                      {"type": "DiskPressure", "status": "True"}]}}
    assert wanted_no_schedule(node) == {NOT_READY, "node.kubernetes.io/disk-pressure",
                                        "node.kubernetes.io/unschedulable"}
    assert wanted_no_execute(node, "allow") == {NOT_READY}
    assert wanted_no_execute(node, "hold") == set()  # no new eviction in a disrupted zone
    assert wanted_no_execute(node, "none") == set()
    new = reconcile_taints(node["spec"]["taints"], {NOT_READY}, {NOT_READY}, "now")
    assert new == [{"key": "user", "effect": "NoSchedule"},
                   {"key": NOT_READY, "effect": "NoExecute", "timeAdded": "now"},
                   {"key": NOT_READY, "effect": "NoSchedule", "timeAdded": "now"}]
    # Kept taints keep their timeAdded; recovered ones go; foreign ones stay.
    assert reconcile_taints(new, {NOT_READY}, set(), "later") == [new[0], new[2]]
    assert reconcile_taints(new, set(), set(), "later") == [new[0]]


@pytest.mark.parametrize("tolerations,seconds", [
    ([], 0.0),
    ([{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}], 300.0),
    ([{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute"}], None),
    ([{"operator": "Exists"}], None),
    ([{"key": UNREACHABLE, "operator": "Exists", "tolerationSeconds": 30},
      {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 10}], 10.0),
    ([{"key": UNREACHABLE, "operator": "Exists", "tolerationSeconds": -5}], 0.0),
    ([{"key": NOT_READY, "operator": "Exists", "tolerationSeconds": 300}], 0.0),  # wrong key
])
def test_min_toleration_seconds(tolerations, seconds):
    assert min_toleration_seconds(tolerations, [{"key": UNREACHABLE, "effect": "NoExecute"}]) == seconds


# -- through the API ----------------------------------------------------------------------
class FakeKubelets:
    """Renews the Lease (and Ready heartbeat) of every node in ``alive``."""

    def __init__(self, client):
        self.client = client
        self.alive: dict[str, str] = {}  # node -> Ready status it posts

    async def run(self, stop: asyncio.Event) -> None:
        leases, nodes = self.client.resource(LEASES), self.client.resource(NODES)
        while not stop.is_set():
            for name, status in list(self.alive.items()):
                lease = await leases.get(name, "kube-node-lease")
                lease["spec"]["renewTime"] = meta.rfc3339_micro()
                await leases.update(lease)
                node = await nodes.get(name)
                node["status"]["conditions"] = ready_conditions(status)
                await nodes.update_status(node)
            try:
                await asyncio.wait_for(stop.wait(), 0.3)
            except TimeoutError:
                pass


def ready_conditions(status: str) -> list[dict]:
    now = meta.rfc3339()
    reason = "KubeletReady" if status == "True" else "KubeletNotReady"
    return [{"type": "Ready", "status": status, "reason": reason, "message": "kubelet is posting ready status",
             "lastHeartbeatTime": now, "lastTransitionTime": now}]


@pytest.fixture(scope="module")
def node_env(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("nodes"), *API_ONLY)
    kubelets = []

    def make(client, factory):
        k = FakeKubelets(client)
        kubelets.append(k)
        return [NodeLifecycleController(client, factory, monitor_period=0.5, grace_period=2.0,
                                        startup_grace_period=2.0),
                TaintEvictionController(client, factory),
                PodGCController(client, factory, gc_period=0.5, quarantine=0.5), k]
    h = Harness(srv, make)
    yield srv, h, kubelets[0]
    h.close()
    srv.stop()


def add_node(h, name: str, status: str = "True") -> None:
    """Register a node and its Lease, as a kubelet would."""
    async def go():
        node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}}}
        created = await h.client.resource(NODES).create(node)
        created["status"] = {"conditions": ready_conditions(status)}
        await h.client.resource(NODES).update_status(created)
        await h.client.resource(LEASES).create(
            {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
             "metadata": {"name": name, "namespace": "kube-node-lease"},
             "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": meta.rfc3339_micro()}})
    h.call(go())


def node_taints(srv, name: str) -> set[tuple[str, str]]:
    node = srv.kjson("get", "node", name)
    return {(t["key"], t["effect"]) for t in (node.get("spec") or {}).get("taints") or []}


def create_pod(srv, ns: str, name: str, node: str, tolerations: list[dict] | None = None) -> None:
    spec = {"nodeName": node, "containers": [{"name": "c", "image": "nginx"}]}
    if tolerations is not None:
        spec["tolerations"] = tolerations
    obj = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}
    srv.kubectl("create", "--validate=false", "-n", ns, "-f", "-", input=json.dumps(obj), check=True)


def test_node_lifecycle_unreachable_node_is_marked_unknown_tainted_and_evicted(node_env):
    srv, h, kubelets = node_env
    add_node(h, "alive")
    kubelets.alive["alive"] = "True"
    add_node(h, "silent")
    ns = "evict"
    srv.kubectl("create", "namespace", ns, check=True)
    quick = [{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 1}]
    forever = [{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute"}]
    create_pod(srv, ns, "quick", "silent", quick)
    create_pod(srv, ns, "stays", "silent", forever)
    create_pod(srv, ns, "default-tolerations", "silent")
    assert srv.kjson("get", "pod", "default-tolerations", "-n", ns)["spec"]["tolerations"][-1]["tolerationSeconds"] == 300

    def unknown():
        node = srv.kjson("get", "node", "silent")
        ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
        return ready["status"] == "Unknown" and ready
    ready = srv.wait_for(unknown, what="silent node marked Unknown")
    assert ready["reason"] == "NodeStatusUnknown" and ready["message"] == "Kubelet stopped posting node status."
    srv.wait_for(lambda: node_taints(srv, "silent") == {(UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")},
                 what="unreachable taints")
    assert all(t.get("timeAdded") for t in srv.kjson("get", "node", "silent")["spec"]["taints"])
    assert "NotReady" in srv.kubectl("get", "node", "silent", check=True).stdout

    def evicted():
        pod = srv.kjson("get", "pod", "quick", "-n", ns)
        return pod["metadata"].get("deletionTimestamp") and pod
    pod = srv.wait_for(evicted, what="pod evicted after tolerationSeconds")
    cond = next(c for c in pod["status"]["conditions"] if c["type"] == "DisruptionTarget")
    assert cond["reason"] == "DeletionByTaintManager"

    def event():
        evs = srv.kjson("get", "events", "-n", ns, "--field-selector", "involvedObject.name=quick")["items"]
        return [e for e in evs if e["reason"] == "TaintManagerEviction"]
    ev = srv.wait_for(event, what="TaintManagerEviction event")[0]
    assert ev["message"] == f"Marking for deletion Pod {ns}/quick"
    assert ev["source"]["component"] == "taint-controller"
    # Decided in the same pass as "quick": a forever toleration never evicts.
    assert not srv.kjson("get", "pod", "stays", "-n", ns)["metadata"].get("deletionTimestamp")
    assert node_taints(srv, "alive") == set()

    # The kubelet comes back: Ready again, taints gone.
    kubelets.alive["silent"] = "True"
    srv.wait_for(lambda: node_taints(srv, "silent") == set(), what="taints removed on recovery")
    assert "Ready" in srv.kubectl("get", "node", "silent", check=True).stdout


def test_node_reporting_not_ready_gets_not_ready_taints(node_env):
    srv, h, kubelets = node_env
    add_node(h, "sick", status="False")
    kubelets.alive["sick"] = "False"
    srv.wait_for(lambda: node_taints(srv, "sick") == {(NOT_READY, "NoSchedule"), (NOT_READY, "NoExecute")},
                 what="not-ready taints")
    ready = next(c for c in srv.kjson("get", "node", "sick")["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False"  # the kubelet's own word is kept while it keeps posting
    kubelets.alive["sick"] = "True"
    srv.wait_for(lambda: node_taints(srv, "sick") == set(), what="not-ready taints removed")


def test_cordoned_node_gets_unschedulable_taint(node_env):
    srv, h, kubelets = node_env
    add_node(h, "cordoned")
    kubelets.alive["cordoned"] = "True"
    srv.kubectl("cordon", "cordoned", check=True)
    srv.wait_for(lambda: node_taints(srv, "cordoned") == {("node.kubernetes.io/unschedulable", "NoSchedule")},
                 what="unschedulable taint")
    srv.kubectl("uncordon", "cordoned", check=True)
    srv.wait_for(lambda: node_taints(srv, "cordoned") == set(), what="unschedulable taint removed")


def test_pods_on_a_deleted_node_are_garbage_collected(node_env):
    srv, h, kubelets = node_env
    add_node(h, "doomed")
    kubelets.alive["doomed"] = "True"
    ns = "podgc"
    srv.kubectl("create", "namespace", ns, check=True)
    create_pod(srv, ns, "orphan", "doomed")
    create_pod(srv, ns, "elsewhere", "alive")
    kubelets.alive.pop("doomed")
    srv.kubectl("delete", "node", "doomed", check=True)

    def gone():
        p = srv.kubectl("get", "pod", "orphan", "-n", ns)
        return p.returncode != 0 and "NotFound" in p.stderr
    srv.wait_for(gone, what="orphaned pod deleted")
    assert not srv.kjson("get", "pod", "elsewhere", "-n", ns)["metadata"].get("deletionTimestamp")
