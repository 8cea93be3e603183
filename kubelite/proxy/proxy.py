"""The per-node service proxy (kube-proxy's twin), as an API client of services + EndpointSlices.

Design:
- two informers (Services, EndpointSlices); their handlers only enqueue the Service key;
  one worker syncs a key by reading both caches (level-based, like upstream's proxier);
- per Service port, one ``Balancer`` holds the endpoints from every slice of the Service
  (matched by port name and protocol) and the listeners share it:
  * ClusterIP  → ``spec.clusterIP:port``;
  * NodePort / LoadBalancer → ``<node_ip>:nodePort`` (external traffic);
  * LoadBalancer ingress IPs and externalIPs that are this node's → ``<ip>:port``;
  headless and ExternalName Services get no listener;
- listeners that are no longer wanted stop accepting, and their open connections drain
  in the background; a port that cannot be bound is retried later (it may be held by a
  listener that is still closing, or by an unrelated process);
- after each sync, and whenever traffic to a pod that stopped being routed ends, the
  ``DrainReporter`` publishes which terminating pods this proxy is done with (see
  ``drain.py`` for the rule and the handshake with the node agent).

As root with nftables, ``nftables.NftProxy`` reuses this class's informers, per-Service
view and drain reporting, and lets the kernel forward instead of listeners.

Addresses: cluster IPs in 127.0.0.0/8 are bound directly (all of it is local on Linux).
Another cluster IP is bound only if it is already local, or — when running as root with
``manage_addresses=True`` — after adding it to the dummy interface ``kl-svc``, which
``stop()`` removes again.
"""
from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import os
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

from kubelite.api import meta
from kubelite.api.resources import DEPLOYMENTS, ENDPOINTSLICES, NODES, SERVICES
from kubelite.client.errors import NotFound, StatusError
from kubelite.client.informer import InformerFactory
from kubelite.client.protocols import APIClient, SharedInformerFactory
from kubelite.client.workqueue import WorkQueue, run_workers
from kubelite.proxy.balancer import DEFAULT_AFFINITY_TIMEOUT, Balancer, Endpoint, Groups
from kubelite.proxy.drain import CONNECTION_DRAIN_LIMIT, DrainReporter
from kubelite.proxy.listener import TCPListener
from kubelite.proxy.stats import StatsPublisher, TrafficStats
from kubelite.proxy.traffic import PodTraffic
from kubelite.proxy.udp import UDPListener
from kubelite.proxy.weights import TRAFFIC_WEIGHTS, WeightTable

log = logging.getLogger(__name__)
Obj = dict[str, Any]

LABEL_SERVICE_NAME = "kubernetes.io/service-name"
DUMMY_INTERFACE = "kl-svc"
BIND_RETRY = 2.0
DRAIN_TIMEOUT = 30.0


def slice_endpoints(slices: list[Obj], port_name: str, protocol: str) -> list[Endpoint]:
    """Endpoints for one service port, from every IPv4 slice of its Service."""
    out = []
    for s in slices:
        if s.get("addressType", "IPv4") != "IPv4":
            continue
        port = next((p for p in s.get("ports") or []
                     if (p.get("name") or "") == port_name and (p.get("protocol") or "TCP") == protocol), None)
        if port is None or not port.get("port"):
            continue
        for ep in s.get("endpoints") or []:
            cond = ep.get("conditions") or {}
            ready = cond.get("ready") is not False          # nil means ready
            serving = cond.get("serving", ready) is not False  # nil means "same as ready"
            ref = ep.get("targetRef") or {}
            uid = ref.get("uid", "")
            pod = ref.get("name", "") if ref.get("kind", "Pod") == "Pod" else ""
            for addr in (ep.get("addresses") or [])[:1]:     # consumers use the first address
                out.append(Endpoint(addr, int(port["port"]), ready, serving, bool(cond.get("terminating")),
                                    ep.get("nodeName") or "", uid, pod))
    return out


def terminating_uids(slices: list[Obj]) -> set[str]:
    """Pods shown as terminating in these slices."""
    return {(ep.get("targetRef") or {}).get("uid", "") for s in slices for ep in s.get("endpoints") or []
            if (ep.get("conditions") or {}).get("terminating")} - {""}


@dataclass
class _ServiceState:
    """What the proxy has applied for one Service."""

    balancers: dict[tuple[str, str], Balancer] = field(default_factory=dict)   # (port name, proto)
    listeners: dict[tuple[str, int, str], TCPListener | UDPListener] = field(default_factory=dict)
    terminating: set[str] = field(default_factory=set)  # pod uids terminating in applied slices
    ready: set[str] = field(default_factory=set)        # pod uids routed as Ready here


def _headless(spec: Obj) -> bool:
    return (spec.get("clusterIP") or "None") == "None"


def _is_loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


class Proxy:
    """Forwards ClusterIP / NodePort / LoadBalancer traffic on one node to ready endpoints."""

    def __init__(self, client: APIClient, *, node_name: str, node_ip: str, manage_addresses: bool = False,
                 factory: SharedInformerFactory | None = None, drain_timeout: float = DRAIN_TIMEOUT,
                 connection_drain_limit: float = CONNECTION_DRAIN_LIMIT):
        self.client = client
        self.node_name = node_name
        self.node_ip = node_ip
        self.manage_addresses = manage_addresses
        self.drain_timeout = drain_timeout
        self.connection_drain_limit = connection_drain_limit
        self._clock = time.monotonic  # the clock PodTraffic uses too
        self.traffic = PodTraffic(clock=self._clock, on_idle=self._traffic_ended)
        self._stopped: dict[str, float] = {}  # terminating pods not routed any more -> since when
        self._listed: set[str] = set()         # ... of which reported drained (stays so)
        self._recheck: asyncio.TimerHandle | None = None
        self._recheck_at = 0.0
        self._own_factory = factory is None
        self.factory: SharedInformerFactory = factory or InformerFactory(client)
        self.services = self.factory.informer(SERVICES)
        self.slices = self.factory.informer(ENDPOINTSLICES)
        # Canary / blue-green weights (weights.py); only their annotation is looked at.
        self.deployments = self.factory.informer(DEPLOYMENTS)
        self.queue = WorkQueue("proxy")
        self.reporter = DrainReporter(client, node_name)
        # Requests / errors per revision, published on the same Lease (stats.py).
        self.stats = TrafficStats(clock=self._clock)
        self.stats_publisher = StatsPublisher(client, node_name, self.stats)
        self._state: dict[str, _ServiceState] = {}
        self._draining: set[asyncio.Task[bool]] = set()
        self._added_addresses: set[str] = set()
        self._bind_failures: dict[tuple[str, int, str], int | None] = {}  # (ip, port, protocol) -> errno
        self._worker: asyncio.Task[None] | None = None
        self.synced = asyncio.Event()  # set after the first full sync (tests, readiness)
        self.services.add_handler(self._enqueue, lambda o, n: self._enqueue(n), self._enqueue)
        self.slices.add_handler(self._enqueue_slice, self._update_slice, self._enqueue_slice)
        self.deployments.add_handler(self._weights_changed, self._update_deployment, self._weights_changed)

    # -- events --------------------------------------------------------------------------
    def _enqueue(self, svc: Obj) -> None:
        self.queue.add(meta.key(svc))

    def _enqueue_slice(self, slc: Obj) -> None:
        name = meta.labels(slc).get(LABEL_SERVICE_NAME)
        if name:
            self.queue.add(f"{meta.namespace(slc)}/{name}")

    def _update_slice(self, old: Obj, new: Obj) -> None:
        self._enqueue_slice(new)
        if meta.labels(old).get(LABEL_SERVICE_NAME) != meta.labels(new).get(LABEL_SERVICE_NAME):
            self._enqueue_slice(old)

    def _weights_changed(self, d: Obj) -> None:
        if TRAFFIC_WEIGHTS not in meta.annotations_of(d):
            return
        # Rare (a rollout step): re-sync the namespace's Services rather than work out which.
        for svc in self.services.list(meta.namespace(d)):
            self._enqueue(svc)

    def _update_deployment(self, old: Obj, new: Obj) -> None:
        if meta.annotations_of(old).get(TRAFFIC_WEIGHTS) != meta.annotations_of(new).get(TRAFFIC_WEIGHTS):
            for svc in self.services.list(meta.namespace(new)):
                self._enqueue(svc)

    def weight_table(self) -> WeightTable:
        """The traffic weights the Deployments currently publish."""
        return WeightTable(self.deployments.list())

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        """Start informers, wait for their first list, apply everything, start the Lease."""
        self.services.start()
        self.slices.start()
        # Not waited for: a proxy not allowed to watch Deployments still routes (unweighted).
        self.deployments.start()
        await asyncio.gather(self.services.wait_synced(), self.slices.wait_synced())
        for svc in self.services.list():
            await self._sync_logged(meta.key(svc))
        await self._initial_sync_done()
        self.synced.set()
        self.reporter.start()
        self.stats_publisher.start()
        self._worker = asyncio.create_task(run_workers(self.queue, self.sync, 1), name="proxy-sync")

    async def stop(self) -> None:
        """Stop accepting everywhere, drain open connections (bounded), release addresses."""
        self.queue.shutdown()
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
            self._worker = None
        if self._recheck is not None:
            self._recheck.cancel()
            self._recheck = None
        await self.stats_publisher.stop()
        await self.reporter.stop()
        if self._own_factory:
            await self.factory.stop()
        listeners = [lst for st in self._state.values() for lst in st.listeners.values()]
        self._state.clear()
        await asyncio.gather(*(lst.drain(self.drain_timeout) for lst in listeners), return_exceptions=True)
        if self._draining:
            await asyncio.gather(*list(self._draining), return_exceptions=True)
        self._release_addresses()

    async def _initial_sync_done(self) -> None:
        """Hook: every Service was synced once (the kernel path applies its first ruleset here)."""

    # -- sync ------------------------------------------------------------------------------
    async def _sync_logged(self, key: str) -> None:
        try:
            await self.sync(key)
        except Exception:
            log.exception("proxy: sync %s failed", key)

    async def sync(self, key: str) -> None:
        """Apply one Service: balancers first (so routing is right at once), then listeners."""
        ns, _, name = key.partition("/")
        svc = self.services.get(key)
        st = self._state.get(key)
        if svc is None or (svc.get("spec") or {}).get("type") == "ExternalName":
            if st is not None:
                del self._state[key]
                for lst in st.listeners.values():
                    self._drain_later(lst)
            self._report()
            return
        if st is None:
            st = self._state[key] = _ServiceState()
        spec = svc.get("spec") or {}
        slices = [s for s in self.slices.list(ns) if meta.labels(s).get(LABEL_SERVICE_NAME) == name]
        affinity = None
        if spec.get("sessionAffinity") == "ClientIP":
            cfg = ((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {})
            affinity = float(cfg.get("timeoutSeconds") or DEFAULT_AFFINITY_TIMEOUT)
        table = self.weight_table()

        def weigh(eps: list[Endpoint]) -> Groups | None:
            return table.groups(ns, eps)
        wanted_bal: dict[tuple[str, str], Balancer] = {}
        wanted_listeners: dict[tuple[str, int, str], tuple[Balancer, bool]] = {}
        for sp in spec.get("ports") or []:
            proto = sp.get("protocol") or "TCP"
            bkey = (sp.get("name") or "", proto)
            bal = st.balancers.get(bkey) or Balancer(node_name=self.node_name)
            bal.configure(affinity_timeout=affinity,
                          internal_local=spec.get("internalTrafficPolicy") == "Local",
                          external_local=spec.get("externalTrafficPolicy") == "Local")
            bal.set_endpoints(slice_endpoints(slices, bkey[0], proto), weigh if table else None)
            wanted_bal[bkey] = bal
            if proto not in ("TCP", "UDP"):
                continue  # SCTP forwarding is not implemented
            for addr, external in self._addresses_for(svc, sp):
                wanted_listeners.setdefault((addr[0], addr[1], proto), (bal, external))
        st.balancers = wanted_bal
        st.terminating = terminating_uids(slices)
        # Headless Services are not routed here, so they never hold a pod back.
        st.ready = set() if _headless(spec) else \
            {e.pod_uid for b in wanted_bal.values() for e in b.endpoints if e.ready}
        self._report()
        retry = await self._reconcile_listeners(key, st, wanted_listeners)
        if retry:
            self.queue.add_after(key, BIND_RETRY)

    def _addresses_for(self, svc: Obj, sp: Obj) -> list[tuple[tuple[str, int], bool]]:
        spec = svc.get("spec") or {}
        out: list[tuple[tuple[str, int], bool]] = []
        port = sp.get("port")
        for ip in spec.get("clusterIPs") or [spec.get("clusterIP")]:
            if ip and ip != "None" and ":" not in ip and port:
                out.append(((ip, int(port)), False))
        if spec.get("type") in ("NodePort", "LoadBalancer") and sp.get("nodePort") and self.node_ip:
            out.append(((self.node_ip, int(sp["nodePort"])), True))
        extra = list(spec.get("externalIPs") or [])
        if spec.get("type") == "LoadBalancer":
            extra += [i.get("ip") for i in ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []]
        for ip in extra:
            if ip and port and ip == self.node_ip:
                out.append(((ip, int(port)), True))
        return out

    async def _reconcile_listeners(self, key: str, st: _ServiceState,
                                   wanted: dict[tuple[str, int, str], tuple[Balancer, bool]]) -> bool:
        for addr in [a for a in st.listeners if a not in wanted]:
            self._drain_later(st.listeners.pop(addr))
        retry = False
        for addr, (bal, external) in wanted.items():
            cur = st.listeners.get(addr)
            if cur is not None:
                cur.balancer, cur.external = bal, external
                continue
            if not self._ensure_address(addr[0]):
                continue
            kind = UDPListener if addr[2] == "UDP" else TCPListener
            lst = kind(addr[0], addr[1], bal, external=external, name=f"{key}@{addr[0]}:{addr[1]}/{addr[2].lower()}",
                       traffic=self.traffic)
            if isinstance(lst, TCPListener):
                lst.stats, lst.service_key = self.stats, key
            try:
                await lst.start()
            except OSError as e:
                # Log each failing address once; only "in use" is worth retrying (a closing
                # listener or a process that may go away), not "permission denied".
                if self._bind_failures.get(addr) != e.errno:
                    log.warning("proxy: cannot listen on %s:%s for %s: %s", addr[0], addr[1], key, e.strerror or e)
                self._bind_failures[addr] = e.errno
                retry = retry or e.errno == errno.EADDRINUSE
                continue
            self._bind_failures.pop(addr, None)
            if self._state.get(key) is not st:  # the Service went away while we were binding
                self._drain_later(lst)
                continue
            st.listeners[addr] = lst
        return retry

    def _drain_later(self, lst: TCPListener | UDPListener) -> None:
        lst.close()
        t = asyncio.create_task(lst.drain(self.drain_timeout))
        self._draining.add(t)
        t.add_done_callback(self._draining.discard)

    def _report(self) -> None:
        drained, wake = self._evaluate()
        self.reporter.update(drained)
        if wake is not None:
            self._recheck_after(wake)

    def routes(self) -> dict[str, set[tuple[str, bool]]]:
        """Pod uid -> the (address, ready) pairs the applied balancers hold for it (readiness checks)."""
        out: dict[str, set[tuple[str, bool]]] = {}
        for st in self._state.values():
            for bal in st.balancers.values():
                for e in bal.endpoints:
                    if e.pod_uid:
                        out.setdefault(e.pod_uid, set()).add((e.ip, e.ready))
        return out

    def drained(self) -> set[str]:
        """Terminating pods this proxy is done with: not routed, and nothing in flight or the limit passed (drain.py)."""
        return self._evaluate()[0]

    def _evaluate(self) -> tuple[set[str], float | None]:
        """The drained set, and when (clock time) a pod held back by its traffic must be looked at again."""
        term: set[str] = set()
        in_use: set[str] = set()
        for st in self._state.values():
            term |= st.terminating
            in_use |= st.ready
        stopped = term - in_use
        for uid in [u for u in self._stopped if u not in stopped]:
            del self._stopped[uid]
            self._listed.discard(uid)
        now = self._clock()
        wake: float | None = None
        for uid in stopped - self._listed:
            limit = self._stopped.setdefault(uid, now) + self.connection_drain_limit
            busy_until = self.traffic.busy_until(uid)
            if now >= limit or (busy_until is not None and busy_until <= now):
                # Listing is final: the node agent may act on it at once.
                self._listed.add(uid)
                continue
            # TCP traffic ending calls _traffic_ended; only the limit and UDP quiet need a timer.
            due = limit if busy_until is None else min(limit, busy_until)
            wake = due if wake is None else min(wake, due)
        self.traffic.prune()
        return set(self._listed), wake

    def _recheck_after(self, when: float) -> None:
        if self._recheck is not None:
            if self._recheck_at <= when:
                return
            self._recheck.cancel()
        self._recheck_at = when
        delay = max(when - self._clock(), 0.0)
        self._recheck = asyncio.get_running_loop().call_later(delay, self._recheck_due)

    def _recheck_due(self) -> None:
        self._recheck = None
        self._report()

    def _traffic_ended(self, uid: str) -> None:
        """The last forwarded connection to ``uid`` closed: report at once if it was holding a drain."""
        if uid in self._stopped and uid not in self._listed:
            self._report()

    # -- service addresses -----------------------------------------------------------------
    def _ensure_address(self, ip: str) -> bool:
        if _is_loopback(ip) or ip == self.node_ip or ip in self._added_addresses:
            return True
        if not (self.manage_addresses and hasattr(os, "geteuid") and os.geteuid() == 0):
            return True  # maybe already local; a failing bind is reported and retried
        try:
            if subprocess.run(["ip", "link", "show", DUMMY_INTERFACE], capture_output=True).returncode != 0:
                subprocess.run(["ip", "link", "add", DUMMY_INTERFACE, "type", "dummy"], check=True, capture_output=True)
                subprocess.run(["ip", "link", "set", DUMMY_INTERFACE, "up"], check=True, capture_output=True)
            r = subprocess.run(["ip", "addr", "add", f"{ip}/32", "dev", DUMMY_INTERFACE], capture_output=True)
            if r.returncode != 0 and b"exists" not in r.stderr:
                log.warning("proxy: cannot add %s to %s: %s", ip, DUMMY_INTERFACE, r.stderr.decode().strip())
                return False
            self._added_addresses.add(ip)
            return True
        except (OSError, subprocess.CalledProcessError) as e:
            log.warning("proxy: cannot manage %s: %s", DUMMY_INTERFACE, e)
            return False

    def _release_addresses(self) -> None:
        if not self._added_addresses:
            return
        subprocess.run(["ip", "link", "del", DUMMY_INTERFACE], capture_output=True)
        self._added_addresses.clear()



async def node_internal_ip(client: APIClient, node_name: str, *, timeout: float = 30.0) -> str:
    """The Node's InternalIP once the node agent has registered it (127.0.0.1 if it never does)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            node = await client.resource(NODES).get(node_name)
            for a in (node.get("status") or {}).get("addresses") or []:
                if a.get("type") == "InternalIP" and a.get("address"):
                    return a["address"]
        except NotFound:
            pass  # not registered yet
        except StatusError as e:
            log.debug("proxy: reading node %s: %s", node_name, e.message)
        except OSError as e:
            log.debug("proxy: reading node %s: %s", node_name, e)
        if loop.time() >= deadline:
            log.warning("proxy: node %s has no InternalIP; using 127.0.0.1", node_name)
            return "127.0.0.1"
        await asyncio.sleep(0.2)


async def run_proxy(client: APIClient, *, node_name: str, stop: asyncio.Event, node_ip: str = "",
                    manage_addresses: bool = False) -> None:
    """Run a Proxy for ``node_name`` until ``stop`` is set (the server's component entry point)."""
    ip = node_ip or await node_internal_ip(client, node_name)
    proxy = Proxy(client, node_name=node_name, node_ip=ip, manage_addresses=manage_addresses)
    await proxy.start()
    try:
        await stop.wait()
    finally:
        await proxy.stop()
