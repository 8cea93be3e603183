"""The API server: HTTPS, authentication, routing to discovery and resource verbs."""
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec
from multidict import CIMultiDict

from kubelite.api import errors
from kubelite.api.resources import CUSTOMRESOURCEDEFINITIONS, lookup
from kubelite.apiextensions.info import CustomResourceInfo
from kubelite.apiextensions.manager import CRDManager
from kubelite.apiserver import admission, discovery, health, limits, subresources, verbs, watch
from kubelite.apiserver import handlers as h
from kubelite.apiserver import negotiation as neg
from kubelite.apiserver.aggregator.local import PROXY_CLIENT_CN, authentication_data
from kubelite.apiserver.aggregator.manager import Aggregator
from kubelite.apiserver.allocators import ServiceAllocator
from kubelite.apiserver.audit import AuditLog
from kubelite.apiserver.audit import now as audit_now
from kubelite.apiserver.handlers import Target, parse_path, qbool
from kubelite.apiserver.ingressclass import DefaultIngressClass
from kubelite.apiserver.lookups import Lookups
from kubelite.apiserver.nodecerts import CertSigner
from kubelite.apiserver.registry import Registry
from kubelite.apiserver.security import Security
from kubelite.apiserver.tokens import DEFAULT_ISSUER, TokenIssuer, load_or_create_key
from kubelite.apiserver.webhooks import Webhooks, begin_request, finish_request
from kubelite.proxy.ports import port_free
from kubelite.storage.admission import Lister as StorageLister
from kubelite.storage.admission import storage_admission
from kubelite.store.base import Store, StoreUnavailable

log = logging.getLogger("kubelite.apiserver")

# /cacerts: the cluster CA bundle, public by nature, for agents that pin it by hash (k3s).
PUBLIC_PATHS = ("/healthz", "/livez", "/readyz", "/version", "/cacerts")
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
CUSTOM_PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml")


@dataclass
class APIServerConfig:
    """How the API server is reached and whom it trusts."""

    bind_address: str = "127.0.0.1"
    port: int = 6443
    service_cidr: str = "127.96.0.0/16"
    tls_cert: str | None = None
    tls_key: str | None = None
    client_ca: str | None = None
    token_file: str | None = None
    advertise_address: str = "127.0.0.1"
    limits: limits.LimitsConfig = field(default_factory=limits.LimitsConfig)
    # Service-account tokens: the signing key file (None: a key for this process only) and
    # the issuer named in tokens (also the audience the API server accepts by default).
    service_account_key: str | None = None
    service_account_issuer: str = DEFAULT_ISSUER
    # The client certificate the aggregator presents to extension API servers (upstream's
    # --proxy-client-cert-file / --proxy-client-key-file); None: none.
    proxy_client_cert: str | None = None
    proxy_client_key: str | None = None
    audit: AuditLog | None = None  # --audit-policy-file / --audit-log-path (audit.py); None: no audit log


Handler = Callable[[web.Request, Target], Awaitable[web.StreamResponse]]


class APIServer:
    """Owns the store (through the registry) and serves the Kubernetes API."""

    def __init__(self, store: Store, config: APIServerConfig, *, cert_signer: CertSigner | None = None):
        self.config = config
        self.store = store
        self.registry = Registry(store, ServiceAllocator(config.service_cidr, port_free=port_free, store=store))
        # CustomResourceDefinitions: their admission, and the dynamic part of the catalogue.
        self.crds = CRDManager(self.registry)
        self.registry.admission.append(self.crds.admit)
        self.registry.admission.append(DefaultIngressClass(self.registry).admit)
        # What creates read on every request (Namespaces, ServiceAccounts, PriorityClasses,
        # quotas, limit ranges), kept in memory from the store's watch.
        self.lookups = Lookups(store)
        self.registry.lookups = self.lookups
        admission.install(self.registry, self.lookups)  # LimitRanger, Priority, ResourceQuota
        # DefaultStorageClass and StorageObjectInUseProtection.
        self.registry.admission.append(storage_admission(StorageLister(self.registry.list)))
        # API aggregation: APIServices, their availability, and the proxy to extension servers.
        proxy_cert = (config.proxy_client_cert, config.proxy_client_key) \
            if config.proxy_client_cert and config.proxy_client_key else None
        self.aggregator = Aggregator(self.registry, client_cert=proxy_cert, auth_data=self._auth_data(config))
        self.crds.on_change.append(self.aggregator.catalogue_changed)
        self.security = self._security(cert_signer)
        # Admission webhooks: last among the mutating hooks, first among the validating ones.
        self.webhooks = Webhooks(self.registry)
        self.webhooks.install()
        self.ready = asyncio.Event()
        # Limits (connections, timeouts, requests in flight): see limits.py.  Their
        # middleware runs inside authentication, which it needs for the masters exemption.
        lim = config.limits
        self.connections = limits.ConnectionTable(lim.max_connections or limits.connection_budget(limits.nofile_limit()),
                                                  lim.max_connections_per_address)
        self.inflight = limits.InFlight(lim, self.connections)
        self._listener: limits.Listener | None = None
        self.app = web.Application(client_max_size=neg.MAX_BODY + 1024,
                                   middlewares=[self._middleware, self.inflight.middleware, self._authorize])
        self.app["registry"] = self.registry
        self.audit = config.audit
        if self.audit is not None:
            self.app.on_response_prepare.append(self._audit_prepare)
        self.app["apiserver"] = self
        self.closing = asyncio.Event()  # set on stop: open watches end
        self.app["closing"] = self.closing
        # ``ready`` is set once the bootstrap objects exist (server.py runs the bootstrap).
        self.health = health.Health(store, self.ready, self.closing)
        self.app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner: web.AppRunner | None = None
        self.extra_routes: dict[str, Handler] = {}  # subresource name -> handler (node proxy)
        # Non-resource path -> handler, for what server.py adds (the test fixture's reset).
        self.extra_paths: dict[str, Callable[[web.Request], Awaitable[web.StreamResponse]]] = {}
        self.openapi: Callable[[web.Request], Awaitable[web.StreamResponse]] | None = None
        self.metrics: Handler | None = None  # metrics.k8s.io (kubelite.metrics), when running

    @staticmethod
    def _auth_data(config: APIServerConfig) -> dict[str, str] | None:
        """What extension servers need to trust our proxy: the client CA (which also signs
        the front-proxy certificate) and the header names; None without both."""
        if not (config.client_ca and config.proxy_client_cert):
            return None
        with open(config.client_ca) as f:
            ca = f.read()
        return authentication_data(ca, [PROXY_CLIENT_CN])

    # -- authentication and authorization ------------------------------------------------
    def _security(self, cert_signer: CertSigner | None) -> Security:
        """Authentication, authorization and the service-account token issuer."""
        cfg = self.config
        key = (load_or_create_key(cfg.service_account_key) if cfg.service_account_key
               else ec.generate_private_key(ec.SECP256R1()))
        issuer = TokenIssuer(key, issuer=cfg.service_account_issuer,
                             jwks_uri=f"https://{cfg.advertise_address}:{cfg.port}/openid/v1/jwks")
        return Security(self.registry, token_file=cfg.token_file, issuer=issuer, cert_signer=cert_signer)

    # -- middleware ----------------------------------------------------------------------
    # Upstream's order: authentication (and impersonation), then the in-flight limits, then
    # authorization, then the handler.  Errors from the inner two reach _middleware's catch.
    @web.middleware
    async def _authorize(self, request: web.Request,
                         handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        user = request.get("user")
        if user is not None:
            await self.security.authorize(request, user)
        return await handler(request)

    @web.middleware
    async def _middleware(self, request: web.Request,
                          handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        if self.audit is None:
            return await self._serve(request, handler)
        request["audit_received"] = audit_now()
        response: web.StreamResponse | None = None
        try:
            response = await self._serve(request, handler)
            return response
        finally:
            # A watch the client closed ends in an exception, but it was answered: its
            # ResponseComplete goes with the response that started streaming.
            answered = response if response is not None else request.get("audit_stream")
            if answered is not None:
                self.audit.completed(request, answered)

    async def _audit_prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        """Headers about to go out: every answer names its audit ID; a streamed one (a watch)
        has its ResponseStarted stage now."""
        assert self.audit is not None
        if "audit" not in request:
            self.audit.received(request)
        response.headers["Audit-Id"] = request["audit"].audit_id
        if not isinstance(response, web.Response):
            request["audit_stream"] = response
            self.audit.started(request, response)

    async def _serve(self, request: web.Request,
                     handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        path = request.path
        try:
            if not any(path == p or path.startswith(p + "/") for p in PUBLIC_PATHS):
                request["user"] = await self.security.authenticate(request)  # 401 (403: impersonation)
            if self.audit is not None:
                self.audit.received(request)
            warnings = begin_request()  # admission webhooks' warnings, sent as Warning headers
            response: web.StreamResponse | None = None
            try:
                response = await handler(request)
                return response
            finally:
                finish_request(warnings, response)
                self.security.done(request)
        except errors.StatusError as e:
            return neg.respond_error(e)
        except web.HTTPException:
            raise
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except StoreUnavailable as e:
            # etcd is down or unreachable: every request says so; no traceback for each.
            log.warning("%s %s: %s", request.method, path, e)
            return neg.respond_error(errors.internal(str(e)))
        except RecursionError:
            # Decoding bounds nesting; only a request can still nest deeply enough for this.
            log.warning("%s %s: request nested too deeply", request.method, path)
            return neg.respond_error(errors.bad_request("the request is nested too deeply"))
        except Exception as e:  # the server's own fault: a traceback in the log, a Status out
            log.exception("%s %s failed", request.method, path)
            return neg.respond_error(errors.internal(str(e)))

    # -- routing -------------------------------------------------------------------------
    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        if path.split("/")[1] in health.ENDPOINTS:
            return await self.health.handle(request, path)
        if path == "/version":
            # Indented, as kube-apiserver writes it (curl through `kubectl proxy` shows it).
            return web.Response(text=json.dumps(discovery.version_info(), indent=2),
                                content_type="application/json")
        if path == "/cacerts" and self.config.client_ca:
            return web.Response(body=await asyncio.to_thread(Path(self.config.client_ca).read_bytes),
                                content_type="text/plain")
        if path == "/api":
            return discovery.discovery_response(request, True, f"{self.config.advertise_address}:{self.config.port}")
        if path == "/apis":
            return discovery.discovery_response(request, False, "", self.aggregator.extra_groups())
        own = self.security.path_route(path) or self.extra_paths.get(path)
        if own is not None:
            return await own(request)
        if path.startswith("/openapi/") or path in ("/openapi", "/swagger-2.0.0.pb-v1"):
            if self.openapi is not None:
                return await self._openapi(request, path, self.openapi)
            raise errors.no_such_path()
        parts = [p for p in path.split("/") if p]
        if len(parts) >= 3 and parts[0] == "apis":
            remote = self.aggregator.remote(parts[1], parts[2])
            if remote is not None:
                return await self.aggregator.proxy(request, remote)
        if (parts[:2] == ["api", "v1"] and len(parts) == 2) or (parts[:1] == ["apis"] and len(parts) in (2, 3)):
            neg.wants(request, tables=False)  # discovery documents: 406 for an Accept we cannot answer
        if parts[:2] == ["api", "v1"] and len(parts) == 2:
            return neg.respond(discovery.resource_list("", "v1"))
        if parts and parts[0] == "apis" and len(parts) == 2:
            g = discovery.api_group(parts[1]) or self.aggregator.api_group(parts[1])
            if g is None:
                raise errors.no_such_path()
            return neg.respond(g)
        if parts and parts[0] == "apis" and len(parts) == 3:
            rl = discovery.resource_list(parts[1], parts[2])
            if rl is None:
                raise errors.no_such_path()
            return neg.respond(rl)
        legacy_watch = False
        if len(parts) > 2 and (parts[:3] == ["api", "v1", "watch"]
                               or (parts[0] == "apis" and len(parts) > 3 and parts[3] == "watch")):
            legacy_watch = True
            cut = 2 if parts[0] == "api" else 3
            path = "/" + "/".join(parts[:cut] + parts[cut + 1:])
        t = parse_path(request.path if not legacy_watch else path)
        if t is None:
            raise errors.no_such_path()
        return await self._resource(request, t, legacy_watch)

    async def _openapi(self, request: web.Request, path: str,
                       local: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        """OpenAPI v3 with the extension servers' group/versions: listed in the root and
        their documents fetched from the extension, as upstream's aggregator does."""
        parts = path.split("/")  # "", "openapi", "v3", "apis", group, version
        if len(parts) == 6 and parts[2:4] == ["v3", "apis"]:
            remote = self.aggregator.remote(parts[4], parts[5])
            if remote is not None:
                return await self.aggregator.proxy(request, remote)
        extra = self.aggregator.openapi_v3_paths() if path == "/openapi/v3" else {}
        if not extra:
            return await local(request)
        # The local root without the client's validator: the merged document has its own ETag.
        headers = CIMultiDict((k, v) for k, v in request.headers.items() if k.lower() != "if-none-match")
        resp = await local(request.clone(headers=headers))
        if not isinstance(resp, web.Response) or resp.status != 200 or not isinstance(resp.body, bytes):
            return resp
        doc = orjson.loads(resp.body)
        doc.setdefault("paths", {}).update(extra)
        body = orjson.dumps(doc)
        etag = '"' + hashlib.sha512(body).hexdigest().upper() + '"'
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        return web.Response(body=body, content_type="application/json", headers={"ETag": etag})

    async def _resource(self, request: web.Request, t: Target, legacy_watch: bool) -> web.StreamResponse:
        m = request.method
        info = t.info
        sub = t.subresource
        own = self.security.route(t, m)
        if own is not None:
            return await own(request, t)
        if sub in self.extra_routes:
            return await self.extra_routes[sub](request, t)
        if info.group == "metrics.k8s.io":
            if self.metrics is None:
                raise errors.service_unavailable("the metrics API is not running")
            return await self.metrics(request, t)
        if sub in ("log", "exec", "attach", "portforward", "proxy"):
            raise errors.service_unavailable(f"{sub} is not available: no node agent proxy is configured")
        if sub == "scale":
            return await subresources.scale(request, t)
        if sub == "binding" and m == "POST":
            return await subresources.binding(request, t)
        if info.plural == "bindings" and m == "POST":
            pods = lookup("", "v1", "pods")
            if pods is None:
                raise errors.no_such_path()
            return await subresources.binding(request, Target(pods, t.namespace, "", "binding", ""))
        if sub == "eviction" and m == "POST":
            return await subresources.eviction(request, t)
        if sub == "finalize" and m == "PUT":
            return await subresources.finalize(request, t)
        if sub and sub != "status":
            raise errors.method_not_allowed()
        verb = self._verb(m, t, request, legacy_watch)
        if verb not in info.verbs and not (sub == "status"):
            raise errors.method_not_allowed()
        if verb == "watch":
            return await watch.watch(request, t)
        if isinstance(info, CustomResourceInfo) and verb == "patch" and \
                request.headers.get("Content-Type", "").split(";")[0].strip().lower() == STRATEGIC_PATCH:
            # Custom resources have no patch strategies to merge by (upstream: 415 too).
            raise errors.unsupported_media_type(STRATEGIC_PATCH, CUSTOM_PATCH_TYPES)
        if self.webhooks.source.is_configuration(info) and verb not in ("get", "list"):
            try:
                return await _VERBS[verb](request, t)
            finally:
                await self.webhooks.changed(info)  # the next request sees the new configuration
        if info is not CUSTOMRESOURCEDEFINITIONS:
            return await _VERBS[verb](request, t)
        if verb == "delete" and not h.dry_run(request):
            await self.crds.before_delete(t.name)
        try:
            return await _VERBS[verb](request, t)
        finally:
            if verb not in ("get", "list"):
                await self.crds.sync()  # the CRD's resources are served (or gone) when this returns

    @staticmethod
    def _verb(method: str, t: Target, request: web.Request, legacy_watch: bool) -> str:
        if method == "GET":
            if legacy_watch or qbool(request, "watch"):
                return "watch"
            return "get" if t.name else "list"
        if method == "POST" and not t.name:
            return "create"
        if method == "PUT" and t.name:
            return "update"
        if method == "PATCH" and t.name:
            return "patch"
        if method == "DELETE":
            return "delete" if t.name else "deletecollection"
        raise errors.method_not_allowed()

    # -- serving -------------------------------------------------------------------------
    def ssl_context(self) -> ssl.SSLContext | None:
        """TLS with optional client certificates; ALPN offers only http/1.1 (no h2)."""
        if not self.config.tls_cert:
            return None
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.config.tls_cert, self.config.tls_key)
        if self.config.client_ca:
            ctx.load_verify_locations(self.config.client_ca)
            ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx

    async def start(self) -> None:
        """Listen on the configured address (raises OSError if the port is taken)."""
        self._runner = web.AppRunner(self.app, access_log=None, handler_cancellation=True,
                                     shutdown_timeout=1.0)
        await self._runner.setup()
        assert self._runner.server is not None  # set by setup()
        # Our own accept loop instead of a TCPSite: it sees connections before their TLS
        # handshake, which the connection caps need (see limits.py).
        self._listener = limits.Listener(self._runner.server, self.connections, self.ssl_context(),
                                         self.config.limits.header_timeout)
        try:
            await self._listener.start(self.config.bind_address, self.config.port, backlog=1024)
        except BaseException:
            self._listener = None
            await self._runner.cleanup()
            self._runner = None
            raise
        self.security.start()
        self.lookups.start()
        await self.crds.sync()
        await self.webhooks.start()
        await self.aggregator.start()

    async def stop(self) -> None:
        """Stop serving (open watches are closed)."""
        self.closing.set()
        await self.aggregator.stop()
        await self.crds.stop()
        await self.security.stop()
        await self.lookups.stop()
        await self.webhooks.stop()
        if self._listener is not None:
            await self._listener.stop()
            self._listener = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.audit is not None:
            self.audit.close()  # after the last request: nothing writes to it any more


_VERBS: dict[str, Handler] = {
    "get": verbs.get,
    "list": verbs.list_,
    "create": verbs.create,
    "update": verbs.update,
    "patch": verbs.patch,
    "delete": verbs.delete,
    "deletecollection": verbs.delete_collection,
}
