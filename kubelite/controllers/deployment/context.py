"""What the Deployment controller's step modules need from the controller.

``sync``, ``rolling``, ``recreate``, ``rollback``, ``progress``, ``history`` and
``autorollback`` are the steps of one sync, split by concern as upstream splits them.  They act through this
narrow interface, which ``DeploymentController`` implements, so that they never import
the controller that imports them (and so that a test can drive a step with a stand-in).
"""
from __future__ import annotations

import datetime as _dt
from typing import Any, Protocol

from kubelite.client.protocols import Lister, ResourceAPI

Obj = dict[str, Any]


class DeploymentContext(Protocol):
    """The controller as its sync steps see it."""

    @property
    def rs_client(self) -> ResourceAPI:
        """Writes to ReplicaSets."""
        ...

    @property
    def rs_informer(self) -> Lister:
        """The cached ReplicaSets."""
        ...

    def now(self) -> _dt.datetime:
        """The controller's clock (replaceable in tests)."""
        ...

    def enqueue_after(self, d: Obj, seconds: float) -> None:
        """Sync this Deployment again after ``seconds``."""
        ...

    def enqueue_rate_limited(self, d: Obj) -> None:
        """Sync this Deployment again with back-off."""
        ...

    async def update(self, d: Obj) -> Obj:
        """Write the Deployment (its spec or metadata)."""
        ...

    async def update_status(self, d: Obj) -> Obj:
        """Write the Deployment's status."""
        ...

    def event(self, d: Obj, type_: str, reason: str, message: str) -> None:
        """Record an event about the Deployment."""
        ...

    def replicaset_pods(self, d: Obj, rs: Obj) -> list[Obj]:
        """The cached pods this ReplicaSet of the Deployment controls."""
        ...

    def proxy_leases(self) -> list[Obj]:
        """The cached proxy Leases, which carry each node's traffic counts (proxy/stats.py)."""
        ...
