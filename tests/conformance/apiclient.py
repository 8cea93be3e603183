"""A small HTTPS client for the conformance specs.

The specs need to see the wire: exact status codes, Content-Type and Warning headers,
bodies in JSON, YAML or protobuf, watch streams line by line. So this is plain
``http.client`` over one keep-alive connection (watches get their own), with the admin
certificate from the server's kubeconfig. Failed requests raise the layered
``kubelite.client.errors`` classes, with the reply attached as ``err.reply``.
"""
from __future__ import annotations

import http.client
import json
import ssl
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import Message
from typing import Any, TypeVar

import yaml

from kubelite.api import protobuf
from kubelite.client.errors import Conflict, status_error
from kubelite.client.rest import ClientConfig

Obj = dict[str, Any]
T = TypeVar("T")

JSON = "application/json"
YAML = "application/yaml"
PROTOBUF = "application/vnd.kubernetes.protobuf"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
TABLE_V1 = "application/json;as=Table;v=v1;g=meta.k8s.io"
TABLE_V1BETA1 = "application/json;as=Table;v=v1beta1;g=meta.k8s.io"


@dataclass(frozen=True)
class Resource:
    """One served resource as discovery describes it."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    verbs: frozenset[str]
    subresources: dict[str, frozenset[str]] = field(default_factory=dict, hash=False, compare=False)

    @property
    def id(self) -> str:
        """``apps/v1/deployments`` or ``v1/pods``: the key of samples and test ids."""
        return f"{self.api_version}/{self.plural}"

    @property
    def api_version(self) -> str:
        """``apps/v1`` or ``v1``."""
        return f"{self.group}/{self.version}" if self.group else self.version

    def has(self, *verbs: str) -> bool:
        """Whether discovery advertises every one of ``verbs``."""
        return set(verbs) <= self.verbs

    def path(self, ns: str = "", name: str = "", sub: str = "") -> str:
        """The URL path of the collection, one object, or one object's subresource."""
        root = f"/apis/{self.group}/{self.version}" if self.group else "/api/v1"
        p = root + (f"/namespaces/{ns}" if self.namespaced and ns else "") + f"/{self.plural}"
        if name:
            p += f"/{name}"
        if sub:
            p += f"/{sub}"
        return p


@dataclass
class Reply:
    """One HTTP answer."""

    code: int
    headers: Message
    raw: bytes

    @property
    def content_type(self) -> str:
        """The media type without parameters."""
        return (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()

    @property
    def obj(self) -> Any:
        """The body decoded according to its Content-Type."""
        ct = self.content_type
        if ct == PROTOBUF:
            return protobuf.decode(self.raw)
        if ct == YAML:
            return yaml.safe_load(self.raw)
        return json.loads(self.raw)

    @property
    def warnings(self) -> list[str]:
        """The texts of ``Warning: 299 - "…"`` headers."""
        out = []
        for h in self.headers.get_all("Warning") or []:
            for part in _split_warnings(h):
                out.append(part)
        return out


def _split_warnings(header: str) -> list[str]:
    """Texts of a Warning header, which may hold several comma-separated quoted values."""
    out, i = [], 0
    while True:
        start = header.find('"', i)
        if start < 0:
            return out
        j, text = start + 1, []
        while j < len(header) and header[j] != '"':
            if header[j] == "\\" and j + 1 < len(header):
                j += 1
            text.append(header[j])
            j += 1
        out.append("".join(text))
        i = j + 1


def check(reply: Reply) -> Reply:
    """Raise the layered StatusError for a failed reply (the reply rides along as ``.reply``)."""
    if reply.code < 400:
        return reply
    try:
        body = json.loads(reply.raw)
    except ValueError:
        body = {}
    err = status_error(reply.code, str(body.get("reason", "")), str(body.get("message", reply.raw[:200])),
                       body.get("details"))
    err.reply = reply  # type: ignore[attr-defined]  # the raw Status (e.g. metadata.continue) for the spec
    raise err


def retry_on_conflict(fn: Callable[[], T], attempts: int = 10) -> T:
    """Run a read-modify-write again when someone (a controller) wrote in between, as
    client-go's RetryOnConflict does."""
    for i in range(attempts):
        try:
            return fn()
        except Conflict:
            if i == attempts - 1:
                raise
    raise AssertionError("unreachable")


def encode_body(body: Any, ctype: str) -> bytes:
    """A request body in the given media type."""
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    base = ctype.split(";")[0].strip()
    if base == PROTOBUF:
        return protobuf.encode(body)
    if base == YAML:
        return yaml.dump(body, Dumper=_QuotedStrings).encode()
    return json.dumps(body).encode()


class _QuotedStrings(yaml.SafeDumper):
    """PyYAML reads YAML 1.1 and leaves strings such as ``12e4`` or ``1_0`` unquoted, which
    the server (like upstream's YAML 1.2 reader) takes as numbers: quote every string."""


_QuotedStrings.add_representer(
    str, lambda dumper, s: dumper.represent_scalar("tag:yaml.org,2002:str", s, style='"'))


class Api:
    """Requests to one API server with the admin certificate."""

    def __init__(self, kubeconfig: str):
        cfg = ClientConfig.from_kubeconfig(kubeconfig)
        self.ssl = ssl.create_default_context(cafile=cfg.ca_file)
        if cfg.cert_file and cfg.key_file:
            self.ssl.load_cert_chain(cfg.cert_file, cfg.key_file)
        u = urllib.parse.urlparse(cfg.server)
        self.host, self.port = u.hostname or "127.0.0.1", u.port or 443
        self._conn: http.client.HTTPSConnection | None = None

    def _connection(self) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(self.host, self.port, context=self.ssl, timeout=30)

    def request(self, method: str, path: str, body: Any = None, *, ctype: str = JSON, accept: str = JSON,
                params: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> Reply:
        """One request; any status code is returned, never raised."""
        url = path + ("?" + urllib.parse.urlencode(params, doseq=True) if params else "")
        data = encode_body(body, ctype)
        hdrs = {"Accept": accept, "User-Agent": "kubelite-conformance/v0", **(headers or {})}
        if data or method in ("POST", "PUT", "PATCH"):
            hdrs["Content-Type"] = ctype
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = self._connection()
            try:
                self._conn.request(method, url, body=data or None, headers=hdrs)
                resp = self._conn.getresponse()
                raw = resp.read()
                return Reply(resp.status, resp.headers, raw)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ssl.SSLEOFError):
                # The server closed an idle keep-alive connection (it does after 32 s, and TLS
                # may report that as an EOF while we send); one fresh try.
                self._conn.close()
                self._conn = None
                if attempt == 2:
                    raise
            except BaseException:
                # Anything else leaves the connection mid-request: never reuse it.
                self._conn.close()
                self._conn = None
                raise
        raise AssertionError("unreachable")

    def call(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        """A request whose failure raises the layered StatusError; the decoded body."""
        return check(self.request(method, path, body, **kw)).obj

    # -- verbs on a Resource -------------------------------------------------------------
    def create(self, res: Resource, ns: str, obj: Obj, **kw: Any) -> Obj:
        """POST an object."""
        return self.call("POST", res.path(ns), obj, **kw)

    def get(self, res: Resource, ns: str, name: str, **kw: Any) -> Obj:
        """GET one object."""
        return self.call("GET", res.path(ns, name), **kw)

    def list(self, res: Resource, ns: str, **params: Any) -> Obj:
        """LIST with query parameters."""
        return self.call("GET", res.path(ns), params=params)

    def update(self, res: Resource, ns: str, obj: Obj, sub: str = "", **kw: Any) -> Obj:
        """PUT the whole object (or its subresource)."""
        return self.call("PUT", res.path(ns, obj["metadata"]["name"], sub), obj, **kw)

    def patch(self, res: Resource, ns: str, name: str, body: Any, ctype: str = MERGE_PATCH, sub: str = "",
              **kw: Any) -> Obj:
        """PATCH in the given patch type."""
        return self.call("PATCH", res.path(ns, name, sub), body, ctype=ctype, **kw)

    def apply(self, res: Resource, ns: str, obj: Obj, manager: str, force: bool = False, sub: str = "",
              **params: Any) -> Obj:
        """Server-side apply as ``manager``."""
        q: dict[str, Any] = {"fieldManager": manager, **params}
        if force:
            q["force"] = "true"
        return self.patch(res, ns, obj["metadata"]["name"], json.dumps(obj), APPLY_PATCH, sub, params=q)

    def delete(self, res: Resource, ns: str, name: str, options: Obj | None = None,
               params: dict[str, Any] | None = None) -> Obj:
        """DELETE with DeleteOptions in the body."""
        return self.call("DELETE", res.path(ns, name), options, params=params)

    def get_or_none(self, res: Resource, ns: str, name: str) -> Obj | None:
        """The object, or None when GET finds nothing (one request: no race with a delete)."""
        reply = self.request("GET", res.path(ns, name))
        if reply.code == 404:
            return None
        return check(reply).obj

    def exists(self, res: Resource, ns: str, name: str) -> bool:
        """Whether GET finds the object."""
        return self.get_or_none(res, ns, name) is not None

    def watch(self, res: Resource, ns: str, timeout: float = 10, **params: Any) -> Watch:
        """Open a watch (its own connection); ``timeoutSeconds`` bounds it on the server too."""
        q = {"watch": "1", "timeoutSeconds": str(max(1, int(timeout))), **params}
        return Watch(self._connection(), res.path(ns) + "?" + urllib.parse.urlencode(q), timeout + 5)

    def close(self) -> None:
        """Close the keep-alive connection."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class Watch:
    """A watch stream read one event at a time; its first reply line is read lazily."""

    def __init__(self, conn: http.client.HTTPSConnection, url: str, timeout: float):
        self.conn = conn
        self.skipped: list[Obj] = []
        conn.timeout = timeout
        conn.request("GET", url, headers={"Accept": JSON})
        self.resp = conn.getresponse()
        if self.resp.status >= 400:
            reply = Reply(self.resp.status, self.resp.headers, self.resp.read())
            conn.close()
            check(reply)

    def __iter__(self) -> Iterator[Obj]:
        while True:
            line = self.resp.readline()
            if not line:
                return
            if line.strip():
                yield json.loads(line)

    def next_matching(self, pred: Callable[[Obj], bool], what: str = "event") -> Obj:
        """The next event for which ``pred(event)`` holds; the ones skipped are kept in ``skipped``."""
        self.skipped = []
        for ev in self:
            if pred(ev):
                return ev
            self.skipped.append(ev)
        raise AssertionError(f"watch ended before {what}; saw {[e.get('type') for e in self.skipped]}")

    def close(self) -> None:
        """Drop the stream."""
        self.conn.close()

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def discover(api: Api) -> list[Resource]:
    """Every served resource, from aggregated discovery (v2) of /api and /apis."""
    out: list[Resource] = []
    accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
    for root in ("/api", "/apis"):
        doc = api.call("GET", root, accept=accept)
        if doc.get("kind") != "APIGroupDiscoveryList":
            raise AssertionError(f"{root} did not answer aggregated discovery: {doc.get('kind')}")
        for g in doc.get("items") or []:
            group = g["metadata"].get("name", "")
            for v in g.get("versions") or []:
                for r in v.get("resources") or []:
                    subs = {s["subresource"]: frozenset(s.get("verbs") or []) for s in r.get("subresources") or []}
                    out.append(Resource(group, v["version"], r["resource"], r["responseKind"]["kind"],
                                        r.get("scope") == "Namespaced", frozenset(r.get("verbs") or []), subs))
    return out

