"""Calling one webhook: where it listens, TLS against its caBundle, the POST itself.

Failures are ``CallError`` with upstream's wording after ``failed calling webhook "NAME":``
(``failed to call webhook: Post "URL": …``), so the dispatcher can apply failurePolicy.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import errno
import functools
import ssl
import urllib.parse
from typing import Any

import aiohttp
import orjson

from kubelite.api import errors
from kubelite.api.resources import ENDPOINTS, SERVICES
from kubelite.apiserver.registry import Registry

Obj = dict[str, Any]
# Upstream reads at most this much of a webhook's answer.
MAX_RESPONSE = 3 * 1024 * 1024


class CallError(Exception):
    """The webhook could not be asked, or did not answer properly."""


@functools.lru_cache(maxsize=64)
def _ssl_context(ca_bundle: str) -> ssl.SSLContext:
    """Client TLS trusting the caBundle (the system's roots when there is none)."""
    if not ca_bundle:
        return ssl.create_default_context()
    try:
        pem = base64.b64decode(ca_bundle, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        pem = ""
    ctx = ssl.create_default_context(cadata=pem) if pem else ssl.create_default_context()
    return ctx


class WebhookClient:
    """POSTs AdmissionReviews; one HTTP session for every webhook."""

    def __init__(self, registry: Registry):
        self.registry = registry
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # No proxies from the environment: webhooks are dialled directly.
            self._session = aiohttp.ClientSession(trust_env=False, connector=aiohttp.TCPConnector(limit=0))
        return self._session

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _target(self, cc: Obj) -> tuple[str, str]:
        """(URL to dial, TLS server name) of a clientConfig; a Service resolves to a ready
        endpoint address of its port (the API server dials pods, not the ClusterIP)."""
        if cc.get("url") is not None:
            url = str(cc["url"])
            return url, urllib.parse.urlsplit(url).hostname or ""
        svc = cc.get("service") or {}
        ns, name = str(svc.get("namespace") or ""), str(svc.get("name") or "")
        port = int(svc.get("port") or 443)
        path = str(svc.get("path") or "")
        host = f"{name}.{ns}.svc"
        try:
            service = await self.registry.get(SERVICES, ns, name)
        except errors.NotFound:
            raise CallError(f'failed to call webhook: service "{name}" not found') from None
        sport = next((p for p in (service.get("spec") or {}).get("ports") or [] if p.get("port") == port), None)
        if sport is None:
            raise CallError(f"failed to call webhook: unable to find service port {port} for service {name}") from None
        try:
            eps = await self.registry.get(ENDPOINTS, ns, name)
        except errors.NotFound:
            eps = {}
        for subset in eps.get("subsets") or []:
            addrs = subset.get("addresses") or []
            ports = subset.get("ports") or []
            match = next((p for p in ports if (p.get("name") or "") == (sport.get("name") or "")), None)
            if addrs and match is not None:
                ip = str(addrs[0].get("ip") or "")
                shown = f"[{ip}]" if ":" in ip else ip
                return f"https://{shown}:{match.get('port')}{path}", host
        raise CallError(f'failed to call webhook: no endpoints available for service "{name}"')

    async def call(self, hook: Obj, review: Obj) -> Obj:
        """POST the review to the hook; its decoded answer (CallError on any failure)."""
        cc = hook.get("clientConfig") or {}
        timeout = int(hook.get("timeoutSeconds") or 10)
        url, server_name = await self._target(cc)
        sep = "&" if "?" in url else "?"
        url = f"{url}{sep}timeout={timeout}s"
        ctx = _ssl_context(str(cc.get("caBundle") or ""))
        where = f'Post "{url}"'
        try:
            async with asyncio.timeout(timeout):
                async with self._http().post(
                        url, data=orjson.dumps(review), ssl=ctx, server_hostname=server_name or None,
                        headers={"Content-Type": "application/json", "Accept": "application/json"}) as resp:
                    body = await resp.content.read(MAX_RESPONSE + 1)
                    status = resp.status
        except TimeoutError:
            raise CallError(f"failed to call webhook: {where}: context deadline exceeded") from None
        except aiohttp.ClientConnectorCertificateError as e:
            raise CallError(f"failed to call webhook: {where}: tls: failed to verify certificate: "
                            f"{e.certificate_error}") from None
        except aiohttp.ClientConnectorError as e:
            detail = "connect: connection refused" if e.os_error.errno == errno.ECONNREFUSED else str(e.os_error)
            raise CallError(f"failed to call webhook: {where}: dial tcp {e.host}:{e.port}: {detail}") from None
        except (aiohttp.ClientError, OSError, ssl.SSLError) as e:
            raise CallError(f"failed to call webhook: {where}: {e}") from None
        if status < 200 or status > 299:
            raise CallError(f"failed to call webhook: the server responded with the status code {status} "
                            "but did not return more information")
        try:
            answer = orjson.loads(body)
        except orjson.JSONDecodeError as e:
            raise CallError(f"received invalid webhook response: {e}") from None
        if not isinstance(answer, dict):
            raise CallError("received invalid webhook response: not an object")
        return answer
