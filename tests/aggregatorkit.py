"""An extension API server for aggregation tests: upstream's sample-apiserver API
(``wardle.example.com/v1alpha1`` flunders) served by aiohttp over TLS on 127.0.0.1, with a
CA made here, trusting request headers only from a client certificate the cluster's CA
signed (as a real extension server trusts the aggregator's front-proxy certificate)."""
from __future__ import annotations

import asyncio
import base64
import datetime as dt
import ipaddress
import json
import ssl
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

GROUP = "wardle.example.com"
VERSION = "v1alpha1"
GV = f"{GROUP}/{VERSION}"
PROXY_CN = "front-proxy-client"

RESOURCE_LIST = {
    "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": GV,
    "resources": [
        {"name": "flunders", "singularName": "flunder", "namespaced": True, "kind": "Flunder",
         "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"], "shortNames": ["fl"]},
        {"name": "flunders/status", "singularName": "", "namespaced": True, "kind": "Flunder",
         "verbs": ["get", "patch", "update"]},
    ],
}


OPENAPI_V3 = {
    "openapi": "3.0.0", "info": {"title": "Wardle", "version": VERSION},
    # kubectl explain finds a kind's schema through the read operation of its resource path.
    "paths": {f"/apis/{GROUP}/{VERSION}/namespaces/{{namespace}}/flunders/{{name}}": {"get": {
        "operationId": "readWardleV1alpha1NamespacedFlunder", "x-kubernetes-action": "get",
        "x-kubernetes-group-version-kind": {"group": GROUP, "kind": "Flunder", "version": VERSION},
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": {
            "$ref": "#/components/schemas/com.example.wardle.v1alpha1.Flunder"}}}}}}}},
    "components": {"schemas": {"com.example.wardle.v1alpha1.Flunder": {
        "description": "A Flunder is the sample API server's example resource.", "type": "object",
        "properties": {
            "apiVersion": {"type": "string", "description": "The versioned schema of this object."},
            "kind": {"type": "string", "description": "The REST resource this object represents."},
            "metadata": {"type": "object", "description": "The object's metadata."},
            "spec": {"type": "object", "description": "What the flunder should be.",
                     "properties": {"reference": {"type": "string", "description": "Another flunder's name."}}}},
        "x-kubernetes-group-version-kind": [{"group": GROUP, "kind": "Flunder", "version": VERSION}]}}},
}


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_tls(dns_name: str, directory: Path) -> tuple[bytes, Path, Path]:
    """A CA and a serving certificate for ``dns_name`` and 127.0.0.1: (CA PEM, cert, key)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("sample-api-ca")).issuer_name(_name("sample-api-ca"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name("sample-api")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(dns_name),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    cert_path, key_path = directory / "serving.crt", directory / "serving.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return ca.public_bytes(serialization.Encoding.PEM), cert_path, key_path


def _status(code: int, reason: str, message: str) -> web.Response:
    return web.json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                              "message": message, "reason": reason, "code": code}, status=code)


class SampleAPIServer:
    """Flunders in memory, every request recorded (method, path, headers, client CN)."""

    def __init__(self, service_host: str, cluster_ca: Path) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="sample-api-"))
        self.ca_pem, cert, key = make_tls(service_host, self.dir)
        self.ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ctx.load_cert_chain(str(cert), str(key))
        self.ctx.load_verify_locations(str(cluster_ca))
        self.ctx.verify_mode = ssl.CERT_OPTIONAL
        self.requests: list[dict[str, Any]] = []
        self.flunders: dict[tuple[str, str], dict] = {}
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    @property
    def ca_bundle(self) -> str:
        """The CA as an APIService's caBundle (base64 of the PEM)."""
        return base64.b64encode(self.ca_pem).decode()

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> SampleAPIServer:
        """Serve on a free port of 127.0.0.1."""
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self.ctx)
        await site.start()
        server = site._server
        assert server is not None and server.sockets
        self.port = server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        """Stop serving and end the thread (a server never started has nothing to stop)."""
        if not self._thread.is_alive():
            self._loop.close()
            return
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._runner = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    # -- serving -------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peercert") if request.transport else None
        cn = ""
        for rdn in (peer or {}).get("subject", ()):
            for k, v in rdn:
                if k == "commonName":
                    cn = v
        headers: dict[str, list[str]] = {}
        for k, v in request.headers.items():
            headers.setdefault(k.lower(), []).append(v)
        self.requests.append({"method": request.method, "path": request.path, "query": dict(request.query),
                              "headers": headers, "client_cn": cn})
        # A real extension server believes X-Remote-* only from the front proxy's certificate.
        if cn != PROXY_CN or not headers.get("x-remote-user"):
            return _status(401, "Unauthorized", "Unauthorized")
        parts = [p for p in request.path.split("/") if p]
        if parts == ["apis", GROUP, VERSION]:
            return web.json_response(RESOURCE_LIST)
        if parts == ["openapi", "v3", "apis", GROUP, VERSION]:
            return web.json_response(OPENAPI_V3)
        if len(parts) == 8 and parts[7] == "echo" and request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._echo(request)
        if len(parts) >= 6 and parts[:4] == ["apis", GROUP, VERSION, "namespaces"] and parts[5] == "flunders":
            ns = parts[4]
            name = parts[6] if len(parts) > 6 else ""
            if request.method == "POST" and not name:
                return await self._create(request, ns)
            if request.method == "GET" and name:
                obj = self.flunders.get((ns, name))
                if obj is None:
                    return _status(404, "NotFound", f'flunders.{GROUP} "{name}" not found')
                return web.json_response(obj)
            if request.method == "GET":
                return await self._list(request, ns)
        return _status(404, "NotFound", "the server could not find the requested resource")

    async def _echo(self, request: web.Request) -> web.WebSocketResponse:
        """A WebSocket subresource: each message comes back with "echo: " before it."""
        ws = web.WebSocketResponse(protocols=("echo.wardle.example.com",))
        await ws.prepare(request)
        async for msg in ws:
            if msg.type.name == "TEXT":
                await ws.send_str("echo: " + msg.data)
            elif msg.type.name == "BINARY":
                await ws.send_bytes(b"echo: " + msg.data)
        return ws

    async def _create(self, request: web.Request, ns: str) -> web.Response:
        obj = await request.json()
        md = obj.setdefault("metadata", {})
        md.update(namespace=ns, uid=str(uuid.uuid4()), resourceVersion=str(len(self.flunders) + 1),
                  creationTimestamp=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        self.flunders[(ns, md["name"])] = obj
        return web.json_response(obj, status=201)

    async def _list(self, request: web.Request, ns: str) -> web.StreamResponse:
        items = [o for (n, _), o in sorted(self.flunders.items()) if n == ns]
        if request.query.get("watch") in ("1", "true"):
            # A short watch: the current objects as ADDED events, one chunk each, then the end.
            resp = web.StreamResponse(headers={"Content-Type": "application/json"})
            await resp.prepare(request)
            for o in items:
                await resp.write(json.dumps({"type": "ADDED", "object": o}).encode() + b"\n")
            await resp.write_eof()
            return resp
        if "as=Table" in request.headers.get("Accept", ""):
            return web.json_response({
                "kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": "1"},
                "columnDefinitions": [{"name": "Name", "type": "string", "format": "name", "description": ""},
                                      {"name": "Created At", "type": "date", "format": "", "description": ""}],
                "rows": [{"cells": [o["metadata"]["name"], o["metadata"]["creationTimestamp"]],
                          "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                     "metadata": o["metadata"]}} for o in items]})
        return web.json_response({"kind": "FlunderList", "apiVersion": GV, "metadata": {"resourceVersion": "1"},
                                  "items": items})

    def seen(self, path_suffix: str) -> list[dict[str, Any]]:
        """The recorded requests whose path ends with ``path_suffix``."""
        return [r for r in self.requests if r["path"].endswith(path_suffix)]
