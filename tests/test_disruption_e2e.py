"""PodDisruptionBudgets, the eviction subresource and `kubectl drain` end to end on the fake
runtime with the real kubectl 1.33, named after upstream's specs in
test/e2e/apps/disruption.go (and test/e2e/apps/rc.go for ReplicationControllers).

Fake pods are never dialled: readiness comes from the fake runtime (the
``fake.kubelite.dev/never-ready`` annotation keeps a pod unready) and every assertion
reads the API.
"""
from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request

import pytest
from conftest import create_namespace, start_server

IMAGE = "docker.io/jocatalin/kubernetes-bootcamp:v1"
NEVER_READY = "fake.kubelite.dev/never-ready"
TIMEOUT = 90
VIOLATION = "Cannot evict pod as it would violate the pod's disruption budget."


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    """A whole cluster whose node runs the fake runtime."""
    srv = start_server(tmp_path_factory.mktemp("pdb"), "--runtime", "fake")
    yield srv
    srv.stop()


@pytest.fixture
def pns(request, fake):
    name = create_namespace(fake, request, "pdb")
    yield name
    fake.kubectl("delete", "namespace", name, "--wait=false")


class Raw:
    """Plain HTTPS requests with the admin certificate, for answers kubectl does not show whole."""

    def __init__(self, srv):
        cfg = srv.client_config()
        self.base = cfg.server
        self.ctx = ssl.create_default_context(cafile=cfg.ca_file)
        self.ctx.load_cert_chain(cfg.cert_file, cfg.key_file)

    def post(self, path: str, body: dict) -> tuple[int, dict, dict]:
        req = urllib.request.Request(self.base + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=30) as r:
                return r.status, json.loads(r.read()), dict(r.headers)
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read()), dict(e.headers)


@pytest.fixture(scope="module")
def raw(fake):
    return Raw(fake)


def evict(raw: Raw, ns: str, pod: str, delete_options: dict | None = None, query: str = "") -> tuple[int, dict, dict]:
    body: dict = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": pod, "namespace": ns}}
    if delete_options is not None:
        body["deleteOptions"] = delete_options
    return raw.post(f"/api/v1/namespaces/{ns}/pods/{pod}/eviction{query}", body)


def apply(srv, ns: str, *objs: dict) -> None:
    srv.kubectl("-n", ns, "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                                 "items": list(objs)}), check=True)


def pdb(name: str, *, min_available=None, max_unavailable=None, selector: dict | None = None,
        policy: str | None = None) -> dict:
    spec: dict = {"selector": {"matchLabels": selector if selector is not None else {"foo": "bar"}}}
    if min_available is not None:
        spec["minAvailable"] = min_available
    if max_unavailable is not None:
        spec["maxUnavailable"] = max_unavailable
    if policy is not None:
        spec["unhealthyPodEvictionPolicy"] = policy
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": name}, "spec": spec}


def bare_pod(name: str, *, never_ready: bool = False) -> dict:
    md: dict = {"name": name, "labels": {"foo": "bar"}}
    if never_ready:
        md["annotations"] = {NEVER_READY: "true"}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md,
            "spec": {"containers": [{"name": "c", "image": IMAGE}], "terminationGracePeriodSeconds": 1}}


def replicaset(name: str, replicas: int, *, never_ready: bool = False) -> dict:
    tmd: dict = {"labels": {"foo": "bar"}}
    if never_ready:
        tmd["annotations"] = {NEVER_READY: "true"}
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"foo": "bar"}},
                     "template": {"metadata": tmd, "spec": {"containers": [{"name": "c", "image": IMAGE}],
                                                            "terminationGracePeriodSeconds": 1}}}}


def get(srv, ns: str, *what: str) -> dict:
    return srv.kjson("-n", ns, "get", *what)


def ready_pods(srv, ns: str) -> list[dict]:
    return [p for p in get(srv, ns, "pods")["items"] if not p["metadata"].get("deletionTimestamp")
            and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions") or [])]


def wait_ready(srv, ns: str, n: int) -> list[dict]:
    return srv.wait_for(lambda: (lambda ps: ps if len(ps) >= n else None)(ready_pods(srv, ns)), TIMEOUT,
                        interval=0.3, what=f"{n} ready pods")


def wait_running(srv, ns: str, n: int) -> list[dict]:
    def running():
        ps = [p for p in get(srv, ns, "pods")["items"]
              if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")]
        return ps if len(ps) >= n else None
    return srv.wait_for(running, TIMEOUT, interval=0.3, what=f"{n} running pods")


def wait_pdb(srv, ns: str, name: str, **want) -> dict:
    """Poll until the budget's status has every wanted value at its current generation."""
    def check():
        obj = get(srv, ns, "pdb", name)
        st = obj.get("status") or {}
        if st.get("observedGeneration") != obj["metadata"]["generation"]:
            return None
        return obj if all(st.get(k) == v for k, v in want.items()) else None
    return srv.wait_for(check, TIMEOUT, interval=0.3, what=f"pdb {name} status {want}")


# --- the PodDisruptionBudget API ----------------------------------------------------------

def test_should_create_a_poddisruptionbudget(fake, pns):
    p = fake.kubectl("-n", pns, "create", "pdb", "foo", "--selector=foo=bar", "--min-available=1", check=True)
    assert "poddisruptionbudget.policy/foo created" in p.stdout
    obj = wait_pdb(fake, pns, "foo", expectedPods=0, disruptionsAllowed=0)
    assert obj["status"]["conditions"][0]["type"] == "DisruptionAllowed"
    assert obj["status"]["conditions"][0]["reason"] == "InsufficientPods"
    fake.kubectl("-n", pns, "patch", "pdb", "foo", "--type=merge", "-p", '{"spec":{"minAvailable":2}}', check=True)
    obj = wait_pdb(fake, pns, "foo")
    assert obj["metadata"]["generation"] == 2 and obj["spec"]["minAvailable"] == 2
    table = fake.kubectl("-n", pns, "get", "pdb", check=True).stdout.splitlines()
    assert table[0].split() == ["NAME", "MIN", "AVAILABLE", "MAX", "UNAVAILABLE", "ALLOWED", "DISRUPTIONS", "AGE"]
    assert table[1].split()[:4] == ["foo", "2", "N/A", "0"]
    fake.kubectl("-n", pns, "delete", "pdb", "foo", check=True)
    assert "NotFound" in fake.kubectl("-n", pns, "get", "pdb", "foo").stderr


def test_should_list_and_delete_a_collection_of_poddisruptionbudgets(fake, pns):
    apply(fake, pns, pdb("a", min_available=1), pdb("b", max_unavailable="10%"), pdb("c", min_available="50%"))
    assert sorted(i["metadata"]["name"] for i in get(fake, pns, "pdb")["items"]) == ["a", "b", "c"]
    fake.kubectl("-n", pns, "delete", "pdb", "--all", check=True)
    assert get(fake, pns, "pdb")["items"] == []


def test_should_observe_poddisruptionbudget_status_updated(fake, pns):
    apply(fake, pns, pdb("foo", min_available=1), *(bare_pod(f"pod-{i}") for i in range(3)))
    wait_ready(fake, pns, 3)
    obj = wait_pdb(fake, pns, "foo", currentHealthy=3, desiredHealthy=1, expectedPods=3, disruptionsAllowed=2)
    cond = next(c for c in obj["status"]["conditions"] if c["type"] == "DisruptionAllowed")
    assert (cond["status"], cond["reason"]) == ("True", "SufficientPods")


def test_should_observe_that_the_poddisruptionbudget_status_is_not_updated_for_unmanaged_pods(fake, pns):
    apply(fake, pns, pdb("foo", max_unavailable=1), *(bare_pod(f"pod-{i}") for i in range(3)))
    wait_ready(fake, pns, 3)
    # maxUnavailable counts on the pods' controllers; bare pods have none.
    wait_pdb(fake, pns, "foo", currentHealthy=3, expectedPods=0, desiredHealthy=0, disruptionsAllowed=0)


# --- evictions ------------------------------------------------------------------------------

def test_evictions_no_pdb_should_allow_an_eviction(fake, raw, pns):
    apply(fake, pns, bare_pod("pod-0"))
    wait_running(fake, pns, 1)
    code, body, _ = evict(raw, pns, "pod-0")
    assert code == 201 and body["status"] == "Success"
    fake.wait_for(lambda: "NotFound" in fake.kubectl("-n", pns, "get", "pod", "pod-0").stderr, TIMEOUT,
                  what="pod-0 gone")


def test_evictions_too_few_pods_absolute_should_not_allow_an_eviction(fake, raw, pns):
    apply(fake, pns, pdb("foo", min_available=2), *(bare_pod(f"pod-{i}") for i in range(2)))
    wait_ready(fake, pns, 2)
    wait_pdb(fake, pns, "foo", currentHealthy=2, desiredHealthy=2, disruptionsAllowed=0)
    code, body, _ = evict(raw, pns, "pod-0")
    assert code == 429, body
    assert body["reason"] == "TooManyRequests" and body["message"] == VIOLATION
    assert body["details"]["causes"] == [{"reason": "DisruptionBudget",
                                          "message": "The disruption budget foo needs 2 healthy pods and has 2 "
                                                     "currently"}]
    assert not get(fake, pns, "pod", "pod-0")["metadata"].get("deletionTimestamp")


HOLD = "kubelite.dev/test-hold"


def held(pod: dict) -> dict:
    """The pod with a finalizer of ours: it stays readable after the eviction deleted it."""
    pod["metadata"]["finalizers"] = [HOLD]
    return pod


def release(srv, ns: str, name: str) -> None:
    srv.kubectl("-n", ns, "patch", "pod", name, "--type=json", "-p",
                '[{"op":"remove","path":"/metadata/finalizers"}]', check=True)


def test_evictions_enough_pods_absolute_should_allow_an_eviction(fake, raw, pns):
    apply(fake, pns, pdb("foo", min_available=2), held(bare_pod("pod-0")), *(bare_pod(f"pod-{i}") for i in (1, 2)))
    wait_ready(fake, pns, 3)
    wait_pdb(fake, pns, "foo", currentHealthy=3, disruptionsAllowed=1)
    code, body, _ = evict(raw, pns, "pod-0")
    assert code == 201, body
    pod = get(fake, pns, "pod", "pod-0")
    assert pod["metadata"].get("deletionTimestamp")
    cond = next(c for c in pod["status"]["conditions"] if c["type"] == "DisruptionTarget")
    assert (cond["status"], cond["reason"], cond["message"]) == ("True", "EvictionByEvictionAPI",
                                                                 "Eviction API: evicting")
    # The budget was charged at once: the next eviction is refused before the controller looks.
    budget = get(fake, pns, "pdb", "foo")
    assert "pod-0" in (budget["status"].get("disruptedPods") or {}) or budget["status"]["disruptionsAllowed"] == 0
    code, body, _ = evict(raw, pns, "pod-1")
    assert code == 429 and body["message"] == VIOLATION
    release(fake, pns, "pod-0")


def test_evictions_maxunavailable_allow_single_eviction_percentage_should_allow_an_eviction(fake, raw, pns):
    apply(fake, pns, pdb("foo", max_unavailable="10%"), replicaset("rs", 10))
    pods = wait_ready(fake, pns, 10)
    wait_pdb(fake, pns, "foo", expectedPods=10, desiredHealthy=9, currentHealthy=10, disruptionsAllowed=1)
    code, body, _ = evict(raw, pns, pods[0]["metadata"]["name"])
    assert code == 201, body


def test_evictions_maxunavailable_deny_evictions_integer_should_not_allow_an_eviction(fake, raw, pns):
    apply(fake, pns, pdb("foo", max_unavailable=0), replicaset("rs", 3))
    pods = wait_ready(fake, pns, 3)
    wait_pdb(fake, pns, "foo", expectedPods=3, desiredHealthy=3, currentHealthy=3, disruptionsAllowed=0)
    code, body, _ = evict(raw, pns, pods[0]["metadata"]["name"])
    assert code == 429 and body["message"] == VIOLATION


def test_should_block_an_eviction_until_the_pdb_is_updated_to_allow_it(fake, raw, pns):
    apply(fake, pns, pdb("foo", min_available=3), replicaset("rs", 3))
    pods = wait_ready(fake, pns, 3)
    wait_pdb(fake, pns, "foo", currentHealthy=3, desiredHealthy=3, disruptionsAllowed=0)
    victim = pods[0]["metadata"]["name"]
    code, body, _ = evict(raw, pns, victim)
    assert code == 429 and body["details"]["causes"][0]["reason"] == "DisruptionBudget"
    fake.kubectl("-n", pns, "patch", "pdb", "foo", "--type=merge", "-p", '{"spec":{"minAvailable":2}}', check=True)
    wait_pdb(fake, pns, "foo", desiredHealthy=2, disruptionsAllowed=1)
    code, body, _ = evict(raw, pns, victim)
    assert code == 201, body


def test_evictions_dry_run_changes_nothing(fake, raw, pns):
    apply(fake, pns, pdb("foo", min_available=1), *(bare_pod(f"pod-{i}") for i in range(2)))
    wait_ready(fake, pns, 2)
    before = wait_pdb(fake, pns, "foo", disruptionsAllowed=1)
    code, body, _ = evict(raw, pns, "pod-0", query="?dryRun=All")
    assert code == 201, body
    assert not get(fake, pns, "pod", "pod-0")["metadata"].get("deletionTimestamp")
    after = get(fake, pns, "pdb", "foo")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


def test_evictions_honour_the_grace_period_of_delete_options(fake, raw, pns):
    # Bound to a node no agent serves: nothing shortens the grace period after the eviction.
    pod = bare_pod("pod-0")
    pod["spec"]["nodeName"] = "no-such-node"
    apply(fake, pns, pod)
    code, body, _ = evict(raw, pns, "pod-0", {"gracePeriodSeconds": 7})
    assert code == 201, body
    pod = get(fake, pns, "pod", "pod-0")
    assert pod["metadata"]["deletionGracePeriodSeconds"] == 7
    fake.kubectl("-n", pns, "delete", "pod", "pod-0", "--grace-period=0", "--force", "--wait=false")


def test_should_not_evict_unready_pods_with_ifhealthybudget_unhealthypodevictionpolicy(fake, raw, pns):
    apply(fake, pns, pdb("foo", min_available=2, policy="IfHealthyBudget"),
          bare_pod("pod-0"), bare_pod("pod-1", never_ready=True))
    wait_running(fake, pns, 2)
    wait_pdb(fake, pns, "foo", currentHealthy=1, desiredHealthy=2, disruptionsAllowed=0)
    code, body, _ = evict(raw, pns, "pod-1")
    assert code == 429 and body["message"] == VIOLATION


def test_should_evict_unready_pods_with_alwaysallow_unhealthypodevictionpolicy(fake, raw, pns):
    apply(fake, pns, pdb("foo", min_available=2, policy="AlwaysAllow"),
          bare_pod("pod-0"), bare_pod("pod-1", never_ready=True))
    wait_running(fake, pns, 2)
    wait_pdb(fake, pns, "foo", currentHealthy=1, desiredHealthy=2, disruptionsAllowed=0)
    code, body, _ = evict(raw, pns, "pod-1")
    assert code == 201, body
    # A ready pod stays protected.
    code, body, _ = evict(raw, pns, "pod-0")
    assert code == 429


def test_evictions_of_a_pod_under_two_budgets_are_refused(fake, raw, pns):
    apply(fake, pns, pdb("one", min_available=0), pdb("two", max_unavailable=5), bare_pod("pod-0"))
    wait_running(fake, pns, 1)
    code, body, _ = evict(raw, pns, "pod-0")
    assert code == 500 and body["status"] == "Failure"
    assert body["message"] == ("This pod has more than one PodDisruptionBudget, which the eviction subresource "
                               "does not support.")
    assert not get(fake, pns, "pod", "pod-0")["metadata"].get("deletionTimestamp")


def test_evictions_of_pending_pods_ignore_budgets(fake, raw, pns):
    unschedulable = bare_pod("pod-0")
    unschedulable["spec"]["nodeSelector"] = {"kubelite.dev/none": "x"}
    apply(fake, pns, pdb("foo", min_available=5), unschedulable)
    wait_pdb(fake, pns, "foo", disruptionsAllowed=0)
    code, body, _ = evict(raw, pns, "pod-0")
    assert code == 201, body


# --- kubectl drain, cordon and uncordon -----------------------------------------------------

@pytest.fixture
def lone(tmp_path):
    """A cluster of its own: a drain empties the whole node."""
    srv = start_server(tmp_path, "--runtime", "fake")
    yield srv
    srv.stop()


def deployment(name: str, replicas: int) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"foo": "bar"}},
                     "template": {"metadata": {"labels": {"foo": "bar"}},
                                  "spec": {"containers": [{"name": "c", "image": IMAGE}],
                                           "terminationGracePeriodSeconds": 1}}}}


def daemonset(name: str) -> dict:
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": {"ds": name}},
                     "template": {"metadata": {"labels": {"ds": name}},
                                  "spec": {"containers": [{"name": "c", "image": IMAGE}],
                                           "terminationGracePeriodSeconds": 1}}}}


def test_kubectl_drain_is_blocked_by_a_pdb_then_allowed(lone):
    ns = "drain"
    lone.kubectl("create", "namespace", ns, check=True)
    node = lone.kjson("get", "nodes")["items"][0]["metadata"]["name"]
    apply(lone, ns, deployment("web", 2), daemonset("agent"), pdb("web", min_available=2))
    wait_ready(lone, ns, 3)
    wait_pdb(lone, ns, "web", currentHealthy=2, desiredHealthy=2, expectedPods=2, disruptionsAllowed=0)

    p = lone.kubectl("drain", node, "--timeout=20s")
    assert p.returncode != 0
    assert "cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore)" in p.stderr
    assert lone.kjson("get", "node", node)["spec"].get("unschedulable") is True  # drain cordons first
    lone.kubectl("uncordon", node, check=True)
    assert not lone.kjson("get", "node", node)["spec"].get("unschedulable")

    # kubectl retries a refused eviction every 5 s: 6 s is the first try and one retry.
    p = lone.kubectl("drain", node, "--ignore-daemonsets", "--timeout=6s")
    assert p.returncode != 0
    assert VIOLATION in p.stderr  # kubectl retried the 429 until its timeout
    assert len([x for x in ready_pods(lone, ns) if x["metadata"]["labels"].get("foo") == "bar"]) == 2

    lone.kubectl("-n", ns, "patch", "pdb", "web", "--type=merge", "-p", '{"spec":{"minAvailable":0}}', check=True)
    wait_pdb(lone, ns, "web", desiredHealthy=0, disruptionsAllowed=2)
    p = lone.kubectl("drain", node, "--ignore-daemonsets", "--timeout=60s", timeout=90)
    assert p.returncode == 0, p.stderr
    assert f"node/{node} drained" in p.stdout
    left = [x for x in lone.kjson("-n", ns, "get", "pods")["items"]
            if x["metadata"]["labels"].get("foo") == "bar" and x["spec"].get("nodeName") == node
            and not x["metadata"].get("deletionTimestamp")]
    assert left == []
    p = lone.kubectl("uncordon", node, check=True)
    assert f"node/{node} uncordoned" in p.stdout
    wait_ready(lone, ns, 3)  # the Deployment's replacements are scheduled again
