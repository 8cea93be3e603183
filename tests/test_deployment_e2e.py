"""Deployments and ReplicaSets on a real `kubelite server` (process runtime: the built-in bootcamp images), driven by the
real kubectl; test names follow upstream's e2e specs (test/e2e/apps/deployment.go,
replica_set.go)."""
from __future__ import annotations

import json

import pytest

from tests.conftest import create_namespace

V1 = "jocatalin/kubernetes-bootcamp:v1"
V2 = "jocatalin/kubernetes-bootcamp:v2"


@pytest.fixture
def ns(request, cluster):
    return create_namespace(cluster, request)


def rollout_status(srv, ns: str, name: str) -> str:
    p = srv.kubectl("-n", ns, "rollout", "status", f"deployment/{name}", "--timeout=90s", timeout=120)
    assert p.returncode == 0, p.stderr + srv.log_tail()
    return p.stdout


def images(srv, ns: str, selector: str) -> list[str]:
    pods = srv.kjson("-n", ns, "get", "pods", "-l", selector)["items"]
    return sorted(p["spec"]["containers"][0]["image"] for p in pods if not p["metadata"].get("deletionTimestamp"))


def test_rolling_update_deployment_should_delete_old_pods_and_create_new_ones(cluster, ns):
    k = cluster
    k.kubectl("-n", ns, "create", "deployment", "web", f"--image={V1}", "--replicas=3", check=True)
    assert 'deployment "web" successfully rolled out' in rollout_status(k, ns, "web")
    k.kubectl("-n", ns, "set", "image", "deployment/web", f"kubernetes-bootcamp={V2}", check=True)
    rollout_status(k, ns, "web")
    k.wait_for(lambda: images(k, ns, "app=web") == [V2] * 3, what="only v2 pods")
    rss = k.kjson("-n", ns, "get", "rs", "-l", "app=web")["items"]
    by_image = {rs["spec"]["template"]["spec"]["containers"][0]["image"]: rs for rs in rss}
    assert by_image[V1]["spec"]["replicas"] == 0 and by_image[V2]["spec"]["replicas"] == 3
    assert by_image[V2]["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    d = k.kjson("-n", ns, "get", "deployment", "web")
    assert d["status"]["observedGeneration"] == d["metadata"]["generation"]
    conds = {c["type"]: c["reason"] for c in d["status"]["conditions"]}
    assert conds == {"Available": "MinimumReplicasAvailable", "Progressing": "NewReplicaSetAvailable"}
    described = k.kubectl("-n", ns, "describe", "deployment", "web", check=True).stdout
    assert "Replicas:               3 desired | 3 updated | 3 total | 3 available | 0 unavailable" in described
    assert f"Scaled up replica set {by_image[V2]['metadata']['name']} to 1" in described


def test_deployment_should_support_rollback_with_kubectl_rollout_undo(cluster, ns):
    k = cluster
    k.kubectl("-n", ns, "create", "deployment", "web", f"--image={V1}", "--replicas=2", check=True)
    rollout_status(k, ns, "web")
    k.kubectl("-n", ns, "set", "image", "deployment/web", f"kubernetes-bootcamp={V2}", check=True)
    rollout_status(k, ns, "web")
    hist = k.kubectl("-n", ns, "rollout", "history", "deployment/web", check=True).stdout
    assert [line.split()[0] for line in hist.splitlines()[2:] if line.strip()] == ["1", "2"]
    out = k.kubectl("-n", ns, "rollout", "undo", "deployment/web", check=True).stdout
    assert out.strip() == "deployment.apps/web rolled back"
    rollout_status(k, ns, "web")
    k.wait_for(lambda: images(k, ns, "app=web") == [V1] * 2, what="back on v1")
    hist = k.kubectl("-n", ns, "rollout", "history", "deployment/web", check=True).stdout
    assert [line.split()[0] for line in hist.splitlines()[2:] if line.strip()] == ["2", "3"]
    rss = k.kjson("-n", ns, "get", "rs", "-l", "app=web")["items"]
    v1 = [rs for rs in rss if rs["spec"]["template"]["spec"]["containers"][0]["image"] == V1][0]
    assert v1["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"


def test_recreate_deployment_should_delete_old_pods_and_create_new_ones(cluster, ns):
    k = cluster
    k.kubectl("-n", ns, "create", "deployment", "web", f"--image={V1}", "--replicas=2", check=True)
    k.kubectl("-n", ns, "patch", "deployment", "web", "--type=json", "-p",
              json.dumps([{"op": "remove", "path": "/spec/strategy/rollingUpdate"},
                          {"op": "replace", "path": "/spec/strategy/type", "value": "Recreate"}]), check=True)
    rollout_status(k, ns, "web")
    k.kubectl("-n", ns, "set", "image", "deployment/web", f"kubernetes-bootcamp={V2}", check=True)
    rollout_status(k, ns, "web")
    k.wait_for(lambda: images(k, ns, "app=web") == [V2] * 2, what="only v2 pods")
    events = k.kjson("-n", ns, "get", "events", "--field-selector", "involvedObject.kind=Deployment")["items"]
    msgs = [e["message"] for e in sorted(events, key=lambda e: e["metadata"]["creationTimestamp"])]
    down = next(i for i, m in enumerate(msgs) if m.startswith("Scaled down"))
    up = max(i for i, m in enumerate(msgs) if m.startswith("Scaled up"))
    assert down < up and msgs[down].endswith("to 0 from 2")


def test_deployment_should_have_a_working_scale_subresource(cluster, ns):
    k = cluster
    k.kubectl("-n", ns, "create", "deployment", "web", f"--image={V1}", "--replicas=1", check=True)
    rollout_status(k, ns, "web")
    k.kubectl("-n", ns, "scale", "deployment/web", "--replicas=4", check=True)
    rollout_status(k, ns, "web")
    k.wait_for(lambda: len(images(k, ns, "app=web")) == 4, what="4 pods")
    k.kubectl("-n", ns, "scale", "deployment/web", "--replicas=2", check=True)
    k.wait_for(lambda: len(images(k, ns, "app=web")) == 2, what="2 pods")


def test_replicaset_should_adopt_matching_pods_on_creation_and_release_no_longer_matching_pods(cluster, ns):
    k = cluster
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "pod-adoption-release", "labels": {"name": "x"}},
           "spec": {"containers": [{"name": "c", "image": V1}]}}
    k.kubectl("-n", ns, "create", "--validate=false", "-f", "-", input=json.dumps(pod), check=True)
    rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "pod-adoption-release"},
          "spec": {"replicas": 1, "selector": {"matchLabels": {"name": "x"}},
                   "template": {"metadata": {"labels": {"name": "x"}},
                                "spec": {"containers": [{"name": "c", "image": V1}]}}}}
    k.kubectl("-n", ns, "create", "--validate=false", "-f", "-", input=json.dumps(rs), check=True)

    def owner():
        p = k.kjson("-n", ns, "get", "pod", "pod-adoption-release")
        refs = [r for r in p["metadata"].get("ownerReferences") or [] if r.get("controller")]
        return refs[0]["name"] if refs else None
    k.wait_for(lambda: owner() == "pod-adoption-release", what="adoption")
    k.kubectl("-n", ns, "label", "pod", "pod-adoption-release", "name=not-matching", "--overwrite", check=True)
    k.wait_for(lambda: owner() is None, what="release")
    k.wait_for(lambda: len(images(k, ns, "name=x")) == 1, what="a replacement pod")


def test_deployment_should_report_progress_deadline_exceeded(cluster, ns):
    k = cluster
    k.kubectl("-n", ns, "create", "deployment", "web", f"--image={V2}", "--replicas=4", check=True)
    k.kubectl("-n", ns, "patch", "deployment", "web", "-p", '{"spec":{"progressDeadlineSeconds":5}}', check=True)
    rollout_status(k, ns, "web")
    k.kubectl("-n", ns, "set", "image", "deployment/web", "kubernetes-bootcamp=jocatalin/kubernetes-bootcamp:v10",
              check=True)
    p = k.kubectl("-n", ns, "rollout", "status", "deployment/web", "--timeout=60s", timeout=90)
    assert p.returncode == 1
    assert p.stderr.strip() == 'error: deployment "web" exceeded its progress deadline'
    st = k.kjson("-n", ns, "get", "deployment", "web")["status"]
    # As the recorded tutorial: READY 3/4, UP-TO-DATE 2, AVAILABLE 3.
    assert (st["readyReplicas"], st["updatedReplicas"], st["availableReplicas"]) == (3, 2, 3)
