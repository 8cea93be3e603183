"""The README's kopf operator (examples/kopf-operator) reconciling against kubelite.testing.cluster()."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import kopf.testing
import kubernetes.client
import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from kubelite.testing import Cluster, cluster

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "kopf-operator"
GROUP, VERSION, PLURAL = "example.kubelite.dev", "v1", "greetings"
T = TypeVar("T")


def wait_for(cond: Callable[[], T], what: str, timeout: float = 30.0) -> T:
    """Poll ``cond`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = cond()
            if last:
                return last
        except ApiException as e:
            last = e
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}; last={last!r}")


@pytest.fixture(scope="module")
def fixture_cluster() -> Iterator[Cluster]:
    """An API-only kubelite from the public fixture."""
    with cluster() as c:
        yield c


def _established(api: kubernetes.client.ApiextensionsV1Api) -> bool:
    crd = api.read_custom_resource_definition(f"{PLURAL}.{GROUP}")
    return any(c.type == "Established" and c.status == "True" for c in (crd.status.conditions or []))


def test_kopf_operator_reconciles_greetings(fixture_cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    """Create, update and delete of a custom resource each reach the operator, which manages a ConfigMap."""
    c = fixture_cluster
    monkeypatch.setenv("KUBECONFIG", c.kubeconfig)
    with c.kubernetes_client() as api:
        ext = kubernetes.client.ApiextensionsV1Api(api)
        ext.create_custom_resource_definition(yaml.safe_load((EXAMPLE / "crd.yaml").read_text()))
        wait_for(lambda: _established(ext), "the Greeting CRD to be Established")
        crs = kubernetes.client.CustomObjectsApi(api)
        core = kubernetes.client.CoreV1Api(api)
        args = ["run", "--standalone", "--namespace", "default", "--verbose", str(EXAMPLE / "operator.py")]
        with kopf.testing.KopfRunner(args, timeout=60) as runner:
            crs.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, {
                "apiVersion": f"{GROUP}/{VERSION}", "kind": "Greeting",
                "metadata": {"name": "world"}, "spec": {"name": "World"}})
            cm = wait_for(lambda: core.read_namespaced_config_map("greeting-world", "default"), "the ConfigMap")
            assert cm.data == {"message": "Hello, World!"}
            gr = wait_for(lambda: (crs.get_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "world")
                                   .get("status", {}).get("create")), "the handler's result in status")
            assert gr == {"configMap": "greeting-world"}

            crs.patch_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "world", {"spec": {"name": "kubelite"}})
            wait_for(lambda: core.read_namespaced_config_map("greeting-world", "default").data
                     == {"message": "Hello, kubelite!"}, "the ConfigMap to follow the update")

            crs.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "world")

            def gone() -> bool:
                try:
                    core.read_namespaced_config_map("greeting-world", "default")
                except ApiException as e:
                    return e.status == 404
                return False
            wait_for(gone, "the ConfigMap to be deleted")

            def greeting_gone() -> bool:
                try:
                    crs.get_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "world")
                except ApiException as e:
                    return e.status == 404
                return False
            wait_for(greeting_gone, "the Greeting to be deleted once kopf drops its finalizer")
        assert runner.exit_code == 0, runner.output
        assert runner.exception is None
        assert "Handler 'create' succeeded." in runner.output
        assert "Handler 'delete' succeeded." in runner.output
