"""The aggregator inside the API server: APIService state, availability, discovery, proxy.

Like upstream's kube-aggregator (which runs in kube-apiserver's process), this works on the
registry directly: it watches APIServices, Services and EndpointSlices, and

- registers the local APIServices (``local.py``) at start and whenever CRDs change;
- keeps each APIService's ``Available`` condition (the availability controller: Local,
  ServiceNotFound, ServicePortError, EndpointsNotFound, MissingEndpoints,
  FailedDiscoveryCheck, Passed), re-checking remote ones periodically;
- fetches each available extension's ``/apis/<group>/<version>`` for discovery;
- proxies requests under ``/apis/<group>/<version>`` of a remote APIService to its server
  over TLS verified with the caBundle, passing the user in X-Remote-* headers (upstream's
  request-header authentication), with bodies streamed both ways (watches included).
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import re
import ssl
from collections.abc import AsyncGenerator, Callable
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
from aiohttp import web
from yarl import URL

from kubelite.api import errors, meta, resources
from kubelite.api.resources import APISERVICES, ENDPOINTSLICES, SERVICES, ResourceInfo
from kubelite.apiserver.aggregator.local import AUTOMANAGED, publish_authentication, sync_local
from kubelite.apiserver.aggregator.resolve import SERVICE_NAME_LABEL, Unavailable, host_port, resolve, service_ref
from kubelite.apiserver.authn import User
from kubelite.apiserver.discovery import ExtraGroup, extra_group_entry
from kubelite.apiserver.registry import Registry

Obj = dict[str, Any]
log = logging.getLogger("kubelite.aggregator")

LOCAL_MESSAGE = "Local APIServices are always available"
# Headers that describe one connection, not the request (never forwarded), and the ones
# that carry identity, which only the aggregator may set.
_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "trailers",
        "transfer-encoding", "upgrade", "host", "content-length"}
_IDENTITY_PREFIXES = ("authorization", "impersonate-", "x-remote-")
_KUBE_VERSION = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_sort_key(version: str, priority: int) -> tuple[int, int, int, int, int, str]:
    """Upstream's order within a group: versionPriority, then GA > beta > alpha, then
    higher major and minor, then non-Kubernetes-like versions by name."""
    m = _KUBE_VERSION.match(version)
    if not m:
        return (-priority, 1, 0, 0, 0, version)
    stage = {"": 0, "beta": 1, "alpha": 2}[m.group(2) or ""]
    return (-priority, 0, stage, -int(m.group(1)), -int(m.group(3) or 0), version)


def available_condition(apiservice: Obj) -> Obj | None:
    """The APIService's Available condition, if set."""
    for c in (apiservice.get("status") or {}).get("conditions") or []:
        if isinstance(c, dict) and c.get("type") == "Available":
            return c
    return None


def is_available(apiservice: Obj) -> bool:
    """Whether the Available condition is True."""
    c = available_condition(apiservice)
    return bool(c and c.get("status") == "True")


def _go_error(url: str, e: BaseException) -> str:
    """A failed GET in the words Go's HTTP client uses for the usual failures."""
    if isinstance(e, ConnectionRefusedError) or isinstance(getattr(e, "os_error", None), ConnectionRefusedError):
        host = URL(url).raw_authority
        return f'Get "{url}": dial tcp {host}: connect: connection refused'
    if isinstance(e, asyncio.TimeoutError):
        return f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)'
    return f'Get "{url}": {e}'


class DiscoveryFailed(Exception):
    """The extension's discovery endpoint did not answer with a 2xx."""


class Aggregator:
    """APIServices as the API server sees them, and what it does with them."""

    def __init__(self, registry: Registry, *, client_cert: tuple[str, str] | None = None,
                 auth_data: dict[str, str] | None = None, resync: float = 30.0) -> None:
        self.registry = registry
        self.client_cert = client_cert
        self.auth_data = auth_data  # kube-system/extension-apiserver-authentication, when set
        self.resync = resync
        self.apiservices: dict[str, Obj] = {}
        self.discovery: dict[str, Obj] = {}  # APIService name -> its server's APIResourceList
        self._queue: set[str] = set()
        self._wake = asyncio.Event()
        self._failures: dict[str, int] = {}
        self._retries: dict[str, asyncio.TimerHandle] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None
        self._contexts: dict[tuple[str, bool], ssl.SSLContext] = {}
        self._local_pending: asyncio.Task[None] | None = None
        self._local_again = False

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        """Start watching and checking (returns at once)."""
        self._session = aiohttp.ClientSession(auto_decompress=False,
                                              connector=aiohttp.TCPConnector(limit=0, force_close=False))
        spawn = asyncio.get_running_loop().create_task
        self._tasks = [spawn(self._watch(APISERVICES, self._on_apiservice, self._relisted)),
                       spawn(self._watch(SERVICES, self._on_service)),
                       spawn(self._watch(ENDPOINTSLICES, self._on_slice)),
                       spawn(self._worker()), spawn(self._resync_loop())]
        if self.auth_data is not None:
            self._tasks.append(spawn(self._publish(self.auth_data)))
        self.catalogue_changed()

    async def settle(self) -> None:
        """Register the local APIServices with their status and publish the request-header
        ConfigMap now (server.py calls this after the bootstrap, so a fixture's snapshot of
        the start-up state already holds them)."""
        await sync_local(self.registry)
        if self.auth_data is not None:
            await publish_authentication(self.registry, self.auth_data)
        items, _, _, _ = await self.registry.list(APISERVICES, "")
        for a in items:
            name = meta.name(a)
            self.apiservices.setdefault(name, a)
            if service_ref(a) is None:
                await self._set_available(name, "True", "Local", LOCAL_MESSAGE)

    async def stop(self) -> None:
        """Stop every task and close connections to extension servers."""
        for handle in self._retries.values():
            handle.cancel()
        self._retries.clear()
        tasks = self._tasks + ([self._local_pending] if self._local_pending else [])
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks = []
        if self._session is not None:
            await self._session.close()
            self._session = None

    def catalogue_changed(self) -> None:
        """Served groups changed (CRDs): bring the local APIServices in line, soon."""
        self._local_again = True
        if self._local_pending is not None and not self._local_pending.done():
            return  # the running pass goes round once more

        async def run() -> None:
            while self._local_again:
                self._local_again = False
                try:
                    await sync_local(self.registry)
                except errors.StatusError as e:
                    log.warning("registering local APIServices: %s", e)
        self._local_pending = asyncio.get_running_loop().create_task(run())

    async def _publish(self, data: dict[str, str]) -> None:
        """Publish the request-header settings once kube-system exists (the bootstrap
        creates it just after the server starts listening)."""
        for _ in range(300):
            try:
                await publish_authentication(self.registry, data)
                return
            except errors.StatusError:
                await asyncio.sleep(0.1)
        log.warning("could not publish kube-system/extension-apiserver-authentication")

    # -- watches -------------------------------------------------------------------------
    async def _watch(self, info: ResourceInfo, handle: Callable[[str, Obj], None],
                     relisted: Callable[[set[str]], None] | None = None) -> None:
        """List and watch one resource for ever; ``relisted`` gets the names each list held
        (a watch that ends, as after a compaction or a fixture's reset, lists again)."""
        while True:
            delay = 0.1
            try:
                events: AsyncGenerator[tuple[str, Obj, Obj | None]] = await self.registry.open_watch(
                    info, "", None, True)
                listed: set[str] | None = set()
                async for typ, obj, _ in events:
                    if typ == "INITIAL_END":
                        if relisted is not None and listed is not None:
                            relisted(listed)
                        listed = None
                        continue
                    if listed is not None:
                        listed.add(meta.name(obj))
                    handle(typ, obj)
            except asyncio.CancelledError:
                raise
            except Exception:  # a broken watch is reopened (with a fresh list)
                log.exception("watch of %s ended", info.plural)
                delay = 1.0
            await asyncio.sleep(delay)

    def _relisted(self, names: set[str]) -> None:
        """APIServices gone while no watch was open are forgotten (and local ones put back)."""
        for name in set(self.apiservices) - names:
            self._on_apiservice("DELETED", self.apiservices[name])

    def _enqueue(self, name: str) -> None:
        self._queue.add(name)
        self._wake.set()

    def _on_apiservice(self, typ: str, obj: Obj) -> None:
        name = meta.name(obj)
        if typ == "DELETED":
            self.apiservices.pop(name, None)
            self.discovery.pop(name, None)
            if AUTOMANAGED in ((obj.get("metadata") or {}).get("labels") or {}) and service_ref(obj) is None:
                self.catalogue_changed()  # a local APIService is put back, as upstream's autoregister does
            return
        old = self.apiservices.get(name)
        self.apiservices[name] = obj
        # Our own status writes come back here: only a spec change calls for a new check.
        if old is None or old.get("spec") != obj.get("spec") or available_condition(obj) is None:
            self._failures.pop(name, None)
            self._enqueue(name)

    def _for_service(self, ns: str, name: str) -> None:
        for key, a in self.apiservices.items():
            ref = service_ref(a)
            if ref and ref.get("namespace") == ns and ref.get("name") == name:
                self._enqueue(key)

    def _on_service(self, _typ: str, obj: Obj) -> None:
        self._for_service(meta.namespace(obj), meta.name(obj))

    def _on_slice(self, _typ: str, obj: Obj) -> None:
        svc = ((obj.get("metadata") or {}).get("labels") or {}).get(SERVICE_NAME_LABEL)
        if svc:
            self._for_service(meta.namespace(obj), svc)

    # -- the availability controller -----------------------------------------------------
    async def _worker(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            names, self._queue = self._queue, set()
            await asyncio.gather(*(self._sync_one(n) for n in sorted(names)))

    async def _resync_loop(self) -> None:
        while True:
            await asyncio.sleep(self.resync)
            for name, a in list(self.apiservices.items()):
                if service_ref(a):
                    self._enqueue(name)

    async def _sync_one(self, name: str) -> None:
        try:
            await self._sync(name)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("availability of APIService %s", name)

    async def _sync(self, name: str) -> None:
        obj = self.apiservices.get(name)
        if obj is None:
            return
        ref = service_ref(obj)
        if ref is None:
            await self._set_available(name, "True", "Local", LOCAL_MESSAGE)
            return
        try:
            address, port = await resolve(self.registry, ref)
            await self._discovery_check(obj, address, port)
        except Unavailable as u:
            await self._set_available(name, "False", u.reason, u.message)
            self._retry_later(name)
            return
        except DiscoveryFailed as e:
            await self._set_available(name, "False", "FailedDiscoveryCheck", str(e))
            self._retry_later(name)
            return
        self._failures.pop(name, None)
        await self._fetch_discovery(obj, address, port)
        await self._set_available(name, "True", "Passed", "all checks passed")

    def _retry_later(self, name: str) -> None:
        """Re-check an unavailable remote APIService with a growing delay (up to the resync)."""
        n = self._failures.get(name, 0) + 1
        self._failures[name] = n
        old = self._retries.pop(name, None)
        if old is not None:
            old.cancel()  # one pending retry per APIService
        self._retries[name] = asyncio.get_running_loop().call_later(
            min(self.resync, 0.5 * 2 ** min(n, 8)), self._enqueue, name)

    def _check_path(self, obj: Obj) -> str:
        spec = obj.get("spec") or {}
        if meta.name(obj) == "v1.":
            return f"/api/{spec.get('version', '')}"
        return f"/apis/{spec.get('group', '')}/{spec.get('version', '')}"

    async def _discovery_check(self, obj: Obj, address: str, port: int) -> None:
        """GET the group/version's discovery document as system:kube-aggregator, without
        verifying the certificate (upstream's check only asks whether something answers)."""
        assert self._session is not None
        url = f"https://{host_port(address, port)}{self._check_path(obj)}"
        headers = {"X-Remote-User": "system:kube-aggregator", "X-Remote-Group": "system:masters",
                   "Accept": "application/json"}
        try:
            async with self._session.get(url, headers=headers, ssl=self._context("", True), allow_redirects=False,
                                         timeout=aiohttp.ClientTimeout(total=5)) as resp:
                await resp.read()
                if resp.status < 200 or resp.status >= 300:
                    raise DiscoveryFailed(f"failing or missing response from {url}: "
                                          f"bad status from {url}: {resp.status}")
        except (TimeoutError, aiohttp.ClientError, OSError, ssl.SSLError) as e:
            raise DiscoveryFailed(f"failing or missing response from {url}: {_go_error(url, e)}") from None

    async def _fetch_discovery(self, obj: Obj, address: str, port: int) -> None:
        """Keep the extension's APIResourceList for discovery, fetched the way the proxy
        talks to it (verified TLS); a failure keeps the last one."""
        assert self._session is not None
        name = meta.name(obj)
        spec = obj.get("spec") or {}
        ref = service_ref(obj) or {}
        url = f"https://{host_port(address, port)}{self._check_path(obj)}"
        try:
            async with self._session.get(url, headers={"Accept": "application/json",
                                                       "X-Remote-User": "system:kube-aggregator",
                                                       "X-Remote-Group": "system:masters"},
                                         ssl=self._context_for(spec), server_hostname=_service_host(ref),
                                         timeout=aiohttp.ClientTimeout(total=5)) as resp:
                body = await resp.read()
                if resp.status != 200:
                    log.warning("discovery of %s: %s answered %d", name, url, resp.status)
                    return
            doc = orjson.loads(body)
        except (TimeoutError, aiohttp.ClientError, OSError, ssl.SSLError, orjson.JSONDecodeError) as e:
            log.warning("discovery of %s: %s", name, e)
            return
        if isinstance(doc, dict) and doc.get("kind") == "APIResourceList":
            self.discovery[name] = doc

    async def _set_available(self, name: str, status: str, reason: str, message: str) -> None:
        cur = self.apiservices.get(name)
        if cur is None:
            return
        c = available_condition(cur)
        if c and (c.get("status"), c.get("reason"), c.get("message")) == (status, reason, message):
            return

        def mutate(o: Obj) -> Obj:
            conds = o.setdefault("status", {}).setdefault("conditions", [])
            for cond in conds:
                if isinstance(cond, dict) and cond.get("type") == "Available":
                    if cond.get("status") != status:
                        cond["status"] = status
                        cond["lastTransitionTime"] = meta.rfc3339()
                    cond["reason"] = reason
                    cond["message"] = message
                    return o
            conds.append({"type": "Available", "status": status, "lastTransitionTime": meta.rfc3339(),
                          "reason": reason, "message": message})
            return o
        try:
            out, _ = await self.registry.guaranteed_update(APISERVICES, "", name, mutate, subresource="status")
        except errors.NotFound:
            return
        if (self.apiservices.get(name) or {}).get("metadata", {}).get("uid") == out["metadata"].get("uid"):
            self.apiservices[name] = out
        if status != "True" or (c and c.get("status") != status):
            log.info("APIService %s: Available=%s (%s) %s", name, status, reason, message)

    # -- TLS -----------------------------------------------------------------------------
    def _context(self, ca_bundle: str, insecure: bool) -> ssl.SSLContext:
        key = (ca_bundle, insecure)
        ctx = self._contexts.get(key)
        if ctx is None:
            ctx = ssl.create_default_context()
            if insecure:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            elif ca_bundle:
                try:
                    ctx = ssl.create_default_context(cadata=ca_bundle)
                except (ssl.SSLError, ValueError):
                    # No usable certificate in the bundle: trust nothing, so every handshake fails.
                    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            if self.client_cert:
                ctx.load_cert_chain(*self.client_cert)
            ctx.set_alpn_protocols(["http/1.1"])
            self._contexts[key] = ctx
        return ctx

    def _context_for(self, spec: Obj) -> ssl.SSLContext:
        """Verify with the caBundle (or the system roots), or not at all when told so."""
        raw = spec.get("caBundle") or ""
        try:
            pem = base64.b64decode(raw).decode() if raw else ""
        except (binascii.Error, UnicodeDecodeError):
            pem = ""
        return self._context(pem, bool(spec.get("insecureSkipTLSVerify")))

    # -- routing and discovery -----------------------------------------------------------
    def remote(self, group: str, version: str) -> Obj | None:
        """The APIService with a service that answers group/version, if any."""
        a = self.apiservices.get(f"{version}.{group}")
        return a if a is not None and service_ref(a) is not None else None

    def extra_groups(self) -> list[ExtraGroup]:
        """The groups only extension servers answer, for /apis."""
        local = resources.group_versions()
        by_group: dict[str, list[Obj]] = {}
        for a in self.apiservices.values():
            spec = a.get("spec") or {}
            g = str(spec.get("group") or "")
            if service_ref(a) is None or not g or g in local:
                continue
            by_group.setdefault(g, []).append(a)
        out = []
        for g, items in by_group.items():
            items.sort(key=lambda a: version_sort_key(str(a["spec"].get("version") or ""),
                                                      int(a["spec"].get("versionPriority") or 0)))
            versions = tuple(str(a["spec"].get("version") or "") for a in items)
            docs = {str(a["spec"].get("version")): self.discovery[meta.name(a)]
                    for a in items if meta.name(a) in self.discovery and is_available(a)}
            prio = max(int(a["spec"].get("groupPriorityMinimum") or 0) for a in items)
            out.append(ExtraGroup(g, prio, versions, docs))
        return out

    def openapi_v3_paths(self) -> dict[str, Obj]:
        """Root entries of /openapi/v3 for the available extension group/versions."""
        local = resources.group_versions()
        out: dict[str, Obj] = {}
        for a in self.apiservices.values():
            spec = a.get("spec") or {}
            g, v = str(spec.get("group") or ""), str(spec.get("version") or "")
            if service_ref(a) is not None and g and g not in local and is_available(a):
                out[f"apis/{g}/{v}"] = {"serverRelativeURL": f"/openapi/v3/apis/{g}/{v}"}
        return out

    def api_group(self, group: str) -> Obj | None:
        """APIGroup for /apis/<group> of an extension group (answered here, as upstream)."""
        for g in self.extra_groups():
            if g.name == group:
                return {"kind": "APIGroup", "apiVersion": "v1", **extra_group_entry(g)}
        return None

    # -- the proxy -----------------------------------------------------------------------
    async def proxy(self, request: web.Request, apiservice: Obj) -> web.StreamResponse:
        """Forward one request to the APIService's server and stream its answer back."""
        ref = service_ref(apiservice) or {}
        if not is_available(apiservice):
            return _plain(503, "service unavailable")
        upgrade = request.headers.get("Upgrade", "").lower()
        if upgrade and upgrade != "websocket":
            raise errors.status_error(501, "NotImplemented",
                                      f"{upgrade} upgrade requests are not forwarded to extension API servers")
        try:
            address, port = await resolve(self.registry, ref)
        except Unavailable:
            return _plain(503, "service unavailable")
        assert self._session is not None
        url = URL(f"https://{host_port(address, port)}{request.raw_path}", encoded=True)
        headers = forward_headers(request.headers, request.get("user"))
        if upgrade:
            return await self._proxy_websocket(request, apiservice, url, headers)
        body = await request.read() if request.body_exists else None
        try:
            resp = await self._session.request(
                request.method, url, headers=headers, data=body, allow_redirects=False,
                ssl=self._context_for(apiservice.get("spec") or {}), server_hostname=_service_host(ref),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=None))
        except (TimeoutError, aiohttp.ClientError, OSError, ssl.SSLError) as e:
            log.warning("proxying to APIService %s: %s", meta.name(apiservice), e)
            return _plain(503, f"Error trying to reach service: {e}")
        try:
            out = web.StreamResponse(status=resp.status, reason=resp.reason)
            for k, v in resp.headers.items():
                if k.lower() not in _HOP or k.lower() == "content-length":
                    out.headers.add(k, v)
            await out.prepare(request)
            async for chunk in resp.content.iter_any():
                await out.write(chunk)
            await out.write_eof()
            return out
        finally:
            resp.release()


    async def _proxy_websocket(self, request: web.Request, apiservice: Obj, url: URL,
                               headers: list[tuple[str, str]]) -> web.StreamResponse:
        """A WebSocket (exec, attach, consoles of extension resources): the extension's
        handshake first, with the client's subprotocols, then messages relayed both ways."""
        assert self._session is not None
        ref = service_ref(apiservice) or {}
        protocols = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
        # The handshake headers are the client library's to write for the second hop.
        hdrs = [(k, v) for k, v in headers if not k.lower().startswith("sec-websocket-")]
        try:
            upstream = await self._session.ws_connect(
                url, headers=hdrs, protocols=protocols, ssl=self._context_for(apiservice.get("spec") or {}),
                server_hostname=_service_host(ref), autoping=False, max_msg_size=0,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=10.0))
        except aiohttp.WSServerHandshakeError as e:
            return _plain(e.status if e.status >= 400 else 502, f"Error trying to reach service: {e.message}")
        except (aiohttp.ClientError, OSError, ssl.SSLError, TimeoutError) as e:
            log.warning("proxying a websocket to APIService %s: %s", meta.name(apiservice), e)
            return _plain(503, f"Error trying to reach service: {e}")
        down = web.WebSocketResponse(protocols=[upstream.protocol] if upstream.protocol else (), autoping=False,
                                     max_msg_size=0)
        try:
            await down.prepare(request)
            from kubelite.streams.wsrelay import copy_messages  # the streams package only when one is relayed
            relays = [asyncio.ensure_future(copy_messages(upstream, down)),
                      asyncio.ensure_future(copy_messages(down, upstream))]
            _, pending = await asyncio.wait(relays, return_when=asyncio.FIRST_COMPLETED)
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        finally:
            await upstream.close()
            await down.close()
        return down


def _service_host(ref: Obj) -> str:
    """The name the extension's serving certificate must carry: <service>.<namespace>.svc."""
    return f"{ref.get('name', '')}.{ref.get('namespace', '')}.svc"


def _plain(code: int, text: str) -> web.Response:
    """An error as Go's http.Error writes it (what upstream's proxy answers)."""
    return web.Response(status=code, text=text + "\n", content_type="text/plain",
                        headers={"X-Content-Type-Options": "nosniff"})


def forward_headers(incoming: Any, user: User | None) -> list[tuple[str, str]]:
    """The client's headers minus connection and identity headers, plus the authenticated
    user in X-Remote-User, X-Remote-Uid, X-Remote-Group and X-Remote-Extra-<key> (key
    URL-escaped)."""
    out: list[tuple[str, str]] = []
    for k, v in incoming.items():
        lk = k.lower()
        if lk in _HOP or lk.startswith(_IDENTITY_PREFIXES):
            continue
        out.append((k, v))
    if user is not None:
        out.append(("X-Remote-User", user.name))
        if user.uid:
            out.append(("X-Remote-Uid", user.uid))
        out += [("X-Remote-Group", g) for g in user.groups]
        for key, values in sorted((user.extra or {}).items()):
            out += [(f"X-Remote-Extra-{quote(key, safe='')}", v) for v in values]
    return out
