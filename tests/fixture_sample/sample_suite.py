"""How an operator project uses kubelite's pytest plugin: ``kube`` is a fresh cluster per test."""
from __future__ import annotations

import time

import kubernetes.client
import pytest
from kubernetes.client.exceptions import ApiException

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.sample.example.com"},
    "spec": {"group": "sample.example.com", "scope": "Namespaced",
             "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
             "versions": [{"name": "v1", "served": True, "storage": True,
                           "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]},
}


@pytest.fixture(scope="session")
def widgets_crd(kubelite_cluster):
    """Install the CRD once; the snapshot makes every later reset keep it."""
    with kubelite_cluster.kubernetes_client() as api:
        kubernetes.client.ApiextensionsV1Api(api).create_custom_resource_definition(CRD)
        objs = kubernetes.client.CustomObjectsApi(api)
        deadline = time.monotonic() + 30
        while True:  # served once Established
            try:
                objs.list_namespaced_custom_object("sample.example.com", "v1", "default", "widgets")
                break
            except ApiException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
    kubelite_cluster.snapshot()


@pytest.fixture
def core(kube):
    with kube.kubernetes_client() as api:
        yield kubernetes.client.CoreV1Api(api)


def test_a_creates_objects(core):
    core.create_namespace({"metadata": {"name": "scratch"}})
    core.create_namespaced_config_map("default", {"metadata": {"name": "leftover"}, "data": {"k": "v"}})
    assert [c.metadata.name for c in core.list_namespaced_config_map("default").items] == ["leftover"]


def test_b_starts_from_a_clean_cluster(core):
    assert core.list_namespaced_config_map("default").items == []
    names = {n.metadata.name for n in core.list_namespace().items}
    assert names == {"default", "kube-system", "kube-public", "kube-node-lease"}


def test_c_custom_resources(widgets_crd, kube):
    with kube.kubernetes_client() as api:
        objs = kubernetes.client.CustomObjectsApi(api)
        objs.create_namespaced_custom_object("sample.example.com", "v1", "default", "widgets", {
            "apiVersion": "sample.example.com/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"size": 3}})
        assert len(objs.list_namespaced_custom_object("sample.example.com", "v1", "default", "widgets")["items"]) == 1


def test_d_reset_keeps_the_snapshot_crd(widgets_crd, kube):
    with kube.kubernetes_client() as api:
        objs = kubernetes.client.CustomObjectsApi(api)
        assert objs.list_namespaced_custom_object("sample.example.com", "v1", "default", "widgets")["items"] == []


def test_e_one_cluster_per_session(kubelite_cluster, kube):
    assert kube is kubelite_cluster
    assert kube.url.startswith("https://127.0.0.1:")
