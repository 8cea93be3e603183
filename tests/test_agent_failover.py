"""An agent that names two API servers of one cluster (one etcd) keeps working through the
second when the first is killed: its node stays Ready and a pod bound to it starts."""
from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys

from nodeharness import BOOTCAMP, node_token, stop_proc

from tests.conftest import start_server
from tests.etcdkit import start_etcd


def _node_ready(srv, name: str) -> bool:
    nodes = {n["metadata"]["name"]: n for n in srv.kjson("get", "nodes")["items"]}
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in ((nodes.get(name) or {}).get("status") or {}).get("conditions") or [])


def _lease_renewed(srv, name: str) -> str:
    leases = srv.kjson("get", "leases", "-n", "kube-node-lease")["items"]
    return next((le["spec"].get("renewTime") or "" for le in leases if le["metadata"]["name"] == name), "")


def test_an_agent_fails_over_to_the_second_server_when_the_first_is_killed(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    etcd = start_etcd(tmp_path / "etcd")
    a = b = agent = None
    try:
        a = start_server(tmp_path / "a", "--runtime", "fake", "--datastore-endpoint", etcd.endpoint)
        shutil.copytree(a.data_dir / "tls", tmp_path / "b" / "data" / "tls")  # one cluster: one CA, one token
        b = start_server(tmp_path / "b", "--runtime", "fake", "--disable", "agent,proxy,dns",
                         "--datastore-endpoint", etcd.endpoint)
        with open(tmp_path / "agent.log", "ab") as log:
            agent = subprocess.Popen(
                [sys.executable, "-m", "kubelite.cli", "agent", "--server", f"{a.url},{b.url}",
                 "--token", node_token(a), "--ca-file", str(a.data_dir / "tls" / "ca.crt"), "--node-name", "far",
                 "--node-ip", "127.0.0.6", "--runtime", "fake", "--data-dir", str(tmp_path / "agent")],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        b.wait_for(lambda: _node_ready(b, "far") and _lease_renewed(b, "far"), timeout=60,
                   what="node far Ready with its Lease")

        a.stop(signal.SIGKILL)
        before = _lease_renewed(b, "far")
        # The agent renews its Lease every 10 s; the renewal must now come through B.
        b.wait_for(lambda: _lease_renewed(b, "far") != before, timeout=45, what="far's Lease renewed through B")
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "after", "namespace": "default"},
               "spec": {"nodeName": "far", "containers": [{"name": "c", "image": BOOTCAMP}]}}
        b.kubectl("apply", "-f", "-", input=json.dumps(pod), check=True)
        agent_log = (tmp_path / "agent.log")
        b.wait_for(lambda: b.kjson("get", "pod", "after")["status"].get("phase") == "Running", timeout=60,
                   what=f"the pod on far Running (the agent's watch now on B); agent log:\n{agent_log.read_text()[-3000:]}")
        assert "unreachable; using" in (tmp_path / "agent.log").read_text()
    finally:
        if agent is not None:
            stop_proc(agent)
        for srv in (b, a):
            if srv is not None:
                srv.stop()
        etcd.stop()
