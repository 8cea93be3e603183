"""The caches a rollout view reads: a namespace's Deployments, ReplicaSets, pods and events,
and one event set whenever any of them changes (the live views redraw on it)."""
from __future__ import annotations

import asyncio

from kubelite.api import resources
from kubelite.client.protocols import APIClient


class RolloutCaches:
    """Informers for the four kinds a rollout is drawn from; ``changed`` is set on any event."""

    def __init__(self, client: APIClient, namespace: str, *, deployment_selector: str = ""):
        from kubelite.client.informer import InformerFactory

        self.factory = InformerFactory(client)
        self.deployments = self.factory.informer(resources.DEPLOYMENTS, namespace=namespace,
                                                 field_selector=deployment_selector)
        self.replicasets = self.factory.informer(resources.REPLICASETS, namespace=namespace)
        self.pods = self.factory.informer(resources.PODS, namespace=namespace)
        self.events = self.factory.informer(resources.EVENTS, namespace=namespace)
        self.changed = asyncio.Event()
        mark = lambda *_: self.changed.set()  # noqa: E731 - handlers only flag, never work
        for inf in (self.deployments, self.replicasets, self.pods, self.events):
            inf.add_handler(mark, mark, mark)

    async def start_caches(self, timeout: float) -> None:
        """Start the informers and wait for their first lists."""
        self.factory.start()
        await asyncio.wait_for(self.factory.wait_synced(), timeout)

    async def stop_caches(self) -> None:
        """Stop every informer."""
        await self.factory.stop()
