"""Correct at scale, end to end on the fake runtime: a real `kubelite server` that allows
one mutating request in flight (apiserver/limits.py), and a joined `kubelite agent`.

``HeldSeat`` takes that one seat with a request whose body never comes, so every other
write of a client outside system:masters (the agent, the controllers) is answered 429
with Retry-After until the seat is given back; kubectl, as system:masters, is still
served.  A node agent that gave up on a 429 left pods Terminating for good; the garbage
collector must still remove the pods of a ReplicaSet deleted while its controller was
creating them."""
from __future__ import annotations

import json
import socket
import ssl

import pytest
from conftest import create_namespace, start_server
from nodeharness import apply, pod, start_agent, stop_proc

from kubelite.client.rest import ClientConfig

LIMITS = ("--max-mutating-requests-inflight", "1")


class HeldSeat:
    """A POST whose body never arrives: it holds a mutating in-flight seat until closed."""

    def __init__(self, srv) -> None:
        cfg = ClientConfig.from_kubeconfig(srv.kubeconfig)
        ctx = ssl.create_default_context(cafile=cfg.ca_file)
        ctx.check_hostname = False
        if cfg.cert_file:
            ctx.load_cert_chain(cfg.cert_file, cfg.key_file)
        auth = f"Authorization: Bearer {cfg.token}\r\n" if cfg.token else ""
        raw = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        self.sock = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        self.sock.sendall((f"POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}"
                           "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n").encode())

    def close(self) -> None:
        """Give the seat back."""
        self.sock.close()


@pytest.fixture(scope="module")
def tight(tmp_path_factory):
    """(server, joined node name): a fake-runtime cluster with in-flight caps of 2."""
    tmp = tmp_path_factory.mktemp("scale")
    srv = start_server(tmp, "--runtime", "fake", *LIMITS)
    agent = start_agent(srv, tmp, "n2", "127.0.0.2")
    try:
        def n2_ready():
            n = srv.kjson("get", "nodes")["items"]
            return any(x["metadata"]["name"] == "n2" and any(c["type"] == "Ready" and c["status"] == "True"
                                                             for c in x["status"].get("conditions", []))
                       for x in n)
        srv.wait_for(n2_ready, 60, what="node n2 Ready")
        yield srv, "n2"
    finally:
        stop_proc(agent)
        srv.stop()


def pods_in(srv, ns: str) -> list[dict]:
    return srv.kjson("get", "pods", "-n", ns)["items"]


def test_pods_deleted_while_the_agent_meets_429s_do_not_stay_terminating(tight, request):
    srv, node = tight
    ns = create_namespace(srv, request, "t429")
    n = 12
    apply(srv, ns, *(pod(f"p{i}", spec={"nodeSelector": {"kubernetes.io/hostname": node},
                                        "terminationGracePeriodSeconds": 1}) for i in range(n)))

    def all_running():
        pods = pods_in(srv, ns)
        return len(pods) == n and all(p.get("status", {}).get("phase") == "Running" for p in pods)
    srv.wait_for(all_running, 120, what=f"{n} pods Running on {node}")
    seat = HeldSeat(srv)
    try:
        srv.kubectl("delete", "pods", "--all", "-n", ns, "--wait=false", check=True, timeout=60)
        log = srv.data_dir.parent / f"agent-{node}.log"

        def every_delete_refused():
            text = log.read_text()
            return all(f"deleting pod {ns}/p{i}" in text for i in range(n))
        # The agent's last DELETE of each pod has met a 429 (and said so) at least once.
        srv.wait_for(every_delete_refused, 120, interval=0.5, what="a refused DELETE of every pod")
    finally:
        seat.close()
    srv.wait_for(lambda: not pods_in(srv, ns), 120, interval=1, what="every pod deleted by its node")


def test_pods_of_a_replicaset_deleted_while_creating_them_are_collected(tight, request):
    srv, _ = tight
    ns = create_namespace(srv, request, "gc")
    rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web"},
          "spec": {"replicas": 150, "selector": {"matchLabels": {"app": "web"}},
                   "template": {"metadata": {"labels": {"app": "web"}},
                                # Pending for good: no node has this label.
                                "spec": {"nodeSelector": {"example.com/none": "x"},
                                         "containers": [{"name": "c", "image": "x"}]}}}}
    srv.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(rs), check=True)
    srv.wait_for(lambda: len(pods_in(srv, ns)) >= 20, 60, what="the ReplicaSet creating pods")
    seat = HeldSeat(srv)  # the collector meets 429s on its first tries
    try:
        srv.kubectl("delete", "rs", "web", "-n", ns, "--wait=false", check=True)
        srv.wait_for(lambda: not srv.kjson("get", "rs", "-n", ns)["items"], 30, what="the ReplicaSet gone")
    finally:
        seat.close()

    def collected():
        return not pods_in(srv, ns) and not srv.kjson("get", "rs", "-n", ns)["items"]
    srv.wait_for(collected, 180, interval=1, what="every pod of the deleted ReplicaSet collected")
