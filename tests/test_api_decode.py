"""Typed decoding and the bad requests of issue 11, one regression test each.

Every body (JSON, YAML, protobuf) and every patch result is decoded against the kind's
Go types before anything else, with upstream's words: 400 ``… cannot be handled as a …:
json: cannot unmarshal …`` for bodies, 422 ``patch: Invalid value`` for patch results.
No bad request answers 5xx, and none changes what it targets.
"""
from __future__ import annotations

import json

import pytest
import yaml
from conftest import create_namespace
from test_api_errors import DEPLOY, Raw, cm, status_of

from kubelite.api import protobuf


@pytest.fixture(scope="module")
def raw(api_server):
    return Raw(api_server)


@pytest.fixture
def ns(request, api_server):
    return create_namespace(api_server, request, "d")


def rv_of(raw, path: str) -> str:
    code, obj = raw("GET", path)
    assert code == 200, obj
    return obj["metadata"]["resourceVersion"]


def deployment_body(replicas: str) -> bytes:
    """DEPLOY as JSON text with ``replicas`` spelled exactly as given."""
    return json.dumps(DEPLOY).replace('"replicas": 1', f'"replicas": {replicas}').encode()


HANDLED = 'Deployment in version "v1" cannot be handled as a Deployment: '
REPLICAS = [("2^40", "1099511627776", "number 1099511627776"),
            ("2^63", "9223372036854775808", "number 9223372036854775808"),
            ("1e30", "1e30", "number 1e30"),
            ("quoted 3", '"3"', "string"),
            ("abc", '"abc"', "string"),
            ("1.5", "1.5", "number 1.5"),
            ("true", "true", "bool")]


@pytest.mark.parametrize("literal,what", [(r[1], r[2]) for r in REPLICAS], ids=[r[0] for r in REPLICAS])
def test_deployment_replicas_out_of_range_or_mistyped_is_refused_on_create(raw, ns, literal, what):
    code, body = raw("POST", f"/apis/apps/v1/namespaces/{ns}/deployments", deployment_body(literal))
    st = status_of(code, body, 400, "BadRequest")
    assert st["message"] == (HANDLED + f"json: cannot unmarshal {what} into Go struct field "
                             "DeploymentSpec.spec.replicas of type int32")
    code, _ = raw("GET", f"/apis/apps/v1/namespaces/{ns}/deployments/d")
    assert code == 404


@pytest.mark.parametrize("value", [2**40, 2**63, 1e30, "3", "abc", 1.5, True], ids=[r[0] for r in REPLICAS])
def test_deployment_replicas_out_of_range_or_mistyped_is_refused_by_patches_and_scale(raw, ns, value):
    assert raw("POST", f"/apis/apps/v1/namespaces/{ns}/deployments", DEPLOY)[0] == 201
    path = f"/apis/apps/v1/namespaces/{ns}/deployments/d"
    before = rv_of(raw, path)
    for ctype in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
        code, body = raw("PATCH", path, {"spec": {"replicas": value}}, ctype)
        st = status_of(code, body, 422, "Invalid")
        assert st["message"].startswith(' "" is invalid: patch: Invalid value: "'), st["message"]
        assert st["details"]["causes"][0]["field"] == "patch"
    code, body = raw("PATCH", path, [{"op": "replace", "path": "/spec/replicas", "value": value}],
                     "application/json-patch+json")
    assert "DeploymentSpec.spec.replicas of type int32" in status_of(code, body, 422, "Invalid")["message"]
    code, body = raw("PATCH", path + "/scale", {"spec": {"replicas": value}}, "application/merge-patch+json")
    assert "ScaleSpec.spec.replicas of type int32" in status_of(code, body, 422, "Invalid")["message"]
    scale = {"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": {"name": "d"}, "spec": {"replicas": value}}
    code, body = raw("PUT", path + "/scale", scale)
    assert status_of(code, body, 400, "BadRequest")["message"].startswith(
        'Scale in version "v1" cannot be handled as a Scale: json: cannot unmarshal ')
    assert rv_of(raw, path) == before


@pytest.mark.parametrize("obj,message", [
    (dict(cm("x"), metadata="x"), "json: cannot unmarshal string into Go struct field ConfigMap.metadata of type "
                                  "v1.ObjectMeta"),
    (dict(cm("x"), metadata={"name": ["x"]}), "json: cannot unmarshal array into Go struct field "
                                              "ObjectMeta.metadata.name of type string"),
    (cm("x", data={"k": True}), "json: cannot unmarshal bool into Go struct field ConfigMap.data of type string"),
    (dict(cm("x"), metadata={"name": "x", "labels": {"a": 1}}),
     "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.labels of type string"),
    (cm("x", immutable="yes"), "json: cannot unmarshal string into Go struct field ConfigMap.immutable of type bool"),
], ids=["metadata-string", "name-list", "data-bool", "label-int", "immutable-yes"])
def test_wrong_json_types_are_400_with_the_decoders_words(raw, ns, obj, message):
    code, body = raw("POST", f"/api/v1/namespaces/{ns}/configmaps", obj)
    st = status_of(code, body, 400, "BadRequest")
    assert st["message"] == 'ConfigMap in version "v1" cannot be handled as a ConfigMap: ' + message
    assert raw("GET", f"/api/v1/namespaces/{ns}/configmaps/x")[0] == 404


def test_a_null_label_value_is_stored_as_empty_and_clients_can_list(raw, ns, api_server):
    """Go decodes null into a string as "", so upstream stores ``a: ""``."""
    code, body = raw("POST", f"/api/v1/namespaces/{ns}/configmaps",
                     dict(cm("l"), metadata={"name": "l", "labels": {"a": None}, "annotations": {"n": None}}))
    assert code == 201, body
    assert body["metadata"]["labels"] == {"a": ""} and body["metadata"]["annotations"] == {"n": ""}
    from kubernetes import client, config
    api = client.CoreV1Api(config.new_client_from_config(api_server.kubeconfig))
    items = api.list_namespaced_config_map(ns).items
    assert [i.metadata.labels for i in items if i.metadata.name == "l"] == [{"a": ""}]


def test_non_base64_secret_data_is_refused(raw, ns):
    code, body = raw("POST", f"/api/v1/namespaces/{ns}/secrets",
                     {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"k": "dg=", "j": "!"}})
    st = status_of(code, body, 400, "BadRequest")
    assert st["message"] == 'Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input byte 3'
    code, body = raw("POST", f"/api/v1/namespaces/{ns}/secrets",
                     {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"k": "dg=="}})
    assert code == 201 and body["data"] == {"k": "dg=="}


def test_yaml_dates_stay_strings_and_binary_becomes_text(raw, ns):
    """go-yaml keeps a timestamp as the text written and turns !!binary into a string."""
    code, body = raw("POST", f"/api/v1/namespaces/{ns}/configmaps",
                     b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: y}\ndata:\n  d: 2001-01-01\n"
                     b"  b: !!binary aGVsbG8=\n", "application/yaml")
    assert code == 201, body
    assert body["data"] == {"d": "2001-01-01", "b": "hello"}


def test_yaml_numbers_decode_as_upstream_reads_them(raw, ns):
    """YAML 3.0 is the integer 3 after YAML→JSON; 1e30 stays a float and does not fit."""
    text = yaml.safe_dump(DEPLOY)
    code, body = raw("POST", f"/apis/apps/v1/namespaces/{ns}/deployments",
                     text.replace("replicas: 1", "replicas: 3.0").encode(), "application/yaml")
    assert code == 201 and body["spec"]["replicas"] == 3, body
    code, body = raw("POST", f"/apis/apps/v1/namespaces/{ns}/deployments",
                     text.replace("replicas: 1", "replicas: 1e30").replace("name: d", "name: e", 1).encode(),
                     "application/yaml")
    assert status_of(code, body, 400, "BadRequest")["message"] == (
        HANDLED + "json: cannot unmarshal number 1e+30 into Go struct field DeploymentSpec.spec.replicas of type int32")


@pytest.mark.parametrize("payload", [
    b"a: " + b"[" * 900 + b"]" * 900,
    b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: deep}\ndata: " + b"{a: " * 150 + b"1" + b"}" * 150,
    b"a: &x [*x]",
    b"a: &a [1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    b"d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
    b"g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n",
    b"a: .inf",
    b"~: 1",
], ids=["nested-900", "nested-150", "self-alias", "billion-laughs", "inf", "null-key"])
def test_hostile_yaml_is_400_not_500(raw, ns, payload):
    code, body = raw("POST", f"/api/v1/namespaces/{ns}/configmaps", payload, "application/yaml")
    assert status_of(code, body, 400, "BadRequest")["message"].startswith("error converting YAML to JSON: ")


def test_json_nested_too_deeply_is_400(raw, ns):
    deep = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "deep"}}
    cur = deep
    for _ in range(300):
        cur["x"] = {}
        cur = cur["x"]
    code, body = raw("POST", f"/api/v1/namespaces/{ns}/configmaps", json.dumps(deep).encode())
    assert "exceeded max depth" in status_of(code, body, 400, "BadRequest")["message"]


def test_empty_kind_is_filled_in_from_the_url(raw, ns):
    """Upstream's decoder defaults an empty kind and apiVersion from the request's."""
    code, body = raw("POST", f"/api/v1/namespaces/{ns}/configmaps",
                     {"apiVersion": "", "kind": "", "metadata": {"name": "k"}})
    assert code == 201 and (body["kind"], body["apiVersion"]) == ("ConfigMap", "v1"), body


def test_json_patch_removing_metadata_is_400_and_changes_nothing(raw, ns):
    path = f"/api/v1/namespaces/{ns}/configmaps/p"
    assert raw("POST", f"/api/v1/namespaces/{ns}/configmaps", cm("p"))[0] == 201
    before = rv_of(raw, path)
    code, body = raw("PATCH", path, [{"op": "remove", "path": "/metadata"}], "application/json-patch+json")
    st = status_of(code, body, 400, "BadRequest")
    assert st["message"] == "the name of the object () does not match the name on the URL (p)"
    code, body = raw("PATCH", path, {"metadata": None}, "application/merge-patch+json")
    status_of(code, body, 400, "BadRequest")
    assert rv_of(raw, path) == before


def test_apply_body_whose_metadata_is_not_an_object_is_400_and_changes_nothing(raw, ns):
    """Found by the fuzz suite: the error path itself read metadata as a map (a 500)."""
    path = f"/api/v1/namespaces/{ns}/configmaps/a"
    assert raw("POST", f"/api/v1/namespaces/{ns}/configmaps", cm("a"))[0] == 201
    before = rv_of(raw, path)
    code, body = raw("PATCH", path + "?fieldManager=t", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": True},
                     "application/apply-patch+yaml")
    st = status_of(code, body, 400, "BadRequest")
    assert st["message"].startswith("failed to create typed patch object (/; /v1, Kind=ConfigMap): ")
    assert rv_of(raw, path) == before


@pytest.mark.parametrize("patch,message", [
    ({"spec": {"$patch": "bogus"}}, "unknown patch type: bogus in map: map[]"),
    ({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}},
     "map: map[image:x] does not contain declared merge key: name"),
    ({"spec": {"template": {"spec": {"$setElementOrder/containers": "x"}}}},
     "expected a []interface {}, but received a string"),
    ({"spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "c"}],
                                     "containers": [{"name": "other", "image": "x"}]}}}}, None),
], ids=["bogus-directive", "missing-merge-key", "set-element-order-not-a-list", "set-element-order-mismatch"])
def test_strategic_merge_patch_with_bad_directives_is_400(raw, ns, patch, message):
    """Upstream answers these 500 with an empty reason; they are the request's fault."""
    assert raw("POST", f"/apis/apps/v1/namespaces/{ns}/deployments", DEPLOY)[0] == 201
    path = f"/apis/apps/v1/namespaces/{ns}/deployments/d"
    before = rv_of(raw, path)
    code, body = raw("PATCH", path, patch, "application/strategic-merge-patch+json")
    st = status_of(code, body, 400, "BadRequest")
    assert st["message"] == message if message else "doesn't match $setElementOrder list" in st["message"]
    assert rv_of(raw, path) == before


def test_binding_with_a_string_target_is_400_and_the_pod_stays_unbound(raw, ns):
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
    assert raw("POST", f"/api/v1/namespaces/{ns}/pods", pod)[0] == 201
    code, body = raw("POST", f"/api/v1/namespaces/{ns}/pods/p/binding",
                     {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"}, "target": "x"})
    assert status_of(code, body, 400, "BadRequest")["message"] == (
        'Binding in version "v1" cannot be handled as a Binding: json: cannot unmarshal string into Go struct '
        "field Binding.target of type v1.ObjectReference")
    code, body = raw("POST", f"/api/v1/namespaces/{ns}/pods/p/binding",
                     {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"},
                      "target": {"kind": "Pod", "name": "n"}})
    assert status_of(code, body, 422, "Invalid")["details"]["causes"][0]["field"] == "target.kind"
    code, body = raw("GET", f"/api/v1/namespaces/{ns}/pods/p")
    assert "nodeName" not in body["spec"]


@pytest.mark.parametrize("method,path", [
    ("GET", "/api/v1/namespaces/{ns}/configmaps"), ("GET", "/api/v1/namespaces/{ns}/configmaps/a"),
    ("POST", "/api/v1/namespaces/{ns}/configmaps"), ("DELETE", "/api/v1/namespaces/{ns}/configmaps"),
    ("GET", "/apis/apps/v1/namespaces/{ns}/deployments/d/scale"), ("GET", "/api"), ("GET", "/apis"),
    ("GET", "/api/v1"), ("GET", "/apis/apps/v1"),
])
def test_accept_application_xml_is_406(raw, ns, method, path):
    assert raw("POST", f"/api/v1/namespaces/{ns}/configmaps", cm("a"))[0] == 201
    before = rv_of(raw, f"/api/v1/namespaces/{ns}/configmaps/a")
    code, body = raw(method, path.format(ns=ns), cm("b") if method == "POST" else None,
                     headers={"Accept": "application/xml"})
    status_of(code, body, 406, "NotAcceptable")
    assert raw("GET", f"/api/v1/namespaces/{ns}/configmaps/b")[0] == 404
    assert rv_of(raw, f"/api/v1/namespaces/{ns}/configmaps/a") == before


def test_protobuf_put_of_only_type_meta_is_refused_and_keeps_the_data(raw, ns):
    path = f"/api/v1/namespaces/{ns}/configmaps/keep"
    assert raw("POST", f"/api/v1/namespaces/{ns}/configmaps", cm("keep"))[0] == 201
    before = rv_of(raw, path)
    body = protobuf.encode({"apiVersion": "v1", "kind": "ConfigMap"})
    code, answer = raw("PUT", path, body, protobuf.MEDIA_TYPE)
    st = status_of(code, answer, 400, "BadRequest")
    assert st["message"] == "the name of the object () does not match the name on the URL (keep)"
    code, now = raw("GET", path)
    assert now["data"] == {"k": "v"} and now["metadata"]["resourceVersion"] == before


def test_namespace_finalize_with_another_name_is_400_and_not_stored(raw, request, api_server):
    name = create_namespace(api_server, request, "fin")
    other = create_namespace(api_server, request, "oth")
    before = rv_of(raw, f"/api/v1/namespaces/{other}")
    code, body = raw("PUT", f"/api/v1/namespaces/{name}/finalize",
                     {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": other},
                      "spec": {"finalizers": ["kubernetes", "example.com/x"]}})
    st = status_of(code, body, 400, "BadRequest")
    assert st["message"] == f"the name of the object ({other}) does not match the name on the URL ({name})"
    assert rv_of(raw, f"/api/v1/namespaces/{other}") == before
    code, ns_obj = raw("GET", f"/api/v1/namespaces/{name}")
    assert ns_obj["spec"] == {"finalizers": ["kubernetes"]}
    code, body = raw("PUT", f"/api/v1/namespaces/{name}/finalize",
                     {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name},
                      "spec": {"finalizers": ["not a finalizer"]}})
    assert status_of(code, body, 422, "Invalid")["details"]["causes"][0]["field"] == "spec.finalizers[0]"
    code, body = raw("PUT", f"/api/v1/namespaces/{name}/finalize",
                     {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}, "spec": {"finalizers": []}})
    assert code == 200 and "finalizers" not in body.get("spec", {}), body


def test_delete_options_are_typed_and_validated(raw, ns):
    path = f"/api/v1/namespaces/{ns}/configmaps/o"
    assert raw("POST", f"/api/v1/namespaces/{ns}/configmaps", cm("o"))[0] == 201
    code, body = raw("DELETE", path, {"gracePeriodSeconds": "x"})
    assert status_of(code, body, 400, "BadRequest")["message"] == (
        "json: cannot unmarshal string into Go struct field DeleteOptions.gracePeriodSeconds of type int64")
    code, body = raw("DELETE", path, {"propagationPolicy": "Sometimes"})
    assert status_of(code, body, 422, "Invalid")["message"] == (
        'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value: "Sometimes": '
        'supported values: "Foreground", "Background", "Orphan", "nil"')
    code, body = raw("DELETE", path + "?gracePeriodSeconds=abc")
    status_of(code, body, 400, "BadRequest")
    assert raw("GET", path)[0] == 200


def test_type_errors_win_over_unknown_fields_under_strict(raw, ns):
    """Non-strict decoding errors trump strict ones, as upstream reports them."""
    code, body = raw("POST", f"/api/v1/namespaces/{ns}/configmaps?fieldValidation=Strict",
                     cm("t", bogus=1, immutable="no"))
    assert status_of(code, body, 400, "BadRequest")["message"] == (
        'ConfigMap in version "v1" cannot be handled as a ConfigMap: json: cannot unmarshal string into Go struct '
        "field ConfigMap.immutable of type bool")
    code, body = raw("POST", f"/api/v1/namespaces/{ns}/configmaps?fieldValidation=Strict", cm("t", bogus=1))
    assert status_of(code, body, 400, "BadRequest")["message"] == 'strict decoding error: unknown field "bogus"'


def test_kubectl_prints_the_decode_error(api_server, ns, tmp_path):
    f = tmp_path / "d.yaml"
    d = json.loads(json.dumps(DEPLOY))
    d["spec"]["replicas"] = "3"
    f.write_text(yaml.safe_dump(d))
    p = api_server.kubectl("-n", ns, "create", "-f", str(f), "--validate=false")
    assert p.returncode == 1
    assert "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32" in p.stderr


def test_any_int64_grace_period_is_accepted_for_a_bound_pod(raw, ns):
    """gracePeriodSeconds is an int64; a huge one holds the deletion at the last time there is."""
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "g"},
           "spec": {"nodeName": "nowhere", "containers": [{"name": "c", "image": "nginx"}]}}
    assert raw("POST", f"/api/v1/namespaces/{ns}/pods", pod)[0] == 201
    code, body = raw("DELETE", f"/api/v1/namespaces/{ns}/pods/g", {"gracePeriodSeconds": 2**62})
    assert code == 200, body
    assert body["metadata"]["deletionTimestamp"] == "9999-12-31T23:59:59Z"
    code, body = raw("PATCH", f"/api/v1/namespaces/{ns}/pods/g", {"metadata": {"labels": {"a": "b"}}},
                     "application/merge-patch+json")
    assert code == 200, body
    assert raw("DELETE", f"/api/v1/namespaces/{ns}/pods/g?gracePeriodSeconds=0")[0] == 200
