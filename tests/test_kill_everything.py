"""Issue 14's combined failure: a rollout under HTTP load through a NodePort while one API
server, then one etcd member, then the node running one of the pods are killed.

A 3-member etcd; server B (no node of its own: it leads the controllers and the scheduler,
and takes writes) and server A (node-a, oci) on it; a joined oci agent (node-b) in a network
namespace.  A Deployment of three busybox httpd pods spread over both nodes behind a
NodePort takes load from this host while its rollout is held (nodes cordoned) through the
three kills, then released.  Nothing may fail: no request, no acknowledged write, no event
on a watch opened before the first kill."""
from __future__ import annotations

import json
import signal
from pathlib import Path

from tests.conftest import start_server
from tests.etcdkit import start_etcd_cluster
from tests.nodeharness import node_token
from tests.test_etcd_ha import ConfigMapWatch, Writer, _held_rollout, _release, configmap_names
from tests.test_multinode_oci import HERE, IMAGE, joined_cluster, pytestmark  # noqa: F401
from tests.test_nft_oci import Load

V2 = "busybox-net:2"  # the same busybox under a second name: the rollout's new image


def _web() -> list[dict]:
    """Deployment `web` (3 httpd pods, one replaced at a time, each new one held 2 s before it
    counts) and its NodePort Service."""
    # Evicted 3 s after their node is found unreachable / not ready (upstream's default is 300 s).
    tolerations = [{"key": f"node.kubernetes.io/{t}", "operator": "Exists", "effect": "NoExecute",
                    "tolerationSeconds": 3} for t in ("unreachable", "not-ready")]
    container = {"name": "web", "image": IMAGE, "command": ["httpd", "-f", "-p", "8080", "-h", "/www"],
                 "ports": [{"containerPort": 8080}],
                 "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1}}
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"app": "web"}},
              "spec": {"replicas": 3, "minReadySeconds": 2, "selector": {"matchLabels": {"app": "web"}},
                       "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                       "template": {"metadata": {"labels": {"app": "web"}},
                                    "spec": {"terminationGracePeriodSeconds": 2, "tolerations": tolerations,
                                             "containers": [container]}}}}
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
           "spec": {"type": "NodePort", "selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}}
    return [deploy, svc]


def _ready(srv, node: str) -> str:
    conds = srv.kjson("get", "node", node)["status"].get("conditions") or []
    return next((c["status"] for c in conds if c["type"] == "Ready"), "")


def test_a_rollout_under_load_survives_killing_a_server_an_etcd_member_and_a_node(tmp_path: Path):
    members = start_etcd_cluster(tmp_path / "etcd")
    endpoints = ",".join(m.endpoint for m in members)
    b = None
    writers: list[Writer] = []
    watch = None
    try:
        # B first, so that it leads the controllers and the scheduler (the leader is the server
        # killed); it also stores the cluster's service range, one the nodes joining later route.
        (tmp_path / "b").mkdir()
        b = start_server(tmp_path / "b", "--runtime", "fake", "--disable", "agent,proxy,dns",
                         "--datastore-endpoint", endpoints)
        b.wait_for(lambda: all(f"became leader of kube-system/{lease}" in b.log_path.read_text()
                               for lease in ("kube-controller-manager", "kube-scheduler")),
                   timeout=60, what="B to lead the controllers and the scheduler")
        server_args = ("--datastore-endpoint", endpoints, "--token", node_token(b))
        with joined_cluster(tmp_path, server_args=server_args, images=(IMAGE, V2)) as nodes:
            a = nodes.srv
            assert "nftables data path" in a.log_path.read_text(), a.log_tail()
            a.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": _web()}),
                      check=True)
            p = a.kubectl("rollout", "status", "deployment/web", "--timeout=120s", timeout=150)
            assert p.returncode == 0, p.stderr + a.log_tail() + nodes.agent_log()
            placed = [p["spec"]["nodeName"] for p in a.kjson("get", "pods", "-l", "app=web")["items"]]
            assert sorted(set(placed)) == ["node-a", "node-b"], placed
            np = a.kjson("get", "service", "web")["spec"]["ports"][0]["nodePort"]
            watch = ConfigMapWatch(a)
            through_b, through_a = Writer(b, "through-b"), Writer(a, "through-a")
            writers += [through_b, through_a]
            # The load goes to node-a's NodePort: its rules live in the kernel, kept up to date by
            # node-a's proxy, which lives in server A. So the server killed is B: killing A would
            # also kill the proxy that must follow the rollout's endpoints (that alone is
            # test_nft_oci's kill -9, with nothing changing meanwhile).
            # At node-a's own link address, not loopback: a pod on node-b answers a loopback
            # client only through masquerading that loopback sources do not get.
            with Load(f"http://{HERE}:{np}/") as load:
                load.wait_more(20)
                _held_rollout(a, V2)

                # 1. Server B, leading the controllers and the scheduler, and taking writes: A's
                # take over when B's leases expire.
                a.wait_for(lambda: len(through_b.acked) >= 3, what="B to acknowledge some writes")
                b.stop(signal.SIGKILL)
                acked_b = through_b.stop()
                a.wait_for(lambda: all(f"became leader of kube-system/{lease}" in a.log_path.read_text()
                                       for lease in ("kube-controller-manager", "kube-scheduler")),
                           timeout=90, what="A to take over the controllers and the scheduler")
                load.wait_more(20)

                # 2. The etcd member A talks to first, killed, then back with its data.
                members[0].kill()
                before = len(through_a.acked)
                a.wait_for(lambda: len(through_a.acked) >= before + 5, timeout=120,
                           what="writes acknowledged with one member down")
                members[0].start()
                load.wait_more(20)

                # 3. node-b's agent (its containers live on, as a dead kubelet's do): the node goes
                # NotReady and its pod is evicted after its 3 s toleration.
                on_b = [p["metadata"]["name"] for p in a.kjson("get", "pods", "-l", "app=web")["items"]
                        if p["spec"].get("nodeName") == "node-b"]
                assert on_b
                nodes.agent.kill()
                nodes.agent.wait()
                a.wait_for(lambda: _ready(a, "node-b") == "Unknown", timeout=120, interval=1.0,
                           what="node-b to go NotReady (Unknown)")

                def evicted() -> bool:
                    pods = {p["metadata"]["name"]: p for p in a.kjson("get", "pods", "-l", "app=web")["items"]}
                    return all(n not in pods or pods[n]["metadata"].get("deletionTimestamp") for n in on_b)
                a.wait_for(evicted, timeout=60, interval=1.0, what=f"{on_b} evicted from node-b")

                _release(a)
                p = a.kubectl("rollout", "status", "deployment/web", "--timeout=180s", timeout=210)
                assert p.returncode == 0, p.stderr + a.log_tail()
                load.wait_more(20)
            assert load.failed == [], f"{len(load.failed)} failed of {load.ok + len(load.failed)}: {load.failed[:5]}"

            d = a.kjson("get", "deployment", "web")
            assert d["status"]["updatedReplicas"] == 3 and d["status"]["availableReplicas"] == 3
            live = [p for p in a.kjson("get", "pods", "-l", "app=web")["items"]
                    if not p["metadata"].get("deletionTimestamp")]
            assert len(live) == 3
            assert all(p["spec"]["containers"][0]["image"] == V2 and p["spec"]["nodeName"] == "node-a" for p in live)
            acked_a = through_a.stop()
            assert acked_b and acked_a
            assert not (set(acked_b) | set(acked_a)) - configmap_names(a)
            watch.assert_saw_in_order(acked_b, acked_a)
    finally:
        for w in writers:
            w.stop()
        if watch is not None:
            watch.close()
        if b is not None:
            b.stop()
        for m in members:
            m.stop()
