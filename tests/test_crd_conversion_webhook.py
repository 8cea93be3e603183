"""CRD conversion webhooks (upstream test/e2e/apimachinery/crd_conversion_webhook.go,
rebuilt): a CRD whose v1 and v2 differ in shape, converted by a webhook the test serves over
TLS, with kubectl 1.33 and the Python kubernetes client."""
from __future__ import annotations

import json

import pytest
from conftest import API_ONLY, namespace_name, start_server
from crdkit import crd, create_crd, unique_group, version
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException
from webhookkit import WebhookServer

Obj = dict

V1_SCHEMA: Obj = {"type": "object", "properties": {
    "spec": {"type": "object", "properties": {"hostPort": {"type": "string"}}}}}
V2_SCHEMA: Obj = {"type": "object", "properties": {
    "spec": {"type": "object", "properties": {"host": {"type": "string"}, "port": {"type": "string"}}}}}


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("crdconv"), *API_ONLY)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def hooks():
    server = WebhookServer()
    yield server
    server.close()


@pytest.fixture
def ns(request, srv):
    name = namespace_name(request, "conv")
    srv.kubectl("create", "namespace", name, check=True)
    return name


def conversion_crd(srv, hooks: WebhookServer, path: str = "/convert") -> tuple[str, str]:
    """A CRD storing v1, serving v1 and v2, converted by the test's webhook: (group, plural)."""
    group = unique_group("conv")
    manifest = crd(group, "e2e-test-crds", "E2eTestCrd", versions=[
        version("v1", schema=V1_SCHEMA), version("v2", storage=False, schema=V2_SCHEMA)])
    manifest["spec"]["conversion"] = {"strategy": "Webhook", "webhook": {
        "clientConfig": {"url": hooks.url(path), "caBundle": hooks.ca_bundle},
        "conversionReviewVersions": ["v1", "v1beta1"]}}
    create_crd(srv, manifest)
    return group, "e2e-test-crds"


def custom(api, group: str, ns: str, plural: str = "e2e-test-crds"):
    return client.CustomObjectsApi(api), (group, ns, plural)


@pytest.fixture(scope="module")
def api(srv):
    return config.new_client_from_config(config_file=srv.kubeconfig)


def test_should_be_able_to_convert_from_cr_v1_to_cr_v2(srv, hooks, api, ns):
    group, plural = conversion_crd(srv, hooks)
    objs = client.CustomObjectsApi(api)
    made = objs.create_namespaced_custom_object(group, "v1", ns, plural, {
        "apiVersion": f"{group}/v1", "kind": "E2eTestCrd", "metadata": {"name": "cr-instance-1"},
        "spec": {"hostPort": "localhost:8080"}})
    assert made["spec"] == {"hostPort": "localhost:8080"}
    got = objs.get_namespaced_custom_object(group, "v2", ns, plural, "cr-instance-1")
    assert got["apiVersion"] == f"{group}/v2"
    assert got["spec"] == {"host": "localhost", "port": "8080"}
    assert got["metadata"]["uid"] == made["metadata"]["uid"]
    # The webhook got a v1 review asking for v2, with the stored object.
    reviews = [r for r in hooks.seen("/convert") if r["request"]["desiredAPIVersion"] == f"{group}/v2"]
    assert reviews and reviews[-1]["apiVersion"] == "apiextensions.k8s.io/v1"
    assert reviews[-1]["request"]["objects"][0]["spec"] == {"hostPort": "localhost:8080"}
    # kubectl reads either version, and writes in v2 are stored as v1.
    out = srv.kjson("get", f"{plural}.v2.{group}", "-n", ns, "cr-instance-1")
    assert out["spec"] == {"host": "localhost", "port": "8080"}
    srv.kubectl("patch", f"{plural}.v2.{group}", "-n", ns, "cr-instance-1", "--type=merge",
                "-p", json.dumps({"spec": {"port": "9090"}}), check=True)
    assert objs.get_namespaced_custom_object(group, "v1", ns, plural, "cr-instance-1")["spec"] == \
        {"hostPort": "localhost:9090"}


def test_should_be_able_to_convert_a_non_homogeneous_list_of_crs(srv, hooks, api, ns):
    group, plural = conversion_crd(srv, hooks)
    objs = client.CustomObjectsApi(api)
    objs.create_namespaced_custom_object(group, "v1", ns, plural, {
        "apiVersion": f"{group}/v1", "kind": "E2eTestCrd", "metadata": {"name": "cr-instance-1"},
        "spec": {"hostPort": "localhost:8080"}})
    objs.create_namespaced_custom_object(group, "v2", ns, plural, {
        "apiVersion": f"{group}/v2", "kind": "E2eTestCrd", "metadata": {"name": "cr-instance-2"},
        "spec": {"host": "localhost", "port": "8080"}})
    v1 = objs.list_namespaced_custom_object(group, "v1", ns, plural)["items"]
    assert [(o["apiVersion"], o["spec"]) for o in v1] == [(f"{group}/v1", {"hostPort": "localhost:8080"})] * 2
    v2 = objs.list_namespaced_custom_object(group, "v2", ns, plural)["items"]
    assert [(o["apiVersion"], o["spec"]) for o in v2] == \
        [(f"{group}/v2", {"host": "localhost", "port": "8080"})] * 2
    # A list is converted in one review.
    lists = [r for r in hooks.seen("/convert") if r["request"]["desiredAPIVersion"] == f"{group}/v2"
             and len(r["request"]["objects"]) == 2]
    assert lists


def test_a_failing_conversion_is_an_internal_error(srv, hooks, api, ns):
    group, plural = conversion_crd(srv, hooks, "/convert-fail")
    objs = client.CustomObjectsApi(api)
    # v1 is the stored version: no conversion, so this works.
    objs.create_namespaced_custom_object(group, "v1", ns, plural, {
        "apiVersion": f"{group}/v1", "kind": "E2eTestCrd", "metadata": {"name": "cr-instance-1"},
        "spec": {"hostPort": "localhost:8080"}})
    with pytest.raises(ApiException) as e:
        objs.get_namespaced_custom_object(group, "v2", ns, plural, "cr-instance-1")
    assert e.value.status == 500
    assert json.loads(e.value.body)["message"] == (
        f"Internal error occurred: conversion webhook for {group}/v1, Kind=E2eTestCrd failed: "
        "the converter is out of order")


def test_a_converted_object_may_not_change_its_name(srv, hooks, api, ns):
    group, plural = conversion_crd(srv, hooks, "/convert-rename")
    objs = client.CustomObjectsApi(api)
    objs.create_namespaced_custom_object(group, "v1", ns, plural, {
        "apiVersion": f"{group}/v1", "kind": "E2eTestCrd", "metadata": {"name": "cr-instance-1"},
        "spec": {"hostPort": "localhost:8080"}})
    with pytest.raises(ApiException) as e:
        objs.get_namespaced_custom_object(group, "v2", ns, plural, "cr-instance-1")
    assert e.value.status == 500
    assert (f"conversion webhook for {group}/v1, Kind=E2eTestCrd returned invalid object: "
            "must have the same name: cr-instance-1 != renamed") in json.loads(e.value.body)["message"]


def test_conversion_settings_are_validated(srv):
    group = unique_group("conv")
    manifest = crd(group, "things", "Thing", versions=[version("v1", schema=V1_SCHEMA)])
    manifest["spec"]["conversion"] = {"strategy": "Webhook", "webhook": {"conversionReviewVersions": ["v3"]}}
    out = srv.kubectl("create", "-f", "-", input=json.dumps(manifest))
    assert out.returncode == 1
    assert "spec.conversion.webhookClientConfig: Required value: required when strategy is set to Webhook" \
        in out.stderr
    assert 'spec.conversion.conversionReviewVersions: Invalid value: []string{"v3"}: must include at least one ' \
           "of v1, v1beta1" in out.stderr
    manifest["spec"]["conversion"] = {"strategy": "Sometimes"}
    out = srv.kubectl("create", "-f", "-", input=json.dumps(manifest))
    assert out.returncode == 1
    assert 'spec.conversion.strategy: Unsupported value: "Sometimes": supported values: "None", "Webhook"' \
        in out.stderr


def test_policies_see_an_equivalent_version_as_the_webhook_converts_it(srv, hooks, api, ns):
    group, plural = conversion_crd(srv, hooks)
    name = f"{ns}.example.com"
    policy = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
              "metadata": {"name": name},
              "spec": {"failurePolicy": "Fail", "matchConstraints": {"resourceRules": [{
                  "operations": ["CREATE"], "apiGroups": [group], "apiVersions": ["v1"], "resources": [plural]}]},
                  "validations": [{"expression": "object.spec.hostPort != 'localhost:666'",
                                   "message": "not that port"}]}}
    binding = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
               "metadata": {"name": f"{ns}-binding.example.com"},
               "spec": {"policyName": name, "validationActions": ["Deny"]}}
    srv.kubectl("create", "-f", "-", input=json.dumps(policy), check=True)
    srv.kubectl("create", "-f", "-", input=json.dumps(binding), check=True)
    try:
        objs = client.CustomObjectsApi(api)
        # Written in v2; the policy names v1 only and matches through matchPolicy Equivalent.
        with pytest.raises(ApiException) as e:
            objs.create_namespaced_custom_object(group, "v2", ns, plural, {
                "apiVersion": f"{group}/v2", "kind": "E2eTestCrd", "metadata": {"name": "devil"},
                "spec": {"host": "localhost", "port": "666"}})
        assert e.value.status == 422
        assert json.loads(e.value.body)["message"].endswith("denied request: not that port")
        objs.create_namespaced_custom_object(group, "v2", ns, plural, {
            "apiVersion": f"{group}/v2", "kind": "E2eTestCrd", "metadata": {"name": "angel"},
            "spec": {"host": "localhost", "port": "777"}})
    finally:
        srv.kubectl("delete", "validatingadmissionpolicybinding", f"{ns}-binding.example.com")
        srv.kubectl("delete", "validatingadmissionpolicy", name)


def test_watch_in_another_version_is_converted(srv, hooks, api, ns):
    group, plural = conversion_crd(srv, hooks)
    objs = client.CustomObjectsApi(api)
    objs.create_namespaced_custom_object(group, "v1", ns, plural, {
        "apiVersion": f"{group}/v1", "kind": "E2eTestCrd", "metadata": {"name": "cr-instance-1"},
        "spec": {"hostPort": "localhost:8080"}})
    seen = []
    w = watch.Watch()
    for ev in w.stream(objs.list_namespaced_custom_object, group, "v2", ns, plural, timeout_seconds=5):
        seen.append((ev["type"], ev["object"]["apiVersion"], ev["object"]["spec"]))
        if len(seen) == 1:
            objs.patch_namespaced_custom_object(group, "v1", ns, plural, "cr-instance-1",
                                                {"spec": {"hostPort": "localhost:9090"}})
        if len(seen) == 2:
            w.stop()
    assert seen == [("ADDED", f"{group}/v2", {"host": "localhost", "port": "8080"}),
                    ("MODIFIED", f"{group}/v2", {"host": "localhost", "port": "9090"})]
