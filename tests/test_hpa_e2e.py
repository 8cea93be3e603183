"""metrics.k8s.io and HorizontalPodAutoscalers end to end, with the real kubectl.

The server runs the fake runtime, whose containers report the usage their pod's
annotations give them (``fake.kubelite.dev/cpu-usage``, ``memory-usage``); metrics are
scraped every second and HPAs evaluated every second so the specs run in seconds. Names
follow upstream's e2e specs (test/e2e/autoscaling/horizontal_pod_autoscaling.go) where one
exists.
"""
from __future__ import annotations

import json
import re

import pytest
from conftest import KUBECTL, KUBECTL_OLD, Server, create_namespace, start_server

CPU = "fake.kubelite.dev/cpu-usage"
MEMORY = "fake.kubelite.dev/memory-usage"


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hpa")
    s = start_server(tmp, "--runtime", "fake", "--metric-resolution", "1",
                     "--horizontal-pod-autoscaler-sync-period", "1")
    yield s
    s.stop()


@pytest.fixture
def ns(request, srv):
    return create_namespace(srv, request)


def deployment(name: str, replicas: int, cpu: str, memory: str = "32Mi", request: str = "100m") -> str:
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}, "annotations": {CPU: cpu, MEMORY: memory}},
                              "spec": {"containers": [{"name": "main", "image": "gcr.io/google-samples/kubernetes-bootcamp:v1",
                                                       "resources": {"requests": {"cpu": request}}}]}}}})


def rows(out: str) -> list[list[str]]:
    return [line.split() for line in out.strip().splitlines()]


def milli(cell: str) -> int:
    m = re.fullmatch(r"(\d+)m", cell)
    assert m, cell
    return int(m.group(1))


def wait_top_pods(srv: Server, ns: str, count: int) -> list[list[str]]:
    def ready():
        p = srv.kubectl("top", "pods", "-n", ns)
        return p.returncode == 0 and len(rows(p.stdout)) == count + 1
    srv.wait_for(ready, timeout=60, what=f"{count} pods in kubectl top")
    return rows(srv.kubectl("top", "pods", "-n", ns, check=True).stdout)


def replicas(srv: Server, ns: str, name: str) -> int:
    d = srv.kjson("get", "deployment", name, "-n", ns)
    return int(d["spec"].get("replicas") or 0)


# -- kubectl top ----------------------------------------------------------------------------

@pytest.mark.parametrize("binary", [KUBECTL, KUBECTL_OLD], ids=["1.33", "1.28"])
def test_kubectl_top_pods_prints_usage_of_each_pod_and_container(srv, ns, binary):
    srv.kubectl("apply", "-n", ns, "-f", "-", input=deployment("load", 2, "200m", "64Mi"), check=True)
    wait_top_pods(srv, ns, 2)
    out = rows(srv.kubectl("top", "pods", "-n", ns, binary=binary, check=True).stdout)
    assert out[0] == ["NAME", "CPU(cores)", "MEMORY(bytes)"]
    for name, cpu, mem in out[1:]:
        assert name.startswith("load-")
        assert abs(milli(cpu) - 200) <= 5 and mem == "64Mi"
    out = rows(srv.kubectl("top", "pods", "-n", ns, "--containers", binary=binary, check=True).stdout)
    assert out[0] == ["POD", "NAME", "CPU(cores)", "MEMORY(bytes)"]
    assert sorted(r[1] for r in out[1:]) == ["main", "main"]
    out = rows(srv.kubectl("top", "pods", "-A", binary=binary, check=True).stdout)
    assert out[0] == ["NAMESPACE", "NAME", "CPU(cores)", "MEMORY(bytes)"]
    assert len([r for r in out[1:] if r[0] == ns]) == 2
    out = rows(srv.kubectl("top", "pods", "-n", ns, "-l", "app=nothing", binary=binary).stdout
               + srv.kubectl("top", "pods", "-n", ns, "-l", "app=nothing", binary=binary).stderr)
    assert out == [["No", "resources", "found", "in", ns, "namespace."]]


@pytest.mark.parametrize("binary", [KUBECTL, KUBECTL_OLD], ids=["1.33", "1.28"])
def test_kubectl_top_nodes_prints_usage_and_share_of_capacity(srv, ns, binary):
    srv.kubectl("apply", "-n", ns, "-f", "-", input=deployment("busy", 1, "300m"), check=True)
    wait_top_pods(srv, ns, 1)
    out = rows(srv.kubectl("top", "nodes", binary=binary, check=True).stdout)
    pct = "CPU(%)" if binary == KUBECTL else "CPU%"
    mem_pct = "MEMORY(%)" if binary == KUBECTL else "MEMORY%"
    assert out[0] == ["NAME", "CPU(cores)", pct, "MEMORY(bytes)", mem_pct]
    assert len(out) == 2
    # A fake node reports the sum of its pods: at least this test's 300m.
    assert milli(out[1][1]) >= 290 and out[1][2].endswith("%")


def test_kubectl_top_pod_without_metrics_is_not_found(srv, ns):
    p = srv.kubectl("top", "pod", "nope", "-n", ns)
    assert p.returncode != 0
    assert f'podmetrics.metrics.k8s.io "{ns}/nope" not found' in p.stderr


def test_metrics_api_is_discoverable_and_read_only(srv):
    out = srv.kubectl("api-resources", "--api-group=metrics.k8s.io", check=True).stdout
    names = sorted(r[0] for r in rows(out)[1:])
    assert names == ["nodes", "pods"]
    p = srv.kubectl("delete", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes/x")
    assert p.returncode != 0 and "MethodNotAllowed" in p.stderr


# -- HorizontalPodAutoscaler ---------------------------------------------------------------

def hpa(name: str, target: str, mn: int, mx: int, utilization: int, behavior: dict | None = None) -> str:
    spec: dict = {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
                  "minReplicas": mn, "maxReplicas": mx,
                  "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                      "type": "Utilization", "averageUtilization": utilization}}}]}
    if behavior is not None:
        spec["behavior"] = behavior
    return json.dumps({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": name},
                       "spec": spec})


def condition(srv: Server, ns: str, name: str, type_: str) -> dict:
    h = srv.kjson("get", "hpa", name, "-n", ns)
    return next((c for c in (h.get("status") or {}).get("conditions") or [] if c["type"] == type_), {})


def test_should_scale_from_1_pod_to_3_pods_and_back_to_1_using_average_utilization(srv, ns):
    """Deployment (Pod Resource): up on CPU above target, limited by maxReplicas; down when it falls."""
    srv.kubectl("apply", "-n", ns, "-f", "-", input=deployment("consumer", 1, "150m"), check=True)
    srv.kubectl("apply", "-n", ns, "-f", "-", check=True, input=hpa(
        "consumer", "consumer", 1, 3, 50, {"scaleDown": {"stabilizationWindowSeconds": 0}}))
    srv.wait_for(lambda: replicas(srv, ns, "consumer") == 3, timeout=60, what="scale up to 3")
    srv.wait_for(lambda: condition(srv, ns, "consumer", "ScalingLimited").get("reason") == "TooManyReplicas",
                 timeout=30, what="ScalingLimited TooManyReplicas")
    assert condition(srv, ns, "consumer", "ScalingActive")["reason"] == "ValidMetricFound"
    wait_top_pods(srv, ns, 3)
    # The load drops: every pod now uses 10m of its 100m request (10% against 50%).
    srv.kubectl("annotate", "pods", "-n", ns, "-l", "app=consumer", f"{CPU}=10m", "--overwrite", check=True)
    srv.wait_for(lambda: replicas(srv, ns, "consumer") == 1, timeout=60, what="scale down to 1")
    events = srv.kubectl("get", "events", "-n", ns, "--field-selector", "reason=SuccessfulRescale",
                         "-o", "jsonpath={.items[*].message}", check=True).stdout
    assert "New size: 3; reason: cpu resource utilization (percentage of request) above target" in events
    assert "New size: 1; reason: All metrics below target" in events
    h = srv.kjson("get", "hpa", "consumer", "-n", ns)
    assert h["status"]["lastScaleTime"]


def test_should_scale_up_to_max_replicas_with_load_on_new_pods(srv, ns):
    """Every new pod carries the same load, so the autoscaler keeps going until maxReplicas (5)."""
    srv.kubectl("apply", "-n", ns, "-f", "-", input=deployment("grow", 1, "200m"), check=True)
    srv.kubectl("autoscale", "deployment", "grow", "-n", ns, "--cpu-percent=50", "--min=1", "--max=5", check=True)
    srv.wait_for(lambda: replicas(srv, ns, "grow") == 5, timeout=60, what="scale up to 5")
    out = rows(srv.kubectl("get", "hpa", "grow", "-n", ns, check=True).stdout)
    assert out[0] == ["NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "AGE"]
    name, ref, target_cur, target_goal, mn, mx = out[1][:6]
    assert (name, ref, target_cur, mn, mx) == ("grow", "Deployment/grow", "cpu:", "1", "5")
    assert re.fullmatch(r"\d+%/50%", target_goal), target_goal


def test_hpa_within_tolerance_does_not_scale(srv, ns):
    """53% against a 50% target is inside the 10% tolerance: the count stays."""
    srv.kubectl("apply", "-n", ns, "-f", "-", input=deployment("steady", 2, "53m"), check=True)
    srv.kubectl("apply", "-n", ns, "-f", "-", check=True, input=hpa("steady", "steady", 1, 5, 50))
    srv.wait_for(lambda: condition(srv, ns, "steady", "ScalingActive").get("reason") == "ValidMetricFound",
                 timeout=60, what="a metric was read")
    h = srv.kjson("get", "hpa", "steady", "-n", ns)
    assert h["status"]["desiredReplicas"] == 2 and replicas(srv, ns, "steady") == 2
    assert "lastScaleTime" not in h["status"]


def test_hpa_without_target_reports_failed_get_scale(srv, ns):
    srv.kubectl("apply", "-n", ns, "-f", "-", check=True, input=hpa("orphan", "missing", 1, 3, 50))
    srv.wait_for(lambda: condition(srv, ns, "orphan", "AbleToScale").get("reason") == "FailedGetScale",
                 timeout=30, what="FailedGetScale")
    assert condition(srv, ns, "orphan", "AbleToScale")["status"] == "False"


def test_hpa_v1_and_v2_are_views_of_one_object(srv, ns):
    v1 = {"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "both"},
          "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "x"},
                   "maxReplicas": 4, "targetCPUUtilizationPercentage": 70}}
    srv.kubectl("create", "-n", ns, "-f", "-", input=json.dumps(v1), check=True)
    v2 = json.loads(srv.kubectl("get", "--raw", f"/apis/autoscaling/v2/namespaces/{ns}/horizontalpodautoscalers/both",
                                check=True).stdout)
    assert v2["spec"]["minReplicas"] == 1
    assert v2["spec"]["metrics"] == [{"type": "Resource", "resource": {
        "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}]
    srv.kubectl("patch", "hpa", "both", "-n", ns, "--type=merge", "-p",
                json.dumps({"spec": {"behavior": {"scaleDown": {"stabilizationWindowSeconds": 30}}}}), check=True)
    back = json.loads(srv.kubectl("get", "--raw",
                                  f"/apis/autoscaling/v1/namespaces/{ns}/horizontalpodautoscalers/both",
                                  check=True).stdout)
    assert back["spec"]["targetCPUUtilizationPercentage"] == 70
    behavior = json.loads(back["metadata"]["annotations"]["autoscaling.alpha.kubernetes.io/behavior"])
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 30


def test_hpa_validation_messages(srv, ns):
    bad = json.loads(hpa("bad", "x", 3, 2, 50))
    p = srv.kubectl("create", "-n", ns, "-f", "-", input=json.dumps(bad))
    assert p.returncode != 0
    assert "spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`" in p.stderr
    bad = json.loads(hpa("bad", "x", 1, 2, 0))
    p = srv.kubectl("create", "-n", ns, "-f", "-", input=json.dumps(bad))
    assert "spec.metrics[0].resource.target.averageUtilization: Invalid value: 0: must be greater than 0" in p.stderr


@pytest.mark.parametrize("kind", ["StatefulSet", "ReplicaSet"])
def test_hpa_scales_other_workloads_through_their_scale_subresource(srv, ns, kind):
    d = json.loads(deployment("wl", 1, "200m"))
    d["kind"] = kind
    if kind == "StatefulSet":
        d["spec"]["serviceName"] = "wl"
    srv.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(d), check=True)
    h = json.loads(hpa("wl", "wl", 1, 2, 50))
    h["spec"]["scaleTargetRef"]["kind"] = kind
    srv.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(h), check=True)

    def scaled() -> bool:
        return int(srv.kjson("get", kind.lower(), "wl", "-n", ns)["spec"]["replicas"]) == 2
    srv.wait_for(scaled, timeout=60, what=f"{kind} scaled to 2")
    out = rows(srv.kubectl("get", "hpa", "wl", "-n", ns, check=True).stdout)
    assert out[1][1] == f"{kind}/wl"


def test_kubectl_get_podmetrics_prints_metrics_server_columns(srv, ns):
    srv.kubectl("apply", "-n", ns, "-f", "-", input=deployment("tbl", 1, "250m", "48Mi"), check=True)
    wait_top_pods(srv, ns, 1)
    out = rows(srv.kubectl("get", "podmetrics", "-n", ns, check=True).stdout)
    assert out[0] == ["NAME", "CPU", "MEMORY", "WINDOW"]
    assert out[1][0].startswith("tbl-") and out[1][2] == "48Mi" and out[1][3].endswith("s")
    assert abs(int(float(out[1][1].rstrip("m")) if out[1][1].endswith("m") else int(out[1][1].rstrip("n")) // 10**6)
               - 250) <= 5
    out = rows(srv.kubectl("get", "nodemetrics", check=True).stdout)
    assert out[0] == ["NAME", "CPU", "MEMORY", "WINDOW"] and len(out) == 2


def test_hpa_brings_replicas_into_bounds_and_leaves_zero_alone(srv, ns):
    """Above maxReplicas the target is scaled to it at once; at zero replicas scaling is disabled."""
    srv.kubectl("apply", "-n", ns, "-f", "-", input=deployment("over", 4, "50m"), check=True)
    srv.kubectl("apply", "-n", ns, "-f", "-", check=True, input=hpa("over", "over", 1, 2, 50))
    srv.wait_for(lambda: replicas(srv, ns, "over") == 2, timeout=60, what="scaled to maxReplicas")
    events = srv.kubectl("get", "events", "-n", ns, "--field-selector", "reason=SuccessfulRescale",
                         "-o", "jsonpath={.items[*].message}", check=True).stdout
    assert "New size: 2; reason: Current number of replicas above Spec.MaxReplicas" in events
    srv.kubectl("apply", "-n", ns, "-f", "-", input=deployment("zero", 0, "50m"), check=True)
    srv.kubectl("apply", "-n", ns, "-f", "-", check=True, input=hpa("zero", "zero", 1, 3, 50))
    srv.wait_for(lambda: condition(srv, ns, "zero", "ScalingActive").get("reason") == "ScalingDisabled",
                 timeout=30, what="ScalingDisabled")
    assert condition(srv, ns, "zero", "ScalingActive")["message"] == \
        "scaling is disabled since the replica count of the target is zero"
    assert replicas(srv, ns, "zero") == 0
