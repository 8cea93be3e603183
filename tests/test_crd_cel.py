"""x-kubernetes-validations CEL rules (upstream test/e2e/apimachinery/crd_validation_rules.go)."""
from __future__ import annotations

import json

import pytest
from conftest import start_server
from crdkit import cr, crd, create_crd, unique_group, version

from kubelite.apiextensions import cel

SCHEMA = {"type": "object", "properties": {"spec": {
    "type": "object",
    "x-kubernetes-validations": [
        {"rule": "self.minReplicas <= self.replicas", "message": "replicas should be greater than or equal to "
                                                                 "minReplicas"},
        {"rule": "self.replicas <= self.maxReplicas"},
    ],
    "properties": {
        "minReplicas": {"type": "integer", "default": 0},
        "replicas": {"type": "integer", "default": 1},
        "maxReplicas": {"type": "integer", "default": 10},
        "name": {"type": "string", "x-kubernetes-validations": [
            {"rule": "self == oldSelf", "message": "name is immutable"}]},
        "mode": {"type": "string", "x-kubernetes-validations": [
            {"rule": "self != 'forbidden'", "message": "this mode is not allowed", "reason": "FieldValueForbidden"}]},
    }}}}


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("cel"), "--disable", "controllers,scheduler,agent,proxy")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def group(srv):
    g = unique_group("cel")
    create_crd(srv, crd(g, plural="scalers", kind="Scaler", versions=[version("v1", schema=SCHEMA)]))
    return g


def create(srv, group: str, name: str, spec: dict):
    return srv.kubectl("create", "-f", "-", input=json.dumps(cr(group, name, kind="Scaler", spec=spec)))


def test_must_not_fail_validation_for_create_of_a_custom_resource_that_satisfies_the_rules(srv, group):
    out = create(srv, group, "ok", {"minReplicas": 1, "replicas": 2, "maxReplicas": 3})
    assert out.returncode == 0, out.stderr


def test_must_fail_validation_for_create_of_a_custom_resource_that_does_not_satisfy_the_rules(srv, group):
    out = create(srv, group, "bad", {"minReplicas": 5, "replicas": 3, "maxReplicas": 2})
    assert out.returncode == 1
    assert out.stderr.splitlines() == [
        'The Scaler "bad" is invalid: ',
        '* spec: Invalid value: "object": replicas should be greater than or equal to minReplicas',
        '* spec: Invalid value: "object": failed rule: self.replicas <= self.maxReplicas']
    out = create(srv, group, "forbidden", {"mode": "forbidden"})
    assert out.stderr.strip() == 'The Scaler "forbidden" is invalid: spec.mode: Forbidden: this mode is not allowed'


def test_must_fail_update_of_a_custom_resource_that_does_not_satisfy_a_transition_rule(srv, group):
    assert create(srv, group, "named", {"name": "first"}).returncode == 0
    out = srv.kubectl("patch", f"scalers.{group}", "named", "--type=merge", "-p", '{"spec":{"name":"second"}}')
    assert out.returncode == 1
    assert 'spec.name: Invalid value: "second": name is immutable' in out.stderr
    # Other fields may change; the transition rule holds.
    srv.kubectl("patch", f"scalers.{group}", "named", "--type=merge", "-p", '{"spec":{"replicas":3}}', check=True)


def test_must_fail_create_of_a_crd_whose_rule_refers_to_a_property_that_does_not_exist(srv):
    g = unique_group("cel")
    schema = {"type": "object", "properties": {"spec": {"type": "object", "properties": {"x": {"type": "integer"}},
                                                        "x-kubernetes-validations": [{"rule": "self.z == 100"}]}}}
    out = srv.kubectl("create", "-f", "-", input=json.dumps(crd(g, versions=[version("v1", schema=schema)])))
    assert out.returncode == 1
    assert ("spec.versions[0].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule: "
            'Invalid value: apiextensions.ValidationRule{Rule:"self.z == 100"') in out.stderr
    assert "compilation failed: ERROR: <input>:1:5: undefined field 'z'" in out.stderr
    bad_syntax = {"type": "object", "x-kubernetes-validations": [{"rule": "self.spec =="}]}
    out = srv.kubectl("create", "-f", "-", input=json.dumps(crd(g, versions=[version("v1", schema=bad_syntax)])))
    assert out.returncode == 1 and "compilation failed" in out.stderr


def test_unit_rules_correlate_map_list_items_by_key():
    schema = {"type": "object", "properties": {"items": {
        "type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
        "items": {"type": "object", "properties": {"name": {"type": "string"}, "v": {"type": "integer"}},
                  "x-kubernetes-validations": [{"rule": "self.v >= oldSelf.v", "message": "v may only grow"}]}}}}
    old = {"items": [{"name": "a", "v": 2}, {"name": "b", "v": 5}]}
    new = {"items": [{"name": "b", "v": 4}, {"name": "a", "v": 3}, {"name": "c", "v": 0}]}
    errs = cel.validate(new, old, schema)
    assert [(c.field, c.message) for c in errs] == [("items[0]", 'Invalid value: "object": v may only grow')]
    assert cel.validate(new, None, schema) == []  # transition rules do not run on create


def test_unit_runtime_errors_are_reported_as_upstream():
    schema = {"type": "object", "x-kubernetes-validations": [{"rule": "self.missing > 1"}],
              "x-kubernetes-preserve-unknown-fields": True}
    errs = cel.validate({"other": 1}, None, schema)
    assert [c.message for c in errs] == ['Invalid value: "object": no such key: missing evaluating rule: '
                                         "self.missing > 1"]
