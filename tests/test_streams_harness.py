"""A tiny fake API server + node agent for driving the real kubectl against kubelite.streams.

It answers legacy discovery and ``GET pods/p`` with a Running pod, and routes
``pods/p/{exec,attach,portforward}`` to the serve_* functions.  Exec runs a local
subprocess (under a pty for ``tty=true``); port-forward dials a local HTTP "pod" whose
ports are mapped from the container ports kubectl asks for.  Everything listens on
127.0.0.1 and runs on its own event loop thread so tests can call kubectl synchronously.
"""
from __future__ import annotations

import asyncio
import copy
import fcntl
import json
import os
import pty
import struct
import termios
import threading
from pathlib import Path
from typing import Any

from aiohttp import web

from kubelite.streams import serve_attach, serve_exec, serve_portforward

SAMPLES = Path("/work/shared/oracle/api-samples")
KUBECTL = "/usr/lib/google-cloud-sdk/bin/kubectl.1.{}"


def running_pod(name: str = "p") -> dict[str, Any]:
    """A Running pod shaped like the recorded real one."""
    pod = copy.deepcopy(json.loads((SAMPLES / "list_api_v1_namespaces_default_pods.json").read_text())["items"][0])
    meta = pod["metadata"]
    for key in ("generateName", "ownerReferences", "managedFields"):
        meta.pop(key, None)
    meta.update(name=name, namespace="default")
    pod["kind"], pod["apiVersion"] = "Pod", "v1"
    pod["status"]["phase"] = "Running"
    return pod


class PipeSession:
    """ExecSession over a plain subprocess with pipes."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.resizes: list[tuple[int, int]] = []

    async def write_stdin(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        await self.proc.stdin.drain()

    def close_stdin(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()

    def resize(self, width: int, height: int) -> None:
        self.resizes.append((width, height))

    async def wait(self) -> int:
        return await self.proc.wait()


class PtySession:
    """ExecSession over a subprocess attached to a pseudo-terminal."""

    def __init__(self, proc: asyncio.subprocess.Process, master: int) -> None:
        self.proc, self.master = proc, master
        self.stdout = asyncio.StreamReader()
        self.stderr = None
        loop = asyncio.get_running_loop()
        loop.add_reader(master, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self.master, 65536)
        except OSError:
            data = b""
        if data:
            self.stdout.feed_data(data)
        else:
            asyncio.get_running_loop().remove_reader(self.master)
            self.stdout.feed_eof()

    async def write_stdin(self, data: bytes) -> None:
        os.write(self.master, data)

    def close_stdin(self) -> None:
        pass  # a terminal has no EOF of its own; the shell exits on "exit"

    def resize(self, width: int, height: int) -> None:
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))

    async def wait(self) -> int:
        code = await self.proc.wait()
        return code


async def local_session(command: list[str], tty: bool, stdin: bool):
    """session_factory: run ``command`` (attach: an interactive sh) on this machine."""
    command = command or ["sh"]
    if tty:
        master, slave = pty.openpty()
        proc = await asyncio.create_subprocess_exec(*command, stdin=slave, stdout=slave, stderr=slave,
                                                    start_new_session=True, env={**os.environ, "PS1": "$ "})
        os.close(slave)
        return PtySession(proc, master)
    proc = await asyncio.create_subprocess_exec(
        *command, stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    return PipeSession(proc)


class FakeCluster:
    """The API server + agent + pod, on a private event loop thread."""

    def __init__(self, pod_ports: dict[int, int] | None = None) -> None:
        self.pod_ports = pod_ports or {}
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.port = 0

    async def _connect(self, port: int):
        if port not in self.pod_ports:
            raise ConnectionRefusedError(f"dial tcp 127.0.0.1:{port}: connect: connection refused")
        return await asyncio.open_connection("127.0.0.1", self.pod_ports[port])

    def _app(self) -> web.Application:
        app = web.Application()
        static = {
            "/api": "discovery-api.json",
            "/api/v1": "discovery-api-v1.json",
        }

        @web.middleware
        async def record(request: web.Request, handler):
            self.requests.append((request.method, request.path_qs, dict(request.headers)))
            return await handler(request)

        app.middlewares.append(record)

        def serve_static(path: str, name: str) -> None:
            body = (SAMPLES / name).read_bytes()

            async def handler(_: web.Request) -> web.Response:
                return web.Response(body=body, content_type="application/json")
            app.router.add_get(path, handler)

        for path, name in static.items():
            serve_static(path, name)

        async def version(_: web.Request) -> web.Response:
            return web.Response(body=(SAMPLES / "version.json").read_bytes(), content_type="application/json")

        async def get_pod(request: web.Request) -> web.Response:
            if request.match_info["name"] != "p":
                return web.json_response({"kind": "Status", "apiVersion": "v1", "metadata": {},
                                          "status": "Failure", "reason": "NotFound", "code": 404,
                                          "message": f'pods "{request.match_info["name"]}" not found'},
                                         status=404)
            return web.json_response(running_pod())

        async def exec_(request: web.Request) -> web.StreamResponse:
            return await serve_exec(request, local_session)

        async def attach(request: web.Request) -> web.StreamResponse:
            return await serve_attach(request, local_session)

        async def portforward(request: web.Request) -> web.StreamResponse:
            return await serve_portforward(request, self._connect)

        async def no_groups(_: web.Request) -> web.Response:
            return web.json_response({"kind": "APIGroupList", "apiVersion": "v1", "groups": []})

        app.router.add_get("/apis", no_groups)
        app.router.add_get("/version", version)
        base = "/api/v1/namespaces/default/pods/{name}"
        app.router.add_get(base, get_pod)
        for method in ("GET", "POST"):
            app.router.add_route(method, base + "/exec", exec_)
            app.router.add_route(method, base + "/attach", attach)
            app.router.add_route(method, base + "/portforward", portforward)
        return app

    async def _start(self) -> None:
        self.runner = web.AppRunner(self._app())
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def start(self) -> FakeCluster:
        """Start serving; returns self."""
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        return self

    def stop(self) -> None:
        """Stop serving and end the loop thread."""
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def kubeconfig(self, directory: Path) -> Path:
        """A kubeconfig pointing at this server over plain HTTP, no auth."""
        path = directory / "kubeconfig"
        path.write_text(
            "apiVersion: v1\nkind: Config\ncurrent-context: t\n"
            f"clusters:\n- name: t\n  cluster:\n    server: http://127.0.0.1:{self.port}\n"
            "contexts:\n- name: t\n  context:\n    cluster: t\n    user: u\n    namespace: default\n"
            "users:\n- name: u\n  user: {}\n")
        return path


class PodHTTPServer:
    """A trivial HTTP server standing in for the process inside the pod."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.port = 0

    async def _start(self) -> None:
        app = web.Application()

        async def hello(request: web.Request) -> web.Response:
            body = await request.read()
            return web.Response(text=f"hello from pod path={request.path} body={len(body)}\n")

        app.router.add_route("*", "/{tail:.*}", hello)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def start(self) -> PodHTTPServer:
        """Start on the given loop (running in another thread)."""
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        return self
