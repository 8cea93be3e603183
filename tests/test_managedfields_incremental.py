"""managedFields computed incrementally (issue 16): unchanged subtrees are skipped and field
sets are remembered, with the same result as the full walk."""
import copy

from kubelite.api.patch import fieldset as fs
from kubelite.api.patch import update_managed_fields
from kubelite.api.patch.managedfields import decode_fields, encode_fields
from kubelite.api.patch.patchmeta import schema_for

POD_SCHEMA = schema_for("Pod", "v1")


def _pod() -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "d", "uid": "u1", "labels": {"app": "x"}},
            "spec": {"containers": [{"name": "app", "image": "img:1",
                                     "ports": [{"containerPort": 80, "protocol": "TCP"}]}],
                     "terminationGracePeriodSeconds": 30},
            "status": {"phase": "Pending"}}


def _full_compare(monkeypatch, lhs: dict, rhs: dict, schema=POD_SCHEMA) -> fs.Comparison:
    """compare() with the unchanged-subtree shortcut turned off: the reference walk."""
    with monkeypatch.context() as m:
        m.setattr(fs, "_unchanged", lambda a, b: False)
        return fs.compare(lhs, rhs, schema)


def test_compare_skips_nothing_that_changed(monkeypatch):
    old = _pod()
    new = copy.deepcopy(old)
    new["status"] = {"phase": "Running", "podIP": "127.0.0.5"}
    new["spec"]["containers"][0]["image"] = "img:2"
    assert fs.compare(old, new, POD_SCHEMA) == _full_compare(monkeypatch, old, new)
    same = copy.deepcopy(old)
    assert fs.compare(old, same, POD_SCHEMA) == fs.Comparison(set(), set(), set())


def test_compare_tells_a_bool_from_an_equal_number(monkeypatch):
    # Python's == takes True for 1: the shortcut must not hide this change.
    old = {"spec": {"x": {"a": 1}}}
    new = {"spec": {"x": {"a": True}}}
    got = fs.compare(old, new, None)
    assert (("f", "spec"), ("f", "x"), ("f", "a")) in got.modified
    assert got == _full_compare(monkeypatch, old, new, None)


def test_remembered_field_sets_round_trip_as_the_uncached_codec():
    fields = fs.to_field_set(_pod()["spec"], POD_SCHEMA.fields["spec"])
    raw = fs.encode_fields(fields)
    assert encode_fields(set(fields)) == raw
    assert encode_fields(set(fields)) == raw  # from the cache
    assert decode_fields(raw) == fs.decode_fields(raw)
    got = decode_fields(raw)
    got.clear()  # a caller's set is its own: the cached one stays whole
    assert decode_fields(raw) == fs.decode_fields(raw)


def test_repeated_status_updates_keep_every_managers_fields():
    created = _pod()
    update_managed_fields(None, created, manager="kube-controller-manager", api_version="v1",
                          now="2026-01-01T00:00:00Z")
    first = copy.deepcopy(created)
    first["status"] = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    update_managed_fields(created, first, manager="kubelet", api_version="v1", now="2026-01-01T00:00:01Z",
                          subresource="status")
    second = copy.deepcopy(first)
    second["status"]["conditions"][0]["status"] = "False"
    update_managed_fields(first, second, manager="kubelet", api_version="v1", now="2026-01-01T00:00:02Z",
                          subresource="status")
    entries = {e["manager"]: e for e in second["metadata"]["managedFields"]}
    assert set(entries) == {"kube-controller-manager", "kubelet"}
    ctrl, was = entries["kube-controller-manager"]["fieldsV1"], created["metadata"]["managedFields"][0]["fieldsV1"]
    # The kubelet took status.phase; the spec and metadata the controller wrote stay its own.
    assert "f:status" in was and "f:status" not in ctrl
    assert ctrl["f:spec"] == was["f:spec"] and ctrl["f:metadata"] == was["f:metadata"]
    assert entries["kubelet"]["time"] == "2026-01-01T00:00:02Z"
    assert entries["kubelet"]["subresource"] == "status"
    assert "f:conditions" in entries["kubelet"]["fieldsV1"]["f:status"]


def test_a_create_owns_what_the_full_walk_gives(monkeypatch):
    new = _pod()
    new["spec"]["containers"].append({"name": "side", "image": "img:s", "args": ["a", "b"],
                                      "env": [{"name": "E", "value": "1"}]})
    new["spec"]["tolerations"] = []
    new["metadata"]["annotations"] = {}
    zero = {"apiVersion": "v1", "kind": "Pod", "metadata": {}}

    got = fs.compare(zero, new, POD_SCHEMA)
    with monkeypatch.context() as m:
        m.setattr(fs, "_added", lambda path, rhs, node, added: _general(path, rhs, node, added))
        want = fs.compare(zero, new, POD_SCHEMA)
    assert got == want
    assert (("f", "spec"), ("f", "containers"), ("k", (("name", '"side"'),)), ("f", "args")) in got.added
    assert not got.modified and not got.removed


def _general(path, rhs, node, added):
    """The general compare walk with a missing left side (the shortcut's reference)."""
    kinds = {type(rhs)} if isinstance(rhs, (dict, list)) else set()
    sample = rhs if rhs is not None else fs.MISSING
    if fs.is_atomic(node, sample) or not kinds or fs._empty(rhs):
        added.add(path)
        return
    if dict in kinds:
        for k, v in rhs.items():
            _general(path + (fs.field(k),), v, fs.child(node, k), added)
    else:
        for pe, item in fs.index_items(node, rhs).items():
            _general(path + (pe,), item, fs.item_node(node), added)
    added.add(path)
