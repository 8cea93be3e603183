"""The proxy in-process against a real API server: listeners from Services, endpoints from
EndpointSlices, the drain handshake, and a simulated rollout under steady load.

Everything listens on and connects to 127.0.0.0/8 only.
"""
from __future__ import annotations

import asyncio

import pytest
from test_endpoints_api import World, eventually, world_fixture  # noqa: F401  (the "world" fixture)
from test_proxy_forwarding import Backend, free_port, request, until

from kubelite.api.resources import LEASES
from kubelite.proxy.drain import (
    COMPONENT,
    COMPONENT_LABEL,
    DRAINED_ANNOTATION,
    LEASE_NAMESPACE,
    lease_name,
    wait_endpoint_drained,
)
from kubelite.proxy.proxy import Proxy

NODE_IP = "127.0.77.1"  # this test's "node": its own loopback address, so node ports never clash


@pytest.fixture
async def proxy(world: World):
    p = Proxy(world.client, node_name=f"node-{world.ns}", node_ip=NODE_IP)
    await p.start()
    yield p
    await p.stop()


async def start_pods(world: World, app: str, n: int, port: int, first: int = 1, subnet: int = 60):
    backends = []
    for i in range(first, first + n):
        b = await Backend(f"{app}-{i}", f"127.0.{subnet}.{i}", port).start()
        await world.pod(b.name, b.host, app=app)
        backends.append(b)
    return backends


async def answers(host: str, port: int, n: int) -> set[str]:
    out = set()
    for _ in range(n):
        out.add((await request(host, port)).decode().rstrip(":"))
    return out


async def test_nodeport_and_cluster_ip_balance_over_ready_pods(world: World, proxy: Proxy):
    port = free_port("127.0.60.1")
    svc = await world.service("web", type="NodePort", ports=[{"port": 8080, "targetPort": port}])
    backends = await start_pods(world, "web", 3, port)
    try:
        node_port = svc["spec"]["ports"][0]["nodePort"]
        cluster_ip = svc["spec"]["clusterIP"]
        want = {b.name for b in backends}

        async def all_seen():
            try:
                return await answers(NODE_IP, node_port, 6) == want
            except OSError:
                return False
        await eventually(all_seen, what="node port answering from every pod")
        assert await answers(cluster_ip, 8080, 6) == want
        # An unready pod receives no new connections.
        await world.set_status(await world.pods.get("web-1", world.ns), "127.0.60.1", False)

        async def without_first():
            return await answers(NODE_IP, node_port, 6) == want - {"web-1"}
        await eventually(without_first, what="unready pod left out")
    finally:
        for b in backends:
            await b.stop()


async def test_service_selecting_nothing_refuses_cleanly(world: World, proxy: Proxy):
    svc = await world.service("nobody", type="NodePort")
    node_port = svc["spec"]["ports"][0]["nodePort"]

    async def listening_and_refusing():
        try:
            r, w = await asyncio.open_connection(NODE_IP, node_port)
        except ConnectionRefusedError:
            return False  # listener not bound yet
        try:
            return await r.read() == b""
        except ConnectionResetError:
            return True
        finally:
            w.close()
    await eventually(listening_and_refusing, what="reset from a service without endpoints")


async def test_drain_handshake_waits_for_the_proxy(world: World, proxy: Proxy):
    port = free_port("127.0.61.1")
    await world.service("drn", ports=[{"port": 8080, "targetPort": port}])
    backends = await start_pods(world, "drn", 2, port, subnet=61)
    try:
        pod = await world.pods.get("drn-1", world.ns)
        await eventually(lambda: _ready_in_proxy(proxy, world.ns, "drn", 2), what="proxy has both pods")
        # A lease of another proxy that never acknowledges: the wait must time out.
        leases = world.client.resource(LEASES)
        from kubelite.api import meta
        await leases.create({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                             "metadata": {"name": lease_name("ghost"), "labels": {COMPONENT_LABEL: COMPONENT}},
                             "spec": {"holderIdentity": "ghost", "leaseDurationSeconds": 40,
                                      "renewTime": meta.rfc3339_micro()}}, LEASE_NAMESPACE)
        try:
            await world.pods.delete("drn-1", world.ns, grace_period_seconds=30)
            assert await wait_endpoint_drained(world.client, pod, 1.5) is False
            # Our proxy did stop using the pod and said so.
            lease = await leases.get(lease_name(proxy.node_name), LEASE_NAMESPACE)
            assert pod["metadata"]["uid"] in lease["metadata"]["annotations"][DRAINED_ANNOTATION]
        finally:
            await leases.delete(lease_name("ghost"), LEASE_NAMESPACE)
        assert await wait_endpoint_drained(world.client, pod, 10) is True
        assert await answers(proxy_cluster_ip(proxy, world.ns, "drn"), 8080, 4) == {"drn-2"}
    finally:
        for b in backends:
            await b.stop()


def _ready_in_proxy(proxy: Proxy, ns: str, name: str, n: int):
    async def check():
        st = proxy._state.get(f"{ns}/{name}")
        return st is not None and len(st.ready) == n and st.listeners
    return check()


def proxy_cluster_ip(proxy: Proxy, ns: str, name: str) -> str:
    return proxy.services.get(f"{ns}/{name}")["spec"]["clusterIP"]


async def test_pod_not_behind_any_service_is_drained_at_once(world: World, proxy: Proxy):
    p = await world.pod("solo", "127.0.62.1", app="solo")
    assert await wait_endpoint_drained(world.client, p, 5) is True


async def test_rolling_replacement_under_steady_load_drops_nothing(world: World, proxy: Proxy):
    """A rollout as the deployment controller + node agent would do it, with a client
    hammering the node port: every request must succeed."""
    port = free_port("127.0.63.1")
    svc = await world.service("roll", type="NodePort", ports=[{"port": 8080, "targetPort": port}])
    node_port = svc["spec"]["ports"][0]["nodePort"]
    old = await start_pods(world, "roll", 3, port, subnet=63)
    new: list[Backend] = []

    async def serving():
        try:
            return len(await answers(NODE_IP, node_port, 6)) == 3
        except OSError:
            return False
    await eventually(serving, what="initial pods serving")
    results = {"ok": 0, "fail": 0, "by": {}}
    stop = asyncio.Event()

    async def hammer():
        while not stop.is_set():
            try:
                who = (await request(NODE_IP, node_port)).decode()
                if who.endswith(":"):
                    results["ok"] += 1
                    results["by"][who] = results["by"].get(who, 0) + 1
                else:
                    results["fail"] += 1
            except OSError:
                results["fail"] += 1
    clients = [asyncio.create_task(hammer()) for _ in range(4)]
    try:
        for i, b in enumerate(old, start=1):
            # surge one new pod, wait until it is ready ...
            nb = (await start_pods(world, "roll", 1, port, first=10 + i, subnet=63))[0]
            new.append(nb)
            # ... then delete an old one; the "node agent" waits for the drain, then kills it.
            pod = await world.pods.get(b.name, world.ns)
            await world.pods.delete(b.name, world.ns, grace_period_seconds=30)
            assert await wait_endpoint_drained(world.client, pod, 30) is True
            await b.stop()
            await world.pods.delete(b.name, world.ns, grace_period_seconds=0)
        start = results["ok"]
        await until(lambda: results["ok"] >= start + 20, "20 more answers after the rollout", timeout=60)
    finally:
        stop.set()
        await asyncio.gather(*clients)
        for b in old + new:
            if b.server.is_serving():
                await b.stop()
    assert results["fail"] == 0, results
    assert any(k.startswith("roll-1") and k != "roll-1:" for k in results["by"])  # new pods served


async def _held_request_to_terminating_pod(world: World, proxy: Proxy, app: str, subnet: int):
    """Pod <app>-1 answers a request it holds open; <app>-2 is Ready; then <app>-1 is deleted.

    Returns (backends, the deleted pod, the pending request) once the proxy has applied the
    slice that shows <app>-1 terminating.
    """
    port = free_port(f"127.0.{subnet}.1")
    await world.service(app, ports=[{"port": 8080, "targetPort": port}])
    backends = await start_pods(world, app, 1, port, subnet=subnet)
    await eventually(lambda: _ready_in_proxy(proxy, world.ns, app, 1), what="proxy has the first pod")
    held = backends[0]
    held.release.clear()
    pending = asyncio.create_task(request(proxy_cluster_ip(proxy, world.ns, app), 8080))

    async def forwarded():
        return held.hits == 1
    await eventually(forwarded, what="the request forwarded to the first pod")
    backends += await start_pods(world, app, 1, port, first=2, subnet=subnet)
    await eventually(lambda: _ready_in_proxy(proxy, world.ns, app, 2), what="proxy has both pods")
    pod = await world.pods.get(held.name, world.ns)
    await world.pods.delete(held.name, world.ns, grace_period_seconds=30)

    async def terminating_applied():
        st = proxy._state.get(f"{world.ns}/{app}")
        return st is not None and pod["metadata"]["uid"] in st.terminating and len(st.ready) == 1
    await eventually(terminating_applied, what="proxy applied the terminating slice")
    return backends, pod, pending


async def test_terminating_pod_is_not_drained_while_a_forwarded_request_is_open(world: World):
    # A limit far beyond the test's run time: only the open connection can hold the pod here.
    proxy = Proxy(world.client, node_name=f"node-{world.ns}", node_ip=NODE_IP, connection_drain_limit=3600)
    await proxy.start()
    backends: list[Backend] = []
    try:
        backends, pod, pending = await _held_request_to_terminating_pod(world, proxy, "inflight", 64)
        uid = pod["metadata"]["uid"]
        # No new connection goes to the terminating pod ...
        assert await answers(proxy_cluster_ip(proxy, world.ns, "inflight"), 8080, 4) == {"inflight-2"}
        # ... but the request it is still answering keeps it from being reported drained.
        assert uid not in proxy.drained()
        assert await wait_endpoint_drained(world.client, pod, 1.0) is False
        assert not pending.done()
        backends[0].release.set()
        assert await pending == b"inflight-1:"
        assert await wait_endpoint_drained(world.client, pod, 20) is True
        assert uid in proxy.drained()
    finally:
        for b in backends:
            b.release.set()
            await b.stop()
        await proxy.stop()


async def test_a_connection_left_open_holds_the_drain_only_for_a_bounded_time(world: World):
    proxy = Proxy(world.client, node_name=f"node-{world.ns}", node_ip=NODE_IP, connection_drain_limit=0.5)
    await proxy.start()
    backends: list[Backend] = []
    try:
        backends, pod, pending = await _held_request_to_terminating_pod(world, proxy, "longlived", 65)
        # The connection never finishes on its own; the pod is listed anyway, and stays listed.
        assert await wait_endpoint_drained(world.client, pod, 20) is True
        assert not pending.done()
        assert pod["metadata"]["uid"] in proxy.drained()
        backends[0].release.set()
        assert await pending == b"longlived-1:"
        assert pod["metadata"]["uid"] in proxy.drained()
    finally:
        for b in backends:
            b.release.set()
            await b.stop()
        await proxy.stop()
