"""Pod admission on the node, as the kubelet's predicate admit handler (host ports).

The scheduler keeps two pods that want the same host port off one node, but a pod
created with spec.nodeName already set never meets the scheduler. The node checks
again when a pod first arrives: a pod whose hostPort (same protocol, same or wildcard
hostIP) is held by a pod the node already runs is refused — phase Failed, upstream's
reason and message, a Warning event — and never started.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any

from kubelite.api import meta
from kubelite.client.errors import StatusError
from kubelite.client.events import WARNING, EventRecorder
from kubelite.client.rest import ResourceClient

log = logging.getLogger("kubelite.node")
Obj = dict[str, Any]

NODE_PORTS_REASON = "NodePorts"
NODE_PORTS_MESSAGE = "Predicate NodePorts failed: node(s) didn't have free ports for the requested pod ports"
REJECTED_PREFIX = "Pod was rejected: "
_WILDCARD = "0.0.0.0"


def host_ports(pod: Obj) -> set[tuple[str, int, str]]:
    """The (hostIP, hostPort, protocol) triples the pod's containers ask for."""
    out = set()
    for c in (pod.get("spec") or {}).get("containers") or []:
        for p in c.get("ports") or []:
            if p.get("hostPort"):
                out.add((p.get("hostIP") or _WILDCARD, int(p["hostPort"]), p.get("protocol") or "TCP"))
    return out


def ports_conflict(want: set[tuple[str, int, str]], used: set[tuple[str, int, str]]) -> bool:
    """Any wanted port already used: same port and protocol, and the same or a wildcard IP."""
    return any(port == uport and proto == uproto and (ip == uip or _WILDCARD in (ip, uip))
               for ip, port, proto in want for uip, uport, uproto in used)


def refusal(pod: Obj, admitted: Iterable[Obj]) -> tuple[str, str] | None:
    """(reason, message) when the node must refuse ``pod`` beside the pods it runs; None to admit."""
    want = host_ports(pod)
    if not want:
        return None
    used: set[tuple[str, int, str]] = set()
    for other in admitted:
        if meta.uid(other) != meta.uid(pod):
            used |= host_ports(other)
    if ports_conflict(want, used):
        return NODE_PORTS_REASON, NODE_PORTS_MESSAGE
    return None


class Admitter:
    """Decides, once per pod, whether the node runs it; reports refusals through the API."""

    def __init__(self, pods_api: ResourceClient, recorder: EventRecorder):
        self._pods_api = pods_api
        self._recorder = recorder
        self._refused: set[str] = set()

    def refuses(self, pod: Obj, admitted: Callable[[], Iterable[Obj]]) -> bool:
        """True when ``pod`` must not run here (its refusal is written in the background)."""
        uid = meta.uid(pod)
        if uid in self._refused:
            return True
        if not host_ports(pod):  # the common case costs nothing
            return False
        found = refusal(pod, admitted())
        if found is None:
            return False
        self._refused.add(uid)
        asyncio.get_running_loop().create_task(self._reject(pod, *found))
        return True

    def forget(self, pod: Obj) -> None:
        """The pod object is gone."""
        self._refused.discard(meta.uid(pod))

    async def _reject(self, pod: Obj, reason: str, message: str) -> None:
        self._recorder.event(pod, WARNING, reason, message)
        status = {"phase": "Failed", "reason": reason, "message": REJECTED_PREFIX + message}
        try:
            await self._pods_api.patch(meta.name(pod), {"status": status}, meta.namespace(pod), patch_type="merge",
                                       subresource="status", field_manager="kubelet")
        except StatusError as e:
            log.debug("refusing pod %s: %s", meta.key(pod), e)
