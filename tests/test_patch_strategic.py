"""Strategic merge patch: every directive, merge keys per kind, and what kubectl sends."""
import copy

import pytest

from kubelite.api.errors import BadRequest, Invalid, UnsupportedMediaType
from kubelite.api.patch import strategic_merge_patch, strip_directives


def smp(original, patch, kind="Deployment", api_version="apps/v1"):
    return strategic_merge_patch(original, patch, kind, api_version)


def deployment(*containers, **spec):
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"},
                     "annotations": {"deployment.kubernetes.io/revision": "1"}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "strategy": {"type": "RollingUpdate",
                              "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": list(containers), "restartPolicy": "Always"}},
                 **spec},
    }


NGINX = {"name": "nginx", "image": "nginx:1.25", "ports": [{"containerPort": 80, "protocol": "TCP"}]}
SIDECAR = {"name": "sidecar", "image": "busybox:1.36", "args": ["sleep", "3600"]}


def containers(obj):
    return obj["spec"]["template"]["spec"]["containers"]


def test_kubectl_set_image_against_two_containers():
    """The exact body of `kubectl set image deployment/web nginx=nginx:1.26`."""
    patch = {"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "nginx"}],
        "containers": [{"image": "nginx:1.26", "name": "nginx"}]}}}}
    for order in ([NGINX, SIDECAR], [SIDECAR, NGINX]):
        live = deployment(*copy.deepcopy(order))
        out = smp(live, patch)
        names = [c["name"] for c in containers(out)]
        assert names == [c["name"] for c in order]  # sidecar kept, order kept
        by_name = {c["name"]: c for c in containers(out)}
        assert by_name["nginx"]["image"] == "nginx:1.26"
        assert by_name["nginx"]["ports"] == NGINX["ports"]
        assert by_name["sidecar"] == SIDECAR
        assert "$setElementOrder/containers" not in out["spec"]["template"]["spec"]
        assert live == deployment(*order)  # input untouched


def test_set_element_order_reorders_merged_list():
    live = deployment(copy.deepcopy(NGINX), copy.deepcopy(SIDECAR))
    out = smp(live, {"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "nginx"}],
        "containers": [{"name": "nginx", "image": "nginx:1.27"}]}}}})
    assert [c["name"] for c in containers(out)] == ["sidecar", "nginx"]


def test_set_element_order_mismatch_is_rejected():
    """Upstream answers 500 with no reason; a request's fault is 400 here."""
    live = deployment(copy.deepcopy(NGINX))
    with pytest.raises(BadRequest) as e:
        smp(live, {"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "nginx"}],
            "containers": [{"name": "other", "image": "x"}]}}}})
    assert e.value.status["code"] == 400 and "doesn't match $setElementOrder list" in e.value.message


def test_rollout_restart_adds_template_annotation():
    live = deployment(copy.deepcopy(NGINX))
    out = smp(live, {"spec": {"template": {"metadata": {"annotations": {
        "kubectl.kubernetes.io/restartedAt": "2024-05-01T10:00:00Z"}}}}})
    assert out["spec"]["template"]["metadata"] == {
        "labels": {"app": "web"},
        "annotations": {"kubectl.kubernetes.io/restartedAt": "2024-05-01T10:00:00Z"}}


def test_rollout_pause_and_resume():
    live = deployment(copy.deepcopy(NGINX))
    paused = smp(live, {"spec": {"paused": True}})
    assert paused["spec"]["paused"] is True
    resumed = smp(paused, {"spec": {"paused": None}})
    assert "paused" not in resumed["spec"]


def test_new_merge_list_item_goes_first_without_order():
    """Upstream puts items that only the patch names before the live-only ones."""
    live = deployment(copy.deepcopy(NGINX))
    out = smp(live, {"spec": {"template": {"spec": {"containers": [{"name": "log", "image": "fluentd"}]}}}})
    assert [c["name"] for c in containers(out)] == ["log", "nginx"]


def test_patch_delete_in_merge_list():
    live = deployment(copy.deepcopy(NGINX), copy.deepcopy(SIDECAR))
    out = smp(live, {"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}}})
    assert [c["name"] for c in containers(out)] == ["nginx"]


def test_patch_replace_in_merge_list():
    live = deployment(copy.deepcopy(NGINX), copy.deepcopy(SIDECAR))
    out = smp(live, {"spec": {"template": {"spec": {"containers": [
        {"$patch": "replace"}, {"name": "only", "image": "x"}]}}}})
    assert containers(out) == [{"name": "only", "image": "x"}]


def test_patch_replace_on_map():
    live = deployment(copy.deepcopy(NGINX))
    out = smp(live, {"metadata": {"labels": {"$patch": "replace", "new": "1"}}})
    assert out["metadata"]["labels"] == {"new": "1"}


def test_patch_delete_on_map_empties_it():
    live = deployment(copy.deepcopy(NGINX))
    out = smp(live, {"metadata": {"labels": {"$patch": "delete"}}})
    assert out["metadata"]["labels"] == {}


def test_null_deletes_keys_and_nested_nulls_in_new_values_are_dropped():
    live = deployment(copy.deepcopy(NGINX))
    out = smp(live, {"metadata": {"annotations": None, "newmap": {"a": None, "b": "1"}}})
    assert "annotations" not in out["metadata"]
    assert out["metadata"]["newmap"] == {"b": "1"}


def test_container_fields_merge_inside_item():
    live = deployment(copy.deepcopy(NGINX))
    out = smp(live, {"spec": {"template": {"spec": {"containers": [
        {"name": "nginx", "env": [{"name": "A", "value": "1"}], "ports": [{"containerPort": 443}]}]}}}})
    c = containers(out)[0]
    assert c["env"] == [{"name": "A", "value": "1"}]
    assert [p["containerPort"] for p in c["ports"]] == [443, 80]
    assert c["image"] == "nginx:1.25"


def test_non_merge_lists_are_replaced():
    live = deployment(copy.deepcopy(SIDECAR))
    out = smp(live, {"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "args": ["true"]}]}}}})
    assert containers(out)[0]["args"] == ["true"]
    tolerated = smp(live, {"spec": {"template": {"spec": {"tolerations": [{"key": "a"}]}}}})
    again = smp(tolerated, {"spec": {"template": {"spec": {"tolerations": [{"key": "b"}]}}}})
    assert again["spec"]["template"]["spec"]["tolerations"] == [{"key": "b"}]


def test_retain_keys_on_strategy_drops_rolling_update():
    """What kubectl apply/edit send when switching to Recreate."""
    live = deployment(copy.deepcopy(NGINX))
    out = smp(live, {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": None}}})
    assert out["spec"]["strategy"] == {"type": "Recreate"}
    out2 = smp(live, {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}})
    assert out2["spec"]["strategy"] == {"type": "Recreate"}


def test_retain_keys_must_cover_patch_keys():
    live = deployment(copy.deepcopy(NGINX))
    with pytest.raises(BadRequest) as e:
        smp(live, {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "other": 1}}})
    assert e.value.message == "invalid patch format of retainKeys"


def test_retain_keys_on_volumes():
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [], "volumes": [{"name": "data", "emptyDir": {}}]}}
    out = smp(pod, {"spec": {"volumes": [{"name": "data", "$retainKeys": ["name", "hostPath"],
                                          "hostPath": {"path": "/d"}}]}}, "Pod", "v1")
    assert out["spec"]["volumes"] == [{"name": "data", "hostPath": {"path": "/d"}}]


def test_finalizers_union_and_delete_from_primitive_list():
    live = deployment(copy.deepcopy(NGINX))
    live["metadata"]["finalizers"] = ["a", "b"]
    added = smp(live, {"metadata": {"finalizers": ["c", "a"]}})
    assert sorted(added["metadata"]["finalizers"]) == ["a", "b", "c"]
    removed = smp(added, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"]}})
    assert sorted(removed["metadata"]["finalizers"]) == ["a", "c"]
    ordered = smp(added, {"metadata": {"$setElementOrder/finalizers": ["c", "b", "a"]}})
    assert ordered["metadata"]["finalizers"] == ["c", "b", "a"]
    assert all(not k.startswith("$") for k in ordered["metadata"])


def test_owner_references_merge_by_uid():
    live = deployment()
    live["metadata"]["ownerReferences"] = [{"uid": "1", "kind": "A", "name": "a"}]
    out = smp(live, {"metadata": {"ownerReferences": [{"uid": "2", "kind": "B", "name": "b"}]}})
    assert {o["uid"] for o in out["metadata"]["ownerReferences"]} == {"1", "2"}


def test_status_conditions_merge_by_type():
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "status": {"conditions": [{"type": "Ready", "status": "False"},
                                     {"type": "PodScheduled", "status": "True"}]}}
    out = smp(pod, {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}, "Pod", "v1")
    assert out["status"]["conditions"] == [{"type": "Ready", "status": "True"},
                                           {"type": "PodScheduled", "status": "True"}]
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"},
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                       "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}]}}
    out = smp(node, {"status": {"addresses": [{"type": "Hostname", "address": "n"}]}}, "Node", "v1")
    assert len(out["status"]["addresses"]) == 2


def test_cordon_and_taints():
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"},
            "spec": {"taints": [{"key": "a", "effect": "NoSchedule"}]}}
    out = smp(node, {"spec": {"unschedulable": True}}, "Node", "v1")
    assert out["spec"]["unschedulable"] is True
    out = smp(out, {"spec": {"taints": [{"key": "b", "effect": "NoSchedule"}]}}, "Node", "v1")
    assert out["spec"]["taints"] == [{"key": "b", "effect": "NoSchedule"}]


def test_service_ports_merge_by_port():
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
           "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]}}
    out = smp(svc, {"spec": {"ports": [{"port": 80, "nodePort": 30080}], "selector": {"tier": "fe"}}},
              "Service", "v1")
    assert out["spec"]["ports"] == [{"port": 80, "targetPort": 8080, "protocol": "TCP", "nodePort": 30080}]
    assert out["spec"]["selector"] == {"app": "web", "tier": "fe"}


def test_endpointslice_and_endpoints_lists_are_atomic():
    eps = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "e"},
           "endpoints": [{"addresses": ["10.0.0.1"]}]}
    out = smp(eps, {"endpoints": [{"addresses": ["10.0.0.2"]}]}, "EndpointSlice", "discovery.k8s.io/v1")
    assert out["endpoints"] == [{"addresses": ["10.0.0.2"]}]
    ep = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "e"}, "subsets": [{"addresses": [{"ip": "1"}]}]}
    assert smp(ep, {"subsets": []}, "Endpoints", "v1")["subsets"] == []


def test_namespace_spec_finalizers_are_replaced():
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}, "spec": {"finalizers": ["kubernetes"]}}
    assert smp(ns, {"spec": {"finalizers": ["x"]}}, "Namespace", "v1")["spec"]["finalizers"] == ["x"]


def test_replicaset_template_containers_merge():
    rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "r"},
          "spec": {"template": {"spec": {"containers": [copy.deepcopy(NGINX), copy.deepcopy(SIDECAR)]}}}}
    out = smp(rs, {"spec": {"template": {"spec": {"containers": [{"name": "nginx", "image": "n2"}]}}}},
              "ReplicaSet", "apps/v1")
    assert [c["image"] for c in containers(out)] == ["n2", "busybox:1.36"]


def test_client_side_apply_three_way_patch():
    """A `kubectl apply -f` 3-way patch: image changed, a container and a label removed."""
    live = deployment(copy.deepcopy(NGINX), copy.deepcopy(SIDECAR))
    live["metadata"]["labels"]["old"] = "yes"
    live["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] = "{...old...}"
    patch = {
        "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{...new...}"},
                     "labels": {"old": None}},
        "spec": {"replicas": 3, "template": {"spec": {
            "$setElementOrder/containers": [{"name": "nginx"}],
            "containers": [{"image": "nginx:1.26", "name": "nginx"}, {"$patch": "delete", "name": "sidecar"}]}}},
    }
    out = smp(live, patch)
    assert out["metadata"]["labels"] == {"app": "web"}
    assert out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] == "{...new...}"
    assert out["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    assert out["spec"]["replicas"] == 3
    assert containers(out) == [dict(NGINX, image="nginx:1.26")]


def test_client_side_apply_adding_container_with_order():
    live = deployment(copy.deepcopy(NGINX))
    patch = {"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "nginx"}, {"name": "sidecar"}],
        "containers": [copy.deepcopy(SIDECAR)]}}}}
    out = smp(live, patch)
    assert [c["name"] for c in containers(out)] == ["nginx", "sidecar"]


def test_set_element_order_for_a_list_the_live_object_lacks():
    live = deployment(copy.deepcopy(NGINX))
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "nginx", "$setElementOrder/env": [
        {"name": "A"}], "env": [{"name": "A", "value": "1"}]}]}}}}
    out = smp(live, patch)
    assert containers(out)[0]["env"] == [{"name": "A", "value": "1"}]
    assert "$setElementOrder/env" not in containers(out)[0]


def test_directives_inside_new_subtrees_are_never_stored():
    live = deployment()
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "a", "$setElementOrder/env": [{"name": "X"}],
                                                             "env": [{"name": "X", "value": "1"}]}]}}},
             "newfield": {"$retainKeys": ["a"], "a": 1}}
    out = smp(live, patch)
    assert containers(out) == [{"name": "a", "env": [{"name": "X", "value": "1"}]}]
    assert out["newfield"] == {"a": 1}


def test_missing_merge_key_is_an_error():
    """Upstream's words, with 400 instead of its reason-less 500."""
    with pytest.raises(BadRequest) as e:
        smp(deployment(copy.deepcopy(NGINX)), {"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}})
    assert e.value.status["code"] == 400 and e.value.status["reason"] == "BadRequest"
    assert e.value.message == "map: map[image:x] does not contain declared merge key: name"


def test_lists_of_lists_are_422():
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "finalizers": ["a"]}}
    with pytest.raises(Invalid):
        smp(pod, {"metadata": {"finalizers": [["x"]]}}, "Pod", "v1")


def test_bad_delete_from_primitive_list_key():
    with pytest.raises(BadRequest) as e:
        smp(deployment(), {"metadata": {"$deleteFromPrimitiveList/": ["x"]}})
    assert e.value.message == "invalid patch format of primitive list"


def test_unknown_kind_is_415():
    with pytest.raises(UnsupportedMediaType) as e:
        smp({"kind": "Widget"}, {"spec": {}}, "Widget", "example.com/v1")
    assert e.value.reason == "UnsupportedMediaType"
    assert "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml" in e.value.message


def test_scale_subresource_smp():
    scale = {"apiVersion": "autoscaling/v1", "kind": "Scale", "spec": {"replicas": 1}}
    assert smp(scale, {"spec": {"replicas": 5}}, "Scale", "autoscaling/v1")["spec"]["replicas"] == 5


def test_strip_directives():
    assert strip_directives({"a": {"$patch": "delete"}, "$setElementOrder/x": [], "b": [{"$patch": "delete"}, 1]}) == {"b": [1]}
