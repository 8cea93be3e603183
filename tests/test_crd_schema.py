"""Structural schemas of custom resources: validation with upstream's words, defaulting on
write and from storage, pruning with fieldValidation (upstream
custom_resource_definition.go "custom resource defaulting for requests and from storage
works", field_validation.go's CR specs, and the CRD validation reference)."""
from __future__ import annotations

import json

import pytest
from conftest import start_server
from crdkit import apply, cr, crd, create_crd, unique_group, version
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from kubelite.apiextensions import schema as sch

SCHEMA = {"type": "object", "properties": {
    "spec": {"type": "object", "required": ["name"], "properties": {
        "name": {"type": "string", "minLength": 2, "maxLength": 5},
        "replicas": {"type": "integer", "minimum": 0, "maximum": 10},
        "ratio": {"type": "number", "exclusiveMinimum": True, "minimum": 0, "exclusiveMaximum": True,
                  "maximum": 1},
        "color": {"type": "string", "enum": ["red", "blue"]},
        "code": {"type": "string", "pattern": "^[A-Z]+$"},
        "when": {"type": "string", "format": "date-time"},
        "port": {"x-kubernetes-int-or-string": True},
        "tags": {"type": "array", "minItems": 1, "maxItems": 2, "items": {"type": "string"},
                 "x-kubernetes-list-type": "set"},
        "note": {"type": "string", "nullable": True},
        "mode": {"type": "string", "default": "fast"},
        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "template": {"type": "object", "x-kubernetes-embedded-resource": True,
                     "x-kubernetes-preserve-unknown-fields": True},
    }},
}}


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("crdschema"), "--disable", "controllers,scheduler,agent,proxy")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def group(srv):
    g = unique_group("schema")
    create_crd(srv, crd(g, plural="things", kind="Thing", versions=[version("v1", schema=SCHEMA)]))
    return g


@pytest.fixture(scope="module")
def objs(srv):
    c = config.new_client_from_config(config_file=srv.kubeconfig)
    yield client.CustomObjectsApi(c)
    c.close()


def invalid(objs, group: str, spec: dict, name: str = "bad") -> dict:
    """Create a Thing that must be refused; the Status."""
    with pytest.raises(ApiException) as e:
        objs.create_namespaced_custom_object(group, "v1", "default", "things", cr(group, name, kind="Thing",
                                                                                  spec=spec))
    assert e.value.status == 422
    return json.loads(e.value.body)


@pytest.mark.parametrize(("spec", "message"), [
    ({"name": "ab", "replicas": "two"},
     'spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string"'),
    ({"name": "ab", "replicas": -1},
     "spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or equal to 0"),
    ({"name": "ab", "replicas": 11},
     "spec.replicas: Invalid value: 11: spec.replicas in body should be less than or equal to 10"),
    ({"name": "ab", "ratio": 1}, "spec.ratio: Invalid value: 1: spec.ratio in body should be less than 1"),
    ({"name": "ab", "ratio": 0}, "spec.ratio: Invalid value: 0: spec.ratio in body should be greater than 0"),
    ({"name": "ab", "color": "green"}, 'spec.color: Unsupported value: "green": supported values: "red", "blue"'),
    ({"name": "ab", "code": "abc"}, "spec.code: Invalid value: \"abc\": spec.code in body should match '^[A-Z]+$'"),
    ({"name": "a"}, 'spec.name: Invalid value: "a": spec.name in body should be at least 2 chars long'),
    ({"name": "abcdef"}, "spec.name: Too long: may not be more than 5 bytes"),
    ({}, "spec.name: Required value"),
    ({"name": "ab", "tags": []}, "spec.tags: Invalid value: 0: spec.tags in body should have at least 1 items"),
    ({"name": "ab", "tags": ["a", "b", "c"]}, "spec.tags: Too many: 3: must have at most 2 items"),
    ({"name": "ab", "tags": ["a", "a"]}, 'spec.tags[1]: Duplicate value: "a"'),
    ({"name": "ab", "when": "yesterday"},
     'spec.when: Invalid value: "yesterday": spec.when in body must be of type date-time: "yesterday"'),
    ({"name": "ab", "port": True},
     'spec.port: Invalid value: "boolean": spec.port in body must be of type integer,string: "boolean"'),
    ({"name": "ab", "mode": None},
     'spec.mode: Invalid value: "null": spec.mode in body must be of type string: "null"'),
    ({"name": "ab", "labels": {"a": 1}},
     'spec.labels.a: Invalid value: "integer": spec.labels.a in body must be of type string: "integer"'),
    ({"name": "ab", "template": {"kind": "Pod"}}, "spec.template.apiVersion: Required value: apiVersion must not "
                                                  "be empty"),
])
def test_validation_errors_word_for_word(objs, group, spec, message):
    st = invalid(objs, group, spec)
    assert st["message"] == f'Thing.{group} "bad" is invalid: {message}'
    assert st["details"]["kind"] == "Thing" and st["details"]["group"] == group


def test_several_errors_are_listed_together_as_kubectl_prints_them(srv, group):
    out = srv.kubectl("create", "-f", "-", input=json.dumps(cr(group, "two", kind="Thing",
                                                               spec={"name": "a", "replicas": 20})))
    assert out.returncode == 1
    assert out.stderr.splitlines() == [
        'The Thing "two" is invalid: ',
        '* spec.name: Invalid value: "a": spec.name in body should be at least 2 chars long',
        "* spec.replicas: Invalid value: 20: spec.replicas in body should be less than or equal to 10"]


def test_valid_values_pass(objs, group):
    spec = {"name": "ok", "replicas": 3, "ratio": 0.5, "color": "red", "code": "AB", "when": "2024-01-01T00:00:00Z",
            "port": "http", "tags": ["x"], "note": None, "free": {"anything": {"goes": [1, "two"]}},
            "labels": {"a": "b"}, "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                                               "spec": {"containers": []}}}
    made = objs.create_namespaced_custom_object(group, "v1", "default", "things", cr(group, "good", kind="Thing",
                                                                                     spec=spec))
    assert made["spec"] == {**spec, "mode": "fast"}
    objs.delete_namespaced_custom_object(group, "v1", "default", "things", "good")


def test_unknown_fields_are_pruned_with_a_warning(srv, group):
    body = cr(group, "pruned", kind="Thing", spec={"name": "ok", "extra": 1, "free": {"kept": True}}, top=1)
    out = srv.kubectl("create", "-f", "-", "--validate=warn", input=json.dumps(body), check=True)
    assert 'Warning: unknown field "spec.extra"' in out.stderr and 'Warning: unknown field "top"' in out.stderr
    got = srv.kjson("get", f"things.{group}", "pruned")
    assert "extra" not in got["spec"] and "top" not in got and got["spec"]["free"] == {"kept": True}
    strict = srv.kubectl("create", "-f", "-", input=json.dumps(dict(body, metadata={"name": "strict"})))
    assert strict.returncode == 1
    assert 'strict decoding error: unknown field "spec.extra", unknown field "top"' in strict.stderr
    ignored = srv.kubectl("create", "-f", "-", "--validate=false",
                          input=json.dumps(dict(body, metadata={"name": "ignored"})), check=True)
    assert "Warning" not in ignored.stderr
    assert "extra" not in srv.kjson("get", f"things.{group}", "ignored")["spec"]
    srv.kubectl("delete", f"things.{group}", "pruned", "ignored", check=True)


def test_custom_resource_defaulting_for_requests_and_from_storage_works(srv):
    g = unique_group("dflt")
    schema = {"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "a": {"type": "string", "default": "A"}}}}}
    create_crd(srv, crd(g, plural="defaults", kind="Default", versions=[version("v1", schema=schema)]))
    apply(srv, cr(g, "d", kind="Default", spec={}))
    assert srv.kjson("get", f"defaults.{g}", "d")["spec"] == {"a": "A"}
    # A default added later shows on objects already stored (defaulted on read).
    schema["properties"]["spec"]["properties"]["b"] = {"type": "string", "default": "B"}
    patch = {"spec": {"versions": [version("v1", schema=schema)]}}
    srv.kubectl("patch", "crd", f"defaults.{g}", "--type=merge", "-p", json.dumps(patch), check=True)
    assert srv.kjson("get", f"defaults.{g}", "d")["spec"] == {"a": "A", "b": "B"}
    srv.kubectl("delete", "crd", f"defaults.{g}", check=True)


def test_preserve_unknown_fields_at_the_schema_root(srv):
    g = unique_group("free")
    create_crd(srv, crd(g, plural="frees", kind="Free", versions=[version("v1", schema={
        "type": "object", "x-kubernetes-preserve-unknown-fields": True,
        "properties": {"spec": {"type": "object", "properties": {"n": {"type": "integer"}}}}})]))
    out = apply(srv, cr(g, "f", kind="Free", anything={"x": 1}, spec={"n": 1, "dropped": True}), "--validate=warn")
    assert 'unknown field "spec.dropped"' in out.stderr and "anything" not in out.stderr
    got = srv.kjson("get", f"frees.{g}", "f")
    assert got["anything"] == {"x": 1} and got["spec"] == {"n": 1}
    srv.kubectl("delete", "crd", f"frees.{g}", check=True)


def test_unit_schema_pruning_and_defaulting_walk_nested_lists():
    s = {"type": "object", "properties": {"items": {"type": "array", "items": {
        "type": "object", "properties": {"k": {"type": "string", "default": "d"}}}}}}
    obj = {"items": [{"x": 1}, {"k": "set"}], "apiVersion": "v", "kind": "K", "metadata": {"name": "n"}}
    assert [u.path for u in sch.unknown_fields(obj, s)] == ["items[0].x"]
    sch.apply_defaults(obj, s)
    assert obj["items"] == [{"x": 1, "k": "d"}, {"k": "set"}]
    assert sch.validate({"items": [{"k": 1}]}, s)[0].field == "items[0].k"


def test_unit_structural_errors():
    assert [c.field for c in sch.structural_errors({"type": "object", "properties": {
        "a": {"properties": {}}, "b": {"type": "array"}, "c": {"type": "array", "items": {}}}}, "x")] == \
        ["x.properties[a].type", "x.properties[b].items", "x.properties[c].items.type"]
    assert sch.structural_errors({}, "x")[0].message == "Required value: must not be empty at the root"
