"""RFC 6902 JSON patch and RFC 7386 merge patch, including what kubectl sends."""
import pytest

from kubelite.api.errors import BadRequest, Invalid
from kubelite.api.patch import PATCH_TYPES, json_merge_patch, json_patch


def test_patch_types_map_content_types():
    assert PATCH_TYPES["application/strategic-merge-patch+json"] == "strategic"
    assert set(PATCH_TYPES.values()) == {"json", "merge", "strategic", "apply"}


# --- RFC 7386 appendix A ----------------------------------------------------------------
@pytest.mark.parametrize("original,patch,result", [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
])
def test_merge_patch_rfc7386_examples(original, patch, result):
    assert json_merge_patch(original, patch) == result


def test_merge_patch_does_not_mutate_input():
    original = {"metadata": {"labels": {"a": "1"}}}
    json_merge_patch(original, {"metadata": {"labels": {"a": None}}})
    assert original == {"metadata": {"labels": {"a": "1"}}}


def test_kubectl_label_and_unlabel():
    pod = {"kind": "Pod", "metadata": {"name": "x", "labels": {"app": "web", "foo": "bar"}}}
    added = json_merge_patch(pod, {"metadata": {"labels": {"tier": "fe"}}})
    assert added["metadata"]["labels"] == {"app": "web", "foo": "bar", "tier": "fe"}
    removed = json_merge_patch(added, {"metadata": {"labels": {"foo": None}}})
    assert removed["metadata"]["labels"] == {"app": "web", "tier": "fe"}


def test_kubectl_scale_merge_patch():
    scale = {"kind": "Scale", "spec": {"replicas": 1}, "status": {"replicas": 1}}
    assert json_merge_patch(scale, {"spec": {"replicas": 3}})["spec"] == {"replicas": 3}


def test_merge_patch_non_object_result_is_invalid():
    with pytest.raises(Invalid) as e:
        json_merge_patch({"a": 1}, [1, 2])
    assert e.value.reason == "Invalid"
    assert e.value.details["causes"][0]["field"] == "patch"


def test_merge_patch_null_document_is_bad_request():
    with pytest.raises(BadRequest):
        json_merge_patch({"a": 1}, None)


# --- RFC 6902 appendix A ----------------------------------------------------------------
@pytest.mark.parametrize("doc,ops,result", [
    ({"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux"}], {"foo": "bar", "baz": "qux"}),
    ({"foo": ["bar", "baz"]}, [{"op": "add", "path": "/foo/1", "value": "qux"}],
     {"foo": ["bar", "qux", "baz"]}),
    ({"baz": "qux", "foo": "bar"}, [{"op": "remove", "path": "/baz"}], {"foo": "bar"}),
    ({"foo": ["bar", "qux", "baz"]}, [{"op": "remove", "path": "/foo/1"}], {"foo": ["bar", "baz"]}),
    ({"baz": "qux", "foo": "bar"}, [{"op": "replace", "path": "/baz", "value": "boo"}],
     {"baz": "boo", "foo": "bar"}),
    ({"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
     [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
     {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}}),
    ({"foo": ["all", "grass", "cows", "eat"]}, [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
     {"foo": ["all", "cows", "eat", "grass"]}),
    ({"baz": "qux", "foo": ["a", 2, "c"]},
     [{"op": "test", "path": "/baz", "value": "qux"}, {"op": "test", "path": "/foo/1", "value": 2}],
     {"baz": "qux", "foo": ["a", 2, "c"]}),
    ({"foo": "bar"}, [{"op": "add", "path": "/child", "value": {"grandchild": {}}}],
     {"foo": "bar", "child": {"grandchild": {}}}),
    ({"foo": ["bar"]}, [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}],
     {"foo": ["bar", ["abc", "def"]]}),
    ({"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": 10}], {"/": 9, "~1": 10}),
    ({"a": {"b": 1}}, [{"op": "copy", "from": "/a", "path": "/c"}], {"a": {"b": 1}, "c": {"b": 1}}),
])
def test_json_patch_rfc6902_examples(doc, ops, result):
    assert json_patch(doc, ops) == result


@pytest.mark.parametrize("doc,ops", [
    ({"baz": "qux"}, [{"op": "test", "path": "/baz", "value": "bar"}]),
    ({"foo": "bar"}, [{"op": "add", "path": "/baz/bat", "value": "qux"}]),
    ({"foo": "bar"}, [{"op": "replace", "path": "/nothere", "value": 1}]),
    ({"foo": "bar"}, [{"op": "remove", "path": "/nothere"}]),
    ({"foo": [1]}, [{"op": "add", "path": "/foo/5", "value": 1}]),
    ({"foo": 1}, [{"op": "frobnicate", "path": "/foo"}]),
    ({"foo": 1}, [{"op": "test", "path": "/foo", "value": "1"}]),
])
def test_json_patch_failures_are_bare_422(doc, ops):
    with pytest.raises(Invalid) as e:
        json_patch(doc, ops)
    assert e.value.status == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "the server rejected our request due to an error in our request",
        "reason": "Invalid", "details": {}, "code": 422}


def test_json_patch_malformed_document_is_400():
    with pytest.raises(BadRequest) as e:
        json_patch({}, {"op": "add"})
    assert "cannot unmarshal object" in e.value.message


def test_json_patch_escaped_annotation_key():
    dep = {"spec": {"template": {"metadata": {"annotations": {}}}}}
    out = json_patch(dep, [{"op": "add",
                            "path": "/spec/template/metadata/annotations/kubectl.kubernetes.io~1restartedAt",
                            "value": "2024-01-01T00:00:00Z"}])
    assert out["spec"]["template"]["metadata"]["annotations"] == {
        "kubectl.kubernetes.io/restartedAt": "2024-01-01T00:00:00Z"}


def test_json_patch_leaves_input_untouched_on_failure():
    doc = {"a": 1}
    with pytest.raises(Invalid):
        json_patch(doc, [{"op": "add", "path": "/b", "value": 2}, {"op": "test", "path": "/a", "value": 5}])
    assert doc == {"a": 1}


def test_rollout_undo_json_patch():
    """The exact patch kubectl rollout undo sends (captured from kubectl 1.32)."""
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "kubernetes-bootcamp", "annotations": {"deployment.kubernetes.io/revision": "4"}},
        "spec": {"replicas": 4, "template": {
            "metadata": {"labels": {"app": "kubernetes-bootcamp"}},
            "spec": {"containers": [{"name": "kubernetes-bootcamp", "image": "jocatalin/kubernetes-bootcamp:v10"}]}}},
    }
    template = {"metadata": {"creationTimestamp": None, "labels": {"app": "kubernetes-bootcamp"}},
                "spec": {"containers": [{"name": "kubernetes-bootcamp", "image": "jocatalin/kubernetes-bootcamp:v2",
                                         "resources": {}, "imagePullPolicy": "IfNotPresent"}],
                         "restartPolicy": "Always", "dnsPolicy": "ClusterFirst"}}
    ops = [{"op": "replace", "path": "/spec/template", "value": template},
           {"op": "replace", "path": "/metadata/annotations", "value": {"deployment.kubernetes.io/revision": "5"}}]
    out = json_patch(deployment, ops)
    assert out["spec"]["template"] == template
    assert out["metadata"]["annotations"] == {"deployment.kubernetes.io/revision": "5"}
    assert out["spec"]["replicas"] == 4


def test_rollout_undo_without_annotations_fails_as_upstream():
    deployment = {"metadata": {"name": "x"}, "spec": {"template": {}}}
    with pytest.raises(Invalid):
        json_patch(deployment, [{"op": "replace", "path": "/metadata/annotations", "value": {}}])
