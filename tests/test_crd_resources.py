"""Custom resources: every verb, patch types, server-side apply, field selectors, status
and scale subresources, printer columns, short names and categories, the garbage
collector and namespace deletion (upstream custom_resource_definition.go, crd_watch.go,
and the kubectl walkthrough of the CustomResourceDefinition task page)."""
from __future__ import annotations

import json

import pytest
from conftest import KUBECTL, KUBECTL_OLD, start_server
from crdkit import apply, cr, crd, create_crd, unique_group, version
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

SERVER_ARGS = ("--disable", "scheduler,agent,proxy")

COLUMNS = [{"name": "Spec", "type": "string", "jsonPath": ".spec.cronSpec"},
           {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
           {"name": "Image", "type": "string", "jsonPath": ".spec.image", "priority": 1},
           {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    """An API server with controllers (GC, namespaces), no node."""
    s = start_server(tmp_path_factory.mktemp("crs"), *SERVER_ARGS)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def group(srv):
    """One CronTab CRD for the module: status, scale, printer columns, short name, category."""
    g = unique_group()
    create_crd(srv, crd(g, short_names=("ct",), categories=("all",),
                        versions=[version("v1", status=True, scale=True, columns=COLUMNS)]))
    return g


@pytest.fixture(scope="module")
def api(srv):
    c = config.new_client_from_config(config_file=srv.kubeconfig)
    yield c
    c.close()


@pytest.fixture
def objs(api):
    return client.CustomObjectsApi(api)


@pytest.fixture
def ns(request, srv):
    from conftest import create_namespace
    return create_namespace(srv, request)


def test_custom_resources_create_get_list_update_delete(srv, group, objs, ns):
    body = cr(group, "a", spec={"cronSpec": "* * * * */5", "image": "img:1"})
    made = objs.create_namespaced_custom_object(group, "v1", ns, "crontabs", body)
    assert made["metadata"]["generation"] == 1 and made["spec"]["replicas"] == 1  # defaulted
    got = objs.get_namespaced_custom_object(group, "v1", ns, "crontabs", "a")
    assert got["metadata"]["uid"] == made["metadata"]["uid"]
    got["spec"]["image"] = "img:2"
    upd = objs.replace_namespaced_custom_object(group, "v1", ns, "crontabs", "a", got)
    assert upd["spec"]["image"] == "img:2" and upd["metadata"]["generation"] == 2
    listed = objs.list_namespaced_custom_object(group, "v1", ns, "crontabs")
    assert listed["kind"] == "CronTabList" and [i["metadata"]["name"] for i in listed["items"]] == ["a"]
    assert objs.list_cluster_custom_object(group, "v1", "crontabs")["items"]
    with pytest.raises(ApiException) as e:
        objs.create_namespaced_custom_object(group, "v1", ns, "crontabs", body)
    assert e.value.status == 409
    assert json.loads(e.value.body)["message"] == f'crontabs.{group} "a" already exists'
    st = objs.delete_namespaced_custom_object(group, "v1", ns, "crontabs", "a")
    assert st["status"] == "Success" and st["details"] == {"name": "a", "group": group, "kind": "crontabs",
                                                           "uid": made["metadata"]["uid"]}
    with pytest.raises(ApiException) as e:
        objs.get_namespaced_custom_object(group, "v1", ns, "crontabs", "a")
    assert e.value.status == 404
    assert json.loads(e.value.body)["message"] == f'crontabs.{group} "a" not found'


def test_patch_types_and_strategic_merge_refused(srv, group, ns):
    apply(srv, cr(group, "p", spec={"cronSpec": "* * * * */5", "image": "one"}), "-n", ns)
    out = srv.kubectl("-n", ns, "patch", f"crontab.{group}", "p", "--type=merge", "-p", '{"spec":{"image":"two"}}',
                      check=True)
    assert out.stdout.strip() == f"crontab.{group}/p patched"
    srv.kubectl("-n", ns, "patch", f"crontab.{group}", "p", "--type=json",
                "-p", '[{"op":"replace","path":"/spec/replicas","value":4}]', check=True)
    got = srv.kjson("-n", ns, "get", f"crontab.{group}", "p")
    assert got["spec"]["image"] == "two" and got["spec"]["replicas"] == 4
    out = srv.kubectl("-n", ns, "patch", f"crontab.{group}", "p", "-p", '{"spec":{"image":"three"}}')
    assert out.returncode == 1
    assert ("the body of the request was in an unknown format - accepted media types include: "
            "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml") in out.stderr


def test_server_side_apply_records_managed_fields(srv, group, ns):
    body = json.dumps(cr(group, "ssa", spec={"cronSpec": "* * * * */5", "image": "one"}))
    out = srv.kubectl("-n", ns, "apply", "--server-side", "--field-manager=first", "-f", "-", input=body, check=True)
    assert out.stdout.strip() == f"crontab.{group}/ssa serverside-applied"
    got = srv.kjson("-n", ns, "get", f"crontab.{group}", "ssa", "--show-managed-fields")
    entry = next(m for m in got["metadata"]["managedFields"] if m["manager"] == "first")
    assert entry["operation"] == "Apply" and entry["apiVersion"] == f"{group}/v1"
    assert "f:image" in entry["fieldsV1"]["f:spec"]
    other = json.dumps(cr(group, "ssa", spec={"image": "two"}))
    clash = srv.kubectl("-n", ns, "apply", "--server-side", "--field-manager=second", "-f", "-", input=other)
    assert clash.returncode == 1 and 'conflict with "first"' in clash.stderr and ".spec.image" in clash.stderr
    srv.kubectl("-n", ns, "apply", "--server-side", "--field-manager=second", "--force-conflicts", "-f", "-",
                input=other, check=True)
    assert srv.kjson("-n", ns, "get", f"crontab.{group}", "ssa")["spec"]["image"] == "two"


def test_field_selectors_on_metadata_name_and_namespace(srv, group, ns):
    for name in ("f1", "f2"):
        apply(srv, cr(group, name, spec={"image": name}), "-n", ns)
    names = [i["metadata"]["name"] for i in
             srv.kjson("-n", ns, "get", f"crontabs.{group}", "--field-selector", "metadata.name=f2")["items"]]
    assert names == ["f2"]
    across = srv.kjson("get", f"crontabs.{group}", "-A", "--field-selector", f"metadata.namespace={ns}")["items"]
    assert sorted(i["metadata"]["name"] for i in across) == ["f1", "f2"]
    bad = srv.kubectl("-n", ns, "get", f"crontabs.{group}", "--field-selector", "spec.image=f1")
    assert bad.returncode == 1
    assert '"spec.image" is not a known field selector: only "metadata.name", "metadata.namespace"' in bad.stderr


def test_watch_on_custom_resource_definition_objects(srv, group, api, ns):
    objs = client.CustomObjectsApi(api)
    rv = objs.list_namespaced_custom_object(group, "v1", ns, "crontabs")["metadata"]["resourceVersion"]
    objs.create_namespaced_custom_object(group, "v1", ns, "crontabs", cr(group, "w", spec={"image": "a"}))
    objs.patch_namespaced_custom_object(group, "v1", ns, "crontabs", "w", {"spec": {"image": "b"}})
    objs.delete_namespaced_custom_object(group, "v1", ns, "crontabs", "w")
    seen = []
    w = watch.Watch()
    for ev in w.stream(objs.list_namespaced_custom_object, group, "v1", ns, "crontabs", resource_version=rv,
                       timeout_seconds=10):
        seen.append((ev["type"], ev["object"]["metadata"]["name"], ev["object"].get("spec", {}).get("image")))
        if ev["type"] == "DELETED":
            w.stop()
    assert seen == [("ADDED", "w", "a"), ("MODIFIED", "w", "b"), ("DELETED", "w", "b")]


@pytest.mark.parametrize("binary", [KUBECTL, KUBECTL_OLD], ids=["kubectl1.33", "kubectl1.28"])
def test_status_and_scale_subresources_with_kubectl_scale(srv, group, ns, binary):
    apply(srv, cr(group, "s", spec={"cronSpec": "* * * * */5", "replicas": 2}), "-n", ns)
    out = srv.kubectl("-n", ns, "scale", f"crontab.{group}", "s", "--replicas=5", binary=binary, check=True)
    assert out.stdout.strip() == f"crontab.{group}/s scaled"
    scale = json.loads(srv.kubectl("get", "--raw", f"/apis/{group}/v1/namespaces/{ns}/crontabs/s/scale",
                                   check=True).stdout)
    assert scale["kind"] == "Scale" and scale["apiVersion"] == "autoscaling/v1"
    assert scale["spec"] == {"replicas": 5} and scale["status"] == {"replicas": 0}
    got = srv.kjson("-n", ns, "get", f"crontab.{group}", "s")
    assert got["spec"]["replicas"] == 5 and got["metadata"]["generation"] == 2
    # Beyond the schema's maximum: the object's validation answers, as upstream.
    over = srv.kubectl("-n", ns, "scale", f"crontab.{group}", "s", "--replicas=11", binary=binary)
    assert over.returncode == 1
    assert "spec.replicas: Invalid value: 11: spec.replicas in body should be less than or equal to 10" in over.stderr
    # status through /status only; the main resource ignores it and /status ignores spec.
    status_body = {"status": {"replicas": 3, "labelSelector": "app=s"}, "spec": {"image": "ignored"}}
    srv.kubectl("-n", ns, "patch", f"crontab.{group}", "s", "--subresource=status", "--type=merge",
                "-p", json.dumps(status_body), binary=KUBECTL, check=True)
    got = srv.kjson("-n", ns, "get", f"crontab.{group}", "s")
    assert got["status"] == {"replicas": 3, "labelSelector": "app=s"} and "image" not in got["spec"]
    assert got["metadata"]["generation"] == 2  # a status write does not move generation
    srv.kubectl("-n", ns, "patch", f"crontab.{group}", "s", "--type=merge", "-p", '{"status":{"replicas":9}}',
                check=True)
    assert srv.kjson("-n", ns, "get", f"crontab.{group}", "s")["status"]["replicas"] == 3
    scale = json.loads(srv.kubectl("get", "--raw", f"/apis/{group}/v1/namespaces/{ns}/crontabs/s/scale",
                                   check=True).stdout)
    assert scale["status"] == {"replicas": 3, "selector": "app=s"}


@pytest.mark.parametrize("binary", [KUBECTL, KUBECTL_OLD], ids=["kubectl1.33", "kubectl1.28"])
def test_printer_columns_in_kubectl_get(srv, group, ns, binary):
    apply(srv, cr(group, "print", spec={"cronSpec": "* * * * */5", "image": "my-awesome-cron-image"}), "-n", ns)
    lines = srv.kubectl("-n", ns, "get", "ct", binary=binary, check=True).stdout.splitlines()
    assert lines[0].split() == ["NAME", "SPEC", "REPLICAS", "AGE"]
    cells = lines[1].split()
    assert cells[:7] == ["print", "*", "*", "*", "*", "*/5", "1"]
    wide = srv.kubectl("-n", ns, "get", "ct", "-o", "wide", binary=binary, check=True).stdout.splitlines()
    assert wide[0].split() == ["NAME", "SPEC", "REPLICAS", "IMAGE", "AGE"]  # the CRD's order
    assert wide[1].split()[-2] == "my-awesome-cron-image"
    # kubectl get all lists the category's members, custom ones included.
    assert f"crontab.{group}/print" in srv.kubectl("-n", ns, "get", "all", binary=binary, check=True).stdout


def test_default_columns_are_name_and_age(srv, ns):
    g = unique_group()
    create_crd(srv, crd(g))
    apply(srv, cr(g, "plain"), "-n", ns)
    lines = srv.kubectl("-n", ns, "get", f"crontabs.{g}", check=True).stdout.splitlines()
    assert lines[0].split() == ["NAME", "AGE"]
    assert lines[1].split()[0] == "plain"
    srv.kubectl("delete", "crd", f"crontabs.{g}", check=True)


def test_garbage_collector_deletes_custom_resources_whose_owner_is_gone(srv, group, ns):
    owner = json.loads(srv.kubectl("-n", ns, "create", "configmap", "owner", "-o", "json", check=True).stdout)
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"]}
    dep = cr(group, "dependent", spec={"image": "x"})
    dep["metadata"]["ownerReferences"] = [ref]
    apply(srv, dep, "-n", ns)
    # And a ConfigMap owned by a custom resource.
    ct = srv.kjson("-n", ns, "get", f"crontab.{group}", "dependent")
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owned", "ownerReferences": [
        {"apiVersion": f"{group}/v1", "kind": "CronTab", "name": "dependent", "uid": ct["metadata"]["uid"]}]}}
    apply(srv, cm, "-n", ns)
    srv.kubectl("-n", ns, "delete", "configmap", "owner", check=True)
    srv.wait_for(lambda: srv.kubectl("-n", ns, "get", f"crontab.{group}", "dependent").returncode == 1,
                 what="the custom resource collected")
    srv.wait_for(lambda: srv.kubectl("-n", ns, "get", "configmap", "owned").returncode == 1,
                 what="the ConfigMap owned by the custom resource collected")


def test_deleting_a_namespace_deletes_its_custom_resources(srv, group, request):
    from conftest import create_namespace
    ns = create_namespace(srv, request)
    apply(srv, cr(group, "in-ns"), "-n", ns)
    srv.kubectl("delete", "namespace", ns, "--wait=false", check=True)
    srv.wait_for(lambda: srv.kubectl("get", "namespace", ns).returncode == 1, timeout=60,
                 what="the namespace and its custom resources gone")


def test_server_side_apply_merges_map_lists_by_their_keys(srv, ns):
    g = unique_group("ssa")
    schema = {"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                  "items": {"type": "object", "required": ["name"],
                            "properties": {"name": {"type": "string"}, "port": {"type": "integer"}}}},
        "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
        "args": {"type": "array", "items": {"type": "string"}}}}}}
    create_crd(srv, crd(g, plural="services", kind="Service", versions=[version("v1", schema=schema)]))

    def ssa(manager: str, spec: dict, check: bool = True):
        body = json.dumps(cr(g, "svc", kind="Service", spec=spec))
        return srv.kubectl("-n", ns, "apply", "--server-side", f"--field-manager={manager}", "-f", "-", input=body,
                           check=check)
    ssa("a", {"ports": [{"name": "http", "port": 80}], "tags": ["x"], "args": ["one"]})
    ssa("b", {"ports": [{"name": "https", "port": 443}], "tags": ["y"]})
    got = srv.kjson("-n", ns, "get", f"services.{g}", "svc")["spec"]
    assert got["ports"] == [{"name": "http", "port": 80}, {"name": "https", "port": 443}]  # merged by key
    assert got["tags"] == ["x", "y"]  # a set: merged by value
    # An atomic list belongs to one manager as a whole.
    clash = ssa("b", {"args": ["two"]}, check=False)
    assert clash.returncode == 1 and 'conflict with "a": .spec.args' in clash.stderr
    # Manager a stops applying its port: only its own item goes.
    ssa("a", {"tags": ["x"]})
    assert srv.kjson("-n", ns, "get", f"services.{g}", "svc")["spec"]["ports"] == [{"name": "https", "port": 443}]
    srv.kubectl("delete", "crd", f"services.{g}", check=True)
