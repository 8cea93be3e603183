"""API machinery behaviours upstream's e2e suite relies on, against a started `kubelite
server` (API only), driven by the real kubectl and plain HTTPS as upstream's specs drive
kube-apiserver."""
from __future__ import annotations

import asyncio
import json
import random

import pytest
from conftest import API_ONLY, KUBECTL, KUBECTL_OLD, create_namespace, namespace_name, start_server
from test_api_errors import Raw, status_of


@pytest.fixture(scope="module")
def raw(api_server):
    return Raw(api_server)


@pytest.fixture
def ns(request, api_server):
    return create_namespace(api_server, request, "m")


def node(name: str, **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {"machinery": "yes"}},
            "spec": spec}


# -- field selectors ------------------------------------------------------------------------
def test_nodes_with_unset_unschedulable_match_spec_unschedulable_false(api_server, raw, request):
    """The e2e framework finds schedulable nodes with spec.unschedulable=false."""
    base = f"fs-{request.node.name[-6:].lower().replace('_', '-')}"
    for name, spec in ((f"{base}-plain", {}), (f"{base}-cordoned", {"unschedulable": True})):
        code, body = raw("POST", "/api/v1/nodes", node(name, **spec))
        assert code == 201, body
    try:
        p = api_server.kubectl("get", "nodes", "-l", "machinery=yes", "--field-selector", "spec.unschedulable=false",
                               "-o", "name", check=True)
        assert p.stdout.split() == [f"node/{base}-plain"]
        p = api_server.kubectl("get", "nodes", "-l", "machinery=yes", "--field-selector", "spec.unschedulable=true",
                               "-o", "name", check=True)
        assert p.stdout.split() == [f"node/{base}-cordoned"]
    finally:
        for suffix in ("plain", "cordoned"):
            raw("DELETE", f"/api/v1/nodes/{base}-{suffix}")


def test_pod_field_selectors_read_unset_fields_as_upstream(raw, ns):
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    assert raw("POST", f"/api/v1/namespaces/{ns}/pods", pod)[0] == 201

    def names(selector: str) -> list[str]:
        code, body = raw("GET", f"/api/v1/namespaces/{ns}/pods?fieldSelector={selector}")
        assert code == 200, body
        return [i["metadata"]["name"] for i in body["items"]]
    assert names("spec.hostNetwork=false") == ["p"]
    assert names("spec.nodeName=") == ["p"]
    assert names("spec.host=") == ["p"]  # the old name of spec.nodeName
    assert names("status.phase=Pending,spec.restartPolicy=Always,spec.schedulerName=default-scheduler") == ["p"]
    assert names("spec.serviceAccountName=default") == ["p"]
    assert names("status.podIP!=") == []


@pytest.mark.parametrize("path,selector,message", [
    ("/api/v1/namespaces/{ns}/pods", "spec.containers=x", "field label not supported: spec.containers"),
    ("/api/v1/nodes", "metadata.namespace=x", "field label not supported: metadata.namespace"),
    ("/apis/apps/v1/namespaces/{ns}/deployments", "spec.replicas=1",
     '"spec.replicas" is not a known field selector: only "metadata.name", "metadata.namespace"'),
    ("/apis/events.k8s.io/v1/namespaces/{ns}/events", "involvedObject.name=x",
     "field label not supported: involvedObject.name"),
])
def test_unsupported_field_selector_is_400(raw, ns, path, selector, message):
    code, body = raw("GET", path.format(ns=ns) + f"?fieldSelector={selector}")
    st = status_of(code, body, 400, "BadRequest")
    assert st["message"] == message


def test_kubectl_prints_unsupported_field_selector_error(api_server, ns):
    p = api_server.kubectl("get", "secrets", "-n", ns, "--field-selector", "data=x")
    assert p.returncode != 0
    assert 'field label not supported: data' in p.stderr


def test_secret_type_and_service_type_field_selectors(raw, ns):
    sec = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"a": "b"}}
    assert raw("POST", f"/api/v1/namespaces/{ns}/secrets", sec)[0] == 201
    code, body = raw("GET", f"/api/v1/namespaces/{ns}/secrets?fieldSelector=type=Opaque")
    assert code == 200 and [i["metadata"]["name"] for i in body["items"]] == ["s"]
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
           "spec": {"ports": [{"port": 80}], "selector": {"app": "web"}}}
    assert raw("POST", f"/api/v1/namespaces/{ns}/services", svc)[0] == 201
    code, body = raw("GET", f"/api/v1/namespaces/{ns}/services?fieldSelector=spec.type=ClusterIP")
    assert code == 200 and [i["metadata"]["name"] for i in body["items"]] == ["web"]
    code, body = raw("GET", f"/api/v1/namespaces/{ns}/services?fieldSelector=spec.type=NodePort")
    assert code == 200 and body["items"] == []


def test_events_k8s_io_field_selector_on_regarding(raw, ns):
    ev = {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e1"},
          "eventTime": "2024-01-01T00:00:00.000000Z", "reportingController": "example.com/ctl",
          "reportingInstance": "i", "action": "Act", "reason": "Because", "type": "Normal",
          "regarding": {"kind": "Pod", "name": "p1", "namespace": ns}}
    code, body = raw("POST", f"/apis/events.k8s.io/v1/namespaces/{ns}/events", ev)
    assert code == 201, body
    code, body = raw("GET", f"/apis/events.k8s.io/v1/namespaces/{ns}/events?fieldSelector="
                            "regarding.name=p1,reportingController=example.com/ctl")
    assert code == 200 and [i["metadata"]["name"] for i in body["items"]] == ["e1"]
    code, body = raw("GET", f"/apis/events.k8s.io/v1/namespaces/{ns}/events?fieldSelector=regarding.name=p2")
    assert code == 200 and body["items"] == []


def test_field_selector_applies_to_watch(raw, ns):
    code, body = raw("GET", f"/api/v1/namespaces/{ns}/pods?watch=1&fieldSelector=spec.containers=x")
    st = status_of(code, body, 400, "BadRequest")
    assert st["message"] == "field label not supported: spec.containers"


# -- omitempty booleans ---------------------------------------------------------------------
def test_explicit_false_unschedulable_is_dropped_like_upstream(api_server, raw, request):
    name = f"omit-{request.node.name[-5:].lower().replace('_', '-')}"
    code, body = raw("POST", "/api/v1/nodes", node(name, unschedulable=False))
    try:
        assert code == 201, body
        assert "unschedulable" not in body["spec"]
        assert "unschedulable" not in raw("GET", f"/api/v1/nodes/{name}")[1]["spec"]
        api_server.kubectl("cordon", name, check=True)
        assert raw("GET", f"/api/v1/nodes/{name}")[1]["spec"]["unschedulable"] is True
        api_server.kubectl("uncordon", name, check=True)
        assert "unschedulable" not in raw("GET", f"/api/v1/nodes/{name}")[1]["spec"]
    finally:
        raw("DELETE", f"/api/v1/nodes/{name}")


def test_pod_booleans_upstream_omits_when_false_are_not_stored(raw, ns):
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "b"},
           "spec": {"hostNetwork": False, "hostPID": False, "hostIPC": False, "enableServiceLinks": False,
                    "containers": [{"name": "c", "image": "busybox", "stdin": False, "tty": False,
                                    "securityContext": {"privileged": False}}]}}
    code, body = raw("POST", f"/api/v1/namespaces/{ns}/pods", pod)
    assert code == 201, body
    spec = raw("GET", f"/api/v1/namespaces/{ns}/pods/b")[1]["spec"]
    assert not {"hostNetwork", "hostPID", "hostIPC"} & set(spec)
    assert not {"stdin", "tty"} & set(spec["containers"][0])
    # Pointer booleans keep an explicit false, as upstream's do.
    assert spec["enableServiceLinks"] is False
    assert spec["containers"][0]["securityContext"] == {"privileged": False}


# -- Endpoints validation -------------------------------------------------------------------
def test_user_endpoints_with_loopback_address_are_rejected(api_server, ns):
    manifest = json.dumps({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "ext"},
                           "subsets": [{"addresses": [{"ip": "127.0.0.5"}], "ports": [{"port": 80}]}]})
    p = api_server.kubectl("create", "-n", ns, "-f", "-", input=manifest)
    assert p.returncode != 0
    assert ('The Endpoints "ext" is invalid: subsets[0].addresses[0].ip: Invalid value: "127.0.0.5": '
            "may not be in the loopback range (127.0.0.0/8, ::1/128)") in p.stderr
    ok = manifest.replace("127.0.0.5", "192.0.2.10")
    api_server.kubectl("create", "-n", ns, "-f", "-", input=ok, check=True)


def test_api_server_endpoints_keep_their_loopback_address(raw):
    code, body = raw("GET", "/api/v1/namespaces/default/endpoints/kubernetes")
    assert code == 200 and body["subsets"][0]["addresses"] == [{"ip": "127.0.0.1"}]


# -- server-side apply body parsing ---------------------------------------------------------
def test_apply_body_of_tab_indented_json_is_accepted(raw, ns):
    """upstream apply.go's specs send JSON indented with tabs (which YAML forbids)."""
    body = (b'{\n\t"apiVersion": "v1",\n\t"kind": "ConfigMap",\n\t"metadata": {\n\t\t"name": "tabbed"\n\t},\n'
            b'\t"data": {\n\t\t"key": "value"\n\t}\n}')
    code, out = raw("PATCH", f"/api/v1/namespaces/{ns}/configmaps/tabbed?fieldManager=apply_test", body,
                    ctype="application/apply-patch+yaml")
    assert code == 201, out
    assert out["data"] == {"key": "value"}
    yaml_body = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: tabbed\ndata:\n  key: other\n"
    code, out = raw("PATCH", f"/api/v1/namespaces/{ns}/configmaps/tabbed?fieldManager=apply_test", yaml_body,
                    ctype="application/apply-patch+yaml")
    assert code == 200 and out["data"] == {"key": "other"}, out


# -- fieldValidation: duplicate fields ------------------------------------------------------
def send(raw: Raw, method: str, path: str, body: bytes, ctype: str = "application/json"):
    """(code, parsed body, Warning header values) of one request."""
    import urllib.error
    import urllib.request
    req = urllib.request.Request(raw.base + path, data=body, method=method,
                                 headers={"Content-Type": ctype, "Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, context=raw.admin, timeout=30) as r:
            code, data, headers = r.status, r.read(), r.headers
    except urllib.error.HTTPError as e:
        code, data, headers = e.code, e.read(), e.headers
    return code, json.loads(data), headers.get_all("Warning") or []


# The body of upstream's "should detect unknown and duplicate fields of a typed object".
DUPLICATE_DEPLOYMENT = b'''{
\t\t"apiVersion": "apps/v1",
\t\t"kind": "Deployment",
\t\t"metadata": {
\t\t\t"name": "my-dep",
\t\t\t"labels": {"app": "nginx"}
\t\t},
\t\t"spec": {
\t\t\t"unknownField": "foo",
\t\t\t"replicas": 2,
\t\t\t"replicas": 3,
\t\t\t"selector": {
\t\t\t\t"matchLabels": {
\t\t\t\t\t"app": "nginx"
\t\t\t\t}
\t\t\t},
\t\t\t"template": {
\t\t\t\t"metadata": {
\t\t\t\t\t"labels": {
\t\t\t\t\t\t"app": "nginx"
\t\t\t\t\t}
\t\t\t\t},
\t\t\t\t"spec": {
\t\t\t\t\t"containers": [{
\t\t\t\t\t\t"name":  "nginx",
\t\t\t\t\t\t"image": "nginx:latest",
\t\t\t\t\t\t"imagePullPolicy": "Always",
\t\t\t\t\t\t"imagePullPolicy": "Never"
\t\t\t\t\t}]
\t\t\t\t}
\t\t\t}
\t\t}
\t}'''


def test_should_detect_unknown_and_duplicate_fields_of_a_typed_object(raw, ns):
    code, body, _ = send(raw, "POST", f"/apis/apps/v1/namespaces/{ns}/deployments"
                                      "?fieldManager=field_validation_mgr&fieldValidation=Strict", DUPLICATE_DEPLOYMENT)
    st = status_of(code, body, 400, "BadRequest")
    assert st["message"] == ('strict decoding error: unknown field "spec.unknownField", duplicate field '
                             '"spec.replicas", duplicate field "spec.template.spec.containers[0].imagePullPolicy"')
    assert raw("GET", f"/apis/apps/v1/namespaces/{ns}/deployments/my-dep")[0] == 404


def test_duplicate_fields_under_warn_are_warnings_and_the_last_value_wins(raw, ns):
    code, body, warnings = send(raw, "POST", f"/apis/apps/v1/namespaces/{ns}/deployments?fieldValidation=Warn",
                                DUPLICATE_DEPLOYMENT)
    assert code == 201, body
    assert warnings == ['299 - "unknown field \\"spec.unknownField\\""', '299 - "duplicate field \\"spec.replicas\\""',
                        '299 - "duplicate field \\"spec.template.spec.containers[0].imagePullPolicy\\""']
    assert body["spec"]["replicas"] == 3 and "unknownField" not in body["spec"]
    code, body, warnings = send(raw, "PUT", f"/apis/apps/v1/namespaces/{ns}/deployments/my-dep?fieldValidation=Ignore",
                                DUPLICATE_DEPLOYMENT)
    assert code == 200 and warnings == []


def test_duplicate_fields_in_yaml_bodies(raw, ns):
    yaml_body = (b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: dup\ndata:\n  a: one\n  a: two\n"
                 b"bogus: 1\n")
    code, body, _ = send(raw, "POST", f"/api/v1/namespaces/{ns}/configmaps?fieldValidation=Strict", yaml_body,
                         "application/yaml")
    st = status_of(code, body, 400, "BadRequest")
    assert st["message"] == ('strict decoding error: yaml: unmarshal errors:\n  line 7: key "a" already set in map, '
                             'unknown field "bogus"')
    code, body, warnings = send(raw, "POST", f"/api/v1/namespaces/{ns}/configmaps", yaml_body, "application/yaml")
    assert code == 201 and body["data"] == {"a": "two"}
    assert warnings == ['299 - "line 7: key \\"a\\" already set in map"', '299 - "unknown field \\"bogus\\""']


def test_duplicate_fields_in_patches(raw, ns):
    assert raw("POST", f"/api/v1/namespaces/{ns}/configmaps",
               {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "p"}})[0] == 201
    patch = b'{"data": {"k": "1", "k": "2"}}'
    code, body, _ = send(raw, "PATCH", f"/api/v1/namespaces/{ns}/configmaps/p?fieldValidation=Strict", patch,
                         "application/merge-patch+json")
    st = status_of(code, body, 400, "BadRequest")
    assert st["message"] == 'strict decoding error: duplicate field "data.k"'
    code, body, warnings = send(raw, "PATCH", f"/api/v1/namespaces/{ns}/configmaps/p", patch,
                                "application/strategic-merge-patch+json")
    assert code == 200 and body["data"] == {"k": "2"}
    assert warnings == ['299 - "duplicate field \\"data.k\\""']
    # Apply reads its body as YAML, and words repeated keys the way the YAML decoder does.
    applied = b'{\n\t"apiVersion": "v1",\n\t"kind": "ConfigMap",\n\t"metadata": {"name": "p"},\n\t"data": {\n' \
              b'\t\t"k": "3",\n\t\t"k": "4"\n\t}\n}'
    code, body, _ = send(raw, "PATCH", f"/api/v1/namespaces/{ns}/configmaps/p?fieldManager=m&fieldValidation=Strict",
                         applied, "application/apply-patch+yaml")
    st = status_of(code, body, 400, "BadRequest")
    assert st["message"] == ("error strict decoding YAML: error converting YAML to JSON: yaml: unmarshal errors:\n"
                             '  line 7: key "k" already set in map')
    code, body, warnings = send(raw, "PATCH", f"/api/v1/namespaces/{ns}/configmaps/p?fieldManager=m&force=true",
                                applied, "application/apply-patch+yaml")
    assert code == 200 and body["data"] == {"k": "4"}, body
    assert warnings == ['299 - "line 7: key \\"k\\" already set in map"']


@pytest.mark.parametrize("binary", [KUBECTL, KUBECTL_OLD])
def test_kubectl_prints_field_validation_warnings(api_server, ns, binary):
    manifest = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "warned"},
                           "data": {"a": "b"}, "bogus": {"x": 1}})
    p = api_server.kubectl("create", "--validate=warn", "-n", ns, "-f", "-", input=manifest, binary=binary,
                           check=True)
    assert 'Warning: unknown field "bogus"' in p.stderr
    api_server.kubectl("delete", "cm", "warned", "-n", ns, check=True)


# -- health endpoints -----------------------------------------------------------------------
LIVEZ_CHECKS = ["[+]ping ok", "[+]log ok", "[+]etcd ok", "[+]poststarthook/start-system-namespaces-controller ok",
                "[+]poststarthook/bootstrap-controller ok"]


@pytest.mark.parametrize("endpoint,extra", [("healthz", []), ("livez", []),
                                            ("readyz", ["[+]etcd-readiness ok", "[+]shutdown ok"])])
def test_verbose_health_lists_each_named_check(api_server, endpoint, extra):
    """As upstream's "health handlers should contain necessary checks" reads them, via kubectl."""
    for query in ("?verbose", "?verbose=1"):
        out = api_server.kubectl("get", "--raw", f"/{endpoint}{query}", check=True).stdout
        lines = out.splitlines()
        assert set(LIVEZ_CHECKS + extra) <= set(lines), out
        assert lines[0] == "[+]ping ok" and lines[-1] == f"{endpoint} check passed"
        assert len(lines) == len(LIVEZ_CHECKS + extra) + 1
    assert api_server.kubectl("get", "--raw", f"/{endpoint}", check=True).stdout == "ok"


def test_single_health_check_and_unknown_check(raw):
    for path in ("/readyz/ping", "/livez/etcd", "/healthz/log", "/readyz/shutdown",
                 "/livez/poststarthook/bootstrap-controller"):
        assert raw("GET", path, anonymous=True) == (200, "ok"), path
    code, body = raw("GET", "/livez/no-such-check", anonymous=True)
    status_of(code, body, 404, "NotFound")
    code, body = raw("GET", "/livez/shutdown")  # a readyz-only check
    assert code == 404


def test_health_check_exclusion(raw):
    code, body = raw("GET", "/livez?verbose&exclude=etcd&exclude=nope")
    assert code == 200
    lines = body.splitlines()
    assert "[+]etcd excluded: ok" in lines
    assert 'warn: some health checks cannot be excluded: no matches for "nope"' in lines


class _SlowStore:
    """A store whose reads never finish (a wedged etcd)."""

    async def get(self, key: str):
        await asyncio.Event().wait()


class _Store:
    async def get(self, key: str):
        return None


async def test_readyz_fails_before_bootstrap_and_while_shutting_down(monkeypatch):
    from aiohttp.test_utils import make_mocked_request

    from kubelite.apiserver import health
    bootstrapped, closing = asyncio.Event(), asyncio.Event()
    h = health.Health(_Store(), bootstrapped, closing)
    resp = await h.handle(make_mocked_request("GET", "/readyz"), "/readyz")
    assert resp.status == 500
    assert resp.text.splitlines()[-3:] == ["[-]poststarthook/bootstrap-controller failed: reason withheld",
                                           "[+]shutdown ok", "readyz check failed"]
    resp = await h.handle(make_mocked_request("GET", "/readyz/poststarthook/bootstrap-controller"),
                          "/readyz/poststarthook/bootstrap-controller")
    assert (resp.status, resp.text) == (500, "internal server error: not finished\n")
    bootstrapped.set()
    assert (await h.handle(make_mocked_request("GET", "/readyz"), "/readyz")).text == "ok"
    closing.set()
    resp = await h.handle(make_mocked_request("GET", "/readyz?verbose"), "/readyz")
    assert resp.status == 500 and "[-]shutdown failed: reason withheld" in resp.text.splitlines()
    assert (await h.handle(make_mocked_request("GET", "/livez"), "/livez")).text == "ok"
    # A store that does not answer fails etcd.
    monkeypatch.setattr(health, "STORE_TIMEOUT", 0.01)
    wedged = health.Health(_SlowStore(), bootstrapped, asyncio.Event())
    resp = await wedged.handle(make_mocked_request("GET", "/livez"), "/livez")
    assert resp.status == 500 and "[-]etcd failed: reason withheld" in resp.text.splitlines()


# -- Table and media type negotiation -------------------------------------------------------
TABLE_V1BETA1 = "application/json;as=Table;v=v1beta1;g=meta.k8s.io"


def test_table_in_the_requested_meta_version(raw, ns):
    assert raw("POST", f"/api/v1/namespaces/{ns}/configmaps", {"metadata": {"name": "t"}, "data": {"a": "b"}})[0] == 201
    code, tbl = raw("GET", f"/api/v1/namespaces/{ns}/configmaps/t", headers={"Accept": TABLE_V1BETA1})
    assert code == 200 and tbl["kind"] == "Table" and tbl["apiVersion"] == "meta.k8s.io/v1beta1"
    assert tbl["columnDefinitions"][0]["name"] == "Name" and tbl["rows"][0]["cells"][0] == "t"
    assert tbl["rows"][0]["object"]["apiVersion"] == "meta.k8s.io/v1beta1"
    code, tbl = raw("GET", f"/api/v1/namespaces/{ns}/configmaps",
                    headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"})
    assert code == 200 and tbl["apiVersion"] == "meta.k8s.io/v1" and [r["cells"][0] for r in tbl["rows"]] == ["t"]


@pytest.mark.parametrize("accept", [
    "application/json;as=Table;v=v1beta2;g=meta.k8s.io",
    "application/json;as=Foo;v=v1;g=meta.k8s.io",
    "application/json;as=Table;v=v1;g=example.com",
    "application/json;as=Table",
    "application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io",
    "text/html",
])
def test_unsupported_conversion_is_406(raw, ns, accept):
    code, body = raw("GET", f"/api/v1/namespaces/{ns}/configmaps", headers={"Accept": accept})
    st = status_of(code, body, 406, "NotAcceptable")
    assert st["message"] == ("only the following media types are accepted: application/json, application/yaml, "
                             "application/vnd.kubernetes.protobuf")


def test_406_is_decided_before_the_write(raw, ns):
    code, body = raw("POST", f"/api/v1/namespaces/{ns}/configmaps", {"metadata": {"name": "never"}},
                     headers={"Accept": "application/json;as=Foo;v=v1;g=meta.k8s.io"})
    status_of(code, body, 406, "NotAcceptable")
    assert raw("GET", f"/api/v1/namespaces/{ns}/configmaps/never")[0] == 404
    # A later acceptable clause is answered.
    code, body = raw("GET", f"/api/v1/namespaces/{ns}/configmaps",
                     headers={"Accept": "application/json;as=Foo;v=v1;g=meta.k8s.io, application/json"})
    assert code == 200 and body["kind"] == "ConfigMapList"


def test_table_list_with_limit_and_continue(raw, ns):
    for i in range(5):
        assert raw("POST", f"/api/v1/namespaces/{ns}/configmaps", {"metadata": {"name": f"c{i}"}})[0] == 201
    code, page = raw("GET", f"/api/v1/namespaces/{ns}/configmaps?limit=2", headers={"Accept": TABLE_V1BETA1})
    assert code == 200 and [r["cells"][0] for r in page["rows"]] == ["c0", "c1"]
    assert page["metadata"]["resourceVersion"] and page["metadata"]["continue"]
    assert page["metadata"]["remainingItemCount"] == 3
    code, rest = raw("GET", f"/api/v1/namespaces/{ns}/configmaps?continue={page['metadata']['continue']}",
                     headers={"Accept": TABLE_V1BETA1})
    assert code == 200 and [r["cells"][0] for r in rest["rows"]] == ["c2", "c3", "c4"]
    assert "continue" not in rest["metadata"]


def test_partial_object_metadata_list(raw, ns):
    assert raw("POST", f"/api/v1/namespaces/{ns}/configmaps", {"metadata": {"name": "m"}, "data": {"a": "b"}})[0] == 201
    code, lst = raw("GET", f"/api/v1/namespaces/{ns}/configmaps",
                    headers={"Accept": "application/json;as=PartialObjectMetadataList;v=v1beta1;g=meta.k8s.io"})
    assert code == 200 and lst["kind"] == "PartialObjectMetadataList" and lst["apiVersion"] == "meta.k8s.io/v1beta1"
    assert lst["items"][0]["metadata"]["name"] == "m" and "data" not in lst["items"][0]


# -- list chunking (upstream's "Servers with support for API chunking") ---------------------
TOTAL_TEMPLATES = 400


def create_templates(core, ns: str, count: int) -> None:
    """``template-0000`` … as upstream's chunking specs create them."""
    for i in range(count):
        core.create_namespaced_pod_template(ns, {
            "metadata": {"name": f"template-{i:04d}"},
            "template": {"spec": {"containers": [{"name": "test", "image": "test2"}]}}})


@pytest.fixture(scope="module")
def core(api_server):
    from kubernetes import client, config
    c = config.new_client_from_config(config_file=api_server.kubeconfig)
    yield client.CoreV1Api(c)
    c.close()


def test_should_return_chunks_of_results_for_list_calls(core, ns):
    create_templates(core, ns, TOTAL_TEMPLATES)
    rng = random.Random(17)
    for _ in range(3):
        found, last_rv, cont = 0, "", None
        while True:
            limit = rng.randint(1, TOTAL_TEMPLATES // 10)
            page = core.list_namespaced_pod_template(ns, limit=limit, _continue=cont)
            assert len(page.items) <= limit
            last_rv = last_rv or page.metadata.resource_version
            assert page.metadata.resource_version == last_rv
            if page.metadata._continue:
                assert page.metadata.remaining_item_count + len(page.items) + found == TOTAL_TEMPLATES
            else:
                assert page.metadata.remaining_item_count is None
            for item in page.items:
                assert item.metadata.name == f"template-{found:04d}"
                found += 1
            cont = page.metadata._continue
            if not cont:
                break
        assert found == TOTAL_TEMPLATES
    everything = core.list_namespaced_pod_template(ns, limit=TOTAL_TEMPLATES + 1)
    assert len(everything.items) == TOTAL_TEMPLATES and not everything.metadata._continue


def test_should_return_chunks_of_table_results_for_list_calls(core, raw, ns):
    create_templates(core, ns, 20)
    code, page = raw("GET", f"/api/v1/namespaces/{ns}/podtemplates?limit=2", headers={"Accept": TABLE_V1BETA1})
    assert code == 200 and [r["cells"][0] for r in page["rows"]] == ["template-0000", "template-0001"]
    assert page["metadata"]["resourceVersion"] and page["metadata"]["continue"]
    code, page = raw("GET", f"/api/v1/namespaces/{ns}/podtemplates?continue={page['metadata']['continue']}",
                     headers={"Accept": TABLE_V1BETA1})
    assert code == 200 and page["rows"][0]["cells"][0] == "template-0002"


@pytest.fixture(scope="module")
def compacting(tmp_path_factory):
    """A server that compacts its history every 0.2 s, keeping nothing, and its client."""
    from kubernetes import client, config
    srv = start_server(tmp_path_factory.mktemp("chunk-compact"), *API_ONLY, "--compact-interval", "0.2",
                       "--compact-keep", "0")
    c = config.new_client_from_config(config_file=srv.kubeconfig)
    yield srv, client.CoreV1Api(c)
    c.close()
    srv.stop()


def test_should_support_continue_listing_from_the_last_key_if_the_original_version_has_been_compacted_away(
        compacting, request):
    from kubernetes.client.rest import ApiException
    srv, core = compacting
    ns = namespace_name(request, "c")
    core.create_namespace({"metadata": {"name": ns}})
    create_templates(core, ns, TOTAL_TEMPLATES)
    one_tenth = TOTAL_TEMPLATES // 10
    first = core.list_namespaced_pod_template(ns, limit=one_tenth)
    assert first.metadata.remaining_item_count + len(first.items) == TOTAL_TEMPLATES
    first_rv = first.metadata.resource_version
    core.create_namespaced_config_map(ns, {"metadata": {"name": "moves-the-revision"}})

    def expired():
        try:
            core.list_namespaced_pod_template(ns, limit=one_tenth, _continue=first.metadata._continue)
        except ApiException as e:
            return e
        return None
    e = srv.wait_for(expired, what="compaction past the first page's snapshot")
    status = json.loads(e.body)
    assert e.status == 410 and status["reason"] == "Expired"
    inconsistent = status["metadata"]["continue"]
    assert inconsistent

    page = core.list_namespaced_pod_template(ns, limit=one_tenth, _continue=inconsistent)
    assert page.metadata.resource_version != first_rv
    assert len(page.items) == one_tenth
    found = one_tenth
    assert page.metadata.remaining_item_count + len(page.items) + found == TOTAL_TEMPLATES
    last_rv = page.metadata.resource_version
    while True:
        for item in page.items:
            assert item.metadata.name == f"template-{found:04d}"
            found += 1
        if not page.metadata._continue:
            break
        page = core.list_namespaced_pod_template(ns, limit=one_tenth, _continue=page.metadata._continue)
        assert page.metadata.resource_version == last_rv
        assert len(page.items) <= one_tenth
    assert found == TOTAL_TEMPLATES


# -- ServiceAccount admission ---------------------------------------------------------------
@pytest.mark.parametrize("sa_automount,pod_automount,mounted", [
    (None, None, True), (None, True, True), (None, False, False),
    (True, None, True), (True, True, True), (True, False, False),
    (False, None, False), (False, True, True), (False, False, False),
])
def test_should_allow_opting_out_of_api_token_automount(raw, ns, sa_automount, pod_automount, mounted):
    """Upstream's ServiceAccounts spec: the pod's field wins when set, then the ServiceAccount's."""
    sa: dict = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sa"}}
    if sa_automount is not None:
        sa["automountServiceAccountToken"] = sa_automount
    assert raw("POST", f"/api/v1/namespaces/{ns}/serviceaccounts", sa)[0] == 201
    pod: dict = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                 "spec": {"serviceAccountName": "sa", "containers": [{"name": "c", "image": "busybox"}]}}
    if pod_automount is not None:
        pod["spec"]["automountServiceAccountToken"] = pod_automount
    code, out = raw("POST", f"/api/v1/namespaces/{ns}/pods", pod)
    assert code == 201, out
    mounts = [m["mountPath"] for m in out["spec"]["containers"][0].get("volumeMounts") or []]
    assert ("/var/run/secrets/kubernetes.io/serviceaccount" in mounts) is mounted
    assert any(v["name"].startswith("kube-api-access-") for v in out["spec"].get("volumes") or []) is mounted


def test_service_account_image_pull_secrets_are_copied_to_pods(raw, ns):
    sa = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "puller"},
          "imagePullSecrets": [{"name": "registry-a"}, {"name": "registry-b"}]}
    assert raw("POST", f"/api/v1/namespaces/{ns}/serviceaccounts", sa)[0] == 201
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"serviceAccountName": "puller", "containers": [{"name": "c", "image": "busybox"}]}}
    code, out = raw("POST", f"/api/v1/namespaces/{ns}/pods", pod)
    assert code == 201 and out["spec"]["imagePullSecrets"] == [{"name": "registry-a"}, {"name": "registry-b"}]
    pod["metadata"]["name"] = "own"
    pod["spec"]["imagePullSecrets"] = [{"name": "mine"}]
    code, out = raw("POST", f"/api/v1/namespaces/{ns}/pods", pod)
    assert code == 201 and out["spec"]["imagePullSecrets"] == [{"name": "mine"}]
