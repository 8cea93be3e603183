"""The node agent's own HTTPS API, which the API server forwards to (as the kubelet's
:10250): containerLogs, exec, attach, portForward, and a health check.

Only clients with a certificate from the cluster CA in group system:masters (the API
server's kubelet-client identity) are served.

The server knows its node only as a ``PodIndex`` (host.py): the runtime, and a way to
find the pod a request names.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import os
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from aiohttp import web

from kubelite.api import errors
from kubelite.api.status_http import respond_error
from kubelite.node import stats
from kubelite.node.host import PodIndex, RunningPod
from kubelite.node.runtime import logs as logfiles
from kubelite.node.runtime.base import ContainerHandle, ExecSession, Runtime, StartError
from kubelite.pki import PKI, self_signed
from kubelite.streams.portforward import serve_portforward
from kubelite.streams.remotecommand import ByteReader, serve_attach, serve_exec

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class ServingTLS:
    """Where the agent API's certificate comes from, and whom it trusts as a client."""

    node_name: str
    dir: str                # the key pair is written here
    pki: PKI | None         # in the server's process: a certificate from the cluster CA
    ca_file: str | None     # a joined agent: the cluster CA it was given

    def context(self, host: str) -> ssl.SSLContext:
        """A server context for ``host`` that requires a client certificate from the cluster CA."""
        os.makedirs(self.dir, exist_ok=True)
        cert, key = os.path.join(self.dir, f"{self.node_name}.crt"), os.path.join(self.dir, f"{self.node_name}.key")
        sans = [host, "localhost", self.node_name]
        ca: str | None
        if self.pki is not None:
            self.pki.issue_serving(self.node_name, sans, cert, key)
            ca = self.pki.ca_cert
        else:  # a joined agent: self-signed, trusting the cluster CA it was given for clients
            self_signed(self.node_name, sans, cert, key)
            ca = self.ca_file
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert, key)
        if not ca:
            raise RuntimeError("the agent needs the cluster CA (--ca-file) to authenticate the API server")
        ctx.load_verify_locations(ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx


async def _healthz(_: web.Request) -> web.Response:
    return web.Response(text="ok")


class AgentAPI:
    """aiohttp server for one agent."""

    def __init__(self, node: PodIndex, tls: ServingTLS):
        self.node = node
        self.tls = tls
        self.app = web.Application(middlewares=[self._errors])
        r = self.app.router
        r.add_get("/healthz", _healthz)
        r.add_get("/containerLogs/{ns}/{pod}/{container}", self.logs)
        r.add_get("/stats/summary", self.stats_summary)
        for verb in ("exec", "attach"):
            r.add_route("*", f"/{verb}/{{ns}}/{{pod}}/{{container}}", self.exec if verb == "exec" else self.attach)
        r.add_route("*", "/portForward/{ns}/{pod}", self.portforward)
        self._runner: web.AppRunner | None = None

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path != "/healthz" and not self._authorized(request):
            return respond_error(errors.forbidden("Forbidden (user=anonymous, verb=get, resource=nodes, subresource=proxy)"))
        try:
            return await handler(request)
        except errors.StatusError as e:
            return respond_error(e)

    @staticmethod
    def _authorized(request: web.Request) -> bool:
        ssl_obj = request.transport.get_extra_info("ssl_object") if request.transport else None
        cert = ssl_obj.getpeercert() if ssl_obj else None
        if not cert:
            return False
        orgs = [v for rdn in cert.get("subject", ()) for k, v in rdn if k == "organizationName"]
        return "system:masters" in orgs

    async def start(self, host: str, port: int) -> int:
        """Listen; returns the port."""
        runner = self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        await web.TCPSite(runner, host, port, ssl_context=self.tls.context(host)).start()
        return int(runner.addresses[0][1])  # (host, port[, …]) of the one listening socket

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner:
            await self._runner.cleanup()

    # -- helpers -----------------------------------------------------------------------
    @property
    def _runtime(self) -> Runtime:
        return self.node.runtime

    def _worker(self, request: web.Request) -> RunningPod:
        ns, pod = request.match_info["ns"], request.match_info["pod"]
        w = self.node.running_pod(ns, pod)
        if w is None:
            raise errors.not_found("pods", "", pod)
        return w

    # -- stats ---------------------------------------------------------------------------
    async def stats_summary(self, request: web.Request) -> web.Response:
        """GET /stats/summary: node and container usage (cgroups and /proc are read off the loop)."""
        doc = await asyncio.to_thread(stats.summary, self.node.node_name, self._runtime, self.node.running_pods())
        return web.json_response(doc)

    # -- logs ----------------------------------------------------------------------------
    async def logs(self, request: web.Request) -> web.StreamResponse:
        """kubectl logs [-f] [--tail] [--timestamps] [--previous] [--since…]."""
        w = self._worker(request)
        name = request.match_info["container"]
        q = request.query
        cs = next((c for c in [*w.main, *w.init] if c.name == name), None)
        if cs is None:
            raise errors.bad_request(f"container {name} is not valid for pod {w.pod['metadata']['name']}")
        previous = q.get("previous") == "true"
        handle = w.handles.get(name)
        path = self._log_path(w, name, previous, handle)
        if path is None:
            reason = (cs.state.get("waiting") or {}).get("reason", "ContainerCreating")
            if previous:
                raise errors.bad_request(f'previous terminated container "{name}" in pod "{w.pod["metadata"]["name"]}" not found')
            # upstream's kubelet words the two image failures for humans
            reason = {"ErrImagePull": "image can't be pulled",
                      "ImagePullBackOff": "trying and failing to pull image"}.get(reason, reason)
            raise errors.bad_request(f'container "{name}" in pod "{w.pod["metadata"]["name"]}" is waiting to start: {reason}')
        tail = int(q["tailLines"]) if q.get("tailLines") else None
        since = q.get("sinceTime")
        if q.get("sinceSeconds"):
            since = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=int(q["sinceSeconds"]))).strftime(
                "%Y-%m-%dT%H:%M:%S.%fZ")
        ts = q.get("timestamps") == "true"
        limit = int(q["limitBytes"]) if q.get("limitBytes") else None
        resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        sent = 0
        if q.get("follow") == "true" and not previous:
            stop = asyncio.Event()
            running = asyncio.create_task(self._until_exit(handle, stop))
            try:
                async for chunk in logfiles.follow_logs(path, tail=tail, since=since, timestamps=ts, done=stop.is_set):
                    if limit is not None:
                        chunk = chunk[: max(0, limit - sent)]
                    if chunk:
                        await resp.write(chunk)
                        sent += len(chunk)
                    if limit is not None and sent >= limit:
                        break
            finally:
                running.cancel()
        else:
            data = logfiles.read_logs(path, tail=tail, since=since, timestamps=ts)
            if limit is not None:
                data = data[:limit]
            await resp.write(data)
        await resp.write_eof()
        return resp

    async def _until_exit(self, handle: ContainerHandle | None, stop: asyncio.Event) -> None:
        if handle is not None:
            try:
                await self._runtime.wait(handle)
            except Exception:
                pass
        stop.set()

    def _log_path(self, w: RunningPod, name: str, previous: bool, handle: ContainerHandle | None) -> str | None:
        base = os.path.join(w.sandbox.dir if w.sandbox else "", "logs", name) if w.sandbox else ""
        if not previous:
            if handle is not None:
                return self._runtime.log_path(handle)
            # Exited and not restarted yet: the latest instance's log.
            if base and os.path.isdir(base):
                files = sorted((f for f in os.listdir(base) if f.endswith(".log")), key=lambda f: int(f.split(".")[0]))
                return os.path.join(base, files[-1]) if files else None
            return None
        if base and os.path.isdir(base):
            files = sorted((f for f in os.listdir(base) if f.endswith(".log")), key=lambda f: int(f.split(".")[0]))
            if handle is not None:
                files = [f for f in files if os.path.join(base, f) != self._runtime.log_path(handle)]
            return os.path.join(base, files[-1]) if files else None
        return None

    # -- exec / attach / port-forward ---------------------------------------------------------
    async def exec(self, request: web.Request) -> web.StreamResponse:
        """kubectl exec (WebSocket v4/v5 or SPDY)."""
        w = self._worker(request)
        name = request.match_info["container"]

        async def factory(command: list[str], tty: bool, stdin: bool) -> _ExecAdapter:
            handle = w.handles.get(name)
            if handle is None or w.sandbox is None:
                raise errors.bad_request(f"container {name} is not running")
            return _ExecAdapter(await self._runtime.exec(w.sandbox, handle, command, tty))
        return await serve_exec(request, factory)

    async def attach(self, request: web.Request) -> web.StreamResponse:
        """kubectl attach: the running container's output from now on; with -i also its stdin,
        where the runtime keeps it open (oci; the process runtime does not)."""
        w = self._worker(request)
        name = request.match_info["container"]

        async def factory(command: list[str], tty: bool, stdin: bool) -> _AttachSession | _ExecAdapter:
            handle = w.handles.get(name)
            if handle is None:
                raise errors.bad_request(f"container {name} is not running")
            if stdin or tty:
                if not isinstance(self._runtime, _StdinAttachable):
                    raise errors.bad_request(
                        f"container {name} does not accept stdin: the process runtime does not keep a "
                        f"container's stdin open (attach without -i/-t to follow its output)")
                try:
                    return _ExecAdapter(await self._runtime.attach(handle))
                except StartError as e:
                    raise errors.bad_request(e.detail) from None
            return _AttachSession(self._runtime, handle)
        return await serve_attach(request, factory)

    async def portforward(self, request: web.Request) -> web.StreamResponse:
        """kubectl port-forward (SPDY, WebSocket-tunnelled SPDY, or the legacy channels)."""
        w = self._worker(request)

        async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
            if w.sandbox is None:
                raise ConnectionRefusedError(f"pod {request.match_info['pod']} has no network yet")
            return await self._runtime.open_port(w.sandbox, port)
        return await serve_portforward(request, connect)


@runtime_checkable
class _StdinAttachable(Protocol):
    """A runtime that can attach to a container's stdin (the oci runtime, through conmon)."""

    async def attach(self, handle: ContainerHandle) -> ExecSession:
        """Stdin and output of the running container."""


class _ExecAdapter:
    """The runtime's ExecSession in the shape the stream servers drive."""

    def __init__(self, session: ExecSession):
        self._s = session
        self.stdout: ByteReader = session.stdout
        self.stderr: ByteReader | None = session.stderr
        self._closing: asyncio.Task[None] | None = None

    async def write_stdin(self, data: bytes) -> None:
        await self._s.write(data)

    def close_stdin(self) -> None:
        self._closing = asyncio.get_running_loop().create_task(self._s.close_stdin())

    def resize(self, width: int, height: int) -> None:
        self._s.resize(width, height)

    async def wait(self) -> int:
        return await self._s.wait()


class _AttachSession:
    """Output of a running container from the moment of attaching until it exits."""

    def __init__(self, runtime: Runtime, handle: ContainerHandle):
        self._runtime = runtime
        self._handle = handle
        self._out = asyncio.StreamReader()
        self.stdout: ByteReader = self._out
        self.stderr: ByteReader | None = None
        self._exited = asyncio.Event()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._follow()), loop.create_task(self._wait_exit())]

    async def _wait_exit(self) -> None:
        try:
            await self._runtime.wait(self._handle)
        finally:
            self._exited.set()

    async def _follow(self) -> None:
        try:
            async for chunk in logfiles.follow_logs(self._runtime.log_path(self._handle), tail=0,
                                                    done=self._exited.is_set):
                self._out.feed_data(chunk)
        finally:
            self._out.feed_eof()

    async def write_stdin(self, data: bytes) -> None:
        return None

    def close_stdin(self) -> None:
        return None

    def resize(self, width: int, height: int) -> None:
        return None

    async def wait(self) -> int:
        await self._exited.wait()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        return 0
