"""The userspace proxy's NodePort listener through a weighted rollout's last steps.

A NodePort must never stop listening while its Service exists: weights going to 100/0, the
old revision's endpoints going away and the weights annotation being dropped only change
what the one listener forwards to. (In-process proxy against a real API server; everything
on 127.0.0.0/8.)
"""
from __future__ import annotations

import asyncio

import pytest
from test_endpoints_api import World, eventually, world_fixture  # noqa: F401  (the "world" fixture)
from test_proxy_forwarding import Backend, free_port, request

from kubelite.api.resources import DEPLOYMENTS
from kubelite.proxy.proxy import Proxy
from kubelite.proxy.weights import TRAFFIC_WEIGHTS

NODE_IP = "127.0.78.1"  # this test's "node": its own loopback address, so node ports never clash


@pytest.fixture
async def proxy(world: World):
    p = Proxy(world.client, node_name=f"node-{world.ns}", node_ip=NODE_IP)
    await p.start()
    yield p
    await p.stop()


def deployment(weights: str) -> dict:
    """A Deployment `web` publishing ``weights`` (no controller runs: only the annotation matters)."""
    labels = {"app": "web"}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "annotations": {TRAFFIC_WEIGHTS: weights}},
            "spec": {"replicas": 3, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}


async def test_node_port_keeps_its_listener_while_a_canary_reaches_100_percent_and_the_old_pods_go(
        world: World, proxy: Proxy):
    port = free_port("127.0.62.1")
    deployments = world.client.resource(DEPLOYMENTS)
    await deployments.create(deployment("old1=80,new1=20"), world.ns)
    svc = await world.service("web", type="NodePort", ports=[{"port": 8080, "targetPort": port}])
    node_port = svc["spec"]["ports"][0]["nodePort"]
    old = [await Backend(f"web-old1-a{i}", f"127.0.62.{i}", port).start() for i in (1, 2)]
    new = [await Backend("web-new1-b1", "127.0.62.3", port).start()]
    for b in old + new:
        await world.pod(b.name, b.host, app="web")
    try:
        async def answering() -> set[str]:
            return {(await request(NODE_IP, node_port)).decode().rstrip(":") for _ in range(30)}

        async def both() -> bool:
            return await answering() == {b.name for b in old + new}
        await eventually(both, what="both revisions answering the node port")
        key = f"{world.ns}/web"
        listener = proxy._state[key].listeners[(NODE_IP, node_port, "TCP")]

        async def only_new() -> bool:
            return await answering() == {"web-new1-b1"}
        # 100 % to the canary: the old revision keeps its endpoints but gets weight 0.
        await deployments.patch("web", {"metadata": {"annotations": {TRAFFIC_WEIGHTS: "new1=100,old1=0"}}},
                                world.ns, patch_type="merge")
        await eventually(only_new, what="only the canary answering at 100 %")
        # The old pods go (their endpoints leave the slices), then the weights are dropped.
        for b in old:
            await world.pods.delete(b.name, world.ns, grace_period_seconds=0)
        await eventually(lambda: _endpoint_count(world, 1), what="the old endpoints gone")
        assert await only_new()
        await deployments.patch("web", {"metadata": {"annotations": {TRAFFIC_WEIGHTS: None}}}, world.ns,
                                patch_type="merge")
        await eventually(lambda: _weights_gone(proxy), what="the proxy seeing no weights")
        assert await only_new()
        # Even with no usable endpoint at all the port stays bound: connections are accepted
        # and reset, never refused by the kernel.
        await world.set_status(await world.pods.get("web-new1-b1", world.ns), "127.0.62.3", False)
        await eventually(lambda: _endpoint_count(world, 0, ready_only=True), what="no ready endpoint")
        await eventually(lambda: _no_candidates(proxy, key), what="the proxy routing nowhere")
        with pytest.raises(OSError) as refused:
            await request(NODE_IP, node_port)
        assert not isinstance(refused.value, ConnectionRefusedError)
        assert proxy._state[key].listeners[(NODE_IP, node_port, "TCP")] is listener and listener.serving
    finally:
        for b in old + new:
            await b.stop()


async def _endpoint_count(world: World, n: int, *, ready_only: bool = False) -> bool:
    eps = [e for s in await world.service_slices("web") for e in s.get("endpoints") or []
           if not ready_only or (e.get("conditions") or {}).get("ready") is not False]
    return len(eps) == n


async def _weights_gone(proxy: Proxy) -> bool:
    await asyncio.sleep(0)
    return not proxy.weight_table()


async def _no_candidates(proxy: Proxy, key: str) -> bool:
    await asyncio.sleep(0)
    return all(not b.usable(True) for b in proxy._state[key].balancers.values())
