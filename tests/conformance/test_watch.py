"""Watch every served resource: from a resourceVersion, through selectors, with bookmarks.

Mirrors upstream's "Watchers" specs (test/e2e/apimachinery/watch.go), written for any
kind instead of ConfigMaps. Controllers may write our objects too (a Deployment's
status, a Namespace's finalization), so the specs check the events they caused, in
order, and that nothing arrives that the selector excludes, rather than an exact list.
"Nothing arrives" is proven without waiting: the excluded change is made before a change
that must arrive, and events are ordered.
"""
from __future__ import annotations

import json
import time

import pytest

from .apiclient import Api, Resource
from .conftest import LABEL, Kit, create_sample
from .samples import SAMPLES


def annotate(kit: Kit, name: str, value: str) -> dict:
    """Patch one annotation; the object after the write."""
    return kit.api.patch(kit.res, kit.ns, name, json.dumps({"metadata": {"annotations": {"mutation": value}}}))


def relabel(kit: Kit, name: str, key: str, value: str) -> dict:
    """Patch one label."""
    return kit.api.patch(kit.res, kit.ns, name, json.dumps({"metadata": {"labels": {key: value}}}))


def list_rv(kit: Kit) -> str:
    """The current resourceVersion, from an empty list."""
    return kit.api.list(kit.res, kit.ns, labelSelector=kit.selector)["metadata"]["resourceVersion"]


def rv(obj: dict) -> int:
    """metadata.resourceVersion as a number."""
    return int(obj["metadata"]["resourceVersion"])


def events_until(w, pred) -> list[dict]:
    """Events up to and including the first one matching ``pred`` (bookmarks dropped)."""
    last = w.next_matching(pred)
    return [e for e in [*w.skipped, last] if e["type"] != "BOOKMARK"]


def is_deleted(name: str):
    """Predicate: the DELETED event of ``name``."""
    return lambda e: e["type"] == "DELETED" and e["object"]["metadata"]["name"] == name


def all_deleted(*names: str):
    """Predicate: true at the DELETED event of the last of ``names`` still to go (a kind with
    a finalizer that a controller removes may delete them in another order)."""
    pending = set(names)

    def pred(e) -> bool:
        if e["type"] == "DELETED":
            pending.discard(e["object"]["metadata"]["name"])
        return not pending
    return pred


@pytest.mark.verbs("create", "patch", "delete", "watch")
def test_should_be_able_to_start_watching_from_a_specific_resource_version(kit):
    name = kit.name()
    kit.create(name)
    first = annotate(kit, name, "1")
    second = annotate(kit, name, "2")
    kit.api.delete(kit.res, kit.ns, name)
    with kit.api.watch(kit.res, kit.ns, resourceVersion=first["metadata"]["resourceVersion"],
                       labelSelector=kit.selector) as w:
        events = events_until(w, is_deleted(name))
    assert all(rv(e["object"]) > rv(first) for e in events), [e["type"] for e in events]
    versions = [rv(e["object"]) for e in events]
    assert versions == sorted(versions)
    modified = [e for e in events if e["type"] == "MODIFIED" and rv(e["object"]) == rv(second)]
    assert modified and modified[0]["object"]["metadata"]["annotations"]["mutation"] == "2"
    assert [e["type"] for e in events if e["type"] == "ADDED"] == []


@pytest.mark.verbs("create", "patch", "delete", "watch", "list")
def test_should_observe_add_update_and_delete_watch_notifications(kit):
    start = list_rv(kit)
    a, b = kit.name("a"), kit.name("b")
    watch_a = kit.api.watch(kit.res, kit.ns, resourceVersion=start, labelSelector=f"{kit.selector},group=a")
    watch_ab = kit.api.watch(kit.res, kit.ns, resourceVersion=start, labelSelector=f"{kit.selector},group in (a,b)")
    with watch_a, watch_ab:
        kit.create(a, labels={"group": "a"})
        kit.create(b, labels={"group": "b"})
        annotate(kit, a, "1")
        kit.api.delete(kit.res, kit.ns, b)
        kit.api.delete(kit.res, kit.ns, a)
        seen_a = events_until(watch_a, is_deleted(a))
        seen_ab = events_until(watch_ab, all_deleted(a, b))
    assert {e["object"]["metadata"]["name"] for e in seen_a} == {a}
    types_a = [e["type"] for e in seen_a]
    assert types_a[0] == "ADDED" and types_a[-1] == "DELETED" and "MODIFIED" in types_a
    assert any(e["type"] == "MODIFIED" and (e["object"]["metadata"].get("annotations") or {}).get("mutation") == "1"
               for e in seen_a)
    by_name = {n: [e["type"] for e in seen_ab if e["object"]["metadata"]["name"] == n] for n in (a, b)}
    assert by_name[a][0] == "ADDED" and by_name[a][-1] == "DELETED"
    assert by_name[b][0] == "ADDED" and by_name[b][-1] == "DELETED"


@pytest.mark.verbs("create", "patch", "watch", "list")
def test_should_observe_an_object_deletion_if_it_stops_meeting_the_requirements_of_the_selector(kit):
    name = kit.name()
    start = list_rv(kit)
    with kit.api.watch(kit.res, kit.ns, resourceVersion=start, labelSelector=f"{kit.selector},watch=on") as w:
        kit.create(name, labels={"watch": "on"})
        annotate(kit, name, "1")
        relabel(kit, name, "watch", "off")
        annotate(kit, name, "2")  # not seen: the object no longer matches
        relabel(kit, name, "watch", "on")
        annotate(kit, name, "3")
        events = events_until(w, lambda e: (e["object"]["metadata"].get("annotations") or {}).get("mutation") == "3")
    types = [e["type"] for e in events]
    assert types[0] == "ADDED"
    gone = types.index("DELETED")
    assert types[gone + 1] == "ADDED", types  # nothing between leaving and re-entering the selection
    assert all(e["object"]["metadata"]["labels"]["watch"] == "on" for i, e in enumerate(events) if i != gone)
    assert events[-1]["type"] == "MODIFIED"


@pytest.mark.verbs("create", "patch", "watch", "list")
def test_should_be_able_to_restart_watching_from_the_last_resource_version_observed_by_the_previous_watch(kit):
    name = kit.name()
    start = list_rv(kit)
    with kit.api.watch(kit.res, kit.ns, resourceVersion=start, labelSelector=kit.selector) as w:
        kit.create(name)
        annotate(kit, name, "1")
        last = w.next_matching(lambda e: (e["object"]["metadata"].get("annotations") or {}).get("mutation") == "1")
    annotate(kit, name, "2")  # while no watch is open
    with kit.api.watch(kit.res, kit.ns, resourceVersion=last["object"]["metadata"]["resourceVersion"],
                       labelSelector=kit.selector) as w:
        ev = w.next_matching(lambda e: e["type"] != "BOOKMARK")
        while (ev["object"]["metadata"].get("annotations") or {}).get("mutation") != "2":
            assert ev["type"] == "MODIFIED"  # a controller's write, never a replay of older ones
            ev = w.next_matching(lambda e: e["type"] != "BOOKMARK")
    assert ev["type"] == "MODIFIED" and rv(ev["object"]) > rv(last["object"])


@pytest.mark.verbs("create", "watch", "list")
def test_watch_list_ends_the_initial_events_with_a_bookmark(kit):
    names = sorted(kit.name(f"w{i}") for i in range(2))
    for n in names:
        kit.create(n)
    start = list_rv(kit)
    with kit.api.watch(kit.res, kit.ns, sendInitialEvents="true", resourceVersionMatch="NotOlderThan",
                       allowWatchBookmarks="true", resourceVersion=start, labelSelector=kit.selector) as w:
        mark = w.next_matching(lambda e: e["type"] == "BOOKMARK")
        initial = w.skipped
    assert sorted(e["object"]["metadata"]["name"] for e in initial) == names
    assert {e["type"] for e in initial} == {"ADDED"}
    assert mark["object"]["kind"] == kit.res.kind and mark["object"]["apiVersion"] == kit.res.api_version
    assert mark["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert int(mark["object"]["metadata"]["resourceVersion"]) >= int(start)


def test_watch_bookmarks_carry_only_a_resource_version(api: Api, resources: dict[str, Resource], ns: str):
    # One watch per resource, all open at once, so the bookmark every resource owes
    # before its watch times out costs one timeout in total.
    opened = []
    for r in resources.values():
        if not r.has("create", "watch", "list"):
            continue
        # One name per resource: v1 and events.k8s.io/v1 Events are one resource, so the
        # same name in both would collide.
        # HPAs are one resource in two versions too: the version keeps their names apart.
        name = f"bm-{ns}"[:60] if not r.namespaced else \
            f"bm-{r.group.replace('.', '-') or 'core'}-{r.plural}-{r.version}"
        name += SAMPLES[r.id].name_suffix
        start = api.list(r, ns, labelSelector=f"{LABEL}={ns}")["metadata"]["resourceVersion"]
        w = api.watch(r, ns, timeout=3, resourceVersion=start, allowWatchBookmarks="true",
                      labelSelector=f"{LABEL}={ns}")
        created = create_sample(api, r, SAMPLES[r.id], ns, name, {LABEL: ns})
        opened.append((r, w, created))
    failures = []
    for r, w, created in opened:
        with w:
            events = list(w)
        marks = [e for e in events if e["type"] == "BOOKMARK"]
        if not any(e["type"] == "ADDED" and e["object"]["metadata"]["uid"] == created["metadata"]["uid"] for e in events):
            failures.append(f"{r.id}: no ADDED event")
        if not marks:
            failures.append(f"{r.id}: no bookmark before the watch timed out")
        for m in marks:
            o = m["object"]
            if o.get("kind") != r.kind or o.get("apiVersion") != r.api_version or set(o["metadata"]) != {"resourceVersion"}:
                failures.append(f"{r.id}: bookmark is not a bare {r.kind}: {o}")
            elif int(o["metadata"]["resourceVersion"]) < rv(created):
                failures.append(f"{r.id}: bookmark older than the last event")
        if not r.namespaced:
            api.request("DELETE", r.path("", created["metadata"]["name"]))
    assert not failures, failures


@pytest.mark.verbs("create", "watch", "list")
def test_watch_from_a_compacted_resource_version_is_410_expired(xkit):
    start = list_rv(xkit)
    for i in range(2):
        xkit.create(xkit.name(f"x{i}"))
    deadline = time.monotonic() + 15
    while True:
        with xkit.api.watch(xkit.res, xkit.ns, timeout=1, resourceVersion=start, labelSelector=xkit.selector) as w:
            first = next(iter(w), None)
        if first and first["type"] == "ERROR":
            break
        assert time.monotonic() < deadline, f"no 410 for resourceVersion {start}; first event {first}"
        time.sleep(0.1)
    status = first["object"]
    assert status["kind"] == "Status" and status["code"] == 410 and status["reason"] == "Expired"
    assert status["message"].startswith("too old resource version:")

