"""The status subresource's rules, on every resource that has one.

Upstream's strategies split an object in two: a write to the main resource keeps the
stored status, a write to /status keeps the stored spec (and neither moves
metadata.generation for a status change). Upstream checks this per kind ("should
validate Deployment Status endpoints", "should apply changes to a namespace status" …);
here one spec covers every kind, with the sample's own spec and status changes.

Writes are unconditional (no resourceVersion), as upstream allows for these kinds:
controllers may write the same objects at the same time.
"""
from __future__ import annotations

import copy
import json

import pytest

from .apiclient import MERGE_PATCH, check
from .conftest import Kit


def contains(have: object, want: object) -> bool:
    """Whether ``want`` is a sub-document of ``have`` (lists: each wanted item is in have)."""
    if isinstance(want, dict):
        return isinstance(have, dict) and all(contains(have.get(k), v) for k, v in want.items())
    if isinstance(want, list):
        return isinstance(have, list) and all(any(contains(h, w) for h in have) for w in want)
    return have == want


def changes(kit: Kit) -> tuple[dict, dict | None]:
    """The sample's status change (required here) and spec change (if the kind has one)."""
    if kit.sample.status_change is None:
        pytest.fail(f"{kit.res.id} has a status subresource but its sample has no status_change")
    return kit.sample.status_change, kit.sample.spec_change


def unconditional(obj: dict) -> dict:
    """The object without its resourceVersion: an unconditional update."""
    out = copy.deepcopy(obj)
    out["metadata"].pop("resourceVersion", None)
    out["metadata"].pop("managedFields", None)
    return out


@pytest.mark.verbs("create", "get", "update")
@pytest.mark.subresource("status", "get", "update")
def test_an_update_of_the_main_resource_ignores_status(kit):
    status, spec = changes(kit)
    name = kit.name()
    kit.create(name)
    cur = unconditional(kit.api.get(kit.res, kit.ns, name))
    assert not contains(cur.get("status") or {}, status)
    cur["status"] = {**(cur.get("status") or {}), **status}
    if spec is not None:
        cur["spec"] = {**(cur.get("spec") or {}), **spec["spec"]}
    out = kit.api.update(kit.res, kit.ns, cur)
    assert not contains(out.get("status") or {}, status), out.get("status")
    if spec is not None:
        assert contains(out, spec)


@pytest.mark.verbs("create", "get")
@pytest.mark.subresource("status", "get", "update")
def test_an_update_of_status_ignores_everything_but_status(kit):
    status, spec = changes(kit)
    name = kit.name()
    created = kit.create(name)
    got = kit.api.call("GET", kit.path(name, "status"))
    assert got["kind"] == kit.res.kind and got["metadata"]["uid"] == created["metadata"]["uid"]
    cur = unconditional(got)
    cur["status"] = {**(cur.get("status") or {}), **status}
    if spec is not None:
        cur["spec"] = {**(cur.get("spec") or {}), **spec["spec"]}
    out = kit.api.update(kit.res, kit.ns, cur, sub="status")
    assert contains(out["status"], status), out["status"]
    if spec is not None:
        assert not contains(out, spec), out.get("spec")
    if "generation" in created["metadata"]:
        assert out["metadata"]["generation"] == created["metadata"]["generation"]


@pytest.mark.verbs("create", "get", "patch")
@pytest.mark.subresource("status", "get", "patch")
def test_a_patch_of_status_ignores_everything_but_status(kit):
    status, spec = changes(kit)
    name = kit.name()
    kit.create(name)
    # A patch of the main resource leaves status alone…
    out = kit.api.patch(kit.res, kit.ns, name, json.dumps({"status": status}), MERGE_PATCH)
    assert not contains(out.get("status") or {}, status), out.get("status")
    # …and a patch of status leaves the rest alone.
    out = kit.api.patch(kit.res, kit.ns, name, json.dumps({"status": status, **(spec or {})}), MERGE_PATCH,
                        sub="status")
    assert contains(out["status"], status), out["status"]
    if spec is not None:
        assert not contains(out, spec)


@pytest.mark.subresource("status", "get")
def test_status_of_a_missing_object_is_not_found(kit):
    reply = kit.api.request("GET", kit.path(kit.name("missing"), "status"))
    assert reply.code == 404 and reply.obj["reason"] == "NotFound"
    check(kit.api.request("GET", kit.path()))  # the collection itself is there
