"""Endpoints, EndpointSlice and ServiceLB controllers in-process against a real API server.

The server runs alone (no controllers, scheduler or node agent); the test plays the node
agent by writing pod status, and runs our controllers (and the proxy) as API clients.
"""
from __future__ import annotations

import asyncio
import contextlib
import os

import pytest
from conftest import namespace_name

from kubelite.api.resources import ENDPOINTS, ENDPOINTSLICES, NAMESPACES, NODES, PODS, SERVICES
from kubelite.client.errors import NotFound, StatusError
from kubelite.client.informer import InformerFactory
from kubelite.client.rest import Client
from kubelite.controllers.endpoints import EndpointsController
from kubelite.controllers.endpointslice import EndpointSliceController
from kubelite.controllers.servicelb import ServiceLBController


async def eventually(fn, timeout: float = 20.0, what: str = "condition"):
    """Await fn() until it returns something truthy (errors count as not yet)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last = None
    while loop.time() < deadline:
        try:
            last = await fn()
            if last:
                return last
        except StatusError as e:
            last = e
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}; last={last!r}")


class World:
    """A namespace on the API server plus helpers to make services and pods."""

    def __init__(self, client: Client, ns: str):
        self.client, self.ns = client, ns
        self.svcs = client.resource(SERVICES)
        self.pods = client.resource(PODS)
        self.eps = client.resource(ENDPOINTS)
        self.slices = client.resource(ENDPOINTSLICES)

    async def service(self, name: str, **spec) -> dict:
        body = {"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": name, "labels": {"app": name}},
                "spec": {"selector": {"app": name}, "ports": [{"port": 8080, "targetPort": 8080}], **spec}}
        return await self.svcs.create(body, self.ns)

    async def pod(self, name: str, ip: str, *, app: str, ready: bool = True, ports=None) -> dict:
        body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": app}},
                "spec": {"nodeName": "node-1", "terminationGracePeriodSeconds": 30,
                         "containers": [{"name": "c", "image": "busybox", "ports": ports or []}]}}
        p = await self.pods.create(body, self.ns)
        return await self.set_status(p, ip, ready)

    async def set_status(self, p: dict, ip: str, ready: bool) -> dict:
        p = await self.pods.get(p["metadata"]["name"], self.ns)
        p["status"] = {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                       "lastTransitionTime": "2024-01-01T00:00:00Z"}]}
        return await self.pods.update_status(p)

    async def endpoints(self, name: str) -> dict | None:
        try:
            return await self.eps.get(name, self.ns)
        except NotFound:
            return None

    async def service_slices(self, name: str) -> list[dict]:
        lst = await self.slices.list(self.ns, label_selector=f"kubernetes.io/service-name={name}")
        return lst["items"]


# Registered as "world"; the function has its own name so that the modules importing it
# (test_proxy_*) do not shadow the import with their "world" parameters.
@pytest.fixture(name="world")
async def world_fixture(api_server, request):
    client = Client(api_server.client_config())
    ns = namespace_name(request)
    await client.resource(NAMESPACES).create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    factory = InformerFactory(client)
    stop = asyncio.Event()
    ctrls = [EndpointsController(client, factory), EndpointSliceController(client, factory),
             ServiceLBController(client, factory)]
    factory.start()
    tasks = [asyncio.create_task(c.run(stop)) for c in ctrls]
    w = World(client, ns)
    w.factory = factory
    yield w
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    await factory.stop()
    await client.close()


def ips(ep: dict | None, field: str = "addresses") -> list[str]:
    return sorted(a["ip"] for s in (ep or {}).get("subsets") or [] for a in s.get(field) or [])


async def test_endpoints_list_exactly_the_ready_pods(world: World):
    await world.service("web")
    await world.pod("web-a", "127.0.30.1", app="web")
    await world.pod("web-b", "127.0.30.2", app="web")
    await world.pod("web-c", "127.0.30.3", app="web", ready=False)
    await world.pod("other", "127.0.30.4", app="other")

    async def check():
        ep = await world.endpoints("web")
        return ep if ips(ep) == ["127.0.30.1", "127.0.30.2"] and ips(ep, "notReadyAddresses") == ["127.0.30.3"] \
            else None
    ep = await eventually(check, what="endpoints")
    assert ep["metadata"]["labels"] == {"app": "web"}
    assert ep["subsets"][0]["ports"] == [{"port": 8080, "protocol": "TCP"}]
    assert "endpoints.kubernetes.io/last-change-trigger-time" in ep["metadata"]["annotations"]

    async def slices_ok():
        ss = await world.service_slices("web")
        eps = [e for s in ss for e in s.get("endpoints") or []]
        return ss if sorted(e["addresses"][0] for e in eps if e["conditions"]["ready"]) == \
            ["127.0.30.1", "127.0.30.2"] and len(eps) == 3 else None
    ss = await eventually(slices_ok, what="slices")
    assert len(ss) == 1
    s = ss[0]
    assert s["metadata"]["name"].startswith("web-")
    assert s["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == "endpointslice-controller.k8s.io"
    assert s["metadata"]["ownerReferences"][0]["kind"] == "Service"
    assert s["ports"] == [{"name": "", "port": 8080, "protocol": "TCP"}]


async def test_pod_readiness_and_deletion_move_addresses(world: World):
    await world.service("api")
    a = await world.pod("api-a", "127.0.31.1", app="api", ready=False)
    await eventually(lambda: _has(world, "api", [], ["127.0.31.1"]), what="not ready")
    await world.set_status(a, "127.0.31.1", True)
    await eventually(lambda: _has(world, "api", ["127.0.31.1"], []), what="ready")
    # Deletion with a grace period: the pod is terminating (deletionTimestamp), not gone.
    await world.pods.delete("api-a", world.ns, grace_period_seconds=30)

    async def terminating():
        ep = await world.endpoints("api")
        ss = await world.service_slices("api")
        conds = [e["conditions"] for s in ss for e in s.get("endpoints") or []]
        return ips(ep) == [] and conds == [{"ready": False, "serving": True, "terminating": True}]
    await eventually(terminating, what="terminating endpoint")


async def _has(world: World, name: str, ready: list[str], not_ready: list[str]) -> bool:
    ep = await world.endpoints(name)
    return ips(ep) == ready and ips(ep, "notReadyAddresses") == not_ready


async def test_named_target_port_and_multi_port_service(world: World):
    await world.service("multi", ports=[{"name": "http", "port": 80, "targetPort": "web"},
                                        {"name": "admin", "port": 81, "targetPort": 9000}])
    await world.pod("multi-a", "127.0.32.1", app="multi", ports=[{"name": "web", "containerPort": 8080}])

    async def check():
        ep = await world.endpoints("multi")
        if not ep or not ep.get("subsets"):
            return None
        return sorted((p["name"], p["port"]) for p in ep["subsets"][0]["ports"]) == [("admin", 9000), ("http", 8080)]
    await eventually(check, what="ports")
    ss = await world.service_slices("multi")
    assert sorted((p["name"], p["port"]) for p in ss[0]["ports"]) == [("admin", 9000), ("http", 8080)]


async def test_headless_service_and_deleted_service_cleanup(world: World):
    await world.service("hl", clusterIP="None")
    await world.pod("hl-a", "127.0.33.1", app="hl")
    await eventually(lambda: _has(world, "hl", ["127.0.33.1"], []), what="headless endpoints")
    ep = await world.endpoints("hl")
    assert ep["metadata"]["labels"]["service.kubernetes.io/headless"] == ""
    await world.svcs.delete("hl", world.ns)

    async def gone():
        return await world.endpoints("hl") is None and await world.service_slices("hl") == []
    await eventually(gone, what="cleanup")


async def test_service_selecting_nothing_has_empty_endpoints_and_placeholder_slice(world: World):
    await world.service("lonely")

    async def check():
        ep = await world.endpoints("lonely")
        ss = await world.service_slices("lonely")
        return ep is not None and not ep.get("subsets") and len(ss) == 1 and not ss[0].get("endpoints")
    await eventually(check, what="placeholder")


async def test_many_pods_are_split_into_slices_of_at_most_100(world: World):
    await world.service("big")
    await asyncio.gather(*(world.pod(f"big-{i}", f"127.0.{40 + i // 200}.{i % 200 + 1}", app="big")
                           for i in range(130)))

    async def check():
        ss = await world.service_slices("big")
        sizes = sorted(len(s.get("endpoints") or []) for s in ss)
        return sizes if sum(sizes) == 130 else None
    sizes = await eventually(check, timeout=60, what="130 endpoints")
    assert max(sizes) <= 100 and len(sizes) == 2


async def test_load_balancer_service_gets_the_node_address(world: World):
    nodes = world.client.resource(NODES)
    name = f"lb-node-{os.urandom(2).hex()}"
    node = await nodes.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}})
    node["status"] = {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                      "conditions": [{"type": "Ready", "status": "True"}]}
    await nodes.update_status(node)
    try:
        await world.service("lb", type="LoadBalancer")

        async def check():
            s = await world.svcs.get("lb", world.ns)
            ing = ((s.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
            return "127.0.0.1" in [i.get("ip") for i in ing]
        await eventually(check, what="ingress")
    finally:
        with contextlib.suppress(StatusError):
            await nodes.delete(name)
