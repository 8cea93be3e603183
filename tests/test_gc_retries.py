"""The garbage collector on a busy server, against the fake API: a 429 (or 5xx, or a
dropped connection) on its GET or DELETE is retried inside the sync instead of failing
it, so a few refusals in a row do not grow the key's queue back-off to minutes while
the pods of a deleted ReplicaSet stay."""
from __future__ import annotations

from typing import Any

from fakeapi import FakeAPI

from kubelite.api import meta
from kubelite.api.resources import PODS, REPLICASETS, ResourceInfo
from kubelite.client.errors import ServiceUnavailable, TooManyRequests
from kubelite.controllers.garbagecollector import GarbageCollectorController

Obj = dict[str, Any]


class BusyAPI(FakeAPI):
    """Pod GETs and DELETEs fail with the queued errors first."""

    def __init__(self) -> None:
        super().__init__()
        self.errors: dict[str, list[Exception]] = {"get": [], "delete": []}

    def get_obj(self, plural: str, namespace: str, name: str) -> Obj:
        if plural == "pods" and self.errors["get"]:
            raise self.errors["get"].pop(0)
        return super().get_obj(plural, namespace, name)

    def delete(self, info: ResourceInfo, name: str, namespace: str) -> Obj:
        if info.plural == "pods" and self.errors["delete"]:
            raise self.errors["delete"].pop(0)
        return super().delete(info, name, namespace)


def busy() -> TooManyRequests:
    return TooManyRequests(429, "TooManyRequests", "Too many requests, please try again later.")


async def test_pods_of_a_deleted_replicaset_are_collected_through_429s() -> None:
    api = BusyAPI()
    gc = GarbageCollectorController(api.client, api.factory, resources=[REPLICASETS, PODS])
    rs = api.create(REPLICASETS, {"metadata": {"name": "web"}, "spec": {"replicas": 1}}, "default")
    ref = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": meta.uid(rs), "controller": True,
           "blockOwnerDeletion": True}
    pod = api.create(PODS, {"metadata": {"name": "web-1", "ownerReferences": [ref]},
                            "spec": {"containers": [{"name": "c", "image": "x"}]}}, "default")
    api.delete(REPLICASETS, "web", "default")
    assert len(gc.attempt_to_delete) == 1  # the dependent of the deleted owner
    api.errors["get"] = [busy(), ServiceUnavailable(503, "ServiceUnavailable", "busy")]
    api.errors["delete"] = [busy(), ConnectionResetError("reset by peer"), busy()]
    await gc.sync_delete(meta.uid(pod))  # one sync, no failure for the queue to back off
    assert api.items("pods") == []
    assert api.errors == {"get": [], "delete": []}
