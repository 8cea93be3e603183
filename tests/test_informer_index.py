"""Informer indexes (Informer.add_index / by_index) and the ReplicaSet controller's index
by controller, against the in-memory fake API's watch."""
from __future__ import annotations

from kubelite.api.resources import PODS
from kubelite.client.informer import Informer
from kubelite.controllers import replicaset_util as rsutil
from tests.fakeapi import FakeAPI, until


def pod(name: str, owner_uid: str | None = None, ns: str = "default") -> dict:
    md: dict = {"name": name, "namespace": ns}
    if owner_uid is not None:
        md["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs",
                                  "uid": owner_uid, "controller": True}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md,
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}


def names(objs: list[dict]) -> list[str]:
    return sorted(o["metadata"]["name"] for o in objs)


async def test_informer_index_follows_adds_updates_and_deletes():
    api = FakeAPI()
    api.create(PODS, pod("early", "u1"), "default")
    inf = Informer(api, PODS)
    inf.start()
    try:
        await until(lambda: inf.get("default/early") is not None, what="the first list")
        # An index added after the first list is built from the cache.
        inf.add_index(rsutil.CONTROLLER_INDEX, rsutil.controller_index_values)
        assert names(inf.by_index(rsutil.CONTROLLER_INDEX, "default/u1")) == ["early"]
        api.create(PODS, pod("orphan"), "default")
        api.create(PODS, pod("other", "u2"), "default")
        api.create(PODS, pod("elsewhere", "u1", ns="kube-system"), "kube-system")
        await until(lambda: inf.get("kube-system/elsewhere") is not None, what="the new pods")
        assert names(inf.by_index(rsutil.CONTROLLER_INDEX, "default/u1")) == ["early"]
        assert names(inf.by_index(rsutil.CONTROLLER_INDEX, "default/")) == ["orphan"]
        assert names(inf.by_index(rsutil.CONTROLLER_INDEX, "kube-system/u1")) == ["elsewhere"]
        assert names(rsutil.controlled_and_orphans(inf, "default", "u1")) == ["early", "orphan"]
        # Adoption moves a pod from the orphans to its controller's bucket.
        api.patch(PODS, "orphan", {"metadata": {"ownerReferences": pod("x", "u1")["metadata"]["ownerReferences"]}},
                  "default")
        await until(lambda: len(inf.by_index(rsutil.CONTROLLER_INDEX, "default/u1")) == 2, what="the adoption")
        assert inf.by_index(rsutil.CONTROLLER_INDEX, "default/") == []
        api.delete(PODS, "early", "default")
        await until(lambda: inf.get("default/early") is None, what="the deletion")
        assert names(inf.by_index(rsutil.CONTROLLER_INDEX, "default/u1")) == ["orphan"]
        # A second request for the same index (another controller sharing the informer) is a no-op.
        inf.add_index(rsutil.CONTROLLER_INDEX, rsutil.controller_index_values)
        assert names(inf.by_index(rsutil.CONTROLLER_INDEX, "default/u2")) == ["other"]
    finally:
        await inf.stop()
