"""The tutorial's Service steps with the real kubectl and curl.

The API server runs alone; our endpoints/endpointslice controllers and the proxy run
in-process as API clients, and the test plays the node agent (HTTP "pods" on 127.0.x.y:8080
whose status it writes).  Only 127.0.0.0/8 is used.
"""
from __future__ import annotations

import asyncio
import json
import re
import subprocess

import pytest
from test_endpoints_api import World, eventually, world_fixture  # noqa: F401  (the "world" fixture)

from kubelite.proxy.drain import wait_endpoint_drained
from kubelite.proxy.proxy import Proxy

NODE_IP = "127.0.78.1"


class HttpPod:
    """Answers like the bootcamp image: one line naming the pod, then closes."""

    def __init__(self, name: str, ip: str, version: int = 1):
        self.name, self.ip, self.version = name, ip, version
        self.server = None

    async def _serve(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            await r.readuntil(b"\r\n\r\n")
            body = f"Hello Kubernetes bootcamp! | Running on: {self.name} | v={self.version}\n".encode()
            w.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            await w.drain()
            w.close()
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            w.close()

    async def start(self) -> HttpPod:
        self.server = await asyncio.start_server(self._serve, self.ip, 8080, reuse_address=True)
        return self

    async def stop(self) -> None:
        if self.server is not None and self.server.is_serving():
            self.server.close()


async def kubectl(api_server, *args: str) -> subprocess.CompletedProcess:
    return await asyncio.to_thread(api_server.kubectl, *args)


async def curl(url: str) -> str:
    p = await asyncio.create_subprocess_exec("curl", "-fsS", "--max-time", "5", url,
                                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await p.communicate()
    if p.returncode != 0:
        raise OSError(err.decode().strip())
    return out.decode()


@pytest.fixture
async def cluster_bits(world: World, api_server):
    proxy = Proxy(world.client, node_name=f"node-{world.ns}", node_ip=NODE_IP)
    await proxy.start()
    pods: list[HttpPod] = []
    yield world, proxy, pods
    for p in pods:
        await p.stop()
    await proxy.stop()


async def add_pod(world: World, pods: list, name: str, ip: str, version: int = 1) -> HttpPod:
    p = await HttpPod(name, ip, version).start()
    pods.append(p)
    await world.pod(name, ip, app="kubernetes-bootcamp", ports=[{"containerPort": 8080}])
    return p


async def test_expose_describe_get_endpoints_and_curl(api_server, cluster_bits):
    world, proxy, pods = cluster_bits
    ns = world.ns
    r = await kubectl(api_server, "-n", ns, "create", "deployment", "kubernetes-bootcamp",
                      "--image=gcr.io/google-samples/kubernetes-bootcamp:v1")
    assert r.returncode == 0, r.stderr
    for i in range(1, 4):
        await add_pod(world, pods, f"kubernetes-bootcamp-abc-{i}", f"127.0.71.{i}")
    r = await kubectl(api_server, "-n", ns, "expose", "deployment/kubernetes-bootcamp", "--type=NodePort",
                      "--port", "8080")
    assert r.stdout.strip() == "service/kubernetes-bootcamp exposed", r.stderr
    svc = json.loads((await kubectl(api_server, "-n", ns, "get", "services/kubernetes-bootcamp", "-o", "json")).stdout)
    node_port = svc["spec"]["ports"][0]["nodePort"]
    assert 30000 <= node_port <= 32767

    async def described():
        out = (await kubectl(api_server, "-n", ns, "describe", "services/kubernetes-bootcamp")).stdout
        m = re.search(r"^Endpoints:\s+(\S.*)$", out, re.M)
        return out if m and m.group(1).startswith("127.0.71.") and "+ 1 more" not in m.group(1) \
            and m.group(1).count(":8080") == 3 else None
    out = await eventually(described, what="describe service endpoints")
    assert re.search(rf"^NodePort:\s+<unset>\s+{node_port}/TCP$", out, re.M)

    r = await kubectl(api_server, "-n", ns, "get", "endpoints", "kubernetes-bootcamp")
    assert re.search(r"kubernetes-bootcamp\s+127\.0\.71\.1:8080,127\.0\.71\.2:8080,127\.0\.71\.3:8080\s",
                     r.stdout), (r.stdout, r.stderr)
    r = await kubectl(api_server, "-n", ns, "get", "endpoints", "kubernetes-bootcamp", "-o",
                      "jsonpath={.subsets[*].addresses[*].ip}")
    assert sorted(r.stdout.split()) == ["127.0.71.1", "127.0.71.2", "127.0.71.3"], r.stderr
    r = await kubectl(api_server, "-n", ns, "get", "endpointslices")
    assert re.search(r"kubernetes-bootcamp-\S+\s+IPv4\s+8080\s+127\.0\.71\.\d,127\.0\.71\.\d,127\.0\.71\.\d\s",
                     r.stdout), (r.stdout, r.stderr)
    slices = json.loads((await kubectl(api_server, "-n", ns, "get", "endpointslices", "-o", "json")).stdout)
    addrs = sorted(e["addresses"][0] for s in slices["items"] for e in s["endpoints"] if e["conditions"]["ready"])
    assert addrs == ["127.0.71.1", "127.0.71.2", "127.0.71.3"]
    assert [s["metadata"]["labels"]["kubernetes.io/service-name"] for s in slices["items"]] == ["kubernetes-bootcamp"]

    url = f"http://{NODE_IP}:{node_port}"

    async def answering():
        try:
            return await curl(url)
        except OSError:
            return None
    await eventually(answering, what="curl through the node port")
    seen = {re.search(r"Running on: (\S+)", await curl(url)).group(1) for _ in range(12)}
    assert seen == {p.name for p in pods}


async def test_rollout_with_a_client_hammering_the_node_port(api_server, cluster_bits):
    """Replace every pod (as a rollout does) while curl-like clients hammer the node port."""
    world, proxy, pods = cluster_bits
    ns = world.ns
    old = [await add_pod(world, pods, f"kubernetes-bootcamp-v1-{i}", f"127.0.72.{i}") for i in range(1, 5)]
    r = await kubectl(api_server, "-n", ns, "create", "service", "nodeport", "kubernetes-bootcamp",
                      "--tcp=8080:8080")
    assert r.returncode == 0, r.stderr
    await kubectl(api_server, "-n", ns, "patch", "service", "kubernetes-bootcamp", "-p",
                  '{"spec":{"selector":{"app":"kubernetes-bootcamp"}}}')
    svc = await world.svcs.get("kubernetes-bootcamp", ns)
    url = f"http://{NODE_IP}:{svc['spec']['ports'][0]['nodePort']}"

    async def four():
        try:
            return len({(await curl(url)).split("|")[1] for _ in range(12)}) == 4
        except OSError:
            return False
    await eventually(four, what="4 pods answering")
    served, failed = [0], []
    stop = asyncio.Event()

    async def load():
        while not stop.is_set():
            try:
                body = await curl(url)
                served[0] += body.startswith("Hello Kubernetes bootcamp!")
            except OSError as e:
                failed.append(str(e))
    loaders = [asyncio.create_task(load()) for _ in range(3)]
    try:
        for i, o in enumerate(old, start=1):
            await add_pod(world, pods, f"kubernetes-bootcamp-v2-{i}", f"127.0.73.{i}", version=2)
            pod = await world.pods.get(o.name, ns)
            await world.pods.delete(o.name, ns, grace_period_seconds=30)
            assert await wait_endpoint_drained(world.client, pod, 30)
            await o.stop()  # SIGTERM: the pod stops answering
            await world.pods.delete(o.name, ns, grace_period_seconds=0)
        after = served[0]

        async def ten_more() -> bool:
            return served[0] >= after + 10
        await eventually(ten_more, what="10 more requests served after the last old pod went")
    finally:
        stop.set()
        await asyncio.gather(*loaders)
    assert failed == [] and served[0] > 10
    replies = [await curl(url) for _ in range(8)]
    assert all(r.rstrip().endswith("v=2") for r in replies)
