"""Pure Endpoints / EndpointSlice computation: table tests, no server."""
from __future__ import annotations

import copy

from kubelite.controllers import endpoints as epc
from kubelite.controllers import endpointslice as esc


def svc(name="web", *, ports=None, selector=None, cluster_ip="127.96.0.10", labels=None, **spec):
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}", "labels": labels or {"app": name},
                         "creationTimestamp": "2024-01-01T00:00:00Z"},
            "spec": {"selector": {"app": name} if selector is None else selector,
                     "ports": ports if ports is not None else [{"port": 80, "targetPort": 8080, "protocol": "TCP"}],
                     "clusterIP": cluster_ip, "ipFamilies": ["IPv4"], **spec}}


def pod(name, ip, *, ready=True, app="web", deleting=False, phase="Running", ports=None, node="node-1"):
    p = {"apiVersion": "v1", "kind": "Pod",
         "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}", "labels": {"app": app},
                      "creationTimestamp": "2024-01-01T00:00:01Z"},
         "spec": {"nodeName": node, "containers": [{"name": "c", "ports": ports or []}]},
         "status": {"phase": phase, "podIP": ip, "podIPs": [{"ip": ip}] if ip else [],
                    "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                    "lastTransitionTime": "2024-01-01T00:00:05Z"}]}}
    if deleting:
        p["metadata"]["deletionTimestamp"] = "2024-01-01T00:01:00Z"
    return p


# -- Endpoints ---------------------------------------------------------------------------
def test_ready_and_not_ready_addresses_sorted_with_target_refs():
    subsets = epc.compute_subsets(svc(), [pod("b", "127.0.10.2"), pod("a", "127.0.10.1"),
                                          pod("c", "127.0.10.3", ready=False)])
    assert subsets == [{
        "addresses": [
            {"ip": "127.0.10.1", "nodeName": "node-1",
             "targetRef": {"kind": "Pod", "namespace": "default", "name": "a", "uid": "uid-a"}},
            {"ip": "127.0.10.2", "nodeName": "node-1",
             "targetRef": {"kind": "Pod", "namespace": "default", "name": "b", "uid": "uid-b"}}],
        "notReadyAddresses": [
            {"ip": "127.0.10.3", "nodeName": "node-1",
             "targetRef": {"kind": "Pod", "namespace": "default", "name": "c", "uid": "uid-c"}}],
        "ports": [{"port": 8080, "protocol": "TCP"}]}]


def test_terminating_terminal_and_ip_less_pods_are_left_out():
    pods = [pod("a", "127.0.10.1", deleting=True), pod("b", "127.0.10.2", phase="Succeeded"),
            pod("c", ""), pod("d", "127.0.10.4")]
    subsets = epc.compute_subsets(svc(), pods)
    assert [a["ip"] for a in subsets[0]["addresses"]] == ["127.0.10.4"]
    assert "notReadyAddresses" not in subsets[0]


def test_publish_not_ready_addresses_lists_unready_and_terminating_as_ready():
    s = svc(publishNotReadyAddresses=True)
    subsets = epc.compute_subsets(s, [pod("a", "127.0.10.1", ready=False), pod("b", "127.0.10.2", deleting=True)])
    assert [a["ip"] for a in subsets[0]["addresses"]] == ["127.0.10.1", "127.0.10.2"]


def test_named_target_port_resolves_per_pod_and_repacks_subsets():
    s = svc(ports=[{"name": "http", "port": 80, "targetPort": "web", "protocol": "TCP"},
                   {"name": "metrics", "port": 9090, "targetPort": 9090, "protocol": "TCP"}])
    pods = [pod("a", "127.0.10.1", ports=[{"name": "web", "containerPort": 8080}]),
            pod("b", "127.0.10.2", ports=[{"name": "web", "containerPort": 8081}]),
            pod("c", "127.0.10.3", ports=[{"name": "web", "containerPort": 8080}]),
            pod("d", "127.0.10.4")]  # no port named "web": only metrics
    subsets = epc.compute_subsets(s, pods)
    by_ports = {tuple((p.get("name"), p["port"]) for p in sub["ports"]): [a["ip"] for a in sub["addresses"]]
                for sub in subsets}
    assert by_ports == {
        (("http", 8080), ("metrics", 9090)): ["127.0.10.1", "127.0.10.3"],
        (("http", 8081), ("metrics", 9090)): ["127.0.10.2"],
        (("metrics", 9090),): ["127.0.10.4"],
    }


def test_named_target_port_must_match_protocol():
    s = svc(ports=[{"port": 53, "targetPort": "dns", "protocol": "UDP"}])
    p = pod("a", "127.0.10.1", ports=[{"name": "dns", "containerPort": 5353, "protocol": "TCP"}])
    assert epc.compute_subsets(s, [p]) == []


def test_headless_service_without_ports_gets_addresses_only():
    s = svc(ports=[], cluster_ip="None")
    assert epc.compute_subsets(s, [pod("a", "127.0.10.1")]) == [{"addresses": [
        {"ip": "127.0.10.1", "nodeName": "node-1",
         "targetRef": {"kind": "Pod", "namespace": "default", "name": "a", "uid": "uid-a"}}]}]


def test_truncate_keeps_ready_addresses_first():
    subsets = [{"addresses": [{"ip": f"r{i}"} for i in range(900)],
                "notReadyAddresses": [{"ip": f"n{i}"} for i in range(300)], "ports": []}]
    assert epc.truncate(subsets)
    assert len(subsets[0]["addresses"]) == 900 and len(subsets[0]["notReadyAddresses"]) == 100
    assert not epc.truncate([{"addresses": [{"ip": "x"}]}])


# -- EndpointSlices -----------------------------------------------------------------------
def test_slice_conditions_for_ready_unready_and_terminating_pods():
    s = svc()
    plan = esc.reconcile(s, [pod("a", "127.0.10.1"), pod("b", "127.0.10.2", ready=False),
                             pod("c", "127.0.10.3", deleting=True)], [])
    assert len(plan.create) == 1 and not plan.update and not plan.delete
    slc = plan.create[0]
    assert slc["addressType"] == "IPv4"
    assert slc["ports"] == [{"name": "", "port": 8080, "protocol": "TCP"}]
    assert slc["metadata"]["generateName"] == "web-"
    assert slc["metadata"]["labels"] == {"app": "web", "kubernetes.io/service-name": "web",
                                         "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}
    assert slc["metadata"]["ownerReferences"][0]["uid"] == "uid-web"
    conds = {e["targetRef"]["name"]: e["conditions"] for e in slc["endpoints"]}
    assert conds == {"a": {"ready": True, "serving": True, "terminating": False},
                     "b": {"ready": False, "serving": False, "terminating": False},
                     "c": {"ready": False, "serving": True, "terminating": True}}


def test_headless_label_and_placeholder_slice_for_no_endpoints():
    s = svc(cluster_ip="None")
    plan = esc.reconcile(s, [], [])
    assert len(plan.create) == 1
    ph = plan.create[0]
    assert ph["endpoints"] == [] and ph["ports"] == []
    assert ph["metadata"]["labels"]["service.kubernetes.io/headless"] == ""
    # The existing placeholder is kept, not deleted and recreated.
    existing = copy.deepcopy(ph)
    existing["metadata"]["name"] = "web-abcde"
    again = esc.reconcile(s, [], [existing])
    assert not again.create and not again.delete and not again.update


def _materialise(plan, existing):
    """Apply a plan to a list of slices as the server would."""
    by_name = {s["metadata"]["name"]: s for s in existing}
    for s in plan.delete:
        by_name.pop(s["metadata"]["name"])
    for s in plan.update:
        by_name[s["metadata"]["name"]] = s
    for i, s in enumerate(plan.create):
        s = copy.deepcopy(s)
        s["metadata"]["name"] = f"web-{len(by_name)}-{i}"
        by_name[s["metadata"]["name"]] = s
    return list(by_name.values())


def test_at_most_100_endpoints_per_slice_and_minimal_rewrites():
    s = svc()
    pods = [pod(f"p{i}", f"127.0.{i // 250}.{i % 250 + 1}") for i in range(250)]
    plan = esc.reconcile(s, pods, [])
    slices = _materialise(plan, [])
    assert sorted(len(x["endpoints"]) for x in slices) == [50, 100, 100]
    assert not esc.reconcile(s, pods, slices).create  # stable: nothing to do
    again = esc.reconcile(s, pods, slices)
    assert not again.update and not again.delete
    # One pod becomes unready: exactly one slice is rewritten.
    pods[7]["status"]["conditions"][0]["status"] = "False"
    plan = esc.reconcile(s, pods, slices)
    assert len(plan.update) == 1 and not plan.create and not plan.delete
    # Ten new pods fit into the slice with room instead of a new slice.
    slices = _materialise(plan, slices)
    pods += [pod(f"n{i}", f"127.0.9.{i + 1}") for i in range(10)]
    plan = esc.reconcile(s, pods, slices)
    assert not plan.create and len(plan.update) == 1 and len(plan.update[0]["endpoints"]) == 60


def test_removed_pods_and_emptied_slices():
    s = svc()
    pods = [pod("a", "127.0.10.1"), pod("b", "127.0.10.2")]
    slices = _materialise(esc.reconcile(s, pods, []), [])
    plan = esc.reconcile(s, pods[:1], slices)
    assert [e["targetRef"]["name"] for e in plan.update[0]["endpoints"]] == ["a"]
    # No pods left: the slice becomes the placeholder (an update, not delete+create).
    plan = esc.reconcile(s, [], slices)
    assert not plan.delete and not plan.create
    assert plan.update[0]["endpoints"] == [] and plan.update[0]["ports"] == []


def test_slices_of_another_service_incarnation_are_replaced():
    s = svc()
    old = _materialise(esc.reconcile(s, [pod("a", "127.0.10.1")], []), [])
    s2 = copy.deepcopy(s)
    s2["metadata"]["uid"] = "uid-web-2"
    plan = esc.reconcile(s2, [pod("a", "127.0.10.1")], old)
    assert [x["metadata"]["name"] for x in plan.delete] == [old[0]["metadata"]["name"]]
    assert len(plan.create) == 1 and plan.create[0]["metadata"]["ownerReferences"][0]["uid"] == "uid-web-2"


def test_service_label_change_rewrites_slice_labels():
    s = svc()
    slices = _materialise(esc.reconcile(s, [pod("a", "127.0.10.1")], []), [])
    s["metadata"]["labels"] = {"app": "web", "tier": "front"}
    plan = esc.reconcile(s, [pod("a", "127.0.10.1")], slices)
    assert plan.update[0]["metadata"]["labels"]["tier"] == "front"


def test_selector_matching_is_plain_equality_and_empty_selects_nothing():
    assert esc.selector_matches({"app": "web"}, {"app": "web", "x": "y"})
    assert not esc.selector_matches({"app": "web"}, {"app": "api"})
    assert not esc.selector_matches({}, {"app": "web"})
    assert not esc.selector_matches(None, {"app": "web"})
