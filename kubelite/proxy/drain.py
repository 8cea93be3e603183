"""The drain handshake: a terminating pod is signalled only after every proxy stopped using it.

Upstream has a race here: the kubelet sends SIGTERM as soon as it sees the deletion,
while kube-proxies still route new connections to the pod until their EndpointSlice
watch catches up; apps hide it with preStop sleeps.  kubelite closes the race with an
explicit, bounded handshake between the proxies and the node agent.

Protocol
--------
1. Deleting a pod sets ``deletionTimestamp``.  The EndpointSlice controller republishes
   the pod's endpoint as ``ready: false, terminating: true`` (``serving`` stays as the
   pod's readiness).
2. Every proxy holds a Lease ``kubelite-proxy-<node>`` in ``kube-system`` (label
   ``kubelite.io/component=proxy``, renewed every 10 s, 40 s duration).  It publishes,
   in the Lease annotation ``proxy.kubelite.io/drained-pods``, the uids of the pods it
   is done with, re-evaluated after every slice it applies and whenever traffic to a
   pod it waits for ends.  A pod is done with when both hold:

   a. *Not routed*: the pod is terminating in the proxy's applied view and no balancer
      of it counts it as Ready, so it gets no new connections by choice.  (A pod kept
      only as the terminating-serving fallback of a Service with no Ready endpoint at
      all still passes: waiting for it would only delay the inevitable, and because the
      slice controller handles pod events in order, the slice version that marks an old
      pod terminating already carries any replacement that was Ready before the
      deletion, so the fallback never hides a Ready replacement during a rollout.)
   b. *Nothing in flight*: no connection the proxy forwarded to the pod is still open,
      and none is being opened — a connect that began just before the pod stopped being
      routed counts, and a retry after a failed connect never picks a pod that is no
      longer usable.  A UDP flow has no visible end, so a pod counts as busy for
      ``traffic.UDP_QUIET`` seconds after the last datagram any flow carried to or
      from it.  See ``traffic.py`` and ``listener.py``.

   (b) is bounded: ``CONNECTION_DRAIN_LIMIT`` seconds after the proxy first saw (a), the
   pod is listed even if connections remain, so a keep-alive or streaming connection
   cannot hold a termination.  Once listed, a pod stays listed.  Nothing is cut by the
   proxy; whatever is still open when the pod is signalled ends with the pod.
3. The node agent, before sending SIGTERM, calls ``wait_endpoint_drained(client, pod,
   timeout)``.  It returns True as soon as, from the API server's point of view:
   - no EndpointSlice of the pod's namespace references the pod (nothing routes to it), or
   - every live proxy Lease (renewTime + leaseDurationSeconds in the future) lists the
     pod's uid as drained.  (No separate "slice shows it not ready" check is needed: a
     proxy lists a uid only after applying a slice in which the pod is terminating.)
   Pods of a Service with publishNotReadyAddresses stay "ready" while terminating, so a
   proxy keeps routing to them and the wait runs to its timeout, as that Service asked.
   It returns False at ``timeout`` (the agent passes a short bound of its own,
   ``DRAIN_WAIT_MAX`` in the pod worker, and starts the grace period only after it) and
   the agent proceeds anyway: the handshake can delay a termination, never block it.

No resourceVersion arithmetic is needed: a proxy can only list a uid after it has itself
applied a slice state in which that pod is terminating, and a pod never un-terminates.
A proxy that dies stops renewing its Lease and drops out after 40 s; a proxy that stops
cleanly deletes its Lease.

Why (b): (a) alone let the agent signal a pod while a request the proxy had forwarded
just before applying the terminating slice was still being answered; an app that exits
on SIGTERM (the bootcamp app does, like the Node.js original) then closed that
connection without a reply.
"""
from __future__ import annotations

import asyncio
import datetime as _dt
import logging
from typing import Any

import aiohttp

from kubelite.api import meta
from kubelite.api.resources import ENDPOINTSLICES, LEASES
from kubelite.client.errors import NotFound, StatusError
from kubelite.client.protocols import APIClient
from kubelite.client.supervise import spawn

log = logging.getLogger(__name__)
Obj = dict[str, Any]

LEASE_NAMESPACE = "kube-system"
LEASE_PREFIX = "kubelite-proxy-"
COMPONENT_LABEL = "kubelite.io/component"
COMPONENT = "proxy"
DRAINED_ANNOTATION = "proxy.kubelite.io/drained-pods"
LEASE_DURATION = 40
RENEW_INTERVAL = 10.0
POLL_INTERVAL = 0.05
# How long a proxy waits for connections it already forwarded to a pod that stopped being
# routed before listing the pod anyway.  Requests in flight at that moment are normally
# answered within milliseconds; 5 s leaves room for a slow reply on a loaded node (and
# is about as long as typical clients wait for one).  A connection still open after that
# is a long-lived one (keep-alive, streaming) that no bounded wait would see finish, so
# waiting longer would only slow every rollout; it costs a terminating pod at most 5 s of
# its grace period (30 s by default), and the agent's wait is capped by the grace anyway.
CONNECTION_DRAIN_LIMIT = 5.0


def lease_name(node_name: str) -> str:
    """The Lease a node's proxy holds."""
    return f"{LEASE_PREFIX}{node_name}"


def lease_live(lease: Obj, now: _dt.datetime | None = None) -> bool:
    """renewTime + leaseDurationSeconds is still in the future."""
    spec = lease.get("spec") or {}
    renew = meta.parse_time(spec.get("renewTime") or spec.get("acquireTime"))
    if renew is None:
        return False
    dur = spec.get("leaseDurationSeconds") or LEASE_DURATION
    return renew + _dt.timedelta(seconds=dur) > (now or meta.now())


def drained_uids(lease: Obj) -> set[str]:
    """Pod uids a proxy Lease reports as no longer used for new connections."""
    raw = meta.annotations_of(lease).get(DRAINED_ANNOTATION, "")
    return {u for u in raw.split(",") if u}


def pod_slice_state(slices: list[Obj], pod_uid: str) -> tuple[bool, bool]:
    """(referenced by some slice, shown ready by some slice) for one pod uid."""
    referenced = ready = False
    for s in slices:
        for ep in s.get("endpoints") or []:
            if (ep.get("targetRef") or {}).get("uid") != pod_uid:
                continue
            referenced = True
            if (ep.get("conditions") or {}).get("ready") is not False:
                ready = True  # nil ready means "unknown", which consumers treat as ready
    return referenced, ready


async def check_drained(client: APIClient, pod: Obj) -> bool:
    """One evaluation of the handshake (see the module docstring)."""
    uid = meta.uid(pod)
    slices = await client.resource(ENDPOINTSLICES).list(meta.namespace(pod))
    referenced, _ = pod_slice_state(slices.get("items") or [], uid)
    if not referenced:
        return True
    try:
        leases = await client.resource(LEASES).list(LEASE_NAMESPACE, label_selector=f"{COMPONENT_LABEL}={COMPONENT}")
    except NotFound:
        return True
    now = meta.now()
    return all(uid in drained_uids(lease) for lease in leases.get("items") or [] if lease_live(lease, now))


async def wait_endpoint_drained(client: APIClient, pod: Obj, timeout: float) -> bool:
    """Wait until no proxy sends new connections to ``pod``; False if ``timeout`` passed first."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max(timeout, 0.0)
    while True:
        try:
            if await check_drained(client, pod):
                return True
        except asyncio.CancelledError:
            raise
        except Exception as e:  # API hiccups must not wedge a termination
            log.debug("drain check for %s failed: %s", meta.name(pod), e)
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(min(POLL_INTERVAL, max(deadline - loop.time(), 0.0)))


class DrainReporter:
    """The proxy side: holds the proxy Lease and publishes the drained-pods set."""

    def __init__(self, client: APIClient, node_name: str):
        self._rc = client.resource(LEASES)
        self.node_name = node_name
        self.name = lease_name(node_name)
        self._drained: set[str] = set()
        self._published: set[str] | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.published = asyncio.Event()  # set after each successful write (tests, diagnostics)

    def update(self, uids: set[str]) -> None:
        """The current drained set (called after every proxy sync; cheap when unchanged)."""
        if uids != self._drained:
            self._drained = set(uids)
            self._wake.set()

    def start(self) -> None:
        """Start the (supervised) Lease writer task."""
        if self._task is None:
            self._task = spawn(f"proxy-lease-{self.node_name}", self._run, logger=log)

    async def stop(self) -> None:
        """Stop writing and delete the Lease (this proxy no longer routes anything)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        try:
            await self._rc.delete(self.name, LEASE_NAMESPACE)
        except Exception as e:
            log.debug("proxy lease %s not deleted: %s", self.name, e)

    def _body(self) -> Obj:
        return {
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": self.name, "namespace": LEASE_NAMESPACE,
                         "labels": {COMPONENT_LABEL: COMPONENT},
                         "annotations": {DRAINED_ANNOTATION: ",".join(sorted(self._drained))}},
            "spec": {"holderIdentity": self.node_name, "leaseDurationSeconds": LEASE_DURATION,
                     "renewTime": meta.rfc3339_micro()},
        }

    async def _write(self) -> None:
        body = self._body()
        snapshot = set(self._drained)
        patch = {"metadata": {"labels": body["metadata"]["labels"],
                              "annotations": body["metadata"]["annotations"]},
                 "spec": body["spec"]}
        try:
            await self._rc.patch(self.name, patch, LEASE_NAMESPACE, patch_type="merge")
        except NotFound:
            body["spec"]["acquireTime"] = body["spec"]["renewTime"]
            await self._rc.create(body, LEASE_NAMESPACE)
        self._published = snapshot
        self.published.set()

    async def _run(self) -> None:
        backoff = 0.1
        loop = asyncio.get_running_loop()
        next_renew = 0.0
        while True:
            try:
                if self._published != self._drained or loop.time() >= next_renew:
                    self._wake.clear()
                    await self._write()
                    next_renew = loop.time() + RENEW_INTERVAL
                    backoff = 0.1
                try:
                    await asyncio.wait_for(self._wake.wait(), max(next_renew - loop.time(), 0.01))
                except TimeoutError:
                    pass
            except (StatusError, aiohttp.ClientError, OSError, TimeoutError) as e:  # API hiccups: retry
                log.debug("proxy lease %s write failed: %s", self.name, e)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
