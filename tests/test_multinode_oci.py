"""Two nodes on two "hosts" with one pod network: the server's node here, and a `kubelite agent
--runtime oci` inside a network namespace this module makes (its own link, 198.51.100.0/24, a
documentation range that exists only between these two namespaces).

The joined node gets its pod CIDR from the server (node IPAM), both nodes route each other's
pod CIDR through the other's InternalIP (host-gw), and the joined node runs the nftables
Service path itself, so its pods reach pods on the server's node by pod IP, by ClusterIP and
by Service name (the cluster DNS listens on the server's node).  Everything the module
starts is stopped and removed: the agent and its containers, the server and its containers,
both nftables tables, the link and the namespace."""
from __future__ import annotations

import ipaddress
import itertools
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from kubelite.node.runtime.oci.runtime import missing
from tests.conftest import Server, start_server
from tests.nodeharness import node_token, stop_proc
from tests.test_cluster_network_oci import INCLUSTER, _host_dirs
from tests.test_runtime_oci import build_busybox_dir

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("nft") is None or shutil.which("nsenter") is None,
                       reason="network namespaces, containers and the kernel Service path need root and nft"),
    # Every joined cluster puts HERE/THERE on its link, so two cannot be up at once: under xdist
    # this file and test_multinode_partition.py (which imports this mark) share one worker.
    pytest.mark.xdist_group("multinode-link"),
]

IMAGE = "busybox-net:1"
HERE, THERE = "198.51.100.1", "198.51.100.2"
REPO = Path(__file__).resolve().parent.parent
_CLUSTERS = itertools.count()  # one set of link names per cluster a test process builds


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kubelite.cli", *args], capture_output=True, text=True, timeout=120,
                          cwd=REPO)


def _ip(*args: str, check: bool = True) -> None:
    subprocess.run(["ip", *args], check=check, capture_output=True)


def on_host(netns: str, scratch: Path, argv: list[str]) -> list[str]:
    """argv run as on another host: in network namespace ``netns`` with a sysfs of its own (as
    `ip netns exec` mounts one), keeping the machine's cgroup hierarchy, which runc needs
    (`ip netns exec` alone leaves /sys/fs/cgroup empty)."""
    keep = scratch / "cgroup"
    keep.mkdir(exist_ok=True)
    script = (f"mount --rbind /sys/fs/cgroup {keep} && umount -l /sys && mount -t sysfs sysfs /sys && "
              f"mount --rbind {keep} /sys/fs/cgroup && umount -l {keep} && exec {shlex.join(argv)}")
    return ["nsenter", f"--net=/run/netns/{netns}", "--", "unshare", "--mount", "--propagation", "slave", "--",
            "sh", "-c", script]


@dataclass
class TwoNodes:
    """The server (node-a, here) and the joined node (node-b, on the other host)."""

    srv: Server
    netns: str
    agent: subprocess.Popen
    agent_dir: Path
    agent_log_path: Path
    link: str  # the joined host's end of the link (inside netns)

    def agent_log(self) -> str:
        """The end of the joined agent's log (for failure messages)."""
        return self.agent_log_path.read_text(errors="replace")[-4000:]


def _pod(name: str, node: str, command: list[str], labels: dict[str, str] | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {}},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "c", "image": IMAGE, "command": command,
                                     "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {
                                         "fieldPath": "metadata.name"}}}]}]}}


WEB = ["sh", "-c", "mkdir -p /tmp/w && echo \"served by $POD_NAME\" > /tmp/w/index.html && "
                   "exec httpd -f -vv -p 8080 -h /tmp/w"]  # -vv: each request's client address in the log


@contextmanager
def joined_cluster(tmp: Path, server_args: Sequence[str] = (), images: Sequence[str] = (IMAGE,)) -> Iterator[TwoNodes]:
    """The server (node-a, here; ``server_args`` added to its command line) and a joined oci
    agent (node-b) in a network namespace of its own, both Ready, each holding ``images`` (one
    busybox under those names); everything is stopped and removed on the way out, also after a
    failure."""
    why = missing()
    if why is not None:
        pytest.skip(f"the oci runtime is not usable here: {why}")
    tag = (os.getpid() + next(_CLUSTERS)) % 10000
    netns, here, there = f"kmn{tag}", f"kmn{tag}a", f"kmn{tag}b"
    server_dir, agent_dir = tmp / "server", tmp / "agent"
    srv: Server | None = None
    agent: subprocess.Popen | None = None
    _ip("netns", "add", netns)
    try:
        _ip("link", "add", here, "type", "veth", "peer", "name", there)
        _ip("link", "set", there, "netns", netns)
        _ip("addr", "add", f"{HERE}/24", "dev", here)
        _ip("link", "set", here, "up")
        _ip("-n", netns, "addr", "add", f"{THERE}/24", "dev", there)
        _ip("-n", netns, "link", "set", there, "up")
        _ip("-n", netns, "link", "set", "lo", "up")
        for d in (server_dir, agent_dir):
            for n, image in enumerate(images):
                p = _cli("image", "import", image, str(build_busybox_dir(tmp / f"image-{d.name}-{n}")), "--cmd", "sh",
                         "--data-dir", str(d))
                assert p.returncode == 0, p.stderr
        srv = start_server(tmp, "--runtime", "oci", "--bind-address", HERE, "--node-ip", HERE, "--node-name", "node-a",
                           *server_args, data_dir=server_dir, host=HERE)
        argv = [sys.executable, "-m", "kubelite.cli", "agent", "--server", srv.url, "--token", node_token(srv),
                "--ca-file", str(server_dir / "tls" / "ca.crt"), "--node-name", "node-b", "--node-ip", THERE,
                "--runtime", "oci", "--data-dir", str(agent_dir)]
        with open(tmp / "agent.log", "ab") as log:
            agent = subprocess.Popen(on_host(netns, tmp, argv), stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
                                     start_new_session=True)
        cluster = TwoNodes(srv, netns, agent, agent_dir, tmp / "agent.log", there)

        def node_b_ready() -> bool:
            assert agent.poll() is None, cluster.agent_log()
            p = srv.kubectl("get", "node", "node-b", "-o", "json")
            if p.returncode != 0:
                return False
            node = json.loads(p.stdout)
            conds = {c["type"]: c["status"] for c in node["status"].get("conditions") or []}
            return conds.get("Ready") == "True" and bool(node["spec"].get("podCIDR"))
        srv.wait_for(node_b_ready, timeout=90, what="node-b to join with a pod CIDR\n" + cluster.agent_log())
        yield cluster
    finally:
        if agent is not None:
            stop_proc(agent)
            # The agent's containers outlive it (oci): stop them where they live.
            subprocess.run(on_host(netns, tmp, [sys.executable, "-m", "kubelite.cli", "killall", "--data-dir",
                                                str(agent_dir)]), capture_output=True, timeout=120, cwd=REPO)
        if srv is not None:
            srv.stop()
            killed = _cli("killall", "--data-dir", str(server_dir))
            assert killed.returncode == 0, killed.stderr
        _ip("link", "del", here, check=False)
        _ip("netns", "del", netns, check=False)


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoNodes]:
    with joined_cluster(tmp_path_factory.mktemp("multinode")) as cluster:
        srv = cluster.srv
        items = [_pod("web-a", "node-a", WEB, {"app": "web"}), _pod("web-b", "node-b", WEB, {"app": "web"}),
                 _pod("client-a", "node-a", ["sleep", "3600"]), _pod("client-b", "node-b", ["sleep", "3600"])]
        srv.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}),
                    check=True)
        srv.kubectl("create", "service", "clusterip", "web", "--tcp=80:8080", check=True)
        p = srv.kubectl("wait", "--for=condition=Ready", "pod/web-a", "pod/web-b", "pod/client-a", "pod/client-b",
                        "--timeout=120s", timeout=150)
        assert p.returncode == 0, p.stderr + srv.log_tail() + cluster.agent_log()
        yield cluster


def pod_ip(srv: Server, name: str) -> str:
    return srv.kjson("get", "pod", name)["status"]["podIP"]


def http_get(srv: Server, client: str, host: str, port: int = 80) -> subprocess.CompletedProcess:
    """GET / from inside pod ``client`` (busybox nc: Debian's static busybox wget crashes)."""
    return srv.kubectl("exec", client, "--", "sh", "-c",
                       f"printf 'GET / HTTP/1.0\\r\\nHost: {host}\\r\\n\\r\\n' | busybox nc -w 3 {host} {port}",
                       timeout=60)


def test_the_joined_node_gets_its_own_pod_cidr_from_the_server(nodes: TwoNodes):
    a = nodes.srv.kjson("get", "node", "node-a")["spec"]
    b = nodes.srv.kjson("get", "node", "node-b")["spec"]
    net_a, net_b = ipaddress.ip_network(a["podCIDR"]), ipaddress.ip_network(b["podCIDR"])
    assert b["podCIDRs"] == [b["podCIDR"]]
    assert net_b.subnet_of(ipaddress.ip_network("10.244.0.0/16")) and not net_b.overlaps(net_a)
    assert ipaddress.ip_address(pod_ip(nodes.srv, "web-b")) in net_b
    assert ipaddress.ip_address(pod_ip(nodes.srv, "web-a")) in net_a


@pytest.mark.parametrize("client,target", [("client-b", "web-a"), ("client-a", "web-b")])
def test_pods_on_two_nodes_reach_each_other_by_pod_ip(nodes: TwoNodes, client: str, target: str):
    ip = pod_ip(nodes.srv, target)

    def answered() -> bool:
        p = http_get(nodes.srv, client, ip, 8080)
        return p.returncode == 0 and f"served by {target}" in p.stdout
    nodes.srv.wait_for(answered, timeout=30, what=f"{client} -> {target} at {ip}:8080")


def _answers_from_both(nodes: TwoNodes, client: str, host: str) -> None:
    """Requests to ``host`` from ``client`` reach both web pods (one on each node) in time."""
    seen: set[str] = set()
    last: list[subprocess.CompletedProcess] = []

    def both() -> bool:
        p = http_get(nodes.srv, client, host)
        last[:] = [p]
        for name in ("web-a", "web-b"):
            if f"served by {name}" in p.stdout:
                seen.add(name)
        return seen == {"web-a", "web-b"}
    try:
        nodes.srv.wait_for(both, timeout=60, what=f"{client} -> {host} reaching both nodes' pods")
    except AssertionError as e:
        raise AssertionError(f"seen {sorted(seen)}; last answer {last[0].stdout!r} {last[0].stderr!r}") from e


@pytest.mark.parametrize("client", ["client-a", "client-b"])
def test_a_service_cluster_ip_reaches_pods_on_both_nodes(nodes: TwoNodes, client: str):
    ip = nodes.srv.kjson("get", "service", "web")["spec"]["clusterIP"]
    _answers_from_both(nodes, client, ip)


def test_a_pod_calling_a_service_on_another_node_keeps_its_address(nodes: TwoNodes):
    """Pod to pod across nodes is not masqueraded (host-gw routes pod addresses both ways)."""
    ip = nodes.srv.kjson("get", "service", "web")["spec"]["clusterIP"]
    client = pod_ip(nodes.srv, "client-b")

    def logged() -> bool:
        http_get(nodes.srv, "client-b", ip)
        # busybox httpd logs "[::ffff:10.244.90.3]:57816: url:/" (or without the brackets)
        out = nodes.srv.kubectl("logs", "web-a").stdout
        return re.search(rf"^(\[::ffff:)?{re.escape(client)}\]?:\d+: url:/", out, re.M) is not None
    try:
        nodes.srv.wait_for(logged, timeout=60, what=f"web-a logging a request from client-b ({client})")
    except AssertionError as e:
        raise AssertionError("web-a's log: " + nodes.srv.kubectl("logs", "web-a").stdout[-600:]) from e


def test_a_pod_on_the_joined_node_reaches_a_service_by_its_dns_name(nodes: TwoNodes):
    kube_dns = nodes.srv.kjson("get", "service", "kube-dns", "-n", "kube-system")["spec"]["clusterIP"]
    conf = nodes.srv.kubectl("exec", "client-b", "--", "cat", "/etc/resolv.conf", timeout=60).stdout
    assert f"nameserver {kube_dns}" in conf.splitlines(), conf
    _answers_from_both(nodes, "client-b", "web")


def test_each_node_routes_the_other_nodes_pod_cidr_via_its_internal_ip(nodes: TwoNodes):
    a = nodes.srv.kjson("get", "node", "node-a")["spec"]["podCIDR"]
    b = nodes.srv.kjson("get", "node", "node-b")["spec"]["podCIDR"]
    here = subprocess.run(["ip", "route", "show", "exact", b], capture_output=True, text=True).stdout
    there = subprocess.run(["ip", "-n", nodes.netns, "route", "show", "exact", a], capture_output=True, text=True).stdout
    assert f"via {THERE}" in here and "proto 107" in here, here
    assert f"via {HERE}" in there and "proto 107" in there, there


@pytest.mark.parametrize("from_host", ["here", "there"])
def test_a_node_port_on_either_node_reaches_pods_on_both_nodes(nodes: TwoNodes, from_host: str):
    """A client on one host calls the NodePort of the other host's node: the endpoint on the
    client's own host is reached through the other node (masqueraded there, so the reply
    goes back the way the request came)."""
    srv = nodes.srv
    if srv.kubectl("get", "service", "web-np").returncode != 0:
        srv.kubectl("create", "service", "nodeport", "web-np", "--tcp=80:8080", check=True)
        srv.kubectl("set", "selector", "service", "web-np", "app=web", check=True)
    np = srv.kjson("get", "service", "web-np")["spec"]["ports"][0]["nodePort"]
    target = THERE if from_host == "here" else HERE
    argv = ["curl", "-sS", "-m", "5", f"http://{target}:{np}/"]
    if from_host == "there":
        argv = ["ip", "netns", "exec", nodes.netns, *argv]
    seen: set[str] = set()

    def both() -> bool:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        seen.update(n for n in ("web-a", "web-b") if f"served by {n}" in p.stdout)
        return seen == {"web-a", "web-b"}
    try:
        srv.wait_for(both, timeout=60, what=f"NodePort {target}:{np} from {from_host}")
    except AssertionError as e:
        raise AssertionError(f"seen only {sorted(seen)}") from e


def test_the_joined_nodes_proxy_takes_part_in_the_drain_barrier(nodes: TwoNodes):
    """Its proxy holds a live proxy Lease, so a terminating pod waits for node-b too (drain.py)."""
    from kubelite.proxy.drain import lease_live

    def live() -> bool:
        p = nodes.srv.kubectl("get", "lease", "kubelite-proxy-node-b", "-n", "kube-system", "-o", "json")
        if p.returncode != 0:
            return False
        lease = json.loads(p.stdout)
        return lease["spec"]["holderIdentity"] == "node-b" and lease_live(lease)
    nodes.srv.wait_for(live, timeout=30, what="node-b's proxy Lease")
    labelled = nodes.srv.kjson("get", "lease", "-n", "kube-system", "-l", "kubelite.io/component=proxy")["items"]
    assert {x["metadata"]["name"] for x in labelled} >= {"kubelite-proxy-node-a", "kubelite-proxy-node-b"}


def test_load_incluster_config_in_a_pod_on_the_joined_node_lists_pods(nodes: TwoNodes):
    """The official Python client in a pod on node-b reaches the API server (on the other
    host) through the kubernetes Service: that DNAT may leave the node, masqueraded."""
    import kubernetes
    srv = nodes.srv
    srv.kubectl("create", "rolebinding", "incluster-view", "--clusterrole=view", "--serviceaccount=default:default",
                check=True)
    dirs = _host_dirs()
    site = os.path.dirname(os.path.dirname(kubernetes.__file__))
    pod = _pod("incluster-b", "node-b", [os.path.realpath(sys.executable), "-c", INCLUSTER])
    spec = pod["spec"]
    spec["restartPolicy"] = "Never"
    spec["volumes"] = [{"name": f"host{i}", "hostPath": {"path": host, "type": "Directory"}}
                       for i, (host, _) in enumerate(dirs)]
    spec["containers"][0]["env"].append({"name": "PYTHONPATH", "value": site})
    spec["containers"][0]["volumeMounts"] = [{"name": f"host{i}", "mountPath": path, "readOnly": True}
                                             for i, (_, path) in enumerate(dirs)]
    srv.kubectl("apply", "-f", "-", input=json.dumps(pod), check=True)
    try:
        def finished() -> str | None:
            phase = srv.kjson("get", "pod", "incluster-b").get("status", {}).get("phase")
            return phase if phase in ("Succeeded", "Failed") else None
        phase = srv.wait_for(finished, timeout=120, what="the in-cluster client pod on node-b to finish")
        logs = srv.kubectl("logs", "incluster-b").stdout
        assert phase == "Succeeded", logs + nodes.agent_log()
        host = logs.split("host:", 1)[1].split()[0]
        assert host == srv.kjson("get", "service", "kubernetes")["spec"]["clusterIP"]
        names = logs.split("pods:", 1)[1].split()
        assert {"web-a", "web-b", "client-b", "incluster-b"} <= set(names), logs
    finally:
        srv.kubectl("delete", "pod", "incluster-b", "--wait=false")


def test_pods_on_the_joined_node_reach_no_other_off_node_address(nodes: TwoNodes):
    """Only the kubernetes Service's DNAT leaves the node: the API server's address dialled
    directly (the server's host, off the pod network) stays blocked."""
    port = nodes.srv.url.rsplit(":", 1)[1]
    p = nodes.srv.kubectl("exec", "client-b", "--", "sh", "-c", f"busybox nc -w 3 {HERE} {port} </dev/null && echo OPEN",
                          timeout=60)
    assert "OPEN" not in p.stdout, p.stdout + p.stderr


DENY = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "web-deny"},
        "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"]}}
ALLOW = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "web-allow-clients"},
         "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"],
                  "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "client"}}}],
                               "ports": [{"protocol": "TCP", "port": 8080}]}]}}


def test_the_joined_node_enforces_network_policy_in_its_own_table(nodes: TwoNodes):
    from kubelite.node.joinnet import netpol_table_name, range_of
    cidr = range_of(nodes.srv.kjson("get", "service", "kubernetes")["spec"]["clusterIP"])
    table = netpol_table_name(cidr, "node-b")

    def listed() -> bool:
        out = subprocess.run(["ip", "netns", "exec", nodes.netns, "nft", "list", "tables"], capture_output=True,
                             text=True).stdout
        return f"ip {table}" in out
    nodes.srv.wait_for(listed, timeout=30, what=f"table {table} in node-b's namespace\n" + nodes.agent_log())
    assert (nodes.agent_dir / "netpol-table").read_text().strip() == table


@pytest.mark.parametrize("client,target", [("client-b", "web-a"), ("client-a", "web-b"), ("client-b", "web-b")])
def test_a_default_deny_ingress_policy_blocks_and_an_allow_rule_admits(nodes: TwoNodes, client: str, target: str):
    """Across nodes both ways, and between two pods on the joined node (which only its own
    enforcer sees): deny-all ingress for the web pods, then a rule admitting role=client."""
    srv = nodes.srv
    ip = pod_ip(srv, target)

    def answered() -> bool:
        p = http_get(srv, client, ip, 8080)
        return p.returncode == 0 and f"served by {target}" in p.stdout
    srv.wait_for(answered, timeout=30, what=f"{client} -> {target} before any policy")
    srv.kubectl("label", "pod", client, "role-", check=True)
    try:
        srv.kubectl("apply", "-f", "-", input=json.dumps(DENY), check=True)
        srv.wait_for(lambda: not answered(), timeout=60, interval=1.0, what=f"{client} -> {target} blocked")
        srv.kubectl("apply", "-f", "-", input=json.dumps(ALLOW), check=True)
        # Not yet a client: still blocked; labelled, it gets in.
        assert not answered()
        srv.kubectl("label", "pod", client, "role=client", check=True)
        srv.wait_for(answered, timeout=60, interval=1.0, what=f"{client} -> {target} admitted by the allow rule")
    finally:
        srv.kubectl("delete", "networkpolicy", "web-deny", "web-allow-clients", "--ignore-not-found")
        srv.kubectl("label", "pod", client, "role-")
    srv.wait_for(answered, timeout=60, interval=1.0, what=f"{client} -> {target} once the policies are gone")


def test_a_node_whose_agent_is_killed_goes_not_ready(nodes: TwoNodes):
    """Last in the module: the joined agent dies (its containers live on, as with k3s), its
    Lease stops being renewed and node lifecycle marks the Node NotReady/Unknown."""
    nodes.agent.kill()
    nodes.agent.wait()

    def not_ready() -> bool:
        node = nodes.srv.kjson("get", "node", "node-b")
        ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
        return ready["status"] == "Unknown" and ready["reason"] == "NodeStatusUnknown"
    nodes.srv.wait_for(not_ready, timeout=120, interval=1.0, what="node-b to go NotReady")
