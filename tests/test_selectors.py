"""Label and field selectors parse, print and match as apimachinery's do."""
from __future__ import annotations

import pytest

from kubelite.api.errors import BadRequest
from kubelite.api.selectors import (
    convert_field_selector,
    field_matches,
    field_value,
    parse_field_selector,
    parse_label_selector,
    selector_from_dict,
    selector_from_set,
)


@pytest.mark.parametrize("text,canonical", [
    ("app=web", "app=web"),
    ("app==web", "app==web"),
    ("tier!=db,app=web", "app=web,tier!=db"),
    ("a=b,c!=d,e in (x,y),f notin (z),g,!h", "a=b,c!=d,e in (x,y),f notin (z),g,!h"),
    ("e in (y, x)", "e in (x,y)"),
    (" app = web ", "app=web"),
    ("", ""),
    ("k8s.io/app=web", "k8s.io/app=web"),
    ("a=", "a="),
    ("a in ()", "a in ()"),
    ("n>3", "n>3"),
])
def test_parse_and_print(text, canonical):
    assert str(parse_label_selector(text)) == canonical


@pytest.mark.parametrize("text,labels,ok", [
    ("app=web", {"app": "web"}, True),
    ("app=web", {"app": "api"}, False),
    ("app=web", {}, False),
    ("app!=web", {}, True),
    ("app!=web", {"app": "web"}, False),
    ("env in (a,b)", {"env": "b"}, True),
    ("env in (a,b)", {"env": "c"}, False),
    ("env notin (a,b)", {}, True),
    ("env notin (a,b)", {"env": "a"}, False),
    ("env", {"env": ""}, True),
    ("env", {}, False),
    ("!env", {}, True),
    ("!env", {"env": "x"}, False),
    ("a=1,b=2", {"a": "1", "b": "2", "c": "3"}, True),
    ("a=1,b=2", {"a": "1"}, False),
    ("n>3", {"n": "4"}, True),
    ("n>3", {"n": "x"}, False),
    ("", {"anything": "x"}, True),
])
def test_matches(text, labels, ok):
    assert parse_label_selector(text).matches(labels) is ok


@pytest.mark.parametrize("text,message", [
    ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
    ("a=b c", "found 'c', expected: ',' or 'end of string'"),
    ("a=b,", "found '', expected: identifier after ','"),
    ("a in x", "unable to parse requirement: found 'x' expected: '('"),
    ("a in (x", "unable to parse requirement: found '', expected: ',' or ')'"),
    ("=a", "found '=', expected: !, identifier, or 'end of string'"),
    ("!a=b", "found '=', expected: ',' or 'end of string'"),
    ("-a=b", "unable to parse requirement: <nil>: Invalid value: \"-a\": name part must consist of alphanumeric "
             "characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or "
             "'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"),
    ("a=b@", "unable to parse requirement: values[0][a]: Invalid value: \"b@\": a valid label must be an empty string "
             "or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
             "character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is "
             "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"),
])
def test_parse_errors_are_400(text, message):
    with pytest.raises(BadRequest) as ei:
        parse_label_selector(text)
    assert ei.value.message == message


def test_selector_from_dict():
    sel = selector_from_dict({"matchLabels": {"app": "web"},
                              "matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]},
                                                   {"key": "canary", "operator": "DoesNotExist"}]})
    assert str(sel) == "app=web,!canary,tier in (a,b)"
    assert sel.matches({"app": "web", "tier": "a"})
    assert not sel.matches({"app": "web", "tier": "a", "canary": "1"})
    assert str(selector_from_dict({"matchLabels": {"app": "kubernetes-bootcamp"}})) == "app=kubernetes-bootcamp"


def test_nil_and_empty_dict_selectors():
    assert not selector_from_dict(None).matches({"a": "b"})
    assert selector_from_dict({}).matches({"a": "b"})
    assert selector_from_dict({}).empty()


def test_bad_dict_operator():
    with pytest.raises(BadRequest) as ei:
        selector_from_dict({"matchExpressions": [{"key": "a", "operator": "Near"}]})
    assert ei.value.message == '"Near" is not a valid label selector operator'


def test_selector_from_set():
    sel = selector_from_set({"b": "2", "a": "1"})
    assert str(sel) == "a=1,b=2"
    assert sel.matches({"a": "1", "b": "2"})


# --- field selectors -------------------------------------------------------------------

def test_parse_field_selector():
    assert parse_field_selector("spec.nodeName=n1,status.phase!=Failed,status.phase!=Succeeded") == [
        ("spec.nodeName", "=", "n1"), ("status.phase", "!=", "Failed"), ("status.phase", "!=", "Succeeded")]
    assert parse_field_selector("metadata.name==web") == [("metadata.name", "=", "web")]
    assert parse_field_selector("involvedObject.namespace=") == [("involvedObject.namespace", "=", "")]
    assert parse_field_selector("") == []
    assert parse_field_selector(r"metadata.name=a\,b") == [("metadata.name", "=", "a,b")]
    # kr8s repeats terms; both are kept and both hold.
    assert parse_field_selector("metadata.name=web,metadata.name=web") == [("metadata.name", "=", "web")] * 2


@pytest.mark.parametrize("text,message", [
    ("metadata.name", "invalid selector: 'metadata.name'; can't understand 'metadata.name'"),
    (r"a=b\x", r"invalid field selector: invalid escape sequence: \x"),
    ("a=b=c", "invalid field selector: unescaped character in value: 61"),
])
def test_field_selector_errors(text, message):
    with pytest.raises(BadRequest) as ei:
        parse_field_selector(text)
    assert ei.value.message == message


@pytest.mark.parametrize("group,kind,field,converted", [
    ("", "Pod", "spec.nodeName", "spec.nodeName"),
    ("", "Pod", "spec.host", "spec.nodeName"),
    ("", "Pod", "status.podIPs", "status.podIPs"),
    ("", "Pod", "metadata.namespace", "metadata.namespace"),
    ("", "Node", "spec.unschedulable", "spec.unschedulable"),
    ("", "Namespace", "status.phase", "status.phase"),
    ("", "Secret", "type", "type"),
    ("", "Service", "spec.type", "spec.type"),
    ("", "Event", "involvedObject.uid", "involvedObject.uid"),
    ("", "Event", "reportingComponent", "reportingComponent"),
    ("events.k8s.io", "Event", "regarding.name", "involvedObject.name"),
    ("events.k8s.io", "Event", "reportingController", "reportingComponent"),
    ("apps", "Deployment", "metadata.name", "metadata.name"),
    ("", "ConfigMap", "metadata.namespace", "metadata.namespace"),
])
def test_supported_field_labels_convert(group, kind, field, converted):
    assert convert_field_selector(group, kind, [(field, "=", "x")]) == [(converted, "=", "x")]


@pytest.mark.parametrize("group,kind,field", [
    ("", "Pod", "spec.containers"),
    ("", "Node", "metadata.namespace"),
    ("", "Namespace", "metadata.namespace"),
    ("", "Event", "regarding.name"),
    ("events.k8s.io", "Event", "involvedObject.name"),
    ("", "Secret", "data"),
])
def test_unsupported_field_label_is_400(group, kind, field):
    with pytest.raises(BadRequest) as ei:
        convert_field_selector(group, kind, [(field, "=", "x")])
    assert ei.value.message == f"field label not supported: {field}"


@pytest.mark.parametrize("group,kind,field", [
    ("apps", "Deployment", "spec.replicas"),
    ("apps", "ReplicaSet", "status.replicas"),
    ("", "ConfigMap", "data"),
])
def test_kind_without_field_labels_accepts_metadata_only(group, kind, field):
    with pytest.raises(BadRequest) as ei:
        convert_field_selector(group, kind, [(field, "=", "x")])
    assert ei.value.message == f'"{field}" is not a known field selector: only "metadata.name", "metadata.namespace"'


def test_unset_fields_read_as_go_zero_values():
    node = {"metadata": {"name": "n"}, "spec": {}}
    assert field_value("Node", node, "spec.unschedulable") == "false"
    assert field_matches("Node", node, parse_field_selector("spec.unschedulable=false"))
    assert field_matches("Node", {"metadata": {"name": "n"}}, parse_field_selector("spec.unschedulable=false"))
    assert not field_matches("Node", {"spec": {"unschedulable": True}}, parse_field_selector("spec.unschedulable=false"))
    pod = {"metadata": {"name": "p", "namespace": "default"}, "spec": {}}
    assert field_value("Pod", pod, "spec.hostNetwork") == "false"
    assert field_value("Pod", pod, "spec.nodeName") == ""
    assert field_value("Pod", pod, "status.podIP") == ""
    assert field_value("Namespace", {"metadata": {"name": "x"}}, "metadata.namespace") == ""


def test_field_value_and_matching():
    pod = {"metadata": {"name": "p", "namespace": "default"},
           "spec": {"nodeName": "node-1", "hostNetwork": True},
           "status": {"phase": "Running", "podIP": "10.0.0.5", "podIPs": [{"ip": "10.0.0.5"}, {"ip": "fd00::5"}]}}
    assert field_value("Pod", pod, "spec.hostNetwork") == "true"
    assert field_value("Pod", pod, "status.podIP") == "10.0.0.5"
    # Upstream accepts the label but its field set has no such key: it always reads "".
    assert field_value("Pod", pod, "status.podIPs") == ""
    assert field_value("Pod", pod, "spec.schedulerName") == ""
    terms = parse_field_selector("spec.nodeName=node-1,status.phase!=Failed,status.phase!=Succeeded")
    assert field_matches("Pod", pod, terms)
    pod["status"]["phase"] = "Failed"
    assert not field_matches("Pod", pod, terms)
    # podIP alone (no podIPs) is the primary address too.
    assert field_value("Pod", {"status": {"podIP": "10.0.0.9"}}, "status.podIP") == "10.0.0.9"


def test_event_field_values():
    ev = {"metadata": {"name": "e", "namespace": "default"},
          "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default", "uid": "u1"},
          "source": {"component": "kubelet"}, "reason": "Pulled", "type": "Normal"}
    assert field_value("Event", ev, "involvedObject.uid") == "u1"
    assert field_value("Event", ev, "source") == "kubelet"
    assert field_matches("Event", ev, parse_field_selector(
        "involvedObject.name=p,involvedObject.namespace=default,involvedObject.uid=u1"))
    node_event = {"metadata": {"name": "n", "namespace": "default"}, "involvedObject": {"kind": "Node", "name": "n"}}
    assert field_matches("Event", node_event, parse_field_selector("involvedObject.namespace="))
    # An events.k8s.io-shaped object answers the same (converted) labels.
    new_style = {"metadata": {"name": "e2"}, "regarding": {"kind": "Pod", "name": "p"}, "reportingController": "x"}
    assert field_value("Event", new_style, "involvedObject.name") == "p"
    assert field_value("Event", new_style, "reportingComponent") == "x"
    assert field_value("Event", new_style, "source") == "x"
    terms = convert_field_selector("events.k8s.io", "Event", parse_field_selector("regarding.name=p"))
    assert field_matches("Event", new_style, terms)
