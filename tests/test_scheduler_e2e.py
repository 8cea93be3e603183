"""The scheduler end to end: a `kubelite server --runtime fake` and two more fake-runtime nodes
joined with `kubelite agent`, placing pods by taints/tolerations, nodeSelector, resource
requests and cordon, with upstream's FailedScheduling wording."""
from __future__ import annotations

import pytest
from conftest import create_namespace, start_server
from nodeharness import apply, events_text, get_pod, pod, start_agent, stop_proc

from kubelite.scheduler.plugins import failure_message

NOT_HELPFUL = "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """(server, [node names]): the server's own node plus n2 (127.0.0.2) and n3 (127.0.0.3)."""
    tmp = tmp_path_factory.mktemp("sched")
    srv = start_server(tmp, "--runtime", "fake")
    agents = [start_agent(srv, tmp, "n2", "127.0.0.2"), start_agent(srv, tmp, "n3", "127.0.0.3")]
    try:
        def ready_nodes():
            items = srv.kjson("get", "nodes")["items"]
            ok = [n["metadata"]["name"] for n in items
                  if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"].get("conditions", []))]
            return len(ok) == 3 and sorted(ok)
        names = srv.wait_for(ready_nodes, 30, what="three Ready nodes")
        yield srv, names
    finally:
        for a in agents:
            stop_proc(a)
        srv.stop()


@pytest.fixture
def sns(request, fleet):
    srv, _ = fleet
    name = create_namespace(srv, request, "s")
    yield name
    srv.kubectl("delete", "pods", "--all", "-n", name, "--grace-period=0", "--force", "--wait=true", timeout=60)


def node_of(srv, ns: str, name: str) -> str:
    return srv.wait_for(lambda: get_pod(srv, ns, name)["spec"].get("nodeName"), what=f"{name} bound")


def running(srv, ns: str, name: str) -> bool:
    return get_pod(srv, ns, name).get("status", {}).get("phase") == "Running"


def meta_deleting(srv, ns: str, name: str) -> bool:
    return "deletionTimestamp" in get_pod(srv, ns, name)["metadata"]


def failed_scheduling(srv, ns: str, name: str) -> str:
    """The PodScheduled=False message once the scheduler has given up on the pod for now."""
    def msg():
        conds = get_pod(srv, ns, name).get("status", {}).get("conditions") or []
        c = next((c for c in conds if c["type"] == "PodScheduled" and c["status"] == "False"), None)
        return c and c["reason"] == "Unschedulable" and c["message"]
    return srv.wait_for(msg, what=f"{name} unschedulable")


def test_joined_fake_agents_are_ready_nodes(fleet):
    srv, names = fleet
    assert "n2" in names and "n3" in names
    n2 = srv.kjson("get", "node", "n2")
    assert {"type": "InternalIP", "address": "127.0.0.2"} in n2["status"]["addresses"]
    assert n2["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("kubelite-fake://")
    wide = srv.kubectl("get", "nodes", "-o", "wide", check=True).stdout
    assert "127.0.0.3" in wide
    lease = srv.kjson("get", "lease", "n3", "-n", "kube-node-lease")
    assert lease["spec"]["holderIdentity"] == "n3"


def test_taints_repel_and_tolerations_admit(fleet, sns):
    srv, names = fleet
    srv.kubectl("taint", "node", "n2", "dedicated=db:NoSchedule", check=True)
    try:
        apply(srv, sns, pod("plain", spec={"nodeSelector": {"kubernetes.io/hostname": "n2"}}))
        msg = failed_scheduling(srv, sns, "plain")
        assert msg == ("0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: db}, "
                       "2 node(s) didn't match Pod's node affinity/selector. " + NOT_HELPFUL)
        assert "FailedScheduling  " in events_text(srv, sns, "plain") and msg in events_text(srv, sns, "plain")
        tol = [{"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoSchedule"}]
        apply(srv, sns, pod("tolerant", spec={"nodeSelector": {"kubernetes.io/hostname": "n2"}, "tolerations": tol}))
        assert node_of(srv, sns, "tolerant") == "n2"
        srv.wait_for(lambda: running(srv, sns, "tolerant"), what="tolerant Running")
        assert not get_pod(srv, sns, "plain")["spec"].get("nodeName")
    finally:
        srv.kubectl("taint", "node", "n2", "dedicated=db:NoSchedule-", check=True)
    # the node changed: the waiting pod is retried and now fits
    assert node_of(srv, sns, "plain") == "n2"
    srv.wait_for(lambda: running(srv, sns, "plain"), what="plain Running")


def test_node_selector_places_pods(fleet, sns):
    srv, _ = fleet
    srv.kubectl("label", "node", "n3", "disk=ssd", check=True)
    try:
        apply(srv, sns, *(pod(f"ssd-{i}", spec={"nodeSelector": {"disk": "ssd"}}) for i in range(3)))
        assert {node_of(srv, sns, f"ssd-{i}") for i in range(3)} == {"n3"}
        apply(srv, sns, pod("hdd", spec={"nodeSelector": {"disk": "hdd"}}))
        assert failed_scheduling(srv, sns, "hdd") == (
            "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector. " + NOT_HELPFUL)
    finally:
        srv.kubectl("label", "node", "n3", "disk-", check=True)


def test_resource_requests_fill_nodes_then_wait(fleet, sns):
    srv, names = fleet
    cpus = {n["metadata"]["name"]: n["status"]["allocatable"]["cpu"] for n in srv.kjson("get", "nodes")["items"]}
    assert len(set(cpus.values())) == 1  # one machine: every node offers the same cpu
    whole = next(iter(cpus.values()))
    big = {"requests": {"cpu": whole}}
    apply(srv, sns, *(pod(f"big-{i}", resources=big) for i in range(3)))
    placed = {node_of(srv, sns, f"big-{i}") for i in range(3)}
    assert placed == set(names)  # one whole-machine pod per node
    apply(srv, sns, pod("big-3", resources=big))
    msg = failed_scheduling(srv, sns, "big-3")
    assert msg == ("0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: "
                   "3 No preemption victims found for incoming pod.")
    assert msg in events_text(srv, sns, "big-3")
    assert "Pending" in srv.kubectl("get", "pod", "big-3", "-n", sns, check=True).stdout
    apply(srv, sns, pod("huge", resources={"requests": {"cpu": "1000"}}))
    assert "3 Insufficient cpu" in failed_scheduling(srv, sns, "huge")
    srv.kubectl("delete", "pod", "big-0", "-n", sns, "--wait=true", check=True)
    assert node_of(srv, sns, "big-3") in names  # freed capacity lets the waiting pod in
    assert not get_pod(srv, sns, "huge")["spec"].get("nodeName")


def test_cordon_keeps_new_pods_off(fleet, sns):
    srv, names = fleet
    others = [n for n in names if n != "n3"]
    for n in others:
        srv.kubectl("cordon", n, check=True)
    try:
        out = srv.kubectl("get", "nodes", check=True).stdout
        assert out.count("SchedulingDisabled") == 2
        apply(srv, sns, *(pod(f"c-{i}") for i in range(3)))
        assert {node_of(srv, sns, f"c-{i}") for i in range(3)} == {"n3"}
        srv.wait_for(lambda: all(running(srv, sns, f"c-{i}") for i in range(3)), what="c-* Running")
        srv.kubectl("cordon", "n3", check=True)
        apply(srv, sns, pod("nowhere"))
        assert failed_scheduling(srv, sns, "nowhere") == (
            "0/3 nodes are available: 3 node(s) were unschedulable. " + NOT_HELPFUL)
        # cordon does not evict what already runs there
        assert all(running(srv, sns, f"c-{i}") and not meta_deleting(srv, sns, f"c-{i}") for i in range(3))
        srv.kubectl("uncordon", "n2", check=True)
        assert node_of(srv, sns, "nowhere") == "n2"
    finally:
        for n in names:
            srv.kubectl("uncordon", n)


def test_failure_message_mixes_preemption_notes():
    msg = failure_message(3, {"Insufficient memory": 1, "node(s) were unschedulable": 2}, preemptible=1)
    assert msg == ("0/3 nodes are available: 1 Insufficient memory, 2 node(s) were unschedulable. "
                   "preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, "
                   "2 Preemption is not helpful for scheduling.")
