"""NetworkPolicy enforced in the kernel, between oci pods of the test's own server.

Every address dialled is a pod's (10.244.x, on the bridge the test's server made) or a
ClusterIP that server's tables forward to one; the clients are busybox pods, the server
pod runs busybox httpd on two ports (8080 named "http", and 8081)."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kubelite.netpol.rules import table_name
from kubelite.node.runtime.oci.runtime import missing, state_dir
from tests.conftest import Server, start_server
from tests.test_runtime_oci import build_busybox_dir

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("nft") is None,
                                reason="pods in their own namespaces and the kernel data path need root and nft")

IMAGE = "busybox-np:1"
OTHER_NS = "np-blue"
BODY = "hello from an oci container"


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kubelite.cli", *args], capture_output=True, text=True, timeout=120)


def tables(family: str) -> set[str]:
    out = subprocess.run(["nft", "list", "tables", family], capture_output=True, text=True).stdout
    return {line.split()[-1] for line in out.splitlines() if line.startswith(f"table {family} ")}


def _pod(name: str, labels: dict[str, str], command: list[str], ns: str = "default",
         ports: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {"terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "c", "image": IMAGE, "command": command, "ports": ports or []}]}}


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    why = missing()
    if why is not None:
        pytest.skip(f"the oci runtime is not usable here: {why}")
    tmp = tmp_path_factory.mktemp("netpol")
    data = tmp / "data"
    p = _cli("image", "import", IMAGE, str(build_busybox_dir(tmp / "image")), "--cmd", "sh", "--data-dir", str(data))
    assert p.returncode == 0, p.stderr
    server = start_server(tmp, "--runtime", "oci", data_dir=data)
    CURRENT["srv"] = server
    table = ""
    try:
        table = table_name((data / "service-cidr").read_text().strip())
        sleeper = ["sleep", "3600"]
        web = ["sh", "-c", "httpd -p 8081 -h /www; exec httpd -f -p 8080 -h /www"]
        items = [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": OTHER_NS, "labels": {"team": "blue"}}},
            _pod("server", {"app": "server"}, web, ports=[{"name": "http", "containerPort": 8080},
                                                          {"containerPort": 8081}]),
            _pod("client-a", {"role": "a"}, sleeper),
            _pod("client-b", {"role": "b"}, sleeper),
            _pod("client-c", {"role": "c"}, sleeper, ns=OTHER_NS),
        ]
        server.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}),
                       check=True)
        server.kubectl("expose", "pod", "server", "--port=80", "--target-port=8080", check=True)
        for ns, name in (("default", "server"), ("default", "client-a"), ("default", "client-b"),
                         (OTHER_NS, "client-c")):
            p = server.kubectl("wait", "--for=condition=Ready", f"pod/{name}", "-n", ns, "--timeout=90s", timeout=120)
            assert p.returncode == 0, p.stderr + server.log_tail()
        assert table in tables("ip")
        yield server
    finally:
        CURRENT["srv"].stop()  # the restart test replaces the server
        killed = _cli("killall", "--data-dir", str(data))
        assert killed.returncode == 0, killed.stderr
        if table:
            assert table not in tables("ip") and table not in tables("bridge")


CURRENT: dict[str, Server] = {}
CLIENTS = {"a": ("default", "client-a"), "b": ("default", "client-b"), "c": (OTHER_NS, "client-c")}


def reaches(srv: Server, client: str, host: str, port: int = 8080) -> bool:
    """Whether an HTTP GET from the client pod to host:port gets the page (2 s without an answer = no)."""
    ns, pod = CLIENTS[client]
    script = f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 2 {host} {port}"
    p = srv.kubectl("exec", "-n", ns, pod, "--", "sh", "-c", script, timeout=60)
    return p.returncode == 0 and BODY in p.stdout


def server_ip(srv: Server) -> str:
    return srv.kjson("get", "pod", "server")["status"]["podIP"]


def apply_policy(srv: Server, name: str, spec: dict[str, Any], ns: str = "default") -> None:
    pol = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
           "metadata": {"name": name, "namespace": ns}, "spec": spec}
    srv.kubectl("apply", "-f", "-", input=json.dumps(pol), check=True)


def blocked(srv: Server, client: str, host: str, port: int = 8080) -> None:
    """Wait until the client no longer reaches host:port (the enforcer applied the policy)."""
    srv.wait_for(lambda: not reaches(srv, client, host, port), timeout=40, interval=0.5,
                 what=f"client {client} cut off from {host}:{port}")


@pytest.fixture
def clean(srv: Server) -> Iterator[Server]:
    """The policies a test made are removed, and every client reaches the server again, after it."""
    yield srv
    for ns in ("default", OTHER_NS):
        srv.kubectl("delete", "networkpolicy", "--all", "-n", ns, check=True)
    ip = server_ip(srv)
    for client in CLIENTS:
        srv.wait_for(_reach(srv, client, ip), timeout=40, interval=0.5, what=f"client {client} reaching the server again")


def _reach(srv: Server, client: str, host: str) -> Callable[[], bool]:
    return lambda: reaches(srv, client, host)


def test_without_any_policy_every_pod_reaches_the_server(clean: Server):
    ip = server_ip(clean)
    for client in CLIENTS:
        assert reaches(clean, client, ip), client
    assert reaches(clean, "a", ip, 8081)


def test_should_support_a_default_deny_ingress_policy(clean: Server):
    ip = server_ip(clean)
    apply_policy(clean, "deny-ingress", {"podSelector": {}})
    blocked(clean, "a", ip)
    assert not reaches(clean, "c", ip)  # from another namespace too


def test_should_enforce_policy_to_allow_traffic_only_from_a_pod_in_the_same_namespace_based_on_podselector(
        clean: Server):
    ip = server_ip(clean)
    apply_policy(clean, "allow-a", {"podSelector": {"matchLabels": {"app": "server"}},
                                    "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "a"}}}]}]})
    blocked(clean, "b", ip)
    assert reaches(clean, "a", ip)
    assert not reaches(clean, "c", ip)  # a bare podSelector means the policy's own namespace


def test_should_enforce_policy_to_allow_traffic_only_from_a_different_namespace_based_on_namespaceselector(
        clean: Server):
    ip = server_ip(clean)
    apply_policy(clean, "allow-blue", {"podSelector": {"matchLabels": {"app": "server"}},
                                       "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "blue"}}}]}]})
    blocked(clean, "a", ip)
    assert reaches(clean, "c", ip)


def test_should_deny_egress_from_pods_based_on_podselector(clean: Server):
    ip = server_ip(clean)
    apply_policy(clean, "deny-egress-a", {"podSelector": {"matchLabels": {"role": "a"}}, "policyTypes": ["Egress"]})
    blocked(clean, "a", ip)
    assert reaches(clean, "b", ip)


def test_should_allow_ingress_access_on_one_named_port(clean: Server):
    ip = server_ip(clean)
    apply_policy(clean, "allow-http", {"podSelector": {"matchLabels": {"app": "server"}},
                                       "ingress": [{"ports": [{"port": "http"}]}]})
    blocked(clean, "a", ip, 8081)
    assert reaches(clean, "a", ip, 8080)
    assert reaches(clean, "c", ip, 8080)


def test_a_policy_applies_to_traffic_reaching_the_pod_through_a_service_cluster_ip(clean: Server):
    cluster_ip = clean.kjson("get", "service", "server")["spec"]["clusterIP"]
    assert reaches(clean, "b", cluster_ip, 80)
    apply_policy(clean, "allow-a", {"podSelector": {"matchLabels": {"app": "server"}},
                                    "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "a"}}}]}]})
    blocked(clean, "b", cluster_ip, 80)
    assert reaches(clean, "a", cluster_ip, 80)


def test_egress_to_a_service_is_judged_by_the_pod_behind_it(clean: Server):
    cluster_ip = clean.kjson("get", "service", "server")["spec"]["clusterIP"]
    apply_policy(clean, "a-to-nobody", {"podSelector": {"matchLabels": {"role": "a"}}, "policyTypes": ["Egress"],
                                        "egress": [{"to": [{"podSelector": {"matchLabels": {"app": "nothing"}}}]}]})
    blocked(clean, "a", cluster_ip, 80)
    apply_policy(clean, "a-to-server", {"podSelector": {"matchLabels": {"role": "a"}}, "policyTypes": ["Egress"],
                                        "egress": [{"to": [{"podSelector": {"matchLabels": {"app": "server"}}}]}]})
    clean.wait_for(lambda: reaches(clean, "a", cluster_ip, 80), timeout=40, interval=0.5,
                   what="client a reaching the Service once a second policy allows its pod")


def _netns_of(srv: Server, client: str) -> str:
    """The network namespace of a client pod, from the runtime's state on disk."""
    ns, pod = CLIENTS[client]
    uid = srv.kjson("get", "pod", pod, "-n", ns)["metadata"]["uid"]
    with open(os.path.join(state_dir(str(srv.data_dir)), "pods", uid, "sandbox.json")) as f:
        return json.load(f)["netns"]


def reaches_from_netns(netns: str, host: str, port: int = 8080) -> bool:
    """The same GET as ``reaches``, run in the pod's namespace from the host (no API server needed)."""
    p = subprocess.run(["ip", "netns", "exec", netns, "busybox", "sh", "-c",
                        f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 2 {host} {port}"],
                       capture_output=True, text=True, timeout=30)
    return p.returncode == 0 and BODY in p.stdout


def table_handle(table: str) -> str:
    out = subprocess.run(["nft", "-a", "list", "table", "ip", table], capture_output=True, text=True).stdout
    m = re.search(r"# handle (\d+)", out.splitlines()[0] if out else "")
    return m.group(1) if m else ""


def test_rules_stay_in_the_kernel_while_the_server_is_down_and_are_resynced_by_the_next_one(srv: Server):
    ip = server_ip(srv)
    table = table_name((srv.data_dir / "service-cidr").read_text().strip())
    netns_b, netns_a = _netns_of(srv, "b"), _netns_of(srv, "a")
    apply_policy(srv, "allow-a", {"podSelector": {"matchLabels": {"app": "server"}},
                                  "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "a"}}}]}]})
    blocked(srv, "b", ip)
    before = table_handle(table)
    srv.stop(9)
    assert table in tables("ip")
    assert not reaches_from_netns(netns_b, ip)   # still enforced with no server running
    assert reaches_from_netns(netns_a, ip)
    new = start_server(srv.data_dir.parent, "--runtime", "oci", data_dir=srv.data_dir, port=srv.port)
    CURRENT["srv"] = new
    # The new enforcer replaced the table in one transaction (a new table handle), never flushing it first.
    new.wait_for(lambda: table_handle(table) not in ("", before), timeout=60, what="the table replaced")
    assert not reaches_from_netns(netns_b, ip)
    assert reaches_from_netns(netns_a, ip)
    new.kubectl("delete", "networkpolicy", "allow-a", check=True)
    new.wait_for(lambda: reaches_from_netns(netns_b, ip), timeout=40, interval=0.5,
                 what="client b reaching the server once the policy is gone")
