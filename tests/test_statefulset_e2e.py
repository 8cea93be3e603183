"""StatefulSets end to end on the fake runtime with the real kubectl 1.33, named after
upstream's specs in test/e2e/apps/statefulset.go.

Fake pods are never dialled: readiness comes from the fake runtime (the
``fake.kubelite.dev/never-ready`` annotation makes a pod fail its readiness probe), and
every assertion reads the API.
"""
from __future__ import annotations

import json

import pytest
from conftest import create_namespace, start_server

V1 = "docker.io/jocatalin/kubernetes-bootcamp:v1"
V2 = "docker.io/jocatalin/kubernetes-bootcamp:v2"
NEVER_READY = "fake.kubelite.dev/never-ready"
TIMEOUT = 90


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    """A whole cluster whose node runs the fake runtime."""
    srv = start_server(tmp_path_factory.mktemp("sts"), "--runtime", "fake")
    yield srv
    srv.stop()


@pytest.fixture
def sns(request, fake):
    name = create_namespace(fake, request, "sts")
    yield name
    fake.kubectl("delete", "namespace", name, "--wait=false")


def statefulset(name: str, replicas: int, *, image: str = V1, policy: str = "OrderedReady",
                strategy: dict | None = None, never_ready: bool = False) -> dict:
    """A StatefulSet with a readiness probe (answered by the fake runtime, never dialled)."""
    tmd: dict = {"labels": {"app": name}}
    if never_ready:
        tmd["annotations"] = {NEVER_READY: "true"}
    container = {"name": "c", "image": image,
                 "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1}}
    spec: dict = {"replicas": replicas, "serviceName": name, "podManagementPolicy": policy,
                  "selector": {"matchLabels": {"app": name}},
                  "template": {"metadata": tmd, "spec": {"containers": [container],
                                                         "terminationGracePeriodSeconds": 1}}}
    if strategy is not None:
        spec["updateStrategy"] = strategy
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name}, "spec": spec}


def headless_service(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"clusterIP": "None", "selector": {"app": name}, "ports": [{"port": 80, "name": "http"}]}}


def apply(srv, ns: str, *objs: dict) -> None:
    srv.kubectl("-n", ns, "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                                 "items": list(objs)}), check=True)


def get_sts(srv, ns: str, name: str) -> dict:
    return srv.kjson("-n", ns, "get", "statefulset", name)


def pods_of(srv, ns: str, name: str) -> dict[str, dict]:
    items = srv.kjson("-n", ns, "get", "pods", "-l", f"app={name}")["items"]
    return {p["metadata"]["name"]: p for p in items}


def ready(p: dict) -> bool:
    return p.get("status", {}).get("phase") == "Running" and any(
        c["type"] == "Ready" and c["status"] == "True" for c in p.get("status", {}).get("conditions", []))


def image(p: dict) -> str:
    return p["spec"]["containers"][0]["image"]


def wait_ready(srv, ns: str, name: str, n: int) -> dict:
    def done():
        s = get_sts(srv, ns, name)
        st = s.get("status", {})
        ok = (st.get("observedGeneration") == s["metadata"]["generation"] and st.get("readyReplicas", 0) == n
              and st.get("replicas") == n)
        return ok and s
    return srv.wait_for(done, TIMEOUT, what=f"{name}: {n} ready replicas")


def observed(srv, ns: str, name: str) -> dict:
    """Wait until the controller has seen the latest spec (observedGeneration caught up)."""
    def done():
        s = get_sts(srv, ns, name)
        return s.get("status", {}).get("observedGeneration") == s["metadata"]["generation"] and s
    return srv.wait_for(done, TIMEOUT, what=f"{name}: observedGeneration")


def test_should_perform_rolling_updates_and_roll_backs_of_template_modifications(fake, sns):
    apply(fake, sns, headless_service("ss2"), statefulset("ss2", 3))
    sts = wait_ready(fake, sns, "ss2", 3)
    first = sts["status"]["currentRevision"]
    assert first == sts["status"]["updateRevision"] and first.startswith("ss2-")
    pods = pods_of(fake, sns, "ss2")
    assert sorted(pods) == ["ss2-0", "ss2-1", "ss2-2"]
    for name, p in pods.items():
        assert p["spec"]["hostname"] == name and p["spec"]["subdomain"] == "ss2"
        labels = p["metadata"]["labels"]
        assert labels["statefulset.kubernetes.io/pod-name"] == name
        assert labels["apps.kubernetes.io/pod-index"] == name.rsplit("-", 1)[1]
        assert labels["controller-revision-hash"] == first
    revs = fake.kjson("-n", sns, "get", "controllerrevisions")["items"]
    assert [r["metadata"]["name"] for r in revs] == [first] and revs[0]["revision"] == 1

    fake.kubectl("-n", sns, "set", "image", "statefulset/ss2", f"c={V2}", check=True)
    out = fake.kubectl("-n", sns, "rollout", "status", "statefulset/ss2", f"--timeout={TIMEOUT}s", timeout=TIMEOUT + 10)
    assert out.returncode == 0, out.stderr
    assert "roll out complete: 3 new pods have been updated" in out.stdout
    sts = get_sts(fake, sns, "ss2")
    second = sts["status"]["updateRevision"]
    assert second != first and sts["status"]["currentRevision"] == second
    assert sts["status"]["updatedReplicas"] == 3 and sts["status"]["currentReplicas"] == 3
    assert all(image(p) == V2 and p["metadata"]["labels"]["controller-revision-hash"] == second
               for p in pods_of(fake, sns, "ss2").values())

    hist = fake.kubectl("-n", sns, "rollout", "history", "statefulset/ss2", check=True).stdout
    assert [line.split()[0] for line in hist.splitlines()[2:] if line.strip()] == ["1", "2"]

    # Roll back: the first revision becomes revision 3 (same name), and the pods return to v1.
    undo = fake.kubectl("-n", sns, "rollout", "undo", "statefulset/ss2", check=True)
    assert "rolled back" in undo.stdout
    out = fake.kubectl("-n", sns, "rollout", "status", "statefulset/ss2", f"--timeout={TIMEOUT}s", timeout=TIMEOUT + 10)
    assert out.returncode == 0, out.stderr
    sts = get_sts(fake, sns, "ss2")
    assert sts["status"]["currentRevision"] == first == sts["status"]["updateRevision"]
    assert all(image(p) == V1 for p in pods_of(fake, sns, "ss2").values())
    revs = {r["metadata"]["name"]: r["revision"] for r in fake.kjson("-n", sns, "get", "controllerrevisions")["items"]}
    assert revs == {first: 3, second: 2}

    undo = fake.kubectl("-n", sns, "rollout", "undo", "statefulset/ss2", "--to-revision=2", check=True)
    out = fake.kubectl("-n", sns, "rollout", "status", "statefulset/ss2", f"--timeout={TIMEOUT}s", timeout=TIMEOUT + 10)
    assert out.returncode == 0, out.stderr
    assert all(image(p) == V2 for p in pods_of(fake, sns, "ss2").values())

    # rollout restart stamps the template and replaces every pod once more.
    fake.kubectl("-n", sns, "rollout", "restart", "statefulset/ss2", check=True)
    out = fake.kubectl("-n", sns, "rollout", "status", "statefulset/ss2", f"--timeout={TIMEOUT}s", timeout=TIMEOUT + 10)
    assert out.returncode == 0, out.stderr
    pods = pods_of(fake, sns, "ss2")
    assert all("kubectl.kubernetes.io/restartedAt" in p["metadata"].get("annotations", {}) for p in pods.values())


def test_should_perform_canary_updates_and_phased_rolling_updates_of_template_modifications(fake, sns):
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"partition": 3}}
    apply(fake, sns, headless_service("ss2"), statefulset("ss2", 3, strategy=strategy))
    sts = wait_ready(fake, sns, "ss2", 3)
    first = sts["status"]["currentRevision"]

    # A partition equal to replicas: a new revision, but no pod moves.
    fake.kubectl("-n", sns, "set", "image", "statefulset/ss2", f"c={V2}", check=True)
    sts = observed(fake, sns, "ss2")
    second = sts["status"]["updateRevision"]
    assert second != first and sts["status"]["currentRevision"] == first
    assert all(image(p) == V1 for p in pods_of(fake, sns, "ss2").values())

    # Canary: partition 2 updates ss2-2 only.
    fake.kubectl("-n", sns, "patch", "statefulset", "ss2", "-p",
                 '{"spec":{"updateStrategy":{"rollingUpdate":{"partition":2}}}}', check=True)

    def canary():
        pods = pods_of(fake, sns, "ss2")
        return (len(pods) == 3 and all(ready(p) for p in pods.values())
                and pods["ss2-2"]["metadata"]["labels"]["controller-revision-hash"] == second and pods)
    pods = fake.wait_for(canary, TIMEOUT, what="canary ss2-2 updated")
    assert image(pods["ss2-2"]) == V2
    assert [image(pods[n]) for n in ("ss2-0", "ss2-1")] == [V1, V1]
    out = fake.kubectl("-n", sns, "rollout", "status", "statefulset/ss2", f"--timeout={TIMEOUT}s", timeout=TIMEOUT + 10)
    assert "partitioned roll out complete: 1 new pods have been updated" in out.stdout, out.stderr

    # Phased: lowering the partition to 0 updates the rest, highest ordinal first.
    fake.kubectl("-n", sns, "patch", "statefulset", "ss2", "-p",
                 '{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}', check=True)

    def all_updated():
        s = get_sts(fake, sns, "ss2")
        st = s["status"]
        return st.get("currentRevision") == second and st.get("readyReplicas") == 3 and s
    fake.wait_for(all_updated, TIMEOUT, what="phased roll-out done")
    assert all(image(p) == V2 for p in pods_of(fake, sns, "ss2").values())


def _order_violations(pods: dict[str, dict], name: str) -> list[str]:
    """OrderedReady invariants, as violations: the pods form a prefix ss-0…ss-k; every pod
    below the highest is Running and Ready; at most one pod is terminating, the highest."""
    out = []
    ordinals = sorted(int(n.rsplit("-", 1)[1]) for n in pods)
    if ordinals != list(range(len(ordinals))):
        out.append(f"not a prefix: {ordinals}")
    for o in ordinals[:-1]:
        p = pods[f"{name}-{o}"]
        if not ready(p) or p["metadata"].get("deletionTimestamp"):
            out.append(f"{name}-{o} not ready or terminating below {name}-{ordinals[-1]}")
    terminating = [o for o in ordinals if pods[f"{name}-{o}"]["metadata"].get("deletionTimestamp")]
    if terminating not in ([], ordinals[-1:]):
        out.append(f"terminating {terminating} of {ordinals}")
    return out


def test_scaling_should_happen_in_predictable_order_and_halt_if_any_stateful_pod_is_unhealthy(fake, sns):
    apply(fake, sns, headless_service("ss"), statefulset("ss", 3, never_ready=True))

    # ss-0 never becomes ready, so ss-1 is never created.
    def stuck():
        pods = pods_of(fake, sns, "ss")
        p = pods.get("ss-0")
        return p is not None and p["status"].get("phase") == "Running" and not ready(p) and pods
    pods = fake.wait_for(stuck, TIMEOUT, what="ss-0 running, not ready")
    assert sorted(pods) == ["ss-0"]
    sts = fake.wait_for(lambda: (s := observed(fake, sns, "ss"))["status"].get("replicas") == 1 and s, TIMEOUT,
                        what="status counts ss-0")
    assert sts["status"].get("readyReplicas", 0) == 0
    assert sorted(pods_of(fake, sns, "ss")) == ["ss-0"]

    # Make the template healthy and replace the stuck pod: the set grows in order.
    fake.kubectl("-n", sns, "patch", "statefulset", "ss", "--type=json", "-p",
                 '[{"op":"remove","path":"/spec/template/metadata/annotations"}]', check=True)
    fake.kubectl("-n", sns, "delete", "pod", "ss-0", "--wait=false", check=True)

    # Each poll checks the invariants; wait_for would swallow an assertion, so keep a record.
    violations: list[str] = []

    def grown():
        pods = pods_of(fake, sns, "ss")
        violations.extend(_order_violations(pods, "ss"))
        return len(pods) == 3 and all(ready(p) for p in pods.values())
    fake.wait_for(grown, TIMEOUT, interval=0.05, what="ss-0..2 ready, created in order")
    assert violations == []

    # Scale down: removed from the highest ordinal, one at a time.
    fake.kubectl("-n", sns, "scale", "statefulset/ss", "--replicas=0", check=True)

    def shrunk():
        pods = pods_of(fake, sns, "ss")
        violations.extend(_order_violations(pods, "ss"))
        return not pods
    fake.wait_for(shrunk, TIMEOUT, interval=0.05, what="every pod gone, highest ordinal first")
    assert violations == []
    events = fake.kubectl("-n", sns, "get", "events", "--field-selector", "involvedObject.kind=StatefulSet",
                          "-o", "json", check=True)
    deleted = [e["message"] for e in sorted(json.loads(events.stdout)["items"],
                                            key=lambda e: (e.get("lastTimestamp") or "", e["metadata"]["name"]))
               if e["reason"] == "SuccessfulDelete"]
    assert {"delete Pod ss-2 in StatefulSet ss successful", "delete Pod ss-1 in StatefulSet ss successful"} <= set(deleted)


def test_burst_scaling_should_run_to_completion_even_with_unhealthy_pods(fake, sns):
    apply(fake, sns, headless_service("ss"), statefulset("ss", 3, policy="Parallel", never_ready=True))

    def all_created():
        pods = pods_of(fake, sns, "ss")
        return sorted(pods) == ["ss-0", "ss-1", "ss-2"] and all(
            p["status"].get("phase") == "Running" for p in pods.values()) and pods
    pods = fake.wait_for(all_created, TIMEOUT, what="three unready pods at once")
    assert not any(ready(p) for p in pods.values())
    fake.kubectl("-n", sns, "scale", "statefulset/ss", "--replicas=0", check=True)
    fake.wait_for(lambda: not pods_of(fake, sns, "ss"), TIMEOUT, what="burst scale down")
    fake.wait_for(lambda: get_sts(fake, sns, "ss")["status"].get("replicas") == 0, TIMEOUT,
                  what="status.replicas 0 once the pods are gone")


def test_should_implement_legacy_replacement_when_the_update_strategy_is_on_delete(fake, sns):
    apply(fake, sns, headless_service("ss2"), statefulset("ss2", 3, strategy={"type": "OnDelete"}))
    sts = wait_ready(fake, sns, "ss2", 3)
    first = sts["status"]["currentRevision"]
    fake.kubectl("-n", sns, "set", "image", "statefulset/ss2", f"c={V2}", check=True)
    sts = observed(fake, sns, "ss2")
    second = sts["status"]["updateRevision"]
    assert second != first
    assert all(image(p) == V1 for p in pods_of(fake, sns, "ss2").values())
    out = fake.kubectl("-n", sns, "rollout", "status", "statefulset/ss2", "--timeout=5s")
    assert out.returncode != 0 and "only available for RollingUpdate strategy type" in out.stderr

    old_uid = pods_of(fake, sns, "ss2")["ss2-1"]["metadata"]["uid"]
    fake.kubectl("-n", sns, "delete", "pod", "ss2-1", "--wait=false", check=True)

    def replaced():
        p = pods_of(fake, sns, "ss2").get("ss2-1")
        return p is not None and p["metadata"]["uid"] != old_uid and ready(p) and p
    p = fake.wait_for(replaced, TIMEOUT, what="ss2-1 recreated")
    assert image(p) == V2 and p["metadata"]["labels"]["controller-revision-hash"] == second
    pods = pods_of(fake, sns, "ss2")
    assert [image(pods[n]) for n in ("ss2-0", "ss2-2")] == [V1, V1]


def test_statefulset_tables_and_discovery_as_upstream(fake, sns):
    apply(fake, sns, statefulset("web", 1))
    wait_ready(fake, sns, "web", 1)
    out = fake.kubectl("-n", sns, "get", "sts", check=True).stdout.splitlines()
    assert out[0].split() == ["NAME", "READY", "AGE"] and out[1].split()[:2] == ["web", "1/1"]
    out = fake.kubectl("-n", sns, "get", "controllerrevisions", check=True).stdout.splitlines()
    assert out[0].split() == ["NAME", "CONTROLLER", "REVISION", "AGE"]
    assert out[1].split()[1:3] == ["statefulset.apps/web", "1"]
    res = fake.kubectl("api-resources", "--api-group=apps", check=True).stdout
    assert any(line.split()[:2] == ["statefulsets", "sts"] for line in res.splitlines())
    assert any(line.split()[:2] == ["daemonsets", "ds"] for line in res.splitlines())
    assert any(line.split()[0] == "controllerrevisions" for line in res.splitlines())
    bad = fake.kubectl("-n", sns, "patch", "statefulset", "web", "-p", '{"spec":{"serviceName":"other"}}')
    assert bad.returncode != 0 and "updates to statefulset spec for fields other than" in bad.stderr
