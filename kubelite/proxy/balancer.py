"""Endpoint choice for one service port: which endpoints are usable, and in what order to try them.

Usable endpoints follow kube-proxy's ``CategorizeEndpoints`` (``pkg/proxy/topology.go``),
minus topology hints:

- Cluster traffic policy: the Ready endpoints; when there are none anywhere, fall back to
  endpoints that are Serving *and* Terminating (a rollout's last old pods keep answering
  until a replacement is ready, instead of the Service going dark);
- Local traffic policy (``internalTrafficPolicy: Local`` for cluster-IP traffic,
  ``externalTrafficPolicy: Local`` for node-port / load-balancer traffic): the same rule
  applied to this node's endpoints only.

A new connection is offered a candidate list: the ClientIP-affinity endpoint if one is
still usable, otherwise the next endpoint in round-robin order, followed by the others so
a refused connect can move on without the client noticing.  Nothing here does I/O.

During a canary or blue/green rollout (see weights.py) the usable endpoints are split by
revision with a weight each: a new connection first picks a revision at random in
proportion to the weights, then round-robins inside it; the other revisions follow as
fallbacks (weight-0 ones last).
"""
from __future__ import annotations

import random
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import NamedTuple

DEFAULT_AFFINITY_TIMEOUT = 10800  # seconds; upstream's default for sessionAffinity ClientIP
MAX_AFFINITY_ENTRIES = 65536       # a flood of distinct clients must not grow memory without bound


class Endpoint(NamedTuple):
    """One backend of one service port, with its EndpointSlice conditions."""

    ip: str
    port: int
    ready: bool = True
    serving: bool = True
    terminating: bool = False
    node_name: str = ""
    pod_uid: str = ""
    pod_name: str = ""  # targetRef name: tells the Deployment revision (weights.py)

    @property
    def addr(self) -> tuple[str, int]:
        """(ip, port) for connecting."""
        return (self.ip, self.port)


# (relative weight, the endpoints of one revision), in a stable order.
Groups = list[tuple[int, list[Endpoint]]]
Weigher = Callable[[list[Endpoint]], Groups | None]


def usable(endpoints: list[Endpoint], *, local_only: bool = False, node_name: str = "") -> list[Endpoint]:
    """The endpoints new connections may use: Ready ones, else Serving+Terminating ones."""
    pool = [e for e in endpoints if e.node_name == node_name] if local_only else endpoints
    ready = [e for e in pool if e.ready]
    if ready:
        return ready
    return [e for e in pool if e.serving and e.terminating]


class Balancer:
    """Round-robin (or ClientIP-sticky) choice over the usable endpoints of one service port."""

    def __init__(self, *, node_name: str = "", affinity_timeout: float | None = None,
                 internal_local: bool = False, external_local: bool = False,
                 clock: Callable[[], float] = time.monotonic, rng: random.Random | None = None):
        self.node_name = node_name
        self.affinity_timeout = affinity_timeout  # None: sessionAffinity None
        self.internal_local = internal_local
        self.external_local = external_local
        self._clock = clock
        self.endpoints: list[Endpoint] = []
        self._internal: list[Endpoint] = []
        self._external: list[Endpoint] = []
        self._next = 0
        self._weigher: Weigher | None = None
        self._groups: dict[bool, Groups | None] = {False: None, True: None}  # by "external"
        self._group_next: dict[tuple[bool, int], int] = {}
        self._rng = rng or random.Random()
        self._affinity: OrderedDict[str, tuple[tuple[str, int], float]] = OrderedDict()

    def configure(self, *, affinity_timeout: float | None, internal_local: bool, external_local: bool) -> None:
        """Apply Service-level settings (affinity, traffic policies)."""
        if affinity_timeout != self.affinity_timeout:
            self._affinity.clear()
        self.affinity_timeout = affinity_timeout
        self.internal_local = internal_local
        self.external_local = external_local
        self._recompute()

    def set_endpoints(self, endpoints: list[Endpoint], weigher: Weigher | None = None) -> None:
        """Replace the endpoint set (ordering is made stable so round-robin is fair); ``weigher``
        splits usable endpoints into weighted revisions (None: spread equally)."""
        self.endpoints = sorted(set(endpoints), key=lambda e: (e.ip, e.port, e.pod_uid))
        self._weigher = weigher
        self._recompute()

    def _recompute(self) -> None:
        self._internal = usable(self.endpoints, local_only=self.internal_local, node_name=self.node_name)
        self._external = usable(self.endpoints, local_only=self.external_local, node_name=self.node_name)
        w = self._weigher
        self._groups = {False: w(self._internal) if w else None, True: w(self._external) if w else None}
        live = {e.addr for e in self._internal} | {e.addr for e in self._external}
        for ip in [ip for ip, (addr, _) in self._affinity.items() if addr not in live]:
            del self._affinity[ip]

    def usable(self, external: bool = False) -> list[Endpoint]:
        """The current usable endpoints for internal or external traffic."""
        return self._external if external else self._internal

    def in_use(self) -> set[str]:
        """Pod uids that new connections may currently reach (internal or external)."""
        return {e.pod_uid for e in self._internal} | {e.pod_uid for e in self._external}

    def groups(self, external: bool = False) -> Groups | None:
        """The weighted revisions new connections are split over (None: no weighting)."""
        return self._groups[external]

    def _weighted(self, external: bool, groups: Groups) -> list[Endpoint]:
        """Candidates with the first endpoint from a revision drawn by weight."""
        live = [(i, w, eps) for i, (w, eps) in enumerate(groups) if w > 0]
        i, _, eps = self._rng.choices(live, weights=[w for _, w, _ in live])[0]
        n = self._group_next.get((external, i), 0) % len(eps)
        self._group_next[(external, i)] = (n + 1) % len(eps)
        rest = [e for j, w, g in live if j != i for e in g] + [e for w, g in groups if w <= 0 for e in g]
        return eps[n:] + eps[:n] + rest

    def candidates(self, client_ip: str = "", *, external: bool = False) -> list[Endpoint]:
        """Endpoints to try for a new connection, best first (empty: refuse it)."""
        pool = self.usable(external)
        if not pool:
            return []
        first = None
        if self.affinity_timeout is not None and client_ip:
            hit = self._affinity.get(client_ip)
            if hit is not None:
                addr, expires = hit
                if expires > self._clock():
                    first = next((i for i, e in enumerate(pool) if e.addr == addr), None)
                else:
                    del self._affinity[client_ip]
        if first is None:
            groups = self._groups[external]
            if groups:
                return self._weighted(external, groups)
            first = self._next % len(pool)
            self._next = (first + 1) % max(len(pool), 1)
        return pool[first:] + pool[:first]

    def connected(self, client_ip: str, ep: Endpoint) -> None:
        """Record a successful connection (remembers the endpoint for ClientIP affinity)."""
        if self.affinity_timeout is None or not client_ip:
            return
        self._affinity[client_ip] = (ep.addr, self._clock() + self.affinity_timeout)
        self._affinity.move_to_end(client_ip)
        while len(self._affinity) > MAX_AFFINITY_ENTRIES:
            self._affinity.popitem(last=False)
