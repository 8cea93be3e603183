"""A small kopf operator: each Greeting gets a ConfigMap ``greeting-<name>`` with its message.

Run it against any cluster with ``kopf run --standalone -A operator.py``; the test in
tests/test_testing_kopf.py runs it against ``kubelite.testing.cluster()``.
"""
from __future__ import annotations

import os
from typing import Any

import kopf
import kubernetes.client
import kubernetes.config


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """Log in with the kubeconfig $KUBECONFIG names when the operator starts (a test sets it late)."""
    return kopf.login_with_kubeconfig(**kwargs)


def _api() -> kubernetes.client.ApiClient:
    # $KUBECONFIG read on each call: the kubernetes package reads it only once, on import.
    return kubernetes.config.new_client_from_config(config_file=os.environ.get("KUBECONFIG"))


def _configmap(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": f"greeting-{name}", "labels": {"app.kubernetes.io/managed-by": "greeting-operator"}},
            "data": {"message": f"Hello, {spec['name']}!"}}


@kopf.on.create("example.kubelite.dev", "v1", "greetings")
def create(name: str, namespace: str, spec: dict[str, Any], **_: Any) -> dict[str, str]:
    """Make the Greeting's ConfigMap; the returned dict lands in status.create."""
    with _api() as api:
        kubernetes.client.CoreV1Api(api).create_namespaced_config_map(namespace, _configmap(name, spec))
    return {"configMap": f"greeting-{name}"}


@kopf.on.update("example.kubelite.dev", "v1", "greetings", field="spec.name")
def update(name: str, namespace: str, spec: dict[str, Any], **_: Any) -> None:
    """A new spec.name: rewrite the message."""
    with _api() as api:
        kubernetes.client.CoreV1Api(api).patch_namespaced_config_map(f"greeting-{name}", namespace,
                                                                     {"data": _configmap(name, spec)["data"]})


@kopf.on.delete("example.kubelite.dev", "v1", "greetings")
def delete(name: str, namespace: str, **_: Any) -> None:
    """The Greeting goes: so does its ConfigMap (kopf's finalizer holds the Greeting until then)."""
    with _api() as api:
        try:
            kubernetes.client.CoreV1Api(api).delete_namespaced_config_map(f"greeting-{name}", namespace)
        except kubernetes.client.ApiException as e:
            if e.status != 404:
                raise
