"""Async REST client for the kubelite (or any Kubernetes) API server.

Every component other than the API server talks to the cluster through this module, the
way client-go's typed clients do.  It speaks JSON over HTTPS with a client certificate or
a bearer token, and turns error replies back into the layered errors of
``kubelite.client.errors`` (``NotFound``, ``Conflict``, ``Gone`` …), so callers write
``except Conflict:`` where client-go callers write ``apierrors.IsConflict``.

Watch streams are newline-delimited JSON.  A burst of thousands of events may arrive in
many small chunks, with lines cut anywhere; ``LineSplitter`` looks at every byte once
(only the bytes a chunk added are searched for a newline), so a burst costs time in
proportion to its size however it is chunked.
"""
from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import quote

import aiohttp
import orjson
import yaml

from kubelite.api.errors import StatusError, status_error
from kubelite.api.resources import ResourceInfo

Obj = dict[str, Any]
log = logging.getLogger("kubelite.client")

PATCH_CONTENT_TYPES = {
    "json": "application/json-patch+json",
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "apply": "application/apply-patch+yaml",
}


@dataclass
class ClientConfig:
    """Where the API server is and how to authenticate to it."""

    server: str
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    token: str | None = None
    insecure: bool = False
    user_agent: str = "kubelite"
    # A token that changes over time (a refreshed service-account token): asked on every
    # request instead of ``token``.
    token_source: Callable[[], str] | None = None
    # Further API servers of the same cluster (same CA and credentials), tried in turn when
    # the current one cannot be connected to: an agent's failover, as k3s's agent-side
    # load balancer gives it.
    fallback_servers: tuple[str, ...] = ()

    @classmethod
    def from_kubeconfig(cls, path: str, user_agent: str = "kubelite") -> ClientConfig:
        """Read the current context of a kubeconfig written by ``kubelite server``."""
        import base64

        with open(path) as f:
            kc = yaml.safe_load(f)
        ctx_name = kc.get("current-context")
        ctx = next(c["context"] for c in kc["contexts"] if c["name"] == ctx_name)
        cluster = next(c["cluster"] for c in kc["clusters"] if c["name"] == ctx["cluster"])
        user = next(u["user"] for u in kc["users"] if u["name"] == ctx["user"])

        def materialise(data_key: str, file_key: str, src: dict[str, Any]) -> str | None:
            if src.get(file_key):
                return src[file_key]
            if src.get(data_key):
                return _pem_file(base64.b64decode(src[data_key]))
            return None

        return cls(
            server=cluster["server"],
            ca_file=materialise("certificate-authority-data", "certificate-authority", cluster),
            cert_file=materialise("client-certificate-data", "client-certificate", user),
            key_file=materialise("client-key-data", "client-key", user),
            token=user.get("token"),
            insecure=bool(cluster.get("insecure-skip-tls-verify")),
            user_agent=user_agent,
        )


_pem_dir: str | None = None
_pem_files: dict[bytes, str] = {}


def _pem_file(data: bytes) -> str:
    """A file holding ``data`` for ssl's file-only loaders: one per distinct content, in a
    directory only this user can read, removed when the process exits (keys must not pile up
    in /tmp)."""
    import atexit
    import os
    import shutil
    import tempfile
    global _pem_dir
    path = _pem_files.get(data)
    if path is not None and os.path.exists(path):
        return path
    if _pem_dir is None or not os.path.isdir(_pem_dir):
        _pem_dir = tempfile.mkdtemp(prefix="kubelite-client-")
        atexit.register(shutil.rmtree, _pem_dir, True)
    fd, path = tempfile.mkstemp(dir=_pem_dir, suffix=".pem")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    _pem_files[data] = path
    return path


def _raise_for(status: int, body: bytes, method: str, path: str, retry_after: str | None = None) -> NoReturn:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict) and data.get("kind") == "Status":
        err = status_error(int(data.get("code") or status), data.get("reason", ""), data.get("message", ""),
                           data.get("details"))
    else:
        err = status_error(status, "Unknown", f"{method} {path}: HTTP {status}: {body[:200]!r}")
    # As client-go: a Retry-After header on a 429 or 5xx becomes details.retryAfterSeconds.
    if retry_after and retry_after.isdigit() and (status == 429 or status >= 500):
        details = dict(err.details or {})
        details.setdefault("retryAfterSeconds", int(retry_after))
        err.details = details
    raise err


# Short requests one client has on the wire at once; more wait for a free connection. Over
# HTTP/1.1 each request in flight needs a connection of its own, and each new connection
# costs a TLS handshake on both ends (client-go multiplexes everything over one HTTP/2
# connection): a burst of hundreds of status writes or creates must reuse a few warm
# connections, not open hundreds that the server then has to accept and handshake while
# it is busiest. Watches hold their connections for minutes and have a pool of their own.
REQUEST_CONNECTIONS = 16


class Client:
    """A connection pool to one API server at a time (the next of the configured ones when it
    cannot be reached)."""

    def __init__(self, config: ClientConfig):
        self.config = config
        self._session: aiohttp.ClientSession | None = None
        self._watch_session: aiohttp.ClientSession | None = None
        self._ssl_ctx: ssl.SSLContext | None = None
        self._servers = [config.server, *config.fallback_servers]
        self._active = 0

    @property
    def server(self) -> str:
        """The API server requests go to now."""
        return self._servers[self._active]

    def _fail_over(self, failed: str) -> bool:
        """Move on from ``failed`` to the next server; False when there is no other one."""
        if len(self._servers) < 2:
            return False
        if self.server == failed:  # another request may have moved on already
            self._active = (self._active + 1) % len(self._servers)
            log.warning("API server %s unreachable; using %s", failed, self.server)
        return True

    async def _send(self, method: str, path: str, *, stream: bool = False, **kw: Any) -> aiohttp.ClientResponse:
        """Start a request, trying each server once while connecting fails. Nothing has been
        sent when connecting fails, so any method may go to the next server. ``stream``: a
        watch, which holds its connection for minutes, from the pool of its own."""
        for attempt in range(len(self._servers)):
            server = self.server
            try:
                return await self._pool(stream).request(method, server + path, **kw)
            except aiohttp.ClientConnectorError:
                if attempt == len(self._servers) - 1 or not self._fail_over(server):
                    raise
        raise AssertionError("unreachable")

    def _ssl(self) -> ssl.SSLContext | bool:
        if not self.config.server.startswith("https"):
            return False
        if self._ssl_ctx is not None:
            return self._ssl_ctx
        ctx = ssl.create_default_context(cafile=self.config.ca_file)
        if self.config.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if self.config.cert_file:
            ctx.load_cert_chain(self.config.cert_file, self.config.key_file)
        ctx.set_alpn_protocols(["http/1.1"])
        self._ssl_ctx = ctx
        return ctx

    def _new_session(self, limit: int) -> aiohttp.ClientSession:
        headers = {"User-Agent": self.config.user_agent, "Accept": "application/json"}
        if self.config.token:
            headers["Authorization"] = f"Bearer {self.config.token}"
        conn = aiohttp.TCPConnector(ssl=self._ssl(), limit=limit)
        return aiohttp.ClientSession(
            base_url=None, headers=headers, connector=conn,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
            json_serialize=lambda o: orjson.dumps(o).decode())

    @property
    def session(self) -> aiohttp.ClientSession:
        """The pool of short requests, created on first use inside the running loop."""
        if self._session is None or self._session.closed:
            self._session = self._new_session(REQUEST_CONNECTIONS)
        return self._session

    def _pool(self, stream: bool) -> aiohttp.ClientSession:
        if not stream:
            return self.session
        if self._watch_session is None or self._watch_session.closed:
            self._watch_session = self._new_session(0)  # one connection per watch, however many
        return self._watch_session

    async def close(self) -> None:
        """Close every pooled connection."""
        for s in (self._session, self._watch_session):
            if s is not None:
                await s.close()
        self._session = self._watch_session = None
        self._ssl_ctx = None  # a later session reads the (maybe renewed) certificate files again

    async def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                      body: Any = None, content_type: str = "application/json",
                      raw: bool = False) -> Any:
        """One request; returns parsed JSON (or bytes with raw=True); raises StatusError."""
        data: bytes | None = None
        headers = {}
        if body is not None:
            data = body if isinstance(body, bytes) else orjson.dumps(body)
            headers["Content-Type"] = content_type
        q = {k: ("true" if v is True else "false" if v is False else str(v))
             for k, v in (params or {}).items() if v is not None and v != ""}
        headers.update(self.auth_headers())
        async with await self._send(method, path, params=q, data=data, headers=headers) as resp:
            payload = await resp.read()
            if resp.status >= 400:
                _raise_for(resp.status, payload, method, path, resp.headers.get("Retry-After"))
            if raw:
                return payload
            if not payload:
                return None
            return orjson.loads(payload)

    def auth_headers(self) -> dict[str, str]:
        """The Authorization header of a changing token (static tokens live in the session)."""
        if self.config.token_source is None:
            return {}
        return {"Authorization": f"Bearer {self.config.token_source()}"}

    def resource(self, info: ResourceInfo) -> ResourceClient:
        """A typed-client equivalent for one resource."""
        return ResourceClient(self, info)


class ResourceClient:
    """CRUD, patch and watch for one resource kind (like a client-go typed client)."""

    def __init__(self, client: Client, info: ResourceInfo):
        self.client = client
        self.info = info

    def path(self, namespace: str = "", name: str = "", subresource: str = "") -> str:
        """The URL path of the collection, an object, or an object's subresource."""
        base = "/api/v1" if not self.info.group else f"/apis/{self.info.group}/{self.info.version}"
        if self.info.namespaced and namespace:
            base += f"/namespaces/{quote(namespace, safe='')}"
        base += f"/{self.info.plural}"
        if name:
            base += f"/{quote(name, safe='')}"
        if subresource:
            base += f"/{subresource}"
        return base

    async def get(self, name: str, namespace: str = "") -> Obj:
        """GET one object."""
        return await self.client.request("GET", self.path(namespace, name))

    async def get_subresource(self, name: str, namespace: str, subresource: str) -> Obj:
        """GET a subresource such as scale or status."""
        return await self.client.request("GET", self.path(namespace, name, subresource))

    async def list(self, namespace: str = "", *, label_selector: str = "", field_selector: str = "",
                   resource_version: str | None = None, limit: int | None = None,
                   continue_: str | None = None) -> Obj:
        """LIST objects (all namespaces when namespace is empty)."""
        return await self.client.request("GET", self.path(namespace), params={
            "labelSelector": label_selector, "fieldSelector": field_selector,
            "resourceVersion": resource_version, "limit": limit, "continue": continue_})

    async def create(self, obj: Obj, namespace: str = "", *, field_manager: str = "",
                     dry_run: bool = False) -> Obj:
        """POST a new object."""
        ns = namespace or obj.get("metadata", {}).get("namespace", "")
        return await self.client.request("POST", self.path(ns), body=obj, params={
            "fieldManager": field_manager, "dryRun": "All" if dry_run else None})

    async def update(self, obj: Obj, *, subresource: str = "", field_manager: str = "") -> Obj:
        """PUT an object (optimistic concurrency through metadata.resourceVersion)."""
        md = obj["metadata"]
        return await self.client.request("PUT", self.path(md.get("namespace", ""), md["name"], subresource),
                                         body=obj, params={"fieldManager": field_manager})

    async def update_status(self, obj: Obj) -> Obj:
        """PUT to the /status subresource."""
        return await self.update(obj, subresource="status")

    async def patch(self, name: str, patch: Any, namespace: str = "", *, patch_type: str = "merge",
                    subresource: str = "", field_manager: str = "", force: bool | None = None) -> Obj:
        """PATCH an object; patch_type is json, merge, strategic or apply."""
        return await self.client.request(
            "PATCH", self.path(namespace, name, subresource), body=patch,
            content_type=PATCH_CONTENT_TYPES[patch_type],
            params={"fieldManager": field_manager, "force": force})

    async def delete(self, name: str, namespace: str = "", *, grace_period_seconds: int | None = None,
                     propagation_policy: str | None = None, preconditions: Obj | None = None) -> Obj:
        """DELETE an object with DeleteOptions."""
        opts: Obj = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if grace_period_seconds is not None:
            opts["gracePeriodSeconds"] = grace_period_seconds
        if propagation_policy:
            opts["propagationPolicy"] = propagation_policy
        if preconditions:
            opts["preconditions"] = preconditions
        return await self.client.request("DELETE", self.path(namespace, name), body=opts)

    async def delete_collection(self, namespace: str = "", *, propagation_policy: str | None = None) -> Obj:
        """DELETE the whole collection (of one namespace): deletecollection."""
        opts: Obj = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation_policy:
            opts["propagationPolicy"] = propagation_policy
        return await self.client.request("DELETE", self.path(namespace), body=opts)

    async def create_subresource(self, name: str, namespace: str, subresource: str, body: Obj) -> Obj:
        """POST to a subresource such as binding or eviction."""
        return await self.client.request("POST", self.path(namespace, name, subresource), body=body)

    async def watch(self, namespace: str = "", *, resource_version: str | None = None,
                    label_selector: str = "", field_selector: str = "", timeout_seconds: int | None = None,
                    allow_bookmarks: bool = True) -> AsyncIterator[tuple[str, Obj]]:
        """Yield (type, object) watch events until the server closes the stream.

        An ERROR event is raised as StatusError (410 Expired means: list again)."""
        params = {"watch": "true", "resourceVersion": resource_version, "labelSelector": label_selector,
                  "fieldSelector": field_selector, "timeoutSeconds": timeout_seconds,
                  "allowWatchBookmarks": "true" if allow_bookmarks else None}
        q = {k: str(v) for k, v in params.items() if v is not None and v != ""}
        path = self.path(namespace)
        async with await self.client._send("GET", path, stream=True, params=q,
                                           headers=self.client.auth_headers()) as resp:
            if resp.status >= 400:
                _raise_for(resp.status, await resp.read(), "WATCH", path)
            lines = LineSplitter()
            async for chunk in resp.content.iter_any():
                for line in lines.feed(chunk):
                    if not line.strip():
                        continue
                    ev = orjson.loads(line)
                    if ev.get("type") == "ERROR":
                        st = ev.get("object") or {}
                        raise status_error(int(st.get("code") or 500), st.get("reason", ""), st.get("message", ""))
                    yield ev["type"], ev["object"]


class LineSplitter:
    """Cuts a byte stream into newline-terminated lines, searching each byte once."""

    def __init__(self) -> None:
        self._buf = bytearray()  # the unfinished last line
        self._scanned = 0        # how much of _buf is known to hold no newline

    @property
    def pending(self) -> int:
        """Bytes held for a line whose newline has not arrived yet."""
        return len(self._buf)

    def feed(self, chunk: bytes) -> list[bytes]:
        """Add a chunk; return the lines it completed (without their newlines)."""
        buf = self._buf
        buf += chunk
        lines: list[bytes] = []
        start = 0
        # Search from the first byte not searched before: a long line that arrives in
        # many small chunks is never rescanned from its beginning.
        nl = buf.find(b"\n", self._scanned)
        while nl >= 0:
            lines.append(bytes(buf[start:nl]))
            start = nl + 1
            nl = buf.find(b"\n", start)
        if start:
            del buf[:start]  # drop what was handed out: at most one chunk's worth of copying
        self._scanned = len(buf)
        return lines


async def wait_ready(client: Client, timeout: float = 30.0) -> None:
    """Poll /readyz until the server answers ok."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            await client.request("GET", "/readyz", raw=True)
            return
        except (aiohttp.ClientError, StatusError, OSError):
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.05)
