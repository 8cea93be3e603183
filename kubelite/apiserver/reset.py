"""Snapshot and reset of the whole cluster state, for test fixtures (``--allow-reset``).

``POST /kubelite/snapshot`` remembers the live state; ``POST /kubelite/reset`` puts it
back in one store transaction (the state at start-up until a snapshot is taken).  Both
are non-resource paths, so only a user whom RBAC allows ``post`` on them (the admin,
``system:masters``) may call them, and they exist only on a server started with
``--allow-reset``: a real cluster never serves them.

What clients see after a reset: resourceVersions keep growing (changed objects get new
ones), history is compacted to the reset's revision and every open watch ends, so a
client that re-watches from an older resourceVersion gets 410 Expired and re-lists, as
after an etcd compaction.  Caches inside the API server (RBAC, served CRDs) are
refreshed before the answer goes out.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from aiohttp import web

from kubelite.api import errors
from kubelite.apiserver import negotiation as neg
from kubelite.store.base import KV

log = logging.getLogger(__name__)

SNAPSHOT_PATH = "/kubelite/snapshot"
RESET_PATH = "/kubelite/reset"
# Where the in-process components keep their identities, leases and their Node: with
# components running, a reset leaves these as they are so the components keep working.
SYSTEM_NAMESPACES = ("kube-system", "kube-node-lease")
NODES_PREFIX = "/registry/core/nodes/"


class Restorable(Protocol):
    """A store that can save its live state and go back to it (``SqliteStore``)."""

    def snapshot(self) -> dict[str, KV]:
        """The live keys now (a copy)."""
        ...

    async def restore(self, saved: dict[str, KV]) -> int:
        """Make ``saved`` the live state again; the new revision."""
        ...


def namespace_of(key: str) -> str:
    """The namespace of a store key ('' for a cluster-scoped object)."""
    parts = key.split("/")  # "", "registry", group, plural, [namespace,] name
    return parts[4] if len(parts) == 6 else ""


def is_system(key: str) -> bool:
    """Does a reset leave this key alone when components run in the server?"""
    return key.startswith(NODES_PREFIX) or namespace_of(key) in SYSTEM_NAMESPACES


class ResetEndpoints:
    """The two admin paths; ``after`` refreshes the API server's caches after a reset."""

    def __init__(self, store: Restorable, after: Callable[[], Awaitable[None]], *, keep_system: bool = False):
        self.store = store
        self.after = after
        self.keep_system = keep_system  # components run in this server: leave their namespaces alone
        self.saved = store.snapshot()

    def install(self, paths: dict[str, Callable[[web.Request], Awaitable[web.StreamResponse]]]) -> None:
        """Serve the two paths from ``paths`` (the API server's own non-resource routes)."""
        paths[SNAPSHOT_PATH] = self.snapshot
        paths[RESET_PATH] = self.reset

    async def snapshot(self, request: web.Request) -> web.StreamResponse:
        """POST: the live state becomes what later resets return to."""
        _post_only(request)
        self.saved = self.store.snapshot()
        log.info("snapshot taken: %d objects", len(self.saved))
        return _success(f"snapshot of {len(self.saved)} objects")

    async def reset(self, request: web.Request) -> web.StreamResponse:
        """POST: back to the last snapshot (or to the state at start-up)."""
        _post_only(request)
        start = time.monotonic()
        target = self.saved
        if self.keep_system:
            live = self.store.snapshot()
            target = {k: v for k, v in target.items() if not is_system(k)}
            target.update({k: v for k, v in live.items() if is_system(k)})
        rev = await self.store.restore(target)
        await self.after()
        log.info("reset to %d objects at revision %d in %.1f ms", len(target), rev, (time.monotonic() - start) * 1000)
        return _success(f"reset to {len(target)} objects", rev)


def _post_only(request: web.Request) -> None:
    if request.method != "POST":
        raise errors.method_not_allowed()


def _success(message: str, rev: int | None = None) -> web.StreamResponse:
    md = {"resourceVersion": str(rev)} if rev is not None else {}
    return neg.respond({"kind": "Status", "apiVersion": "v1", "metadata": md, "status": "Success",
                        "message": message, "code": 200})
