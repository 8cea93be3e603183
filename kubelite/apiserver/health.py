"""/healthz, /livez and /readyz: named checks, reported as kube-apiserver reports them.

Each endpoint runs its checks in order.  All pass: ``ok`` (or, with ``?verbose``, one
``[+]<name> ok`` line per check and ``<endpoint> check passed``).  One fails: 500 with every
line and ``[-]<name> failed: reason withheld`` for the failures (the endpoints are public, so
the reason only goes to the log) and ``<endpoint> check failed``.  ``?exclude=<name>`` skips
a check; ``/<endpoint>/<name>`` runs one check alone.

The checks are real and carry upstream's names where they mean the same thing:
``ping``; ``log`` (the log handlers flush); ``etcd`` and ``etcd-readiness`` (the store
answers a read in time); ``poststarthook/start-system-namespaces-controller`` and
``poststarthook/bootstrap-controller`` (the system namespaces, default ServiceAccounts and
the ``kubernetes`` Service exist: our bootstrap has run); ``shutdown`` (readyz only: the
server is not stopping).  Upstream's checks for parts kubelite does not have (the
aggregator, CRD informers, admission webhooks' informers) are not listed.

``kubelite server`` adds readyz-only checks for the components it runs in the same
process (``add_readiness``), so that ``/readyz`` says ok only when everything local
serves: ``kubelite-controllers-synced``, ``kubelite-node-agent-ready`` and
``kubelite-proxy-synced`` (see ``server.py``).  They are kubelite's own, with no upstream
twin: kube-apiserver knows nothing of the controllers, kubelets and proxies of its cluster.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from kubelite.api import errors
from kubelite.store.base import Store

log = logging.getLogger("kubelite.apiserver.health")

ENDPOINTS = ("healthz", "livez", "readyz")
STORE_TIMEOUT = 2.0  # seconds the store has to answer, as upstream's etcd check allows


class CheckFailed(Exception):
    """A health check's failure, with the reason for the log."""


@dataclass(frozen=True)
class Check:
    """One named check."""

    name: str
    run: Callable[[], Awaitable[None]]


class Health:
    """The checks of one API server and the handler for the three endpoints."""

    def __init__(self, store: Store, bootstrapped: asyncio.Event, closing: asyncio.Event):
        self._store = store
        self._bootstrapped = bootstrapped
        self._closing = closing
        hooks = [Check(f"poststarthook/{name}", self._bootstrap_done)
                 for name in ("start-system-namespaces-controller", "bootstrap-controller")]
        base = [Check("ping", self._ping), Check("log", self._log), Check("etcd", self._etcd)]
        self.checks: dict[str, list[Check]] = {
            "healthz": base + hooks,
            "livez": base + hooks,
            "readyz": [*base, Check("etcd-readiness", self._etcd), *hooks, Check("shutdown", self._shutdown)],
        }

    def add_readiness(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        """A check that only /readyz runs (before ``shutdown``); ``run`` raises CheckFailed."""
        checks = self.checks["readyz"]
        at = next((i for i, c in enumerate(checks) if c.name == "shutdown"), len(checks))
        checks.insert(at, Check(name, run))

    # -- the checks --------------------------------------------------------------------
    async def _ping(self) -> None:
        return None

    async def _log(self) -> None:
        for logger in (logging.getLogger(), logging.getLogger("kubelite")):
            for handler in logger.handlers:
                try:
                    handler.flush()
                except Exception as e:  # a handler whose stream broke
                    raise CheckFailed(f"logging blocked: {e}") from e

    async def _etcd(self) -> None:
        try:
            await asyncio.wait_for(self._store.get("/registry/health"), STORE_TIMEOUT)
        except TimeoutError:
            raise CheckFailed(f"the store did not answer within {STORE_TIMEOUT:g}s") from None
        except Exception as e:
            raise CheckFailed(f"the store failed a read: {e}") from e

    async def _bootstrap_done(self) -> None:
        if not self._bootstrapped.is_set():
            raise CheckFailed("not finished")

    async def _shutdown(self) -> None:
        if self._closing.is_set():
            raise CheckFailed("process is shutting down")

    # -- the endpoints -----------------------------------------------------------------
    async def handle(self, request: web.Request, path: str) -> web.Response:
        """Serve ``/<endpoint>`` or ``/<endpoint>/<check>``."""
        endpoint, _, single = path.strip("/").partition("/")
        checks = self.checks[endpoint]
        if single:
            check = next((c for c in checks if c.name == single), None)
            if check is None:
                raise errors.no_such_path()
            try:
                await check.run()
            except CheckFailed as e:
                return _text(f"internal server error: {e}\n", 500)
            return _text("ok")
        excluded = set(request.query.getall("exclude", []))
        lines, failed = [], []
        for check in checks:
            if check.name in excluded:
                excluded.discard(check.name)
                lines.append(f"[+]{check.name} excluded: ok")
                continue
            try:
                await check.run()
            except CheckFailed as e:
                log.info("%s check %s failed: %s", endpoint, check.name, e)
                lines.append(f"[-]{check.name} failed: reason withheld")
                failed.append(check.name)
            else:
                lines.append(f"[+]{check.name} ok")
        if excluded:
            names = ", ".join(f'"{n}"' for n in sorted(excluded))
            lines.append(f"warn: some health checks cannot be excluded: no matches for {names}")
        report = "".join(line + "\n" for line in lines)
        if failed:
            return _text(f"{report}{endpoint} check failed\n", 500)
        if "verbose" not in request.query:
            return _text("ok")
        return _text(f"{report}{endpoint} check passed\n")


def _text(body: str, status: int = 200) -> web.Response:
    return web.Response(status=status, text=body, content_type="text/plain", charset="utf-8",
                        headers={"X-Content-Type-Options": "nosniff"})
