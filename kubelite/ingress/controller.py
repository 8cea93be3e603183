"""The built-in ingress controller: serves the Ingresses of class ``kubelite``.

Like the Traefik that k3s ships, it is an API client: informers on Ingresses,
IngressClasses, Services, EndpointSlices and Secrets feed a routing table
(``routes.RouteTable``), SNI certificates (``tls.SNIStore``) and an endpoint index; an
HTTP and an HTTPS listener (aiohttp) proxy each request to a ready endpoint of the
matched Service port; a work queue writes ``status.loadBalancer.ingress`` (the node's
address, as k3s's servicelb does) on every Ingress it serves.

Which Ingresses: those whose ``spec.ingressClassName`` (or the older
``kubernetes.io/ingress.class`` annotation) names a class with our controller name, and
those naming no class while one of our classes is the default.
"""
from __future__ import annotations

import asyncio
import copy
import errno
import itertools
import logging
import os
from typing import Any

import aiohttp
from aiohttp import web
from yarl import URL

from kubelite.api.resources import ENDPOINTSLICES, INGRESSCLASSES, INGRESSES, SECRETS, SERVICES
from kubelite.api.validation_ingress import CLASS_ANNOTATION, DEFAULT_CLASS_ANNOTATION
from kubelite.client.errors import NotFound
from kubelite.client.informer import InformerFactory
from kubelite.client.protocols import APIClient
from kubelite.client.workqueue import WorkQueue, process_until
from kubelite.ingress.routes import Backend, RouteTable, normalize_host
from kubelite.ingress.tls import SNIStore
from kubelite.streams.wsrelay import WebSocket, copy_messages

Obj = dict[str, Any]
log = logging.getLogger("kubelite.ingress")

CONTROLLER_NAME = "kubelite.dev/ingress"
CLASS_NAME = "kubelite"
ROOT_HTTP_PORT, ROOT_HTTPS_PORT = 80, 443
FALLBACK_HTTP_PORT, FALLBACK_HTTPS_PORT = 10080, 10443
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
# Headers that belong to one connection, never forwarded (RFC 9110 section 7.6.1).
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                        "trailers", "transfer-encoding", "upgrade", "proxy-connection"})


def class_of(ing: Obj) -> str | None:
    """The class an Ingress names: the field, else the old annotation, else None."""
    cls = (ing.get("spec") or {}).get("ingressClassName")
    if cls is not None:
        return str(cls)
    ann = ((ing.get("metadata") or {}).get("annotations") or {}).get(CLASS_ANNOTATION)
    return None if ann is None else str(ann)


def served(ing: Obj, classes: list[Obj]) -> bool:
    """Whether our controller serves this Ingress, given every IngressClass."""
    ours = [c for c in classes if (c.get("spec") or {}).get("controller") == CONTROLLER_NAME]
    cls = class_of(ing)
    if cls is not None:
        return any(c["metadata"]["name"] == cls for c in ours)
    return any(((c.get("metadata") or {}).get("annotations") or {}).get(DEFAULT_CLASS_ANNOTATION) == "true"
               for c in ours)


class IngressController:
    """Informers, the routing state, the two listeners and the status writer."""

    def __init__(self, client: APIClient, *, node_ip: str, listen: str, http_port: int, https_port: int,
                 tls_dir: str):
        self.client = client
        self.node_ip = node_ip
        self.listen = listen
        self.http_port, self.https_port = http_port, https_port
        self.factory = InformerFactory(client)
        self.ingresses = self.factory.informer(INGRESSES)
        self.classes = self.factory.informer(INGRESSCLASSES)
        self.services = self.factory.informer(SERVICES)
        self.slices = self.factory.informer(ENDPOINTSLICES)
        self.secrets = self.factory.informer(SECRETS)
        self.sni = SNIStore(tls_dir)
        self.queue = WorkQueue("ingress-status")
        self._table: RouteTable | None = None
        self._slices_by_service: dict[tuple[str, str], list[Obj]] | None = None
        self._tls_stale = True
        self._tls_wake = asyncio.Event()
        self._turn = itertools.count()
        self._session: aiohttp.ClientSession | None = None
        self._runners: list[web.AppRunner] = []
        self.bound: dict[str, int] = {}  # "http"/"https" -> the port actually listened on
        self.ingresses.add_handler(self._ingress_changed, lambda _o, n: self._ingress_changed(n),
                                   self._ingress_changed)
        self.classes.add_handler(self._class_changed, lambda _o, _n: self._class_changed(_n), self._class_changed)
        self.slices.add_handler(self._slices_changed, lambda _o, _n: self._slices_changed(_n), self._slices_changed)
        self.secrets.add_handler(self._secret_changed, lambda _o, _n: self._secret_changed(_n),
                                 self._secret_changed)

    # -- informer handlers ----------------------------------------------------------
    def _ingress_changed(self, ing: Obj) -> None:
        self._table = None
        self._tls_stale = True
        self._tls_wake.set()
        md = ing.get("metadata") or {}
        self.queue.add(f"{md.get('namespace')}/{md.get('name')}")

    def _class_changed(self, _cls: Obj) -> None:
        # Which Ingresses we serve may have changed: all of them are looked at again.
        self._table = None
        self._tls_stale = True
        for ing in self.ingresses.list():
            self._ingress_changed(ing)

    def _slices_changed(self, _eps: Obj) -> None:
        self._slices_by_service = None

    def _secret_changed(self, _secret: Obj) -> None:
        self._tls_stale = True
        self._tls_wake.set()

    # -- routing state --------------------------------------------------------------
    def _served(self) -> list[Obj]:
        classes = self.classes.list()
        return [i for i in self.ingresses.list() if served(i, classes)]

    def table(self) -> RouteTable:
        """The routing table, rebuilt after any Ingress or IngressClass change."""
        if self._table is None:
            self._table = RouteTable.build(self._served())
        return self._table

    def _refresh_tls(self) -> None:
        if not self._tls_stale:
            return
        self._tls_stale = False
        entries: list[tuple[list[str], Obj | None]] = []
        for ing in sorted(self._served(), key=lambda i: i["metadata"].get("creationTimestamp") or ""):
            ns = ing["metadata"].get("namespace") or ""
            for t in (ing.get("spec") or {}).get("tls") or []:
                if t.get("secretName"):
                    entries.append((list(t.get("hosts") or []), self.secrets.get_by_name(ns, t["secretName"])))
        self.sni.update(entries)

    def endpoint(self, backend: Backend) -> tuple[str, int] | None:
        """A ready endpoint (address, port) of the backend's Service port, taken in turn."""
        svc = self.services.get_by_name(backend.namespace, backend.service)
        if svc is None:
            return None
        port_name: str | None = None
        for sp in (svc.get("spec") or {}).get("ports") or []:
            if (backend.port_number and sp.get("port") == backend.port_number) or \
                    (backend.port_name and sp.get("name") == backend.port_name):
                port_name = sp.get("name") or ""
                break
        if port_name is None:
            return None
        if self._slices_by_service is None:
            index: dict[tuple[str, str], list[Obj]] = {}
            for eps in self.slices.list():
                md = eps.get("metadata") or {}
                name = (md.get("labels") or {}).get(SERVICE_NAME_LABEL)
                if name:
                    index.setdefault((md.get("namespace") or "", name), []).append(eps)
            self._slices_by_service = index
        ready: list[tuple[str, int]] = []
        for eps in self._slices_by_service.get((backend.namespace, backend.service), []):
            port = next((p.get("port") for p in eps.get("ports") or [] if (p.get("name") or "") == port_name), None)
            if not port:
                continue
            for ep in eps.get("endpoints") or []:
                if (ep.get("conditions") or {}).get("ready") is False:
                    continue
                ready.extend((a, int(port)) for a in ep.get("addresses") or [])
        if not ready:
            return None
        ready.sort()
        return ready[next(self._turn) % len(ready)]

    # -- the proxy ------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Route one request and proxy it to a ready endpoint of its backend."""
        self._refresh_tls()
        host = normalize_host(request.headers.get("Host") or "")
        backend = self.table().match(host, request.path)
        if backend is None:
            return web.Response(status=404, text="404 page not found\n")
        if backend.resource:
            return web.Response(status=503, text=f"resource backend {backend.resource} is not supported\n")
        target = self.endpoint(backend)
        if target is None:
            return web.Response(status=503, text="no available server\n")
        addr, port = target
        hostport = f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP]
        peer = request.remote or ""
        prior = request.headers.get("X-Forwarded-For")
        headers = [(k, v) for k, v in headers if not k.lower().startswith("x-forwarded-") and k.lower() != "x-real-ip"]
        scheme = "https" if request.transport is not None and request.transport.get_extra_info("sslcontext") else "http"
        local = request.transport.get_extra_info("sockname") if request.transport is not None else None
        headers += [("X-Forwarded-For", f"{prior}, {peer}" if prior else peer),
                    ("X-Forwarded-Host", request.headers.get("Host") or host),
                    ("X-Forwarded-Proto", scheme), ("X-Real-Ip", peer)]
        if local:
            headers.append(("X-Forwarded-Port", str(local[1])))
        assert self._session is not None
        if (request.headers.get("Upgrade") or "").lower() == "websocket":
            return await self._websocket(request, hostport, headers)
        body = request.content if request.body_exists else None
        try:
            # encoded=True: the request target goes on byte for byte (no re-quoting of %2F and the like).
            target_url = URL(f"http://{hostport}{request.raw_path}", encoded=True)
            async with self._session.request(request.method, target_url,
                                             headers=headers, data=body, allow_redirects=False) as upstream:
                out = web.StreamResponse(status=upstream.status, reason=upstream.reason)
                for k, v in upstream.headers.items():
                    if k.lower() not in HOP_BY_HOP and k.lower() != "content-length":
                        out.headers.add(k, v)
                if upstream.content_length is not None:
                    out.content_length = upstream.content_length
                await out.prepare(request)
                async for chunk in upstream.content.iter_chunked(65536):
                    await out.write(chunk)
                await out.write_eof()
                return out
        except (TimeoutError, aiohttp.ClientError, OSError) as e:
            log.info("ingress: %s %s%s -> %s: %s", request.method, host, request.path, hostport, e)
            return web.Response(status=502, text="bad gateway\n")

    async def _websocket(self, request: web.Request, hostport: str, headers: list[tuple[str, str]]) -> web.StreamResponse:
        """Proxy a WebSocket: connect to the backend first, then relay messages both ways."""
        assert self._session is not None
        protocols = [p.strip() for p in (request.headers.get("Sec-WebSocket-Protocol") or "").split(",") if p.strip()]
        fwd = [(k, v) for k, v in headers if not k.lower().startswith("sec-websocket-")]
        try:
            upstream = await self._session.ws_connect(URL(f"http://{hostport}{request.raw_path}", encoded=True),
                                                      headers=fwd, protocols=protocols, autoping=False,
                                                      max_msg_size=0)
        except aiohttp.WSServerHandshakeError as e:
            return web.Response(status=e.status or 502, text="websocket handshake refused by the backend\n")
        except (aiohttp.ClientError, OSError, TimeoutError):
            return web.Response(status=502, text="bad gateway\n")
        client = web.WebSocketResponse(protocols=[upstream.protocol] if upstream.protocol else (), autoping=False,
                                       max_msg_size=0)
        await client.prepare(request)

        async def relay(src: WebSocket, dst: WebSocket) -> None:
            await copy_messages(src, dst)
            await dst.close(code=src.close_code or 1000)
        try:
            await asyncio.gather(relay(client, upstream), relay(upstream, client))
        except (aiohttp.ClientError, ConnectionError):
            pass
        finally:
            await upstream.close()
            await client.close()
        return client

    async def _serve(self, name: str, port: int, fallback: int, root_port: int, tls: bool) -> None:
        app = web.Application(client_max_size=0)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        self._runners.append(runner)
        if port:
            choices = [port]
        else:
            choices = ([root_port] if os.geteuid() == 0 else []) + [fallback, 0]
        ctx = self.sni.server_context() if tls else None
        for i, p in enumerate(choices):
            site = web.TCPSite(runner, self.listen, p, ssl_context=ctx, reuse_address=True)
            try:
                await site.start()
            except OSError as e:
                if i + 1 < len(choices) and e.errno in (errno.EADDRINUSE, errno.EACCES):
                    continue
                raise
            self.bound[name] = int(runner.addresses[-1][1])
            log.info("ingress: %s listener on %s:%d", name, self.listen, self.bound[name])
            print(f"kubelite ingress {name} listening on {self.listen}:{self.bound[name]}", flush=True)
            return

    # -- status -----------------------------------------------------------------------
    async def sync_status(self, key: str) -> None:
        """Write the node's address into the load balancer status of an Ingress we serve."""
        ns, _, name = key.partition("/")
        ing = self.ingresses.get_by_name(ns, name)
        if ing is None or not served(ing, self.classes.list()):
            return
        want = [{"ip": self.node_ip}]
        if ((ing.get("status") or {}).get("loadBalancer") or {}).get("ingress") == want:
            return
        new = copy.deepcopy(ing)
        new["status"] = {"loadBalancer": {"ingress": want}}
        try:
            await self.client.resource(INGRESSES).update_status(new)
        except NotFound:
            return

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop``."""
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=512, keepalive_timeout=60),
            cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))
        self.factory.start()
        try:
            await self.factory.wait_synced()
            self._refresh_tls()
            await self._serve("http", self.http_port, FALLBACK_HTTP_PORT, ROOT_HTTP_PORT, tls=False)
            await self._serve("https", self.https_port, FALLBACK_HTTPS_PORT, ROOT_HTTPS_PORT, tls=True)
            tls_task = asyncio.create_task(self._tls_loop(stop))
            try:
                await process_until(self.queue, self.sync_status, stop)
            finally:
                tls_task.cancel()
                await asyncio.gather(tls_task, return_exceptions=True)
        finally:
            for runner in self._runners:
                await runner.cleanup()
            await self._session.close()
            await self.factory.stop()

    async def _tls_loop(self, stop: asyncio.Event) -> None:
        # The SNI callback runs inside the handshake and may not wait: certificates are
        # reloaded here, shortly after a Secret or an Ingress changes.
        while not stop.is_set():
            await self._tls_wake.wait()
            self._tls_wake.clear()
            self._refresh_tls()
