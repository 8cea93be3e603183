"""CustomResourceDefinitions: lifecycle, status, discovery and deletion (upstream
test/e2e/apimachinery/custom_resource_definition.go), with kubectl 1.33 and 1.28 and the
Python client."""
from __future__ import annotations

import json

import pytest
from conftest import KUBECTL, KUBECTL_OLD, start_server
from crdkit import CRONTAB_SCHEMA, apply, cr, crd, create_crd, unique_group, version
from kubernetes import client, config
from kubernetes.client.rest import ApiException

SERVER_ARGS = ("--disable", "scheduler,agent,proxy")  # controllers on: GC and namespaces


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    """An API server with controllers, no node."""
    s = start_server(tmp_path_factory.mktemp("crd"), *SERVER_ARGS)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def ext(srv):
    """The Python client's ApiextensionsV1Api."""
    c = config.new_client_from_config(config_file=srv.kubeconfig)
    yield client.ApiextensionsV1Api(c)
    c.close()


def conditions(obj: dict) -> dict[str, tuple[str, str]]:
    """{type: (status, reason)} of a CRD's conditions."""
    return {c["type"]: (c["status"], c.get("reason", "")) for c in obj.get("status", {}).get("conditions", [])}


@pytest.mark.parametrize("binary", [KUBECTL, KUBECTL_OLD], ids=["kubectl1.33", "kubectl1.28"])
def test_creating_deleting_custom_resource_definition_objects_works(srv, binary):
    group = unique_group()
    out = srv.kubectl("apply", "-f", "-", input=json.dumps(crd(group)), binary=binary, check=True)
    assert out.stdout.strip() == f"customresourcedefinition.apiextensions.k8s.io/crontabs.{group} created"
    got = srv.kjson("get", "crd", f"crontabs.{group}", binary=binary)
    assert conditions(got) == {"NamesAccepted": ("True", "NoConflicts"),
                               "Established": ("True", "InitialNamesAccepted")}
    assert got["status"]["acceptedNames"]["kind"] == "CronTab"
    assert got["status"]["acceptedNames"]["listKind"] == "CronTabList"  # defaulted
    assert got["status"]["storedVersions"] == ["v1"]
    assert got["metadata"]["generation"] == 1
    out = srv.kubectl("delete", "crd", f"crontabs.{group}", binary=binary, check=True)
    assert out.stdout.strip() == f'customresourcedefinition.apiextensions.k8s.io "crontabs.{group}" deleted'
    gone = srv.kubectl("get", "crd", f"crontabs.{group}", binary=binary)
    assert gone.returncode == 1
    assert f'customresourcedefinitions.apiextensions.k8s.io "crontabs.{group}" not found' in gone.stderr


def test_listing_custom_resource_definition_objects_works(srv, ext):
    groups = [unique_group() for _ in range(2)]
    for g in groups:
        create_crd(srv, crd(g))
    names = {i.metadata.name for i in ext.list_custom_resource_definition().items}
    assert {f"crontabs.{g}" for g in groups} <= names
    table = srv.kubectl("get", "crd", f"crontabs.{groups[0]}", check=True).stdout.splitlines()
    assert table[0].split() == ["NAME", "CREATED", "AT"]
    assert table[1].split()[0] == f"crontabs.{groups[0]}"
    # Short name and category, as upstream's discovery names them.
    assert f"crontabs.{groups[0]}" in srv.kubectl("get", "crds", check=True).stdout
    assert f"crontabs.{groups[1]}" in srv.kubectl("get", "api-extensions", check=True).stdout
    for g in groups:
        ext.delete_custom_resource_definition(f"crontabs.{g}")


def test_getting_updating_patching_custom_resource_definition_status_sub_resource_works(srv, ext):
    group = unique_group()
    create_crd(srv, crd(group))
    name = f"crontabs.{group}"
    got = ext.read_custom_resource_definition_status(name)
    assert got.status.accepted_names.plural == "crontabs"
    patched = ext.patch_custom_resource_definition_status(name, {"status": {"conditions": [
        {"type": "StatusUpdated", "status": "True", "reason": "E2E", "message": "Set from an e2e test",
         "lastTransitionTime": "2024-01-01T00:00:00Z"}]}})
    types = {c.type for c in patched.status.conditions}
    assert {"StatusUpdated", "Established", "NamesAccepted"} <= types
    # The main resource ignores status.
    body = ext.read_custom_resource_definition(name)
    body.status.conditions = []
    body.spec.names.short_names = ["ctx"]
    updated = ext.replace_custom_resource_definition(name, body)
    assert updated.spec.names.short_names == ["ctx"]
    assert updated.metadata.generation == 2
    assert "StatusUpdated" in {c.type for c in updated.status.conditions}
    ext.delete_custom_resource_definition(name)


def test_should_include_custom_resource_definition_resources_in_discovery_document(srv):
    apis = json.loads(srv.kubectl("get", "--raw", "/apis", check=True).stdout)
    assert "apiextensions.k8s.io" in [g["name"] for g in apis["groups"]]
    ext_list = json.loads(srv.kubectl("get", "--raw", "/apis/apiextensions.k8s.io/v1", check=True).stdout)
    entry = next(r for r in ext_list["resources"] if r["name"] == "customresourcedefinitions")
    assert entry["shortNames"] == ["crd", "crds"] and entry["categories"] == ["api-extensions"]
    assert not entry["namespaced"]
    assert "customresourcedefinitions/status" in [r["name"] for r in ext_list["resources"]]

    group = unique_group()
    create_crd(srv, crd(group, short_names=("ct",), categories=("all",),
                        versions=[version("v1", status=True, scale=True)]))
    apis = json.loads(srv.kubectl("get", "--raw", "/apis", check=True).stdout)
    assert group in [g["name"] for g in apis["groups"]]
    assert json.loads(srv.kubectl("get", "--raw", f"/apis/{group}", check=True).stdout)["preferredVersion"] == \
        {"groupVersion": f"{group}/v1", "version": "v1"}
    rl = json.loads(srv.kubectl("get", "--raw", f"/apis/{group}/v1", check=True).stdout)
    assert [r["name"] for r in rl["resources"]] == ["crontabs", "crontabs/scale", "crontabs/status"]
    main = rl["resources"][0]
    assert (main["kind"], main["singularName"], main["shortNames"], main["categories"]) == \
        ("CronTab", "crontab", ["ct"], ["all"])
    out = srv.kubectl("api-resources", f"--api-group={group}", check=True).stdout.splitlines()
    assert out[1].split() == ["crontabs", "ct", f"{group}/v1", "true", "CronTab"]
    srv.kubectl("delete", "crd", f"crontabs.{group}", check=True)
    apis = json.loads(srv.kubectl("get", "--raw", "/apis", check=True).stdout)
    assert group not in [g["name"] for g in apis["groups"]]


def test_aggregated_discovery_etag_changes_with_the_crds(srv):
    """kubectl 1.33 caches the aggregated /apis document by ETag: a new CRD must change it."""
    import ssl
    import urllib.request

    from kubelite.client.rest import ClientConfig
    cfg = ClientConfig.from_kubeconfig(srv.kubeconfig)
    ctx = ssl.create_default_context(cafile=cfg.ca_file)
    ctx.load_cert_chain(cfg.cert_file, cfg.key_file)
    accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"

    def fetch() -> tuple[str, dict]:
        req = urllib.request.Request(f"{srv.url}/apis", headers={"Accept": accept})
        with urllib.request.urlopen(req, context=ctx) as r:
            return r.headers["ETag"], json.loads(r.read())
    before, _ = fetch()
    group = unique_group()
    create_crd(srv, crd(group))
    after, doc = fetch()
    assert before != after
    entry = next(g for g in doc["items"] if g["metadata"]["name"] == group)
    res = entry["versions"][0]["resources"][0]
    assert (res["resource"], res["responseKind"]["kind"], res["scope"]) == ("crontabs", "CronTab", "Namespaced")
    srv.kubectl("delete", "crd", f"crontabs.{group}", check=True)


def test_a_crd_whose_names_are_taken_is_not_established(srv):
    group = unique_group()
    create_crd(srv, crd(group))
    other = crd(group, plural="crontabz", kind="CronTab")
    other["spec"]["names"]["singular"] = "crontabz"  # only the kind is taken
    srv.kubectl("create", "-f", "-", input=json.dumps(other), check=True)
    got = srv.wait_for(lambda: (lambda o: o if "NamesAccepted" in conditions(o) else None)(
        srv.kjson("get", "crd", f"crontabz.{group}")), what="naming")
    conds = conditions(got)
    assert conds["NamesAccepted"] == ("False", "KindConflict")
    assert conds["Established"] == ("False", "NotAccepted")
    msg = next(c["message"] for c in got["status"]["conditions"] if c["type"] == "NamesAccepted")
    assert msg == '"CronTab" is already in use'
    assert srv.kubectl("get", f"crontabz.{group}").returncode == 1
    srv.kubectl("delete", "crd", f"crontabz.{group}", f"crontabs.{group}", check=True)


def test_deleting_the_crd_removes_its_custom_resources(srv, request):
    group = unique_group()
    create_crd(srv, crd(group))
    ns = f"del-{group.split('.')[0]}"
    srv.kubectl("create", "namespace", ns, check=True)
    for i in range(3):
        apply(srv, cr(group, f"c{i}", spec={"cronSpec": "* * * * */5"}), "-n", ns)
    # A finalizer of someone else keeps one object, and so the CRD, until it is removed.
    srv.kubectl("-n", ns, "patch", f"crontabs.{group}", "c0", "--type=merge", "-p",
                '{"metadata":{"finalizers":["example.com/hold"]}}', check=True)
    srv.kubectl("delete", "crd", f"crontabs.{group}", "--wait=false", check=True)

    def terminating():
        got = srv.kjson("get", "crd", f"crontabs.{group}")
        return got if conditions(got).get("Terminating", ("", ""))[0] == "True" else None
    got = srv.wait_for(terminating, what="Terminating condition")
    assert "customresourcecleanup.apiextensions.k8s.io" in got["metadata"]["finalizers"]
    srv.wait_for(lambda: srv.kjson("-n", ns, "get", f"crontabs.{group}")["items"] and
                 [i["metadata"]["name"] for i in srv.kjson("-n", ns, "get", f"crontabs.{group}")["items"]] == ["c0"],
                 what="the other objects deleted")
    # While terminating, reads work and creates are refused as upstream refuses them.
    refused = apply(srv, cr(group, "late"), "-n", ns, check=False)
    assert refused.returncode == 1
    assert "create not allowed while custom resource definition is terminating" in refused.stderr
    srv.kubectl("-n", ns, "patch", f"crontabs.{group}", "c0", "--type=merge", "-p",
                '{"metadata":{"finalizers":null}}', check=True)
    srv.wait_for(lambda: srv.kubectl("get", "crd", f"crontabs.{group}").returncode == 1, what="the CRD gone")
    gone = srv.kubectl("-n", ns, "get", f"crontabs.{group}")
    assert gone.returncode == 1 and "the server doesn't have a resource type" in gone.stderr
    # Recreated, it starts empty.
    create_crd(srv, crd(group))
    assert srv.kjson("-n", ns, "get", f"crontabs.{group}")["items"] == []
    srv.kubectl("delete", "crd", f"crontabs.{group}", check=True)


@pytest.mark.parametrize("binary", [KUBECTL, KUBECTL_OLD], ids=["kubectl1.33", "kubectl1.28"])
def test_a_manifest_mixing_a_custom_kind_and_a_deployment_applies_the_deployment(srv, binary):
    group = unique_group()
    name = f"mixed-{group.split('.')[0]}"
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
              "spec": {"replicas": 0, "selector": {"matchLabels": {"app": name}},
                       "template": {"metadata": {"labels": {"app": name}},
                                    "spec": {"containers": [{"name": "c", "image": "nginx:1.25"}]}}}}
    manifest = {"apiVersion": "v1", "kind": "List", "items": [cr(group, name), deploy]}
    # The CRD is not installed: the Deployment is applied and the custom kind reported.
    out = srv.kubectl("apply", "-f", "-", input=json.dumps(manifest), binary=binary)
    assert out.returncode == 1
    assert f'no matches for kind "CronTab" in version "{group}/v1"' in out.stderr
    assert "failed to list CRDs" not in out.stderr
    assert f"deployment.apps/{name} created" in out.stdout
    # Installed, both apply.
    create_crd(srv, crd(group))
    out = srv.kubectl("apply", "-f", "-", input=json.dumps(manifest), binary=binary, check=True)
    assert f"crontab.{group}/{name} created" in out.stdout
    assert f"deployment.apps/{name} unchanged" in out.stdout
    srv.kubectl("delete", "deployment", name, check=True)
    srv.kubectl("delete", "crd", f"crontabs.{group}", check=True)


def test_cluster_scoped_custom_resources(srv):
    group = unique_group()
    create_crd(srv, crd(group, plural="clusterthings", kind="ClusterThing", scope="Cluster",
                        versions=[version("v1", schema={"type": "object",
                                                        "x-kubernetes-preserve-unknown-fields": True})]))
    out = apply(srv, cr(group, "one", kind="ClusterThing", data={"any": ["thing"]}))
    assert out.stdout.strip() == f"clusterthing.{group}/one created"
    got = srv.kjson("get", f"clusterthings.{group}", "one")
    assert "namespace" not in got["metadata"] and got["data"] == {"any": ["thing"]}
    raw = srv.kubectl("get", "--raw", f"/apis/{group}/v1/clusterthings/one", check=True)
    assert json.loads(raw.stdout)["metadata"]["name"] == "one"
    assert srv.kjson("get", f"clusterthings.{group}", "-A")["items"][0]["metadata"]["name"] == "one"
    srv.kubectl("delete", "crd", f"clusterthings.{group}", check=True)


def test_crd_validation_errors_word_for_word(srv, ext):
    group = unique_group()
    bad_name = crd(group)
    bad_name["metadata"]["name"] = f"crontab.{group}"
    with pytest.raises(ApiException) as e:
        ext.create_custom_resource_definition(bad_name)
    st = json.loads(e.value.body)
    assert e.value.status == 422
    assert st["message"] == (f'CustomResourceDefinition.apiextensions.k8s.io "crontab.{group}" is invalid: '
                             f'metadata.name: Invalid value: "crontab.{group}": must be spec.names.plural+"."+'
                             'spec.group')
    no_storage = crd(group, versions=[version("v1", storage=False)])
    out = srv.kubectl("create", "-f", "-", input=json.dumps(no_storage))
    assert out.returncode == 1
    assert "spec.versions: Invalid value: []apiextensions.CustomResourceDefinitionVersion{" in out.stderr
    assert "must have exactly one version marked as storage version" in out.stderr
    two_storage = crd(group, versions=[version("v1"), version("v2")])
    assert "must have exactly one version marked as storage version" in \
        srv.kubectl("create", "-f", "-", input=json.dumps(two_storage)).stderr
    no_type = crd(group, versions=[version("v1", schema={"type": "object", "properties": {
        "spec": {"properties": {"x": {"type": "string"}}}, "list": {"type": "array"}}})])
    out = srv.kubectl("create", "-f", "-", input=json.dumps(no_type))
    assert out.returncode == 1
    assert ("spec.versions[0].schema.openAPIV3Schema.properties[spec].type: Required value: must not be empty "
            "for specified object fields") in out.stderr
    assert "spec.versions[0].schema.openAPIV3Schema.properties[list].items: Required value: must be specified" \
        in out.stderr
    no_schema = crd(group)
    del no_schema["spec"]["versions"][0]["schema"]
    assert "spec.versions[0].schema.openAPIV3Schema: Required value" in \
        srv.kubectl("create", "-f", "-", input=json.dumps(no_schema)).stderr
    bad_scope = crd(group, scope="Global")
    assert 'spec.scope: Unsupported value: "Global": supported values: "Cluster", "Namespaced"' in \
        srv.kubectl("create", "-f", "-", input=json.dumps(bad_scope)).stderr
    no_dot = crd("nodot")
    assert 'spec.group: Invalid value: "nodot": should be a domain with at least one dot' in \
        srv.kubectl("create", "-f", "-", input=json.dumps(no_dot)).stderr
    assert srv.kubectl("get", "crd", f"crontabs.{group}").returncode == 1  # nothing was stored


def test_multiple_versions_with_none_conversion(srv):
    group = unique_group()
    create_crd(srv, crd(group, versions=[version("v1beta1", storage=False), version("v1"),
                                         version("v0", served=False, storage=False)]))
    apply(srv, cr(group, "old", version_="v1beta1", spec={"image": "a"}))
    got_v1 = json.loads(srv.kubectl("get", "--raw", f"/apis/{group}/v1/namespaces/default/crontabs/old",
                                    check=True).stdout)
    got_beta = json.loads(srv.kubectl("get", "--raw", f"/apis/{group}/v1beta1/namespaces/default/crontabs/old",
                                      check=True).stdout)
    assert got_v1["apiVersion"] == f"{group}/v1" and got_beta["apiVersion"] == f"{group}/v1beta1"
    assert got_v1["metadata"]["uid"] == got_beta["metadata"]["uid"]
    assert srv.kubectl("get", "--raw", f"/apis/{group}/v0/namespaces/default/crontabs").returncode == 1
    apis = json.loads(srv.kubectl("get", "--raw", f"/apis/{group}", check=True).stdout)
    assert [v["version"] for v in apis["versions"]] == ["v1beta1", "v1"]
    # kubectl prefers the storage version it discovers first as upstream orders them.
    assert srv.kjson("get", f"crontabs.v1.{group}", "old")["apiVersion"] == f"{group}/v1"
    srv.kubectl("delete", "crd", f"crontabs.{group}", check=True)


def test_crontab_schema_is_what_the_manifests_use():
    """The shared schema the other tests rely on is structural (no untyped field)."""
    from kubelite.apiextensions.schema import structural_errors
    assert structural_errors(CRONTAB_SCHEMA, "s") == []
