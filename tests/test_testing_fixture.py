"""kubelite.testing: the public fixture (cluster(), reset, snapshot), the pytest plugin run
from a sample suite, and ``kubelite server --api-only`` / ``--allow-reset``."""
from __future__ import annotations

import http.client
import json
import os
import shutil
import ssl
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import KUBECTL, start_server, wait_for

from kubelite.testing import Cluster, ClusterError, cluster

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = Path(__file__).resolve().parent / "fixture_sample"


def kubectl(c: Cluster, *args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
    """The real kubectl against a fixture cluster."""
    env = dict(os.environ, KUBECONFIG=c.kubeconfig, KUBECACHEDIR=str(c.data_dir.parent / "kcache"))
    p = subprocess.run([KUBECTL, *args], capture_output=True, text=True, timeout=60, env=env, input=input)
    if check and p.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)}: {p.stderr}")
    return p


def kjson(c: Cluster, *args: str) -> dict:
    """kubectl … -o json, parsed."""
    return json.loads(kubectl(c, *args, "-o", "json").stdout)


def connect(c: Cluster, timeout: float = 30) -> http.client.HTTPSConnection:
    """An admin HTTPS connection to the fixture's API server."""
    ctx = ssl.create_default_context(cafile=c.ca_file)
    ctx.load_cert_chain(c.cert_file, c.key_file)
    return http.client.HTTPSConnection("127.0.0.1", c.port, context=ctx, timeout=timeout)


@pytest.fixture(scope="module")
def fx() -> Iterator[Cluster]:
    """One API-only fixture cluster for this module."""
    with cluster() as c:
        yield c


def crd_manifest(group: str, plural: str, kind: str) -> dict:
    """A minimal namespaced CRD."""
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{group}"},
            "spec": {"group": group, "scope": "Namespaced",
                     "names": {"plural": plural, "singular": kind.lower(), "kind": kind},
                     "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                         "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]}}


def served(c: Cluster, path: str) -> bool:
    """Does GET ``path`` answer 200?"""
    conn = connect(c)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        r.read()
        return r.status == 200
    finally:
        conn.close()


def test_cluster_is_api_only_with_admin_kubeconfig(fx: Cluster) -> None:
    """The default fixture is the API server alone, reachable with its kubeconfig and the Python client."""
    assert fx.url == f"https://127.0.0.1:{fx.port}"
    assert Path(fx.kubeconfig).is_file()
    readyz = kubectl(fx, "get", "--raw", "/readyz?verbose").stdout
    assert "[+]ping ok" in readyz
    assert "kubelite-controllers-synced" not in readyz and "kubelite-node-agent-ready" not in readyz
    assert "No resources found" in kubectl(fx, "get", "nodes").stderr
    import kubernetes.client
    with fx.kubernetes_client() as api:
        names = {n.metadata.name for n in kubernetes.client.CoreV1Api(api).list_namespace().items}
    assert {"default", "kube-system"} <= names


def test_reset_removes_what_tests_made_and_restores_bootstrap_objects(fx: Cluster) -> None:
    """After reset: new objects gone, deleted and changed bootstrap objects back, resourceVersions still grow."""
    fx.reset()
    view = kjson(fx, "get", "clusterrole", "view")
    kubectl(fx, "create", "namespace", "scratch")
    kubectl(fx, "create", "configmap", "leftover", "-n", "scratch", "--from-literal=a=b")
    kubectl(fx, "create", "configmap", "leftover", "-n", "default")
    kubectl(fx, "delete", "clusterrole", "view")
    kubectl(fx, "label", "namespace", "default", "touched=yes")
    before = int(kjson(fx, "get", "namespace", "default")["metadata"]["resourceVersion"])

    fx.reset()

    assert kubectl(fx, "get", "namespace", "scratch", check=False).returncode != 0
    # Only the bootstrap's ConfigMap (the aggregator's request-header settings) is left.
    left = {(c["metadata"]["namespace"], c["metadata"]["name"]) for c in kjson(fx, "get", "configmaps", "-A")["items"]}
    assert left == {("kube-system", "extension-apiserver-authentication")}
    restored = kjson(fx, "get", "clusterrole", "view")
    assert restored["rules"] == view["rules"]
    assert restored["metadata"]["uid"] == view["metadata"]["uid"]
    assert "touched" not in (kjson(fx, "get", "namespace", "default")["metadata"].get("labels") or {})
    # The restored namespace is a new write: its resourceVersion is newer than any before.
    after = int(kjson(fx, "get", "namespace", "default")["metadata"]["resourceVersion"])
    assert after > before
    # Writes go on normally after a reset.
    kubectl(fx, "create", "configmap", "again", "-n", "default")
    assert int(kjson(fx, "get", "configmap", "again")["metadata"]["resourceVersion"]) > after


POLICY = """
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: no-configmaps}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - {apiGroups: [""], apiVersions: ["v1"], operations: ["CREATE"], resources: ["configmaps"]}
  validations:
  - expression: "false"
    message: no configmaps here
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: no-configmaps}
spec:
  policyName: no-configmaps
  validationActions: [Deny]
"""


def test_reset_drops_admission_policies_made_since(fx: Cluster) -> None:
    """A policy removed by a reset stops refusing writes at once."""
    fx.reset()
    kubectl(fx, "apply", "-f", "-", input=POLICY)
    refused = wait_for(lambda: (p := kubectl(fx, "create", "configmap", "one", check=False)).returncode != 0 and p,
                       "the policy to refuse configmaps")
    assert "no configmaps here" in refused.stderr
    fx.reset()
    kubectl(fx, "create", "configmap", "two")
    assert [i["metadata"]["name"] for i in kjson(fx, "get", "configmaps")["items"]] == ["two"]


def test_reset_returns_to_the_snapshot_and_crds_follow() -> None:
    """A CRD in the snapshot stays served with its objects gone; a CRD made after it stops being served."""
    with cluster() as fx:  # its own: the snapshot changes what reset returns to
        _snapshot_and_crds(fx)


def _snapshot_and_crds(fx: Cluster) -> None:
    """Make gadgets, snapshot, add a Gadget and the gizmos CRD, reset, check what is served."""
    for plural, kind in (("gadgets", "Gadget"), ("gizmos", "Gizmo")):
        kubectl(fx, "create", "-f", "-", input=json.dumps(crd_manifest("fx.example.com", plural, kind)))
        if plural == "gadgets":
            wait_for(lambda: served(fx, "/apis/fx.example.com/v1/namespaces/default/gadgets"), "gadgets served")
            fx.snapshot()
            conn = connect(fx)
            conn.request("POST", "/apis/fx.example.com/v1/namespaces/default/gadgets",
                         body=json.dumps({"apiVersion": "fx.example.com/v1", "kind": "Gadget", "metadata": {"name": "g1"}}),
                         headers={"Content-Type": "application/json"})
            assert conn.getresponse().status == 201
            conn.close()
    wait_for(lambda: served(fx, "/apis/fx.example.com/v1/namespaces/default/gizmos"), "gizmos served")

    fx.reset()

    assert not served(fx, "/apis/fx.example.com/v1/namespaces/default/gizmos")
    assert served(fx, "/apis/fx.example.com/v1/namespaces/default/gadgets")
    conn = connect(fx)
    conn.request("GET", "/apis/fx.example.com/v1/namespaces/default/gadgets")
    assert json.loads(conn.getresponse().read())["items"] == []
    conn.close()


def test_watch_ends_on_reset_and_old_resource_version_is_expired(fx: Cluster) -> None:
    """An open watch ends at a reset; re-watching from before it gets 410 Expired (clients re-list)."""
    fx.reset()
    kubectl(fx, "create", "configmap", "w1", "-n", "default")
    rv = kjson(fx, "get", "configmap", "w1", "-n", "default")["metadata"]["resourceVersion"]
    conn = connect(fx, timeout=60)
    conn.request("GET", f"/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={rv}&timeoutSeconds=60")
    resp = conn.getresponse()
    assert resp.status == 200
    lines: list[bytes] = []
    reader = threading.Thread(target=lambda: lines.extend(resp), daemon=True)
    reader.start()

    fx.reset()

    reader.join(timeout=30)
    assert not reader.is_alive(), "the watch did not end at the reset"
    conn.close()
    assert lines == []  # the reset's changes are not replayed as events: clients re-list
    conn = connect(fx)
    conn.request("GET", f"/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={rv}")
    event = json.loads(conn.getresponse().readline())
    conn.close()
    assert event["type"] == "ERROR"
    assert event["object"]["code"] == 410 and event["object"]["reason"] == "Expired"


def test_reset_is_for_the_admin_only(fx: Cluster) -> None:
    """Other users are Forbidden; GET is not allowed."""
    p = kubectl(fx, "create", "--raw", "/kubelite/reset", "-f", "/dev/null", "--as", "jane", check=False)
    assert p.returncode != 0
    assert 'User "jane" cannot post path "/kubelite/reset"' in p.stderr
    p = kubectl(fx, "get", "--raw", "/kubelite/reset", check=False)
    assert p.returncode != 0 and "MethodNotAllowed" in p.stderr


def test_reset_is_not_served_without_allow_reset(api_server) -> None:
    """A server started without --allow-reset has no such path."""
    p = api_server.kubectl("create", "--raw", "/kubelite/reset", "-f", "/dev/null")
    assert p.returncode != 0 and "NotFound" in p.stderr


def test_api_only_flag_with_controllers_enabled(tmp_path: Path) -> None:
    """`kubelite server --api-only --enable controllers`: the controllers run (readyz checks them), no node."""
    srv = start_server(tmp_path, "--api-only", "--enable", "controllers")
    try:
        readyz = srv.kubectl("get", "--raw", "/readyz?verbose", check=True).stdout
        assert "kubelite-controllers-synced ok" in readyz
        assert "kubelite-node-agent-ready" not in readyz
        # The namespace controller runs: a deleted namespace goes away.
        srv.kubectl("create", "namespace", "gone", check=True)
        srv.kubectl("delete", "namespace", "gone", "--wait=false", check=True)
        srv.wait_for(lambda: srv.kubectl("get", "namespace", "gone").returncode != 0, what="namespace deleted")
    finally:
        srv.stop()
    p = subprocess.run([sys.executable, "-m", "kubelite.cli", "server", "--data-dir", str(tmp_path / "x"),
                        "--api-only", "--enable", "bogus"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "--enable: unknown component(s): bogus" in p.stderr
    p = subprocess.run([sys.executable, "-m", "kubelite.cli", "server", "--data-dir", str(tmp_path / "x"),
                        "--enable", "controllers"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "--enable only adds components back to --api-only" in p.stderr


async def test_async_cluster_and_reset() -> None:
    """`async with cluster()` works from async tests, and so does areset()."""
    async with cluster() as c:
        assert served(c, "/api/v1/namespaces/default")
        kubectl(c, "create", "configmap", "x")
        await c.areset()
        assert kjson(c, "get", "configmaps")["items"] == []
        data_dir = c.data_dir
    assert not data_dir.exists()


def test_start_failure_raises_with_the_server_log(tmp_path: Path) -> None:
    """A server that cannot start: ClusterError with its own words, and no directory left."""
    with pytest.raises(ClusterError, match="service-cidr"), \
            cluster(args=["--service-cidr", "not-a-cidr"], directory=str(tmp_path)):
        pass
    assert list(tmp_path.iterdir()) == []


def test_fixture_used_from_a_sample_test_suite(tmp_path: Path) -> None:
    """The pytest plugin from another project's suite: per-test reset, snapshot with a CRD, one session cluster."""
    suite = tmp_path / "suite"
    shutil.copytree(SAMPLE, suite)
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
    p = subprocess.run([sys.executable, "-m", "pytest", "-p", "kubelite.testing.plugin", "-p", "no:cacheprovider",
                        "-q", "-rA"], cwd=suite, env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-2000:]
    assert "5 passed" in p.stdout
    for name in ("test_a_creates_objects", "test_b_starts_from_a_clean_cluster", "test_d_reset_keeps_the_snapshot_crd"):
        assert f"PASSED sample_suite.py::{name}" in p.stdout


def test_plugin_entry_point_is_declared() -> None:
    """pytest finds the plugin in an installed kubelite through the pytest11 entry point."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["pytest11"] == {"kubelite": "kubelite.testing.plugin"}


def test_whole_cluster_fixture_keeps_working_after_reset() -> None:
    """cluster(api_only=False): a node and controllers; a reset clears the user's objects, the
    node and the components' kube-system objects stay, and the controllers go on reconciling."""
    with cluster(api_only=False, runtime="fake") as c:
        nodes = kjson(c, "get", "nodes")["items"]
        assert len(nodes) == 1
        kubectl(c, "create", "deployment", "web", "--image=jocatalin/kubernetes-bootcamp:v1", "--replicas=1")
        wait_for(lambda: kjson(c, "get", "pods", "-l", "app=web")["items"], "the deployment's pod")

        c.reset()

        assert kjson(c, "get", "deployments")["items"] == []
        assert [n["metadata"]["name"] for n in kjson(c, "get", "nodes")["items"]] == [nodes[0]["metadata"]["name"]]
        kubectl(c, "create", "deployment", "again", "--image=jocatalin/kubernetes-bootcamp:v1", "--replicas=2")
        wait_for(lambda: kjson(c, "get", "deployment", "again").get("status", {}).get("availableReplicas") == 2,
                 "the new deployment to be available after the reset", timeout=60)


async def test_kr8s_api(fx: Cluster) -> None:
    """Cluster.kr8s_api() is a working kr8s async API (lists the bootstrap namespaces)."""
    api = await fx.kr8s_api()
    names = {ns.name async for ns in api.get("namespaces")}
    assert {"default", "kube-system", "kube-public", "kube-node-lease"} <= names


def test_servers_die_with_the_test_process(tmp_path: Path) -> None:
    """A test process killed with SIGKILL leaves no kubelite server running, nor its directory."""
    script = tmp_path / "victim.py"
    script.write_text("import sys, time\n"
                      "from kubelite.testing import cluster\n"
                      f"c = cluster(directory={str(tmp_path)!r}).start()\n"
                      "print(c.pid, flush=True)\n"
                      "time.sleep(600)\n")
    victim = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                              env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        assert victim.stdout is not None
        pid = int(victim.stdout.readline())
        os.kill(pid, 0)  # the server runs
    finally:
        victim.kill()
        victim.wait()

    def gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False
    wait_for(gone, "the server to exit after its test process was killed")
    wait_for(lambda: not any(tmp_path.glob("kubelite-fixture-*")), "its directory to be removed")
