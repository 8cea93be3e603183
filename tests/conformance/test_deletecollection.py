"""DELETE on a collection, narrowed by label and field selectors, on every resource that
advertises deletecollection (upstream's per-kind "should delete a collection of …" specs)."""
from __future__ import annotations

import time

import pytest

from .apiclient import check
from .conftest import Kit


def wait_names(kit: Kit, want: list[str]) -> None:
    """Poll until this test's objects are exactly ``want`` (finalizers may take a moment)."""
    deadline = time.monotonic() + 30
    while True:
        names = sorted(kit.list_names())
        if names == sorted(want):
            return
        if time.monotonic() >= deadline:
            left = {n: {k: (kit.api.get(kit.res, kit.ns, n).get("metadata") or {}).get(k)
                        for k in ("finalizers", "deletionTimestamp")} for n in names if n not in want}
            raise AssertionError(f"objects are {names}, want {sorted(want)}; left over: {left}")
        time.sleep(0.05)


@pytest.mark.verbs("create", "list", "deletecollection")
def test_should_delete_a_collection(kit):
    a1, a2, b = kit.name("a1"), kit.name("a2"), kit.name("b")
    kit.create(a1, labels={"group": "a"})
    kit.create(a2, labels={"group": "a"})
    kit.create(b, labels={"group": "b"})
    reply = check(kit.api.request("DELETE", kit.path(), params={"labelSelector": f"{kit.selector},group=a"}))
    body = reply.obj
    assert reply.code == 200 and body["kind"] == f"{kit.res.kind}List" and body["apiVersion"] == kit.res.api_version
    assert sorted(i["metadata"]["name"] for i in body["items"]) == [a1, a2]
    wait_names(kit, [b])
    check(kit.api.request("DELETE", kit.path(), params={"labelSelector": kit.selector,
                                                        "fieldSelector": f"metadata.name={b}"}))
    wait_names(kit, [])


@pytest.mark.verbs("create", "list", "deletecollection")
def test_deletecollection_with_dry_run_deletes_nothing(kit):
    names = [kit.name(f"d{i}") for i in range(2)]
    for n in names:
        kit.create(n)
    body = check(kit.api.request("DELETE", kit.path(), params={"labelSelector": kit.selector, "dryRun": "All"})).obj
    assert sorted(i["metadata"]["name"] for i in body["items"]) == sorted(names)
    assert sorted(kit.list_names()) == sorted(names)
    for i in kit.api.list(kit.res, kit.ns, labelSelector=kit.selector)["items"]:
        assert not i["metadata"].get("deletionTimestamp")
