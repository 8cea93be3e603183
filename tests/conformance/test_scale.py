"""The scale subresource of every scalable resource (upstream's "should have a working
scale subresource" for Deployments, ReplicaSets and ReplicationControllers)."""
from __future__ import annotations

import json

import pytest

from kubelite.client.errors import Conflict

from .apiclient import MERGE_PATCH, retry_on_conflict


@pytest.mark.verbs("create", "get")
@pytest.mark.subresource("scale", "get", "update", "patch")
def test_should_have_a_working_scale_subresource(kit):
    name = kit.name()
    created = kit.create(name)
    scale = kit.api.call("GET", kit.path(name, "scale"))
    assert scale["kind"] == "Scale" and scale["apiVersion"] == "autoscaling/v1"
    assert scale["metadata"]["name"] == name and scale["metadata"]["uid"] == created["metadata"]["uid"]
    assert scale["spec"].get("replicas", 0) == created["spec"].get("replicas", 0)
    assert "replicas" in scale["status"]

    def put() -> tuple[dict, dict]:
        cur = kit.api.call("GET", kit.path(name, "scale"))
        cur["spec"]["replicas"] = 2
        return cur, kit.api.call("PUT", kit.path(name, "scale"), cur)
    scale, out = retry_on_conflict(put)  # a controller may write the object in between
    assert out["spec"]["replicas"] == 2
    assert kit.api.get(kit.res, kit.ns, name)["spec"]["replicas"] == 2
    # The Scale's resourceVersion is the object's: a stale one is a conflict.
    with pytest.raises(Conflict):
        kit.api.call("PUT", kit.path(name, "scale"), scale)
    out = kit.api.patch(kit.res, kit.ns, name, json.dumps({"spec": {"replicas": 0}}), MERGE_PATCH, sub="scale")
    assert out["kind"] == "Scale" and out["spec"].get("replicas", 0) == 0
    assert kit.api.get(kit.res, kit.ns, name)["spec"]["replicas"] == 0
