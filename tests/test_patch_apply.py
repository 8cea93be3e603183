"""Server-side apply and managedFields bookkeeping (compared with a real v1.28 server's output)."""
import copy

import pytest

from kubelite.api.errors import BadRequest, Conflict, Invalid
from kubelite.api.patch import apply_patch, strategic_merge_patch, update_managed_fields
from kubelite.api.patch import fieldset as fs


def applied_deployment(replicas=2, image="nginx:1.25", labels=None, with_port=True):
    c = {"name": "nginx", "image": image}
    if with_port:
        c["ports"] = [{"containerPort": 80}]
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "labels": labels or {"app": "web"}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [c]}}}}


def entries(obj):
    return {(e["manager"], e["operation"]): e for e in obj["metadata"].get("managedFields", [])}


def ssa(live, cfg, manager="kubectl", force=False, now="2024-01-01T00:00:00Z"):
    return apply_patch(live, cfg, manager=manager, force=force, kind="Deployment",
                       api_version="apps/v1", now=now)


def test_ssa_create_records_apply_entry():
    obj = ssa(None, applied_deployment())
    assert obj["spec"]["replicas"] == 2
    e = entries(obj)[("kubectl", "Apply")]
    assert e == {"manager": "kubectl", "operation": "Apply", "apiVersion": "apps/v1",
                 "time": "2024-01-01T00:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": {
                     "f:metadata": {"f:labels": {"f:app": {}}},
                     "f:spec": {"f:replicas": {}, "f:selector": {}, "f:template": {
                         "f:metadata": {"f:labels": {"f:app": {}}},
                         "f:spec": {"f:containers": {'k:{"name":"nginx"}': {
                             ".": {}, "f:image": {}, "f:name": {},
                             "f:ports": {'k:{"containerPort":80,"protocol":"TCP"}': {
                                 ".": {}, "f:containerPort": {}}}}}}}}}}


def test_ssa_reapply_with_field_removed_prunes_it():
    obj = ssa(None, applied_deployment(labels={"app": "web", "tier": "fe"}))
    assert obj["metadata"]["labels"] == {"app": "web", "tier": "fe"}
    cfg = applied_deployment(with_port=False)
    again = ssa(obj, cfg, now="2024-01-02T00:00:00Z")
    assert again["metadata"]["labels"] == {"app": "web"}
    assert "ports" not in again["spec"]["template"]["spec"]["containers"][0]
    e = entries(again)[("kubectl", "Apply")]
    assert e["time"] == "2024-01-02T00:00:00Z"
    assert "f:ports" not in e["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"nginx"}']


def test_ssa_reapply_keeps_fields_owned_by_others():
    obj = ssa(None, applied_deployment(labels={"app": "web", "tier": "fe"}))
    # Another manager (kubectl label via merge patch) takes the tier label.
    new = copy.deepcopy(obj)
    new["metadata"]["labels"]["tier"] = "backend"
    update_managed_fields(obj, new, manager="kubectl-label", api_version="apps/v1", now="2024-01-03T00:00:00Z")
    after = ssa(new, applied_deployment())
    assert after["metadata"]["labels"] == {"app": "web", "tier": "backend"}


def test_ssa_noop_reapply_keeps_time():
    obj = ssa(None, applied_deployment())
    again = ssa(obj, applied_deployment(), now="2030-01-01T00:00:00Z")
    assert entries(again)[("kubectl", "Apply")]["time"] == "2024-01-01T00:00:00Z"


def test_ssa_conflict_with_update_manager():
    obj = ssa(None, applied_deployment())
    scaled = copy.deepcopy(obj)
    scaled["spec"]["replicas"] = 5
    update_managed_fields(obj, scaled, manager="kubectl-client-side-apply", api_version="apps/v1",
                          now="2024-01-02T00:00:00Z")
    with pytest.raises(Conflict) as e:
        ssa(scaled, applied_deployment(replicas=3))
    assert e.value.status == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using apps/v1: .spec.replicas',
        "reason": "Conflict",
        "details": {"causes": [{"reason": "FieldManagerConflict",
                                "message": 'conflict with "kubectl-client-side-apply" using apps/v1',
                                "field": ".spec.replicas"}]},
        "code": 409}
    # Same value: no conflict, shared ownership.
    same = ssa(scaled, applied_deployment(replicas=5))
    assert same["spec"]["replicas"] == 5
    # force takes the field.
    forced = ssa(scaled, applied_deployment(replicas=3), force=True)
    assert forced["spec"]["replicas"] == 3
    csa = entries(forced).get(("kubectl-client-side-apply", "Update"))
    assert csa is None or "f:replicas" not in csa["fieldsV1"].get("f:spec", {})


def test_ssa_conflict_between_appliers_lists_paths():
    obj = ssa(None, applied_deployment())
    other = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
             "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.25"}]}}}}
    shared = ssa(obj, other, manager="bot")
    with pytest.raises(Conflict) as e:
        ssa(shared, applied_deployment(replicas=4, image="nginx:2"))
    assert e.value.message == ('Apply failed with 2 conflicts: conflicts with "bot":\n- .spec.replicas\n'
                               '- .spec.template.spec.containers[name="nginx"].image')
    assert [c["field"] for c in e.value.details["causes"]] == [
        ".spec.replicas", '.spec.template.spec.containers[name="nginx"].image']


def test_ssa_on_object_without_managed_fields_assigns_before_first_apply():
    live = applied_deployment()
    live["metadata"]["uid"] = "u"
    live["spec"]["paused"] = True
    out = ssa(live, applied_deployment())
    mgrs = entries(out)
    assert ("before-first-apply", "Update") in mgrs
    assert out["spec"]["paused"] is True


def test_ssa_requires_field_manager_and_matching_kind():
    with pytest.raises(Invalid) as e:
        ssa(None, applied_deployment(), manager="")
    assert "fieldManager" in e.value.message
    bad = applied_deployment()
    bad["kind"] = "ReplicaSet"
    with pytest.raises(BadRequest):
        ssa(None, bad)


def test_ssa_list_map_merge_keeps_other_items():
    obj = ssa(None, applied_deployment())
    side = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": "busybox"}]}}}}
    out = ssa(obj, side, manager="injector")
    assert [c["name"] for c in out["spec"]["template"]["spec"]["containers"]] == ["nginx", "sidecar"]
    assert out["spec"]["replicas"] == 2


# --- Update bookkeeping -----------------------------------------------------------------

def kubectl_create_deployment():
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "kubernetes-bootcamp", "namespace": "default", "uid": "u1",
                         "resourceVersion": "1", "generation": 1, "creationTimestamp": "2024-01-01T00:00:00Z",
                         "labels": {"app": "kubernetes-bootcamp"}},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "kubernetes-bootcamp"}},
                     "template": {"metadata": {"creationTimestamp": None, "labels": {"app": "kubernetes-bootcamp"}},
                                  "spec": {"containers": [{
                                      "name": "kubernetes-bootcamp", "image": "gcr.io/google-samples/kubernetes-bootcamp:v1",
                                      "resources": {}, "terminationMessagePath": "/dev/termination-log",
                                      "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent"}],
                                      "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
                                      "dnsPolicy": "ClusterFirst", "securityContext": {},
                                      "schedulerName": "default-scheduler"}},
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
                     "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600},
            "status": {}}


ORACLE_CREATE_FIELDS = {  # kubectl-create's entry recorded by a real v1.28 API server
    "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
    "f:spec": {"f:progressDeadlineSeconds": {}, "f:replicas": {}, "f:revisionHistoryLimit": {}, "f:selector": {},
               "f:strategy": {"f:rollingUpdate": {".": {}, "f:maxSurge": {}, "f:maxUnavailable": {}}, "f:type": {}},
               "f:template": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                              "f:spec": {"f:containers": {'k:{"name":"kubernetes-bootcamp"}': {
                                  ".": {}, "f:image": {}, "f:imagePullPolicy": {}, "f:name": {}, "f:resources": {},
                                  "f:terminationMessagePath": {}, "f:terminationMessagePolicy": {}}},
                                  "f:dnsPolicy": {}, "f:restartPolicy": {}, "f:schedulerName": {},
                                  "f:securityContext": {}, "f:terminationGracePeriodSeconds": {}}}}}


def test_create_records_update_entry_like_upstream():
    obj = kubectl_create_deployment()
    update_managed_fields(None, obj, manager="kubectl-create", api_version="apps/v1", now="2024-01-01T00:00:00Z")
    assert obj["metadata"]["managedFields"] == [{
        "manager": "kubectl-create", "operation": "Update", "apiVersion": "apps/v1",
        "time": "2024-01-01T00:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": ORACLE_CREATE_FIELDS}]


def test_set_image_transfers_ownership_and_scale_has_no_time():
    obj = kubectl_create_deployment()
    update_managed_fields(None, obj, manager="kubectl-create", api_version="apps/v1", now="2024-01-01T00:00:00Z")
    scaled = copy.deepcopy(obj)
    scaled["spec"]["replicas"] = 4
    update_managed_fields(obj, scaled, manager="kubectl", api_version="apps/v1", now="2024-01-01T00:00:01Z",
                          subresource="scale")
    patched = strategic_merge_patch(scaled, {"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "kubernetes-bootcamp"}],
        "containers": [{"image": "jocatalin/kubernetes-bootcamp:v2", "name": "kubernetes-bootcamp"}]}}}},
        "Deployment", "apps/v1")
    update_managed_fields(scaled, patched, manager="kubectl", api_version="apps/v1", now="2024-01-01T00:00:02Z")
    mf = patched["metadata"]["managedFields"]
    assert [(e["manager"], e.get("subresource", ""), e.get("time")) for e in mf] == [
        ("kubectl", "scale", None), ("kubectl-create", "", "2024-01-01T00:00:00Z"),
        ("kubectl", "", "2024-01-01T00:00:02Z")]
    assert mf[0]["fieldsV1"] == {"f:spec": {"f:replicas": {}}}
    assert mf[2]["fieldsV1"] == {"f:spec": {"f:template": {"f:spec": {"f:containers": {
        'k:{"name":"kubernetes-bootcamp"}': {"f:image": {}}}}}}}
    create = mf[1]["fieldsV1"]["f:spec"]
    assert "f:replicas" not in create
    assert "f:image" not in create["f:template"]["f:spec"]["f:containers"]['k:{"name":"kubernetes-bootcamp"}']


def test_status_subresource_entry():
    obj = kubectl_create_deployment()
    update_managed_fields(None, obj, manager="kubectl-create", api_version="apps/v1", now="t0")
    new = copy.deepcopy(obj)
    new["status"] = {"replicas": 1, "conditions": [{"type": "Available", "status": "True"}]}
    update_managed_fields(obj, new, manager="kube-controller-manager", api_version="apps/v1", now="t1",
                          subresource="status")
    e = [e for e in new["metadata"]["managedFields"] if e.get("subresource") == "status"][0]
    assert e["fieldsV1"] == {"f:status": {"f:conditions": {".": {}, 'k:{"type":"Available"}': {
        ".": {}, "f:status": {}, "f:type": {}}}, "f:replicas": {}}}


def test_update_without_changes_adds_no_entry_and_untracked_objects_stay_untracked():
    obj = kubectl_create_deployment()
    update_managed_fields(None, obj, manager="kubectl-create", api_version="apps/v1", now="t0")
    same = copy.deepcopy(obj)
    update_managed_fields(obj, same, manager="other", api_version="apps/v1", now="t1")
    assert [e["manager"] for e in same["metadata"]["managedFields"]] == ["kubectl-create"]
    bare = kubectl_create_deployment()
    changed = copy.deepcopy(bare)
    changed["spec"]["replicas"] = 3
    update_managed_fields(bare, changed, manager="x", api_version="apps/v1", now="t1")
    assert "managedFields" not in changed["metadata"]


def test_reset_with_empty_list():
    obj = kubectl_create_deployment()
    update_managed_fields(None, obj, manager="kubectl-create", api_version="apps/v1", now="t0")
    new = copy.deepcopy(obj)
    new["metadata"]["managedFields"] = [{}]
    update_managed_fields(obj, new, manager="x", api_version="apps/v1", now="t1")
    assert "managedFields" not in new["metadata"]


def test_removed_fields_leave_every_manager():
    obj = kubectl_create_deployment()
    update_managed_fields(None, obj, manager="kubectl-create", api_version="apps/v1", now="t0")
    new = copy.deepcopy(obj)
    del new["metadata"]["labels"]
    update_managed_fields(obj, new, manager="kubectl-label", api_version="apps/v1", now="t1")
    assert "f:metadata" not in new["metadata"]["managedFields"][0]["fieldsV1"]
    assert [e["manager"] for e in new["metadata"]["managedFields"]] == ["kubectl-create"]


def test_update_managers_are_capped_at_ten():
    obj = kubectl_create_deployment()
    update_managed_fields(None, obj, manager="creator", api_version="apps/v1", now="2024-01-01T00:00:00Z")
    for i in range(12):
        new = copy.deepcopy(obj)
        new["metadata"].setdefault("annotations", {})[f"a{i}"] = "x"
        update_managed_fields(obj, new, manager=f"m{i:02}", api_version="apps/v1", now=f"2024-01-01T00:01:{i:02}Z")
        obj = new
    names = [e["manager"] for e in obj["metadata"]["managedFields"]]
    assert len(names) == 10 and "ancient-changes" in names


def test_fieldsv1_round_trip_and_path_strings():
    fields = ORACLE_CREATE_FIELDS
    paths = fs.decode_fields(fields)
    assert fs.encode_fields(paths) == fields
    assert fs.path_string((("f", "spec"), ("f", "ports"), ("k", (("port", "80"), ("protocol", '"TCP"'))))) == \
        '.spec.ports[port=80,protocol="TCP"]'
    assert fs.path_string((("f", "metadata"), ("f", "finalizers"), ("v", '"a"'))) == '.metadata.finalizers[="a"]'
