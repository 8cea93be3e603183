"""ResourceQuota, LimitRange and PriorityClass end to end on the fake runtime with the real
kubectl 1.33, named after upstream's specs in test/e2e/apimachinery/resource_quota.go,
test/e2e/scheduling/limit_range.go and test/e2e/apps/replica_set.go.

Every assertion reads the API; waits poll for the condition with a deadline.
"""
from __future__ import annotations

import asyncio
import json

import pytest
from conftest import create_namespace, start_server

IMAGE = "registry.k8s.io/pause:3.9"
TIMEOUT = 60


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    """A whole cluster whose node runs the fake runtime."""
    srv = start_server(tmp_path_factory.mktemp("quota"), "--runtime", "fake")
    yield srv
    srv.stop()


@pytest.fixture
def qns(request, fake):
    name = create_namespace(fake, request, "rq")
    yield name
    fake.kubectl("delete", "namespace", name, "--wait=false")


def apply(srv, ns: str, obj: dict, *, check: bool = True):
    """kubectl create -f - of one object."""
    return srv.kubectl("-n", ns, "create", "-f", "-", input=json.dumps(obj), check=check)


def quota(name: str, hard: dict, **spec) -> dict:
    return {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": name}, "spec": {"hard": hard, **spec}}


def pod(name: str, *, requests: dict | None = None, limits: dict | None = None, **spec) -> dict:
    resources = {k: v for k, v in (("requests", requests), ("limits", limits)) if v}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": IMAGE, "resources": resources}], **spec}}


def used(srv, ns: str, name: str) -> dict:
    return (srv.kjson("-n", ns, "get", "resourcequota", name).get("status") or {}).get("used") or {}


def wait_used(srv, ns: str, name: str, want: dict) -> dict:
    """Poll until status.used has exactly the wanted values for the wanted keys."""
    def ok():
        u = used(srv, ns, name)
        return u if all(u.get(k) == v for k, v in want.items()) else None
    return srv.wait_for(ok, TIMEOUT, what=f"quota {name} used {want}")


# --- test/e2e/apimachinery/resource_quota.go ------------------------------------------------

def test_should_create_a_resourcequota_and_ensure_its_status_is_promptly_calculated(fake, qns):
    apply(fake, qns, quota("test-quota", {"pods": "5", "services": "10", "secrets": "10", "configmaps": "10",
                                          "requests.cpu": "1", "requests.memory": "500Mi"}))
    st = fake.wait_for(lambda: fake.kjson("-n", qns, "get", "quota", "test-quota").get("status", {}).get("used"),
                       TIMEOUT, what="status.used")
    got = fake.kjson("-n", qns, "get", "quota", "test-quota")["status"]
    assert got["hard"] == {"pods": "5", "services": "10", "secrets": "10", "configmaps": "10",
                           "requests.cpu": "1", "requests.memory": "500Mi"}
    # The namespace's own kube-root-ca.crt ConfigMap is counted, as upstream.
    assert st["pods"] == "0" and st["services"] == "0" and st["requests.cpu"] == "0"
    wait_used(fake, qns, "test-quota", {"configmaps": "1"})


def test_should_create_a_resourcequota_and_capture_the_life_of_a_pod(fake, qns):
    apply(fake, qns, quota("test-quota", {"pods": "5", "requests.cpu": "1", "requests.memory": "500Mi",
                                          "limits.cpu": "2", "limits.memory": "1Gi"}))
    wait_used(fake, qns, "test-quota", {"pods": "0"})
    apply(fake, qns, pod("test-pod", requests={"cpu": "500m", "memory": "252Mi"},
                         limits={"cpu": "1", "memory": "400Mi"}))
    # Charged at admission: no wait needed for the controller.
    u = used(fake, qns, "test-quota")
    assert u == {"pods": "1", "requests.cpu": "500m", "requests.memory": "252Mi", "limits.cpu": "1",
                 "limits.memory": "400Mi"}
    p = apply(fake, qns, pod("fail-pod", requests={"cpu": "600m", "memory": "100Mi"},
                             limits={"cpu": "1", "memory": "100Mi"}), check=False)
    assert p.returncode != 0
    assert ('Error from server (Forbidden): error when creating "STDIN": pods "fail-pod" is forbidden: '
            'exceeded quota: test-quota, requested: requests.cpu=600m, used: requests.cpu=500m, '
            'limited: requests.cpu=1') in p.stderr
    fake.kubectl("-n", qns, "delete", "pod", "test-pod", "--grace-period=0", "--force", check=True)
    wait_used(fake, qns, "test-quota", {"pods": "0", "requests.cpu": "0", "requests.memory": "0",
                                        "limits.cpu": "0", "limits.memory": "0"})


def test_should_create_a_resourcequota_and_capture_the_life_of_a_secret(fake, qns):
    apply(fake, qns, quota("test-quota", {"secrets": "2"}))
    wait_used(fake, qns, "test-quota", {"secrets": "0"})
    fake.kubectl("-n", qns, "create", "secret", "generic", "s1", "--from-literal=a=b", check=True)
    assert used(fake, qns, "test-quota")["secrets"] == "1"
    fake.kubectl("-n", qns, "create", "secret", "generic", "s2", "--from-literal=a=b", check=True)
    p = fake.kubectl("-n", qns, "create", "secret", "generic", "s3", "--from-literal=a=b")
    assert p.returncode != 0
    assert ('secrets "s3" is forbidden: exceeded quota: test-quota, requested: secrets=1, used: secrets=2, '
            'limited: secrets=2') in p.stderr
    fake.kubectl("-n", qns, "delete", "secret", "s1", "s2", check=True)
    wait_used(fake, qns, "test-quota", {"secrets": "0"})


def test_should_create_a_resourcequota_and_capture_the_life_of_a_configmap(fake, qns):
    apply(fake, qns, quota("test-quota", {"configmaps": "10", "count/configmaps": "10"}))
    wait_used(fake, qns, "test-quota", {"configmaps": "1", "count/configmaps": "1"})  # kube-root-ca.crt
    fake.kubectl("-n", qns, "create", "configmap", "cm1", "--from-literal=a=b", check=True)
    assert used(fake, qns, "test-quota") == {"configmaps": "2", "count/configmaps": "2"}
    fake.kubectl("-n", qns, "delete", "configmap", "cm1", check=True)
    wait_used(fake, qns, "test-quota", {"configmaps": "1", "count/configmaps": "1"})


def test_should_create_a_resourcequota_and_capture_the_life_of_a_service(fake, qns):
    apply(fake, qns, quota("test-quota", {"services": "10", "services.nodeports": "1",
                                          "services.loadbalancers": "0"}))
    wait_used(fake, qns, "test-quota", {"services": "0"})
    fake.kubectl("-n", qns, "create", "service", "clusterip", "svc1", "--tcp=80:80", check=True)
    fake.kubectl("-n", qns, "create", "service", "nodeport", "svc2", "--tcp=80:80", check=True)
    assert used(fake, qns, "test-quota") == {"services": "2", "services.nodeports": "1",
                                             "services.loadbalancers": "0"}
    p = fake.kubectl("-n", qns, "create", "service", "loadbalancer", "svc3", "--tcp=80:80")
    assert p.returncode != 0 and "exceeded quota: test-quota" in p.stderr
    fake.kubectl("-n", qns, "delete", "service", "svc1", "svc2", check=True)
    wait_used(fake, qns, "test-quota", {"services": "0", "services.nodeports": "0"})


def test_should_create_a_resourcequota_and_capture_the_life_of_a_replicaset(fake, qns):
    apply(fake, qns, quota("test-quota", {"count/replicasets.apps": "1"}))
    wait_used(fake, qns, "test-quota", {"count/replicasets.apps": "0"})
    rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "test-rs"},
          "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "rs"}},
                   "template": {"metadata": {"labels": {"app": "rs"}},
                                "spec": {"containers": [{"name": "c", "image": IMAGE}]}}}}
    apply(fake, qns, rs)
    assert used(fake, qns, "test-quota")["count/replicasets.apps"] == "1"
    fake.kubectl("-n", qns, "delete", "rs", "test-rs", check=True)
    wait_used(fake, qns, "test-quota", {"count/replicasets.apps": "0"})


def test_should_verify_resourcequota_with_terminating_scopes(fake, qns):
    hard = {"pods": "1", "requests.cpu": "1", "requests.memory": "500Mi", "limits.cpu": "2", "limits.memory": "1Gi"}
    apply(fake, qns, quota("quota-terminating", hard, scopes=["Terminating"]))
    apply(fake, qns, quota("quota-not-terminating", hard, scopes=["NotTerminating"]))
    wait_used(fake, qns, "quota-terminating", {"pods": "0"})
    wait_used(fake, qns, "quota-not-terminating", {"pods": "0"})
    res = {"requests": {"cpu": "500m", "memory": "200Mi"}, "limits": {"cpu": "1", "memory": "400Mi"}}
    apply(fake, qns, pod("test-pod", **res))
    assert used(fake, qns, "quota-not-terminating")["pods"] == "1"
    assert used(fake, qns, "quota-terminating") == {"pods": "0", "requests.cpu": "0", "requests.memory": "0",
                                                     "limits.cpu": "0", "limits.memory": "0"}
    apply(fake, qns, pod("terminating-pod", activeDeadlineSeconds=3600, **res))
    assert used(fake, qns, "quota-terminating") == {"pods": "1", "requests.cpu": "500m", "requests.memory": "200Mi",
                                                     "limits.cpu": "1", "limits.memory": "400Mi"}
    p = apply(fake, qns, pod("terminating-pod-2", activeDeadlineSeconds=3600, **res), check=False)
    assert 'pods "terminating-pod-2" is forbidden: exceeded quota: quota-terminating, requested: pods=1, ' \
           'used: pods=1, limited: pods=1' in p.stderr
    fake.kubectl("-n", qns, "delete", "pod", "terminating-pod", "test-pod", "--grace-period=0", "--force", check=True)
    wait_used(fake, qns, "quota-terminating", {"pods": "0"})
    wait_used(fake, qns, "quota-not-terminating", {"pods": "0"})


def test_should_verify_resourcequota_with_best_effort_scope(fake, qns):
    apply(fake, qns, quota("quota-besteffort", {"pods": "5"}, scopes=["BestEffort"]))
    apply(fake, qns, quota("quota-not-besteffort", {"pods": "5"}, scopes=["NotBestEffort"]))
    wait_used(fake, qns, "quota-besteffort", {"pods": "0"})
    wait_used(fake, qns, "quota-not-besteffort", {"pods": "0"})
    apply(fake, qns, pod("best-effort"))
    assert used(fake, qns, "quota-besteffort")["pods"] == "1"
    assert used(fake, qns, "quota-not-besteffort")["pods"] == "0"
    apply(fake, qns, pod("burstable", requests={"cpu": "100m"}))
    assert used(fake, qns, "quota-besteffort")["pods"] == "1"
    assert used(fake, qns, "quota-not-besteffort")["pods"] == "1"


def test_should_verify_resourcequota_with_priorityclass_scope(fake, qns):
    fake.kubectl("create", "priorityclass", f"{qns}-pc", "--value=1000", check=True)
    try:
        sel = {"matchExpressions": [{"scopeName": "PriorityClass", "operator": "In", "values": [f"{qns}-pc"]}]}
        apply(fake, qns, quota("quota-priorityclass", {"pods": "1"}, scopeSelector=sel))
        wait_used(fake, qns, "quota-priorityclass", {"pods": "0"})
        apply(fake, qns, pod("other"))
        assert used(fake, qns, "quota-priorityclass")["pods"] == "0"
        apply(fake, qns, pod("pc-pod", priorityClassName=f"{qns}-pc"))
        assert used(fake, qns, "quota-priorityclass")["pods"] == "1"
        p = apply(fake, qns, pod("pc-pod-2", priorityClassName=f"{qns}-pc"), check=False)
        assert "exceeded quota: quota-priorityclass, requested: pods=1, used: pods=1, limited: pods=1" in p.stderr
    finally:
        fake.kubectl("delete", "priorityclass", f"{qns}-pc")


def test_should_be_able_to_update_and_delete_resourcequota(fake, qns):
    apply(fake, qns, quota("test-quota", {"cpu": "1", "memory": "500Mi"}))
    got = fake.kjson("-n", qns, "get", "quota", "test-quota")
    assert got["spec"]["hard"] == {"cpu": "1", "memory": "500Mi"}
    fake.kubectl("-n", qns, "patch", "quota", "test-quota", "--type=merge", "-p",
                 json.dumps({"spec": {"hard": {"cpu": "2"}}}), check=True)
    assert fake.kjson("-n", qns, "get", "quota", "test-quota")["spec"]["hard"] == {"cpu": "2", "memory": "500Mi"}
    fake.wait_for(lambda: fake.kjson("-n", qns, "get", "quota", "test-quota").get("status", {}).get("hard", {})
                  .get("cpu") == "2", TIMEOUT, what="status.hard follows spec.hard")
    fake.kubectl("-n", qns, "delete", "quota", "test-quota", check=True)
    p = fake.kubectl("-n", qns, "get", "quota", "test-quota")
    assert p.returncode != 0 and 'resourcequotas "test-quota" not found' in p.stderr


def test_quota_requires_limits_for_every_container(fake, qns):
    apply(fake, qns, quota("compute", {"limits.cpu": "2", "requests.memory": "1Gi"}))
    wait_used(fake, qns, "compute", {"limits.cpu": "0"})
    p = apply(fake, qns, pod("no-limits"), check=False)
    assert ('pods "no-limits" is forbidden: failed quota: compute: must specify limits.cpu for: c; '
            'requests.memory for: c') in p.stderr


def test_kubectl_get_and_describe_quota(fake, qns):
    apply(fake, qns, quota("compute", {"pods": "10", "requests.cpu": "1", "limits.memory": "1Gi"}))
    wait_used(fake, qns, "compute", {"pods": "0"})
    apply(fake, qns, pod("p", requests={"cpu": "250m"}, limits={"memory": "512Mi"}))
    out = fake.kubectl("-n", qns, "get", "quota", check=True).stdout.splitlines()
    assert out[0].split() == ["NAME", "AGE", "REQUEST", "LIMIT"]
    assert out[1].split()[0] == "compute"
    assert "pods: 1/10, requests.cpu: 250m/1" in out[1]
    assert out[1].rstrip().endswith("limits.memory: 512Mi/1Gi")
    desc = fake.kubectl("-n", qns, "describe", "quota", "compute", check=True).stdout
    rows = {line.split()[0]: line.split()[1:] for line in desc.splitlines()[3:] if line.strip()}
    assert rows["limits.memory"] == ["512Mi", "1Gi"]
    assert rows["pods"] == ["1", "10"]
    assert rows["requests.cpu"] == ["250m", "1"]
    short = fake.kubectl("-n", qns, "get", "quota", "compute", "-o", "name", check=True).stdout.strip()
    assert short == "resourcequota/compute"


def test_parallel_creates_cannot_overshoot_a_quota(fake, qns):
    apply(fake, qns, quota("cm-quota", {"count/configmaps": "6"}))
    wait_used(fake, qns, "cm-quota", {"count/configmaps": "1"})

    async def create_all() -> list[bool]:
        from kubelite.api.resources import CONFIGMAPS
        from kubelite.client.errors import Forbidden
        from kubelite.client.rest import Client

        client = Client(fake.client_config())
        api = client.resource(CONFIGMAPS)

        async def one(i: int) -> bool:
            try:
                await api.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm-{i}"}}, qns)
                return True
            except Forbidden:
                return False
        try:
            return list(await asyncio.gather(*(one(i) for i in range(20))))
        finally:
            await client.close()

    results = asyncio.run(create_all())
    assert sum(results) == 5
    names = [c["metadata"]["name"] for c in fake.kjson("-n", qns, "get", "configmaps")["items"]]
    assert len(names) == 6
    assert used(fake, qns, "cm-quota")["count/configmaps"] == "6"


# --- test/e2e/apps/replica_set.go -------------------------------------------------------------

def test_replicaset_should_surface_a_failure_condition_on_a_common_issue_like_exceeded_quota(fake, qns):
    apply(fake, qns, quota("condition-test", {"pods": "2"}))
    wait_used(fake, qns, "condition-test", {"pods": "0"})
    rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "condition-test"},
          "spec": {"replicas": 3, "selector": {"matchLabels": {"name": "condition-test"}},
                   "template": {"metadata": {"labels": {"name": "condition-test"}},
                                "spec": {"containers": [{"name": "httpd", "image": IMAGE}]}}}}
    apply(fake, qns, rs)

    def failure():
        conds = fake.kjson("-n", qns, "get", "rs", "condition-test").get("status", {}).get("conditions") or []
        return next((c for c in conds if c["type"] == "ReplicaFailure" and c["status"] == "True"), None)
    cond = fake.wait_for(failure, TIMEOUT, what="ReplicaFailure condition")
    assert cond["reason"] == "FailedCreate"
    assert "exceeded quota: condition-test, requested: pods=1, used: pods=2, limited: pods=2" in cond["message"]
    fake.kubectl("-n", qns, "scale", "rs", "condition-test", "--replicas=2", check=True)

    def cleared():
        st = fake.kjson("-n", qns, "get", "rs", "condition-test").get("status", {})
        return not any(c["type"] == "ReplicaFailure" for c in st.get("conditions") or [])
    fake.wait_for(cleared, TIMEOUT, what="ReplicaFailure condition removed")


# --- test/e2e/scheduling/limit_range.go -------------------------------------------------------

def test_should_create_a_limitrange_with_defaults_and_ensure_pod_has_those_defaults_applied(fake, qns):
    lr = {"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "limit-range"},
          "spec": {"limits": [{"type": "Container",
                               "min": {"cpu": "100m", "memory": "10Mi", "ephemeral-storage": "100Mi"},
                               "max": {"cpu": "500m", "memory": "500Mi", "ephemeral-storage": "500Gi"},
                               "defaultRequest": {"cpu": "200m", "memory": "100Mi", "ephemeral-storage": "200Gi"},
                               "default": {"cpu": "300m", "memory": "200Mi", "ephemeral-storage": "300Gi"},
                               "maxLimitRequestRatio": {"cpu": "4"}}]}}
    apply(fake, qns, lr)
    got = fake.kjson("-n", qns, "get", "limitrange", "limit-range")["spec"]["limits"][0]
    assert got["default"] == {"cpu": "300m", "memory": "200Mi", "ephemeral-storage": "300Gi"}
    # No requests or limits: the defaults are applied.
    apply(fake, qns, pod("pod-no-resources"))
    res = fake.kjson("-n", qns, "get", "pod", "pod-no-resources")["spec"]["containers"][0]["resources"]
    assert res == {"requests": {"cpu": "200m", "memory": "100Mi", "ephemeral-storage": "200Gi"},
                   "limits": {"cpu": "300m", "memory": "200Mi", "ephemeral-storage": "300Gi"}}
    ann = fake.kjson("-n", qns, "get", "pod", "pod-no-resources")["metadata"]["annotations"]
    assert ann["kubernetes.io/limit-ranger"] == ("LimitRanger plugin set: cpu, ephemeral-storage, memory request "
                                                 "for container c; cpu, ephemeral-storage, memory limit for container c")
    # Partial requests: what is set is kept, the rest defaulted.
    apply(fake, qns, pod("pod-partial-resources", requests={"cpu": "300m", "memory": "150Mi",
                                                             "ephemeral-storage": "150Gi"}))
    res = fake.kjson("-n", qns, "get", "pod", "pod-partial-resources")["spec"]["containers"][0]["resources"]
    assert res == {"requests": {"cpu": "300m", "memory": "150Mi", "ephemeral-storage": "150Gi"},
                   "limits": {"cpu": "300m", "memory": "200Mi", "ephemeral-storage": "300Gi"}}
    # Outside the range: refused with upstream's messages.
    p = apply(fake, qns, pod("pod-over-max", requests={"cpu": "100m"}, limits={"cpu": "1"}), check=False)
    assert p.returncode != 0
    assert 'pods "pod-over-max" is forbidden: [maximum cpu usage per Container is 500m, but limit is 1, ' \
           'cpu max limit to request ratio per Container is 4, but provided ratio is 10.000000]' in p.stderr
    p = apply(fake, qns, pod("pod-under-min", requests={"cpu": "50m"}, limits={"cpu": "150m"}), check=False)
    assert 'pods "pod-under-min" is forbidden: minimum cpu usage per Container is 100m, but request is 50m' \
        in p.stderr
    out = fake.kubectl("-n", qns, "get", "limits", check=True).stdout.splitlines()
    assert out[0].split() == ["NAME", "CREATED", "AT"] and out[1].split()[0] == "limit-range"


def test_limitrange_pod_maximum_is_checked_on_the_sum_of_containers(fake, qns):
    lr = {"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "pod-max"},
          "spec": {"limits": [{"type": "Pod", "max": {"memory": "1Gi"}}]}}
    apply(fake, qns, lr)
    two = pod("two", limits={"memory": "600Mi"})
    two["spec"]["containers"].append({"name": "d", "image": IMAGE, "resources": {"limits": {"memory": "600Mi"}}})
    p = apply(fake, qns, two, check=False)
    assert 'pods "two" is forbidden: maximum memory usage per Pod is 1Gi, but limit is 1200Mi' in p.stderr
    apply(fake, qns, pod("one", limits={"memory": "1Gi"}))


# --- PriorityClass ------------------------------------------------------------------------------

def test_system_priority_classes_exist_and_cannot_be_deleted(fake):
    out = fake.kubectl("get", "priorityclasses", check=True).stdout.splitlines()
    assert out[0].split() == ["NAME", "VALUE", "GLOBAL-DEFAULT", "AGE", "PREEMPTIONPOLICY"]
    rows = {line.split()[0]: line.split() for line in out[1:]}
    assert rows["system-node-critical"][1:3] == ["2000001000", "false"]
    assert rows["system-cluster-critical"][1:3] == ["2000000000", "false"]
    assert rows["system-cluster-critical"][4] == "PreemptLowerPriority"
    p = fake.kubectl("delete", "pc", "system-cluster-critical")
    assert p.returncode != 0
    assert ('Error from server (Forbidden): priorityclasses.scheduling.k8s.io "system-cluster-critical" is '
            'forbidden: this is a system priority class and cannot be deleted') in p.stderr
    p = fake.kubectl("create", "priorityclass", "system-mine", "--value=10")
    assert p.returncode != 0
    assert ("metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use "
            "only. error: system-mine is not a known system priority class") in p.stderr
    p = fake.kubectl("create", "priorityclass", "too-high", "--value=1000000001")
    assert "value: Forbidden: maximum allowed value of a user defined priority is 1000000000" in p.stderr


def test_pods_get_their_priority_from_their_priorityclass(fake, qns):
    high, default = f"{qns}-high", f"{qns}-default"
    fake.kubectl("create", "priorityclass", high, "--value=5000", "--preemption-policy=Never", check=True)
    try:
        apply(fake, qns, pod("high", priorityClassName=high))
        spec = fake.kjson("-n", qns, "get", "pod", "high")["spec"]
        assert (spec["priority"], spec["preemptionPolicy"]) == (5000, "Never")
        apply(fake, qns, pod("critical", priorityClassName="system-cluster-critical"))
        assert fake.kjson("-n", qns, "get", "pod", "critical")["spec"]["priority"] == 2000000000
        p = apply(fake, qns, pod("unknown", priorityClassName="no-such-class"), check=False)
        assert 'pods "unknown" is forbidden: no PriorityClass with name no-such-class was found' in p.stderr
        p = apply(fake, qns, pod("own-priority", priorityClassName=high, priority=7), check=False)
        assert ('pods "own-priority" is forbidden: the integer value of priority (7) must not be provided in pod '
                'spec; priority admission controller computed 5000 from the given PriorityClass name') in p.stderr
        # A global default names itself on pods that name no class; only one may exist.
        fake.kubectl("create", "priorityclass", default, "--value=300", "--global-default", check=True)
        try:
            p = fake.kubectl("create", "priorityclass", f"{qns}-second", "--value=10", "--global-default")
            assert (f'priorityclasses.scheduling.k8s.io "{qns}-second" is forbidden: PriorityClass {default} is '
                    'already marked as default. Only one default can exist') in p.stderr
            apply(fake, qns, pod("plain"))
            spec = fake.kjson("-n", qns, "get", "pod", "plain")["spec"]
            assert (spec["priorityClassName"], spec["priority"]) == (default, 300)
        finally:
            fake.kubectl("delete", "priorityclass", default)
        apply(fake, qns, pod("plain-again"))
        spec = fake.kjson("-n", qns, "get", "pod", "plain-again")["spec"]
        assert spec["priority"] == 0 and "priorityClassName" not in spec
    finally:
        fake.kubectl("delete", "priorityclass", high)
