"""OpenAPI v2/v3: document contents, the gnostic wire form, HTTP caching, and real kubectl.

kubectl 1.27/1.28 read the v2 document as gnostic protobuf; 1.29+ read the v3 root and a
hashed per-group-version document.  Both are driven here against a real server.
"""
from __future__ import annotations

import http.client
import ssl

import orjson
import pytest
from conftest import KUBECTL, KUBECTL_OLD, create_namespace

from kubelite.apiserver import openapi
from kubelite.apiserver.openapi.fielddocs import FIELD_DOCS

BINARIES = [pytest.param(KUBECTL, id="kubectl-1.33"), pytest.param(KUBECTL_OLD, id="kubectl-1.28")]

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: web
        image: nginx:1.25
        env:
        - name: MODE
          value: {mode}
{extra}"""


def manifest(name: str, replicas: int = 2, mode: str = "one", extra: str = "") -> str:
    return DEPLOYMENT.format(name=name, replicas=replicas, mode=mode, extra=extra)


# --------------------------------------------------------------------------- documents

@pytest.fixture(scope="module")
def v2() -> dict:
    return orjson.loads(openapi.documents().v2_json.body)


def _refs(node, found=None):
    found = [] if found is None else found
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            found.append(node["$ref"])
        for v in node.values():
            _refs(v, found)
    elif isinstance(node, list):
        for v in node:
            _refs(v, found)
    return found


def test_v2_references_all_resolve(v2):
    for ref in _refs(v2):
        assert ref.startswith("#/definitions/") and ref.split("/")[-1] in v2["definitions"], ref


def test_v2_kinds_carry_group_version_kind(v2):
    d = v2["definitions"]["io.k8s.api.apps.v1.Deployment"]
    assert d["x-kubernetes-group-version-kind"] == [{"group": "apps", "kind": "Deployment", "version": "v1"}]
    assert {"apiVersion", "kind", "metadata", "spec", "status"} <= set(d["properties"])
    pod = v2["definitions"]["io.k8s.api.core.v1.Pod"]
    assert pod["x-kubernetes-group-version-kind"] == [{"group": "", "kind": "Pod", "version": "v1"}]


def test_v2_strategic_merge_metadata(v2):
    defs = v2["definitions"]
    spec = defs["io.k8s.api.apps.v1.DeploymentSpec"]
    assert spec["properties"]["strategy"]["x-kubernetes-patch-strategy"] == "retainKeys"
    assert spec["required"] == ["selector", "template"]
    containers = defs["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["x-kubernetes-patch-strategy"] == "merge"
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert containers["x-kubernetes-list-type"] == "map"
    assert containers["x-kubernetes-list-map-keys"] == ["name"]
    volumes = defs["io.k8s.api.core.v1.PodSpec"]["properties"]["volumes"]
    assert volumes["x-kubernetes-patch-strategy"] == "merge,retainKeys"
    ports = defs["io.k8s.api.core.v1.ServiceSpec"]["properties"]["ports"]
    assert ports["x-kubernetes-patch-merge-key"] == "port"
    assert ports["x-kubernetes-list-map-keys"] == ["port", "protocol"]
    assert defs["io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"]["x-kubernetes-map-type"] == "atomic"
    assert defs["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]["properties"]["finalizers"] == {
        "type": "array", "items": {"type": "string"}, "description": FIELD_DOCS["meta.v1.ObjectMeta"]["finalizers"],
        "x-kubernetes-patch-strategy": "merge", "x-kubernetes-list-type": "set"}


def test_v2_every_write_operation_takes_field_validation(v2):
    patches = 0
    for path, item in v2["paths"].items():
        for method in ("post", "put", "patch"):
            op = item.get(method)
            if op is None:
                continue
            names = {p["name"] for p in op["parameters"] if p["in"] == "query"}
            assert {"fieldValidation", "fieldManager", "dryRun"} <= names, (path, method)
            assert op["x-kubernetes-group-version-kind"]["kind"], (path, method)
            if method == "patch":
                patches += 1
                assert "application/strategic-merge-patch+json" in op["consumes"]
                assert "force" in names
    assert patches >= 20


def test_v2_paths_follow_the_catalogue(v2):
    item = v2["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]
    assert {"get", "put", "patch", "delete"} <= set(item)
    assert item["patch"]["operationId"] == "patchAppsV1NamespacedDeployment"
    assert item["patch"]["x-kubernetes-action"] == "patch"
    scale = v2["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]["patch"]
    assert scale["x-kubernetes-group-version-kind"] == {"group": "autoscaling", "kind": "Scale", "version": "v1"}
    assert "/api/v1/nodes/{name}" in v2["paths"]            # cluster-scoped
    assert "/apis/apps/v1/deployments" in v2["paths"]       # list across namespaces
    assert "post" in v2["paths"]["/api/v1/namespaces/{namespace}/bindings"]


def test_v3_documents_are_self_contained():
    docs = openapi.documents()
    assert set(docs.v3) == set(openapi.served_group_versions())
    for gv, blob in docs.v3.items():
        doc = orjson.loads(blob.body)
        schemas = doc["components"]["schemas"]
        for ref in _refs(doc):
            assert ref.startswith("#/components/schemas/") and ref.split("/")[-1] in schemas, (gv, ref)
        assert all(p.startswith("/" + gv + "/") for p in doc["paths"]), gv
    apps = orjson.loads(docs.v3["apis/apps/v1"].body)
    strategy = apps["components"]["schemas"]["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["strategy"]
    assert strategy["allOf"] == [{"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentStrategy"}]
    assert strategy["x-kubernetes-patch-strategy"] == "retainKeys"
    patch = apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert "application/strategic-merge-patch+json" in patch["requestBody"]["content"]
    assert any(p["name"] == "fieldValidation" and p["in"] == "query" for p in patch["parameters"])


def test_v3_root_points_at_hashed_documents():
    docs = openapi.documents()
    root = orjson.loads(docs.v3_root.body)
    assert root["paths"]["apis/apps/v1"] == {
        "serverRelativeURL": f"/openapi/v3/apis/apps/v1?hash={docs.v3['apis/apps/v1'].etag}"}
    assert set(root["paths"]) == set(docs.v3)


# --------------------------------------------------------------------------- gnostic wire form
# A generic protobuf reader, independent of the encoder, to check field numbers.

def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, pos


def fields(buf: bytes) -> list[tuple[int, object]]:
    out, pos = [], 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        wire = key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 2:
            size, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + size], pos + size
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        else:
            raise AssertionError(f"unexpected wire type {wire}")
        out.append((key >> 3, value))
    return out


def one(buf: bytes, number: int):
    found = [v for n, v in fields(buf) if n == number]
    assert len(found) == 1, (number, len(found))
    return found[0]


def named(buf: bytes, number: int) -> dict[str, bytes]:
    """Entries {name(1): value(2)} of a repeated Named* field."""
    return {one(e, 1).decode(): one(e, 2) for n, e in fields(buf) if n == number}


def test_gnostic_document_field_numbers(v2):
    doc = openapi.documents().v2_proto.body
    assert one(doc, 1) == b"2.0"                                     # swagger
    definitions = named(one(doc, 9), 1)                                # Definitions.additional_properties
    assert list(definitions) == list(v2["definitions"])
    deployment = definitions["io.k8s.api.apps.v1.Deployment"]
    assert one(one(deployment, 22), 1) == b"object"                    # type.value
    props = named(one(deployment, 25), 1)                              # properties
    assert list(props) == list(v2["definitions"]["io.k8s.api.apps.v1.Deployment"]["properties"])
    assert one(props["spec"], 1) == b"#/definitions/io.k8s.api.apps.v1.DeploymentSpec"  # _ref
    ext = named(deployment, 31)                                        # vendor_extension
    gvk = orjson.loads(one(ext["x-kubernetes-group-version-kind"], 2))  # Any.yaml (JSON is YAML)
    assert gvk == [{"group": "apps", "kind": "Deployment", "version": "v1"}]
    containers = named(one(definitions["io.k8s.api.core.v1.PodSpec"], 25), 1)["containers"]
    assert one(one(containers, 23), 1).startswith(b"\n")               # items.schema[0]._ref


def test_gnostic_patch_operation_has_field_validation_query_parameter():
    doc = openapi.documents().v2_proto.body
    paths = named(one(doc, 8), 2)                                       # Paths.path
    patch = one(paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"], 8)  # PathItem.patch
    query_names = []
    for n, item in fields(patch):
        if n == 8:                                                      # Operation.parameters
            param = one(item, 1)                                        # ParametersItem.parameter
            for kind, value in fields(param):
                if kind == 2:                                           # non_body_parameter
                    query = dict(fields(value)).get(3)                  # query_parameter_sub_schema
                    if query is not None:
                        query_names.append(one(query, 4).decode())      # name
    assert "fieldValidation" in query_names
    consumes = [v.decode() for n, v in fields(patch) if n == 7]
    assert "application/strategic-merge-patch+json" in consumes
    gvk = orjson.loads(one(named(patch, 13)["x-kubernetes-group-version-kind"], 2))
    assert gvk == {"group": "apps", "kind": "Deployment", "version": "v1"}


# --------------------------------------------------------------------------- HTTP

class Raw:
    """Plain HTTPS requests with the admin client certificate (no redirect following)."""

    def __init__(self, server):
        cfg = server.client_config()
        self.ctx = ssl.create_default_context(cafile=cfg.ca_file)
        self.ctx.check_hostname = False
        self.ctx.load_cert_chain(cfg.cert_file, cfg.key_file)
        self.port = server.port

    def get(self, path: str, **headers: str) -> http.client.HTTPResponse:
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=30)
        conn.request("GET", path, headers={k.replace("_", "-"): v for k, v in headers.items()})
        resp = conn.getresponse()
        resp.body = resp.read()
        conn.close()
        return resp


@pytest.fixture(scope="module")
def raw(api_server) -> Raw:
    return Raw(api_server)


def test_v2_protobuf_is_served_with_the_dotted_content_type(raw):
    r = raw.get("/openapi/v2", Accept=openapi.V2_PROTO_REQUESTED)
    assert r.status == 200
    assert r.getheader("Content-Type") == "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
    assert r.body == openapi.documents().v2_proto.body
    j = raw.get("/openapi/v2", Accept="application/json")
    assert j.getheader("Content-Type") == "application/json"
    assert orjson.loads(j.body)["swagger"] == "2.0"
    assert raw.get("/openapi/v2").getheader("Content-Type") == "application/json"
    assert raw.get("/openapi/v2", Accept="text/html").status == 406


def test_v2_etag_and_if_none_match(raw):
    r = raw.get("/openapi/v2", Accept=openapi.V2_PROTO_REQUESTED)
    etag = r.getheader("ETag")
    assert etag.startswith('"') and len(etag) == 130
    again = raw.get("/openapi/v2", Accept=openapi.V2_PROTO_REQUESTED, If_None_Match=etag)
    assert again.status == 304 and again.body == b""


def test_v3_root_and_hashed_group_version(raw):
    root = raw.get("/openapi/v3")
    assert root.status == 200 and root.getheader("Content-Type") == "application/json"
    url = orjson.loads(root.body)["paths"]["apis/apps/v1"]["serverRelativeURL"]
    doc = raw.get(url, Accept="application/json")
    assert doc.status == 200
    assert doc.getheader("Cache-Control") == "public, immutable"
    assert doc.getheader("ETag") == '"' + url.split("hash=")[1] + '"'
    assert "io.k8s.api.apps.v1.Deployment" in orjson.loads(doc.body)["components"]["schemas"]
    unhashed = raw.get("/openapi/v3/apis/apps/v1")
    assert unhashed.status == 200 and unhashed.getheader("Cache-Control") is None
    assert raw.get(url, If_None_Match=doc.getheader("ETag")).status == 304


def test_v3_stale_hash_redirects_to_current(raw):
    r = raw.get("/openapi/v3/api/v1?hash=0123")
    assert r.status == 301
    assert r.getheader("Location") == f"/openapi/v3/api/v1?hash={openapi.documents().v3['api/v1'].etag}"


def test_unknown_documents_are_not_found(raw):
    for path in ("/openapi/v3/apis/nothing.kubelite.dev/v1", "/swagger-2.0.0.pb-v1", "/openapi/v4"):
        r = raw.get(path)
        assert r.status == 404, path
        assert orjson.loads(r.body)["kind"] == "Status"


# --------------------------------------------------------------------------- kubectl

@pytest.fixture
def ns(request, api_server):
    """A fresh namespace per test; parametrized names ("[kubectl-1.28]") made DNS-safe."""
    return create_namespace(api_server, request, "oa")


@pytest.mark.parametrize("binary", BINARIES)
def test_explain_deployment_spec_strategy(api_server, binary):
    p = api_server.kubectl("explain", "deployment.spec.strategy", binary=binary, check=True)
    out = p.stdout
    assert "KIND:       Deployment" in out and "VERSION:    v1" in out
    assert "FIELD: strategy <DeploymentStrategy>" in out
    assert "DESCRIPTION:\n    How to replace existing pods with new ones during a rollout." in out
    fields_part = out.split("FIELDS:\n", 1)[1]
    assert "  rollingUpdate\t<RollingUpdateDeployment>" in fields_part
    assert "  type\t<string>" in fields_part


def test_explain_from_v2_protobuf_with_kubectl_1_28(api_server):
    p = api_server.kubectl("explain", "--output=plaintext-openapiv2", "deployment.spec.strategy.rollingUpdate",
                           binary=KUBECTL_OLD, check=True)
    assert "KIND:     Deployment" in p.stdout and "VERSION:  apps/v1" in p.stdout
    assert "RESOURCE: rollingUpdate <Object>" in p.stdout
    assert "maxSurge\t<string>" in p.stdout and "maxUnavailable\t<string>" in p.stdout


@pytest.mark.parametrize("binary", BINARIES)
def test_explain_unknown_field(api_server, binary):
    p = api_server.kubectl("explain", "deployment.spec.nonsense", binary=binary)
    assert p.returncode != 0
    assert 'field "nonsense" does not exist' in p.stderr


@pytest.mark.parametrize("binary", BINARIES)
def test_client_side_apply_create_diff_configure(api_server, ns, tmp_path, binary):
    f = tmp_path / "d.yaml"
    f.write_text(manifest("web"))
    p = api_server.kubectl("apply", "-n", ns, "-f", str(f), "-v=6", binary=binary, check=True)
    assert "deployment.apps/web created" in p.stdout
    assert "/openapi/" in p.stderr  # OpenAPI was read
    assert "warning" not in p.stderr.lower()

    f.write_text(manifest("web", replicas=3, mode="two"))
    d = api_server.kubectl("diff", "-n", ns, "-f", str(f), binary=binary)
    assert d.returncode == 1, d.stderr  # 1: differences found
    assert "-  replicas: 2\n+  replicas: 3" in d.stdout
    assert "-          value: one\n+          value: two" in d.stdout
    assert api_server.kjson("get", "deploy", "web", "-n", ns)["spec"]["replicas"] == 2  # dry run

    p = api_server.kubectl("apply", "-n", ns, "-f", str(f), "-v=8", binary=binary, check=True)
    assert "deployment.apps/web configured" in p.stdout
    assert "warning" not in p.stderr.lower()
    # merge keys came through: the patch names list elements instead of replacing lists
    assert '"$setElementOrder/env":[{"name":"MODE"}]' in p.stderr.replace("\\", "")
    live = api_server.kjson("get", "deploy", "web", "-n", ns)
    assert live["spec"]["replicas"] == 3
    assert live["spec"]["template"]["spec"]["containers"][0]["env"] == [{"name": "MODE", "value": "two"}]

    again = api_server.kubectl("apply", "-n", ns, "-f", str(f), binary=binary, check=True)
    assert "deployment.apps/web unchanged" in again.stdout


def test_kubectl_1_28_reads_v2_protobuf(api_server, ns, tmp_path):
    f = tmp_path / "d.yaml"
    f.write_text(manifest("old"))
    p = api_server.kubectl("apply", "-n", ns, "-f", str(f), "-v=8", binary=KUBECTL_OLD, check=True)
    assert "Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf" in p.stderr
    assert "Content-Type: application/com.github.proto-openapi.spec.v2.v1.0+protobuf" in p.stderr


@pytest.mark.parametrize("binary", BINARIES)
def test_server_side_apply(api_server, ns, tmp_path, binary):
    f = tmp_path / "d.yaml"
    f.write_text(manifest("ssa"))
    p = api_server.kubectl("apply", "--server-side", "-n", ns, "-f", str(f), binary=binary, check=True)
    assert "deployment.apps/ssa serverside-applied" in p.stdout
    f.write_text(manifest("ssa", replicas=4))
    api_server.kubectl("apply", "--server-side", "-n", ns, "-f", str(f), binary=binary, check=True)
    assert api_server.kjson("get", "deploy", "ssa", "-n", ns)["spec"]["replicas"] == 4


@pytest.mark.parametrize("binary", BINARIES)
def test_create_with_unknown_field_under_strict_validation(api_server, ns, tmp_path, binary):
    f = tmp_path / "bad.yaml"
    f.write_text(manifest("bad").replace("  replicas: 2\n", "  replicas: 2\n  bogus: 1\n"))
    p = api_server.kubectl("create", "--validate=strict", "-n", ns, "-f", str(f), binary=binary)
    assert p.returncode == 1
    assert f'error when creating "{f}"' in p.stderr
    assert 'unknown field "spec.bogus"' in p.stderr
    assert api_server.kubectl("get", "deploy", "bad", "-n", ns).returncode == 1
    # --validate=false sends fieldValidation=Ignore: the field is dropped, the object created
    ok = api_server.kubectl("create", "--validate=false", "-n", ns, "-f", str(f), binary=binary, check=True)
    assert "deployment.apps/bad created" in ok.stdout
