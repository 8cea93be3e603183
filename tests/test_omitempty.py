"""Which `false` booleans the API server drops before storing (upstream's omitempty)."""
from __future__ import annotations

from kubelite.apiserver.omitempty import drop_false_booleans


def test_nested_non_pointer_false_booleans_are_dropped_and_pointers_kept():
    pod = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "r", "uid": "u",
             "controller": False, "blockOwnerDeletion": False}]},
        "spec": {
            "hostNetwork": False, "enableServiceLinks": False,
            "containers": [{"name": "c", "image": "i", "stdin": False, "tty": True,
                            "volumeMounts": [{"name": "v", "mountPath": "/v", "readOnly": False}]}],
            "initContainers": [{"name": "i", "image": "i", "stdinOnce": False}],
        },
    }
    drop_false_booleans(pod)
    spec = pod["spec"]
    assert "hostNetwork" not in spec
    assert spec["enableServiceLinks"] is False  # a *bool upstream: an explicit false stays
    assert spec["containers"][0] == {"name": "c", "image": "i", "tty": True,
                                     "volumeMounts": [{"name": "v", "mountPath": "/v"}]}
    assert spec["initContainers"][0] == {"name": "i", "image": "i"}
    ref = pod["metadata"]["ownerReferences"][0]
    assert ref["controller"] is False and ref["blockOwnerDeletion"] is False


def test_objects_of_unknown_kinds_and_wrong_shapes_are_left_alone():
    odd = {"apiVersion": "v1", "kind": "Pod", "spec": {"containers": "not-a-list", "hostPID": False}}
    drop_false_booleans(odd)
    assert odd == {"apiVersion": "v1", "kind": "Pod", "spec": {"containers": "not-a-list"}}
    other = {"apiVersion": "example.com/v1", "kind": "Thing", "spec": {"flag": False}}
    drop_false_booleans(other)
    assert other["spec"]["flag"] is False
