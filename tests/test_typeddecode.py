"""Typed decoding as pure functions: Go's decode errors, nulls, unknown fields, YAML as upstream reads it."""
from __future__ import annotations

import pytest

from kubelite.api import errors, typeddecode
from kubelite.api.typeddecode import TypeMismatch, check, message_for
from kubelite.apiserver import negotiation


def mismatch(obj: dict, api_version: str, kind: str) -> TypeMismatch:
    message = message_for(api_version, kind)
    assert message is not None
    with pytest.raises(TypeMismatch) as e:
        check(obj, message)
    return e.value


@pytest.mark.parametrize("obj,api_version,kind,text", [
    ({"spec": {"replicas": "3"}}, "apps/v1", "Deployment",
     "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32"),
    ({"spec": {"template": {"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 1.5}]}]}}}},
     "apps/v1", "Deployment", "json: cannot unmarshal number 1.5 into Go struct field "
     "ContainerPort.spec.template.spec.containers.ports.containerPort of type int32"),
    ({"spec": {"containers": {"name": "c"}}}, "v1", "Pod",
     "json: cannot unmarshal object into Go struct field PodSpec.spec.containers of type []v1.Container"),
    ({"spec": {"volumes": [{"name": "v", "configMap": {"name": 1}}]}}, "v1", "Pod",
     "json: cannot unmarshal number into Go struct field ConfigMapVolumeSource.spec.volumes.configMap.name "
     "of type string"),
    ({"metadata": {"generation": 2**63}}, "v1", "ConfigMap",
     "json: cannot unmarshal number 9223372036854775808 into Go struct field ObjectMeta.metadata.generation "
     "of type int64"),
    ({"spec": {"strategy": {"rollingUpdate": {"maxSurge": True}}}}, "apps/v1", "Deployment",
     "json: cannot unmarshal bool into Go value of type int32"),
    ({"spec": {"containers": [{"name": "c", "resources": {"limits": {"cpu": "lots"}}}]}}, "v1", "Pod",
     "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"),
    ({"metadata": {"creationTimestamp": "2020-01-01"}}, "v1", "Pod",
     'parsing time "2020-01-01" as "2006-01-02T15:04:05Z07:00": cannot parse "" as "T"'),
    ({"spec": {"renewTime": 5}}, "coordination.k8s.io/v1", "Lease",
     "json: cannot unmarshal number into Go value of type string"),
    ({"kind": "ConfigMap", "data": ["a"]}, "v1", "ConfigMap",
     "json: cannot unmarshal array into Go struct field ConfigMap.data of type map[string]string"),
    ({"binaryData": {"k": "a"}}, "v1", "ConfigMap", "illegal base64 data at input byte 0"),
    ({"gracePeriodSeconds": "1"}, "meta.k8s.io/v1", "DeleteOptions",
     "json: cannot unmarshal string into Go struct field DeleteOptions.gracePeriodSeconds of type int64"),
])
def test_type_errors_are_worded_as_go_decodes(obj, api_version, kind, text):
    assert mismatch(obj, api_version, kind).json_message() == text


def test_the_error_knows_where_it_is_and_how_the_converters_word_it():
    e = mismatch({"spec": {"template": {"spec": {"containers": [{"name": "c", "args": [1]}]}}}}, "apps/v1", "Deployment")
    assert e.location == ["spec", "template", "spec", "containers", 0, "args", 0]
    assert e.fields == ["spec", "template", "spec", "containers", "args"]
    assert e.converter_message() == "unrecognized type: string"
    assert e.apply_message() == ".spec.template.spec.containers[0].args[0]: expected string, got int64"
    assert mismatch({"metadata": "x"}, "v1", "Pod").converter_message() == "cannot restore struct from: string"


def test_nulls_become_what_go_would_write_back():
    obj = {"metadata": None, "data": None, "immutable": None}
    assert check(obj, "core.v1.ConfigMap") == []
    assert obj == {"metadata": {}}
    pod = {"metadata": {"labels": {"a": None}}, "spec": {"containers": [None, {"name": "c", "args": [None]}],
                                                          "nodeName": None}}
    check(pod, "core.v1.Pod")
    assert pod == {"metadata": {"labels": {"a": ""}}, "spec": {"containers": [{}, {"name": "c", "args": [""]}]}}
    rs = {"status": {"replicas": None}, "metadata": {"creationTimestamp": None}}
    check(rs, "apps.v1.ReplicaSet")
    assert rs == {"status": {"replicas": 0}, "metadata": {"creationTimestamp": None}}


def test_unknown_fields_are_listed_with_their_place():
    obj = {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "x", "": 1, "a.b": {"c": 1}}, "bogus": [1]}
    unknown = check(obj, "core.v1.ConfigMap")
    assert [u.path for u in unknown] == ["metadata.", "metadata.a.b", "bogus"]
    assert unknown[1].container is obj["metadata"] and unknown[1].key == "a.b"


def test_nesting_is_bounded_in_untyped_values():
    deep: dict = {}
    cur = deep
    for _ in range(typeddecode.MAX_DEPTH + 5):
        cur["x"] = {}
        cur = cur["x"]
    with pytest.raises(typeddecode.TooDeep):
        check({"metadata": {"name": "x"}, "unknown": deep}, "core.v1.ConfigMap")
    with pytest.raises(typeddecode.TooDeep):
        check({"data": deep}, "apps.v1.ControllerRevision")


@pytest.mark.parametrize("text,error", [
    ("dg==", ""), ("YWJj\nZGVm", ""), ("dg=", "illegal base64 data at input byte 3"),
    ("dg", "illegal base64 data at input byte 0"), ("!!!!", "illegal base64 data at input byte 0"),
    ("dg==dg==", "illegal base64 data at input byte 4"), ("d===", "illegal base64 data at input byte 1"),
])
def test_base64_errors_name_the_byte_as_go_does(text, error):
    assert typeddecode.base64_error(text) == error


@pytest.mark.parametrize("text,ok", [
    ("1", True), ("100m", True), ("1.5Gi", True), ("2e3", True), ("1E-3", True), ("+1", True), (".5", True),
    ("", False), ("abc", False), ("1KI", False), ("1k3", False), ("1e", False), ("1 Gi", False),
])
def test_quantity_grammar(text, ok):
    assert (typeddecode.quantity_error(text) == "") is ok


@pytest.mark.parametrize("text,error", [
    ("2020-01-01T00:00:00Z", ""), ("2020-01-01T00:00:00.123+02:00", ""), ("2020-1-01T00:00:00Z", "cannot parse"),
    ("2020-13-01T00:00:00Z", "month out of range"), ("2021-02-29T00:00:00Z", "day out of range"),
    ("2020-01-01T00:00:00Zjunk", 'extra text: "junk"'), ("2020-01-01t00:00:00Z", 'as "T"'),
])
def test_times_parse_as_rfc3339(text, error):
    got = typeddecode.time_error(text)
    assert (got == "") if not error else (error in got), got


def test_micro_time_needs_six_fraction_digits():
    assert typeddecode.time_error("2020-01-01T00:00:00.000001Z", micro=True) == ""
    assert 'cannot parse "Z" as ".000000"' in typeddecode.time_error("2020-01-01T00:00:00Z", micro=True)


@pytest.mark.parametrize("value,text", [(1e30, "1e+30"), (1.5, "1.5"), (1e20, "100000000000000000000"),
                                        (1e-7, "1e-7"), (2**40, "1099511627776")])
def test_numbers_print_as_go_writes_them(value, text):
    assert typeddecode.go_number(value) == text


def test_kinds_without_a_schema_are_not_typed():
    assert message_for("example.com/v1", "Widget") is None


# --------------------------------------------------------------------------- YAML bodies

def test_yaml_reads_as_upstream_turns_it_into_json():
    obj = negotiation.load_yaml(b"a: 2001-01-01\nb: !!binary aGVsbG8=\nc: !!set {x, y}\nd: 3.0\ne: 1e3\n"
                                b"f: 1.5\n1: one\ntrue: yes\ng: 1:30\n")
    assert obj == {"a": "2001-01-01", "b": "hello", "c": {"x": None, "y": None}, "d": 3, "e": 1000, "f": 1.5,
                   "1": "one", "true": True, "g": "1:30"}


@pytest.mark.parametrize("body,words", [
    (b"a: .inf", "json: unsupported value: +Inf"),
    (b"a: &x [*x]", "excessive aliasing"),
    (b"a: " + b"[" * 900 + b"]" * 900, "exceeded max depth"),
    (b"a: " + b"[" * 150 + b"]" * 150, "exceeded max depth"),
    (b"\x00", "yaml: "),
    (b"a: [", "yaml: line"),
])
def test_hostile_yaml_is_a_bad_request(body, words):
    with pytest.raises(errors.BadRequest) as e:
        negotiation.load_yaml(body)
    assert words in e.value.message


def test_aliases_that_stay_small_are_fine():
    assert negotiation.load_yaml(b"a: &x {k: v}\nb: *x\nc: *x\n") == {"a": {"k": "v"}, "b": {"k": "v"}, "c": {"k": "v"}}
