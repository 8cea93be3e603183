"""`kubelite server --datastore-endpoint` on a real etcd, driven by kubectl 1.33 (fake runtime):
a Deployment created, watched and rolled out, kept through a server restart, laid out in
etcd as kube-apiserver lays it; 410 Expired once etcd compacted; `kubelite datastore migrate`;
two servers on one etcd (shared watches, one leader for the controllers and the scheduler)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest

from tests.conftest import API_ONLY, KUBECTL, free_port, start_server
from tests.etcdkit import start_etcd


@pytest.fixture(scope="module")
def etcd(tmp_path_factory):
    """One etcd member for the module's servers."""
    e = start_etcd(tmp_path_factory.mktemp("etcd"))
    yield e
    e.stop()


def watch_lines(srv, *args: str) -> tuple[subprocess.Popen, list[str]]:
    """Start `kubectl get … --watch` printing event types; its output lines are collected as they come."""
    env = dict(os.environ, KUBECACHEDIR=str(srv.cache_dir), KUBECONFIG=srv.kubeconfig)
    p = subprocess.Popen([KUBECTL, "get", *args, "--watch", "--output-watch-events"], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, env=env)
    lines: list[str] = []

    def read() -> None:
        assert p.stdout is not None
        for line in p.stdout:
            lines.append(line.strip())
    threading.Thread(target=read, daemon=True).start()
    return p, lines


def test_deployment_create_get_watch_rollout_and_restart_on_etcd(etcd, tmp_path):
    srv = start_server(tmp_path, "--runtime", "fake", "--datastore-endpoint", etcd.endpoint)
    try:
        watcher, seen = watch_lines(srv, "deployments")
        try:
            srv.kubectl("create", "deployment", "web", "--image=gcr.io/google-samples/kubernetes-bootcamp:v1",
                        "--replicas=2", check=True)
            srv.kubectl("rollout", "status", "deployment/web", "--timeout=60s", check=True)
            d = srv.kjson("get", "deployment", "web")
            assert d["status"]["readyReplicas"] == 2
            srv.kubectl("set", "image", "deployment/web", "kubernetes-bootcamp=jocatalin/kubernetes-bootcamp:v2",
                        check=True)
            srv.kubectl("rollout", "status", "deployment/web", "--timeout=60s", check=True)
            # MODIFIED lines come from watch events only (a list prints ADDED).
            srv.wait_for(lambda: any(line.split()[:2] == ["MODIFIED", "web"] for line in seen if line),
                         what="kubectl's watch to show the rollout")
        finally:
            watcher.terminate()
            watcher.wait()
        rss = srv.kjson("get", "replicasets", "-l", "app=web")["items"]
        assert sorted(rs["spec"]["replicas"] for rs in rss) == [0, 2]
        before = srv.kjson("get", "deployment", "web")
        # The objects are in etcd, under kube-apiserver's keys, as JSON.
        keys = set(etcd.etcdctl("get", "--prefix", "/registry/", "--keys-only").split())
        assert "/registry/deployments/default/web" in keys
        assert "/registry/minions/kubelite-vm" in keys and "/registry/services/specs/default/kubernetes" in keys
        stored = json.loads(etcd.etcdctl("get", "--print-value-only", "/registry/deployments/default/web"))
        assert stored["metadata"]["uid"] == before["metadata"]["uid"]
        # A restarted server finds everything where it was.
        assert srv.stop() == 0
        srv = start_server(tmp_path, "--runtime", "fake", "--datastore-endpoint", etcd.endpoint,
                           data_dir=srv.data_dir)
        after = srv.kjson("get", "deployment", "web")
        assert after["metadata"]["uid"] == before["metadata"]["uid"]
        # Its controller may write its status again after the restart: the spec is what must be kept.
        assert after["spec"] == before["spec"]
        assert int(after["metadata"]["resourceVersion"]) >= int(before["metadata"]["resourceVersion"])
        srv.kubectl("rollout", "status", "deployment/web", "--timeout=60s", check=True)
        srv.kubectl("delete", "deployment", "web", check=True)
    finally:
        srv.stop()


def test_watch_from_a_compacted_revision_is_410_expired(tmp_path):
    e = start_etcd(tmp_path / "etcd")
    srv = None
    try:
        srv = start_server(tmp_path, *API_ONLY, "--datastore-endpoint", e.endpoint,
                           "--compact-interval", "0.2", "--compact-keep", "1")
        cm = json.loads(srv.kubectl("create", "configmap", "old", "-o", "json", check=True).stdout)
        old_rv = cm["metadata"]["resourceVersion"]
        srv.kubectl("create", "configmap", "newer", check=True)
        srv.kubectl("create", "configmap", "newest", check=True)

        def compacted() -> bool:
            # etcd itself refuses the old revision once the server compacted it.
            p = subprocess.run(["etcdctl", "--endpoints", e.endpoint, "get", "--rev", old_rv, "/registry/configmaps/",
                                "--prefix", "--keys-only"], capture_output=True, text=True,
                               env=dict(os.environ, ETCDCTL_API="3"))
            return "required revision has been compacted" in p.stderr
        srv.wait_for(compacted, what="etcd compacted past the first configmap")
        p = srv.kubectl("get", "--raw", f"/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={old_rv}"
                        "&timeoutSeconds=5")
        event = json.loads(p.stdout.splitlines()[0])
        assert event["type"] == "ERROR"
        assert event["object"]["code"] == 410 and event["object"]["reason"] == "Expired"
        assert "too old resource version" in event["object"]["message"]
    finally:
        if srv is not None:
            srv.stop()
        e.stop()


def test_datastore_migrate_moves_a_sqlite_cluster_into_etcd(tmp_path):
    data = tmp_path / "data"
    srv = start_server(tmp_path, *API_ONLY, data_dir=data)
    srv.kubectl("create", "namespace", "moved", check=True)
    srv.kubectl("create", "configmap", "settings", "-n", "moved", "--from-literal=colour=blue", check=True)
    srv.kubectl("create", "secret", "generic", "token", "-n", "moved", "--from-literal=t=s3cret", check=True)
    before = srv.kjson("get", "configmap", "settings", "-n", "moved")
    assert srv.stop() == 0
    e = start_etcd(tmp_path / "etcd")
    try:
        cmd = [sys.executable, "-m", "kubelite.cli", "datastore", "migrate", "--data-dir", str(data), "--to", e.endpoint]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        assert "copied" in p.stdout and f"--datastore-endpoint {e.endpoint}" in p.stdout
        # A second run refuses: the etcd is not empty any more.
        again = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert again.returncode == 1 and "already holds" in again.stderr
        srv = start_server(tmp_path, *API_ONLY, "--datastore-endpoint", e.endpoint, data_dir=data)
        try:
            after = srv.kjson("get", "configmap", "settings", "-n", "moved")
            assert after["metadata"]["uid"] == before["metadata"]["uid"] and after["data"] == {"colour": "blue"}
            secret = srv.kjson("get", "secret", "token", "-n", "moved")
            assert secret["data"]["t"] == "czNjcmV0"
            # The objects are writable in their new home.
            srv.kubectl("label", "configmap", "settings", "-n", "moved", "moved=yes", check=True)
        finally:
            srv.stop()
    finally:
        e.stop()


def test_server_refuses_a_bad_datastore_endpoint(tmp_path):
    p = subprocess.run([sys.executable, "-m", "kubelite.cli", "server", "--data-dir", str(tmp_path / "d"),
                        "--api-port", "1", "--datastore-endpoint", "unix:///run/etcd.sock"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and "--datastore-endpoint" in p.stderr and "http://" in p.stderr
    # Nothing listens on port 1: the server says it cannot reach etcd, and stops.
    p = subprocess.run([sys.executable, "-m", "kubelite.cli", "server", "--data-dir", str(tmp_path / "d"),
                        "--api-port", str(free_port()), "--disable", "controllers,scheduler,agent,proxy,dns",
                        "--datastore-endpoint", "http://127.0.0.1:1"], capture_output=True, text=True, timeout=120)
    assert p.returncode != 0 and "cannot use the datastore http://127.0.0.1:1" in p.stderr


def lease_holder(srv, name: str) -> str:
    """The holderIdentity of kube-system/<name> ("" when free or missing)."""
    p = srv.kubectl("get", "lease", name, "-n", "kube-system", "-o", "jsonpath={.spec.holderIdentity}")
    return p.stdout.strip() if p.returncode == 0 else ""


def test_two_servers_on_one_etcd_share_watches_and_elect_one_leader(tmp_path):
    """Server B (no node of its own) on server A's etcd and certificates: B's watches see
    A's writes in order, one controller manager and one scheduler act (Leases), a
    Deployment made through B runs on A's node, and B takes over when A stops."""
    import shutil
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    etcd = start_etcd(tmp_path / "etcd")
    a = b = None
    try:
        a = start_server(tmp_path / "a", "--runtime", "fake", "--datastore-endpoint", etcd.endpoint)
        # The servers of one cluster share its CA, service-account key and tokens.
        shutil.copytree(a.data_dir / "tls", tmp_path / "b" / "data" / "tls")
        b = start_server(tmp_path / "b", "--runtime", "fake", "--disable", "agent,proxy,dns",
                         "--datastore-endpoint", etcd.endpoint)
        # A watch on B from a revision B listed at gets the writes made through A, in order.
        listed = json.loads(b.kubectl("get", "--raw", "/api/v1/namespaces/default/configmaps", check=True).stdout)
        rv = listed["metadata"]["resourceVersion"]
        assert rv
        for i in range(3):
            a.kubectl("create", "configmap", f"from-a-{i}", check=True)
        a.kubectl("delete", "configmap", "from-a-1", check=True)
        p = b.kubectl("get", "--raw", f"/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={rv}"
                      "&timeoutSeconds=3", check=True)
        events = [json.loads(line) for line in p.stdout.splitlines()]
        assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
            ("ADDED", "from-a-0"), ("ADDED", "from-a-1"), ("ADDED", "from-a-2"), ("DELETED", "from-a-1")]
        b.wait_for(lambda: lease_holder(b, "kube-controller-manager") and lease_holder(b, "kube-scheduler"),
                   what="the controller manager's and the scheduler's Leases")
        cm, sched = lease_holder(b, "kube-controller-manager"), lease_holder(b, "kube-scheduler")
        assert cm and sched
        b.kubectl("create", "deployment", "shared", "--image=gcr.io/google-samples/kubernetes-bootcamp:v1",
                  "--replicas=2", check=True)
        b.kubectl("rollout", "status", "deployment/shared", "--timeout=60s", check=True)
        pods = b.kjson("get", "pods", "-l", "app=shared")["items"]
        assert len(pods) == 2 and all(p["spec"]["nodeName"] for p in pods)
        # Only one server acted: the other never led.
        assert (a.log_path.read_text().count("became leader of kube-system/kube-controller-manager")
                + b.log_path.read_text().count("became leader of kube-system/kube-controller-manager")) == 1
        # A stops (releasing its Leases): B's controllers and scheduler take over.
        assert a.stop() == 0
        b.wait_for(lambda: lease_holder(b, "kube-controller-manager") not in ("", cm), timeout=60,
                   what="B's controller manager to take the Lease")
        b.wait_for(lambda: lease_holder(b, "kube-scheduler") not in ("", sched), timeout=60,
                   what="B's scheduler to take the Lease")
        b.kubectl("scale", "deployment/shared", "--replicas=3", check=True)
        b.wait_for(lambda: len(b.kjson("get", "pods", "-l", "app=shared")["items"]) == 3,
                   what="B's controllers to create the third pod")
    finally:
        if b is not None:
            b.stop()
        if a is not None:
            a.stop()
        etcd.stop()


def test_requests_fail_cleanly_while_etcd_is_down_and_work_again_after(tmp_path):
    e = start_etcd(tmp_path / "etcd")
    srv = None
    try:
        srv = start_server(tmp_path, *API_ONLY, "--datastore-endpoint", e.endpoint)
        srv.kubectl("create", "configmap", "before", check=True)
        e.stop()
        p = srv.kubectl("get", "configmap", "before", timeout=120)
        assert p.returncode != 0 and "InternalError" in p.stderr and "etcd" in p.stderr
        readyz = srv.kubectl("get", "--raw", "/readyz")
        assert readyz.returncode != 0
        assert "Traceback" not in srv.log_path.read_text()
        e.start()
        srv.wait_for(lambda: srv.kubectl("get", "--raw", "/readyz").returncode == 0, timeout=60,
                     what="/readyz once etcd is back")
        srv.kubectl("create", "configmap", "after", check=True)
        names = {o["metadata"]["name"] for o in srv.kjson("get", "configmaps")["items"]}
        assert {"before", "after"} <= names
    finally:
        if srv is not None:
            srv.stop()
        e.stop()
