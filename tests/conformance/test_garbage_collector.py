"""The garbage collector's three propagation policies, with every resource as the owner.

Mirrors upstream's "Garbage collector" specs (garbage_collector.go), which use
ReplicationControllers and their pods: here the owner is an object of each served kind
and its dependents are a ConfigMap and an object of the same kind. Kinds the collector
ignores (events, as upstream) are deleted at once whatever the policy. Foreground deletion is made observable
without timing: the dependents carry a finalizer of ours, so the owner must wait for them
until the test lets them go.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from .apiclient import Api, Resource
from .conftest import Kit

HOLD = "conformance.kubelite.io/hold"

Dep = tuple[Resource, str, str]  # resource, namespace, name


def ref(owner: dict) -> dict:
    """A controller ownerReference that blocks the owner's foreground deletion."""
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}


def make_dependents(kit: Kit, resources: dict[str, Resource], owner: dict, hold: bool = False) -> list[Dep]:
    """A ConfigMap and (when collectable) a same-kind object owned by ``owner``."""
    md: dict = {"ownerReferences": [ref(owner)], **({"finalizers": [HOLD]} if hold else {})}
    cms = resources["v1/configmaps"]
    cm = kit.name("dep-cm")
    kit.api.create(cms, kit.ns, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": cm, **md}})
    deps: list[Dep] = [(cms, kit.ns, cm)]
    if kit.sample.garbage_collected:
        same = kit.name("dep")
        kit.create(same, metadata=md)
        deps.append((kit.res, kit.ns, same))
    return deps


def poll(cond: Callable[[], bool], what: str, timeout: float = 30) -> None:
    """Wait for a condition (the collector works asynchronously)."""
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def get_or_none(api: Api, dep: Dep) -> dict | None:
    """The object, or None when it is gone."""
    r, ns, name = dep
    return api.get_or_none(r, ns, name)


def release(api: Api, dep: Dep) -> None:
    """Drop our finalizer from a dependent (the object may be gone already)."""
    r, ns, name = dep
    api.request("PATCH", r.path(ns, name), json.dumps({"metadata": {"finalizers": None}}),
                ctype="application/merge-patch+json")


@pytest.mark.verbs("create", "get", "delete")
@pytest.mark.garbage_collected(True)
def test_should_delete_dependents_when_not_orphaning(kit, resources):
    owner = kit.create(kit.name("owner"))
    deps = make_dependents(kit, resources, owner)
    kit.api.delete(kit.res, kit.ns, owner["metadata"]["name"], {"propagationPolicy": "Background"})
    poll(lambda: not kit.api.exists(kit.res, kit.ns, owner["metadata"]["name"]), "the owner to go")
    for dep in deps:
        poll(lambda dep=dep: get_or_none(kit.api, dep) is None, f"dependent {dep[0].id} {dep[2]} to be collected")


@pytest.mark.verbs("create", "get", "delete")
@pytest.mark.garbage_collected(True)
def test_should_orphan_dependents_if_delete_options_say_so(kit, resources):
    owner = kit.create(kit.name("owner"))
    deps = make_dependents(kit, resources, owner)
    kit.api.delete(kit.res, kit.ns, owner["metadata"]["name"], {"propagationPolicy": "Orphan"})
    # The collector frees the dependents before it drops the owner's orphan finalizer.
    poll(lambda: not kit.api.exists(kit.res, kit.ns, owner["metadata"]["name"]), "the owner to go")
    for dep in deps:
        obj = get_or_none(kit.api, dep)
        assert obj is not None, f"orphaned dependent {dep[0].id} {dep[2]} was deleted"
        uids = [r["uid"] for r in obj["metadata"].get("ownerReferences") or []]
        assert owner["metadata"]["uid"] not in uids


@pytest.mark.verbs("create", "get", "delete", "patch")
@pytest.mark.garbage_collected(True)
def test_should_keep_the_owner_around_until_all_its_dependents_are_deleted_if_the_deleteOptions_says_so(kit, resources):
    owner = kit.create(kit.name("owner"))
    name = owner["metadata"]["name"]
    deps = make_dependents(kit, resources, owner, hold=True)
    try:
        kit.api.delete(kit.res, kit.ns, name, {"propagationPolicy": "Foreground"})
        # The collector deletes the dependents; our finalizer keeps them (and so the owner).
        for dep in deps:
            poll(lambda dep=dep: bool((get_or_none(kit.api, dep) or {}).get("metadata", {}).get("deletionTimestamp")),
                 f"dependent {dep[0].id} {dep[2]} to be deleted in the foreground")
        waiting = kit.api.get(kit.res, kit.ns, name)
        assert waiting["metadata"].get("deletionTimestamp")
        assert "foregroundDeletion" in waiting["metadata"].get("finalizers", [])
    finally:
        for dep in deps:
            release(kit.api, dep)
    for dep in deps:
        poll(lambda dep=dep: get_or_none(kit.api, dep) is None, f"dependent {dep[0].id} {dep[2]} to go")
    poll(lambda: not kit.api.exists(kit.res, kit.ns, name), "the owner to go once its dependents are gone")


@pytest.mark.verbs("create", "get", "delete")
@pytest.mark.garbage_collected(False)
@pytest.mark.parametrize("policy", ["Orphan", "Foreground", "Background"])
def test_a_kind_the_collector_ignores_is_deleted_at_once_whatever_the_policy(kit, policy):
    name = kit.name()
    kit.create(name)
    kit.api.delete(kit.res, kit.ns, name, {"propagationPolicy": policy})
    assert not kit.api.exists(kit.res, kit.ns, name)
