"""CRD schemas published in OpenAPI v2 and v3, and `kubectl explain` on custom resources
(upstream test/e2e/apimachinery/crd_publish_openapi.go)."""
from __future__ import annotations

import json

import pytest
from conftest import KUBECTL, KUBECTL_OLD, start_server
from crdkit import CRONTAB_SCHEMA, crd, create_crd, unique_group, version


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("crdopenapi"), "--disable", "controllers,scheduler,agent,proxy")
    yield s
    s.stop()


def reversed_group(group: str) -> str:
    return ".".join(reversed(group.split(".")))


def v3(srv, group: str, ver: str) -> dict | None:
    out = srv.kubectl("get", "--raw", f"/openapi/v3/apis/{group}/{ver}")
    return json.loads(out.stdout) if out.returncode == 0 else None


def v2_definitions(srv) -> dict:
    return json.loads(srv.kubectl("get", "--raw", "/openapi/v2", check=True).stdout)["definitions"]


@pytest.mark.parametrize("binary", [KUBECTL, KUBECTL_OLD], ids=["kubectl1.33", "kubectl1.28"])
def test_works_for_crd_with_validation_schema(srv, binary):
    group = unique_group("pub")
    create_crd(srv, crd(group))
    name = f"{reversed_group(group)}.v1.CronTab"
    doc = v3(srv, group, "v1")
    assert doc is not None
    schema = doc["components"]["schemas"][name]
    assert schema["x-kubernetes-group-version-kind"] == [{"group": group, "kind": "CronTab", "version": "v1"}]
    assert schema["properties"]["spec"]["properties"]["replicas"]["maximum"] == 10
    patch = doc["paths"][f"/apis/{group}/v1/namespaces/{{namespace}}/crontabs/{{name}}"]["patch"]
    assert "fieldValidation" in [p["name"] for p in patch["parameters"]]
    assert name in v2_definitions(srv)
    # explain reads "a.b.c" as resource a, field b.c: the group goes in --api-version.
    out = srv.kubectl("explain", "crontabs.spec", f"--api-version={group}/v1", binary=binary, check=True).stdout
    assert "KIND:" in out and "CronTab" in out
    assert "cronSpec\t<string>" in out and "replicas\t<integer>" in out
    assert "The container image the job runs." in srv.kubectl(
        "explain", "crontabs.spec.image", f"--api-version={group}/v1", binary=binary, check=True).stdout
    srv.kubectl("delete", "crd", f"crontabs.{group}", check=True)


def test_works_for_crd_preserving_unknown_fields_at_the_schema_root(srv):
    group = unique_group("pub")
    create_crd(srv, crd(group, versions=[version("v1", schema={"type": "object",
                                                               "x-kubernetes-preserve-unknown-fields": True})]))
    schema = v3(srv, group, "v1")["components"]["schemas"][f"{reversed_group(group)}.v1.CronTab"]
    assert schema["x-kubernetes-preserve-unknown-fields"] is True
    out = srv.kubectl("explain", "crontabs", f"--api-version={group}/v1", check=True).stdout
    assert "apiVersion\t<string>" in out and "metadata\t<ObjectMeta>" in out
    srv.kubectl("delete", "crd", f"crontabs.{group}", check=True)


def test_works_for_multiple_crds_of_same_group_but_different_versions(srv):
    group = unique_group("pub")
    create_crd(srv, crd(group, versions=[version("v2", storage=False), version("v3")]))
    for ver in ("v2", "v3"):
        doc = v3(srv, group, ver)
        assert f"{reversed_group(group)}.{ver}.CronTab" in doc["components"]["schemas"]
    root = json.loads(srv.kubectl("get", "--raw", "/openapi/v3", check=True).stdout)["paths"]
    assert {f"apis/{group}/v2", f"apis/{group}/v3"} <= set(root)
    srv.kubectl("delete", "crd", f"crontabs.{group}", check=True)


def test_removes_definition_from_spec_when_one_version_gets_changed_to_not_be_served(srv):
    group = unique_group("pub")
    create_crd(srv, crd(group, versions=[version("v5", storage=False), version("v6")]))
    before = json.loads(srv.kubectl("get", "--raw", "/openapi/v3", check=True).stdout)["paths"]
    patch = {"spec": {"versions": [version("v5", served=False, storage=False, schema=CRONTAB_SCHEMA),
                                   version("v6")]}}
    srv.kubectl("patch", "crd", f"crontabs.{group}", "--type=merge", "-p", json.dumps(patch), check=True)
    after = json.loads(srv.kubectl("get", "--raw", "/openapi/v3", check=True).stdout)["paths"]
    assert f"apis/{group}/v5" in before and f"apis/{group}/v5" not in after
    assert v3(srv, group, "v5") is None
    assert f"{reversed_group(group)}.v5.CronTab" not in v2_definitions(srv)
    assert f"{reversed_group(group)}.v6.CronTab" in v2_definitions(srv)
    srv.kubectl("delete", "crd", f"crontabs.{group}", check=True)
    assert v3(srv, group, "v6") is None


def test_updates_the_published_spec_when_one_version_gets_renamed(srv):
    group = unique_group("pub")
    create_crd(srv, crd(group, versions=[version("v2", storage=False), version("v3")]))
    patch = {"spec": {"versions": [version("v4", storage=False), version("v3")]}}
    srv.kubectl("patch", "crd", f"crontabs.{group}", "--type=merge", "-p", json.dumps(patch), check=True)
    assert v3(srv, group, "v2") is None
    assert f"{reversed_group(group)}.v4.CronTab" in v3(srv, group, "v4")["components"]["schemas"]
    srv.kubectl("delete", "crd", f"crontabs.{group}", check=True)


def test_the_crd_kind_itself_is_documented(srv):
    doc = v3(srv, "apiextensions.k8s.io", "v1")
    crd_def = doc["components"]["schemas"]["io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1."
                                           "CustomResourceDefinition"]
    assert set(crd_def["properties"]) == {"apiVersion", "kind", "metadata", "spec", "status"}
    out = srv.kubectl("explain", "crd.spec.names", check=True).stdout
    assert "plural\t<string>" in out and "shortNames\t<[]string>" in out
