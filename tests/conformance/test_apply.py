"""Server-side apply on every resource that can be created and patched.

Mirrors upstream's "ServerSideApply" specs (apply.go). Upstream writes them for
Deployments and Pods with spec fields; here the contested fields are labels, which every
kind has, so the same specs run on each resource. Status applies use the sample's status.
"""
from __future__ import annotations

import json

import pytest

from kubelite.client.errors import Conflict

from .apiclient import APPLY_PATCH, MERGE_PATCH
from .conftest import Kit


def applied(kit: Kit, name: str, labels: dict[str, str]) -> dict:
    """The object an applier sends: the sample with exactly these labels (plus the suite's)."""
    return kit.obj(name, labels)


def entry(obj: dict, manager: str) -> dict:
    """The managedFields entry of an applier."""
    found = [e for e in obj["metadata"].get("managedFields") or [] if e["manager"] == manager]
    assert len(found) == 1, obj["metadata"].get("managedFields")
    return found[0]


@pytest.mark.verbs("create", "patch", "get")
def test_should_create_an_applied_object_if_it_does_not_already_exist(kit):
    name = kit.name()
    kit.prereqs(name)
    reply = kit.api.request("PATCH", kit.path(name), json.dumps(applied(kit, name, {"tier": "one"})),
                            ctype=APPLY_PATCH, params={"fieldManager": "apply_test"})
    assert reply.code == 201, reply.raw[:300]
    got = kit.api.get(kit.res, kit.ns, name)
    assert got["metadata"]["labels"]["tier"] == "one"
    # Re-applying the same configuration under another manager is no conflict: both own it.
    again = kit.api.apply(kit.res, kit.ns, applied(kit, name, {"tier": "one"}), "apply_test_2")
    first, second = entry(again, "apply_test"), entry(again, "apply_test_2")
    assert first["operation"] == second["operation"] == "Apply"
    assert first["fieldsV1"] == second["fieldsV1"]
    assert "f:tier" in json.dumps(first["fieldsV1"])


@pytest.mark.verbs("create", "patch", "get")
def test_should_remove_a_field_if_it_is_owned_but_removed_in_the_apply_request(kit):
    name = kit.name()
    kit.prereqs(name)
    kit.api.apply(kit.res, kit.ns, applied(kit, name, {"keep": "1", "drop": "2"}), "apply_test")
    out = kit.api.apply(kit.res, kit.ns, applied(kit, name, {"keep": "1"}), "apply_test")
    assert out["metadata"]["labels"].get("keep") == "1"
    assert "drop" not in out["metadata"]["labels"]


@pytest.mark.verbs("create", "patch", "get")
def test_should_not_remove_a_field_if_an_owner_unsets_the_field_but_other_managers_still_have_ownership_of_the_field(kit):
    name = kit.name()
    kit.prereqs(name)
    for manager in ("shared_owner_1", "shared_owner_2"):
        kit.api.apply(kit.res, kit.ns, applied(kit, name, {"shared": "yes"}), manager)
    out = kit.api.apply(kit.res, kit.ns, applied(kit, name, {}), "shared_owner_1")
    assert out["metadata"]["labels"].get("shared") == "yes"


@pytest.mark.verbs("create", "patch", "get")
def test_should_ignore_conflict_errors_if_force_apply_is_used(kit):
    name = kit.name()
    kit.prereqs(name)
    kit.api.apply(kit.res, kit.ns, applied(kit, name, {"contested": "mine"}), "apply_test")
    kit.api.patch(kit.res, kit.ns, name, json.dumps({"metadata": {"labels": {"contested": "theirs"}}}),
                  MERGE_PATCH, params={"fieldManager": "other_writer"})
    with pytest.raises(Conflict) as e:
        kit.api.apply(kit.res, kit.ns, applied(kit, name, {"contested": "mine"}), "apply_test")
    causes = (e.value.details or {}).get("causes") or []
    assert any(c.get("field") == ".metadata.labels.contested" for c in causes), causes
    assert "other_writer" in e.value.message
    out = kit.api.apply(kit.res, kit.ns, applied(kit, name, {"contested": "mine"}), "apply_test", force=True)
    assert out["metadata"]["labels"]["contested"] == "mine"
    # Forced, the applier took the field over: the other writer no longer owns it.
    others = [x for x in out["metadata"]["managedFields"] if x["manager"] == "other_writer"]
    assert all("f:contested" not in json.dumps(x.get("fieldsV1")) for x in others)


@pytest.mark.verbs("create", "patch", "get")
def test_apply_with_dry_run_changes_nothing(kit):
    name = kit.name()
    kit.prereqs(name)
    out = kit.api.apply(kit.res, kit.ns, applied(kit, name, {"tier": "dry"}), "apply_test", dryRun="All")
    assert out["metadata"]["labels"]["tier"] == "dry"
    assert not kit.api.exists(kit.res, kit.ns, name)


@pytest.mark.verbs("create", "patch", "get")
def test_apply_accepts_tab_indented_json(kit):
    name = kit.name()
    kit.prereqs(name)
    body = json.dumps(applied(kit, name, {"tier": "tabs"}), indent="\t")
    reply = kit.api.request("PATCH", kit.path(name), body, ctype=APPLY_PATCH, params={"fieldManager": "apply_test"})
    assert reply.code == 201, reply.raw[:300]


@pytest.mark.verbs("create", "patch", "get")
@pytest.mark.subresource("status", "patch")
def test_should_work_for_subresources(kit):
    if kit.sample.status_change is None:
        pytest.fail(f"{kit.res.id} has a status subresource but its sample has no status_change")
    name = kit.name()
    kit.create(name)
    body = {"apiVersion": kit.res.api_version, "kind": kit.res.kind, "metadata": {"name": name},
            "status": kit.sample.status_change}
    assert not _contains(kit.api.get(kit.res, kit.ns, name).get("status") or {}, kit.sample.status_change)
    # Applied to the main resource, status is not written.
    out = kit.api.apply(kit.res, kit.ns, body, "apply_status")
    assert not _contains(out.get("status") or {}, kit.sample.status_change), out.get("status")
    out = kit.api.apply(kit.res, kit.ns, body, "apply_status", sub="status")
    assert _contains(out["status"], kit.sample.status_change), out["status"]


def _contains(have: object, want: object) -> bool:
    """Whether ``want`` is a sub-document of ``have`` (lists: each wanted item is in have)."""
    if isinstance(want, dict):
        return isinstance(have, dict) and all(_contains(have.get(k), v) for k, v in want.items())
    if isinstance(want, list):
        return isinstance(have, list) and all(any(_contains(h, w) for h in have) for w in want)
    return have == want
