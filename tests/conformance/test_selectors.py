"""Field selectors every resource supports (metadata.name, metadata.namespace), in lists,
watches and across namespaces, and upstream's 400 for a field a kind does not offer."""
from __future__ import annotations

import json

import pytest

from kubelite.client.errors import BadRequest

from .apiclient import check


@pytest.mark.verbs("create", "list")
def test_every_resource_selects_by_metadata_name_and_namespace(kit):
    a, b = kit.name("a"), kit.name("b")
    kit.create(a)
    kit.create(b)
    assert kit.list_names(fieldSelector=f"metadata.name={a}") == [a]
    assert kit.list_names(fieldSelector=f"metadata.name!={a}") == [b]
    if kit.res.namespaced:
        across = kit.api.call("GET", kit.res.path(), params={"labelSelector": kit.selector,
                                                             "fieldSelector": f"metadata.namespace={kit.ns}"})
        assert sorted(i["metadata"]["name"] for i in across["items"]) == sorted([a, b])
        elsewhere = kit.api.call("GET", kit.res.path(), params={"labelSelector": kit.selector,
                                                                "fieldSelector": "metadata.namespace=default"})
        assert elsewhere["items"] == []


@pytest.mark.verbs("create", "patch", "watch", "list")
def test_a_watch_by_metadata_name_sees_only_that_object(kit):
    a, b = kit.name("a"), kit.name("b")
    start = kit.api.list(kit.res, kit.ns, labelSelector=kit.selector)["metadata"]["resourceVersion"]
    with kit.api.watch(kit.res, kit.ns, resourceVersion=start, fieldSelector=f"metadata.name={a}") as w:
        kit.create(b)
        kit.create(a)
        kit.api.patch(kit.res, kit.ns, b, json.dumps({"metadata": {"annotations": {"seen": "no"}}}))
        kit.api.patch(kit.res, kit.ns, a, json.dumps({"metadata": {"annotations": {"seen": "yes"}}}))
        last = w.next_matching(lambda e: (e["object"]["metadata"].get("annotations") or {}).get("seen") == "yes")
        events = [*w.skipped, last]
    assert {e["object"]["metadata"]["name"] for e in events if e["type"] != "BOOKMARK"} == {a}


@pytest.mark.verbs("list")
def test_an_unsupported_field_selector_is_bad_request(kit):
    with pytest.raises(BadRequest) as e:
        check(kit.api.request("GET", kit.path(), params={"fieldSelector": "no.such.field=x"}))
    # Upstream words it per kind ("field label not supported: …" where a kind converts its
    # own labels, '"…" is not a known field selector: only …' for the generic ones).
    assert "no.such.field" in e.value.message


def test_a_node_without_unschedulable_matches_spec_unschedulable_false(api, resources, ns):
    nodes = resources["v1/nodes"]
    name = f"sel-{ns}"[:63]
    api.create(nodes, "", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {"t": ns}}})
    try:
        out = api.list(nodes, "", labelSelector=f"t={ns}", fieldSelector="spec.unschedulable=false")
        assert [i["metadata"]["name"] for i in out["items"]] == [name]
    finally:
        api.request("DELETE", nodes.path("", name))


def test_an_explicit_unschedulable_false_is_not_stored(api, resources, ns):
    nodes = resources["v1/nodes"]
    name = f"zero-{ns}"[:63]
    out = api.create(nodes, "", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
                                 "spec": {"unschedulable": False}})
    try:
        assert "unschedulable" not in (out.get("spec") or {})
    finally:
        api.request("DELETE", nodes.path("", name))
