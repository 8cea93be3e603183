"""The aggregator's pure parts: version order, forwarded headers, discovery conversion and
the local APIServices the catalogue calls for."""
from __future__ import annotations

from multidict import CIMultiDict

from kubelite.apiserver.aggregator.local import authentication_data, desired
from kubelite.apiserver.aggregator.manager import forward_headers, version_sort_key
from kubelite.apiserver.authn import User
from kubelite.apiserver.discovery import ExtraGroup, aggregated, legacy_apis


def test_versions_sort_as_upstream_orders_them_within_a_group():
    # Equal priorities: GA before beta before alpha, higher numbers first, then other names.
    names = ["foo10", "v1", "v11alpha2", "v2", "v10beta3", "foo1", "v3beta1", "v12alpha1", "v10", "v11beta2"]
    assert sorted(names, key=lambda v: version_sort_key(v, 10)) == \
        ["v10", "v2", "v1", "v11beta2", "v10beta3", "v3beta1", "v12alpha1", "v11alpha2", "foo1", "foo10"]
    # versionPriority comes first.
    assert sorted(["v1", "v1alpha1"], key=lambda v: version_sort_key(v, 100 if v == "v1alpha1" else 1)) == \
        ["v1alpha1", "v1"]


def test_forwarded_headers_carry_the_user_and_drop_credentials():
    incoming = CIMultiDict([("Accept", "application/json"), ("Authorization", "Bearer secret"),
                            ("Impersonate-User", "eve"), ("X-Remote-User", "mallory"), ("Connection", "keep-alive"),
                            ("User-Agent", "kubectl")])
    user = User("jane", ["devs", "system:authenticated"], uid="42", extra={"scopes.example/x y": ["a", "b"]})
    out = forward_headers(incoming, user)
    assert out == [("Accept", "application/json"), ("User-Agent", "kubectl"), ("X-Remote-User", "jane"),
                   ("X-Remote-Uid", "42"), ("X-Remote-Group", "devs"), ("X-Remote-Group", "system:authenticated"),
                   ("X-Remote-Extra-scopes.example%2Fx%20y", "a"), ("X-Remote-Extra-scopes.example%2Fx%20y", "b")]


def test_extension_groups_join_discovery_by_priority():
    rl = {"kind": "APIResourceList", "groupVersion": "wardle.example.com/v1beta1", "resources": [
        {"name": "flunders", "singularName": "flunder", "namespaced": True, "kind": "Flunder",
         "verbs": ["list", "get"], "shortNames": ["fl"]},
        {"name": "flunders/status", "singularName": "", "namespaced": True, "kind": "Flunder", "verbs": ["get"]}]}
    hi = ExtraGroup("wardle.example.com", 17900, ("v1beta1", "v1alpha1"), {"v1beta1": rl})
    lo = ExtraGroup("metrics.example.com", 50, ("v1beta1",), {})
    groups = [g["name"] for g in legacy_apis([lo, hi])["groups"]]
    assert groups.index("apps") == groups.index("wardle.example.com") + 1  # 17900 sorts just above apps' 17800
    assert groups[-1] == "metrics.example.com"
    entry = legacy_apis([hi])["groups"][groups.index("wardle.example.com")]
    assert entry["preferredVersion"] == {"groupVersion": "wardle.example.com/v1beta1", "version": "v1beta1"}
    items = {i["metadata"]["name"]: i for i in aggregated(False, "v2", [lo, hi])["items"]}
    assert "metrics.example.com" not in items  # nothing fetched from it yet
    [version] = items["wardle.example.com"]["versions"]  # only the fetched version is listed
    assert version["version"] == "v1beta1" and version["freshness"] == "Current"
    assert version["resources"] == [{
        "resource": "flunders", "responseKind": {"group": "", "version": "", "kind": "Flunder"},
        "scope": "Namespaced", "singularResource": "flunder", "verbs": ["get", "list"], "shortNames": ["fl"],
        "subresources": [{"subresource": "status", "responseKind": {"group": "", "version": "", "kind": "Flunder"},
                          "verbs": ["get"]}]}]


def test_every_served_group_version_has_a_local_apiservice():
    want = desired()
    assert want["v1."]["spec"] == {"group": "", "version": "v1", "groupPriorityMinimum": 18000, "versionPriority": 1}
    assert want["v1.apps"]["metadata"]["labels"] == {"kube-aggregator.kubernetes.io/automanaged": "onstart"}
    assert all("service" not in a["spec"] for a in want.values())
    assert "v1.apiregistration.k8s.io" in want


def test_authentication_configmap_data_names_the_headers():
    data = authentication_data("PEM", ["front-proxy-client"])
    assert data["requestheader-allowed-names"] == '["front-proxy-client"]'
    assert data["requestheader-username-headers"] == '["X-Remote-User"]'
    assert data["client-ca-file"] == data["requestheader-client-ca-file"] == "PEM"
