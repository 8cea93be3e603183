"""DaemonSets end to end on several fake-runtime nodes with the real kubectl 1.33, named
after upstream's specs in test/e2e/apps/daemon_set.go.

The fleet is the server's own node plus agents n2 and n3 (127.0.0.2, 127.0.0.3); a test
that needs a fourth node starts and stops it itself. Fake pods are never dialled: every
assertion reads the API.
"""
from __future__ import annotations

import json

import pytest
from conftest import create_namespace, start_server
from nodeharness import start_agent, stop_proc

V1 = "docker.io/jocatalin/kubernetes-bootcamp:v1"
V2 = "docker.io/jocatalin/kubernetes-bootcamp:v2"
MISSING = "registry.invalid/kubelite/not-there:v1"
TIMEOUT = 90


def ready_nodes(srv) -> list[str]:
    items = srv.kjson("get", "nodes")["items"]
    return sorted(n["metadata"]["name"] for n in items
                  if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"].get("conditions", [])))


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """(server, tmp dir, [node names]): the server's node plus n2 and n3."""
    tmp = tmp_path_factory.mktemp("ds")
    srv = start_server(tmp, "--runtime", "fake")
    agents = [start_agent(srv, tmp, "n2", "127.0.0.2"), start_agent(srv, tmp, "n3", "127.0.0.3")]
    try:
        names = srv.wait_for(lambda: len(ready_nodes(srv)) == 3 and ready_nodes(srv), 60, what="three Ready nodes")
        yield srv, tmp, names
    finally:
        for a in agents:
            stop_proc(a)
        srv.stop()


@pytest.fixture
def dns(request, fleet):
    srv = fleet[0]
    name = create_namespace(srv, request, "ds")
    yield name
    srv.kubectl("delete", "namespace", name, "--wait=false")


def daemonset(name: str, *, image: str = V1, node_selector: dict | None = None, strategy: dict | None = None,
              min_ready: int = 0) -> dict:
    spec: dict = {"containers": [{"name": "app", "image": image,
                                  "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1}}],
                  "terminationGracePeriodSeconds": 1}
    if node_selector:
        spec["nodeSelector"] = node_selector
    ds: dict = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name},
                "spec": {"selector": {"matchLabels": {"daemonset-name": name}}, "minReadySeconds": min_ready,
                         "template": {"metadata": {"labels": {"daemonset-name": name}}, "spec": spec}}}
    if strategy is not None:
        ds["spec"]["updateStrategy"] = strategy
    return ds


def create(srv, ns: str, obj: dict) -> None:
    srv.kubectl("-n", ns, "apply", "-f", "-", input=json.dumps(obj), check=True)


def pods_of(srv, ns: str, name: str, *, live: bool = True) -> list[dict]:
    items = srv.kjson("-n", ns, "get", "pods", "-l", f"daemonset-name={name}")["items"]
    return [p for p in items if not (live and p["metadata"].get("deletionTimestamp"))]


def node_of(p: dict) -> str:
    return p["spec"].get("nodeName") or ""


def ready(p: dict) -> bool:
    return p.get("status", {}).get("phase") == "Running" and any(
        c["type"] == "Ready" and c["status"] == "True" for c in p.get("status", {}).get("conditions", []))


def one_ready_pod_per_node(srv, ns: str, name: str, nodes: list[str]) -> list[dict] | bool:
    pods = pods_of(srv, ns, name, live=False)
    return (sorted(node_of(p) for p in pods) == sorted(nodes) and all(ready(p) for p in pods)
            and not any(p["metadata"].get("deletionTimestamp") for p in pods) and pods)


def get_ds(srv, ns: str, name: str) -> dict:
    return srv.kjson("-n", ns, "get", "daemonset", name)


def rollout_status(srv, ns: str, name: str) -> str:
    out = srv.kubectl("-n", ns, "rollout", "status", f"daemonset/{name}", f"--timeout={TIMEOUT}s", timeout=TIMEOUT + 10)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_should_run_and_stop_simple_daemon(fleet, dns):
    srv, _, nodes = fleet
    create(srv, dns, daemonset("daemon-set"))
    pods = srv.wait_for(lambda: one_ready_pod_per_node(srv, dns, "daemon-set", nodes), TIMEOUT,
                        what="one ready daemon pod per node")
    for p in pods:
        aff = p["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert aff == {"nodeSelectorTerms": [{"matchFields": [
            {"key": "metadata.name", "operator": "In", "values": [node_of(p)]}]}]}
        keys = {(t["key"], t["effect"]) for t in p["spec"]["tolerations"]}
        assert ("node.kubernetes.io/not-ready", "NoExecute") in keys
        assert ("node.kubernetes.io/unschedulable", "NoSchedule") in keys
        assert p["metadata"]["labels"]["pod-template-generation"] == "1"
    ds = get_ds(srv, dns, "daemon-set")
    st = ds["status"]
    assert (st["desiredNumberScheduled"], st["currentNumberScheduled"], st["numberReady"],
            st["updatedNumberScheduled"], st["numberAvailable"], st["numberMisscheduled"]) == (3, 3, 3, 3, 3, 0)
    assert ds["metadata"]["annotations"]["deprecated.daemonset.template.generation"] == "1"

    # A daemon pod that is deleted is revived on the same node.
    victim = pods[0]
    srv.kubectl("-n", dns, "delete", "pod", victim["metadata"]["name"], "--wait=false", check=True)

    def revived():
        now = one_ready_pod_per_node(srv, dns, "daemon-set", nodes)
        return now and victim["metadata"]["uid"] not in {p["metadata"]["uid"] for p in now}
    srv.wait_for(revived, TIMEOUT, what="the deleted daemon pod revived")

    out = srv.kubectl("-n", dns, "get", "ds", check=True).stdout.splitlines()
    assert out[0].split() == ["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE", "SELECTOR",
                              "AGE"]
    assert out[1].split()[:7] == ["daemon-set", "3", "3", "3", "3", "3", "<none>"]
    srv.kubectl("-n", dns, "delete", "daemonset", "daemon-set", check=True)
    srv.wait_for(lambda: not pods_of(srv, dns, "daemon-set", live=False), TIMEOUT, what="daemon pods deleted")


def test_should_run_and_stop_complex_daemon(fleet, dns):
    srv = fleet[0]
    create(srv, dns, daemonset("daemon-set", node_selector={"kubelite.dev/daemon-color": "blue"}))
    ds = srv.wait_for(lambda: (d := get_ds(srv, dns, "daemon-set")).get("status", {}).get("observedGeneration") == 1
                      and d, TIMEOUT, what="status observed")
    assert ds["status"]["desiredNumberScheduled"] == 0 and not pods_of(srv, dns, "daemon-set")
    try:
        srv.kubectl("label", "node", "n2", "kubelite.dev/daemon-color=blue", check=True)
        srv.wait_for(lambda: one_ready_pod_per_node(srv, dns, "daemon-set", ["n2"]), TIMEOUT,
                     what="a daemon pod on the blue node")
        srv.kubectl("label", "node", "n2", "kubelite.dev/daemon-color=green", "--overwrite", check=True)
        srv.wait_for(lambda: not pods_of(srv, dns, "daemon-set", live=False), TIMEOUT,
                     what="the daemon pod leaves the relabelled node")
        # Change the selector to green: the pod comes back.
        srv.kubectl("-n", dns, "patch", "daemonset", "daemon-set", "-p",
                    '{"spec":{"template":{"spec":{"nodeSelector":{"kubelite.dev/daemon-color":"green"}}}}}', check=True)
        srv.wait_for(lambda: one_ready_pod_per_node(srv, dns, "daemon-set", ["n2"]), TIMEOUT,
                     what="a daemon pod on the green node")
    finally:
        srv.kubectl("label", "node", "n2", "kubelite.dev/daemon-color-")


def test_should_update_pod_when_spec_was_updated_and_update_strategy_is_rolling_update(fleet, dns):
    srv, _, nodes = fleet
    create(srv, dns, daemonset("daemon-set"))
    first = srv.wait_for(lambda: one_ready_pod_per_node(srv, dns, "daemon-set", nodes), TIMEOUT, what="pods")
    first_hash = first[0]["metadata"]["labels"]["controller-revision-hash"]
    srv.kubectl("-n", dns, "set", "image", "daemonset/daemon-set", f"app={V2}", check=True)
    out = rollout_status(srv, dns, "daemon-set")
    assert 'daemon set "daemon-set" successfully rolled out' in out
    pods = pods_of(srv, dns, "daemon-set")
    assert sorted(node_of(p) for p in pods) == sorted(nodes)
    assert all(p["spec"]["containers"][0]["image"] == V2 for p in pods)
    hashes = {p["metadata"]["labels"]["controller-revision-hash"] for p in pods}
    assert len(hashes) == 1 and hashes != {first_hash}
    assert {p["metadata"]["labels"]["pod-template-generation"] for p in pods} == {"2"}
    revs = {r["metadata"]["name"]: r["revision"] for r in srv.kjson("-n", dns, "get", "controllerrevisions")["items"]}
    assert revs == {f"daemon-set-{first_hash}": 1, f"daemon-set-{hashes.pop()}": 2}
    hist = srv.kubectl("-n", dns, "rollout", "history", "daemonset/daemon-set", check=True).stdout
    assert [line.split()[0] for line in hist.splitlines()[2:] if line.strip()] == ["1", "2"]

    srv.kubectl("-n", dns, "rollout", "restart", "daemonset/daemon-set", check=True)
    rollout_status(srv, dns, "daemon-set")
    pods = srv.wait_for(lambda: one_ready_pod_per_node(srv, dns, "daemon-set", nodes), TIMEOUT, what="restarted")
    assert all("kubectl.kubernetes.io/restartedAt" in p["metadata"].get("annotations", {}) for p in pods)


def test_should_rollback_without_unnecessary_restarts(fleet, dns):
    srv, _, nodes = fleet
    create(srv, dns, daemonset("daemon-set"))
    before = srv.wait_for(lambda: one_ready_pod_per_node(srv, dns, "daemon-set", nodes), TIMEOUT, what="pods")
    # An image that cannot be pulled: the first replaced pod never becomes ready, so
    # maxUnavailable=1 stops the rollout there.
    srv.kubectl("-n", dns, "set", "image", "daemonset/daemon-set", f"app={MISSING}", check=True)

    def stuck():
        pods = pods_of(srv, dns, "daemon-set")
        bad = [p for p in pods if p["spec"]["containers"][0]["image"] == MISSING]
        return len(bad) == 1 and len(pods) == 3 and pods
    stuck_pods = srv.wait_for(stuck, TIMEOUT, what="one pod on the broken image")
    untouched = {p["metadata"]["uid"] for p in stuck_pods if p["spec"]["containers"][0]["image"] == V1}
    assert len(untouched) == 2 and untouched <= {p["metadata"]["uid"] for p in before}

    srv.kubectl("-n", dns, "rollout", "undo", "daemonset/daemon-set", check=True)
    rollout_status(srv, dns, "daemon-set")
    pods = srv.wait_for(lambda: one_ready_pod_per_node(srv, dns, "daemon-set", nodes), TIMEOUT, what="rolled back")
    assert all(p["spec"]["containers"][0]["image"] == V1 for p in pods)
    # The pods that never moved to the broken image were not restarted.
    assert untouched <= {p["metadata"]["uid"] for p in pods}


def test_should_surge_pods_onto_nodes_when_spec_was_updated_and_update_strategy_is_rolling_update(fleet, dns):
    srv, _, nodes = fleet
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    create(srv, dns, daemonset("daemon-set", strategy=strategy))
    srv.wait_for(lambda: one_ready_pod_per_node(srv, dns, "daemon-set", nodes), TIMEOUT, what="pods")
    srv.kubectl("-n", dns, "set", "image", "daemonset/daemon-set", f"app={V2}", check=True)
    surged = []
    violations: list[str] = []  # wait_for swallows assertions: record what breaks the rule

    def done():
        pods = pods_of(srv, dns, "daemon-set", live=False)
        by_node: dict[str, list[dict]] = {}
        for p in pods:
            by_node.setdefault(node_of(p) or "?", []).append(p)
        # maxUnavailable 0: every node keeps a ready pod the whole time.
        violations.extend(n for n in nodes if not any(ready(p) for p in by_node.get(n, [])))
        if any(len(v) > 1 for v in by_node.values()):
            surged.append(True)
        return (len(pods) == 3 and all(ready(p) and p["spec"]["containers"][0]["image"] == V2 for p in pods))
    srv.wait_for(done, TIMEOUT, interval=0.05, what="surge roll-out done")
    assert violations == [], f"nodes seen without a ready daemon pod: {violations}"
    assert surged, "never saw an old and a new pod side by side"
    assert 'successfully rolled out' in rollout_status(srv, dns, "daemon-set")


def test_daemonset_pods_follow_nodes_joining_and_leaving(fleet, dns):
    srv, tmp, nodes = fleet
    create(srv, dns, daemonset("daemon-set"))
    srv.wait_for(lambda: one_ready_pod_per_node(srv, dns, "daemon-set", nodes), TIMEOUT, what="pods")
    agent = start_agent(srv, tmp, "n4", "127.0.0.4")
    try:
        srv.wait_for(lambda: one_ready_pod_per_node(srv, dns, "daemon-set", nodes + ["n4"]), TIMEOUT,
                     what="a daemon pod on the joining node")
        assert get_ds(srv, dns, "daemon-set")["status"]["desiredNumberScheduled"] == 4
    finally:
        stop_proc(agent)
        srv.kubectl("delete", "node", "n4", "--wait=true", timeout=60)
    srv.wait_for(lambda: one_ready_pod_per_node(srv, dns, "daemon-set", nodes), TIMEOUT,
                 what="the daemon pod of the departed node gone")
    srv.wait_for(lambda: get_ds(srv, dns, "daemon-set")["status"]["desiredNumberScheduled"] == 3, TIMEOUT,
                 what="desired back to 3")


def test_daemonset_pods_leave_nodes_with_untolerated_no_execute_taints(fleet, dns):
    srv, _, nodes = fleet
    create(srv, dns, daemonset("daemon-set"))
    srv.wait_for(lambda: one_ready_pod_per_node(srv, dns, "daemon-set", nodes), TIMEOUT, what="pods")
    try:
        # NoSchedule alone: the running pod stays (counted as misscheduled, no longer desired).
        srv.kubectl("taint", "node", "n3", "kubelite.dev/ds-test=x:NoSchedule", check=True)
        srv.wait_for(lambda: get_ds(srv, dns, "daemon-set")["status"].get("numberMisscheduled") == 1, TIMEOUT,
                     what="misscheduled 1")
        assert "n3" in {node_of(p) for p in pods_of(srv, dns, "daemon-set")}
        srv.kubectl("taint", "node", "n3", "kubelite.dev/ds-evict=x:NoExecute", check=True)
        srv.wait_for(lambda: one_ready_pod_per_node(srv, dns, "daemon-set", [n for n in nodes if n != "n3"]),
                     TIMEOUT, what="the pod leaves the NoExecute node")
    finally:
        srv.kubectl("taint", "node", "n3", "kubelite.dev/ds-test-", "kubelite.dev/ds-evict-")
    srv.wait_for(lambda: one_ready_pod_per_node(srv, dns, "daemon-set", nodes), TIMEOUT, what="back on n3")


def test_should_not_update_pod_when_spec_was_updated_and_update_strategy_is_on_delete(fleet, dns):
    srv, _, nodes = fleet
    create(srv, dns, daemonset("daemon-set", strategy={"type": "OnDelete"}))
    before = srv.wait_for(lambda: one_ready_pod_per_node(srv, dns, "daemon-set", nodes), TIMEOUT, what="pods")
    srv.kubectl("-n", dns, "set", "image", "daemonset/daemon-set", f"app={V2}", check=True)
    ds = srv.wait_for(lambda: (d := get_ds(srv, dns, "daemon-set"))["status"].get("observedGeneration") == 2 and d,
                      TIMEOUT, what="the new template observed")
    assert ds["status"].get("updatedNumberScheduled", 0) == 0
    pods = pods_of(srv, dns, "daemon-set")
    assert {p["metadata"]["uid"] for p in pods} == {p["metadata"]["uid"] for p in before}
    # Deleting a pod by hand brings it back on the new template.
    victim = next(p for p in pods if node_of(p) == "n2")
    srv.kubectl("-n", dns, "delete", "pod", victim["metadata"]["name"], "--wait=false", check=True)

    def replaced():
        now = one_ready_pod_per_node(srv, dns, "daemon-set", nodes)
        return now and {node_of(p): p["spec"]["containers"][0]["image"] for p in now}
    images = srv.wait_for(lambda: (m := replaced()) and m["n2"] == V2 and m, TIMEOUT, what="n2 on the new image")
    assert sorted(v for k, v in images.items() if k != "n2") == [V1, V1]
