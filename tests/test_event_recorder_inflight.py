"""The event recorder bounds its writes in flight: a burst of events reuses a few
connections instead of opening one per event (each a TLS handshake)."""
from __future__ import annotations

import asyncio
from typing import Any

from kubelite.client import events
from kubelite.client.events import EventRecorder
from tests.fakeapi import until


class GatedEvents:
    """An events resource whose creates wait for a gate; counts creates in flight."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.in_flight = 0
        self.most = 0
        self.created: list[dict] = []

    async def create(self, obj: dict, namespace: str = "", **_: Any) -> dict:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            await self.gate.wait()
            self.created.append(obj)
            return obj
        finally:
            self.in_flight -= 1


class Client:
    def __init__(self) -> None:
        self.events = GatedEvents()

    def resource(self, info: Any) -> GatedEvents:
        return self.events


async def test_a_burst_of_events_is_written_a_few_at_a_time() -> None:
    client = Client()
    rec = EventRecorder(client, "test")
    for i in range(50):
        rec.event({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": f"p{i}", "namespace": "default"}},
                  events.NORMAL, "Scheduled", f"placed p{i}")
    await until(lambda: client.events.in_flight == events.WRITES_IN_FLIGHT, what="the first writes")
    client.events.gate.set()
    await rec.flush()
    assert client.events.most == events.WRITES_IN_FLIGHT
    assert sorted(e["involvedObject"]["name"] for e in client.events.created) == sorted(f"p{i}" for i in range(50))
