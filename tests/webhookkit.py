"""A webhook server for the admission tests: aiohttp over TLS on 127.0.0.1, its own CA.

The server runs in a thread with its own event loop, so tests drive the cluster with
kubectl and the Python client while it answers.  Every AdmissionReview it receives is
kept (``reviews``) for tests to check what the API server sent.
"""
from __future__ import annotations

import asyncio
import base64
import datetime as dt
import ipaddress
import json
import ssl
import tempfile
import threading
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

Obj = dict[str, Any]
SERVICE_NAME = "e2e-test-webhook"
SERVICE_NAMESPACE = "webhook-service-ns"


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_certs(directory: Path) -> tuple[Path, Path, bytes]:
    """A CA and a serving certificate for 127.0.0.1 and the test Service's DNS name:
    (cert file, key file, CA PEM)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("webhook-test-ca")).issuer_name(_name("webhook-test-ca"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                       x509.DNSName(f"{SERVICE_NAME}.{SERVICE_NAMESPACE}.svc")])
    cert = (x509.CertificateBuilder().subject_name(_name("webhook")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(san, critical=False).sign(ca_key, hashes.SHA256()))
    cert_file, key_file = directory / "webhook.crt", directory / "webhook.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file, ca.public_bytes(serialization.Encoding.PEM)


def _answer(review: Obj, **response: Any) -> web.Response:
    body = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "response": {"uid": review["request"]["uid"], **response}}
    return web.json_response(body)


def _patch(ops: list[Obj]) -> dict[str, str]:
    return {"patchType": "JSONPatch", "patch": base64.b64encode(json.dumps(ops).encode()).decode()}


class WebhookServer:
    """The test's webhook endpoints (paths below), served over TLS in a thread."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory()
        cert, key, self.ca_pem = make_certs(Path(self._dir.name))
        self.ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ssl.load_cert_chain(str(cert), str(key))
        self.reviews: list[Obj] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("webhook server did not start")

    @property
    def ca_bundle(self) -> str:
        """The caBundle value (base64 of the CA's PEM)."""
        return base64.b64encode(self.ca_pem).decode()

    def url(self, path: str) -> str:
        """The https URL of one endpoint."""
        return f"https://127.0.0.1:{self.port}{path}"

    def seen(self, path: str) -> list[Obj]:
        """The reviews one endpoint received, oldest first."""
        return [r for r in list(self.reviews) if r.get("_path") == path]

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        self._ready.set()
        self._loop.run_forever()

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/{what}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self.ssl)
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # a listening TCP site
        self.port = server.sockets[0].getsockname()[1]

    def close(self) -> None:
        """Stop the server and its thread."""
        async def stop() -> None:
            if self._runner is not None:
                await self._runner.cleanup()
        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._dir.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        review = await request.json()
        review["_path"] = request.path
        review["_query"] = dict(request.query)
        self.reviews.append(review)
        if review.get("kind") == "ConversionReview":
            return _convert(review, request.match_info["what"])
        req = review["request"]
        obj = req.get("object") or {}
        what = request.match_info["what"]
        if what == "deny":
            # Refuses configmaps and pods that carry the marker the deny tests use.
            if (obj.get("data") or {}).get("webhook-e2e-test") == "webhook-disallow":
                return _answer(review, allowed=False, status={"message": "the configmap contains unwanted key and value"})
            labels = (obj.get("metadata") or {}).get("labels") or {}
            if labels.get("webhook-e2e-test") == "webhook-disallow":
                return _answer(review, allowed=False, status={"message": "the pod contains unwanted label", "code": 403,
                                                              "reason": "Forbidden"})
            return _answer(review, allowed=True)
        if what == "always-deny":
            return _answer(review, allowed=False, status={"message": "this webhook denies all requests"})
        if what == "warn":
            return _answer(review, allowed=True, warnings=["the webhook says: mind the gap"])
        if what == "annotate":
            return _answer(review, allowed=True, auditAnnotations={"reviewed-by": "the test's webhook"})
        if what == "mutate-configmap":
            ops = [{"op": "add", "path": "/data/mutation-stage-1", "value": "yes"}]
            if "data" not in obj:
                ops.insert(0, {"op": "add", "path": "/data", "value": {}})
            return _answer(review, allowed=True, **_patch(ops))
        if what == "mutate-configmap-stage-2":
            # Only acts once stage 1 is there: the IfNeeded reinvocation test depends on it.
            if "mutation-stage-1" not in (obj.get("data") or {}):
                return _answer(review, allowed=True)
            return _answer(review, allowed=True, **_patch([{"op": "add", "path": "/data/mutation-stage-2",
                                                            "value": "yes"}]))
        if what == "mutate-pod":
            init = {"name": "webhook-added-init-container", "image": "registry.k8s.io/pause:3.9"}
            ops = [{"op": "add", "path": "/spec/initContainers", "value": [init]}]
            return _answer(review, allowed=True, **_patch(ops))
        if what == "mutate-cr":
            return _answer(review, allowed=True, **_patch([{"op": "add", "path": "/data/mutation-stage-1",
                                                            "value": "yes"}]))
        if what == "slow":
            await asyncio.sleep(5)  # longer than the timeouts the tests configure
            return _answer(review, allowed=True)
        return web.Response(status=404)


def _convert_one(obj: Obj, to: str) -> Obj:
    """The e2e conversion webhook's rule: v1's spec.hostPort is v2's spec.host and spec.port."""
    out = json.loads(json.dumps(obj))
    spec = out.setdefault("spec", {})
    if to.endswith("/v2") and "hostPort" in spec:
        host, _, port = str(spec.pop("hostPort")).partition(":")
        spec.update(host=host, port=port)
    elif to.endswith("/v1") and ("host" in spec or "port" in spec):
        spec["hostPort"] = f"{spec.pop('host', '')}:{spec.pop('port', '')}"
    out["apiVersion"] = to
    return out


def _convert(review: Obj, what: str) -> web.Response:
    """ConversionReview endpoints: ``convert`` converts, ``convert-fail`` reports a failure,
    ``convert-rename`` changes the object's name (which the API server must refuse)."""
    req = review["request"]
    response: Obj = {"uid": req["uid"]}
    if what == "convert-fail":
        response["result"] = {"status": "Failure", "message": "the converter is out of order"}
    else:
        objs = [_convert_one(o, req["desiredAPIVersion"]) for o in req["objects"]]
        if what == "convert-rename":
            for o in objs:
                o["metadata"]["name"] = "renamed"
        response.update(result={"status": "Success"}, convertedObjects=objs)
    return web.json_response({"apiVersion": review["apiVersion"], "kind": "ConversionReview", "response": response})
