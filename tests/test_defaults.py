"""Defaulting matches upstream's defaulters, strategies and pod admission plugins."""
from __future__ import annotations

import copy

import pytest

from kubelite.api.defaults import admit_pod, apply_defaults, image_tag


def _deployment(**spec):
    base = {"selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]}}}
    base.update(spec)
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
            "spec": base}


def test_deployment_defaults():
    d = _deployment()
    apply_defaults("Deployment", "apps/v1", d)
    s = d["spec"]
    assert s["replicas"] == 1
    assert s["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
    assert s["revisionHistoryLimit"] == 10
    assert s["progressDeadlineSeconds"] == 600
    t = s["template"]["spec"]
    assert t["restartPolicy"] == "Always"
    assert t["dnsPolicy"] == "ClusterFirst"
    assert t["schedulerName"] == "default-scheduler"
    assert t["terminationGracePeriodSeconds"] == 30
    assert t["securityContext"] == {}
    assert "enableServiceLinks" not in t  # Pod-only default


def test_deployment_keeps_explicit_values_and_recreate_has_no_rolling_update():
    d = _deployment(replicas=0, strategy={"type": "Recreate"}, revisionHistoryLimit=0)
    apply_defaults("Deployment", "apps/v1", d)
    assert d["spec"]["replicas"] == 0
    assert d["spec"]["revisionHistoryLimit"] == 0
    assert d["spec"]["strategy"] == {"type": "Recreate"}


def test_deployment_partial_rolling_update():
    d = _deployment(strategy={"rollingUpdate": {"maxSurge": 1}})
    apply_defaults("Deployment", "apps/v1", d)
    assert d["spec"]["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": "25%"}}


def test_defaulting_is_idempotent():
    d = _deployment()
    apply_defaults("Deployment", "apps/v1", d)
    again = copy.deepcopy(d)
    apply_defaults("Deployment", "apps/v1", again)
    assert again == d


def test_replicaset_defaults():
    rs = {"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "x"}]}}}}
    apply_defaults("ReplicaSet", "apps/v1", rs)
    assert rs["spec"]["replicas"] == 1
    assert rs["spec"]["template"]["spec"]["restartPolicy"] == "Always"


@pytest.mark.parametrize("image,policy", [
    ("nginx", "Always"),
    ("nginx:latest", "Always"),
    ("docker.io/library/nginx", "Always"),
    ("localhost:5000/app", "Always"),
    ("localhost:5000/app:v1", "IfNotPresent"),
    ("nginx:1.25", "IfNotPresent"),
    ("jocatalin/kubernetes-bootcamp:v2", "IfNotPresent"),
    ("nginx@sha256:" + "a" * 64, "IfNotPresent"),
    ("nginx:latest@sha256:" + "a" * 64, "Always"),
])
def test_image_pull_policy(image, policy):
    pod = {"spec": {"containers": [{"name": "c", "image": image}]}}
    apply_defaults("Pod", "v1", pod)
    assert pod["spec"]["containers"][0]["imagePullPolicy"] == policy


def test_image_tag():
    assert image_tag("a/b:c") == "c"
    assert image_tag("host:1/b") == "latest"


def test_container_and_probe_defaults():
    pod = {"spec": {"containers": [{
        "name": "c", "image": "x:1", "ports": [{"containerPort": 80}],
        "livenessProbe": {"httpGet": {"port": 80}},
        "readinessProbe": {"tcpSocket": {"port": 80}, "periodSeconds": 3},
        "env": [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
    }]}}
    apply_defaults("Pod", "v1", pod)
    c = pod["spec"]["containers"][0]
    assert c["terminationMessagePath"] == "/dev/termination-log"
    assert c["terminationMessagePolicy"] == "File"
    assert c["resources"] == {}
    assert c["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert c["livenessProbe"] == {"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1,
                                  "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}
    assert c["readinessProbe"]["periodSeconds"] == 3
    assert c["readinessProbe"]["timeoutSeconds"] == 1
    assert c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"] == "v1"


def test_pod_only_defaults():
    pod = {"spec": {"containers": [{"name": "c", "image": "x:1", "resources": {"limits": {"cpu": "1"}}}]}}
    apply_defaults("Pod", "v1", pod)
    assert pod["spec"]["enableServiceLinks"] is True
    assert pod["spec"]["containers"][0]["resources"]["requests"] == {"cpu": "1"}


def test_volume_defaults():
    pod = {"spec": {"containers": [{"name": "c", "image": "x"}],
                    "volumes": [{"name": "a"}, {"name": "b", "configMap": {"name": "cm"}}]}}
    apply_defaults("Pod", "v1", pod)
    assert pod["spec"]["volumes"][0] == {"name": "a", "emptyDir": {}}
    assert pod["spec"]["volumes"][1]["configMap"]["defaultMode"] == 420


def test_admit_pod():
    pod = {"metadata": {"name": "p", "namespace": "default"},
           "spec": {"containers": [{"name": "c", "image": "x"}]}}
    apply_defaults("Pod", "v1", pod)
    admit_pod(pod)
    s = pod["spec"]
    assert s["serviceAccountName"] == "default"
    assert s["serviceAccount"] == "default"
    assert s["tolerations"] == [
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
    ]
    assert s["priority"] == 0
    assert s["preemptionPolicy"] == "PreemptLowerPriority"
    assert s["enableServiceLinks"] is True
    vol = s["volumes"][0]
    assert vol["name"].startswith("kube-api-access-") and len(vol["name"]) == len("kube-api-access-") + 5
    assert vol["projected"]["defaultMode"] == 420
    assert s["containers"][0]["volumeMounts"] == [
        {"name": vol["name"], "readOnly": True, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]


def test_admit_pod_respects_existing_settings():
    pod = {"spec": {"containers": [{"name": "c", "image": "x"}], "serviceAccountName": "robot",
                    "automountServiceAccountToken": False, "priorityClassName": "system-node-critical",
                    "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                                     "effect": "NoExecute", "tolerationSeconds": 60}]}}
    admit_pod(pod)
    s = pod["spec"]
    assert s["serviceAccount"] == "robot"
    assert "volumes" not in s
    assert s["priority"] == 2000001000
    assert [t["key"] for t in s["tolerations"]] == ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"]
    assert s["tolerations"][0]["tolerationSeconds"] == 60


def test_admit_pod_without_token_volume():
    pod = {"spec": {"containers": [{"name": "c", "image": "x"}]}}
    admit_pod(pod, token_volume=False)
    assert "volumes" not in pod["spec"]
    assert "volumeMounts" not in pod["spec"]["containers"][0]


def test_service_defaults_cluster_ip():
    svc = {"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}], "selector": {"app": "web"}}}
    apply_defaults("Service", "v1", svc)
    s = svc["spec"]
    assert s["type"] == "ClusterIP"
    assert s["sessionAffinity"] == "None"
    assert s["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 80}]
    assert s["internalTrafficPolicy"] == "Cluster"
    assert "externalTrafficPolicy" not in s
    assert "allocateLoadBalancerNodePorts" not in s
    assert s["ipFamilies"] == ["IPv4"]
    assert s["ipFamilyPolicy"] == "SingleStack"


def test_service_defaults_nodeport_and_loadbalancer():
    np = {"spec": {"type": "NodePort", "ports": [{"port": 8080, "targetPort": "http"}]}}
    apply_defaults("Service", "v1", np)
    assert np["spec"]["externalTrafficPolicy"] == "Cluster"
    assert np["spec"]["ports"][0]["targetPort"] == "http"
    lb = {"spec": {"type": "LoadBalancer", "ports": [{"port": 80}], "clusterIP": "10.96.0.9"}}
    apply_defaults("Service", "v1", lb)
    assert lb["spec"]["allocateLoadBalancerNodePorts"] is True
    assert lb["spec"]["externalTrafficPolicy"] == "Cluster"
    assert lb["spec"]["clusterIPs"] == ["10.96.0.9"]


def test_service_client_ip_affinity_timeout():
    svc = {"spec": {"sessionAffinity": "ClientIP", "ports": [{"port": 80}]}}
    apply_defaults("Service", "v1", svc)
    assert svc["spec"]["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}


def test_external_name_service_gets_no_ip_families():
    svc = {"spec": {"type": "ExternalName", "externalName": "example.com"}}
    apply_defaults("Service", "v1", svc)
    assert "ipFamilies" not in svc["spec"] and "internalTrafficPolicy" not in svc["spec"]


def test_namespace_defaults():
    ns = {"metadata": {"name": "team-a"}}
    apply_defaults("Namespace", "v1", ns)
    assert ns["spec"]["finalizers"] == ["kubernetes"]
    assert ns["status"]["phase"] == "Active"
    assert ns["metadata"]["labels"] == {"kubernetes.io/metadata.name": "team-a"}
    upd = {"metadata": {"name": "team-a"}, "spec": {"finalizers": []}}
    apply_defaults("Namespace", "v1", upd, create=False)
    assert upd["spec"]["finalizers"] == []


def test_secret_endpoints_slice_node_defaults():
    sec = {"metadata": {"name": "s"}}
    apply_defaults("Secret", "v1", sec)
    assert sec["type"] == "Opaque"
    ep = {"subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]}
    apply_defaults("Endpoints", "v1", ep)
    assert ep["subsets"][0]["ports"][0]["protocol"] == "TCP"
    es = {"addressType": "IPv4", "ports": [{"port": 80}]}
    apply_defaults("EndpointSlice", "discovery.k8s.io/v1", es)
    assert es["ports"] == [{"port": 80, "name": "", "protocol": "TCP"}]
    node = {"status": {"capacity": {"cpu": "8", "pods": "110"}}}
    apply_defaults("Node", "v1", node)
    assert node["status"]["allocatable"] == {"cpu": "8", "pods": "110"}
