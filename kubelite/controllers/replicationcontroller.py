"""The ReplicationController controller: the ReplicaSet controller run for core/v1
ReplicationControllers, as upstream does through an adapter.

The only differences are the kind itself and the selector: an RC's ``spec.selector`` is a
plain label map (equality only), seen here as a LabelSelector's ``matchLabels``.
"""
from __future__ import annotations

from typing import Any

from kubelite.api.resources import REPLICATIONCONTROLLERS
from kubelite.client.protocols import APIClient, SharedInformerFactory
from kubelite.controllers.replicaset import ControlledKind, ReplicaSetController

Obj = dict[str, Any]


def rc_selector(rc: Obj) -> Obj | None:
    """The RC's label map as a LabelSelector (None when it has none, which matches nothing)."""
    sel = (rc.get("spec") or {}).get("selector")
    return {"matchLabels": dict(sel)} if sel else None


REPLICATIONCONTROLLER_KIND = ControlledKind(REPLICATIONCONTROLLERS, "ReplicationController", "v1",
                                            "replication", rc_selector)


class ReplicationManager(ReplicaSetController):
    """Keeps spec.replicas pods running for every ReplicationController."""

    def __init__(self, client: APIClient, factory: SharedInformerFactory, **kwargs: Any):
        super().__init__(client, factory, kind=REPLICATIONCONTROLLER_KIND, **kwargs)
