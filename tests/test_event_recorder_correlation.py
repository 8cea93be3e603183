"""The event recorder correlates Events as client-go's recorder does: repeats are counted on
one Event, many similar messages about one object are combined into one, and one source
may write only so many Events about one object (25 at once, then one per 5 minutes)."""
from __future__ import annotations

import asyncio
from typing import Any

from kubelite.client import events
from kubelite.client.events import EventRecorder


class StoredEvents:
    """An events resource keeping what was created and merge-patched, by name."""

    def __init__(self) -> None:
        self.stored: dict[str, dict] = {}
        self.creates = 0
        self.patches: list[int] = []  # the count each patch carried
        self.patch_gate: asyncio.Event | None = None

    async def create(self, obj: dict, namespace: str = "", **_: Any) -> dict:
        self.creates += 1
        self.stored[obj["metadata"]["name"]] = dict(obj)
        return obj

    async def patch(self, name: str, patch: dict, namespace: str = "", **_: Any) -> dict:
        if self.patch_gate is not None:
            await self.patch_gate.wait()
        self.patches.append(patch["count"])
        self.stored[name].update(patch)
        return self.stored[name]


class Client:
    def __init__(self) -> None:
        self.events = StoredEvents()

    def resource(self, info: Any) -> StoredEvents:
        return self.events


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


RS = {"kind": "ReplicaSet", "apiVersion": "apps/v1", "metadata": {"name": "web-1", "namespace": "default", "uid": "u1"}}


def pod(name: str) -> dict:
    return {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": name, "namespace": "default", "uid": name}}


async def test_a_repeated_event_is_one_event_with_its_count() -> None:
    client = Client()
    rec = EventRecorder(client, "kubelet", "node-1")
    for _ in range(3):
        rec.event(pod("p"), events.WARNING, "BackOff", "Back-off restarting failed container")
    await rec.flush()
    assert client.events.creates == 1
    (ev,) = client.events.stored.values()
    assert ev["count"] == 3 and ev["message"] == "Back-off restarting failed container"
    assert ev["source"] == {"component": "kubelet", "host": "node-1"}


async def test_counts_reach_the_api_server_in_order_and_repeats_in_flight_share_a_write() -> None:
    client = Client()
    client.events.patch_gate = asyncio.Event()
    rec = EventRecorder(client, "kubelet")
    for _ in range(6):
        rec.event(pod("p"), events.WARNING, "BackOff", "same")
    await asyncio.sleep(0.01)
    client.events.patch_gate.set()
    await rec.flush()
    assert client.events.patches == sorted(client.events.patches)
    assert client.events.patches[-1] == 6
    assert len(client.events.patches) < 5


async def test_a_thousand_pods_created_by_one_replicaset_make_ten_events_and_the_rest_is_dropped() -> None:
    client = Client()
    rec = EventRecorder(client, "replicaset-controller")
    for i in range(1000):
        rec.event(RS, events.NORMAL, "SuccessfulCreate", f"Created pod: web-1-{i}")
    await rec.flush()
    stored = list(client.events.stored.values())
    plain = [e for e in stored if not e["message"].startswith(events.COMBINED_PREFIX)]
    combined = [e for e in stored if e["message"].startswith(events.COMBINED_PREFIX)]
    # Nine different messages stand alone; the tenth starts the combined Event.
    assert sorted(e["message"] for e in plain) == sorted(f"Created pod: web-1-{i}" for i in range(9))
    assert len(combined) == 1 and client.events.creates == 10
    # 25 Events' worth of writes about the ReplicaSet: 10 creates and 15 repeats counted.
    assert combined[0]["count"] == 16
    assert combined[0]["message"] == events.COMBINED_PREFIX + "Created pod: web-1-24"
    assert rec.dropped == 975


async def test_the_limit_is_per_object_and_refills_one_event_per_five_minutes() -> None:
    client = Client()
    clock = Clock()
    rec = EventRecorder(client, "kubelet", clock=clock)
    for i in range(40):  # 40 pods, two events each: far below each pod's 25
        rec.event(pod(f"p{i}"), events.NORMAL, "Pulled", "already present")
        rec.event(pod(f"p{i}"), events.NORMAL, "Started", "Started container c")
    await rec.flush()
    assert client.events.creates == 80 and rec.dropped == 0
    for i in range(30):
        rec.event(pod("p0"), events.WARNING, "Unhealthy", f"probe failed {i}")
    await rec.flush()
    assert rec.dropped == 30 - (events.SPAM_BURST - 2)
    clock.now += 299
    rec.event(pod("p0"), events.WARNING, "Unhealthy", "probe failed again")
    assert rec.dropped == 30 - (events.SPAM_BURST - 2) + 1
    clock.now += 2  # five minutes since the bucket ran dry: one more token
    rec.event(pod("p0"), events.WARNING, "Unhealthy", "probe failed once more")
    rec.event(pod("p0"), events.WARNING, "Unhealthy", "and again")
    await rec.flush()
    assert rec.dropped == 30 - (events.SPAM_BURST - 2) + 2


async def test_similar_messages_are_combined_only_within_ten_minutes() -> None:
    client = Client()
    clock = Clock()
    rec = EventRecorder(client, "deployment-controller", clock=clock)
    for i in range(9):
        rec.event(RS, events.NORMAL, "ScalingReplicaSet", f"Scaled up to {i}")
        clock.now += 70  # 9 messages over 10.5 minutes, but each within 10 minutes of the last
    clock.now += 601  # a quiet spell: the group starts over
    rec.event(RS, events.NORMAL, "ScalingReplicaSet", "Scaled up to 9")
    await rec.flush()
    assert client.events.creates == 10
    assert not any(e["message"].startswith(events.COMBINED_PREFIX) for e in client.events.stored.values())
