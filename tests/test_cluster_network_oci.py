"""Pods call each other by Service name: cluster DNS and the kernel Service path together,
from inside oci containers (what a user does right after the tutorial).

Everything stays in namespaces the test's own server made: the pods, their bridge and the
ClusterIPs the server's nftables table forwards to them.  Names outside the cluster are
never asked for (the server runs offline and would refuse them)."""
from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator

import pytest

from kubelite.node.runtime.oci.runtime import missing
from tests.conftest import Server, start_server
from tests.test_runtime_oci import build_busybox_dir

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("nft") is None,
                                reason="pods in their own namespaces and the kernel Service path need root and nft")

IMAGE = "busybox-net:1"


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kubelite.cli", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    why = missing()
    if why is not None:
        pytest.skip(f"the oci runtime is not usable here: {why}")
    tmp = tmp_path_factory.mktemp("net")
    data = tmp / "data"
    p = _cli("image", "import", IMAGE, str(build_busybox_dir(tmp / "image")), "--cmd", "sh", "--data-dir", str(data))
    assert p.returncode == 0, p.stderr
    server = start_server(tmp, "--runtime", "oci", data_dir=data)
    try:
        web = {"name": "web", "image": IMAGE, "command": ["httpd", "-f", "-p", "8080", "-h", "/www"],
               "ports": [{"name": "http", "containerPort": 8080}]}
        deploy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                  "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                           "template": {"metadata": {"labels": {"app": "web"}},
                                        "spec": {"terminationGracePeriodSeconds": 1, "containers": [web]}}}}
        client = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "client"},
                  "spec": {"terminationGracePeriodSeconds": 1,
                           "containers": [{"name": "c", "image": IMAGE, "command": ["sleep", "3600"]}]}}
        server.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                             "items": [deploy, client]}), check=True)
        server.kubectl("expose", "deployment", "web", "--port=80", "--target-port=8080", check=True)
        server.kubectl("create", "service", "clusterip", "web-headless", "--clusterip=None", "--tcp=8080:8080",
                       check=True)
        server.kubectl("set", "selector", "service", "web-headless", "app=web", check=True)
        p = server.kubectl("rollout", "status", "deployment/web", "--timeout=90s", timeout=120)
        assert p.returncode == 0, p.stderr + server.log_tail()
        p = server.kubectl("wait", "--for=condition=Ready", "pod/client", "--timeout=90s", timeout=120)
        assert p.returncode == 0, p.stderr + server.log_tail()
        yield server
    finally:
        server.stop()
        killed = _cli("killall", "--data-dir", str(data))
        assert killed.returncode == 0, killed.stderr


def in_client(srv: Server, *argv: str) -> subprocess.CompletedProcess:
    return srv.kubectl("exec", "client", "--", *argv, timeout=60)


def http_get(srv: Server, host: str) -> subprocess.CompletedProcess:
    """GET / from inside the client pod (busybox nc: Debian's static busybox wget crashes)."""
    return in_client(srv, "sh", "-c", f"printf 'GET / HTTP/1.0\\r\\nHost: {host}\\r\\n\\r\\n' | busybox nc -w 3 {host} 80")


def web_pod_ips(srv: Server) -> set[str]:
    pods = srv.kjson("get", "pods", "-l", "app=web")["items"]
    return {p["status"]["podIP"] for p in pods}


@pytest.mark.parametrize("name", ["web", "web.default", "web.default.svc", "web.default.svc.cluster.local"])
def test_a_pod_reaches_a_service_by_its_dns_names(srv: Server, name: str):
    def answered() -> bool:
        p = http_get(srv, name)
        return p.returncode == 0 and "hello from an oci container" in p.stdout
    srv.wait_for(answered, timeout=30, what=f"http://{name}/ from inside a pod")


def test_a_pod_reaches_a_service_by_its_cluster_ip(srv: Server):
    ip = srv.kjson("get", "service", "web")["spec"]["clusterIP"]
    assert ipaddress.ip_address(ip) in ipaddress.ip_network("10.96.0.0/12")
    p = http_get(srv, ip)
    assert p.returncode == 0 and "hello from an oci container" in p.stdout, p.stderr


def test_pods_get_upstreams_resolv_conf_naming_kube_dns(srv: Server):
    kube_dns = srv.kjson("get", "service", "kube-dns", "-n", "kube-system")["spec"]["clusterIP"]
    conf = in_client(srv, "cat", "/etc/resolv.conf").stdout
    assert f"nameserver {kube_dns}" in conf.splitlines()
    assert any(line.startswith("search default.svc.cluster.local svc.cluster.local cluster.local")
               for line in conf.splitlines())
    assert "options ndots:5" in conf


def test_nslookup_of_a_headless_service_lists_every_ready_pod(srv: Server):
    want = web_pod_ips(srv)
    assert len(want) == 2

    def listed() -> bool:
        out = in_client(srv, "busybox", "nslookup", "web-headless.default.svc.cluster.local").stdout
        return all(ip in out for ip in want)
    srv.wait_for(listed, timeout=30, what=f"nslookup web-headless listing {sorted(want)}")


def test_nslookup_of_a_service_answers_its_cluster_ip(srv: Server):
    ip = srv.kjson("get", "service", "web")["spec"]["clusterIP"]
    out = in_client(srv, "busybox", "nslookup", "web.default.svc.cluster.local").stdout
    assert ip in out


INCLUSTER = """
import os
from kubernetes import client, config
print("host:", os.environ["KUBERNETES_SERVICE_HOST"])
config.load_incluster_config()
names = sorted(p.metadata.name for p in client.CoreV1Api().list_namespaced_pod("default").items)
print("pods:", " ".join(names))
"""


def _host_dirs() -> list[tuple[str, str]]:
    """(host directory, path in the container) for what the host's Python and the kubernetes
    package need, lent to the pod read-only. ``/lib`` and ``/lib64`` keep their names (the
    dynamic loader is asked for by that path) even where they are links into ``/usr``."""
    import kubernetes
    site = os.path.dirname(os.path.dirname(kubernetes.__file__))
    wanted = [os.path.realpath(d) for d in (sys.prefix, sys.base_prefix, site, "/usr/lib")] + ["/lib", "/lib64"]
    pairs = {d: os.path.realpath(d) for d in wanted if os.path.isdir(d)}
    # A mount inside another one would be hidden by it: keep the outermost container paths.
    return sorted((host, d) for d, host in pairs.items()
                  if not any(d != o and d.startswith(o + "/") for o in pairs))


def test_load_incluster_config_in_a_pod_lists_pods(srv: Server):
    """The official Python client, run inside an oci container with its projected token and
    ``KUBERNETES_SERVICE_HOST``, reaches the API server through the kubernetes Service."""
    import kubernetes
    srv.kubectl("create", "rolebinding", "incluster-view", "--clusterrole=view", "--serviceaccount=default:default",
                check=True)
    dirs = _host_dirs()
    site = os.path.dirname(os.path.dirname(kubernetes.__file__))
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "incluster"},
           "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                    "volumes": [{"name": f"host{i}", "hostPath": {"path": host, "type": "Directory"}}
                                for i, (host, _) in enumerate(dirs)],
                    "containers": [{"name": "py", "image": IMAGE,
                                    "command": [os.path.realpath(sys.executable), "-c", INCLUSTER],
                                    "env": [{"name": "PYTHONPATH", "value": site}],
                                    "volumeMounts": [{"name": f"host{i}", "mountPath": path, "readOnly": True}
                                                     for i, (_, path) in enumerate(dirs)]}]}}
    srv.kubectl("apply", "-f", "-", input=json.dumps(pod), check=True)
    try:
        phase = srv.wait_for(lambda: srv.kjson("get", "pod", "incluster").get("status", {}).get("phase")
                             in ("Succeeded", "Failed") and srv.kjson("get", "pod", "incluster")["status"]["phase"],
                             timeout=90, what="the in-cluster client pod to finish")
        logs = srv.kubectl("logs", "incluster").stdout
        assert phase == "Succeeded", logs + srv.log_tail()
        names = logs.split("pods:", 1)[1].split()
        host = logs.split("host:", 1)[1].split()[0]
        assert host == srv.kjson("get", "service", "kubernetes")["spec"]["clusterIP"]
        assert "client" in names and "incluster" in names
        assert len([n for n in names if n.startswith("web-")]) == 2
    finally:
        srv.kubectl("delete", "pod", "incluster", "--wait=false")
        srv.kubectl("delete", "rolebinding", "incluster-view")
