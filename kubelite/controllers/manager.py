"""The controller manager: runs every registered controller, as kube-controller-manager.

Controllers are listed in ``REGISTRY`` (name → constructor taking a client and the
shared informer factory, returning an object with ``async run(stop)``).  With leader
election on (the default), only the holder of the Lease
``kube-system/kube-controller-manager`` runs them; when leadership is lost the
controllers stop, their informers are torn down, and the manager campaigns again (a
fresh factory means a fresh cache: nothing learnt while not leading is trusted).
A controller that crashes is logged with its traceback and restarted (after a second,
then with doubling delays up to 30 s; see ``client/supervise.py``); it never takes the
others down.  Leader election itself runs supervised the same way.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from kubelite.client.informer import InformerFactory
from kubelite.client.leaderelection import run_elected
from kubelite.client.protocols import APIClient, SharedInformerFactory
from kubelite.client.supervise import supervise

log = logging.getLogger(__name__)

LEASE_NAME = "kube-controller-manager"
RESTART_DELAY = 1.0
MAX_RESTART_DELAY = 30.0


class Runnable(Protocol):
    """What a controller offers the manager."""

    async def run(self, stop: asyncio.Event) -> None: ...


@dataclass(frozen=True)
class ControllerSpec:
    """One registered controller: its name and how to build it."""

    name: str
    make: Callable[[APIClient, SharedInformerFactory], Runnable]
    # The ServiceAccount (in kube-system) whose identity the controller writes with, as
    # upstream's --use-service-account-credentials; its role is system:controller:<sa>.
    service_account: str = ""


def _deployment(client: APIClient, factory: SharedInformerFactory) -> Runnable:
    from kubelite.controllers.deployment import DeploymentController
    return DeploymentController(client, factory)


def _replicaset(client: APIClient, factory: SharedInformerFactory) -> Runnable:
    from kubelite.controllers.replicaset import ReplicaSetController
    return ReplicaSetController(client, factory)


def _lazy(module: str, cls: str) -> Callable[[APIClient, SharedInformerFactory], Runnable]:
    def make(client: APIClient, factory: SharedInformerFactory) -> Runnable:
        import importlib
        return getattr(importlib.import_module(module), cls)(client, factory)
    return make


REGISTRY: list[ControllerSpec] = [
    ControllerSpec("deployment", _deployment, "deployment-controller"),
    ControllerSpec("replicaset", _replicaset, "replicaset-controller"),
    ControllerSpec("endpoints", _lazy("kubelite.controllers.endpoints", "EndpointsController"), "endpoint-controller"),
    ControllerSpec("endpointslice", _lazy("kubelite.controllers.endpointslice", "EndpointSliceController"),
                   "endpointslice-controller"),
    ControllerSpec("endpointslicemirroring",
                   _lazy("kubelite.controllers.endpointslicemirroring", "EndpointSliceMirroringController"),
                   "endpointslicemirroring-controller"),
    ControllerSpec("garbagecollector", _lazy("kubelite.controllers.garbagecollector", "GarbageCollectorController"),
                   "generic-garbage-collector"),
    ControllerSpec("namespace", _lazy("kubelite.controllers.namespace", "NamespaceController"), "namespace-controller"),
    ControllerSpec("serviceaccount", _lazy("kubelite.controllers.serviceaccount", "ServiceAccountsController"),
                   "service-account-controller"),
    ControllerSpec("root-ca-cert-publisher", _lazy("kubelite.controllers.rootcacert", "RootCACertPublisher"),
                   "root-ca-cert-publisher"),
    ControllerSpec("servicelb", _lazy("kubelite.controllers.servicelb", "ServiceLBController"), "service-controller"),
    ControllerSpec("nodelifecycle", _lazy("kubelite.controllers.nodelifecycle", "NodeLifecycleController"),
                   "node-controller"),
    ControllerSpec("taint-eviction-controller", _lazy("kubelite.controllers.nodelifecycle", "TaintEvictionController"),
                   "taint-eviction-controller"),
    ControllerSpec("nodeipam", _lazy("kubelite.controllers.nodeipam", "NodeIPAMController"), "node-controller"),
    ControllerSpec("podgc", _lazy("kubelite.controllers.nodelifecycle", "PodGCController"), "pod-garbage-collector"),
    ControllerSpec("job", _lazy("kubelite.controllers.job", "JobController"), "job-controller"),
    ControllerSpec("cronjob", _lazy("kubelite.controllers.cronjob", "CronJobController"), "cronjob-controller"),
    ControllerSpec("ttl-after-finished", _lazy("kubelite.controllers.ttlafterfinished", "TTLAfterFinishedController"),
                   "ttl-after-finished-controller"),
    ControllerSpec("clusterrole-aggregation",
                   _lazy("kubelite.controllers.clusterroleaggregation", "ClusterRoleAggregationController"),
                   "clusterrole-aggregation-controller"),
    ControllerSpec("statefulset", _lazy("kubelite.controllers.statefulset", "StatefulSetController"),
                   "statefulset-controller"),
    ControllerSpec("daemonset", _lazy("kubelite.controllers.daemonset", "DaemonSetController"),
                   "daemon-set-controller"),
    ControllerSpec("disruption", _lazy("kubelite.controllers.disruption", "DisruptionController"),
                   "disruption-controller"),
    ControllerSpec("replicationcontroller", _lazy("kubelite.controllers.replicationcontroller", "ReplicationManager"),
                   "replication-controller"),
    ControllerSpec("resourcequota", _lazy("kubelite.controllers.resourcequota", "ResourceQuotaController"),
                   "resourcequota-controller"),
    ControllerSpec("persistentvolume-binder",
                   _lazy("kubelite.controllers.persistentvolume", "PersistentVolumeController"),
                   "persistent-volume-binder"),
    ControllerSpec("pvc-protection", _lazy("kubelite.controllers.persistentvolume", "PVCProtectionController"),
                   "pvc-protection-controller"),
    ControllerSpec("pv-protection", _lazy("kubelite.controllers.persistentvolume", "PVProtectionController"),
                   "pv-protection-controller"),
    ControllerSpec("horizontalpodautoscaling",
                   _lazy("kubelite.controllers.podautoscaler", "HorizontalPodAutoscalerController"),
                   "horizontal-pod-autoscaler"),
]


# The client a controller writes with, by its ServiceAccount name ("" for the manager's own).
ClientFor = Callable[[str], Awaitable[APIClient]]


async def _run_one(spec: ControllerSpec, client: APIClient, factory: SharedInformerFactory,
                   stop: asyncio.Event, first: Runnable | None = None, client_for: ClientFor | None = None) -> None:
    """Run one controller (``first`` if already built); a crash rebuilds it from scratch after a back-off."""
    built = [first] if first is not None else []

    async def run() -> None:
        ctl = built.pop() if built else spec.make(await _own_client(spec, client, client_for), factory)
        await ctl.run(stop)
    await supervise(f"controller {spec.name}", run, stop=stop, initial_delay=RESTART_DELAY,
                    max_delay=MAX_RESTART_DELAY, logger=log)


async def _own_client(spec: ControllerSpec, client: APIClient, client_for: ClientFor | None) -> APIClient:
    """The client a controller writes with: its ServiceAccount's when ``client_for`` is given."""
    if client_for is not None and spec.service_account:
        return await client_for(spec.service_account)
    return client


async def _build(spec: ControllerSpec, client: APIClient, factory: SharedInformerFactory,
                 client_for: ClientFor | None) -> Runnable | None:
    """Build a controller now, so its informers exist; None if that fails (its task retries)."""
    try:
        return spec.make(await _own_client(spec, client, client_for), factory)
    except Exception:
        log.exception("building controller %s failed", spec.name)
        return None


async def run_controllers(client: APIClient, stop: asyncio.Event, names: Iterable[str] | None = None,
                          synced: asyncio.Event | None = None, client_for: ClientFor | None = None) -> None:
    """Run the selected (default: all) registered controllers until ``stop``.

    The shared informers list and watch with ``client``; each controller writes with
    ``client_for(<its ServiceAccount>)`` when given (upstream's service-account
    credentials), else with ``client`` too.  ``synced`` is set once every informer the
    controllers use has listed once (the API server's readiness waits for it)."""
    wanted = set(names) if names is not None else None
    specs = [s for s in REGISTRY if wanted is None or s.name in wanted]
    factory = InformerFactory(client)
    # Built up front so that every informer is registered before the sync is awaited; side by
    # side, since each may first need its ServiceAccount and a token (three requests).
    made = await asyncio.gather(*(_build(s, client, factory, client_for) for s in specs))
    built = list(zip(specs, made, strict=True))
    tasks = [asyncio.create_task(_run_one(s, client, factory, stop, ctl, client_for), name=f"controller-{s.name}")
             for s, ctl in built]
    try:
        if synced is not None:
            factory.start()
            await _until(factory.wait_synced(), stop)
            if not stop.is_set():
                synced.set()
        await stop.wait()
    finally:
        await asyncio.gather(*tasks, return_exceptions=True)
        await factory.stop()


async def _until(work: Coroutine[Any, Any, None], stop: asyncio.Event) -> None:
    """Await ``work`` unless ``stop`` is set first (then it is cancelled)."""
    done = asyncio.ensure_future(work)
    halt = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait([done, halt], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in (done, halt):
            t.cancel()


async def run_controller_manager(client: APIClient, *, stop: asyncio.Event, leader_elect: bool = True,
                                 identity: str, controllers: Iterable[str] | None = None,
                                 elector_options: dict[str, Any] | None = None,
                                 synced: asyncio.Event | None = None, client_for: ClientFor | None = None) -> None:
    """Run the controllers, under leader election unless ``leader_elect`` is False.

    ``synced`` is set when the controllers run here for the first time with their caches filled."""
    names = list(controllers) if controllers is not None else None
    if not leader_elect:
        await run_controllers(client, stop, names, synced, client_for)
        return

    async def elect() -> None:
        await run_elected(client, LEASE_NAME, identity, stop,
                          lambda inner: run_controllers(client, inner, names, synced, client_for),
                          **(elector_options or {}))
    await supervise("leader election", elect, stop=stop, initial_delay=RESTART_DELAY,
                    max_delay=MAX_RESTART_DELAY, logger=log)
