"""Persistent storage end to end on the fake runtime with the real kubectl 1.33: binding,
provisioning, reclaiming, protection, the scheduler's volume checks and StatefulSet
claims.  Named after upstream's specs in test/e2e/storage/persistent_volumes.go,
pvc_protection.go, pv_protection.go and test/e2e/apps/statefulset.go.  The fake runtime
mounts nothing (the oci tests write and read data); every assertion reads the API or the
server's data directory.
"""
from __future__ import annotations

import json
import os

import pytest
from conftest import create_namespace, start_server

IMAGE = "docker.io/jocatalin/kubernetes-bootcamp:v1"
TIMEOUT = 60


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    """A whole cluster whose node runs the fake runtime."""
    srv = start_server(tmp_path_factory.mktemp("storage"), "--runtime", "fake")
    yield srv
    srv.stop()


@pytest.fixture
def ns(request, fake):
    name = create_namespace(fake, request, "st")
    yield name
    fake.kubectl("delete", "namespace", name, "--wait=false")


def apply(srv, ns: str, *objs: dict) -> None:
    srv.kubectl("-n", ns, "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                                 "items": list(objs)}), check=True)


def volume(name: str, size: str = "1Gi", *, cls: str = "", claim: tuple[str, str] | None = None,
           policy: str = "Retain", path: str = "", node: str | None = None) -> dict:
    spec: dict = {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"], "storageClassName": cls,
                  "persistentVolumeReclaimPolicy": policy, "hostPath": {"path": path or f"/tmp/kubelite-pv-{name}"}}
    if claim is not None:
        spec["claimRef"] = {"namespace": claim[0], "name": claim[1]}
    if node is not None:
        spec["nodeAffinity"] = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}}
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name}, "spec": spec}


def claim(name: str, size: str = "1Gi", *, cls: str | None = "", volume_name: str = "") -> dict:
    spec: dict = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}
    if cls is not None:
        spec["storageClassName"] = cls
    if volume_name:
        spec["volumeName"] = volume_name
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name}, "spec": spec}


def pod(name: str, claim_name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "c", "image": IMAGE, "volumeMounts": [{"name": "d", "mountPath": "/d"}]}],
                     "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": claim_name}}]}}


def get(srv, ns: str, kind: str, name: str) -> dict | None:
    p = srv.kubectl(*(["-n", ns] if ns else []), "get", kind, name, "-o", "json")
    return json.loads(p.stdout) if p.returncode == 0 else None


def phase(srv, ns: str, kind: str, name: str) -> str:
    obj = get(srv, ns, kind, name)
    return (obj or {}).get("status", {}).get("phase", "") if obj else "<gone>"


def wait_phase(srv, ns: str, kind: str, name: str, want: str) -> dict:
    srv.wait_for(lambda: phase(srv, ns, kind, name) == want, TIMEOUT, what=f"{kind} {name} {want}")
    obj = get(srv, ns, kind, name)
    assert obj is not None
    return obj


def wait_gone(srv, ns: str, kind: str, name: str) -> None:
    srv.wait_for(lambda: get(srv, ns, kind, name) is None, TIMEOUT, what=f"{kind} {name} gone")


def events(srv, ns: str, reason: str) -> list[str]:
    items = srv.kjson("-n", ns, "get", "events")["items"]
    return [e.get("message", "") for e in items if e.get("reason") == reason]


def node_name(srv) -> str:
    return srv.kjson("get", "nodes")["items"][0]["metadata"]["name"]


def delete_volume(srv, name: str) -> None:
    srv.kubectl("delete", "pv", name, "--wait=false")


# -- static binding ----------------------------------------------------------------------------

def test_create_a_pvc_and_non_pre_bound_pv_binds_them(fake, ns):
    # [sig-storage] PersistentVolumes ... create a PVC and non-pre-bound PV
    pv_name = f"{ns}-pv"
    try:
        fake.kubectl("apply", "-f", "-", input=json.dumps(volume(pv_name, "2Gi")), check=True)
        wait_phase(fake, "", "pv", pv_name, "Available")
        apply(fake, ns, claim("c", "1Gi"))
        c = wait_phase(fake, ns, "pvc", "c", "Bound")
        assert c["spec"]["volumeName"] == pv_name
        assert c["status"]["capacity"] == {"storage": "2Gi"} and c["status"]["accessModes"] == ["ReadWriteOnce"]
        ann = c["metadata"]["annotations"]
        assert ann["pv.kubernetes.io/bind-completed"] == "yes" and ann["pv.kubernetes.io/bound-by-controller"] == "yes"
        v = wait_phase(fake, "", "pv", pv_name, "Bound")
        assert (v["spec"]["claimRef"]["namespace"], v["spec"]["claimRef"]["name"]) == (ns, "c")
        assert v["spec"]["claimRef"]["uid"] == c["metadata"]["uid"]
        assert v["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"] == "yes"
        assert v["status"]["lastPhaseTransitionTime"]
        # Retain: deleting the claim leaves the volume Released, with its claimRef.
        fake.kubectl("-n", ns, "delete", "pvc", "c", check=True)
        v = wait_phase(fake, "", "pv", pv_name, "Released")
        assert v["spec"]["claimRef"]["name"] == "c"
    finally:
        delete_volume(fake, pv_name)


def test_create_a_pv_and_a_pre_bound_pvc(fake, ns):
    # [sig-storage] PersistentVolumes ... create a PV and a pre-bound PVC: the claim names its volume
    pv_name = f"{ns}-pv"
    try:
        fake.kubectl("apply", "-f", "-", input=json.dumps(volume(pv_name, "5Gi")), check=True)
        apply(fake, ns, claim("other", "1Gi", cls="none-such"), claim("c", "1Gi", volume_name=pv_name))
        c = wait_phase(fake, ns, "pvc", "c", "Bound")
        assert c["spec"]["volumeName"] == pv_name
        assert "pv.kubernetes.io/bound-by-controller" not in c["metadata"].get("annotations", {})
        assert phase(fake, ns, "pvc", "other") == "Pending"
    finally:
        fake.kubectl("-n", ns, "delete", "pvc", "c", "--wait=false")
        delete_volume(fake, pv_name)


def test_create_a_pvc_and_a_pre_bound_pv(fake, ns):
    # [sig-storage] PersistentVolumes ... create a PVC and a pre-bound PV: the volume names its claim,
    # and a bigger claim of another name does not take it.
    pv_name, free_name = f"{ns}-pv", f"{ns}-free"
    try:
        fake.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [
            volume(pv_name, "1Gi", claim=(ns, "mine")), volume(free_name, "3Gi")]}), check=True)
        apply(fake, ns, claim("mine", "1Gi"), claim("theirs", "2Gi"))
        assert wait_phase(fake, ns, "pvc", "mine", "Bound")["spec"]["volumeName"] == pv_name
        assert wait_phase(fake, ns, "pvc", "theirs", "Bound")["spec"]["volumeName"] == free_name
    finally:
        fake.kubectl("-n", ns, "delete", "pvc", "mine", "theirs", "--wait=false")
        delete_volume(fake, pv_name)
        delete_volume(fake, free_name)


def test_a_claim_without_volume_or_class_waits_with_failed_binding(fake, ns):
    apply(fake, ns, claim("lonely", "100Ti"))
    fake.wait_for(lambda: "no persistent volumes available for this claim and no storage class is set"
                  in events(fake, ns, "FailedBinding"), TIMEOUT, what="FailedBinding")
    assert phase(fake, ns, "pvc", "lonely") == "Pending"
    apply(fake, ns, claim("classless", cls="missing-class"))
    fake.wait_for(lambda: 'storageclass.storage.k8s.io "missing-class" not found'
                  in events(fake, ns, "ProvisioningFailed"), TIMEOUT, what="ProvisioningFailed")


def test_a_released_volume_with_delete_policy_nothing_can_delete_fails(fake, ns):
    pv_name = f"{ns}-pv"
    try:
        fake.kubectl("apply", "-f", "-", input=json.dumps(volume(pv_name, policy="Delete")), check=True)
        apply(fake, ns, claim("c"))
        wait_phase(fake, ns, "pvc", "c", "Bound")
        fake.kubectl("-n", ns, "delete", "pvc", "c", check=True)
        v = wait_phase(fake, "", "pv", pv_name, "Failed")
        assert v["status"]["message"] == (f'error getting deleter volume plugin for volume "{pv_name}": '
                                          "no deletable volume plugin matched")
    finally:
        delete_volume(fake, pv_name)


# -- dynamic provisioning, WaitForFirstConsumer, reclaim Delete ------------------------------

def test_the_default_class_provisions_on_the_first_consumers_node_and_deletes_the_directory(fake, ns):
    sc = fake.kjson("get", "storageclass", "local-path")
    assert sc["provisioner"] == "kubelite.dev/local-path" and sc["volumeBindingMode"] == "WaitForFirstConsumer"
    assert sc["reclaimPolicy"] == "Delete"
    assert sc["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
    apply(fake, ns, claim("data", cls=None))
    c = get(fake, ns, "pvc", "data")
    assert c is not None and c["spec"]["storageClassName"] == "local-path"  # DefaultStorageClass admission
    assert c["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]
    fake.wait_for(lambda: "waiting for first consumer to be created before binding"
                  in events(fake, ns, "WaitForFirstConsumer"), TIMEOUT, what="WaitForFirstConsumer")
    assert phase(fake, ns, "pvc", "data") == "Pending"
    apply(fake, ns, pod("p", "data"))
    c = wait_phase(fake, ns, "pvc", "data", "Bound")
    node = node_name(fake)
    assert c["metadata"]["annotations"]["volume.kubernetes.io/selected-node"] == node
    assert c["metadata"]["annotations"]["volume.kubernetes.io/storage-provisioner"] == "kubelite.dev/local-path"
    pv_name = c["spec"]["volumeName"]
    assert pv_name == f"pvc-{c['metadata']['uid']}"
    v = get(fake, "", "pv", pv_name)
    assert v is not None
    path = v["spec"]["hostPath"]["path"]
    assert path == str(fake.data_dir / "storage" / pv_name) and os.path.isdir(path)
    assert v["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"] == [node]
    assert v["metadata"]["annotations"]["pv.kubernetes.io/provisioned-by"] == "kubelite.dev/local-path"
    assert v["metadata"]["finalizers"] == ["kubernetes.io/pv-protection"]
    fake.wait_for(lambda: (get(fake, ns, "pod", "p") or {}).get("spec", {}).get("nodeName") == node, TIMEOUT,
                  what="pod scheduled on the volume's node")
    assert any(m.startswith("Successfully provisioned volume pvc-") for m in events(fake, ns, "ProvisioningSucceeded"))
    fake.kubectl("-n", ns, "delete", "pod", "p", check=True)
    fake.kubectl("-n", ns, "delete", "pvc", "data", check=True)
    wait_gone(fake, "", "pv", pv_name)
    assert not os.path.exists(path)


# -- protection -----------------------------------------------------------------------------

def test_verify_that_pvc_in_active_use_by_a_pod_is_not_removed_immediately(fake, ns):
    # [sig-storage] PVC Protection
    apply(fake, ns, claim("used", cls=None), pod("p", "used"))
    wait_phase(fake, ns, "pvc", "used", "Bound")
    fake.kubectl("-n", ns, "delete", "pvc", "used", "--wait=false", check=True)
    c = get(fake, ns, "pvc", "used")
    assert c is not None and c["metadata"].get("deletionTimestamp")
    fake.wait_for(lambda: (get(fake, ns, "pvc", "used") or {}).get("metadata", {}).get("finalizers")
                  == ["kubernetes.io/pvc-protection"], TIMEOUT, what="claim kept while in use")
    table = fake.kubectl("-n", ns, "get", "pvc", "used", check=True).stdout
    assert table.splitlines()[1].split()[1] == "Terminating"
    fake.kubectl("-n", ns, "delete", "pod", "p", check=True)
    wait_gone(fake, ns, "pvc", "used")


def test_verify_immediate_deletion_of_a_pvc_that_is_not_in_active_use_by_a_pod(fake, ns):
    apply(fake, ns, claim("idle", cls="none-such"))
    fake.kubectl("-n", ns, "delete", "pvc", "idle", "--timeout=30s", check=True)
    assert get(fake, ns, "pvc", "idle") is None


def test_verify_that_pv_bound_to_a_pvc_is_not_removed_immediately(fake, ns):
    # [sig-storage] PV Protection
    pv_name = f"{ns}-pv"
    fake.kubectl("apply", "-f", "-", input=json.dumps(volume(pv_name)), check=True)
    apply(fake, ns, claim("c"))
    wait_phase(fake, ns, "pvc", "c", "Bound")
    fake.kubectl("delete", "pv", pv_name, "--wait=false", check=True)
    v = get(fake, "", "pv", pv_name)
    assert v is not None and v["metadata"]["finalizers"] == ["kubernetes.io/pv-protection"]
    assert fake.kubectl("get", "pv", pv_name, check=True).stdout.splitlines()[1].split()[4] == "Terminating"
    fake.kubectl("-n", ns, "delete", "pvc", "c", check=True)
    wait_gone(fake, "", "pv", pv_name)


# -- the scheduler ---------------------------------------------------------------------------

def test_pods_wait_for_missing_claims_and_avoid_nodes_their_volume_cannot_reach(fake, ns):
    apply(fake, ns, pod("early", "later"))
    missing = ('0/1 nodes are available: persistentvolumeclaim "later" not found. preemption: 0/1 nodes are '
               'available: 1 Preemption is not helpful for scheduling.')
    fake.wait_for(lambda: missing in events(fake, ns, "FailedScheduling"), TIMEOUT,
                  what="FailedScheduling for a missing claim")
    pv_name = f"{ns}-pv"
    try:
        fake.kubectl("apply", "-f", "-", input=json.dumps(volume(pv_name, claim=(ns, "far"), node="elsewhere")),
                     check=True)
        apply(fake, ns, claim("far"), pod("stuck", "far"))
        wait_phase(fake, ns, "pvc", "far", "Bound")
        fake.wait_for(lambda: any("node(s) had volume node affinity conflict" in m
                                  for m in events(fake, ns, "FailedScheduling")), TIMEOUT, what="affinity conflict")
        assert not (get(fake, ns, "pod", "stuck") or {}).get("spec", {}).get("nodeName")
        apply(fake, ns, claim("later", cls=None))
        fake.wait_for(lambda: (get(fake, ns, "pod", "early") or {}).get("spec", {}).get("nodeName"), TIMEOUT,
                      what="pod scheduled once its claim exists")
    finally:
        fake.kubectl("-n", ns, "delete", "pod", "stuck", "early", "--wait=false")
        fake.kubectl("-n", ns, "delete", "pvc", "far", "--wait=false")
        delete_volume(fake, pv_name)


# -- kubectl 1.33 ------------------------------------------------------------------------------

def test_kubectl_prints_upstreams_columns(fake, ns):
    apply(fake, ns, claim("shown", cls="none-such"))
    sc = fake.kubectl("get", "storageclass", check=True).stdout.splitlines()
    assert sc[0].split() == ["NAME", "PROVISIONER", "RECLAIMPOLICY", "VOLUMEBINDINGMODE", "ALLOWVOLUMEEXPANSION", "AGE"]
    assert any(line.split()[:6] == ["local-path", "(default)", "kubelite.dev/local-path", "Delete",
                                    "WaitForFirstConsumer", "false"] for line in sc[1:])
    pvc = fake.kubectl("-n", ns, "get", "pvc", "-o", "wide", check=True).stdout.splitlines()
    assert pvc[0].split() == ["NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS", "MODES", "STORAGECLASS",
                              "VOLUMEATTRIBUTESCLASS", "AGE", "VOLUMEMODE"]
    assert pvc[1].split()[:4] == ["shown", "Pending", "none-such", "<unset>"]
    pv_name = f"{ns}-pv"
    try:
        fake.kubectl("apply", "-f", "-", input=json.dumps(volume(pv_name, "3Gi", cls="none-such-pv")), check=True)
        wait_phase(fake, "", "pv", pv_name, "Available")
        out = fake.kubectl("get", "pv", pv_name, check=True).stdout.splitlines()
        assert out[0].split() == ["NAME", "CAPACITY", "ACCESS", "MODES", "RECLAIM", "POLICY", "STATUS", "CLAIM",
                                  "STORAGECLASS", "VOLUMEATTRIBUTESCLASS", "REASON", "AGE"]
        assert out[1].split()[:7] == [pv_name, "3Gi", "RWO", "Retain", "Available", "none-such-pv", "<unset>"]
        assert fake.kubectl("get", "pv", check=True).returncode == 0
        assert fake.kubectl("api-resources", "--api-group=storage.k8s.io", check=True).stdout.split()[5:10] == \
            ["storageclasses", "sc", "storage.k8s.io/v1", "false", "StorageClass"]
    finally:
        delete_volume(fake, pv_name)


# -- StatefulSets --------------------------------------------------------------------------------

def statefulset(name: str, replicas: int, policy: dict | None = None) -> dict:
    spec: dict = {"replicas": replicas, "serviceName": name, "podManagementPolicy": "Parallel",
                  "selector": {"matchLabels": {"app": name}},
                  "template": {"metadata": {"labels": {"app": name}},
                               "spec": {"terminationGracePeriodSeconds": 1, "containers": [
                                   {"name": "c", "image": IMAGE, "volumeMounts": [{"name": "www", "mountPath": "/d"}]}]}},
                  "volumeClaimTemplates": [{"metadata": {"name": "www", "labels": {"kept": "yes"}},
                                            "spec": {"accessModes": ["ReadWriteOnce"],
                                                     "resources": {"requests": {"storage": "1Gi"}}}}]}
    if policy is not None:
        spec["persistentVolumeClaimRetentionPolicy"] = policy
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name}, "spec": spec}


def claims_of(srv, ns: str, app: str) -> dict[str, dict]:
    items = srv.kjson("-n", ns, "get", "pvc", "-l", f"app={app}")["items"]
    return {c["metadata"]["name"]: c for c in items}


def test_should_provide_basic_identity_with_one_bound_claim_per_replica(fake, ns):
    # [sig-apps] StatefulSet Basic StatefulSet functionality should provide basic identity
    apply(fake, ns, statefulset("web", 3))
    want = {"www-web-0", "www-web-1", "www-web-2"}

    def all_bound():
        cs = claims_of(fake, ns, "web")
        return set(cs) == want and all(c.get("status", {}).get("phase") == "Bound" for c in cs.values()) and cs
    cs = fake.wait_for(all_bound, TIMEOUT, what="three bound claims")
    assert all(c["metadata"]["labels"] == {"app": "web", "kept": "yes"} for c in cs.values())
    assert all(c["spec"]["storageClassName"] == "local-path" for c in cs.values())
    assert all("ownerReferences" not in c["metadata"] for c in cs.values())  # Retain, Retain
    pods = fake.kjson("-n", ns, "get", "pods", "-l", "app=web")["items"]
    assert sorted(v["persistentVolumeClaim"]["claimName"] for p in pods for v in p["spec"]["volumes"]
                  if "persistentVolumeClaim" in v) == sorted(want)
    volumes = {c["spec"]["volumeName"] for c in cs.values()}
    assert len(volumes) == 3


def test_should_delete_pvcs_with_a_onscaledown_policy(fake, ns):
    # [sig-apps] StatefulSet Non-retain StatefulSetPersistentVolumeClaimPolicy should delete PVCs with a
    # OnScaledown policy
    apply(fake, ns, statefulset("down", 3, {"whenDeleted": "Retain", "whenScaled": "Delete"}))
    fake.wait_for(lambda: len(claims_of(fake, ns, "down")) == 3, TIMEOUT, what="three claims")
    fake.kubectl("-n", ns, "scale", "statefulset", "down", "--replicas=1", check=True)
    fake.wait_for(lambda: set(claims_of(fake, ns, "down")) == {"www-down-0"}, TIMEOUT,
                  what="the scaled-down pods' claims deleted")


def test_should_delete_pvcs_with_a_whendeleted_policy(fake, ns):
    # [sig-apps] StatefulSet Non-retain StatefulSetPersistentVolumeClaimPolicy should delete PVCs with a
    # WhenDeleted policy
    apply(fake, ns, statefulset("gone", 2, {"whenDeleted": "Delete", "whenScaled": "Retain"}))

    def owned():
        cs = claims_of(fake, ns, "gone")
        return len(cs) == 2 and all([r["kind"] for r in c["metadata"].get("ownerReferences", [])] == ["StatefulSet"]
                                    for c in cs.values())
    fake.wait_for(owned, TIMEOUT, what="claims owned by the StatefulSet")
    fake.kubectl("-n", ns, "delete", "statefulset", "gone", check=True)
    fake.wait_for(lambda: claims_of(fake, ns, "gone") == {}, TIMEOUT, what="claims deleted with the set")
