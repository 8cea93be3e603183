"""Container probes (httpGet, tcpSocket, exec) and their timing, as the kubelet's prober.

One ``Prober`` task per probe runs after initialDelaySeconds every periodSeconds and
flips its result only after successThreshold / failureThreshold consecutive results.
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

Obj = dict[str, Any]
ExecFn = Callable[[list[str], float], Awaitable[tuple[int, str]]]
ProbeFn = Callable[[], Awaitable[tuple[bool, str]]]
# (kind, result, message): True/False when the probe's state flips, None for one failed attempt.
ResultFn = Callable[[str, bool | None, str], None]


def _port(container: Obj, port: Any) -> int:
    if isinstance(port, int):
        return port
    if isinstance(port, str) and port.isdigit():
        return int(port)
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return int(p["containerPort"])
    raise ValueError(f"port {port!r} not found in container")


async def run_probe(probe: Obj, container: Obj, pod_ip: str, exec_fn: ExecFn) -> tuple[bool, str]:
    """One probe attempt → (success, failure message)."""
    timeout = float(probe.get("timeoutSeconds") or 1)
    try:
        if "httpGet" in probe:
            hg = probe["httpGet"]
            host = hg.get("host") or pod_ip
            port = _port(container, hg.get("port"))
            scheme = (hg.get("scheme") or "HTTP").lower()
            path = hg.get("path") or "/"
            headers = {h["name"]: h.get("value", "") for h in hg.get("httpHeaders") or []}
            headers.setdefault("User-Agent", "kube-probe/1.33")
            url = f"{scheme}://{host}:{port}{path if path.startswith('/') else '/' + path}"
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as s, \
                    s.get(url, headers=headers, ssl=False, allow_redirects=True) as r:
                await r.read()
                if 200 <= r.status < 400:
                    return True, ""
                return False, f"HTTP probe failed with statuscode: {r.status}"
        if "tcpSocket" in probe:
            ts = probe["tcpSocket"]
            port = _port(container, ts.get("port"))
            host = ts.get("host") or pod_ip
            _, w = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
            w.close()
            return True, ""
        if "exec" in probe:
            code, out = await exec_fn(list(probe["exec"].get("command") or []), timeout)
            if code == 0:
                return True, ""
            return False, out.strip() or f"command terminated with exit code {code}"
        if "grpc" in probe:
            return False, "grpc probes are not supported by this node agent"
    except TimeoutError:
        return False, "Get: context deadline exceeded (Client.Timeout exceeded while awaiting headers)" \
            if "httpGet" in probe else "timeout"
    except (aiohttp.ClientError, OSError, ValueError) as e:
        if "httpGet" in probe:
            return False, f'Get "{_url_of(probe, container, pod_ip)}": {_dial_error(e)}'
        if "tcpSocket" in probe:
            return False, f"dial tcp {pod_ip}:{probe['tcpSocket'].get('port')}: {_dial_error(e)}"
        return False, str(e)
    return False, "probe has no handler"


def _url_of(probe: Obj, container: Obj, pod_ip: str) -> str:
    hg = probe["httpGet"]
    try:
        port = _port(container, hg.get("port"))
    except ValueError:
        port = hg.get("port")
    return f"{(hg.get('scheme') or 'HTTP').lower()}://{hg.get('host') or pod_ip}:{port}{hg.get('path') or '/'}"


def _dial_error(e: Exception) -> str:
    if isinstance(e, ConnectionRefusedError) or "refused" in str(e).lower():
        return "dial tcp: connect: connection refused"
    return str(e)


class Prober:
    """Runs one probe periodically and reports state changes through ``on_change``."""

    def __init__(self, kind: str, probe: Obj, container: Obj, pod_ip: str, exec_fn: ExecFn,
                 on_result: ResultFn, run: ProbeFn | None = None):
        self.kind = kind  # startup, readiness, liveness
        self.run = run  # answers each attempt instead of run_probe (a runtime that simulates its pods)
        self.probe = probe
        self.container = container
        self.pod_ip = pod_ip
        self.exec_fn = exec_fn
        self.on_result = on_result
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin probing."""
        self.task = asyncio.create_task(self._loop(), name=f"probe-{self.kind}-{self.container['name']}")

    def stop(self) -> None:
        """Stop probing."""
        if self.task:
            self.task.cancel()

    async def _loop(self) -> None:
        p = self.probe
        period = float(p.get("periodSeconds") or 10)
        ok_needed = int(p.get("successThreshold") or 1)
        fail_needed = int(p.get("failureThreshold") or 3)
        await asyncio.sleep(float(p.get("initialDelaySeconds") or 0))
        oks = fails = 0
        state: bool | None = None
        while True:
            if self.run is not None:
                ok, msg = await self.run()
            else:
                ok, msg = await run_probe(p, self.container, self.pod_ip, self.exec_fn)
            if ok:
                oks, fails = oks + 1, 0
                if oks >= ok_needed and state is not True:
                    state = True
                    self.on_result(self.kind, True, "")
            else:
                oks, fails = 0, fails + 1
                self.on_result(self.kind, None, msg)  # an individual failure (for the Unhealthy event)
                if fails >= fail_needed and state is not False:
                    state = False
                    self.on_result(self.kind, False, msg)
            await asyncio.sleep(period)
