"""List chunking (limit/continue) on every listable resource.

Mirrors upstream's "Servers with support for API chunking" (chunking.go), which pages
through 400 PodTemplates; here a handful of objects per kind is enough to page, and the
expiry spec runs on a server that compacts its history every 0.2 s instead of waiting
for etcd's five-minute compaction.
"""
from __future__ import annotations

import time

import pytest

from kubelite.client.errors import BadRequest, Gone

from .apiclient import TABLE_V1, check
from .conftest import Kit

COUNT = 5


def make_many(kit: Kit, count: int = COUNT) -> list[str]:
    """Create ``count`` objects named so that their store order is their name order."""
    names = [kit.name(f"c{i:02d}") for i in range(count)]
    for n in names:
        kit.create(n)
    return sorted(names)


@pytest.mark.verbs("create", "list")
def test_should_return_chunks_of_results_for_list_calls(kit):
    names = make_many(kit)
    for limit in (1, 2, 4):
        found: list[str] = []
        first_rv, token = "", ""
        while True:
            params = {"labelSelector": kit.selector, "limit": limit, **({"continue": token} if token else {})}
            page = kit.api.list(kit.res, kit.ns, **params)
            assert len(page["items"]) <= limit
            first_rv = first_rv or page["metadata"]["resourceVersion"]
            assert page["metadata"]["resourceVersion"] == first_rv  # every page is the first page's snapshot
            # With a selector the server cannot know how many remain (upstream leaves it out).
            assert "remainingItemCount" not in page["metadata"]
            found += [i["metadata"]["name"] for i in page["items"]]
            token = page["metadata"].get("continue", "")
            if not token:
                break
        assert found == names
    everything = kit.api.list(kit.res, kit.ns, labelSelector=kit.selector, limit=COUNT + 1)
    assert [i["metadata"]["name"] for i in everything["items"]] == names
    assert "continue" not in everything["metadata"]


@pytest.mark.verbs("create", "list")
def test_remaining_item_count_adds_up_without_a_selector(kit):
    make_many(kit, 3)
    page = kit.api.list(kit.res, kit.ns, limit=1)
    total = len(page["items"])
    remaining = page["metadata"].get("remainingItemCount")
    assert page["metadata"].get("continue") and remaining is not None and remaining >= 2
    while page["metadata"].get("continue"):
        page = kit.api.list(kit.res, kit.ns, limit=1, **{"continue": page["metadata"]["continue"]})
        total += len(page["items"])
        if page["metadata"].get("continue"):
            assert page["metadata"]["remainingItemCount"] + total == remaining + 1
        else:
            assert "remainingItemCount" not in page["metadata"]
    assert total == remaining + 1


@pytest.mark.verbs("create", "list")
def test_should_return_chunks_of_table_results_for_list_calls(kit):
    names = make_many(kit, 3)
    first = check(kit.api.request("GET", kit.path(), accept=TABLE_V1,
                                  params={"labelSelector": kit.selector, "limit": 2})).obj
    assert first["kind"] == "Table"
    assert first["metadata"]["resourceVersion"] and first["metadata"]["continue"]
    col = [c["name"] for c in first["columnDefinitions"]].index("Name")
    assert [r["cells"][col] for r in first["rows"]] == names[:2]
    rest = check(kit.api.request("GET", kit.path(), accept=TABLE_V1,
                                 params={"labelSelector": kit.selector, "continue": first["metadata"]["continue"]})).obj
    assert [r["cells"][col] for r in rest["rows"]] == names[2:]


@pytest.mark.verbs("list")
def test_a_continue_token_that_is_not_ours_is_bad_request(kit):
    with pytest.raises(BadRequest):
        kit.api.list(kit.res, kit.ns, limit=1, **{"continue": "not-a-token"})


@pytest.mark.verbs("create", "list")
def test_should_support_continue_listing_from_the_last_key_if_the_original_version_has_been_compacted_away(xkit):
    names = make_many(xkit, 4)
    first = xkit.api.list(xkit.res, xkit.ns, labelSelector=xkit.selector, limit=2)
    assert [i["metadata"]["name"] for i in first["items"]] == names[:2]
    token = first["metadata"]["continue"]
    late = xkit.name("c99")  # made after the first page: the inconsistent rest shows it
    xkit.create(late)
    # A second write, so that compaction passes the first page's revision itself.
    xkit.api.patch(xkit.res, xkit.ns, late, '{"metadata": {"annotations": {"written": "again"}}}')
    deadline = time.monotonic() + 15
    while True:
        try:
            xkit.api.list(xkit.res, xkit.ns, labelSelector=xkit.selector, limit=2, **{"continue": token})
        except Gone as e:
            status = e.reply.obj  # type: ignore[attr-defined]
            break
        assert time.monotonic() < deadline, "the continue token never expired"
        time.sleep(0.1)
    assert status["reason"] == "Expired" and status["code"] == 410
    inconsistent = status["metadata"].get("continue")
    assert inconsistent, f"a 410 for a paged list carries a continue token to go on with: {status}"
    rest = xkit.api.list(xkit.res, xkit.ns, labelSelector=xkit.selector, limit=2, **{"continue": inconsistent})
    assert rest["metadata"]["resourceVersion"] != first["metadata"]["resourceVersion"]
    got = [i["metadata"]["name"] for i in rest["items"]]
    while rest["metadata"].get("continue"):
        rest = xkit.api.list(xkit.res, xkit.ns, labelSelector=xkit.selector, limit=2,
                             **{"continue": rest["metadata"]["continue"]})
        got += [i["metadata"]["name"] for i in rest["items"]]
    assert got == names[2:] + [late]
