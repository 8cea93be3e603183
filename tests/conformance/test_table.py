"""Server-side Table output for every resource that can be read.

Mirrors upstream's "Servers with support for Table transformation" (table_conversion.go):
a Table for one object and for a list, in meta.k8s.io v1 and v1beta1, with the object
embedded as the client asks, and 406 for a conversion the server does not offer.
"""
from __future__ import annotations

import pytest

from .apiclient import JSON, TABLE_V1, TABLE_V1BETA1, check


def name_column(table: dict) -> int:
    """Index of the Name column (first for most kinds; events lead with LAST SEEN)."""
    names = [c["name"] for c in table["columnDefinitions"]]
    assert "Name" in names, names
    return names.index("Name")


@pytest.mark.verbs("create", "get")
def test_should_return_generic_metadata_details(kit):
    name = kit.name()
    created = kit.create(name)
    table = check(kit.api.request("GET", kit.path(name), accept=TABLE_V1)).obj
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert len(table["columnDefinitions"]) >= 2
    assert len(table["rows"]) == 1
    row = table["rows"][0]
    assert len(row["cells"]) == len(table["columnDefinitions"])
    assert row["cells"][name_column(table)] == name
    # includeObject defaults to Metadata: the row carries the object's metadata only.
    embedded = row["object"]
    assert embedded["kind"] == "PartialObjectMetadata" and embedded["metadata"]["uid"] == created["metadata"]["uid"]
    assert table["metadata"]["resourceVersion"]


@pytest.mark.verbs("create", "get")
def test_a_v1beta1_table_is_answered_as_v1beta1(kit):
    # Upstream's table specs ask for v1beta1 and decode into metav1beta1.Table.
    name = kit.name()
    kit.create(name)
    table = check(kit.api.request("GET", kit.path(name), accept=TABLE_V1BETA1)).obj
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1beta1"
    assert table["rows"][0]["cells"][name_column(table)] == name


@pytest.mark.verbs("create", "get")
@pytest.mark.parametrize("include", ["None", "Object"])
def test_table_rows_embed_the_object_as_asked(kit, include):
    name = kit.name()
    created = kit.create(name)
    table = check(kit.api.request("GET", kit.path(name), accept=TABLE_V1, params={"includeObject": include})).obj
    row = table["rows"][0]
    if include == "None":
        assert "object" not in row or row["object"] is None
    else:
        assert row["object"]["kind"] == kit.res.kind
        assert row["object"]["metadata"]["uid"] == created["metadata"]["uid"]


@pytest.mark.verbs("create", "list")
def test_should_return_a_table_for_list_calls(kit):
    names = sorted(kit.name(f"t{i}") for i in range(2))
    for n in names:
        kit.create(n)
    table = check(kit.api.request("GET", kit.path(), accept=TABLE_V1, params={"labelSelector": kit.selector})).obj
    assert table["kind"] == "Table" and table["metadata"]["resourceVersion"]
    col = name_column(table)
    assert [r["cells"][col] for r in table["rows"]] == names
    assert all(len(r["cells"]) == len(table["columnDefinitions"]) for r in table["rows"])


@pytest.mark.verbs("get")
def test_unsupported_conversion_is_406(kit):
    reply = kit.api.request("GET", kit.path(), accept="application/json;as=Foo;v=v1;g=meta.k8s.io")
    assert reply.code == 406, reply.raw[:200]
    assert reply.obj["reason"] == "NotAcceptable"


@pytest.mark.verbs("get", "list")
def test_kubectl_accept_header_gets_a_v1_table(kit):
    # kubectl get's Accept: v1 Table first, then v1beta1, then the plain list. Every built-in
    # resource has a table convertor upstream (columns of its own or Name and Age).
    accept = f"{TABLE_V1},{TABLE_V1BETA1},{JSON}"
    reply = check(kit.api.request("GET", kit.path(), accept=accept, params={"labelSelector": kit.selector}))
    assert reply.obj["kind"] == "Table" and reply.obj["apiVersion"] == "meta.k8s.io/v1"


@pytest.mark.verbs("create", "list")
def test_partial_object_metadata_list(kit):
    name = kit.name()
    created = kit.create(name)
    accept = "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io"
    out = check(kit.api.request("GET", kit.path(), accept=accept, params={"labelSelector": kit.selector})).obj
    assert out["kind"] == "PartialObjectMetadataList" and out["apiVersion"] == "meta.k8s.io/v1"
    assert [i["metadata"]["uid"] for i in out["items"]] == [created["metadata"]["uid"]]
    assert all(set(i) == {"kind", "apiVersion", "metadata"} for i in out["items"])
