"""Several API servers on one store as one cluster (issue 14).

Service ClusterIPs and NodePorts come from bitmaps kept in the store and changed only by
compare-and-swap (upstream's RangeAllocation), so writers sharing a store never hand out
one value twice; a repair pass makes the bitmaps match the stored Services.  The allocator
specs run over both backends (one SQLite store with two allocators, or two etcd stores as
two servers have); the end-to-end specs run two `kubelite server`s on one etcd.
"""
from __future__ import annotations

import asyncio
import base64
import ipaddress
import json
import os
import shutil
import subprocess
import threading

import orjson
import pytest

from kubelite.api import errors
from kubelite.api.resources import NAMESPACES, SERVICES
from kubelite.apiserver.allocators import NODE_PORT_RANGE, NODE_PORTS_KEY, SERVICE_IPS_KEY, ServiceAllocator
from kubelite.apiserver.registry import Registry
from kubelite.client.rest import Client
from kubelite.store.base import Store
from tests import test_store
from tests.conftest import API_ONLY, KUBECTL, start_server
from tests.etcdkit import start_etcd, start_etcd_cluster
from tests.test_store import Backend

backend = test_store.backend  # the store specs' fixture: each spec once per backend

CIDR = "127.96.0.0/24"


def service(name: str, **spec: object) -> dict:
    """A NodePort Service named ``name`` (spec fields override)."""
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"},
            "spec": {"type": "NodePort", "ports": [{"port": 80, "protocol": "TCP"}], **spec}}


async def registries(b: Backend, n: int = 2) -> list[Registry]:
    """``n`` registries on one backend's data, as ``n`` servers would have (one SQLite store
    is shared: the file has one writer)."""
    stores: list[Store] = []
    for i in range(n):
        stores.append(await b.open() if b.kind == "etcd" or i == 0 else stores[0])
    regs = [Registry(s, ServiceAllocator(CIDR, store=s)) for s in stores]
    await regs[0].create(NAMESPACES, "", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}})
    return regs


async def stored_offsets(store: Store, key: str) -> set[int]:
    """The offsets the stored bitmap marks as taken."""
    kv = await store.get(key)
    assert kv is not None
    bits = int.from_bytes(base64.b64decode(orjson.loads(kv.value)["data"]), "big")
    return {i for i in range(bits.bit_length()) if bits >> i & 1}


def ip_offset(ip: str) -> int:
    return int(ip.rsplit(".", 1)[1])


async def test_concurrent_service_creates_through_two_allocators_never_share_a_value(backend):
    a, b = await registries(backend)
    created = await asyncio.gather(*[(a if i % 2 else b).create(SERVICES, "default", service(f"s{i}"))
                                     for i in range(60)])
    ips = [s["spec"]["clusterIP"] for s in created]
    ports = [s["spec"]["ports"][0]["nodePort"] for s in created]
    assert len(set(ips)) == 60 and len(set(ports)) == 60
    assert {ip_offset(ip) for ip in ips} == await stored_offsets(a.store, SERVICE_IPS_KEY)
    assert {p - NODE_PORT_RANGE[0] for p in ports} == await stored_offsets(a.store, NODE_PORTS_KEY)
    kv = await a.store.get(SERVICE_IPS_KEY)
    assert kv is not None and orjson.loads(kv.value)["range"] == CIDR
    # A value one allocator handed out is refused by the other when asked for by name.
    with pytest.raises(errors.Invalid, match="provided IP is already allocated"):
        await b.create(SERVICES, "default", service("dup-ip", clusterIP=ips[1]))
    with pytest.raises(errors.Invalid, match="provided port is already allocated"):
        await a.create(SERVICES, "default", service("dup-port", ports=[{"port": 80, "protocol": "TCP",
                                                                        "nodePort": ports[0]}]))
    # The refused creates gave back what they had taken meanwhile.
    assert len(await stored_offsets(a.store, SERVICE_IPS_KEY)) == 60
    assert len(await stored_offsets(a.store, NODE_PORTS_KEY)) == 60


async def test_deleting_or_retyping_a_service_frees_its_values(backend):
    (a,) = await registries(backend, 1)
    svc = await a.create(SERVICES, "default", service("web"))
    ip, port = svc["spec"]["clusterIP"], svc["spec"]["ports"][0]["nodePort"]
    # A second create of the same name fails and keeps nothing of its own.
    with pytest.raises(errors.AlreadyExists):
        await a.create(SERVICES, "default", service("web"))
    assert await stored_offsets(a.store, SERVICE_IPS_KEY) == {ip_offset(ip)}

    def to_cluster_ip(o: dict) -> dict:
        o["spec"]["type"] = "ClusterIP"
        o["spec"].pop("externalTrafficPolicy", None)
        for p in o["spec"]["ports"]:
            p.pop("nodePort", None)
        return o
    await a.guaranteed_update(SERVICES, "default", "web", to_cluster_ip)
    assert await stored_offsets(a.store, NODE_PORTS_KEY) == set()
    assert await stored_offsets(a.store, SERVICE_IPS_KEY) == {ip_offset(ip)}
    await a.delete(SERVICES, "default", "web", {})
    assert await stored_offsets(a.store, SERVICE_IPS_KEY) == set()
    # Both values may be asked for again.
    again = await a.create(SERVICES, "default", service("again", clusterIP=ip,
                                                         ports=[{"port": 80, "protocol": "TCP", "nodePort": port}]))
    assert again["spec"]["clusterIP"] == ip and again["spec"]["ports"][0]["nodePort"] == port


async def test_repair_marks_held_values_and_frees_leaks_after_three_passes(backend):
    (a,) = await registries(backend, 1)
    svc = await a.create(SERVICES, "default", service("web"))
    held = ip_offset(svc["spec"]["clusterIP"])
    # The bitmap lost the Service's address and holds one no Service has (a create that
    # died between its reservation and its write).
    leaked = held % 200 + 3
    kv = await a.store.get(SERVICE_IPS_KEY)
    assert kv is not None
    doc = orjson.loads(kv.value)
    doc["data"] = base64.b64encode((1 << leaked).to_bytes(32, "big")).decode()
    await a.store.update(SERVICE_IPS_KEY, orjson.dumps(doc), kv.mod_revision)
    fresh = ServiceAllocator(CIDR, store=a.store)  # a server starting on this store
    await fresh.repair()
    assert await stored_offsets(a.store, SERVICE_IPS_KEY) == {held, leaked}
    await fresh.repair()
    assert await stored_offsets(a.store, SERVICE_IPS_KEY) == {held, leaked}
    await fresh.repair()
    assert await stored_offsets(a.store, SERVICE_IPS_KEY) == {held}


async def test_a_server_given_another_range_takes_the_stored_one(backend):
    (a,) = await registries(backend, 1)
    await a.create(SERVICES, "default", service("web"))
    other = ServiceAllocator("127.96.1.0/24", store=a.store)
    await other.repair()
    assert str(other.net) == CIDR and other.api_service_ip == "127.96.0.1"


async def test_servers_starting_together_agree_on_one_cluster_id_and_service_range(backend):
    # Two servers starting at the same moment on an empty store: each would pin its own block;
    # whichever stores first wins and the other is told the stored range (and the same id).
    from kubelite.server import cluster_id, pin_service_range, stored_service_range
    stores = [await backend.open() for _ in range(2)] if backend.kind == "etcd" else [await backend.open()] * 2
    assert await stored_service_range(stores[0]) == ""
    ids = await asyncio.gather(*[cluster_id(s) for s in stores])
    pinned = await asyncio.gather(pin_service_range(stores[0], "127.96.0.0/20"),
                                  pin_service_range(stores[1], "127.96.16.0/20"))
    assert ids[0] == ids[1] and len(ids[0]) == 32
    assert pinned[0] == pinned[1] in ("127.96.0.0/20", "127.96.16.0/20")
    assert await stored_service_range(stores[1]) == pinned[0]
    # The allocator of either server then hands out addresses of that range only.
    reg = Registry(stores[1], ServiceAllocator("127.96.32.0/20", store=stores[1]))
    await reg.allocator.repair()
    await reg.create(NAMESPACES, "", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}})
    svc = await reg.create(SERVICES, "default", service("web"))
    assert ipaddress.ip_address(svc["spec"]["clusterIP"]) in ipaddress.ip_network(pinned[0])


def _slow_rolling_web(srv) -> None:
    """A 3-replica Deployment `web`, rolled out, whose next rollout replaces one pod at a time
    with each new pod held 3 s before it counts (time for a failure to land mid-rollout)."""
    srv.kubectl("create", "deployment", "web", "--image=gcr.io/google-samples/kubernetes-bootcamp:v1",
                "--replicas=3", check=True)
    srv.kubectl("patch", "deployment", "web", "-p",
                json.dumps({"spec": {"minReadySeconds": 3,
                                     "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}}}),
                check=True)
    srv.kubectl("rollout", "status", "deployment/web", "--timeout=120s", check=True)


def _node_names(srv) -> list[str]:
    return [n["metadata"]["name"] for n in srv.kjson("get", "nodes")["items"]]


def _held_rollout(srv, image: str) -> None:
    """Start a rollout of deployment/web to ``image`` that cannot finish until ``_release``: the
    node is cordoned first, so the new ReplicaSet's first pod stays Pending and (maxUnavailable
    0) no old pod goes. Returns once that is the state: the rollout is under way, not done."""
    nodes = _node_names(srv)
    assert nodes, "no node to run the rollout on"
    for node in nodes:
        srv.kubectl("cordon", node, check=True)
    rollout(srv, image)

    def held() -> bool:
        rss = srv.kjson("get", "replicasets", "-l", "app=web")["items"]
        new = [r for r in rss if r["spec"]["template"]["spec"]["containers"][0]["image"] == image]
        pods = [p for p in srv.kjson("get", "pods", "-l", "app=web")["items"]
                if p["spec"]["containers"][0]["image"] == image]
        status = srv.kjson("get", "deployment", "web")["status"]
        return (len(rss) == 2 and len(new) == 1 and new[0]["spec"]["replicas"] == 1 and len(pods) == 1
                and not pods[0]["spec"].get("nodeName")
                and status.get("updatedReplicas") == 1 and status.get("availableReplicas") == 3)
    srv.wait_for(held, timeout=60, what="the rollout's first new pod, Pending on the cordoned node")


def _release(srv) -> None:
    """Let the held rollout go on: uncordon the node (retried: the store may be failing over)."""
    for node in _node_names(srv):
        srv.wait_for(lambda node=node: srv.kubectl("uncordon", node).returncode == 0, timeout=60,
                     what=f"uncordon {node}")


def test_two_servers_on_one_etcd_allocate_distinct_cluster_ips_and_node_ports(tmp_path):
    """Server B, started after A on A's etcd, uses the cluster's stored service range; Services
    created concurrently through both get distinct ClusterIPs and NodePorts."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    etcd = start_etcd(tmp_path / "etcd")
    a = b = None
    try:
        a = start_server(tmp_path / "a", *API_ONLY, "--datastore-endpoint", etcd.endpoint)
        shutil.copytree(a.data_dir / "tls", tmp_path / "b" / "data" / "tls")
        b = start_server(tmp_path / "b", *API_ONLY, "--datastore-endpoint", etcd.endpoint)
        assert a is not None and b is not None
        ca, cb = a.client_config(), b.client_config()

        async def create_all() -> list[dict]:
            clients = [Client(ca), Client(cb)]
            try:
                return await asyncio.gather(*[clients[i % 2].resource(SERVICES).create(service(f"svc-{i}"), "default")
                                              for i in range(40)])
            finally:
                for c in clients:
                    await c.close()
        created = asyncio.run(create_all())
        ips = [s["spec"]["clusterIP"] for s in created]
        ports = [s["spec"]["ports"][0]["nodePort"] for s in created]
        assert len(set(ips)) == 40 and len(set(ports)) == 40
        listed = b.kjson("get", "services", "-A")["items"]
        all_ips = [s["spec"]["clusterIP"] for s in listed if s["spec"].get("clusterIP") not in (None, "None")]
        assert len(all_ips) == len(set(all_ips))
        # Every address is in the one range stored in etcd (A's), whichever server handed it out.
        stored = json.loads(etcd.etcdctl("get", "--print-value-only", SERVICE_IPS_KEY))
        kube = a.kjson("get", "service", "kubernetes")["spec"]["clusterIP"]
        prefix = stored["range"].rsplit(".", 2)[0]
        assert kube.startswith(prefix) and all(ip.startswith(prefix) for ip in ips)
    finally:
        for s in (b, a):
            if s is not None:
                s.stop()
        etcd.stop()


def _serving_ip_sans(srv) -> set[str]:
    """The IP addresses the server's serving certificate names."""
    from cryptography import x509
    cert = x509.load_pem_x509_certificate((srv.data_dir / "tls" / "serving.crt").read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}


def _version_at(srv, ip: str, port: int = 443) -> str:
    """GET /version at ``ip`` over TLS verified with the cluster CA (by address, as in-cluster clients do)."""
    import ssl
    import urllib.request
    ctx = ssl.create_default_context(cafile=str(srv.data_dir / "tls" / "ca.crt"))
    try:
        with urllib.request.urlopen(f"https://{ip}:{port}/version", context=ctx, timeout=5) as r:
            return r.read().decode()
    except OSError:
        return ""


def test_servers_of_one_cluster_on_one_host_share_its_service_block(tmp_path):
    """A and B on one etcd, on one host, each with a node of its own: B takes the cluster's stored
    service block (A's), so both serving certificates name the one kubernetes ClusterIP, which is
    the Service's; only A runs the Service proxy (one per host: B logs why it runs none), and the
    kubernetes Service answers at its ClusterIP with a certificate that verifies."""
    etcd = start_etcd(tmp_path / "etcd")
    a = b = None
    (tmp_path / "a").mkdir()
    try:
        a = start_server(tmp_path / "a", "--runtime", "fake", "--disable", "dns", "--datastore-endpoint", etcd.endpoint)
        shutil.copytree(a.data_dir / "tls", tmp_path / "b" / "data" / "tls")
        # B is given another range: the cluster's stored one wins.
        b = start_server(tmp_path / "b", "--runtime", "fake", "--disable", "dns", "--node-name", "kubelite-b",
                         "--service-cidr", "127.100.0.0/20", "--datastore-endpoint", etcd.endpoint)
        kube_ip = b.kjson("get", "service", "kubernetes")["spec"]["clusterIP"]
        stored = json.loads(etcd.etcdctl("get", "--print-value-only", SERVICE_IPS_KEY))["range"]
        assert (a.data_dir / "service-cidr").read_text().strip() == stored
        assert (b.data_dir / "service-cidr").read_text().strip() == stored
        assert kube_ip in _serving_ip_sans(a) and kube_ip in _serving_ip_sans(b)
        assert "127.100.0.1" not in _serving_ip_sans(b)
        assert "no Service proxy in this server" in b.log_path.read_text()
        assert "no Service proxy in this server" not in a.log_path.read_text()
        assert '"gitVersion"' in a.wait_for(lambda: _version_at(a, kube_ip), timeout=60,
                                            what=f"the kubernetes Service at {kube_ip}")
        # Both servers are ready: B's readiness does not wait for a proxy it does not run.
        for srv in (a, b):
            assert srv.kubectl("get", "--raw", "/readyz").returncode == 0
    finally:
        for s in (b, a):
            if s is not None:
                s.stop()
        etcd.stop()


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("nft") is None,
                    reason="nodes take the kernel Service path only as root with nft (Debian nftables)")
def test_a_first_server_without_a_node_stores_a_range_the_nodes_can_route(tmp_path):
    """The first server on an empty etcd stores the cluster's service range for every server and
    node that joins later: one without a node of its own must not store a loopback block (no pod
    can reach it, so every node would fall back to the userspace proxy). On its own SQLite store
    the same server keeps its loopback ClusterIPs."""
    etcd = start_etcd(tmp_path / "etcd")
    srv = alone = None
    for d in ("first", "alone"):
        (tmp_path / d).mkdir()
    try:
        srv = start_server(tmp_path / "first", "--runtime", "fake", "--disable", "agent,proxy,dns",
                           "--datastore-endpoint", etcd.endpoint)
        stored = json.loads(etcd.etcdctl("get", "--print-value-only", SERVICE_IPS_KEY))["range"]
        assert not ipaddress.ip_network(stored).is_loopback, stored
        kube_ip = srv.kjson("get", "service", "kubernetes")["spec"]["clusterIP"]
        assert ipaddress.ip_address(kube_ip) in ipaddress.ip_network(stored)
        alone = start_server(tmp_path / "alone", *API_ONLY)
        assert ipaddress.ip_address(alone.kjson("get", "service", "kubernetes")["spec"]["clusterIP"]).is_loopback
    finally:
        for s in (alone, srv):
            if s is not None:
                s.stop()
        etcd.stop()


def _nft_tables() -> set[str]:
    out = subprocess.run(["nft", "list", "tables", "ip"], capture_output=True, text=True).stdout
    return {line.split()[-1] for line in out.splitlines() if line.startswith("table ip ")}


def _http_get(url: str) -> str:
    import urllib.request
    try:
        with urllib.request.urlopen(url, timeout=3) as r:
            return r.read().decode()
    except OSError:
        return ""


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("nft") is None,
                    reason="the kernel Service path needs root and nft (Debian nftables)")
def test_servers_of_one_cluster_on_one_host_both_route_its_services_in_their_own_tables(tmp_path):
    """A and B on one etcd and one host, each with a node, on the nftables path: A's rules are in the
    table named after the cluster's range, B's (the same ClusterIPs) in one named after its node, as a
    joined node's are; a Service whose pods run on B answers at its ClusterIP and NodePort, and still
    does once A has stopped (and taken its table with it)."""
    from kubelite.proxy.nftables import node_table_name, table_name
    etcd = start_etcd(tmp_path / "etcd")
    a = b = None
    made: set[str] = set()
    (tmp_path / "a").mkdir()
    try:
        a = start_server(tmp_path / "a", "--disable", "dns,ingress", "--datastore-endpoint", etcd.endpoint)
        shutil.copytree(a.data_dir / "tls", tmp_path / "b" / "data" / "tls")
        b = start_server(tmp_path / "b", "--disable", "dns,ingress", "--node-name", "kubelite-b",
                         "--datastore-endpoint", etcd.endpoint)
        cidr = (a.data_dir / "service-cidr").read_text().strip()
        assert (b.data_dir / "service-cidr").read_text().strip() == cidr
        shared, own = table_name(cidr), node_table_name(cidr, "kubelite-b")
        made |= {shared, own}
        assert {shared, own} <= _nft_tables(), b.log_tail()
        kube_ip = a.kjson("get", "service", "kubernetes")["spec"]["clusterIP"]
        assert kube_ip in _serving_ip_sans(a) and kube_ip in _serving_ip_sans(b)
        for node in _node_names(a):
            if node != "kubelite-b":
                a.kubectl("cordon", node, check=True)  # the pods run on B's node
        a.kubectl("create", "deployment", "web", "--image=gcr.io/google-samples/kubernetes-bootcamp:v1", check=True)
        a.kubectl("expose", "deployment", "web", "--type=NodePort", "--port=8080", check=True)
        a.kubectl("rollout", "status", "deployment/web", "--timeout=120s", check=True, timeout=150)
        svc = a.kjson("get", "service", "web")
        urls = [f"http://{svc['spec']['clusterIP']}:8080/", f"http://127.0.0.1:{svc['spec']['ports'][0]['nodePort']}/"]
        for url in urls:
            b.wait_for(lambda url=url: "Hello Kubernetes bootcamp!" in _http_get(url), timeout=60, what=url)
        assert a.stop() == 0
        assert shared not in _nft_tables() and own in _nft_tables()
        for url in urls:
            b.wait_for(lambda url=url: "Hello Kubernetes bootcamp!" in _http_get(url), timeout=60,
                       what=f"{url} through B's table alone")
        assert b.stop() == 0
        assert own not in _nft_tables()
    finally:
        for s in (b, a):
            if s is not None:
                s.stop()
        etcd.stop()
        for t in _nft_tables() & made:  # what a failed test left
            subprocess.run(["nft", "delete", "table", "ip", t], capture_output=True)


def kubernetes_endpoints(srv) -> set[tuple[str, int]]:
    """(address, port) pairs in Endpoints default/kubernetes."""
    ep = srv.kjson("get", "endpoints", "kubernetes")
    return {(a["ip"], p["port"]) for s in ep.get("subsets") or [] for a in s["addresses"] for p in s["ports"]}


def kubernetes_slices(srv) -> set[tuple[str, int]]:
    """(address, port) pairs in the EndpointSlices of the kubernetes Service."""
    items = srv.kjson("get", "endpointslices", "-l", "kubernetes.io/service-name=kubernetes")["items"]
    return {(a, p["port"]) for s in items for e in s.get("endpoints") or [] for a in e["addresses"]
            for p in s.get("ports") or []}


def test_kubernetes_service_lists_every_live_api_server(tmp_path):
    """Three servers on one etcd each keep a Lease kube-system/kube-apiserver-<id>; the
    kubernetes Service's Endpoints and EndpointSlices list all three (one port each: one
    subset per port); one stopped cleanly is gone at once, one killed once its Lease expires."""
    import signal
    etcd = start_etcd(tmp_path / "etcd")
    servers: list = []
    (tmp_path / "a").mkdir()
    try:
        a = start_server(tmp_path / "a", *API_ONLY, "--datastore-endpoint", etcd.endpoint)
        servers.append(a)
        for name in ("b", "c"):
            shutil.copytree(a.data_dir / "tls", tmp_path / name / "data" / "tls")
            servers.append(start_server(tmp_path / name, *API_ONLY, "--datastore-endpoint", etcd.endpoint))
        _, b, c = servers
        everyone = {("127.0.0.1", s.port) for s in servers}
        a.wait_for(lambda: kubernetes_endpoints(a) == everyone and kubernetes_slices(a) == everyone, timeout=60,
                   what="all three servers in the kubernetes Service's endpoints")
        leases = a.kjson("get", "leases", "-n", "kube-system", "-l", "apiserver.kubernetes.io/identity=kube-apiserver")
        assert len(leases["items"]) == 3
        assert all(item["metadata"]["name"].startswith("kube-apiserver-") for item in leases["items"])
        # A clean stop removes the server before it exits.
        assert c.stop() == 0
        assert kubernetes_endpoints(a) == everyone - {("127.0.0.1", c.port)}
        assert kubernetes_slices(a) == everyone - {("127.0.0.1", c.port)}
        assert len(a.kjson("get", "leases", "-n", "kube-system",
                           "-l", "apiserver.kubernetes.io/identity=kube-apiserver")["items"]) == 2
        # A killed server stays listed until its Lease expires, then drops out.
        b.stop(signal.SIGKILL)
        a.wait_for(lambda: kubernetes_endpoints(a) == {("127.0.0.1", a.port)}
                   and kubernetes_slices(a) == {("127.0.0.1", a.port)}, timeout=60,
                   what="the killed server to drop out of the endpoints")
    finally:
        for s in reversed(servers):
            s.stop()
        etcd.stop()


class Writer:
    """Creates ConfigMaps ``<prefix>-<n>`` one after another through one server (kubectl) in a
    thread, until stopped; ``acked`` holds the names whose create was answered with success."""

    def __init__(self, srv, prefix: str):
        self.srv = srv
        self.prefix = prefix
        self.acked: list[str] = []
        self.failed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            name = f"{self.prefix}-{n}"
            n += 1
            try:
                p = self.srv.kubectl("create", "configmap", name, timeout=30)
            except Exception:
                self.failed += 1
                continue
            if p.returncode == 0:
                self.acked.append(name)
            else:
                self.failed += 1
                if self.srv.proc.poll() is not None:
                    return  # its server is gone

    def stop(self) -> list[str]:
        """Stop writing; the acknowledged names."""
        self._stop.set()
        self._thread.join(timeout=60)
        return list(self.acked)


def configmap_names(srv) -> set[str]:
    return {o["metadata"]["name"] for o in srv.kjson("get", "configmaps")["items"]}


class ConfigMapWatch:
    """One watch on default's ConfigMaps through ``srv`` (kubectl), opened at the current
    resourceVersion and read in a thread; never reopened, so a gap or a reorder shows."""

    def __init__(self, srv):
        self.srv = srv
        rv = json.loads(srv.kubectl("get", "--raw", "/api/v1/namespaces/default/configmaps",
                                    check=True).stdout)["metadata"]["resourceVersion"]
        env = dict(os.environ, KUBECACHEDIR=str(srv.cache_dir), KUBECONFIG=srv.kubeconfig)
        self.proc = subprocess.Popen(
            [KUBECTL, "get", "--raw",
             f"/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={rv}&timeoutSeconds=600"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        self.seen: list[dict] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.strip():
                self.seen.append(json.loads(line))

    def added(self) -> list[str]:
        """Names of the ADDED events so far, in delivery order."""
        return [e["object"]["metadata"]["name"] for e in list(self.seen) if e["type"] == "ADDED"]

    def assert_saw_in_order(self, *acked: list[str]) -> None:
        """The watch, still open, delivered every name of each acknowledged list, each list in
        the order its creates were made, and resourceVersions only going up."""
        every = {n for names in acked for n in names}
        self.srv.wait_for(lambda: every <= set(self.added()), timeout=60,
                          what="the watch to deliver every acknowledged create")
        assert self.proc.poll() is None, "the watch ended"
        added = self.added()
        for names in acked:
            wanted = set(names)
            assert [n for n in added if n in wanted] == names
        rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in list(self.seen) if e["type"] != "BOOKMARK"]
        assert rvs == sorted(rvs) and len(rvs) == len(set(rvs))

    def close(self) -> None:
        """End the watch."""
        self.proc.terminate()
        self.proc.wait()


def rollout(srv, image: str) -> None:
    """Start a rollout of deployment/web to ``image`` (it takes a while: minReadySeconds)."""
    srv.kubectl("set", "image", "deployment/web", f"*={image}", check=True)  # every container


def test_server_killed_during_a_rollout_leaves_it_to_the_other(tmp_path):
    """B (no node) leads the controllers and the scheduler; A runs the node. A rollout is under
    way and B takes writes when B is killed with SIGKILL: A's controllers take the Leases
    over and finish the rollout, and every write B acknowledged is there."""
    import signal
    etcd = start_etcd(tmp_path / "etcd")
    a = b = None
    writer = None
    (tmp_path / "b").mkdir()
    try:
        b = start_server(tmp_path / "b", "--runtime", "fake", "--disable", "agent,proxy,dns",
                         "--datastore-endpoint", etcd.endpoint)
        b.wait_for(lambda: "became leader of kube-system/kube-controller-manager" in b.log_path.read_text()
                   and "became leader of kube-system/kube-scheduler" in b.log_path.read_text(),
                   what="B to lead the controllers and the scheduler")
        shutil.copytree(b.data_dir / "tls", tmp_path / "a" / "data" / "tls")
        a = start_server(tmp_path / "a", "--runtime", "fake", "--datastore-endpoint", etcd.endpoint)
        _slow_rolling_web(a)
        writer = Writer(b, "through-b")
        # The rollout is under way and held there (its first new pod cannot be scheduled) until
        # B is dead, so A's controllers and scheduler do all the rest of it.
        _held_rollout(a, "jocatalin/kubernetes-bootcamp:v2")
        a.wait_for(lambda: len(writer.acked) >= 3, what="B to acknowledge some writes")
        b.stop(signal.SIGKILL)
        acked = writer.stop()
        writer = None
        _release(a)
        # A's controllers take over once B's Lease expires, and the rollout finishes.
        a.wait_for(lambda: "became leader of kube-system/kube-controller-manager" in a.log_path.read_text(),
                   timeout=60, what="A to take the controller manager's Lease")
        a.kubectl("rollout", "status", "deployment/web", "--timeout=180s", check=True)
        d = a.kjson("get", "deployment", "web")
        assert d["status"]["updatedReplicas"] == 3 and d["status"]["availableReplicas"] == 3
        pods = a.kjson("get", "pods", "-l", "app=web")["items"]
        images = {c["image"] for p in pods if not p["metadata"].get("deletionTimestamp")
                  for c in p["spec"]["containers"]}
        assert images == {"jocatalin/kubernetes-bootcamp:v2"}
        missing = set(acked) - configmap_names(a)
        assert acked and not missing
    finally:
        if writer is not None:
            writer.stop()
        for s in (a, b):
            if s is not None:
                s.stop()
        etcd.stop()


def test_etcd_member_killed_and_restarted_during_a_rollout_loses_nothing(tmp_path):
    """A server on a 3-member etcd: one member (the one the server talks to first) is killed
    with SIGKILL during a rollout and while writes go on, then restarted. The rollout
    finishes, every acknowledged write is stored, and a watch opened before the kill sees
    every one of them, in order, on the same stream."""
    members = start_etcd_cluster(tmp_path / "etcd")
    srv = watcher = writer = None
    try:
        srv = start_server(tmp_path, "--runtime", "fake", "--datastore-endpoint", ",".join(m.endpoint for m in members))
        _slow_rolling_web(srv)
        watcher = ConfigMapWatch(srv)
        writer = Writer(srv, "cm")
        # Under way and held (its first new pod cannot be scheduled) until the member is down.
        _held_rollout(srv, "jocatalin/kubernetes-bootcamp:v2")
        srv.wait_for(lambda: len(writer.acked) >= 3, what="some writes before the kill")
        members[0].kill()
        before = len(writer.acked)
        _release(srv)
        srv.wait_for(lambda: len(writer.acked) >= before + 5, timeout=120,
                     what="writes acknowledged with one member down")
        members[0].start()
        srv.kubectl("rollout", "status", "deployment/web", "--timeout=180s", check=True)
        after = len(writer.acked)
        srv.wait_for(lambda: len(writer.acked) >= after + 3, timeout=60, what="writes after the member's return")
        acked = writer.stop()
        writer = None
        d = srv.kjson("get", "deployment", "web")
        assert d["status"]["updatedReplicas"] == 3 and d["status"]["availableReplicas"] == 3
        assert not set(acked) - configmap_names(srv)
        watcher.assert_saw_in_order(acked)
    finally:
        if writer is not None:
            writer.stop()
        if watcher is not None:
            watcher.close()
        if srv is not None:
            srv.stop()
        for m in members:
            m.stop()


def test_kubernetes_endpoints_group_servers_by_port_and_skip_expired_leases():
    import datetime
    import time

    from kubelite.api import meta
    from kubelite.controllers import apiserverleases as al

    def lease(addr: str, port: int, age: float) -> dict:
        renewed = meta.rfc3339_micro(meta.now() - datetime.timedelta(seconds=age))
        return {"metadata": {"name": f"l-{addr}-{port}",
                             "annotations": {al.ADDRESS_ANNOTATION: addr, al.PORT_ANNOTATION: str(port)}},
                "spec": {"renewTime": renewed, "leaseDurationSeconds": 15}}
    live = al.live_servers([lease("10.0.0.1", 6443, 1), lease("10.0.0.2", 6443, 2), lease("127.0.0.1", 7000, 3),
                            lease("10.0.0.9", 6443, 60)], time.time())
    assert live == [("10.0.0.1", 6443), ("10.0.0.2", 6443), ("127.0.0.1", 7000)]
    assert al.endpoints_subsets(live) == [
        {"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}], "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}]},
        {"addresses": [{"ip": "127.0.0.1"}], "ports": [{"name": "https", "port": 7000, "protocol": "TCP"}]}]
    slices = al.endpoint_slices(live)
    assert sorted(slices) == ["kubernetes", "kubernetes-7000"]
    assert [e["addresses"][0] for e in slices["kubernetes"]["endpoints"]] == ["10.0.0.1", "10.0.0.2"]
    assert slices["kubernetes-7000"]["ports"][0]["port"] == 7000
    assert all(s["metadata"]["labels"]["kubernetes.io/service-name"] == "kubernetes" for s in slices.values())
