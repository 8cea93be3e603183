"""The controller manager: runs every registered controller, as kube-controller-manager.

Controllers are listed in ``REGISTRY`` (name → constructor taking a client and the
shared informer factory, returning an object with ``async run(stop)``).  With leader
election on (the default), only the holder of the Lease
``kube-system/kube-controller-manager`` runs them; when leadership is lost the
controllers stop, their informers are torn down, and the manager campaigns again (a
fresh factory means a fresh cache: nothing learnt while not leading is trusted).
A controller that crashes is logged and restarted after a second; it never takes
the others down.
"""
from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from kubelite.client.informer import InformerFactory
from kubelite.client.leaderelection import LeaderElector

log = logging.getLogger(__name__)

LEASE_NAME = "kube-controller-manager"


class Runnable(Protocol):
    """What a controller offers the manager."""

    async def run(self, stop: asyncio.Event) -> None: ...


@dataclass(frozen=True)
class ControllerSpec:
    """One registered controller: its name and how to build it."""

    name: str
    make: Callable[[Any, InformerFactory], Runnable]


def _deployment(client: Any, factory: InformerFactory) -> Runnable:
    from kubelite.controllers.deployment import DeploymentController
    return DeploymentController(client, factory)


def _replicaset(client: Any, factory: InformerFactory) -> Runnable:
    from kubelite.controllers.replicaset import ReplicaSetController
    return ReplicaSetController(client, factory)


def _lazy(module: str, cls: str) -> Callable[[Any, InformerFactory], Runnable]:
    def make(client: Any, factory: InformerFactory) -> Runnable:
        import importlib
        return getattr(importlib.import_module(module), cls)(client, factory)
    return make


REGISTRY: list[ControllerSpec] = [
    ControllerSpec("deployment", _deployment),
    ControllerSpec("replicaset", _replicaset),
    ControllerSpec("endpoints", _lazy("kubelite.controllers.endpoints", "EndpointsController")),
    ControllerSpec("endpointslice", _lazy("kubelite.controllers.endpointslice", "EndpointSliceController")),
    ControllerSpec("endpointslicemirroring",
                   _lazy("kubelite.controllers.endpointslicemirroring", "EndpointSliceMirroringController")),
    ControllerSpec("garbagecollector", _lazy("kubelite.controllers.garbagecollector", "GarbageCollectorController")),
    ControllerSpec("namespace", _lazy("kubelite.controllers.namespace", "NamespaceController")),
    ControllerSpec("serviceaccount", _lazy("kubelite.controllers.serviceaccount", "ServiceAccountsController")),
    ControllerSpec("root-ca-cert-publisher", _lazy("kubelite.controllers.rootcacert", "RootCACertPublisher")),
    ControllerSpec("servicelb", _lazy("kubelite.controllers.servicelb", "ServiceLBController")),
    ControllerSpec("nodelifecycle", _lazy("kubelite.controllers.nodelifecycle", "NodeLifecycleController")),
    ControllerSpec("taint-eviction-controller", _lazy("kubelite.controllers.nodelifecycle", "TaintEvictionController")),
    ControllerSpec("podgc", _lazy("kubelite.controllers.nodelifecycle", "PodGCController")),
]


def register(name: str, make: Callable[[Any, InformerFactory], Runnable]) -> None:
    """Add (or replace) a controller in the registry."""
    REGISTRY[:] = [s for s in REGISTRY if s.name != name] + [ControllerSpec(name, make)]


async def _supervise(spec: ControllerSpec, client: Any, factory: InformerFactory, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await spec.make(client, factory).run(stop)
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("controller %s crashed; restarting", spec.name)
            try:
                await asyncio.wait_for(stop.wait(), 1.0)
            except TimeoutError:
                pass


async def run_controllers(client: Any, stop: asyncio.Event, names: Iterable[str] | None = None) -> None:
    """Run the selected (default: all) registered controllers until ``stop``."""
    wanted = set(names) if names is not None else None
    specs = [s for s in REGISTRY if wanted is None or s.name in wanted]
    factory = InformerFactory(client)
    tasks = [asyncio.create_task(_supervise(s, client, factory, stop), name=f"controller-{s.name}") for s in specs]
    try:
        await stop.wait()
    finally:
        await asyncio.gather(*tasks, return_exceptions=True)
        await factory.stop()


async def run_controller_manager(client: Any, *, stop: asyncio.Event, leader_elect: bool = True,
                                 identity: str, controllers: Iterable[str] | None = None,
                                 elector_options: dict[str, Any] | None = None) -> None:
    """Run the controllers, under leader election unless ``leader_elect`` is False."""
    names = list(controllers) if controllers is not None else None
    if not leader_elect:
        await run_controllers(client, stop, names)
        return

    async def lead(lost: asyncio.Event) -> None:
        inner = asyncio.Event()

        async def relay() -> None:
            waits = [asyncio.create_task(stop.wait()), asyncio.create_task(lost.wait())]
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waits:
                    w.cancel()
            inner.set()
        relay_task = asyncio.create_task(relay())
        try:
            await run_controllers(client, inner, names)
        finally:
            relay_task.cancel()

    # Upstream identities are <hostname>_<uuid>: two managers on one host stay distinct.
    elector = LeaderElector(client, name=LEASE_NAME, identity=f"{identity}_{uuid.uuid4()}",
                            **(elector_options or {}))
    await elector.run(lead, stop)
