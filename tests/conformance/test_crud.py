"""Create, read, update, patch and delete every served resource, in each content type.

Requests go out as JSON, YAML and protobuf; answers are asked for in the same type
(protobuf clients also accept JSON, as client-go's do). Mirrors the lifecycle specs
upstream writes per kind ("should run the lifecycle of …") in one generic form.
"""
from __future__ import annotations

import json
import time

import pytest

from kubelite.client.errors import AlreadyExists, BadRequest, Conflict, NotFound

from .apiclient import JSON, JSON_PATCH, MERGE_PATCH, PROTOBUF, STRATEGIC_PATCH, YAML, check, retry_on_conflict
from .samples import SAMPLES

REQUEST_TYPES = {"json": (JSON, JSON), "yaml": (YAML, YAML), "protobuf": (PROTOBUF, f"{PROTOBUF}, {JSON}")}
PATCH_TYPES = {"merge": MERGE_PATCH, "strategic": STRATEGIC_PATCH, "json": JSON_PATCH}


def wait_gone(kit, name: str) -> None:
    """Poll until the object is gone (namespaces and finalizers take a moment)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if not kit.api.exists(kit.res, kit.ns, name):
            return
        time.sleep(0.05)
    raise AssertionError(f"{kit.res.id} {name} still exists")


@pytest.mark.verbs("create")
@pytest.mark.parametrize("wire", list(REQUEST_TYPES))
def test_should_create_in_each_content_type(kit, wire):
    ctype, accept = REQUEST_TYPES[wire]
    name = kit.name(wire)
    kit.prereqs(name)
    reply = check(kit.api.request("POST", kit.path(), kit.obj(name), ctype=ctype, accept=accept))
    assert reply.code == 201, reply.raw[:300]
    if wire == "yaml":
        assert reply.content_type == YAML
    out = reply.obj
    if out["kind"] == "Status":  # a create-only resource (bindings) answers with a Status, as upstream
        assert out["status"] == "Success" and not kit.res.has("get")
        return
    assert out["kind"] == kit.res.kind and out["apiVersion"] == kit.res.api_version
    assert out["metadata"]["name"] == name
    if kit.res.has("get"):
        assert out["metadata"]["uid"] and out["metadata"]["creationTimestamp"] and out["metadata"]["resourceVersion"]
        got = kit.api.get(kit.res, kit.ns, name)
        assert got["metadata"]["uid"] == out["metadata"]["uid"]
        assert got["metadata"]["labels"] == out["metadata"]["labels"]
    if not kit.res.namespaced:
        kit.made.append((kit.res, name))


@pytest.mark.verbs("create", "get")
def test_create_of_an_existing_name_is_already_exists(kit):
    name = kit.name()
    kit.create(name)
    with pytest.raises(AlreadyExists) as e:
        kit.api.create(kit.res, kit.ns, kit.obj(name))
    details = e.value.details or {}
    assert details.get("name") == name and details.get("kind") == kit.res.plural
    assert details.get("group", "") == kit.res.group


@pytest.mark.verbs("get")
def test_get_of_a_missing_object_is_not_found(kit):
    with pytest.raises(NotFound) as e:
        kit.api.get(kit.res, kit.ns, kit.name("missing"))
    assert e.value.details and e.value.details["kind"] == kit.res.plural


@pytest.mark.verbs("create", "get")
@pytest.mark.parametrize("wire", ["json", "yaml"])
def test_get_and_list_answer_in_the_accepted_type(kit, wire):
    ctype, accept = REQUEST_TYPES[wire]
    name = kit.name()
    kit.create(name)
    one = check(kit.api.request("GET", kit.path(name), accept=accept))
    assert one.content_type == ctype
    assert one.obj["metadata"]["name"] == name
    if kit.res.has("list"):
        many = check(kit.api.request("GET", kit.path(), accept=accept, params={"labelSelector": kit.selector}))
        assert many.content_type == ctype
        body = many.obj
        assert body["kind"] == f"{kit.res.kind}List" and body["apiVersion"] == kit.res.api_version
        assert [i["metadata"]["name"] for i in body["items"]] == [name]
        assert body["metadata"]["resourceVersion"]


@pytest.mark.verbs("create", "get")
def test_protobuf_only_clients_are_answered_in_protobuf(kit):
    name = kit.name()
    kit.create(name)
    reply = check(kit.api.request("GET", kit.path(name), accept=PROTOBUF))
    assert reply.content_type == PROTOBUF
    assert reply.obj["metadata"]["name"] == name


@pytest.mark.verbs("get")
def test_unacceptable_media_type_is_406(kit):
    reply = kit.api.request("GET", kit.path(kit.name("any")), accept="text/html")
    assert reply.code == 406, reply.raw[:200]
    assert reply.obj["reason"] == "NotAcceptable"


@pytest.mark.verbs("create", "get", "update")
@pytest.mark.parametrize("wire", list(REQUEST_TYPES))
def test_should_update_in_each_content_type(kit, wire):
    ctype, accept = REQUEST_TYPES[wire]
    name = kit.name()
    created = kit.create(name)

    def put() -> dict:
        cur = kit.api.get(kit.res, kit.ns, name)
        cur["metadata"].setdefault("annotations", {})["conformance/updated"] = wire
        return check(kit.api.request("PUT", kit.path(name), cur, ctype=ctype, accept=accept)).obj
    out = retry_on_conflict(put)
    assert out["metadata"]["annotations"]["conformance/updated"] == wire
    assert out["metadata"]["uid"] == created["metadata"]["uid"]
    assert int(out["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    # The create's resourceVersion is stale now: a precondition on it is a conflict.
    stale = kit.obj(name)
    stale["metadata"]["resourceVersion"] = created["metadata"]["resourceVersion"]
    with pytest.raises(Conflict):
        check(kit.api.request("PUT", kit.path(name), stale, ctype=ctype, accept=accept))


@pytest.mark.verbs("create", "get", "update")
def test_update_of_a_missing_object_is_not_found(kit):
    with pytest.raises(NotFound):
        kit.api.update(kit.res, kit.ns, kit.obj(kit.name("missing")))


@pytest.mark.verbs("create", "patch")
@pytest.mark.parametrize("ptype", list(PATCH_TYPES))
def test_should_patch_with_each_patch_type(kit, ptype):
    name = kit.name()
    created = kit.create(name)
    if ptype == "json":
        body = [{"op": "add", "path": "/metadata/annotations", "value": {"conformance/patched": ptype}}] \
            if not created["metadata"].get("annotations") else \
            [{"op": "add", "path": "/metadata/annotations/conformance~1patched", "value": ptype}]
    else:
        body = {"metadata": {"annotations": {"conformance/patched": ptype}}}
    out = kit.api.patch(kit.res, kit.ns, name, json.dumps(body), PATCH_TYPES[ptype])
    assert out["metadata"]["annotations"]["conformance/patched"] == ptype
    assert out["metadata"]["uid"] == created["metadata"]["uid"]


@pytest.mark.verbs("create", "get", "delete")
def test_should_delete(kit):
    name = kit.name()
    created = kit.create(name)
    reply = check(kit.api.request("DELETE", kit.path(name)))
    assert reply.code == 200
    body = reply.obj
    if body["kind"] == "Status":
        assert body["status"] == "Success"
        assert body["details"]["name"] == name and body["details"]["uid"] == created["metadata"]["uid"]
    else:
        assert body["kind"] == kit.res.kind and body["metadata"]["uid"] == created["metadata"]["uid"]
    wait_gone(kit, name)
    with pytest.raises(NotFound):
        kit.api.delete(kit.res, kit.ns, name)


@pytest.mark.verbs("create", "get", "delete")
def test_delete_with_a_stale_uid_precondition_is_a_conflict(kit):
    name = kit.name()
    kit.create(name)
    with pytest.raises(Conflict):
        kit.api.delete(kit.res, kit.ns, name, {"preconditions": {"uid": "00000000-0000-0000-0000-000000000000"}})
    assert kit.api.exists(kit.res, kit.ns, name)


# -- dry run ------------------------------------------------------------------------------

@pytest.mark.verbs("create", "get")
def test_dry_run_create_is_not_persisted(kit):
    name = kit.name()
    kit.prereqs(name)
    out = kit.api.create(kit.res, kit.ns, kit.obj(name), params={"dryRun": "All"})
    assert out["metadata"]["name"] == name
    assert not kit.api.exists(kit.res, kit.ns, name)


@pytest.mark.verbs("create")
def test_dry_run_with_an_unknown_value_is_bad_request(kit):
    name = kit.name()
    with pytest.raises(BadRequest):
        kit.api.create(kit.res, kit.ns, kit.obj(name), params={"dryRun": "Everything"})


@pytest.mark.verbs("create", "get", "update", "patch")
def test_dry_run_update_and_patch_change_nothing(kit):
    name = kit.name()
    kit.create(name)
    before = kit.api.get(kit.res, kit.ns, name)
    changed = json.loads(json.dumps(before))
    changed["metadata"].pop("resourceVersion")  # unconditional: a controller may write meanwhile
    changed["metadata"].setdefault("annotations", {})["conformance/dry"] = "put"
    out = kit.api.update(kit.res, kit.ns, changed, params={"dryRun": "All"})
    assert out["metadata"]["annotations"]["conformance/dry"] == "put"
    out = kit.api.patch(kit.res, kit.ns, name, json.dumps({"metadata": {"annotations": {"conformance/dry": "patch"}}}),
                        params={"dryRun": "All"})
    assert out["metadata"]["annotations"]["conformance/dry"] == "patch"
    after = kit.api.get(kit.res, kit.ns, name)
    assert "conformance/dry" not in (after["metadata"].get("annotations") or {})


def test_dry_run_binding_leaves_the_pod_unbound(api, ns, resources):
    pods, bindings = resources["v1/pods"], resources["v1/bindings"]
    api.create(pods, ns, SAMPLES["v1/pods"].make("bound", ns))
    binding = SAMPLES["v1/bindings"].make("bound", ns)
    out = api.create(bindings, ns, binding, params={"dryRun": "All"})
    assert out["status"] == "Success"
    assert not api.get(pods, ns, "bound")["spec"].get("nodeName")
    api.create(bindings, ns, binding)
    assert api.get(pods, ns, "bound")["spec"]["nodeName"] == binding["target"]["name"]


@pytest.mark.verbs("create", "get", "delete")
def test_dry_run_delete_keeps_the_object(kit):
    name = kit.name()
    kit.create(name)
    kit.api.delete(kit.res, kit.ns, name, params={"dryRun": "All"})
    got = kit.api.get(kit.res, kit.ns, name)
    assert not got["metadata"].get("deletionTimestamp")


# -- field validation ----------------------------------------------------------------------

def _with_unknown_fields(obj: dict) -> dict:
    out = json.loads(json.dumps(obj))
    out["metadata"]["unknownMeta"] = "foo"
    out["unknownField"] = "bar"
    return out


@pytest.mark.verbs("create")
@pytest.mark.parametrize("wire", ["json", "yaml"])
def test_should_detect_unknown_metadata_fields_of_a_typed_object(kit, wire):
    ctype, accept = REQUEST_TYPES[wire]
    name = kit.name()
    kit.prereqs(name)
    reply = kit.api.request("POST", kit.path(), _with_unknown_fields(kit.obj(name)), ctype=ctype,
                            params={"fieldValidation": "Strict"})
    with pytest.raises(BadRequest) as e:
        check(reply)
    assert 'strict decoding error: unknown field "metadata.unknownMeta", unknown field "unknownField"' \
        in e.value.message or ('unknown field "metadata.unknownMeta"' in e.value.message
                               and 'unknown field "unknownField"' in e.value.message), e.value.message


@pytest.mark.verbs("create")
def test_should_detect_unknown_and_duplicate_fields_of_a_typed_object(kit):
    name = kit.name()
    kit.prereqs(name)
    body = json.dumps(kit.obj(name))
    # The same key twice in the object's metadata, as the upstream spec sends spec.replicas twice.
    body = body.replace('"metadata": {', f'"metadata": {{"name": "{name}", ', 1)
    with pytest.raises(BadRequest) as e:
        check(kit.api.request("POST", kit.path(), body, params={"fieldValidation": "Strict"}))
    assert 'duplicate field "metadata.name"' in e.value.message


@pytest.mark.verbs("create", "get")
@pytest.mark.parametrize("mode", ["Warn", ""])
def test_field_validation_warn_drops_unknown_fields_with_a_warning(kit, mode):
    name = kit.name()
    kit.prereqs(name)
    params = {"fieldValidation": mode} if mode else {}
    reply = check(kit.api.request("POST", kit.path(), _with_unknown_fields(kit.obj(name)), params=params))
    assert reply.code == 201
    assert 'unknown field "metadata.unknownMeta"' in reply.warnings
    assert 'unknown field "unknownField"' in reply.warnings
    got = kit.api.get(kit.res, kit.ns, name)
    assert "unknownMeta" not in got["metadata"] and "unknownField" not in got


@pytest.mark.verbs("create", "get")
def test_field_validation_ignore_drops_unknown_fields_silently(kit):
    name = kit.name()
    kit.prereqs(name)
    reply = check(kit.api.request("POST", kit.path(), _with_unknown_fields(kit.obj(name)),
                                  params={"fieldValidation": "Ignore"}))
    assert reply.code == 201 and not reply.warnings
    assert "unknownField" not in kit.api.get(kit.res, kit.ns, name)


@pytest.mark.verbs("create", "get", "update")
def test_field_validation_strict_applies_to_updates(kit):
    name = kit.name()
    kit.create(name)
    cur = kit.api.get(kit.res, kit.ns, name)
    with pytest.raises(BadRequest) as e:
        kit.api.update(kit.res, kit.ns, _with_unknown_fields(cur), params={"fieldValidation": "Strict"})
    assert 'unknown field "unknownField"' in e.value.message


@pytest.mark.verbs("create")
def test_field_validation_with_an_unknown_value_is_bad_request(kit):
    with pytest.raises(BadRequest):
        kit.api.create(kit.res, kit.ns, kit.obj(kit.name()), params={"fieldValidation": "Loose"})


# -- names and namespaces ------------------------------------------------------------------

@pytest.mark.verbs("create", "get")
def test_create_with_generate_name(kit):
    if kit.sample.prereqs(kit.name(), kit.ns):
        pytest.fail(f"{kit.res.id}: a sample with prerequisites cannot be created under a generated name")
    obj = kit.obj("unused")
    obj["metadata"].pop("name")
    obj["metadata"]["generateName"] = "gen-"
    out = kit.api.create(kit.res, kit.ns, obj)
    assert out["metadata"]["name"].startswith("gen-") and len(out["metadata"]["name"]) == len("gen-") + 5
    assert out["metadata"]["generateName"] == "gen-"
    assert kit.api.get(kit.res, kit.ns, out["metadata"]["name"])["metadata"]["uid"] == out["metadata"]["uid"]
    if not kit.res.namespaced:
        kit.made.append((kit.res, out["metadata"]["name"]))


@pytest.mark.verbs("create", "get")
def test_create_without_a_name_is_invalid(kit):
    obj = kit.obj("unused")
    obj["metadata"].pop("name")
    reply = kit.api.request("POST", kit.path(), obj)
    assert reply.code == 422 and reply.obj["reason"] == "Invalid", reply.raw[:300]
    assert any(c.get("field") == "metadata.name" for c in reply.obj["details"]["causes"])


@pytest.mark.verbs("create", "get")
def test_create_in_a_missing_namespace_is_not_found(kit):
    if not kit.res.namespaced:
        assert kit.res.path("no-such-namespace") == kit.res.path()  # cluster-scoped: no namespace in the path
        return
    with pytest.raises(NotFound) as e:
        kit.api.create(kit.res, "no-such-namespace", kit.obj(kit.name()))
    assert e.value.details and e.value.details["kind"] == "namespaces"


@pytest.mark.verbs("create", "get", "update")
def test_update_with_a_name_that_does_not_match_the_url_is_bad_request(kit):
    name = kit.name()
    kit.create(name)
    other = kit.obj(kit.name("other"))
    with pytest.raises(BadRequest):
        kit.api.call("PUT", kit.path(name), other)
