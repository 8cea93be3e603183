"""The nftables Service path end to end: pods in their own network namespaces (the
process runtime, as root), Services reached from pods and from the node, two servers on
one machine, rules that outlive a kill -9.  Every address dialled is 127.0.0.1, a
ClusterIP of a range routed locally (never off the machine), or a pod of the test's own
server, in namespaces that server made."""
from __future__ import annotations

import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import Server, create_namespace, free_port, start_server

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("nft") is None,
                                reason="the kernel Service path needs root and nft (Debian nftables)")

IMAGE = "gcr.io/google-samples/kubernetes-bootcamp:v1"
REPLY = re.compile(r"Running on: (\S+) ")


def tables() -> set[str]:
    out = subprocess.run(["nft", "list", "tables", "ip"], capture_output=True, text=True).stdout
    return {line.split()[-1] for line in out.splitlines() if line.startswith("table ip ")}


def table_of(srv: Server) -> str:
    cidr = (srv.data_dir / "service-cidr").read_text().strip()
    net, bits = cidr.split("/")
    return "kubelite_" + net.replace(".", "_") + f"_{bits}"


def stop_and_clean(srv: Server, sig: int = 15) -> None:
    """Stop ``srv``; remove its table if a failed test left it (the tests check removal before)."""
    srv.stop(sig)
    if (srv.data_dir / "service-cidr").exists() and table_of(srv) in tables():
        subprocess.run(["nft", "delete", "table", "ip", table_of(srv)], capture_output=True)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("nft"))
    try:
        assert table_of(srv) in tables(), "the server did not take the nftables path:\n" + srv.log_tail()
        yield srv
    finally:
        stop_and_clean(srv)


@pytest.fixture
def ns(request, cluster):
    return create_namespace(cluster, request)


def get(url: str, timeout: float = 3.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def deploy(k: Server, ns: str, name: str = "web", replicas: int = 1, **svc_spec: object) -> dict:
    """A bootcamp Deployment and a NodePort Service for it (with extra spec fields); the Service."""
    k.kubectl("-n", ns, "create", "deployment", name, f"--image={IMAGE}", f"--replicas={replicas}", check=True)
    k.kubectl("-n", ns, "expose", "deployment", name, "--type=NodePort", "--port=8080", check=True)
    if svc_spec:
        import json
        k.kubectl("-n", ns, "patch", "service", name, "--type=merge", "-p", json.dumps({"spec": svc_spec}),
                  check=True)
    p = k.kubectl("-n", ns, "rollout", "status", f"deployment/{name}", "--timeout=90s", timeout=120)
    assert p.returncode == 0, p.stderr + k.log_tail()
    return k.kjson("-n", ns, "get", "service", name)


def routed(k: Server, url: str, want: int = 1) -> set[str]:
    """Pods answering ``url`` once the rules name ``want`` of them (the proxy may lag the rollout)."""
    seen: set[str] = set()

    def check() -> bool:
        m = REPLY.search(get(url))
        if m:
            seen.add(m.group(1))
        return len(seen) >= want
    k.wait_for(check, timeout=30, what=f"{want} pod(s) answering {url}")
    return seen


def pods(k: Server, ns: str, app: str = "web") -> list[dict]:
    return k.kjson("-n", ns, "get", "pods", "-l", f"app={app}")["items"]


def exec_curl(k: Server, ns: str, pod: str, *args: str) -> subprocess.CompletedProcess:
    return k.kubectl("-n", ns, "exec", pod, "--", "curl", "-sS", "-m", "5", *args, timeout=30)


def test_a_pod_reaches_a_service_by_cluster_ip_and_node_port(cluster, ns):
    svc = deploy(cluster, ns, replicas=2)
    cip, np = svc["spec"]["clusterIP"], svc["spec"]["ports"][0]["nodePort"]
    cidr = (cluster.data_dir / "service-cidr").read_text().strip()
    assert cip.startswith(cidr.split(".")[0] + "."), (cip, cidr)
    routed(cluster, f"http://{cip}:8080/", want=2)
    client = pods(cluster, ns)[0]
    gateway = client["status"]["podIP"].rsplit(".", 1)[0] + ".1"
    for url in (f"http://{cip}:8080/", f"http://{gateway}:{np}/"):
        p = exec_curl(cluster, ns, client["metadata"]["name"], url)
        assert p.returncode == 0 and "Hello Kubernetes bootcamp!" in p.stdout, (url, p.stdout, p.stderr)
    # A pod reaching itself through its Service (hairpin) gets an answer too.
    names = set()
    for _ in range(12):
        p = exec_curl(cluster, ns, client["metadata"]["name"], f"http://{cip}:8080/")
        assert p.returncode == 0, p.stderr
        names |= set(REPLY.findall(p.stdout))
    assert client["metadata"]["name"] in names


def test_the_node_reaches_the_node_port_on_localhost_and_the_cluster_ip(cluster, ns):
    svc = deploy(cluster, ns)
    np = svc["spec"]["ports"][0]["nodePort"]
    assert routed(cluster, f"http://127.0.0.1:{np}/") == {pods(cluster, ns)[0]["metadata"]["name"]}
    assert routed(cluster, f"http://{svc['spec']['clusterIP']}:8080/")
    # The proxy holds the port on the host, so no other server hands it out again.
    from kubelite.proxy.ports import port_free
    assert not port_free(np, "TCP")


def test_the_kubernetes_service_reaches_the_api_server_from_a_pod(cluster, ns):
    deploy(cluster, ns)
    pod = pods(cluster, ns)[0]["metadata"]["name"]
    env = cluster.kubectl("-n", ns, "exec", pod, "--", "env", check=True).stdout
    host = re.search(r"^KUBERNETES_SERVICE_HOST=(\S+)$", env, re.M)
    assert host is not None and host.group(1) == cluster.kjson("get", "service", "kubernetes")["spec"]["clusterIP"]
    assert not host.group(1).startswith("127.")
    ca = str(cluster.data_dir / "tls" / "ca.crt")
    # The serving certificate covers the ClusterIP and the Service's names.
    p = exec_curl(cluster, ns, pod, "--cacert", ca, f"https://{host.group(1)}:443/version")
    assert p.returncode == 0 and '"gitVersion"' in p.stdout, p.stderr
    p = exec_curl(cluster, ns, pod, "--cacert", ca, "--resolve", f"kubernetes.default.svc:443:{host.group(1)}",
                  "https://kubernetes.default.svc/version")
    assert p.returncode == 0 and '"gitVersion"' in p.stdout, p.stderr


def test_session_affinity_client_ip_sends_a_client_to_one_pod(cluster, ns):
    svc = deploy(cluster, ns, replicas=3, sessionAffinity="ClientIP")
    url = f"http://127.0.0.1:{svc['spec']['ports'][0]['nodePort']}/"
    first = routed(cluster, url)
    assert {m for _ in range(15) for m in REPLY.findall(get(url))} == first
    # Without affinity the same client is spread over the pods.
    cluster.kubectl("-n", ns, "patch", "service", "web", "--type=merge", "-p",
                    '{"spec":{"sessionAffinity":"None"}}', check=True)
    routed(cluster, url, want=2)


def test_a_service_without_endpoints_refuses_at_once(cluster, ns):
    cluster.kubectl("-n", ns, "create", "service", "nodeport", "empty", "--tcp=80:8080", check=True)
    svc = cluster.kjson("-n", ns, "get", "service", "empty")
    np = svc["spec"]["ports"][0]["nodePort"]
    for addr in ((svc["spec"]["clusterIP"], 80), ("127.0.0.1", np)):
        def refused(addr: tuple[str, int] = addr) -> bool:
            try:
                socket.create_connection(addr, timeout=2).close()
            except ConnectionRefusedError:
                return True
            return False  # a timeout fails the wait: the refusal must come at once
        cluster.wait_for(refused, timeout=20, what=f"{addr} refused")


def _api_version(srv: Server, ip: str) -> str:
    ctx = ssl.create_default_context(cafile=str(srv.data_dir / "tls" / "ca.crt"))
    with urllib.request.urlopen(f"https://{ip}/version", context=ctx, timeout=5) as r:
        return r.read().decode()


def test_two_servers_on_one_machine_both_work(cluster, tmp_path):
    other = start_server(tmp_path)
    try:
        mine, theirs = table_of(cluster), table_of(other)
        assert mine != theirs and {mine, theirs} <= tables()
        for srv in (cluster, other):
            ip = srv.kjson("get", "service", "kubernetes")["spec"]["clusterIP"]
            assert '"gitVersion"' in _api_version(srv, ip)
        # A range a running server holds is refused, with a message that says so.
        taken = (cluster.data_dir / "service-cidr").read_text().strip()
        p = subprocess.run([sys.executable, "-m", "kubelite.cli", "server", "--data-dir", str(tmp_path / "third"),
                            "--api-port", str(free_port()), "--service-cidr", taken],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode != 0 and f"overlaps {taken}" in p.stderr + p.stdout, p.stderr
        other.stop()
        # Its table went with it (its pods did too); ours stays.
        assert theirs not in tables() and mine in tables()
    finally:
        stop_and_clean(other)


def test_rules_survive_kill_9_and_are_resynced_on_restart(tmp_path):
    srv = start_server(tmp_path)
    try:
        ns = "default"
        svc = deploy(srv, ns)
        url = f"http://127.0.0.1:{svc['spec']['ports'][0]['nodePort']}/"
        routed(srv, url)
        table = table_of(srv)
        srv.stop(9)
        assert table in tables()   # in the kernel, not in the dead process
        srv = start_server(tmp_path, data_dir=srv.data_dir, port=srv.port)
        assert table_of(srv) == table and table in tables()
        assert routed(srv, url)
        srv.stop()
        assert table not in tables()
    finally:
        stop_and_clean(srv)


def test_stopping_the_server_removes_its_table(tmp_path: Path):
    srv = start_server(tmp_path)
    table = table_of(srv)
    try:
        assert table in tables()
        assert srv.stop() == 0
        assert table not in tables()
    finally:
        stop_and_clean(srv)


UDP_ECHO = ("import os, socket\n"
            "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            "s.bind(('0.0.0.0', 5353))\n"
            "while True:\n"
            "    data, peer = s.recvfrom(512)\n"
            "    s.sendto(os.environ['HOSTNAME'].encode(), peer)\n")


def test_udp_flows_follow_the_endpoints_conntrack_is_cleaned(cluster, ns):
    import json
    cluster.kubectl("-n", ns, "create", "service", "clusterip", "echo", "--tcp=53:5353", check=True)
    cluster.kubectl("-n", ns, "patch", "service", "echo", "--type=json", "-p",
                    '[{"op":"replace","path":"/spec/ports/0/protocol","value":"UDP"}]', check=True)
    ip = cluster.kjson("-n", ns, "get", "service", "echo")["spec"]["clusterIP"]
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # one source port: one conntrack flow
    client.settimeout(1.0)

    def answer() -> str:
        try:
            client.sendto(b"hi", (ip, 53))
            return client.recv(512).decode()
        except (TimeoutError, ConnectionRefusedError):
            return ""
    try:
        assert answer() == ""   # no endpoints yet: refused, and the flow is in conntrack without a DNAT
        container = {"name": "echo", "image": IMAGE, "command": ["python3", "-c", UDP_ECHO],
                     "readinessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 1}}
        deploy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "echo"},
                  "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "echo"}},
                           "template": {"metadata": {"labels": {"app": "echo"}},
                                        "spec": {"terminationGracePeriodSeconds": 1, "containers": [container]}}}}
        cluster.kubectl("-n", ns, "apply", "-f", "-", input=json.dumps(deploy), check=True)
        first = cluster.wait_for(answer, timeout=60, what="the UDP echo answering the same flow")
        cluster.kubectl("-n", ns, "delete", "pod", first, "--wait=false", check=True)
        # The flow was translated to the pod that went; it must move to its replacement.
        second = cluster.wait_for(lambda: (a := answer()) and a != first and a, timeout=60,
                                  what="the same flow answered by the replacement pod")
        assert second.startswith("echo-")
    finally:
        client.close()


@pytest.fixture
def remote_host():
    """Another host on a link of its own: a network namespace the test makes (203.0.113.0/30,
    a documentation range; not test_multinode_oci's 198.51.100.0/24, which may be up on this
    machine at the same time under `pytest -n`), with forwarding enabled on the node's end of
    that link only."""
    name, here, there = f"kl-rem{os.getpid() % 10000}", f"klr{os.getpid() % 10000}a", f"klr{os.getpid() % 10000}b"

    def ip(*args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True)
    ip("netns", "add", name)
    try:
        ip("link", "add", here, "type", "veth", "peer", "name", there)
        ip("link", "set", there, "netns", name)
        ip("addr", "add", "203.0.113.1/30", "dev", here)
        ip("link", "set", here, "up")
        ip("-n", name, "addr", "add", "203.0.113.2/30", "dev", there)
        ip("-n", name, "link", "set", there, "up")
        ip("-n", name, "link", "set", "lo", "up")
        ip("-n", name, "route", "add", "default", "via", "203.0.113.1")
        with open(f"/proc/sys/net/ipv4/conf/{here}/forwarding", "w") as f:
            f.write("1")
        yield name
    finally:
        subprocess.run(["ip", "link", "del", here], capture_output=True)
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def test_a_node_port_answers_another_host(cluster, ns, remote_host):
    """NodePorts are DNATed for every local address, so a client on another host reaches
    them through the node's address on that host's link (upstream needs forwarding on the
    interface the traffic arrives on, as here)."""
    svc = deploy(cluster, ns)
    np = svc["spec"]["ports"][0]["nodePort"]
    routed(cluster, f"http://127.0.0.1:{np}/")
    p = subprocess.run(["ip", "netns", "exec", remote_host, "curl", "-sS", "-m", "5", f"http://203.0.113.1:{np}/"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and "Hello Kubernetes bootcamp!" in p.stdout, (p.stdout, p.stderr)
