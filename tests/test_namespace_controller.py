"""Namespace and ServiceAccount controllers against a real API server, with the real kubectl."""
from __future__ import annotations

import json

import pytest
from conftest import API_ONLY, create_namespace, start_server
from test_gc import Harness

from kubelite.api.resources import NAMESPACES, PODS
from kubelite.controllers.garbagecollector import GarbageCollectorController
from kubelite.controllers.namespace import (
    CONDITION_TYPES,
    ContentTotals,
    NamespaceController,
    deletion_conditions,
    merge_conditions,
    pod_grace_estimate,
)
from kubelite.controllers.serviceaccount import ServiceAccountsController


@pytest.fixture(scope="module")
def ns_env(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("nsc"), *API_ONLY)
    h = Harness(srv, lambda c, f: [NamespaceController(c, f, finalizer_estimate=0.3),
                                   ServiceAccountsController(c, f), GarbageCollectorController(c, f)])
    yield srv, h
    h.close()
    srv.stop()


@pytest.fixture
def env(ns_env, request):
    srv, h = ns_env
    return srv, h, create_namespace(srv, request, "ns")


def create(srv, ns: str, obj: dict) -> dict:
    p = srv.kubectl("create", "--validate=false", "-n", ns, "-f", "-", "-o", "json", input=json.dumps(obj), check=True)
    return json.loads(p.stdout)


def ns_gone(srv, ns: str) -> bool:
    p = srv.kubectl("get", "namespace", ns)
    return p.returncode != 0 and "NotFound" in p.stderr


def conditions(srv, ns: str) -> dict[str, dict]:
    got = srv.kjson("get", "namespace", ns)
    return {c["type"]: c for c in got.get("status", {}).get("conditions") or []}


# -- pure --------------------------------------------------------------------------------
def test_conditions_report_remaining_content_with_upstream_messages():
    totals = ContentTotals(remaining={PODS: 2, NAMESPACES: 0}, finalizers={"example.com/a": 1, "b/c": 3})
    by_type = {c["type"]: c for c in deletion_conditions(totals)}
    assert [c["type"] for c in deletion_conditions(totals)] == list(CONDITION_TYPES)
    assert by_type["NamespaceContentRemaining"]["message"] == "Some resources are remaining: pods. has 2 resource instances"
    assert by_type["NamespaceContentRemaining"]["reason"] == "SomeResourcesRemain"
    assert by_type["NamespaceFinalizersRemaining"]["message"] == (
        "Some content in the namespace has finalizers remaining: b/c in 3 resource instances, "
        "example.com/a in 1 resource instances")
    ok = by_type["NamespaceDeletionDiscoveryFailure"]
    assert (ok["status"], ok["reason"], ok["message"]) == ("False", "ResourcesDiscovered",
                                                           "All resources successfully discovered")


def test_merge_conditions_moves_transition_time_only_on_status_change():
    old = [{"type": "X", "status": "True", "reason": "R", "message": "m", "lastTransitionTime": "t0"}]
    same, changed = merge_conditions(old, [{"type": "X", "status": "True", "reason": "R", "message": "m2",
                                            "lastTransitionTime": "t1"}])
    assert changed and same[0]["lastTransitionTime"] == "t0" and same[0]["message"] == "m2"
    flipped, changed = merge_conditions(old, [{"type": "X", "status": "False", "reason": "R", "message": "m",
                                               "lastTransitionTime": "t2"}])
    assert changed and flipped[0]["lastTransitionTime"] == "t2"
    assert merge_conditions(old, [dict(old[0], lastTransitionTime="t3")]) == (old, False)


def test_pod_grace_estimate_ignores_finished_pods():
    pods = [{"spec": {"terminationGracePeriodSeconds": 30}},
            {"spec": {"terminationGracePeriodSeconds": 90}, "status": {"phase": "Succeeded"}},
            {"spec": {}}]
    assert pod_grace_estimate(pods) == 30


# -- through the API ----------------------------------------------------------------------
def test_namespace_deletion_removes_all_content(env):
    """kubectl delete namespace: everything in it goes, then the namespace itself."""
    srv, _, ns = env
    srv.kubectl("create", "deployment", "web", "--image=nginx", "-n", ns, check=True)
    srv.kubectl("create", "configmap", "cfg", "--from-literal=a=b", "-n", ns, check=True)
    srv.kubectl("create", "secret", "generic", "sec", "--from-literal=a=b", "-n", ns, check=True)
    srv.kubectl("create", "service", "clusterip", "svc", "--tcp=80:8080", "-n", ns, check=True)
    srv.kubectl("run", "lonely", "--image=nginx", "-n", ns, check=True)
    create(srv, ns, {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l"},
                     "spec": {"holderIdentity": "x"}})
    srv.kubectl("delete", "namespace", ns, timeout=60, check=True)  # kubectl waits for it to go
    assert ns_gone(srv, ns)
    p = srv.kubectl("get", "all", "-n", ns)
    assert p.returncode == 0 and p.stdout == ""


def test_namespace_conditions_while_content_with_finalizers_remains(env):
    srv, _, ns = env
    create(srv, ns, {"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"name": "held", "finalizers": ["example.com/hold"]}})
    srv.kubectl("delete", "namespace", ns, "--wait=false", check=True)

    def reported():
        c = conditions(srv, ns)
        return c.get("NamespaceFinalizersRemaining", {}).get("status") == "True" and c
    c = srv.wait_for(reported, what="namespace conditions")
    assert c["NamespaceContentRemaining"]["message"] == "Some resources are remaining: configmaps. has 1 resource instances"
    assert c["NamespaceFinalizersRemaining"]["message"] == (
        "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances")
    assert c["NamespaceDeletionContentFailure"]["status"] == "False"
    assert srv.kjson("get", "namespace", ns)["status"]["phase"] == "Terminating"
    p = srv.kubectl("create", "configmap", "late", "-n", ns)
    assert p.returncode != 0 and "because it is being terminated" in p.stderr
    srv.kubectl("patch", "configmap", "held", "-n", ns, "--type=merge", "-p", '{"metadata":{"finalizers":null}}',
                check=True)
    srv.wait_for(lambda: ns_gone(srv, ns), what="namespace removed once the finalizer is gone")


def test_namespace_waits_for_terminating_pods(env):
    """A pod bound to a node keeps its grace period; the namespace goes when the pod does."""
    srv, _, ns = env
    create(srv, ns, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "slow"},
                     "spec": {"nodeName": "nowhere", "terminationGracePeriodSeconds": 600,
                              "containers": [{"name": "c", "image": "nginx"}]}})
    srv.kubectl("delete", "namespace", ns, "--wait=false", check=True)

    def waiting():
        c = conditions(srv, ns).get("NamespaceContentRemaining", {})
        return c.get("status") == "True" and c
    c = srv.wait_for(waiting, what="pods remaining reported")
    assert c["message"] == "Some resources are remaining: pods. has 1 resource instances"
    assert srv.kjson("get", "pod", "slow", "-n", ns)["metadata"]["deletionTimestamp"]
    # What the kubelet does at the end of the grace period: delete with grace 0.
    srv.kubectl("delete", "pod", "slow", "-n", ns, "--grace-period=0", "--force", check=True)
    srv.wait_for(lambda: ns_gone(srv, ns), what="namespace removed after its last pod")


def test_should_ensure_a_default_service_account_in_each_namespace(env):
    srv, _, ns = env
    srv.wait_for(lambda: srv.kubectl("get", "serviceaccount", "default", "-n", ns).returncode == 0,
                 what="default serviceaccount")
    first = srv.kjson("get", "serviceaccount", "default", "-n", ns)["metadata"]["uid"]
    srv.kubectl("delete", "serviceaccount", "default", "-n", ns, check=True)

    def recreated():
        p = srv.kubectl("get", "serviceaccount", "default", "-n", ns, "-o", "json")
        return p.returncode == 0 and json.loads(p.stdout)["metadata"]["uid"] != first
    srv.wait_for(recreated, what="default serviceaccount recreated")
