"""The PyPI `kubernetes` client against `kubelite server` (API only): CRUD, watch,
optimistic concurrency, compaction (410), pagination, generation and allocation rules."""
from __future__ import annotations

import ipaddress
import re

import pytest
from conftest import API_ONLY, namespace_name, start_server
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException


@pytest.fixture(scope="module")
def api(api_server):
    """An ApiClient for the shared server, from its kubeconfig."""
    c = config.new_client_from_config(config_file=api_server.kubeconfig)
    yield c
    c.close()


@pytest.fixture
def core(api):
    return client.CoreV1Api(api)


@pytest.fixture
def apps(api):
    return client.AppsV1Api(api)


@pytest.fixture
def ns(request, core):
    name = namespace_name(request, "p")
    core.create_namespace({"metadata": {"name": name}})
    return name


def deployment(name: str, replicas: int = 1, image: str = "nginx:1.25") -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": image}]}}}}


def pod(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}}


def configmap(name: str, **data: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


# -- CRUD ------------------------------------------------------------------------------------
def test_deployment_crud(apps, ns):
    d = apps.create_namespaced_deployment(ns, deployment("web", 2))
    assert d.metadata.generation == 1 and d.metadata.uid and d.metadata.resource_version
    assert d.spec.strategy.type == "RollingUpdate" and d.spec.revision_history_limit == 10
    got = apps.read_namespaced_deployment("web", ns)
    assert got.metadata.resource_version == d.metadata.resource_version
    got.spec.replicas = 3
    upd = apps.replace_namespaced_deployment("web", ns, got)
    assert upd.spec.replicas == 3 and upd.metadata.generation == 2
    assert int(upd.metadata.resource_version) > int(d.metadata.resource_version)
    p = apps.patch_namespaced_deployment("web", ns, {"spec": {"template": {"spec": {"containers": [
        {"name": "c", "image": "nginx:1.26"}]}}}})
    assert p.spec.template.spec.containers[0].image == "nginx:1.26" and p.metadata.generation == 3
    sc = apps.patch_namespaced_deployment_scale("web", ns, {"spec": {"replicas": 5}})
    assert sc.spec.replicas == 5 and sc.status.selector == "app=web"
    assert apps.read_namespaced_deployment("web", ns).metadata.generation == 4
    names = [i.metadata.name for i in apps.list_namespaced_deployment(ns).items]
    assert names == ["web"]
    st = apps.delete_namespaced_deployment("web", ns)  # a Status, which this client leaves a dict
    assert st["status"] == "Success" and st["details"]["name"] == "web" and st["details"]["kind"] == "deployments"
    with pytest.raises(ApiException) as e:
        apps.read_namespaced_deployment("web", ns)
    assert e.value.status == 404


def test_pod_crud(core, ns):
    p = core.create_namespaced_pod(ns, pod("p1"))
    assert p.status.phase == "Pending"
    assert p.spec.restart_policy == "Always" and p.spec.service_account_name == "default"
    assert p.spec.containers[0].image_pull_policy == "IfNotPresent"
    p = core.patch_namespaced_pod("p1", ns, {"metadata": {"labels": {"x": "y"}}})
    assert p.metadata.labels == {"x": "y"}
    assert [i.metadata.name for i in core.list_namespaced_pod(ns, label_selector="x=y").items] == ["p1"]
    assert core.list_namespaced_pod(ns, label_selector="x=z").items == []
    # unscheduled pods go at once; the deleted pod is returned
    gone = core.delete_namespaced_pod("p1", ns)
    assert gone.metadata.name == "p1"
    assert core.list_namespaced_pod(ns).items == []


def test_service_crud_and_allocation(api_server, core, ns):
    s = core.create_namespaced_service(ns, {"metadata": {"name": "a"}, "spec": {
        "selector": {"app": "a"}, "ports": [{"port": 80, "targetPort": 8080}]}})
    assert s.spec.type == "ClusterIP" and s.spec.cluster_ips == [s.spec.cluster_ip]
    kube = core.read_namespaced_service("kubernetes", "default")
    cidr = ipaddress.ip_network(kube.spec.cluster_ip + "/16", strict=False)
    assert ipaddress.ip_address(s.spec.cluster_ip) in cidr
    assert s.spec.ports[0].protocol == "TCP" and s.spec.ports[0].target_port == 8080
    s = core.patch_namespaced_service("a", ns, {"spec": {"type": "NodePort"}})
    np = s.spec.ports[0].node_port
    assert 30000 <= np <= 32767
    # the cluster IP survives an update that omits it
    body = core.read_namespaced_service("a", ns)
    body.spec.cluster_ip = None
    body.spec.cluster_ips = None
    s2 = core.replace_namespaced_service("a", ns, body)
    assert s2.spec.cluster_ip == s.spec.cluster_ip and s2.spec.ports[0].node_port == np
    with pytest.raises(ApiException) as e:
        core.create_namespaced_service(ns, {"metadata": {"name": "b"}, "spec": {
            "type": "NodePort", "ports": [{"port": 81, "nodePort": np}]}})
    assert e.value.status == 422
    st = api_status(e.value)
    assert st["reason"] == "Invalid"
    assert st["message"] == \
        f'Service "b" is invalid: spec.ports[0].nodePort: Invalid value: {np}: provided port is already allocated'
    assert st["details"]["causes"] == [{"reason": "FieldValueInvalid", "field": "spec.ports[0].nodePort",
                                       "message": f"Invalid value: {np}: provided port is already allocated"}]
    with pytest.raises(ApiException) as e:
        core.create_namespaced_service(ns, {"metadata": {"name": "c"}, "spec": {
            "ports": [{"port": 81}], "clusterIP": s.spec.cluster_ip}})
    assert e.value.status == 422 and "provided IP is already allocated" in api_status(e.value)["message"]
    core.delete_namespaced_service("a", ns)
    # once freed, the node port can be requested again
    s3 = core.create_namespaced_service(ns, {"metadata": {"name": "b"}, "spec": {
        "type": "NodePort", "ports": [{"port": 81, "nodePort": np}]}})
    assert s3.spec.ports[0].node_port == np


def test_kubernetes_service_has_first_ip(api_server, core):
    kube = core.read_namespaced_service("kubernetes", "default")
    ip = ipaddress.ip_address(kube.spec.cluster_ip)
    # The server's own service range (a block it claimed, remembered in its data directory).
    net = ipaddress.ip_network((api_server.data_dir / "service-cidr").read_text().strip())
    assert ip == net.network_address + 1
    assert kube.spec.ports[0].port == 443


def test_configmap_crud_and_conflict(core, ns):
    cm = core.create_namespaced_config_map(ns, configmap("c", a="1"))
    stale = core.read_namespaced_config_map("c", ns)
    cm.data = {"a": "2"}
    cm2 = core.replace_namespaced_config_map("c", ns, cm)
    assert cm2.data == {"a": "2"}
    stale.data = {"a": "3"}
    with pytest.raises(ApiException) as e:
        core.replace_namespaced_config_map("c", ns, stale)
    assert e.value.status == 409
    st = api_status(e.value)
    assert st["reason"] == "Conflict"
    assert st["message"] == ('Operation cannot be fulfilled on configmaps "c": the object has been modified; '
                             'please apply your changes to the latest version and try again')
    assert core.read_namespaced_config_map("c", ns).data == {"a": "2"}
    # a merge patch carrying a stale resourceVersion is a precondition too
    with pytest.raises(ApiException) as e:
        core.patch_namespaced_config_map("c", ns, {"metadata": {"resourceVersion": stale.metadata.resource_version},
                                                   "data": {"a": "4"}})
    assert e.value.status == 409
    with pytest.raises(ApiException) as e:
        core.create_namespaced_config_map(ns, configmap("c"))
    assert e.value.status == 409 and api_status(e.value)["reason"] == "AlreadyExists"
    assert api_status(e.value)["message"] == 'configmaps "c" already exists'


def api_status(e: ApiException) -> dict:
    import json
    return json.loads(e.body)


# -- generation / status -----------------------------------------------------------------------
def test_generation_moves_only_on_spec_or_annotation_change(apps, ns):
    apps.create_namespaced_deployment(ns, deployment("g"))
    gen = lambda: apps.read_namespaced_deployment("g", ns).metadata.generation  # noqa: E731
    apps.patch_namespaced_deployment("g", ns, {"metadata": {"labels": {"new": "label"}}})
    assert gen() == 1
    apps.patch_namespaced_deployment("g", ns, {"metadata": {"annotations": {"a": "b"}}})
    assert gen() == 2
    apps.patch_namespaced_deployment_status("g", ns, {"status": {"replicas": 1, "observedGeneration": 2}})
    d = apps.read_namespaced_deployment("g", ns)
    assert d.metadata.generation == 2 and d.status.replicas == 1 and d.status.observed_generation == 2


def test_main_resource_put_ignores_status_and_status_put_ignores_spec(apps, ns):
    apps.create_namespaced_deployment(ns, deployment("s"))
    d = apps.read_namespaced_deployment("s", ns)
    d.status = client.V1DeploymentStatus(replicas=7, ready_replicas=7)
    d.spec.replicas = 2
    d = apps.replace_namespaced_deployment("s", ns, d)
    assert d.spec.replicas == 2 and not d.status.replicas
    d.status = client.V1DeploymentStatus(replicas=2, observed_generation=2)
    d.spec.replicas = 9
    d = apps.replace_namespaced_deployment_status("s", ns, d)
    assert d.spec.replicas == 2 and d.status.replicas == 2 and d.metadata.generation == 2


def test_create_resets_status(apps, ns):
    body = deployment("r")
    body["status"] = {"replicas": 4, "readyReplicas": 4}
    d = apps.create_namespaced_deployment(ns, body)
    assert d.status.replicas is None and d.status.ready_replicas is None


def test_a_replicaset_no_controller_has_seen_decodes_with_zero_replicas(apps, ns):
    # The server runs no controllers: the status is the create's own. The client requires
    # status.replicas (upstream writes it without omitempty) and refuses to decode without it.
    rs = deployment("bare")
    rs["kind"] = "ReplicaSet"
    rs["status"] = {"replicas": 3, "readyReplicas": 3}
    created = apps.create_namespaced_replica_set(ns, rs)
    assert created.status.replicas == 0 and created.status.ready_replicas is None
    listed = apps.list_namespaced_replica_set(ns).items
    assert [(r.metadata.name, r.status.replicas) for r in listed] == [("bare", 0)]


# -- watch -------------------------------------------------------------------------------------
def test_watch_without_resource_version_sends_synthetic_added(core, ns):
    core.create_namespaced_config_map(ns, configmap("w1"))
    core.create_namespaced_config_map(ns, configmap("w2"))
    seen = []
    w = watch.Watch()
    for ev in w.stream(core.list_namespaced_config_map, ns, timeout_seconds=30):
        seen.append((ev["type"], ev["object"].metadata.name))
        if len(seen) == 2:
            core.create_namespaced_config_map(ns, configmap("w3"))
            core.patch_namespaced_config_map("w1", ns, {"data": {"k": "v"}})
            core.delete_namespaced_config_map("w2", ns)
        if len(seen) == 5:
            w.stop()
    assert sorted(seen[:2]) == [("ADDED", "w1"), ("ADDED", "w2")]
    assert seen[2:] == [("ADDED", "w3"), ("MODIFIED", "w1"), ("DELETED", "w2")]


def test_watch_from_resource_version_has_only_later_changes(core, ns):
    core.create_namespaced_config_map(ns, configmap("a"))
    rv = core.list_namespaced_config_map(ns).metadata.resource_version
    core.create_namespaced_config_map(ns, configmap("b"))
    w = watch.Watch()
    events = []
    for ev in w.stream(core.list_namespaced_config_map, ns, resource_version=rv, timeout_seconds=30):
        events.append((ev["type"], ev["object"].metadata.name, ev["object"].metadata.resource_version))
        w.stop()
    assert events[0][:2] == ("ADDED", "b") and int(events[0][2]) > int(rv)


def test_watch_with_label_selector_sees_objects_enter_and_leave(core, ns):
    core.create_namespaced_config_map(ns, configmap("x"))
    rv = core.list_namespaced_config_map(ns).metadata.resource_version
    core.patch_namespaced_config_map("x", ns, {"metadata": {"labels": {"pick": "me"}}})
    core.patch_namespaced_config_map("x", ns, {"metadata": {"labels": {"pick": None}}})
    w = watch.Watch()
    events = []
    for ev in w.stream(core.list_namespaced_config_map, ns, label_selector="pick=me", resource_version=rv,
                       timeout_seconds=30):
        events.append(ev["type"])
        if len(events) == 2:
            w.stop()
    assert events == ["ADDED", "DELETED"]


def test_watch_timeout_ends_stream(core, ns):
    w = watch.Watch()
    rv = core.list_namespaced_config_map(ns).metadata.resource_version
    assert list(w.stream(core.list_namespaced_config_map, ns, resource_version=rv, timeout_seconds=1)) == []


# -- pagination --------------------------------------------------------------------------------
def test_list_pagination_limit_and_continue(core, ns):
    for i in range(7):
        core.create_namespaced_config_map(ns, configmap(f"cm{i}"))
    page = core.list_namespaced_config_map(ns, limit=3)
    names = [i.metadata.name for i in page.items]
    rv = page.metadata.resource_version
    assert len(names) == 3 and page.metadata._continue and page.metadata.remaining_item_count == 4
    # a change after the first page is not visible to the rest of this list (one snapshot)
    core.create_namespaced_config_map(ns, configmap("cm9"))
    core.delete_namespaced_config_map("cm6", ns)
    while page.metadata._continue:
        page = core.list_namespaced_config_map(ns, limit=3, _continue=page.metadata._continue)
        assert page.metadata.resource_version == rv
        names += [i.metadata.name for i in page.items]
    assert names == [f"cm{i}" for i in range(7)]
    assert not page.metadata.remaining_item_count
    with pytest.raises(ApiException) as e:
        core.list_namespaced_config_map(ns, limit=3, _continue="not-a-token")
    assert e.value.status == 400


def test_list_with_selector_and_limit_pages_over_matches(core, ns):
    for i in range(6):
        core.create_namespaced_config_map(ns, {"metadata": {"name": f"s{i}", "labels": {"even": str(i % 2 == 0)}}})
    names, cont = [], None
    while True:
        page = core.list_namespaced_config_map(ns, label_selector="even=True", limit=2, _continue=cont)
        names += [i.metadata.name for i in page.items]
        cont = page.metadata._continue
        if not cont:
            break
    assert names == ["s0", "s2", "s4"]


# -- compaction (a server that compacts every 0.2 s, keeping nothing) ------------------------
@pytest.fixture(scope="module")
def compacting(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("compact"), *API_ONLY, "--compact-interval", "0.2",
                       "--compact-keep", "0")
    c = config.new_client_from_config(config_file=srv.kubeconfig)
    yield srv, client.CoreV1Api(c)
    c.close()
    srv.stop()


def test_watch_from_compacted_revision_gets_410(compacting):
    srv, core = compacting
    core.create_namespaced_config_map("default", configmap("old"))
    old_rv = core.list_namespaced_config_map("default").metadata.resource_version
    core.patch_namespaced_config_map("old", "default", {"data": {"a": "1"}})

    def expired():
        try:
            list(watch.Watch().stream(core.list_namespaced_config_map, "default", resource_version=old_rv,
                                      timeout_seconds=1))
        except ApiException as e:
            return e
        return None
    e = srv.wait_for(expired, what="compaction past the old resourceVersion")
    assert e.status == 410
    assert re.fullmatch(rf"Expired: too old resource version: {old_rv} \(\d+\)", e.reason)
    # the current list RV is always watchable
    rv = core.list_namespaced_config_map("default").metadata.resource_version
    assert list(watch.Watch().stream(core.list_namespaced_config_map, "default", resource_version=rv,
                                     timeout_seconds=1)) == []


def test_continue_token_after_compaction_gets_410(compacting):
    srv, core = compacting
    for i in range(3):
        core.create_namespaced_config_map("default", configmap(f"page{i}"))
    page = core.list_namespaced_config_map("default", limit=1)
    core.create_namespaced_config_map("default", configmap("later"))

    def expired():
        try:
            core.list_namespaced_config_map("default", limit=1, _continue=page.metadata._continue)
        except ApiException as e:
            return e
        return None
    e = srv.wait_for(expired, what="compaction past the list snapshot")
    assert e.status == 410
    st = api_status(e)
    assert st["reason"] == "Expired"
    assert st["message"].startswith("The provided continue parameter is too old to display a consistent list result.")
