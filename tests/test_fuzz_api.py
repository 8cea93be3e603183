"""Fuzzing the API server: no request, however malformed, gets a 5xx or changes what it was refused.

One API server for the whole module.  Hypothesis draws requests from the OpenAPI v3
documents the server itself serves (every operation, its query parameters, bodies built
from the schemas with one value then made wrong) and from raw bytes (JSON, YAML and
protobuf bodies, every verb and patch type, subresources).  For every request:

* the answer is below 500 and, when it is an error, a metav1.Status;
* a refused write leaves its target unchanged: each request aims at a sentinel object
  whose resourceVersion is read again after a refusal;
* the server stays ready (/readyz) throughout.

Examples are derandomized (a fixed seed per test, no example database), so CI runs the
same requests every time; ``max_examples`` keeps the module near a minute on a busy
2-core machine.
"""
from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import orjson
import pytest
import urllib3
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubelite.api import protobuf

pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")

FUZZ = settings(derandomize=True, database=None, deadline=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much])
NS = "fuzz"
PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json",
               "application/strategic-merge-patch+json", "application/apply-patch+yaml")
BODY_TYPES = ("application/json", "application/yaml", "application/vnd.kubernetes.protobuf")
Obj = dict[str, Any]


# --------------------------------------------------------------------------- the server


class Api:
    """Keep-alive HTTPS to the server with the admin certificate; counts requests."""

    def __init__(self, srv: Any) -> None:
        cfg = srv.client_config()
        self.pool = urllib3.HTTPSConnectionPool("127.0.0.1", srv.port, maxsize=1, ca_certs=cfg.ca_file,
                                                cert_file=cfg.cert_file, key_file=cfg.key_file,
                                                assert_hostname=False, retries=False,
                                                timeout=urllib3.Timeout(connect=10, read=60))
        self.sent = 0

    def __call__(self, method: str, path: str, body: bytes | None = None, ctype: str = "application/json",
                 headers: dict[str, str] | None = None) -> tuple[int, Any]:
        hdrs = {"Accept": "application/json", **(headers or {})}
        if body is not None:
            hdrs["Content-Type"] = ctype
        r = self.pool.request(method, path, body=body, headers=hdrs, preload_content=True, redirect=False)
        self.sent += 1
        try:
            return r.status, json.loads(r.data)
        except ValueError:
            return r.status, r.data

    def json(self, method: str, path: str, obj: Any = None, ctype: str = "application/json") -> tuple[int, Any]:
        return self(method, path, None if obj is None else orjson.dumps(obj), ctype)


def _deployment(name: str) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx", "env": [{"name": "A"}]}]}}}}


# One object of each kind the fuzzer aims its writes at, by its resource path.
SENTINELS: dict[str, Obj] = {
    f"/api/v1/namespaces/{NS}/configmaps/sentinel": {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "sentinel", "labels": {"a": "b"}},
        "data": {"k": "v"}},
    f"/api/v1/namespaces/{NS}/secrets/sentinel": {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sentinel"}, "data": {"k": "dg=="}},
    f"/apis/apps/v1/namespaces/{NS}/deployments/sentinel": _deployment("sentinel"),
    f"/apis/apps/v1/namespaces/{NS}/replicasets/sentinel": dict(_deployment("sentinel"), kind="ReplicaSet"),
    f"/api/v1/namespaces/{NS}/pods/sentinel": {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "sentinel"},
        "spec": {"containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 80}]}],
                 "tolerations": [{"key": "k", "operator": "Exists"}]}},
    f"/api/v1/namespaces/{NS}/services/sentinel": {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "sentinel"},
        "spec": {"selector": {"app": "x"}, "ports": [{"port": 80, "targetPort": 8080}]}},
    f"/api/v1/namespaces/{NS}/serviceaccounts/sentinel": {
        "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sentinel"}},
    f"/api/v1/namespaces/{NS}/endpoints/sentinel": {
        "apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "sentinel"},
        "subsets": []},
    f"/api/v1/namespaces/{NS}/podtemplates/sentinel": {
        "apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "sentinel"},
        "template": {"spec": {"containers": [{"name": "c", "image": "nginx"}]}}},
    f"/api/v1/namespaces/{NS}/replicationcontrollers/sentinel": {
        "apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "sentinel"},
        "spec": {"replicas": 1, "selector": {"app": "rc"},
                 "template": {"metadata": {"labels": {"app": "rc"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}},
    f"/api/v1/namespaces/{NS}/events/sentinel": {
        "apiVersion": "v1", "kind": "Event", "metadata": {"name": "sentinel"},
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": NS}, "reason": "R", "message": "m"},
    f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases/sentinel": {
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "sentinel"},
        "spec": {"holderIdentity": "h", "leaseDurationSeconds": 10}},
    f"/apis/discovery.k8s.io/v1/namespaces/{NS}/endpointslices/sentinel": {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "sentinel"},
        "addressType": "IPv4", "endpoints": [], "ports": [{"port": 80}]},
    "/api/v1/nodes/sentinel": {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "sentinel"},
                               "spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]}},
}
SENTINELS[f"/apis/apps/v1/namespaces/{NS}/replicasets/sentinel"]["spec"].pop("replicas")


@dataclass(repr=False)
class Fuzz:
    """The module's server, what its OpenAPI documents say, and the sentinels' versions."""

    api: Api
    schemas: dict[str, Obj]
    operations: list[tuple[str, str, str]]       # (method, path template, body schema name or "")
    queries: dict[str, list[str]]                # path template -> query parameter names
    versions: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"Fuzz({len(self.operations)} operations, {len(self.versions)} sentinels)"

    def path(self, template: str) -> str:
        """A template's concrete path: the fuzz namespace, the sentinel's name."""
        return template.replace("{namespace}", NS).replace("{name}", "sentinel").replace("{path}", "x")

    def ensure(self, path: str) -> None:
        """(Re)create the sentinel at ``path`` and remember its resourceVersion."""
        code, obj = self.api.json("GET", path)
        if code == 404:
            if not path.startswith("/api/v1/nodes/"):
                code, obj = self.api.json("POST", path.rsplit("/", 1)[0], SENTINELS[path])
            else:
                code, obj = self.api.json("POST", "/api/v1/nodes", SENTINELS[path])
        assert code in (200, 201), (path, obj)
        self.versions[path] = obj["metadata"]["resourceVersion"]

    def target(self, path: str) -> str | None:
        """The sentinel a concrete path writes to (its main resource), if any."""
        base = re.sub(r"/(status|scale|binding|eviction|finalize)$", "", path.split("?")[0])
        return base if base in SENTINELS else None

    def check(self, method: str, path: str, code: int, body: Any, what: Any) -> None:
        """The invariants of one answer."""
        assert code < 500, (method, path, code, body, what)
        if code >= 400:
            assert isinstance(body, dict) and body.get("kind") == "Status", (method, path, code, body, what)
            assert body.get("code") == code and body.get("status") == "Failure", (method, path, body)
        sentinel = self.target(path)
        if method == "GET":
            return
        if sentinel is None:
            if code < 400:  # a collection write (deletecollection) may have removed sentinels
                for p in SENTINELS:
                    self.ensure(p)
            return
        if code >= 400:
            now, obj = self.api.json("GET", sentinel)
            assert now == 200, (sentinel, obj)
            assert obj["metadata"]["resourceVersion"] == self.versions[sentinel], \
                ("a refused request changed its target", method, path, code, body, what)
        else:
            self.ensure(sentinel)
        if self.api.sent % 50 == 0:
            assert_ready(self.api)


def assert_ready(api: Api) -> None:
    """/readyz answers ok."""
    code, body = api("GET", "/readyz")
    assert code == 200, body


def _load_openapi(api: Api) -> tuple[dict[str, Obj], list[tuple[str, str, str]], dict[str, list[str]]]:
    code, index = api.json("GET", "/openapi/v3")
    assert code == 200
    schemas: dict[str, Obj] = {}
    ops: list[tuple[str, str, str]] = []
    queries: dict[str, list[str]] = {}
    for entry in index["paths"].values():
        code, doc = api.json("GET", entry["serverRelativeURL"])
        assert code == 200
        schemas.update(doc.get("components", {}).get("schemas", {}))
        for template, item in doc.get("paths", {}).items():
            if "{path}" in template or "/watch/" in template or template.endswith(("/proxy", "/log", "/exec",
                                                                                   "/attach", "/portforward")):
                continue
            names = {p["name"] for p in item.get("parameters", []) if p.get("in") == "query"}
            for method in ("get", "post", "put", "patch", "delete"):
                op = item.get(method)
                if op is None:
                    continue
                names |= {p["name"] for p in op.get("parameters", []) if p.get("in") == "query"}
                ref = ""
                content = (op.get("requestBody") or {}).get("content") or {}
                for media in content.values():
                    ref = (media.get("schema") or {}).get("$ref", "").rsplit("/", 1)[-1]
                    break
                ops.append((method.upper(), template, ref))
            queries[template] = sorted(names - {"watch"})
    return schemas, ops, queries


@pytest.fixture(scope="module")
def fuzz(api_server: Any) -> Iterator[Fuzz]:
    api = Api(api_server)
    code, body = api.json("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                         "metadata": {"name": NS}})
    assert code == 201, body
    schemas, ops, queries = _load_openapi(api)
    # Deleting the fuzz namespace would leave it terminating (no controllers run here).
    ops = [o for o in ops if not (o[1] == "/api/v1/namespaces/{name}" and o[0] == "DELETE")]
    f = Fuzz(api, schemas, ops, queries)
    for path in SENTINELS:
        f.ensure(path)
    yield f
    assert_ready(api)
    log = api_server.log_tail(100000)
    assert "Traceback" not in log, log[-5000:]


# --------------------------------------------------------------------------- strategies

NAMES = st.sampled_from(["sentinel", "c", "a", "x-1", "", "A", "a.b", "nginx", "default", "kubernetes",
                         "foregroundDeletion", "example.com/f", "-", "a" * 70])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=False, allow_infinity=False),
                    st.text(max_size=8), NAMES, st.sampled_from(["1", "100m", "1Gi", "2020-01-01T00:00:00Z", "25%",
                                                                 "TCP", "Always", "dg==", "!!", "1e30", "3"]))
JSON = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                     st.dictionaries(st.text(max_size=6) | NAMES, inner, max_size=3)),
                    max_leaves=8)


def _ref(s: Obj) -> str:
    if "$ref" in s:
        return str(s["$ref"]).rsplit("/", 1)[-1]
    for key in ("allOf", "anyOf", "oneOf"):
        for sub in s.get(key) or []:
            if "$ref" in sub:
                return str(sub["$ref"]).rsplit("/", 1)[-1]
    return ""


class Builder:
    """Hypothesis strategies for OpenAPI schemas, memoised, depth-bounded."""

    def __init__(self, schemas: dict[str, Obj]) -> None:
        self.schemas = schemas
        self.memo: dict[tuple[str, int], st.SearchStrategy[Any]] = {}

    def named(self, name: str, depth: int) -> st.SearchStrategy[Any]:
        key = (name, depth)
        if key not in self.memo:
            self.memo[key] = st.deferred(lambda: self.of(self.schemas.get(name, {}), depth))
        return self.memo[key]

    def of(self, s: Obj, depth: int) -> st.SearchStrategy[Any]:
        ref = _ref(s)
        if ref:
            return self.named(ref, depth)
        if s.get("x-kubernetes-int-or-string"):
            return st.one_of(st.integers(-5, 100), st.sampled_from(["25%", "http", "1", "x%"]))
        if "oneOf" in s or "anyOf" in s:  # Quantity
            return st.one_of(st.sampled_from(["1", "100m", "1Gi", "0.5", "2e3", "abc", ""]), st.integers(0, 10))
        t = s.get("type")
        if t == "string":
            if s.get("format") == "byte":
                return st.sampled_from(["", "dg==", "aGVsbG8=", "not base64!"])
            if s.get("format") == "date-time":
                return st.sampled_from(["2020-01-01T00:00:00Z", "2020-01-01T00:00:00.000000Z", "yesterday"])
            return NAMES | st.text(max_size=6)
        if t == "integer":
            return st.one_of(st.integers(-2, 100), st.sampled_from([2**31, 2**40, 2**63, -2**63 - 1]))
        if t == "number":
            return st.floats(-10, 10, allow_nan=False)
        if t == "boolean":
            return st.booleans()
        if t == "array":
            if depth > 5:
                return st.just([])
            return st.lists(self.of(s.get("items") or {}, depth + 1), max_size=2)
        if t == "object" or "properties" in s:
            props = s.get("properties") or {}
            if not props:
                extra = s.get("additionalProperties")
                value = self.of(extra, depth + 1) if isinstance(extra, dict) else JSON
                return st.dictionaries(NAMES, value, max_size=2)
            if depth > 5:
                return st.just({})
            required = set(s.get("required") or []) - {"apiVersion", "kind"}
            return st.fixed_dictionaries({k: self.of(props[k], depth + 1) for k in props if k in required},
                                         optional={k: self.of(v, depth + 1) for k, v in props.items()
                                                   if k not in required and k not in ("apiVersion", "kind", "status")})
        return JSON


def _walk_to(data: st.DataObject, obj: Any) -> tuple[Any, Any]:
    """A random place in obj: (container, key) with the container a dict or list."""
    container, key = None, None
    cur = obj
    while isinstance(cur, (dict, list)) and cur and data.draw(st.integers(0, 3)) > 0:
        keys = list(cur) if isinstance(cur, dict) else list(range(len(cur)))
        k = data.draw(st.sampled_from(keys))
        container, key, cur = cur, k, cur[k]
    return container, key


def mutated(data: st.DataObject, obj: Any) -> Any:
    """obj with (usually) one value replaced by a value of any JSON type."""
    obj = copy.deepcopy(obj)
    if data.draw(st.integers(0, 4)) == 0:
        return obj
    container, key = _walk_to(data, obj)
    if container is None:
        return obj
    if data.draw(st.booleans()) and isinstance(container, dict):
        del container[key]
    else:
        container[key] = data.draw(JSON)
    return obj


def dumps(obj: Any) -> bytes:
    """JSON bytes (stdlib: integers beyond 64 bits are part of the fuzz)."""
    return json.dumps(obj).encode()


def encode(data: st.DataObject, obj: Any) -> tuple[bytes, str]:
    """A body in one of the three encodings (protobuf where our codec can write the object)."""
    kind = data.draw(st.sampled_from(BODY_TYPES))
    if kind == "application/yaml":
        return yaml.safe_dump(obj).encode(), kind
    if kind.endswith("protobuf"):
        try:
            return protobuf.encode(obj), kind
        except (protobuf.Unsupported, ValueError, TypeError):
            pass
    return dumps(obj), "application/json"


def _kind_of(schema_name: str) -> tuple[str, str]:
    """(apiVersion, kind) from a schema name like io.k8s.api.apps.v1.Deployment."""
    parts = schema_name.split(".")
    kind, version = parts[-1], parts[-2]
    group = parts[-3] if parts[-3] not in ("core", "v1") else ""
    group = {"coordination": "coordination.k8s.io", "discovery": "discovery.k8s.io", "events": "events.k8s.io",
             "policy": "policy", "autoscaling": "autoscaling", "apps": "apps"}.get(group, group)
    if "apimachinery" in schema_name:
        return "meta.k8s.io/v1", kind
    return (f"{group}/{version}" if group else version), kind


# --------------------------------------------------------------------------- tests


def _send(fuzz: Fuzz, method: str, path: str, body: bytes | None, ctype: str, what: Any) -> None:
    code, answer = fuzz.api(method, path, body, ctype)
    fuzz.check(method, path, code, answer, what)


@settings(FUZZ, max_examples=220)
@given(data=st.data())
def test_fuzz_schema_bodies_every_operation(fuzz: Fuzz, data: st.DataObject) -> None:
    """Bodies built from the served OpenAPI schemas, one value made wrong, every operation."""
    builder = Builder(fuzz.schemas)
    method, template, ref = data.draw(st.sampled_from([o for o in fuzz.operations if o[0] != "GET"]))
    path = fuzz.path(template)
    obj: Any = None
    if ref:
        obj = data.draw(builder.named(ref, 0))
        if isinstance(obj, dict):
            api_version, kind = _kind_of(ref)
            obj.update(apiVersion=api_version, kind=kind)
            if kind not in ("DeleteOptions", "Patch") and data.draw(st.integers(0, 3)) > 0:
                obj["metadata"] = dict(obj.get("metadata") or {}, name="sentinel" if method == "PUT" else
                                       data.draw(NAMES))
        obj = mutated(data, obj)
    if method == "PATCH":
        ctype = data.draw(st.sampled_from(PATCH_TYPES))
        if ctype.startswith("application/json-patch"):
            obj = data.draw(st.lists(st.fixed_dictionaries(
                {"op": st.sampled_from(["add", "remove", "replace", "move", "copy", "test", "x"]),
                 "path": st.sampled_from(["/metadata", "/metadata/labels", "/spec/replicas", "/data/k", "/spec",
                                          "/metadata/name", "/kind", "", "/x/y", "/spec/containers/0"])},
                optional={"value": JSON, "from": st.sampled_from(["/metadata", "/data", "/spec/template"])}),
                max_size=3))
        body = yaml.safe_dump(obj).encode() if ctype.endswith("yaml") and data.draw(st.booleans()) else \
            dumps(obj)
        query = "?fieldManager=fuzz" if ctype.endswith("yaml") and data.draw(st.integers(0, 3)) else ""
        _send(fuzz, method, path + query, body, ctype, obj)
        return
    if obj is None:
        _send(fuzz, method, path, None, "application/json", None)
        return
    body, ctype = encode(data, obj)
    query = data.draw(st.sampled_from(["", "?fieldValidation=Strict", "?fieldValidation=Ignore", "?dryRun=All",
                                       "?fieldValidation=Warn&fieldManager=fuzz"]))
    _send(fuzz, method, path + query, body, ctype, obj)


@settings(FUZZ, max_examples=160)
@given(data=st.data())
def test_fuzz_patches_of_every_type_on_sentinels(fuzz: Fuzz, data: st.DataObject) -> None:
    """Merge, strategic (with directives), JSON and apply patches of live objects."""
    path = data.draw(st.sampled_from(sorted(SENTINELS)))
    sub = data.draw(st.sampled_from(["", "", "/status", "/scale"])) if "deployments" in path or \
        "replicasets" in path else data.draw(st.sampled_from(["", "", "/status"]))
    ctype = data.draw(st.sampled_from(PATCH_TYPES))
    code, live = fuzz.api.json("GET", path)
    assert code == 200
    directives = st.fixed_dictionaries({}, optional={
        "$patch": st.sampled_from(["replace", "delete", "merge", "bogus", 1]),
        "$setElementOrder/containers": st.one_of(st.just("x"), st.lists(st.fixed_dictionaries(
            {}, optional={"name": NAMES, "x": NAMES}), max_size=2)),
        "$retainKeys": st.one_of(st.just(1), st.lists(NAMES, max_size=2)),
        "$deleteFromPrimitiveList/finalizers": st.one_of(st.just({}), st.lists(NAMES, max_size=2)),
        "containers": st.lists(st.fixed_dictionaries({}, optional={"name": NAMES, "image": NAMES, "$patch": NAMES}),
                               max_size=2)})
    if ctype.startswith("application/json-patch"):
        pointers = ["/metadata", "/metadata/name", "/metadata/labels/a", "/spec/replicas", "/data/k", "/spec",
                    "/spec/template/spec/containers/0", "/spec/containers/-", "/kind", "", "/status", "/spec/x/y"]
        obj: Any = data.draw(st.lists(st.fixed_dictionaries(
            {"op": st.sampled_from(["add", "remove", "replace", "move", "copy", "test"]),
             "path": st.sampled_from(pointers)},
            optional={"value": JSON, "from": st.sampled_from(pointers)}), min_size=1, max_size=3))
    elif ctype.endswith("yaml"):
        obj = mutated(data, {k: v for k, v in live.items() if k != "status"} | {
            "metadata": {"name": "sentinel", "labels": {"fuzz": "1"}}})
    else:
        obj = mutated(data, {"metadata": {"labels": data.draw(st.dictionaries(NAMES, JSON, max_size=2))},
                             "spec": data.draw(directives) | {"replicas": data.draw(JSON)}})
    body = dumps(obj)
    query = "?fieldManager=fuzz" if ctype.endswith("yaml") else ""
    if data.draw(st.booleans()):
        query += ("&" if query else "?") + "fieldValidation=Strict"
    _send(fuzz, "PATCH", path + sub + query, body, ctype, obj)


RAW = st.one_of(
    st.binary(max_size=64),
    st.builds(dumps, JSON),
    st.sampled_from([b"", b"{", b"[]", b'"x"', b"null", b"1e999", b"{" * 300 + b"}" * 300,
                     b"a: " + b"[" * 900 + b"]" * 900, b"a: !!binary aGVsbG8=", b"a: !!python/object:os.system x",
                     b"a: &x [*x, *x]", b"? [a]\n: 1", b"1: 2\ntrue: 3\n~: 4", b"a: .inf", b"--- 1\n--- 2",
                     b"a: !!set {x, y}", b"metadata: {name: x}\nkind: ConfigMap\napiVersion: v1\ndata: {d: 2001-01-01}",
                     protobuf.MAGIC, protobuf.MAGIC + b"\x0a\x00\x12\x00", protobuf.MAGIC + b"\xff" * 8]),
    st.builds(lambda b: protobuf.MAGIC + b, st.binary(max_size=48)),
    st.builds(lambda o: yaml.safe_dump(o).encode(), JSON),
)


@settings(FUZZ, max_examples=160)
@given(data=st.data())
def test_fuzz_raw_bodies_every_verb(fuzz: Fuzz, data: st.DataObject) -> None:
    """Raw JSON, YAML and protobuf bytes to every verb, patch type and subresource."""
    path = data.draw(st.sampled_from(sorted(SENTINELS)))
    method = data.draw(st.sampled_from(["POST", "PUT", "PATCH", "DELETE"]))
    sub = data.draw(st.sampled_from(["", "", "/status", "/scale", "/binding", "/eviction", "/finalize"]))
    if method == "POST" and not sub:
        path = path.rsplit("/", 1)[0]
    elif sub == "/finalize":
        path = f"/api/v1/namespaces/{NS}"
    ctype = data.draw(st.sampled_from(BODY_TYPES + PATCH_TYPES + ("text/plain", "")))
    body = data.draw(RAW)
    _send(fuzz, method, path + sub, body, ctype, body)


QUERY_VALUES = st.one_of(st.sampled_from(["", "0", "1", "-1", "abc", "true", "All", "Strict", "Exact", "NotOlderThan",
                                          "Bogus", "a=b", "a in (b", "metadata.name=x", "spec.x=y", "9" * 30,
                                          "1.5", "Foreground", "Orphan", "Table", "%", "\u00e9"]),
                         st.text(max_size=6))


@settings(FUZZ, max_examples=140)
@given(data=st.data())
def test_fuzz_query_parameters_and_accept_headers(fuzz: Fuzz, data: st.DataObject) -> None:
    """Every operation's query parameters with odd values, and odd Accept headers."""
    method, template, _ = data.draw(st.sampled_from(fuzz.operations))
    names = fuzz.queries.get(template, []) + ["resourceVersionMatch", "sendInitialEvents", "limit", "continue"]
    params = data.draw(st.dictionaries(st.sampled_from(names), QUERY_VALUES, max_size=3))
    accept = data.draw(st.sampled_from(["application/json", "application/xml", "*/*", "application/yaml",
                                        "application/json;as=Table;v=v1;g=meta.k8s.io", "application/json;as=Bogus",
                                        "application/vnd.kubernetes.protobuf", "text/html, */*;q=0.1", ""]))
    path = fuzz.path(template) + ("?" + urlencode(params, quote_via=quote) if params else "")
    body = None
    ctype = "application/json"
    if method in ("POST", "PUT"):
        code, live = fuzz.api.json("GET", fuzz.path(template) if method == "PUT" else fuzz.path(template) + "/x")
        body = orjson.dumps(live) if code == 200 and isinstance(live, dict) and method == "PUT" else b"{}"
    elif method == "PATCH":
        body, ctype = b"{}", "application/merge-patch+json"
    code, answer = fuzz.api(method, path, body, ctype, headers={"Accept": accept} if accept else {})
    fuzz.check(method, path, code, answer, (params, accept))


def test_fuzzed_server_is_still_healthy_and_sentinels_intact(fuzz: Fuzz) -> None:
    """After the fuzzing: ready, and every sentinel readable at the version last seen."""
    assert_ready(fuzz.api)
    for path, rv in fuzz.versions.items():
        code, obj = fuzz.api.json("GET", path)
        assert code == 200 and obj["metadata"]["resourceVersion"] == rv, (path, obj)

