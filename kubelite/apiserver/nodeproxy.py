"""Subresources served by forwarding: pods/log, exec, attach, portforward (to the node
agent), pods/proxy and services/proxy (to a pod's address), nodes/proxy (to the agent).

The API server reaches a node agent at the node's InternalIP and
``status.daemonEndpoints.kubeletEndpoint.Port``, over HTTPS with the admin client
certificate — what kube-apiserver does with --kubelet-client-certificate.  Upgrade
requests (WebSocket, SPDY) are tunnelled byte for byte, so only the agent speaks the
streaming protocols.
"""
from __future__ import annotations

import logging
import ssl
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
from aiohttp import web

from kubelite.api import errors, meta
from kubelite.api.resources import ENDPOINTS, NODES, PODS, SERVICES
from kubelite.apiserver import handlers as h
from kubelite.apiserver.handlers import Target
from kubelite.apiserver.registry import Registry

log = logging.getLogger("kubelite.apiserver.nodeproxy")
Obj = dict[str, Any]

HOP_HEADERS = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
               "transfer-encoding", "upgrade", "host", "content-length", "authorization"}


class NodeProxy:
    """Forwards streaming and proxy subresources; installed into APIServer.extra_routes."""

    def __init__(self, admin_cert: str, admin_key: str):
        # A bare client context: nothing is verified, so loading the system's CA store (tens
        # of milliseconds of every server start) would buy nothing.
        self._client_ssl = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self._client_ssl.check_hostname = False
        self._client_ssl.verify_mode = ssl.CERT_NONE  # agents self-sign, as kubelets do by default
        self._client_ssl.load_cert_chain(admin_cert, admin_key)
        self._client_ssl.set_alpn_protocols(["http/1.1"])
        self._session: aiohttp.ClientSession | None = None

    @property
    def client_ssl(self) -> ssl.SSLContext:
        """The TLS context with the API server's client certificate for the agents."""
        return self._client_ssl

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10), auto_decompress=False)
        return self._session

    async def close(self) -> None:
        """Close pooled connections."""
        if self._session is not None:
            await self._session.close()

    def install(self, routes: dict) -> None:
        """Register handlers for the forwarded subresources."""
        routes["log"] = self.log
        routes["exec"] = self.stream
        routes["attach"] = self.stream
        routes["portforward"] = self.stream
        routes["proxy"] = self.proxy

    # -- helpers ------------------------------------------------------------------------
    async def _node_base(self, request: web.Request, node_name: str) -> str:
        reg = await h.registry_from(request)
        node = await reg.get(NODES, "", node_name)
        st = node.get("status") or {}
        addr = next((a["address"] for a in st.get("addresses") or [] if a.get("type") == "InternalIP"), None)
        port = ((st.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
        if not addr or not port:
            raise errors.service_unavailable(f"node {node_name} has no reachable agent endpoint")
        return f"https://{addr}:{port}"

    async def _pod(self, request: web.Request, t: Target) -> Obj:
        reg = await h.registry_from(request)
        return await reg.get(PODS, t.namespace, t.name)

    @staticmethod
    def _container(pod: Obj, requested: str) -> str:
        names = [c["name"] for c in pod["spec"].get("containers") or []]
        inits = [c["name"] for c in pod["spec"].get("initContainers") or []]
        if requested:
            if requested not in names + inits:
                raise errors.bad_request(f"container {requested} is not valid for pod {meta.name(pod)}")
            return requested
        if len(names) == 1:
            return names[0]
        default = meta.annotations_of(pod).get("kubectl.kubernetes.io/default-container")
        if default is not None and default in names:
            return default
        raise errors.bad_request(
            f"a container name must be specified for pod {meta.name(pod)}, choose one of: [{' '.join(names)}]")

    # -- pods/log -----------------------------------------------------------------------
    async def log(self, request: web.Request, t: Target) -> web.StreamResponse:
        """GET pods/NAME/log → the agent's containerLogs, streamed."""
        pod = await self._pod(request, t)
        container = self._container(pod, request.query.get("container", ""))
        node = pod["spec"].get("nodeName")
        if not node:
            raise errors.bad_request(f'container "{container}" in pod "{t.name}" is waiting to start: ContainerCreating')
        base = await self._node_base(request, node)
        q = {k: v for k, v in request.query.items() if k != "container"}
        url = f"{base}/containerLogs/{quote(t.namespace)}/{quote(t.name)}/{quote(container)}"
        if q:
            url += "?" + urlencode(q)
        try:
            upstream = await self.session.get(url, ssl=self._client_ssl)
        except aiohttp.ClientError as e:
            raise errors.service_unavailable(f"error dialing node {node}: {e}") from None
        try:
            if upstream.status >= 400:
                body = await upstream.read()
                return web.Response(status=upstream.status, body=body,
                                    content_type=upstream.content_type or "application/json")
            resp = web.StreamResponse(status=200, headers={"Content-Type": "text/plain"})
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            async for chunk in upstream.content.iter_any():
                await resp.write(chunk)
            await resp.write_eof()
            return resp
        finally:
            upstream.release()

    # -- exec / attach / portforward ----------------------------------------------------------
    async def stream(self, request: web.Request, t: Target) -> web.StreamResponse:
        """Upgrade requests: forwarded to the agent and tunnelled byte for byte."""
        from kubelite.apiserver.tunnel import tunnel_upgrade
        pod = await self._pod(request, t)
        phase = (pod.get("status") or {}).get("phase")
        node = pod["spec"].get("nodeName")
        if not node:
            raise errors.bad_request(f"pod {t.name} does not have a host assigned")
        if t.subresource in ("exec", "attach") and phase in ("Succeeded", "Failed"):
            raise errors.bad_request(f"cannot {t.subresource} into a container in a completed pod; current phase is {phase}")
        base = await self._node_base(request, node)
        query = _raw_query(request)
        if t.subresource == "portforward":
            path = f"/portForward/{quote(t.namespace)}/{quote(t.name)}"
        else:
            container = self._container(pod, request.query.get("container", ""))
            path = f"/{t.subresource}/{quote(t.namespace)}/{quote(t.name)}/{quote(container)}"
        target = base + path + (f"?{query}" if query else "")
        return await tunnel_upgrade(request, target, self._client_ssl)

    # -- proxy ------------------------------------------------------------------------------
    async def proxy(self, request: web.Request, t: Target) -> web.StreamResponse:
        """pods/NAME[:port]/proxy/…, services/[scheme:]NAME[:port]/proxy/…, nodes/NAME/proxy/…"""
        reg = await h.registry_from(request)
        scheme, name, port = _split_name(t.name)
        ssl_ctx: Any = False
        if t.info is PODS:
            pod = await reg.get(PODS, t.namespace, name)
            ip = (pod.get("status") or {}).get("podIP")
            if not ip:
                raise errors.service_unavailable(f"pod {name} has no IP")
            port = port or _first_container_port(pod) or "80"
            base = f"{scheme or 'http'}://{ip}:{port}"
        elif t.info is SERVICES:
            base = await self._service_backend(reg, t.namespace, name, scheme, port)
        elif t.info is NODES:
            base = await self._node_base(request, name)
            ssl_ctx = self._client_ssl
        else:
            raise errors.no_such_path()
        url = base + "/" + t.rest.lstrip("/")
        if _raw_query(request):
            url += "?" + _raw_query(request)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        body = await request.read() if request.can_read_body else None
        try:
            upstream = await self.session.request(request.method, url, headers=headers, data=body, ssl=ssl_ctx,
                                                  allow_redirects=False)
        except (aiohttp.ClientError, OSError) as e:
            raise errors.service_unavailable(f"error trying to reach service: {e}") from None
        try:
            resp = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for k, v in upstream.headers.items():
                if k.lower() not in HOP_HEADERS:
                    resp.headers.add(k, v)
            await resp.prepare(request)
            async for chunk in upstream.content.iter_any():
                await resp.write(chunk)
            await resp.write_eof()
            return resp
        finally:
            upstream.release()

    async def _service_backend(self, reg: Registry, ns: str, name: str, scheme: str, port: str) -> str:
        svc = await reg.get(SERVICES, ns, name)
        try:
            ep = await reg.get(ENDPOINTS, ns, name)
        except errors.StatusError:
            ep = {}
        ports = svc["spec"].get("ports") or []
        want = None
        for p in ports:
            if not port or str(p.get("port")) == port or p.get("name") == port:
                want = p
                break
        if want is None:
            raise errors.service_unavailable(f'no endpoints available for service "{name}"')
        for ss in ep.get("subsets") or []:
            for a in ss.get("addresses") or []:
                for epp in ss.get("ports") or []:
                    if epp.get("name", "") == want.get("name", "") or len(ss.get("ports") or []) == 1:
                        return f"{scheme or 'http'}://{a['ip']}:{epp['port']}"
        raise errors.service_unavailable(f'no endpoints available for service "{name}"')


def _raw_query(request: web.Request) -> str:
    """The query string exactly as the client encoded it."""
    return request.raw_path.partition("?")[2]


def _split_name(s: str) -> tuple[str, str, str]:
    """``[scheme:]name[:port]`` as in upstream's proxy subresource."""
    parts = s.split(":")
    if len(parts) == 1:
        return "", parts[0], ""
    if len(parts) == 2:
        if parts[0] in ("http", "https"):
            return parts[0], parts[1], ""
        return "", parts[0], parts[1]
    return parts[0], parts[1], parts[2]


def _first_container_port(pod: Obj) -> str:
    for c in pod["spec"].get("containers") or []:
        for p in c.get("ports") or []:
            return str(p.get("containerPort"))
    return ""
