"""A joined node cut off by a network partition, and the partition healed (issue 14).

The joined node's link is cut by an nftables drop inside ITS namespace, so its agent cannot
reach the server: the Node goes NotReady (Unknown), its pods get the NoExecute
unreachable taint and are evicted after their tolerationSeconds, the Deployment's
replacements run on the server's node, and the StatefulSet's ``web-0`` waits (its old pod
stays Terminating while nobody can confirm it stopped). When the drop goes, the agent sees
its pods deleted, stops their containers and confirms, and the cluster ends with exactly
``replicas`` running containers machine-wide (counted in each node's runc state), never
two ``web-0`` at any time we look."""
from __future__ import annotations

import json
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubelite.node.runtime.oci.runc import list_sync
from kubelite.node.runtime.oci.runtime import state_dir
from tests.test_multinode_oci import IMAGE, TwoNodes, joined_cluster, pytestmark  # noqa: F401

REPLICAS = 2
CUT_TABLE = "kubelite_test_partition"


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoNodes]:
    with joined_cluster(tmp_path_factory.mktemp("partition")) as cluster:
        yield cluster


def running_pods(data_dir: Path) -> list[str]:
    """namespace/name of the pod of every running app container in the node's runc state
    (one entry per container; the pause containers are left out)."""
    oci = Path(state_dir(str(data_dir)))
    out = []
    for c in list_sync(str(oci / "runc")):
        bundle = Path(c.get("bundle") or "")
        if c.get("status") != "running" or bundle.parent.name != "containers":
            continue
        try:
            rec = json.loads((bundle.parent.parent / "sandbox.json").read_text())
        except OSError:
            continue
        out.append(f"{rec['namespace']}/{rec['name']}")
    return out


def machine_wide(nodes: TwoNodes) -> Counter[str]:
    """Running app containers per pod name, both nodes together."""
    return Counter(running_pods(nodes.srv.data_dir) + running_pods(nodes.agent_dir))


def _template(app: str) -> dict:
    # Short tolerations: evicted 3 s after the node is found unreachable / not ready.
    tolerations = [{"key": f"node.kubernetes.io/{t}", "operator": "Exists", "effect": "NoExecute",
                    "tolerationSeconds": 3} for t in ("unreachable", "not-ready")]
    return {"metadata": {"labels": {"app": app}},
            "spec": {"terminationGracePeriodSeconds": 1, "tolerations": tolerations,
                     "containers": [{"name": "c", "image": IMAGE, "command": ["sleep", "3600"]}]}}


def _workloads() -> dict:
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "app"},
              "spec": {"replicas": REPLICAS, "selector": {"matchLabels": {"app": "app"}}, "template": _template("app")}}
    headless = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                "spec": {"clusterIP": "None", "selector": {"app": "web"}, "ports": [{"port": 80}]}}
    sts = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web"},
           "spec": {"replicas": 1, "serviceName": "web", "selector": {"matchLabels": {"app": "web"}},
                    "template": _template("web")}}
    return {"apiVersion": "v1", "kind": "List", "items": [deploy, headless, sts]}


def _cut(nodes: TwoNodes, on: bool) -> None:
    """Drop everything on the joined host's link, inside its namespace (or remove the drop)."""
    if on:
        rules = (f"table inet {CUT_TABLE} {{\n"
                 f"\tchain cut_in {{ type filter hook input priority -400; policy accept; iifname \"{nodes.link}\" drop; }}\n"
                 f"\tchain cut_out {{ type filter hook output priority -400; policy accept; oifname \"{nodes.link}\" drop; }}\n"
                 f"\tchain cut_fwd {{ type filter hook forward priority -400; policy accept; "
                 f"iifname \"{nodes.link}\" drop; oifname \"{nodes.link}\" drop; }}\n}}\n")
        p = subprocess.run(["ip", "netns", "exec", nodes.netns, "nft", "-f", "-"], input=rules, text=True,
                           capture_output=True)
        assert p.returncode == 0, p.stderr
    else:
        subprocess.run(["ip", "netns", "exec", nodes.netns, "nft", "delete", "table", "inet", CUT_TABLE],
                       capture_output=True)


def _pods(nodes: TwoNodes) -> list[dict]:
    return nodes.srv.kjson("get", "pods", "-l", "app in (app,web)")["items"]


def _ready(node: dict) -> str:
    return next((c["status"] for c in node["status"].get("conditions") or [] if c["type"] == "Ready"), "")


def test_a_partitioned_node_heals_without_duplicated_pods(nodes: TwoNodes):
    srv = nodes.srv
    seen_web0: list[int] = []

    def never_two_web0() -> Counter[str]:
        running = machine_wide(nodes)
        seen_web0.append(running["default/web-0"])
        assert running["default/web-0"] <= 1, f"web-0 runs twice: {running}"
        return running

    def wait(cond, what: str, timeout: float = 120) -> None:
        def check() -> bool:
            never_two_web0()
            return bool(cond())
        srv.wait_for(check, timeout=timeout, interval=1.0, what=what + "\n" + nodes.agent_log())

    # Everything starts on the joined node.
    srv.kubectl("cordon", "node-a", check=True)
    srv.kubectl("apply", "-f", "-", input=json.dumps(_workloads()), check=True)
    wait(lambda: len([p for p in _pods(nodes) if p["status"].get("phase") == "Running"
                      and p["spec"].get("nodeName") == "node-b"]) == REPLICAS + 1,
         "the Deployment's and the StatefulSet's pods running on node-b")
    srv.kubectl("uncordon", "node-a", check=True)
    before = {p["metadata"]["name"] for p in _pods(nodes)}
    assert Counter(running_pods(nodes.agent_dir)) == Counter({f"default/{n}": 1 for n in before})

    _cut(nodes, True)
    try:
        wait(lambda: _ready(srv.kjson("get", "node", "node-b")) == "Unknown", "node-b to go NotReady (Unknown)")
        taints = {(t["key"], t["effect"]) for t in srv.kjson("get", "node", "node-b")["spec"].get("taints") or []}
        assert ("node.kubernetes.io/unreachable", "NoExecute") in taints, taints

        def replaced() -> bool:
            live = [p for p in _pods(nodes) if not p["metadata"].get("deletionTimestamp")
                    and p["metadata"]["labels"].get("app") == "app"]
            return (len(live) == REPLICAS and all(p["spec"].get("nodeName") == "node-a" for p in live)
                    and all(p["status"].get("phase") == "Running" for p in live))
        wait(replaced, "the Deployment's replacements running on node-a")
        # The evicted pods wait for node-b to confirm; web-0 is not replaced meanwhile.
        old = {p["metadata"]["name"]: p for p in _pods(nodes) if p["metadata"]["name"] in before}
        assert set(old) == before and all(p["metadata"].get("deletionTimestamp") for p in old.values()), old
        assert machine_wide(nodes)["default/web-0"] == 1
    finally:
        _cut(nodes, False)

    def healed() -> bool:
        if _ready(srv.kjson("get", "node", "node-b")) != "True":
            return False
        pods = _pods(nodes)
        if any(p["metadata"]["name"] in before and p["spec"].get("nodeName") == "node-b"
               and p["metadata"].get("uid") for p in pods if p["metadata"].get("deletionTimestamp")):
            return False
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        if len(live) != REPLICAS + 1 or not all(p["status"].get("phase") == "Running" for p in live):
            return False
        running = machine_wide(nodes)
        return running == Counter({f"default/{p['metadata']['name']}": 1 for p in live})
    wait(healed, "the partition to heal: node-b Ready, its evicted pods stopped, one container per live pod",
         timeout=180)
    running = never_two_web0()
    assert sum(v for k, v in running.items() if k.startswith("default/app-")) == REPLICAS, running
    assert running["default/web-0"] == 1, running
    assert not any(n in before and n != "web-0" for n in (k.split("/", 1)[1] for k in running)), running
    assert max(seen_web0) == 1
