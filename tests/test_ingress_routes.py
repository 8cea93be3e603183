"""Unit tests of the ingress controller's routing, admission and validation (no server).

The path table is the worked example of the Ingress documentation ("Examples" under
"Path types"): which request paths a set of paths of one type matches, and which path
wins.  Host rules follow the documentation's "Hostname wildcards" table.
"""
from __future__ import annotations

import asyncio

import pytest

from kubelite.api.resources import INGRESSCLASSES, INGRESSES
from kubelite.api.validation import validate, validate_status
from kubelite.apiserver.ingressclass import DefaultIngressClass, pick_default
from kubelite.ingress.controller import CONTROLLER_NAME, served
from kubelite.ingress.routes import RouteTable, host_matches, normalize_host


def _ingress(paths: list[tuple[str, str, str]], host: str = "", name: str = "ing", created: str = "2024-01-01T00:00:00Z",
             default: str = "") -> dict:
    spec: dict = {"rules": [{"http": {"paths": [
        {"path": p, "pathType": t, "backend": {"service": {"name": svc, "port": {"number": 80}}}}
        for p, t, svc in paths]}}]}
    if host:
        spec["rules"][0]["host"] = host
    if default:
        spec["defaultBackend"] = {"service": {"name": default, "port": {"number": 80}}}
    return {"metadata": {"name": name, "namespace": "ns", "creationTimestamp": created}, "spec": spec}


def _service(table: RouteTable, host: str, path: str) -> str | None:
    b = table.match(host, path)
    return None if b is None else b.service


# (type, paths, request path, the path that matches or None)
DOC_TABLE = [
    ("Prefix", ["/"], "/anything/at/all", "/"),
    ("Exact", ["/foo"], "/foo", "/foo"),
    ("Exact", ["/foo"], "/bar", None),
    ("Exact", ["/foo"], "/foo/", None),
    ("Exact", ["/foo/"], "/foo", None),
    ("Prefix", ["/foo"], "/foo", "/foo"),
    ("Prefix", ["/foo"], "/foo/", "/foo"),
    ("Prefix", ["/foo/"], "/foo", "/foo/"),
    ("Prefix", ["/foo/"], "/foo/", "/foo/"),
    ("Prefix", ["/aaa/bb"], "/aaa/bbb", None),
    ("Prefix", ["/aaa/bbb"], "/aaa/bbb", "/aaa/bbb"),
    ("Prefix", ["/aaa/bbb/"], "/aaa/bbb", "/aaa/bbb/"),
    ("Prefix", ["/aaa/bbb"], "/aaa/bbb/", "/aaa/bbb"),
    ("Prefix", ["/aaa/bbb"], "/aaa/bbb/ccc", "/aaa/bbb"),
    ("Prefix", ["/aaa/bbb"], "/aaa/bbbxyz", None),
    ("Prefix", ["/", "/aaa"], "/aaa/ccc", "/aaa"),
    ("Prefix", ["/", "/aaa", "/aaa/bbb"], "/aaa/bbb", "/aaa/bbb"),
    ("Prefix", ["/", "/aaa", "/aaa/bbb"], "/ccc", "/"),
    ("Prefix", ["/aaa"], "/ccc", None),
]


@pytest.mark.parametrize(("ptype", "paths", "request_path", "winner"), DOC_TABLE)
def test_path_matching_follows_the_documented_examples(ptype, paths, request_path, winner):
    # Each path gets a Service named after it, so the answer says which path won.
    table = RouteTable.build([_ingress([(p, ptype, "svc" + p.replace("/", "-")) for p in paths])])
    want = None if winner is None else "svc" + winner.replace("/", "-")
    assert _service(table, "example.com", request_path) == want


def test_exact_is_preferred_over_prefix_for_the_same_path():
    table = RouteTable.build([_ingress([("/foo", "Prefix", "prefix"), ("/foo", "Exact", "exact")])])
    assert _service(table, "h", "/foo") == "exact"
    assert _service(table, "h", "/foo/x") == "prefix"


def test_implementation_specific_is_treated_as_prefix():
    table = RouteTable.build([_ingress([("/app", "ImplementationSpecific", "app")])])
    assert _service(table, "h", "/app/x") == "app"
    assert _service(table, "h", "/application") is None


def test_host_wildcards_cover_exactly_one_label():
    assert host_matches("*.foo.com", "bar.foo.com")
    assert not host_matches("*.foo.com", "baz.bar.foo.com")
    assert not host_matches("*.foo.com", "foo.com")
    assert host_matches("foo.bar.com", "foo.bar.com")
    assert not host_matches("foo.bar.com", "bar.com")


def test_exact_host_beats_wildcard_beats_any_host():
    table = RouteTable.build([
        _ingress([("/", "Prefix", "exact")], host="a.foo.com", name="a"),
        _ingress([("/", "Prefix", "wild")], host="*.foo.com", name="b"),
        _ingress([("/", "Prefix", "any")], name="c"),
    ])
    assert _service(table, "a.foo.com", "/") == "exact"
    assert _service(table, "b.foo.com", "/") == "wild"
    assert _service(table, "foo.com", "/") == "any"


def test_unmatched_request_goes_to_the_default_backend_or_nowhere():
    table = RouteTable.build([_ingress([("/api", "Prefix", "api")], host="h.com", default="fallback")])
    assert _service(table, "h.com", "/api/v1") == "api"
    assert _service(table, "h.com", "/web") == "fallback"
    assert _service(table, "other.com", "/api") == "fallback"
    assert RouteTable.build([_ingress([("/api", "Prefix", "api")])]).match("h", "/x") is None


def test_the_older_ingress_keeps_a_contested_path():
    young = _ingress([("/", "Prefix", "young")], name="a", created="2024-02-01T00:00:00Z")
    old = _ingress([("/", "Prefix", "old")], name="b", created="2024-01-01T00:00:00Z")
    assert _service(RouteTable.build([young, old]), "h", "/") == "old"


def test_host_header_is_normalized():
    assert normalize_host("Foo.Example.COM:8080") == "foo.example.com"
    assert normalize_host("foo.example.com.") == "foo.example.com"
    assert normalize_host("[::1]:80") == "[::1]"


# --- which Ingresses the controller serves ----------------------------------------------

def _class(name: str, controller: str = CONTROLLER_NAME, default: bool = False,
           created: str = "2024-01-01T00:00:00Z") -> dict:
    ann = {"ingressclass.kubernetes.io/is-default-class": "true"} if default else {}
    return {"metadata": {"name": name, "annotations": ann, "creationTimestamp": created},
            "spec": {"controller": controller}}


def test_controller_serves_its_class_and_classless_ingresses_only_when_default():
    ing = _ingress([("/", "Prefix", "s")])
    named = {**ing, "spec": {**ing["spec"], "ingressClassName": "kubelite"}}
    other = {**ing, "spec": {**ing["spec"], "ingressClassName": "nginx"}}
    annotated = {**ing, "metadata": {**ing["metadata"], "annotations": {"kubernetes.io/ingress.class": "kubelite"}}}
    classes = [_class("kubelite"), _class("nginx", controller="k8s.io/ingress-nginx")]
    assert served(named, classes) and served(annotated, classes)
    assert not served(other, classes)
    assert not served(ing, classes)
    assert served(ing, [_class("kubelite", default=True)])


# --- DefaultIngressClass admission ------------------------------------------------------

def test_default_class_admission_picks_the_newest_default():
    classes = [_class("a", default=True, created="2024-01-01T00:00:00Z"),
               _class("b", default=True, created="2024-03-01T00:00:00Z"),
               _class("c", created="2024-05-01T00:00:00Z")]
    assert pick_default(classes)["metadata"]["name"] == "b"
    assert pick_default([_class("c")]) is None


class _Registry:
    def __init__(self, classes: list[dict]):
        self.classes = classes

    async def list(self, info, ns):
        assert info is INGRESSCLASSES
        return self.classes, 1, "", None


def test_default_class_admission_fills_only_classless_creates():
    adm = DefaultIngressClass(_Registry([_class("kubelite", default=True)]))

    def admit(obj: dict, old: dict | None = None) -> dict:
        asyncio.run(adm.admit(INGRESSES, obj, old))
        return obj
    assert admit({"metadata": {}, "spec": {}})["spec"]["ingressClassName"] == "kubelite"
    assert admit({"metadata": {}, "spec": {"ingressClassName": "x"}})["spec"]["ingressClassName"] == "x"
    annotated = admit({"metadata": {"annotations": {"kubernetes.io/ingress.class": "y"}}, "spec": {}})
    assert "ingressClassName" not in annotated["spec"]
    assert "ingressClassName" not in admit({"metadata": {}, "spec": {}}, {"metadata": {}})["spec"]


# --- validation messages ----------------------------------------------------------------

NET = "networking.k8s.io/v1"


def _errors(spec: dict, kind: str = "Ingress", annotations: dict | None = None) -> list[tuple[str, str]]:
    md: dict = {"name": "x", "namespace": "default"} if kind == "Ingress" else {"name": "x"}
    if annotations:
        md["annotations"] = annotations
    return [(c.field, c.message) for c in validate(kind, NET, {"metadata": md, "spec": spec})]


def _backend(name: str = "web", **port: object) -> dict:
    return {"service": {"name": name, "port": port or {"number": 80}}}


def test_ingress_validation_messages():
    assert _errors({}) == [("spec", "Invalid value: []networking.IngressRule(nil): either `defaultBackend` or "
                                    "`rules` must be specified")]
    assert _errors({"rules": [{"http": {"paths": [{"path": "/", "backend": _backend()}]}}]}) == [
        ("spec.rules[0].http.paths[0].pathType", "Required value: pathType must be specified")]
    assert _errors({"rules": [{"http": {"paths": [{"path": "foo", "pathType": "Prefix", "backend": _backend()}]}}]}) == [
        ("spec.rules[0].http.paths[0].path", 'Invalid value: "foo": must be an absolute path')]
    assert _errors({"rules": [{"http": {"paths": [{"path": "/a//b", "pathType": "Exact", "backend": _backend()}]}}]}) == [
        ("spec.rules[0].http.paths[0].path", "Invalid value: \"/a//b\": must not contain '//'")]
    assert _errors({"rules": [{"http": {"paths": [{"path": "/", "pathType": "Glob", "backend": _backend()}]}}]}) == [
        ("spec.rules[0].http.paths[0].pathType",
         'Unsupported value: "Glob": supported values: "Exact", "ImplementationSpecific", "Prefix"')]
    both = {"service": {"name": "web", "port": {"number": 80}}, "resource": {"kind": "Bucket", "name": "b"}}
    assert _errors({"defaultBackend": both}) == [
        ("spec.defaultBackend", 'Invalid value: "": cannot set both resource and service backends')]
    assert _errors({"defaultBackend": {}}) == [
        ("spec.defaultBackend", 'Invalid value: "": resource or service backend is required')]
    assert _errors({"defaultBackend": {"service": {"name": "web", "port": {}}}}) == [
        ("spec.defaultBackend", "Required value: port name or number is required")]
    assert _errors({"defaultBackend": {"service": {"name": "web", "port": {"number": 80, "name": "http"}}}}) == [
        ("spec.defaultBackend", 'Invalid value: "": cannot set both port name & port number')]


def test_ingress_host_rules():
    def host_errors(host: str) -> list[tuple[str, str]]:
        return _errors({"rules": [{"host": host, "http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": _backend()}]}}]})
    assert host_errors("foo.bar.com") == []
    assert host_errors("*.bar.com") == []
    assert host_errors("1.2.3.4")[0] == ("spec.rules[0].host",
                                         'Invalid value: "1.2.3.4": must be a DNS name, not an IP address')
    (field, msg), = host_errors("*")
    assert field == "spec.rules[0].host" and msg.startswith(
        'Invalid value: "*": a wildcard DNS-1123 subdomain must start with \'*.\'')
    (field, msg), = host_errors("foo.*.com")
    assert field == "spec.rules[0].host"


def test_ingress_tls_and_class_annotation():
    rule = {"rules": [{"http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": _backend()}]}}]}
    assert _errors({**rule, "tls": [{"hosts": ["a.com", "*.b.com"], "secretName": "ok"}]}) == []
    (field, _msg), = _errors({**rule, "tls": [{"secretName": "Bad_Name"}]})
    assert field == "spec.tls[0].secretName"
    assert _errors({**rule, "ingressClassName": "a"}, annotations={"kubernetes.io/ingress.class": "b"}) == [
        ("annotations.kubernetes.io/ingress.class", 'Invalid value: "b": must match `ingressClassName` when both '
                                                    "are specified")]


def test_ingress_status_addresses():
    old = {"metadata": {"name": "x", "namespace": "d", "resourceVersion": "1"}, "spec": {}}
    new = dict(old, status={"loadBalancer": {"ingress": [{"ip": "not-an-ip"}, {"hostname": "1.2.3.4"}]}})
    fields = [c.field for c in validate_status("Ingress", NET, new, old)]
    assert fields == ["status.loadBalancer.ingress[0].ip", "status.loadBalancer.ingress[1].hostname"]


def test_ingress_class_validation():
    assert _errors({"controller": "example.com/ingress"}, kind="IngressClass") == []
    assert _errors({}, kind="IngressClass") == [("spec.controller", "Required value")]
    assert _errors({"controller": "nodomain"}, kind="IngressClass") == [
        ("spec.controller", 'Invalid value: "nodomain": must be a domain-prefixed path (such as "acme.io/foo")')]
    params = {"kind": "Cfg", "name": "c", "scope": "Namespace"}
    assert _errors({"controller": "a.io/b", "parameters": params}, kind="IngressClass") == [
        ("spec.parameters.namespace", "Required value: `parameters.scope` is set to 'Namespace'")]
    old = {"metadata": {"name": "x", "resourceVersion": "1"}, "spec": {"controller": "a.io/b"}}
    new = {"metadata": {"name": "x", "resourceVersion": "1"}, "spec": {"controller": "a.io/c"}}
    assert [(c.field, c.message) for c in validate("IngressClass", NET, new, old)] == [
        ("spec.controller", 'Invalid value: "a.io/c": field is immutable')]
