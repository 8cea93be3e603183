"""A StatefulSet rolled with a partition under load through its Service (process runtime).

Real bootcamp pods serve HTTP in the network namespaces of the server this test starts;
clients hammer the Service's node port while the partition is lowered step by step and
the set finally rolls back. No request may fail, and the replies must move from v=1 to
v=2 pod by pod, highest ordinal first.
"""
from __future__ import annotations

import json
import time

import pytest

from tests.conftest import create_namespace, start_server
from tests.test_services_rollout import Load, answering_pods, node_ip

V1 = "jocatalin/kubernetes-bootcamp:v1"
V2 = "jocatalin/kubernetes-bootcamp:v2"
CONTAINER = "kubernetes-bootcamp"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("sts-load"))
    yield srv
    srv.stop()


def _sts() -> dict:
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web"},
            "spec": {"replicas": 3, "serviceName": "web", "selector": {"matchLabels": {"app": "web"}},
                     "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 3}},
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                         {"name": CONTAINER, "image": V1, "ports": [{"containerPort": 8080}]}]}}}}


def _svc() -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
            "spec": {"type": "NodePort", "selector": {"app": "web"}, "ports": [{"port": 8080, "targetPort": 8080}]}}


def _versions(k, ns: str) -> dict[str, str]:
    pods = k.kjson("-n", ns, "get", "pods", "-l", "app=web")["items"]
    return {p["metadata"]["name"]: p["spec"]["containers"][0]["image"] for p in pods
            if not p["metadata"].get("deletionTimestamp")}


def _settled(k, ns: str, updated: int) -> bool:
    st = k.kjson("-n", ns, "get", "statefulset", "web")["status"]
    return st.get("readyReplicas") == 3 and st.get("updatedReplicas") == updated


def test_statefulset_rolled_with_a_partition_under_load_loses_no_request(cluster, request):
    k = cluster
    ns = create_namespace(k, request)
    k.kubectl("-n", ns, "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                              "items": [_svc(), _sts()]}), check=True)
    k.wait_for(lambda: _settled(k, ns, 3), timeout=90, what="3 ready pods")
    port = k.kjson("-n", ns, "get", "service", "web")["spec"]["ports"][0]["nodePort"]
    host = node_ip(k)
    k.wait_for(lambda: answering_pods(host, port, 12) == {"web-0", "web-1", "web-2"}, timeout=60,
               what="3 pods answering the node port")

    with Load(host, port) as load:
        k.wait_for(lambda: len(load.replies) >= 50, what="load flowing")
        start = time.monotonic()
        k.kubectl("-n", ns, "set", "image", "statefulset/web", f"{CONTAINER}={V2}", check=True)
        steps = []
        for partition, updated in ((2, 1), (1, 2), (0, 3)):
            k.kubectl("-n", ns, "patch", "statefulset", "web", "-p",
                      json.dumps({"spec": {"updateStrategy": {"rollingUpdate": {"partition": partition}}}}),
                      check=True)
            k.wait_for(lambda u=updated: _settled(k, ns, u), timeout=90, what=f"{updated} updated")
            steps.append(_versions(k, ns))
        mark = time.monotonic()
        k.wait_for(lambda: len(load.since(mark)) >= 100, timeout=60, what="load after the roll-out")

        k.kubectl("-n", ns, "rollout", "undo", "statefulset/web", check=True)
        out = k.kubectl("-n", ns, "rollout", "status", "statefulset/web", "--timeout=90s", timeout=100)
        assert out.returncode == 0, out.stderr
        end = time.monotonic()
        k.wait_for(lambda: len(load.since(end)) >= 100, timeout=60, what="load after the rollback")

    assert load.failures == [], load.failures[:10]
    # Highest ordinal first: each lower partition moved exactly one more pod to v2.
    assert steps[0] == {"web-0": V1, "web-1": V1, "web-2": V2}
    assert steps[1] == {"web-0": V1, "web-1": V2, "web-2": V2}
    assert steps[2] == {"web-0": V2, "web-1": V2, "web-2": V2}
    assert {v for t, _, v in load.replies if t < start} == {1}
    assert [v for t, _, v in load.replies if mark <= t][:50] == [2] * 50
    assert {v for _, _, v in load.since(end)} == {1}
