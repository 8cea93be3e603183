"""Bad input against `kubelite server`: every failure is a metav1.Status with upstream's
code, reason and message, and no bad request ever changes the store."""
from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request

import pytest
from conftest import KUBECTL, KUBECTL_OLD, create_namespace


class Raw:
    """Plain HTTPS requests with the admin certificate (or none: anonymous)."""

    def __init__(self, srv):
        cfg = srv.client_config()
        self.base = cfg.server
        self.admin = ssl.create_default_context(cafile=cfg.ca_file)
        self.admin.load_cert_chain(cfg.cert_file, cfg.key_file)
        self.anon = ssl.create_default_context(cafile=cfg.ca_file)

    def __call__(self, method: str, path: str, body: bytes | dict | list | None = None,
                 ctype: str = "application/json", anonymous: bool = False,
                 headers: dict | None = None) -> tuple[int, dict | str]:
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=body, method=method,
                                     headers={"Content-Type": ctype, "Accept": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(req, context=self.anon if anonymous else self.admin, timeout=30) as r:
                code, data = r.status, r.read()
        except urllib.error.HTTPError as e:
            code, data = e.code, e.read()
        try:
            return code, json.loads(data)
        except ValueError:
            return code, data.decode(errors="replace")


@pytest.fixture(scope="module")
def raw(api_server):
    return Raw(api_server)


@pytest.fixture
def ns(request, api_server):
    return create_namespace(api_server, request, "e")


def status_of(code: int, body, want_code: int, want_reason: str) -> dict:
    """Check a Status body and return it."""
    assert code == want_code, body
    assert isinstance(body, dict) and body["kind"] == "Status" and body["apiVersion"] == "v1", body
    assert body["status"] == "Failure" and body["code"] == want_code and body["reason"] == want_reason, body
    return body


def cm(name: str, **extra) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}, **extra}


DEPLOY = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
          "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "d"}},
                   "template": {"metadata": {"labels": {"app": "d"}},
                                "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}


def store_rv(raw, ns: str) -> str:
    """The list resourceVersion of a namespace's configmaps: the global revision."""
    code, body = raw("GET", f"/api/v1/namespaces/{ns}/configmaps")
    assert code == 200
    return body["metadata"]["resourceVersion"]


# -- authentication -------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/api/v1/namespaces", "/apis", "/api/v1/namespaces/default/pods"])
def test_anonymous_request_is_401_status(raw, path):
    code, body = raw("GET", path, anonymous=True)
    st = status_of(code, body, 401, "Unauthorized")
    assert st["message"] == "Unauthorized"


def test_unknown_bearer_token_is_401(raw):
    code, body = raw("GET", "/api/v1/namespaces", anonymous=True, headers={"Authorization": "Bearer nope"})
    status_of(code, body, 401, "Unauthorized")


def test_health_and_version_need_no_credentials(raw):
    for p in ("/healthz", "/livez", "/readyz"):
        assert raw("GET", p, anonymous=True) == (200, "ok")
    code, body = raw("GET", "/version", anonymous=True)
    assert code == 200 and body["major"] == "1"


def test_kubectl_with_unknown_token_prints_logged_in_message(api_server, tmp_path):
    cfg = api_server.client_config()
    kc = tmp_path / "anon.kubeconfig"
    kc.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": cfg.server, "certificate-authority": cfg.ca_file}}],
        "users": [{"name": "u", "user": {"token": "not-a-known-token"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))
    for binary in (KUBECTL, KUBECTL_OLD):
        p = api_server.kubectl("get", "pods", env={"KUBECONFIG": str(kc)}, binary=binary)
        assert p.returncode == 1
        # client-go words it "(Unauthorized)" or, from discovery, "(the server has asked
        # for the client to provide credentials)", as against a real cluster
        assert p.stderr.splitlines()[-1].startswith("error: You must be logged in to the server ("), p.stderr


# -- bodies ---------------------------------------------------------------------------------
def test_body_over_3mib_is_413_and_not_stored(raw, ns):
    before = store_rv(raw, ns)
    code, body = raw("POST", f"/api/v1/namespaces/{ns}/configmaps", cm("big", data={"k": "x" * (3 * 1024 * 1024)}))
    st = status_of(code, body, 413, "RequestEntityTooLarge")
    assert "limit is 3145728" in st["message"]
    assert store_rv(raw, ns) == before
    code, _ = raw("GET", f"/api/v1/namespaces/{ns}/configmaps/big")
    assert code == 404


def test_body_just_under_limit_is_accepted(raw, ns):
    code, body = raw("POST", f"/api/v1/namespaces/{ns}/configmaps", cm("almost", data={"k": "x" * (1024 * 1024)}))
    assert code == 201, body


@pytest.mark.parametrize("ctype,payload", [
    ("application/json", b"{not json"),
    ("application/json", b'{"apiVersion": "v1", "kind": "ConfigMap", "metadata": '),
    ("application/yaml", b"metadata: [unclosed"),
    ("application/json", b"[1, 2, 3]"),
    ("application/json", b'"just a string"'),
])
def test_malformed_body_is_400_with_message(raw, ns, ctype, payload):
    before = store_rv(raw, ns)
    code, body = raw("POST", f"/api/v1/namespaces/{ns}/configmaps", payload, ctype)
    st = status_of(code, body, 400, "BadRequest")
    assert st["message"]
    assert store_rv(raw, ns) == before


def test_yaml_body_is_accepted(raw, ns):
    code, body = raw("POST", f"/api/v1/namespaces/{ns}/configmaps",
                     b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fromyaml\ndata:\n  a: b\n", "application/yaml")
    assert code == 201 and body["data"] == {"a": "b"}


def test_unsupported_content_type_is_415(raw, ns):
    code, body = raw("POST", f"/api/v1/namespaces/{ns}/configmaps", b"k=v", "text/plain")
    status_of(code, body, 415, "UnsupportedMediaType")


def test_malformed_patches_are_400(raw, ns):
    raw("POST", f"/api/v1/namespaces/{ns}/configmaps", cm("p"))
    before = store_rv(raw, ns)
    path = f"/api/v1/namespaces/{ns}/configmaps/p"
    for ctype, payload in [("application/merge-patch+json", b"{bad"),
                           ("application/strategic-merge-patch+json", b"[1]"),
                           ("application/json-patch+json", b'{"op": "add"}'),
                           ("application/json-patch+json", b'[{"op": "remove", "path": "/data/missing"}]')]:
        code, body = raw("PATCH", path, payload, ctype)
        assert code in (400, 422), (ctype, payload, body)
        assert body["kind"] == "Status" and body["message"]
    code, body = raw("PATCH", path, b"{}", "application/xml")
    status_of(code, body, 415, "UnsupportedMediaType")
    assert store_rv(raw, ns) == before


# -- field validation -------------------------------------------------------------------------
def test_unknown_field_strict_is_400_naming_the_field(raw, ns):
    before = store_rv(raw, ns)
    code, body = raw("POST", f"/api/v1/namespaces/{ns}/configmaps?fieldValidation=Strict", cm("s", bogus=1))
    st = status_of(code, body, 400, "BadRequest")
    assert st["message"] == 'strict decoding error: unknown field "bogus"'
    d = json.loads(json.dumps(DEPLOY))
    d["spec"]["template"]["spec"]["containers"][0]["imagee"] = "typo"
    code, body = raw("POST", f"/apis/apps/v1/namespaces/{ns}/deployments?fieldValidation=Strict", d)
    st = status_of(code, body, 400, "BadRequest")
    assert st["message"] == 'strict decoding error: unknown field "spec.template.spec.containers[0].imagee"'
    assert store_rv(raw, ns) == before


def test_unknown_field_warn_and_ignore(raw, ns, api_server):
    code, body = raw("POST", f"/api/v1/namespaces/{ns}/configmaps?fieldValidation=Ignore", cm("i", bogus=1))
    assert code == 201 and "bogus" not in body
    code, body = raw("POST", f"/api/v1/namespaces/{ns}/configmaps", cm("w", bogus=1))
    assert code == 201 and "bogus" not in body
    code, body = raw("POST", f"/api/v1/namespaces/{ns}/configmaps?fieldValidation=Sometimes", cm("x"))
    status_of(code, body, 400, "BadRequest")


def test_kubectl_create_validate_strict_reports_unknown_field(api_server, ns, tmp_path):
    f = tmp_path / "cm.yaml"
    f.write_text(json.dumps(cm("strict", bogus=1)))
    p = api_server.kubectl("-n", ns, "create", "--validate=strict", "-f", str(f))
    assert p.returncode == 1
    assert 'unknown field "bogus"' in p.stderr
    p = api_server.kubectl("-n", ns, "get", "cm", "strict")
    assert "NotFound" in p.stderr


# -- validation (422) -----------------------------------------------------------------------
def test_invalid_deployment_is_422_with_causes_and_not_stored(raw, ns):
    before = store_rv(raw, ns)
    d = json.loads(json.dumps(DEPLOY))
    d["spec"]["replicas"] = -1
    d["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    code, body = raw("POST", f"/apis/apps/v1/namespaces/{ns}/deployments", d)
    st = status_of(code, body, 422, "Invalid")
    assert st["details"]["name"] == "d" and st["details"]["kind"] == "Deployment"
    assert st["details"]["group"] == "apps"
    fields = {c["field"]: c for c in st["details"]["causes"]}
    assert fields["spec.replicas"] == {"reason": "FieldValueInvalid", "field": "spec.replicas",
                                       "message": "Invalid value: -1: must be greater than or equal to 0"}
    assert "spec.template.metadata.labels" in fields
    assert st["message"].startswith('Deployment.apps "d" is invalid: [')
    assert store_rv(raw, ns) == before


def test_invalid_update_leaves_object_unchanged(raw, ns):
    code, created = raw("POST", f"/apis/apps/v1/namespaces/{ns}/deployments", DEPLOY)
    assert code == 201
    path = f"/apis/apps/v1/namespaces/{ns}/deployments/d"
    code, body = raw("PATCH", path, {"spec": {"replicas": -3}}, "application/merge-patch+json")
    status_of(code, body, 422, "Invalid")
    code, body = raw("PATCH", path, {"spec": {"selector": {"matchLabels": {"app": "x"}}}},
                     "application/strategic-merge-patch+json")
    st = status_of(code, body, 422, "Invalid")
    assert any(c["field"] == "spec.selector" and "field is immutable" in c["message"] for c in st["details"]["causes"])
    code, now = raw("GET", path)
    assert now["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    assert now["spec"] == created["spec"]


def test_missing_name_is_422(raw, ns):
    code, body = raw("POST", f"/api/v1/namespaces/{ns}/configmaps", {"apiVersion": "v1", "kind": "ConfigMap",
                                                                      "metadata": {}})
    st = status_of(code, body, 422, "Invalid")
    assert st["details"]["causes"][0]["field"] == "metadata.name"


def test_kubectl_prints_invalid_message(api_server, ns, tmp_path):
    d = json.loads(json.dumps(DEPLOY))
    d["metadata"]["name"] = "x"
    d["spec"]["replicas"] = -1
    f = tmp_path / "d.json"
    f.write_text(json.dumps(d))
    for binary in (KUBECTL, KUBECTL_OLD):
        p = api_server.kubectl("-n", ns, "create", "-f", str(f), binary=binary)
        assert p.returncode == 1
        assert p.stderr.strip() == \
            'The Deployment "x" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0'


# -- 404 / 409 / 405 / mismatches -------------------------------------------------------------
def test_not_found_statuses(raw, ns):
    code, body = raw("GET", f"/apis/apps/v1/namespaces/{ns}/deployments/nope")
    st = status_of(code, body, 404, "NotFound")
    assert st["message"] == 'deployments.apps "nope" not found'
    assert st["details"] == {"name": "nope", "group": "apps", "kind": "deployments"}
    code, body = raw("GET", f"/api/v1/namespaces/{ns}/pods/nope")
    assert status_of(code, body, 404, "NotFound")["message"] == 'pods "nope" not found'
    code, body = raw("GET", "/apis/apps/v1/namespaces/default/widgets")
    assert status_of(code, body, 404, "NotFound")["message"] == "the server could not find the requested resource"
    code, body = raw("POST", "/api/v1/namespaces/no-such-ns/configmaps", cm("c"))
    assert status_of(code, body, 404, "NotFound")["message"] == 'namespaces "no-such-ns" not found'


def test_already_exists_and_conflict(raw, ns):
    before = None
    code, first = raw("POST", f"/api/v1/namespaces/{ns}/configmaps", cm("dup"))
    assert code == 201
    before = store_rv(raw, ns)
    code, body = raw("POST", f"/api/v1/namespaces/{ns}/configmaps", cm("dup"))
    st = status_of(code, body, 409, "AlreadyExists")
    assert st["message"] == 'configmaps "dup" already exists'
    assert st["details"] == {"name": "dup", "kind": "configmaps"}
    stale = dict(first, data={"k": "new"})
    stale["metadata"] = dict(first["metadata"], resourceVersion=str(int(first["metadata"]["resourceVersion"]) - 1))
    code, body = raw("PUT", f"/api/v1/namespaces/{ns}/configmaps/dup", stale)
    status_of(code, body, 409, "Conflict")
    assert store_rv(raw, ns) == before


def test_name_and_namespace_mismatch_are_400(raw, ns):
    code, body = raw("POST", f"/api/v1/namespaces/{ns}/configmaps", dict(cm("m"), metadata={"name": "m", "namespace": "other"}))
    st = status_of(code, body, 400, "BadRequest")
    assert st["message"] == "the namespace of the provided object does not match the namespace sent on the request"
    raw("POST", f"/api/v1/namespaces/{ns}/configmaps", cm("m"))
    code, body = raw("PUT", f"/api/v1/namespaces/{ns}/configmaps/m", cm("other"))
    status_of(code, body, 400, "BadRequest")


def test_wrong_kind_in_body_is_400(raw, ns):
    code, body = raw("POST", f"/api/v1/namespaces/{ns}/configmaps", dict(cm("k"), kind="Secret"))
    status_of(code, body, 400, "BadRequest")
    code, body = raw("POST", f"/apis/apps/v1/namespaces/{ns}/deployments", dict(DEPLOY, apiVersion="apps/v1beta1"))
    status_of(code, body, 400, "BadRequest")


def test_method_not_allowed_is_405(raw, ns):
    code, body = raw("PUT", f"/api/v1/namespaces/{ns}/configmaps", cm("c"))
    status_of(code, body, 405, "MethodNotAllowed")


def test_bad_query_parameters_are_400(raw, ns):
    for q in ("labelSelector=a%20in%20(", "fieldSelector=spec.nope%3Dx", "limit=abc", "includeObject=Everything"):
        code, body = raw("GET", f"/api/v1/namespaces/{ns}/configmaps?{q}", headers={})
        assert code == 400, (q, body)
        assert body["kind"] == "Status" and body["reason"] == "BadRequest", (q, body)


def test_invalid_list_options_are_422(raw, ns):
    """ValidateListOptions: a 422 Invalid for ListOptions.meta.k8s.io, as upstream."""
    code, body = raw("GET", f"/api/v1/namespaces/{ns}/configmaps?resourceVersionMatch=Exact")
    st = status_of(code, body, 422, "Invalid")
    assert st["message"] == ('ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: '
                             "resourceVersionMatch is forbidden unless resourceVersion is provided")
    code, body = raw("GET", f"/api/v1/namespaces/{ns}/configmaps?resourceVersion=1&resourceVersionMatch=Bogus")
    st = status_of(code, body, 422, "Invalid")
    assert st["message"] == ('ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Unsupported value: '
                             '"Bogus": supported values: "Exact", "NotOlderThan", ""')
    code, body = raw("GET", f"/api/v1/namespaces/{ns}/configmaps?watch=1&resourceVersionMatch=Bogus")
    status_of(code, body, 422, "Invalid")


def test_dry_run_never_persists(raw, ns):
    before = store_rv(raw, ns)
    code, body = raw("POST", f"/api/v1/namespaces/{ns}/configmaps?dryRun=Some", cm("dry"))
    status_of(code, body, 400, "BadRequest")
    code, body = raw("POST", f"/api/v1/namespaces/{ns}/configmaps?dryRun=All", cm("dry"))
    assert code == 201 and body["metadata"]["name"] == "dry"
    assert raw("GET", f"/api/v1/namespaces/{ns}/configmaps/dry")[0] == 404
    assert store_rv(raw, ns) == before
