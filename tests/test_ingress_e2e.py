"""Ingress end to end: the API with the real kubectl, and the built-in controller's traffic.

One server (process runtime: the bootcamp pods serve on 127.x addresses) with the ingress
listeners on free loopback ports; two Deployments (bootcamp v1 and v2) behind two
Services.  Requests go to 127.0.0.1 only, with the Host header (and SNI name) the rules
name.  Spec names follow upstream's test/e2e/network/ingress.go and ingressclass.go.
"""
from __future__ import annotations

import datetime as dt
import http.client
import json
import socket
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import KUBECTL_OLD, Server, create_namespace, free_port, start_server

V1 = "gcr.io/google-samples/kubernetes-bootcamp:v1"
V2 = "jocatalin/kubernetes-bootcamp:v2"


@pytest.fixture(scope="module")
def ing_cluster(tmp_path_factory):
    """A whole cluster whose ingress controller listens on free ports, with two Services."""
    tmp = tmp_path_factory.mktemp("ingress")
    http_port, https_port = free_port(), free_port()
    srv = start_server(tmp, "--ingress-http-port", str(http_port), "--ingress-https-port", str(https_port))
    srv.http_port, srv.https_port = http_port, https_port  # type: ignore[attr-defined]
    try:
        for name, image in (("web1", V1), ("web2", V2)):
            srv.kubectl("create", "deployment", name, f"--image={image}", check=True)
            srv.kubectl("expose", "deployment", name, "--port=80", "--target-port=8080", "--name", name, check=True)
        for name in ("web1", "web2"):
            srv.kubectl("wait", "--for=condition=available", f"deploy/{name}", "--timeout=90s", timeout=120, check=True)
        yield srv
    finally:
        srv.stop()


def _get(port: int, host: str, path: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Host": host})
        r = conn.getresponse()
        return r.status, r.read().decode(errors="replace")
    finally:
        conn.close()


def _routed(srv: Server, host: str, path: str, want: str) -> bool:
    status, body = _get(srv.http_port, host, path)  # type: ignore[attr-defined]
    return status == 200 and want in body


# --------------------------------------------------------------------------- API

def test_should_support_creating_ingress_api_operations(api_server, ns):
    """Create, get, list, watch, patch, update, /status and delete, as upstream's API spec does."""
    def ingress(name: str) -> str:
        return json.dumps({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                           "metadata": {"name": name, "labels": {"special-label": ns}},
                           "spec": {"defaultBackend": {"service": {"name": "default-backend",
                                                                   "port": {"number": 8080}}},
                                    "rules": [{"host": "foo.bar.com", "http": {"paths": [
                                        {"path": "/", "pathType": "Prefix",
                                         "backend": {"service": {"name": "test-backend", "port": {"number": 8080}}}}]}}]}})
    for name in ("ingress1", "ingress2", "ingress3"):
        api_server.kubectl("create", "-n", ns, "-f", "-", input=ingress(name), check=True)
    got = api_server.kjson("get", "ingress", "-n", ns, "ingress1")
    assert got["metadata"]["generation"] == 1
    assert got["status"] == {"loadBalancer": {}}
    listed = api_server.kjson("get", "ingresses.networking.k8s.io", "-n", ns, "-l", f"special-label={ns}")
    assert sorted(i["metadata"]["name"] for i in listed["items"]) == ["ingress1", "ingress2", "ingress3"]
    # A watch from the list's resourceVersion sees a patch.
    raw = api_server.kubectl("get", "--raw", f"/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses", check=True)
    rv = json.loads(raw.stdout)["metadata"]["resourceVersion"]
    api_server.kubectl("patch", "ingress", "-n", ns, "ingress1", "--type=merge",
                       "-p", '{"metadata":{"annotations":{"patched":"true"}}}', check=True)
    p = api_server.kubectl("get", "--raw", f"/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses"
                                           f"?watch=true&resourceVersion={rv}&timeoutSeconds=1", check=True)
    events = [json.loads(line) for line in p.stdout.splitlines() if line.strip()]
    assert [(e["type"], (e["object"]["metadata"].get("annotations") or {}).get("patched")) for e in events] == [
        ("MODIFIED", "true")]
    # A spec change moves the generation.
    patched = api_server.kjson("patch", "ingress", "-n", ns, "ingress1", "--type=merge", "-p",
                               '{"spec":{"defaultBackend":{"service":{"name":"other","port":{"number":80}}}}}')
    assert patched["metadata"]["generation"] == 2
    # /status: written through the subresource, ignored by the main resource.
    status = {"status": {"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}}}
    api_server.kubectl("patch", "ingress", "-n", ns, "ingress1", "--subresource=status", "--type=merge",
                       "-p", json.dumps(status), check=True)
    assert api_server.kjson("get", "ingress", "-n", ns, "ingress1")["status"] == status["status"]
    api_server.kubectl("patch", "ingress", "-n", ns, "ingress1", "--type=merge",
                       "-p", '{"status":{"loadBalancer":{"ingress":[{"ip":"127.0.0.2"}]}}}', check=True)
    assert api_server.kjson("get", "ingress", "-n", ns, "ingress1")["status"] == status["status"]
    api_server.kubectl("delete", "ingress", "-n", ns, "ingress1", check=True)
    api_server.kubectl("delete", "ingress", "-n", ns, "-l", f"special-label={ns}", check=True)
    assert api_server.kjson("get", "ingress", "-n", ns)["items"] == []


def test_ingress_validation_errors_reach_kubectl(api_server, ns):
    bad = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "bad"},
           "spec": {"rules": [{"host": "1.2.3.4", "http": {"paths": [
               {"path": "/", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}}
    p = api_server.kubectl("create", "-n", ns, "-f", "-", input=json.dumps(bad))
    assert p.returncode != 0
    assert 'The Ingress "bad" is invalid' in p.stderr
    assert 'spec.rules[0].host: Invalid value: "1.2.3.4": must be a DNS name, not an IP address' in p.stderr
    assert "spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified" in p.stderr


def _ingress_class(name: str, default: bool = False, **spec: object) -> str:
    md: dict = {"name": name}
    if default:
        md["annotations"] = {"ingressclass.kubernetes.io/is-default-class": "true"}
    return json.dumps({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": md,
                       "spec": {"controller": "example.com/e2e", **spec}})


def test_should_support_creating_ingressclass_api_operations(api_server, ns):
    for i in (1, 2, 3):
        api_server.kubectl("create", "-f", "-", input=_ingress_class(f"{ns}-{i}"), check=True)
    got = api_server.kjson("get", "ingressclass", f"{ns}-1")
    assert got["spec"] == {"controller": "example.com/e2e"} and got["metadata"]["generation"] == 1
    p = api_server.kubectl("get", "ingressclass", f"{ns}-1", check=True)
    assert p.stdout.split("\n")[0].split() == ["NAME", "CONTROLLER", "PARAMETERS", "AGE"]
    assert p.stdout.split("\n")[1].split()[:3] == [f"{ns}-1", "example.com/e2e", "<none>"]
    patched = api_server.kjson("patch", "ingressclass", f"{ns}-1", "--type=merge", "-p",
                               '{"spec":{"parameters":{"kind":"Cfg","name":"c","apiGroup":"example.com"}}}')
    assert patched["spec"]["parameters"]["scope"] == "Cluster"  # defaulted
    assert patched["metadata"]["generation"] == 2
    p = api_server.kubectl("patch", "ingressclass", f"{ns}-1", "--type=merge", "-p",
                           '{"spec":{"controller":"example.com/other"}}')
    assert p.returncode != 0 and "spec.controller: Invalid value" in p.stderr and "field is immutable" in p.stderr
    for i in (1, 2, 3):
        api_server.kubectl("delete", "ingressclass", f"{ns}-{i}", check=True)
    names = [c["metadata"]["name"] for c in api_server.kjson("get", "ingressclass")["items"]]
    assert not [n for n in names if n.startswith(ns)]


def test_should_allow_ingressclass_to_have_namespace_scoped_parameters(api_server, ns):
    params = {"parameters": {"kind": "Cfg", "name": "c", "scope": "Namespace", "namespace": ns}}
    got = json.loads(api_server.kubectl("create", "-o", "json", "-f", "-", input=_ingress_class(f"{ns}-p", **params),
                                        check=True).stdout)
    assert got["spec"]["parameters"]["namespace"] == ns
    api_server.kubectl("delete", "ingressclass", f"{ns}-p", check=True)


def test_should_choose_the_later_default_ingressclass_and_set_it_on_new_ingresses(api_server, ns, request):
    # The API-only server runs no controller: the default classes are this test's own.
    api_server.kubectl("create", "-f", "-", input=_ingress_class(f"{ns}-a", default=True), check=True)
    api_server.kubectl("create", "-f", "-", input=_ingress_class(f"{ns}-b", default=True), check=True)
    try:
        api_server.kubectl("create", "ingress", "-n", ns, "plain", "--rule=/=web:80", check=True)
        got = api_server.kjson("get", "ingress", "-n", ns, "plain")
        # Created in the same second: the lower name wins the tie, a later one would win otherwise.
        a = api_server.kjson("get", "ingressclass", f"{ns}-a")["metadata"]["creationTimestamp"]
        b = api_server.kjson("get", "ingressclass", f"{ns}-b")["metadata"]["creationTimestamp"]
        assert got["spec"]["ingressClassName"] == (f"{ns}-a" if a == b else f"{ns}-b")
        api_server.kubectl("create", "ingress", "-n", ns, "named", "--class=mine", "--rule=/=web:80", check=True)
        assert api_server.kjson("get", "ingress", "-n", ns, "named")["spec"]["ingressClassName"] == "mine"
    finally:
        api_server.kubectl("delete", "ingressclass", f"{ns}-a", f"{ns}-b")


def test_should_not_set_default_value_if_no_default_ingressclass(api_server, ns):
    defaults = [c for c in api_server.kjson("get", "ingressclass")["items"]
                if (c["metadata"].get("annotations") or {}).get("ingressclass.kubernetes.io/is-default-class")]
    assert defaults == []
    api_server.kubectl("create", "ingress", "-n", ns, "plain", "--rule=/=web:80", check=True)
    assert "ingressClassName" not in api_server.kjson("get", "ingress", "-n", ns, "plain")["spec"]


def test_kubectl_create_ingress_with_an_old_kubectl(api_server, ns):
    api_server.kubectl("create", "ingress", "-n", ns, "old", "--rule=foo.com/bar*=svc1:8080,tls=my-cert",
                       binary=KUBECTL_OLD, check=True)
    spec = api_server.kjson("get", "ingress", "-n", ns, "old")["spec"]
    assert spec["rules"][0]["http"]["paths"][0]["pathType"] == "Prefix"
    assert spec["tls"] == [{"hosts": ["foo.com"], "secretName": "my-cert"}]


# --------------------------------------------------------------------------- the controller

def test_builtin_ingressclass_is_the_default(ing_cluster):
    ic = ing_cluster.kjson("get", "ingressclass", "kubelite")
    assert ic["spec"]["controller"] == "kubelite.dev/ingress"
    assert ic["metadata"]["annotations"]["ingressclass.kubernetes.io/is-default-class"] == "true"


def test_ingress_routes_by_host_and_path_to_two_services(ing_cluster, request):
    ns = "default"
    ing_cluster.kubectl("create", "ingress", "-n", ns, "routes",
                        "--rule=one.example.com/*=web1:80", "--rule=two.example.com/*=web2:80",
                        "--rule=both.example.com/v1*=web1:80", "--rule=both.example.com/v2*=web2:80",
                        "--rule=*.wild.example.com/*=web2:80", check=True)
    try:
        ing_cluster.wait_for(lambda: _routed(ing_cluster, "one.example.com", "/", "v=1"), what="host one → web1")
        # The bootcamp app answers directory URLs: every path below ends in '/'.
        assert _routed(ing_cluster, "two.example.com", "/anything/", "v=2")
        assert _routed(ing_cluster, "both.example.com", "/v1/x/", "v=1")
        assert _routed(ing_cluster, "both.example.com", "/v2/", "v=2")
        assert _routed(ing_cluster, "a.wild.example.com", "/", "v=2")
        assert _get(ing_cluster.http_port, "both.example.com", "/v3/") == (404, "404 page not found\n")
        assert _get(ing_cluster.http_port, "a.b.wild.example.com", "/")[0] == 404
        assert _get(ing_cluster.http_port, "three.example.com", "/")[0] == 404
        # kubectl get: upstream's columns (kubectl merged both.example.com's paths into one rule,
        # so four rules: three hosts shown, one more); the class filled from the default, the address written.
        ing_cluster.wait_for(lambda: ing_cluster.kjson("get", "ingress", "routes")["status"]["loadBalancer"].get(
            "ingress") == [{"ip": "127.0.0.1"}], what="status address")
        lines = ing_cluster.kubectl("get", "ingress", "routes", check=True).stdout.splitlines()
        assert lines[0].split() == ["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"]
        assert lines[1].split()[:7] == ["routes", "kubelite", "one.example.com,two.example.com,both.example.com",
                                        "+", "1", "more...", "127.0.0.1"]
        assert lines[1].split()[7] == "80"
    finally:
        ing_cluster.kubectl("delete", "ingress", "routes")


def test_ingress_default_backend(ing_cluster, request):
    ing_cluster.kubectl("create", "ingress", "fallback", "--default-backend=web2:80",
                        "--rule=api.example.com/api*=web1:80", check=True)
    try:
        ing_cluster.wait_for(lambda: _routed(ing_cluster, "api.example.com", "/api/x/", "v=1"), what="rule")
        assert _routed(ing_cluster, "api.example.com", "/other/", "v=2")
        assert _routed(ing_cluster, "unknown.example.com", "/", "v=2")
    finally:
        ing_cluster.kubectl("delete", "ingress", "fallback")


def test_ingress_of_another_class_is_not_served(ing_cluster, request):
    ns = create_namespace(ing_cluster, request)
    ing_cluster.kubectl("create", "ingress", "-n", ns, "foreign", "--class=nginx",
                        "--rule=foreign.example.com/*=web1:80", check=True)
    ing_cluster.kubectl("create", "ingress", "-n", ns, "mine", "--rule=mine.example.com/*=web1:80", check=True)
    ing_cluster.wait_for(lambda: ing_cluster.kjson("get", "ingress", "-n", ns, "mine")["status"]["loadBalancer"]
                         .get("ingress"), what="our Ingress's status")
    assert _get(ing_cluster.http_port, "foreign.example.com", "/")[0] == 404
    assert ing_cluster.kjson("get", "ingress", "-n", ns, "foreign")["status"] == {"loadBalancer": {}}


def _certificate(host: str) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


class _SNIConnection(http.client.HTTPSConnection):
    """HTTPS to 127.0.0.1 with another name for SNI and the certificate check."""

    def __init__(self, port: int, sni: str, ctx: ssl.SSLContext):
        super().__init__("127.0.0.1", port, timeout=10, context=ctx)
        self.sni, self.ctx = sni, ctx

    def connect(self) -> None:
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        self.sock = self.ctx.wrap_socket(raw, server_hostname=self.sni)


def _https_get(port: int, host: str, path: str, ca: Path) -> tuple[int, str]:
    conn = _SNIConnection(port, host, ssl.create_default_context(cafile=str(ca)))
    try:
        conn.request("GET", path, headers={"Host": host})
        r = conn.getresponse()
        return r.status, r.read().decode(errors="replace")
    finally:
        conn.close()


def test_ingress_tls_with_a_secret(ing_cluster, tmp_path):
    host = "secure.example.com"
    cert, key = _certificate(host)
    (tmp_path / "tls.crt").write_bytes(cert)
    (tmp_path / "tls.key").write_bytes(key)
    ing_cluster.kubectl("create", "secret", "tls", "secure-cert", f"--cert={tmp_path / 'tls.crt'}",
                        f"--key={tmp_path / 'tls.key'}", check=True)
    ing_cluster.kubectl("create", "ingress", "secure", f"--rule={host}/*=web1:80,tls=secure-cert", check=True)
    try:
        # The certificate verifies against itself (it is its own CA) only if the listener chose it by SNI.
        ing_cluster.wait_for(lambda: _https_get(ing_cluster.https_port, host, "/", tmp_path / "tls.crt"),
                             what="HTTPS with the Secret's certificate")
        status, body = _https_get(ing_cluster.https_port, host, "/", tmp_path / "tls.crt")
        assert status == 200 and "v=1" in body
        lines = ing_cluster.kubectl("get", "ingress", "secure", check=True).stdout.splitlines()
        assert lines[1].split()[4:6] == ["80,", "443"]
        # Another name gets the default certificate, which this CA does not sign.
        with pytest.raises(ssl.SSLCertVerificationError):
            _https_get(ing_cluster.https_port, "other.example.com", "/", tmp_path / "tls.crt")
    finally:
        ing_cluster.kubectl("delete", "ingress", "secure")
        ing_cluster.kubectl("delete", "secret", "secure-cert")


def test_ingress_backend_without_ready_endpoints_answers_503(ing_cluster):
    ing_cluster.kubectl("create", "service", "clusterip", "empty", "--tcp=80:8080", check=True)
    ing_cluster.kubectl("create", "ingress", "noeps", "--rule=noeps.example.com/*=empty:80", check=True)
    try:
        ing_cluster.wait_for(lambda: _get(ing_cluster.http_port, "noeps.example.com", "/")[0] == 503,
                             what="503 without endpoints")
    finally:
        ing_cluster.kubectl("delete", "ingress", "noeps")
        ing_cluster.kubectl("delete", "service", "empty")


class _EchoBackend:
    """An HTTP and WebSocket echo server on 127.0.0.1 in a thread of the test process."""

    def __init__(self) -> None:
        import asyncio
        import threading

        from aiohttp import web
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        async def echo(request: web.Request) -> web.StreamResponse:
            if request.headers.get("Upgrade", "").lower() == "websocket":
                ws = web.WebSocketResponse(protocols=("echo.v1",))
                await ws.prepare(request)
                async for msg in ws:
                    await ws.send_str("echo:" + msg.data)
                return ws
            body = await request.read()
            return web.json_response({"path": request.raw_path, "method": request.method, "body": body.decode(),
                                      "headers": dict(request.headers)})

        async def main() -> None:
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", echo)
            self.runner = web.AppRunner(app)
            await self.runner.setup()
            await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
            ready.set()

        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(main(), self.loop)
        assert ready.wait(10)

    def close(self) -> None:
        import asyncio
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def echo_service(ing_cluster):
    """A selector-less Service whose one endpoint is the test's echo server on 127.0.0.1."""
    backend = _EchoBackend()
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "echo"},
           "spec": {"ports": [{"name": "web", "port": 80, "targetPort": backend.port}]}}
    eps = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
           "metadata": {"name": "echo-1", "labels": {"kubernetes.io/service-name": "echo"}},
           "addressType": "IPv4",
           "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True},
                          "targetRef": {"kind": "Pod", "name": "echo", "namespace": "default"}}],
           "ports": [{"name": "web", "port": backend.port, "protocol": "TCP"}]}
    for obj in (svc, eps):
        ing_cluster.kubectl("create", "-f", "-", input=json.dumps(obj), check=True)
    ing_cluster.kubectl("create", "ingress", "echo", "--rule=echo.example.com/*=echo:web", check=True)
    try:
        yield backend
    finally:
        ing_cluster.kubectl("delete", "ingress", "echo")
        ing_cluster.kubectl("delete", "endpointslice", "echo-1")
        ing_cluster.kubectl("delete", "service", "echo")
        backend.close()


def test_ingress_forwards_headers_body_and_query_to_a_named_port(ing_cluster, echo_service):
    def posted() -> dict | None:
        conn = http.client.HTTPConnection("127.0.0.1", ing_cluster.http_port, timeout=10)
        try:
            conn.request("POST", "/some/path?q=1&r=%2F", body=b"hello",
                         headers={"Host": "echo.example.com", "X-Forwarded-For": "192.0.2.1"})
            r = conn.getresponse()
            data = r.read()
            return json.loads(data) if r.status == 200 else None
        finally:
            conn.close()
    got = ing_cluster.wait_for(posted, what="the echo backend through the ingress")
    assert got["path"] == "/some/path?q=1&r=%2F" and got["method"] == "POST" and got["body"] == "hello"
    h = got["headers"]
    assert h["Host"] == "echo.example.com"
    assert h["X-Forwarded-For"] == "192.0.2.1, 127.0.0.1"
    assert h["X-Forwarded-Host"] == "echo.example.com"
    assert h["X-Forwarded-Proto"] == "http"
    assert h["X-Forwarded-Port"] == str(ing_cluster.http_port)


def test_ingress_proxies_websockets(ing_cluster, echo_service):
    import asyncio

    import aiohttp

    async def talk() -> tuple[str | None, str]:
        async with aiohttp.ClientSession() as s, s.ws_connect(f"http://127.0.0.1:{ing_cluster.http_port}/ws",
                                headers={"Host": "echo.example.com"}, protocols=("echo.v1",)) as ws:
            await ws.send_str("ping")
            msg = await ws.receive(timeout=10)
            return ws.protocol, msg.data

    def connected() -> tuple[str | None, str] | None:
        try:
            return asyncio.run(talk())
        except aiohttp.WSServerHandshakeError:
            return None  # the route is not there yet
    assert ing_cluster.wait_for(connected, what="a websocket through the ingress") == ("echo.v1", "echo:ping")
