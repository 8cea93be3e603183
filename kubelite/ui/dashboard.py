"""`kubelite dashboard`: a local web page showing every Deployment's rollout as it happens.

Design: the process is an API client like any other (it never touches the store).  Four
informers (Deployments, ReplicaSets, pods, events; one namespace or all) fill caches;
their handlers only set a flag.  One publisher task turns the caches into a snapshot
(``dashboard_model``) when the flag is set, after a short pause that lets a burst of
watch events land, and wakes every open page.  Each page holds one server-sent-events
stream and receives the newest snapshot whenever there is one it has not seen: a page
that reads slowly skips snapshots instead of queueing them.  The buttons POST to small
action endpoints (``dashboard_actions``: what `kubectl rollout pause|resume|undo` do).

The page is served on 127.0.0.1 only, and every request must carry the token printed in
the URL at start (as Jupyter does): in the ``token`` query parameter or an
``Authorization: token …`` / ``Bearer …`` header.  None gives 401, a wrong one 403.
"""
from __future__ import annotations

import argparse
import asyncio
import hmac
import json
import logging
import os
import secrets
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from importlib import resources as pkg_resources
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from kubelite.api.errors import (
    BadRequest,
    Forbidden,
    NotFound,
    ServiceUnavailable,
    StatusError,
    Unauthorized,
    status_error,
)
from kubelite.api.resources import LEASES
from kubelite.proxy.drain import COMPONENT, COMPONENT_LABEL, LEASE_NAMESPACE
from kubelite.ui import dashboard_actions, dashboard_model
from kubelite.ui.caches import RolloutCaches

if TYPE_CHECKING:
    from kubelite.client.protocols import APIClient
    from kubelite.client.rest import ClientConfig

log = logging.getLogger(__name__)
Obj = dict[str, Any]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

HOST = "127.0.0.1"
# Quiet time after a watch event before a snapshot is built: a rollout step is a dozen events,
# and it caps the rebuilds (every Deployment of the cluster each) at a few a second.
SETTLE = 0.2
# While some revision has traffic, the page is redrawn at least this often (its requests/s move).
RATE_REFRESH = 2.0
# A comment line this often keeps idle streams (and the proxies in between) from timing out.
KEEPALIVE = 15.0
STATIC = {"app.js": "text/javascript", "app.css": "text/css"}
_SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
}


def _static_text(name: str) -> str:
    return pkg_resources.files("kubelite.ui").joinpath("dashboard_static", name).read_text(encoding="utf-8")


def _status_response(e: StatusError) -> web.Response:
    return web.json_response(e.status, status=e.code)


def presented_token(request: web.Request) -> str | None:
    """The token a request carries (query parameter first, then the Authorization header)."""
    if "token" in request.query:
        return request.query["token"]
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() in ("token", "bearer") and value.strip():
        return value.strip()
    return None


class Dashboard(RolloutCaches):
    """The informers, the newest snapshot, and the web application that serves them."""

    def __init__(self, client: APIClient, *, namespace: str, token: str, server: str = ""):
        super().__init__(client, namespace)
        self.client, self.namespace, self.token, self.server = client, namespace, token, server
        self.version = 0
        self.snapshot = b"{}"
        # Set (and replaced) on every new snapshot; streams wait on the one they saw last.
        self._published = asyncio.Event()
        self._closing = asyncio.Event()
        self._publisher: asyncio.Task[None] | None = None
        # Traffic per revision from the proxies' Leases (proxy/stats.py).  A factory of its own,
        # not waited for: a user who may not read kube-system Leases still gets the page.
        from kubelite.client.informer import InformerFactory

        self.lease_factory = InformerFactory(client)
        self.leases = self.lease_factory.informer(LEASES, namespace=LEASE_NAMESPACE,
                                                  label_selector=f"{COMPONENT_LABEL}={COMPONENT}")
        mark = lambda *_: self.changed.set()  # noqa: E731 - handlers only flag, never work
        self.leases.add_handler(mark, mark, mark)
        self.rates = dashboard_model.TrafficRates()

    # -- snapshots -------------------------------------------------------------------
    def build(self) -> Obj:
        """The snapshot of the caches as they are now."""
        self.rates.observe(time.monotonic(), self.leases.list())
        return dashboard_model.snapshot(self.deployments.list(), self.replicasets.list(), self.pods.list(),
                                        self.events.list(), namespace=self.namespace, server=self.server,
                                        traffic=self.rates.view)

    def publish(self) -> None:
        """Store a fresh snapshot and wake every stream."""
        self.snapshot = json.dumps(self.build(), separators=(",", ":")).encode()
        self.version += 1
        woken, self._published = self._published, asyncio.Event()
        woken.set()

    async def _publish_loop(self) -> None:
        while True:
            if self.rates.busy():
                try:
                    await asyncio.wait_for(self.changed.wait(), RATE_REFRESH)
                except TimeoutError:
                    pass
            else:
                await self.changed.wait()
            await asyncio.sleep(SETTLE)
            self.changed.clear()
            try:
                self.publish()
            except Exception:  # a bug in drawing one object must not end the live view
                log.exception("dashboard: building the snapshot failed")

    async def start(self, timeout: float) -> None:
        """Start the informers, wait for their first lists, publish the first snapshot."""
        await self.start_caches(timeout)
        self.lease_factory.start()
        self.changed.clear()
        self.publish()
        self._publisher = asyncio.create_task(self._publish_loop())

    async def stop(self) -> None:
        """End the streams, the publisher and the informers."""
        self._closing.set()
        self._published.set()
        if self._publisher is not None:
            self._publisher.cancel()
            await asyncio.gather(self._publisher, return_exceptions=True)
        await self.stop_caches()
        await self.lease_factory.stop()

    # -- the web application -----------------------------------------------------------
    def app(self) -> web.Application:
        """The aiohttp application: the page, its assets, the stream and the actions."""
        app = web.Application(middlewares=[self._guard], client_max_size=64 * 1024)
        app.router.add_get("/", self._index)
        app.router.add_get("/static/{name}", self._static)
        app.router.add_get("/api/rollouts", self._rollouts)
        app.router.add_get("/api/stream", self._stream)
        app.router.add_post("/api/namespaces/{namespace}/deployments/{name}/{action}", self._action)
        return app

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Every request needs the token; every answer gets headers that keep it local."""
        token = presented_token(request)
        if token is None:
            resp: web.StreamResponse = _status_response(Unauthorized(
                401, "Unauthorized", "the dashboard needs its token: open the URL `kubelite dashboard` printed"))
        elif not hmac.compare_digest(token.encode(), self.token.encode()):
            resp = _status_response(Forbidden(403, "Forbidden", "wrong dashboard token"))
        else:
            try:
                resp = await handler(request)
            except web.HTTPException as e:
                # aiohttp's own refusals (no route, wrong method, body too large) as Status bodies too.
                resp = _status_response(status_error(e.status, e.reason.replace(" ", ""),
                                                     f"{request.method} {request.path}: {e.reason.lower()}"))
        if not resp.prepared:
            resp.headers.update(_SECURITY_HEADERS)
        return resp

    async def _index(self, request: web.Request) -> web.Response:
        # The token is URL-safe base64, so it needs no escaping inside the attributes it fills.
        html = _static_text("index.html").replace("{{token}}", self.token)
        return web.Response(text=html, content_type="text/html")

    async def _static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in STATIC:
            raise web.HTTPNotFound()
        return web.Response(text=_static_text(name), content_type=STATIC[name])

    async def _rollouts(self, request: web.Request) -> web.Response:
        return web.Response(body=self.snapshot, content_type="application/json")

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", **_SECURITY_HEADERS})
        await resp.prepare(request)
        seen = 0
        try:
            while not self._closing.is_set():
                if seen != self.version:
                    waiter, seen = self._published, self.version
                    await resp.write(b"event: rollouts\ndata: " + self.snapshot + b"\n\n")
                else:
                    waiter = self._published
                # Not wait_for: on 3.11 it can swallow a cancel that lands as the event fires.
                wake = asyncio.ensure_future(waiter.wait())
                try:
                    done, _ = await asyncio.wait({wake}, timeout=KEEPALIVE)
                finally:
                    wake.cancel()
                if not done:
                    await resp.write(b": keepalive\n\n")
        except ConnectionResetError:
            pass  # the page went away
        return resp

    async def _action(self, request: web.Request) -> web.Response:
        ns, name, action = (request.match_info[k] for k in ("namespace", "name", "action"))
        try:
            if action not in dashboard_actions.ACTIONS:
                raise NotFound(404, "NotFound", f"unknown action {action!r} (one of "
                                                f"{', '.join(dashboard_actions.ACTIONS)})")
            if self.namespace and ns != self.namespace:
                raise NotFound(404, "NotFound", f"this dashboard shows namespace {self.namespace!r} only")
            to_revision = await _to_revision(request)
            message = await dashboard_actions.run_action(self.client, ns, name, action, to_revision)
        except StatusError as e:
            return _status_response(e)
        except (aiohttp.ClientError, TimeoutError) as e:
            return _status_response(ServiceUnavailable(503, "ServiceUnavailable",
                                                       f"cannot reach the API server at {self.server}: {e}"))
        return web.json_response({"message": message})


async def _to_revision(request: web.Request) -> int:
    """The optional ``toRevision`` of an undo, from a JSON body (or 0)."""
    raw = await request.read()
    if not raw.strip():
        return 0
    try:
        body = json.loads(raw)
    except ValueError:
        raise BadRequest(400, "BadRequest", "the request body is not JSON") from None
    if not isinstance(body, dict):
        raise BadRequest(400, "BadRequest", "the request body must be a JSON object")
    rev = body.get("toRevision", 0)
    if isinstance(rev, bool) or not isinstance(rev, int):
        raise BadRequest(400, "BadRequest", f"toRevision must be an integer, not {rev!r}")
    return rev


# --- running it ------------------------------------------------------------------------

async def serve(config: ClientConfig, *, namespace: str, port: int, token: str,
                sync_timeout: float = 30.0) -> int:
    """Run the dashboard until SIGINT/SIGTERM; returns an exit code."""
    from kubelite.client.rest import Client

    client = Client(config)
    dash = Dashboard(client, namespace=namespace, token=token, server=config.server)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner: web.AppRunner | None = None
    try:
        try:
            await dash.start(sync_timeout)
        except TimeoutError:
            print(f"kubelite: cannot list from the API server at {config.server}", file=sys.stderr)
            return 1
        runner = web.AppRunner(dash.app(), access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, HOST, port)
        try:
            await site.start()
        except OSError as e:
            print(f"kubelite: cannot listen on {HOST}:{port}: {e.strerror or e}", file=sys.stderr)
            return 1
        bound = runner.addresses[0][1] if runner.addresses else port
        where = f"namespace {namespace}" if namespace else "all namespaces"
        print(f"kubelite dashboard ({where}) at http://{HOST}:{bound}/?token={token}", flush=True)
        await stop.wait()
        return 0
    finally:
        await dash.stop()
        if runner is not None:
            await runner.cleanup()
        await client.close()


def cmd_dashboard(args: argparse.Namespace) -> int:
    """Entry point of `kubelite dashboard`."""
    from kubelite.client.rest import ClientConfig
    from kubelite.ui.rollout import default_kubeconfig

    if not 0 <= args.port <= 65535:
        print(f"kubelite: --port {args.port} is not a port number (0-65535; 0: any free port)", file=sys.stderr)
        return 2
    path = args.kubeconfig or default_kubeconfig()
    if not os.path.exists(path):
        print(f"kubelite: no kubeconfig at {path} (start `kubelite server` or pass --kubeconfig)", file=sys.stderr)
        return 1
    config = ClientConfig.from_kubeconfig(path, user_agent="kubelite-dashboard")
    token = secrets.token_urlsafe(24)
    return asyncio.run(serve(config, namespace=args.namespace, port=args.port, token=token))
