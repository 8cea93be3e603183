"""The root CA publisher and the ServiceAccount controller as upstream's e2e framework needs them:
every namespace gets ``kube-root-ca.crt`` and the ``default`` ServiceAccount, and the wait the
framework does before each spec (``--e2e-verify-service-account``: a field-selected list, then a
watch from its resourceVersion, for each of the two) completes."""
from __future__ import annotations

import base64
import json
import threading
import time

import pytest
import yaml
from conftest import create_namespace, start_server
from kubernetes import client, config, watch

from kubelite.controllers.manager import REGISTRY
from kubelite.controllers.rootcacert import DESCRIPTION

CM = "kube-root-ca.crt"
CONTROLLERS_ONLY = ("--disable", "agent,scheduler,proxy")


@pytest.fixture(scope="module")
def ctl(tmp_path_factory):
    """An API server with every controller (no node, no proxy)."""
    srv = start_server(tmp_path_factory.mktemp("rootca"), *CONTROLLERS_ONLY)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def core(ctl):
    api = config.new_client_from_config(config_file=ctl.kubeconfig)
    yield client.CoreV1Api(api)
    api.close()


def cluster_ca(srv) -> str:
    """The CA PEM a client of this cluster trusts (from its kubeconfig)."""
    with open(srv.kubeconfig) as f:
        kc = yaml.safe_load(f)
    return base64.b64decode(kc["clusters"][0]["cluster"]["certificate-authority-data"]).decode()


def root_ca_cm(srv, ns: str) -> dict | None:
    p = srv.kubectl("get", "configmap", CM, "-n", ns, "-o", "json")
    if p.returncode != 0:
        assert "NotFound" in p.stderr, p.stderr
        return None
    return json.loads(p.stdout)


def published(srv, ns: str) -> dict:
    return srv.wait_for(lambda: root_ca_cm(srv, ns), 30, what=f"{CM} in {ns}")


def test_root_ca_publisher_is_a_registered_controller():
    assert "root-ca-cert-publisher" in [s.name for s in REGISTRY]


def test_every_namespace_gets_kube_root_ca_crt(ctl, request):
    ca = cluster_ca(ctl)
    assert ca.startswith("-----BEGIN CERTIFICATE-----")
    for ns in ("default", "kube-system", "kube-public", "kube-node-lease", create_namespace(ctl, request, "ca")):
        cm = published(ctl, ns)
        assert cm["data"] == {"ca.crt": ca}
        assert cm["metadata"]["annotations"]["kubernetes.io/description"] == DESCRIPTION


def test_deleted_kube_root_ca_crt_comes_back(ctl, request):
    ns = create_namespace(ctl, request, "ca")
    first = published(ctl, ns)
    ctl.kubectl("delete", "configmap", CM, "-n", ns, check=True)
    again = ctl.wait_for(lambda: (cm := root_ca_cm(ctl, ns)) and cm["metadata"]["uid"] != first["metadata"]["uid"]
                         and cm, 30, what="recreated")
    assert again["data"] == {"ca.crt": cluster_ca(ctl)}


def test_edited_kube_root_ca_crt_is_restored(ctl, request):
    ns = create_namespace(ctl, request, "ca")
    published(ctl, ns)
    ctl.kubectl("patch", "configmap", CM, "-n", ns, "--type=merge", "-p",
                '{"data": {"ca.crt": "tampered", "extra": "x"}, '
                '"metadata": {"annotations": {"kubernetes.io/description": null, "mine": "kept"}}}', check=True)
    ca = cluster_ca(ctl)

    def restored():
        cm = root_ca_cm(ctl, ns)
        return cm and cm["data"] == {"ca.crt": ca} and cm
    cm = ctl.wait_for(restored, 30, what="restored")
    assert cm["metadata"]["annotations"] == {"kubernetes.io/description": DESCRIPTION, "mine": "kept"}


def _until_added(list_fn, ns: str, name: str, timeout: float) -> bool:
    """The e2e framework's wait: list by metadata.name, then watch from the list's resourceVersion."""
    selector = f"metadata.name={name}"
    lst = list_fn(ns, field_selector=selector)
    if lst.items:
        return True
    w = watch.Watch()
    deadline = time.monotonic() + timeout
    for ev in w.stream(list_fn, ns, field_selector=selector, resource_version=lst.metadata.resource_version,
                       timeout_seconds=int(timeout)):
        if ev["type"] in ("ADDED", "MODIFIED") and ev["object"].metadata.name == name:
            w.stop()
            return True
        if time.monotonic() > deadline:
            break
    return False


def test_e2e_verify_service_account_wait_completes_for_a_new_namespace(ctl, core):
    ns = f"e2e-verify-{int(time.time() * 1000) % 100000}"
    results: dict[str, bool] = {}
    core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})

    def wait(kind: str, fn, name: str) -> None:
        results[kind] = _until_added(fn, ns, name, 30)
    waits = [threading.Thread(target=wait, args=("sa", core.list_namespaced_service_account, "default")),
             threading.Thread(target=wait, args=("cm", core.list_namespaced_config_map, CM))]
    for t in waits:
        t.start()
    for t in waits:
        t.join(40)
    assert results == {"sa": True, "cm": True}
    # Exactly one of each: the field selector matches by name, nothing else slips in.
    assert [s.metadata.name for s in core.list_namespaced_service_account(ns).items] == ["default"]
    assert [c.metadata.name for c in core.list_namespaced_config_map(ns).items] == [CM]
