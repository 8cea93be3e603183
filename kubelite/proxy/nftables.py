"""The kernel data path: Services as one nftables table per kubelite server (kube-proxy's nftables mode).

``build_ruleset`` turns Services and EndpointSlices into the text of one ``nft -f``
transaction; ``NftProxy`` keeps that text in step with its informers and applies it.

Layout of the table (``ip`` family, named after the server's service range so two
servers never touch each other's table):

- ``nat-prerouting`` (pods, via their bridge) and ``nat-output`` (the node itself) jump
  to ``services``: a verdict map from ClusterIP / externalIP . protocol . port to the
  Service port's ``svc-`` chain (``ext-`` for external addresses), then one from
  protocol . nodePort to the ``ext-`` chain for any local destination address.
- ``svc-``/``ext-`` chains: ClientIP affinity first (``ip saddr @aff-…`` per endpoint),
  then ``numgen random`` over the usable endpoints: the Ready ones, or, if none is
  Ready, the serving-terminating ones (upstream's fallback); internalTrafficPolicy /
  externalTrafficPolicy Local keep only this node's endpoints.
- ``ep-`` chains: mark for masquerade where the reply would not come back through this
  host (the endpoint calling itself, a loopback client, a pod on the same bridge),
  remember the client for affinity, DNAT.
- ``filter-input``: a Service port without endpoints is refused at once (TCP reset,
  ICMP port unreachable for the rest), as is anything else addressed to the service
  range; loopback destinations reached from outside without a DNAT are dropped
  (route_localnet on the pod bridges must not open the node's loopback services).
- ``nat-postrouting``: masquerade what was marked.
- named counters per Service and revision (new connections in the ``ep-`` chains, RSTs
  from endpoints in ``count-rst-*``), read into the proxy's traffic counts: nftstats.py.

Each sync replaces the rules atomically but keeps the affinity sets that stay wanted,
so sticky clients stay where they were; what the kernel holds survives the server and
is replaced, not flushed, by the next one on the same data directory.
"""
from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
import math
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from kubelite.api import meta
from kubelite.client.protocols import APIClient, SharedInformerFactory
from kubelite.node.netslot import GUARD_CIDR
from kubelite.proxy import nftstats
from kubelite.proxy.balancer import DEFAULT_AFFINITY_TIMEOUT, Balancer, Endpoint, Groups, usable
from kubelite.proxy.ports import PortHolder
from kubelite.proxy.proxy import Proxy, _ServiceState, slice_endpoints
from kubelite.proxy.stats import PUBLISH_INTERVAL
from kubelite.proxy.weights import WeightTable

log = logging.getLogger(__name__)
Obj = dict[str, Any]

LABEL_SERVICE_NAME = "kubernetes.io/service-name"
MASQ_MARK = 0x4000  # the bit kube-proxy uses for "masquerade this connection"
NFT_TIMEOUT = 30.0
BRIDGE_GLOB = "kl*"  # the pod bridges of every slot (netslot.py)
APISERVER_KEY = "default/kubernetes/"  # PortRules.key prefix of the kubernetes Service's ports


def table_name(service_cidr: str) -> str:
    """The nftables table of the server owning ``service_cidr`` (stable across restarts)."""
    net = ipaddress.ip_network(service_cidr, strict=False)
    return "kubelite_" + str(net.network_address).replace(".", "_") + f"_{net.prefixlen}"


def node_table_name(service_cidr: str, node_name: str) -> str:
    """The table of a joined node's proxy: the server's name plus the node's, so agents on one
    host (or on the server's) never touch each other's table."""
    clean = re.sub(r"[^A-Za-z0-9_]", "_", node_name)[:40]
    digest = hashlib.sha256(node_name.encode()).hexdigest()[:6]
    return f"{table_name(service_cidr)}_n_{clean}_{digest}"


def _ident(*parts: str) -> str:
    """A chain/set name from parts; a hash keeps it short and unique whatever the parts hold."""
    text = "/".join(parts)
    clean = re.sub(r"[^A-Za-z0-9_./-]", "_", text)[:180]
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return f"{digest}-{clean}"


@dataclass
class PortRules:
    """What one Service port needs in the kernel."""

    key: str                   # namespace/name/protocol/port name
    protocol: str              # tcp or udp
    cluster_ips: list[str]
    port: int
    node_port: int
    external_ips: list[str]
    affinity: float | None
    cluster_eps: list[Endpoint]
    external_eps: list[Endpoint]
    cluster_groups: Groups | None = None   # canary / blue-green split by revision (weights.py)
    external_groups: Groups | None = None

    @property
    def all_eps(self) -> list[Endpoint]:
        """Cluster and external endpoints, once each."""
        seen: dict[tuple[str, int], Endpoint] = {}
        for e in self.cluster_eps + self.external_eps:
            seen.setdefault((e.ip, e.port), e)
        return list(seen.values())


@dataclass
class Ruleset:
    """The generated transaction and what it names (for the next sync's clean-up)."""

    text: str
    sets: set[str] = field(default_factory=set)
    chains: set[str] = field(default_factory=set)
    udp_flows: set[tuple[str, str]] = field(default_factory=set)  # ("ip:port" or ":nodePort", endpoint ip)
    udp_unserved: set[str] = field(default_factory=set)  # UDP fronts ("ip:port", ":nodePort") without endpoints
    body: str = ""  # the table block alone: what decides whether anything changed
    node_ports: set[tuple[str, int]] = field(default_factory=set)  # (protocol, port) routed here
    counters: dict[str, tuple[str, nftstats.Key]] = field(default_factory=dict)  # name -> (kind, revision)


def service_ports(svc: Obj, slices: list[Obj], node_name: str, node_ips: Iterable[str],
                  weights: WeightTable | None = None) -> list[PortRules]:
    """The kernel rules one Service needs, per port (none for headless / ExternalName)."""
    spec = svc.get("spec") or {}
    if spec.get("type") == "ExternalName":
        return []
    cluster_ips = [ip for ip in (spec.get("clusterIPs") or [spec.get("clusterIP")])
                   if ip and ip != "None" and ":" not in ip]
    node_port_type = spec.get("type") in ("NodePort", "LoadBalancer")
    external = [ip for ip in spec.get("externalIPs") or [] if ip and ":" not in ip]
    if spec.get("type") == "LoadBalancer":
        ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        external += [i["ip"] for i in ingress if i.get("ip") and ":" not in i["ip"] and i["ip"] in set(node_ips)]
    affinity = None
    if spec.get("sessionAffinity") == "ClientIP":
        cfg = (spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}
        affinity = float(cfg.get("timeoutSeconds") or DEFAULT_AFFINITY_TIMEOUT)
    out = []
    for sp in spec.get("ports") or []:
        proto = sp.get("protocol") or "TCP"
        if proto not in ("TCP", "UDP") or not sp.get("port"):
            continue  # SCTP is not forwarded
        name = sp.get("name") or ""
        if not cluster_ips:
            continue  # headless: nothing to translate
        eps = slice_endpoints(slices, name, proto)
        cluster_eps = usable(eps, local_only=spec.get("internalTrafficPolicy") == "Local", node_name=node_name)
        external_eps = usable(eps, local_only=spec.get("externalTrafficPolicy") == "Local", node_name=node_name)
        out.append(PortRules(
            key=f"{meta.namespace(svc)}/{meta.name(svc)}/{proto.lower()}/{name or sp['port']}",
            protocol=proto.lower(), cluster_ips=cluster_ips, port=int(sp["port"]),
            node_port=int(sp.get("nodePort") or 0) if node_port_type else 0,
            external_ips=external, affinity=affinity, cluster_eps=cluster_eps, external_eps=external_eps,
            cluster_groups=weights.groups(meta.namespace(svc), cluster_eps) if weights else None,
            external_groups=weights.groups(meta.namespace(svc), external_eps) if weights else None))
    return out


def _ep_chain(pr: PortRules, ep: Endpoint) -> str:
    return "ep-" + _ident(pr.key, f"{ep.ip}:{ep.port}")


def _aff_set(pr: PortRules, ep: Endpoint) -> str:
    return "aff-" + _ident(pr.key, f"{ep.ip}:{ep.port}")


def _spread(pr: PortRules, eps: list[Endpoint]) -> str:
    """One rule sending a new connection to one of ``eps`` at random."""
    if len(eps) == 1:
        return f"goto {_ep_chain(pr, eps[0])}"
    arms = ", ".join(f"{i} : goto {_ep_chain(pr, ep)}" for i, ep in enumerate(eps))
    return f"numgen random mod {len(eps)} vmap {{ {arms} }}"


def _dispatch(pr: PortRules, eps: list[Endpoint], groups: Groups | None = None,
              chains: dict[str, list[str]] | None = None, chain: str = "") -> list[str]:
    """Rules of a svc-/ext- chain that has endpoints: sticky clients first, then a random one.

    With ``groups`` (a canary), a first draw over the sum of the weights picks a revision's
    ``rev-`` chain (added to ``chains``), which then spreads over that revision's endpoints;
    a weight-0 revision gets no arm at all."""
    rules = []
    if pr.affinity is not None:
        for ep in eps:
            rules.append(f"ip saddr @{_aff_set(pr, ep)} goto {_ep_chain(pr, ep)}")
    live = [(w, g) for w, g in groups or [] if w > 0]
    if not live or chains is None:
        rules.append(_spread(pr, eps))
        return rules
    if len(live) == 1:
        rules.append(_spread(pr, live[0][1]))
        return rules
    # One arm per value, no ranges: an interval map keyed by numgen's host-order number does
    # not match as the ranges read (a 20/80 split came out 50/50).  The weights' common
    # divisor keeps the map short (20/80 → 5 values).
    div = math.gcd(*(w for w, _ in live))
    arms, low = [], 0
    for i, (w, g) in enumerate(live):
        rev_chain = f"rev-{i}-{chain}"[:250]
        chains[rev_chain] = [_spread(pr, g)]
        arms += [f"{n} : goto {rev_chain}" for n in range(low, low + w // div)]
        low += w // div
    rules.append(f"numgen random mod {low} vmap {{ {', '.join(arms)} }}")
    return rules


def build_ruleset(table: str, services: list[Obj], slices: list[Obj], *, node_name: str,
                  node_ips: Iterable[str], pod_cidr: str, service_cidr: str,
                  previous: Ruleset | None = None, cluster_cidr: str = GUARD_CIDR,
                  weights: WeightTable | None = None) -> Ruleset:
    """One nft transaction that makes ``table`` route exactly these Services (``pod_cidr``: this
    node's pods, on its bridge; ``cluster_cidr``: every node's pods)."""
    by_service: dict[tuple[str, str], list[Obj]] = {}
    for s in slices:
        name = meta.labels(s).get(LABEL_SERVICE_NAME)
        if name:
            by_service.setdefault((meta.namespace(s), name), []).append(s)
    node_ips = list(node_ips)
    ports: list[PortRules] = []
    for svc in sorted(services, key=meta.key):
        ports += service_ports(svc, by_service.get((meta.namespace(svc), meta.name(svc)), []), node_name, node_ips,
                               weights)

    chains: dict[str, list[str]] = {}
    sets: dict[str, float] = {}
    cluster_map: list[str] = []     # ip . proto . port : verdict
    nodeport_map: list[str] = []    # proto . port : verdict
    noep_cluster: list[str] = []
    noep_nodeport: list[str] = []
    udp_flows: set[tuple[str, str]] = set()
    udp_unserved: set[str] = set()
    counters: dict[str, tuple[str, nftstats.Key]] = {}
    resets: dict[str, tuple[nftstats.Key, set[tuple[str, int]]]] = {}
    apiservers: list[str] = []      # ip . proto . port of the kubernetes Service's endpoints off the pod network
    cluster_net = ipaddress.ip_network(cluster_cidr, strict=False)
    for pr in ports:
        svc_chain = "svc-" + _ident(pr.key)
        ext_chain = "ext-" + _ident(pr.key)
        for ep in pr.all_eps:
            rules = [f"ip saddr {ep.ip} meta mark set meta mark | {MASQ_MARK:#x}",
                     f"ip saddr 127.0.0.0/8 meta mark set meta mark | {MASQ_MARK:#x}"]
            if pod_cidr and ipaddress.ip_address(ep.ip) in ipaddress.ip_network(pod_cidr, strict=False):
                # A pod calling a pod on the same bridge: the reply would skip this host.
                rules.append(f"ip saddr {pod_cidr} meta mark set meta mark | {MASQ_MARK:#x}")
            if ep.node_name and ep.node_name != node_name:
                # An endpoint on another node, a client outside the pod network (another host
                # through a NodePort): that node would answer the client directly, so the
                # connection leaves here with this node's address and the reply comes back.
                rules.append(f"ip saddr != {cluster_cidr} meta mark set meta mark | {MASQ_MARK:#x}")
            if pr.key.startswith(APISERVER_KEY) and ipaddress.ip_address(ep.ip) not in cluster_net:
                # A pod calling the API server on another host: it leaves with this node's
                # address, as upstream's CNIs masquerade traffic that leaves the pod network.
                rules.append(f"ip saddr {cluster_cidr} meta mark set meta mark | {MASQ_MARK:#x}")
                apiservers.append(f"{ep.ip} . {pr.protocol} . {ep.port}")
            if pr.affinity is not None:
                aff = _aff_set(pr, ep)
                sets[aff] = pr.affinity
                rules.append(f"update @{aff} {{ ip saddr }}")
            rev = nftstats.revision_key(pr.key, ep)
            if rev is not None:
                requests = "rq-" + _ident(*rev)
                counters[requests] = (nftstats.REQUESTS, rev)
                rules.append(f'counter name "{requests}"')
                if pr.protocol == "tcp":
                    refused = "rs-" + _ident(*rev)
                    counters[refused] = (nftstats.RESETS, rev)
                    resets.setdefault(refused, (rev, set()))[1].add((ep.ip, ep.port))
            rules.append(f"meta l4proto {pr.protocol} dnat to {ep.ip}:{ep.port}")
            chains[_ep_chain(pr, ep)] = rules
        has_external = bool(pr.node_port or pr.external_ips)
        if pr.protocol == "udp":
            if not pr.cluster_eps:
                udp_unserved |= {f"{ip}:{pr.port}" for ip in pr.cluster_ips}
            if not pr.external_eps:
                udp_unserved |= {f"{ip}:{pr.port}" for ip in pr.external_ips}
                udp_unserved |= {f":{pr.node_port}"} if pr.node_port else set()
            udp_flows |= {(f"{ip}:{pr.port}", ep.ip) for ip in pr.cluster_ips for ep in pr.cluster_eps}
            udp_flows |= {(f"{ip}:{pr.port}", ep.ip) for ip in pr.external_ips for ep in pr.external_eps}
            if pr.node_port:
                udp_flows |= {(f":{pr.node_port}", ep.ip) for ep in pr.external_eps}
        if pr.cluster_eps:
            chains[svc_chain] = _dispatch(pr, pr.cluster_eps, pr.cluster_groups, chains, svc_chain)
            for ip in pr.cluster_ips:
                cluster_map.append(f"{ip} . {pr.protocol} . {pr.port} : goto {svc_chain}")
        else:
            for ip in pr.cluster_ips:
                noep_cluster.append(f"{ip} . {pr.protocol} . {pr.port}")
        if has_external and pr.external_eps:
            chains[ext_chain] = _dispatch(pr, pr.external_eps, pr.external_groups, chains, ext_chain)
            for ip in pr.external_ips:
                cluster_map.append(f"{ip} . {pr.protocol} . {pr.port} : goto {ext_chain}")
            if pr.node_port:
                nodeport_map.append(f"{pr.protocol} . {pr.node_port} : goto {ext_chain}")
        elif has_external:
            for ip in pr.external_ips:
                noep_cluster.append(f"{ip} . {pr.protocol} . {pr.port}")
            if pr.node_port:
                noep_nodeport.append(f"{pr.protocol} . {pr.node_port}")

    services_rules = []
    if cluster_map:
        services_rules.append("ip daddr . meta l4proto . th dport vmap { " + ", ".join(cluster_map) + " }")
    if nodeport_map:
        services_rules.append("fib daddr type local meta l4proto . th dport vmap { "
                              + ", ".join(nodeport_map) + " }")
    input_rules = ['iifname != "lo" ip daddr 127.0.0.0/8 ct status & dnat != dnat drop']
    if noep_cluster:
        input_rules.append("ct state new ip daddr . meta l4proto . th dport { "
                           + ", ".join(noep_cluster) + " } goto reject-chain")
    if noep_nodeport:
        input_rules.append("ct state new meta l4proto . th dport { " + ", ".join(noep_nodeport)
                           + " } goto reject-chain")
    input_rules.append(f"ct state new ip daddr {service_cidr} goto reject-chain")

    # Pods open no connection off the machine through a bridge, except to other nodes' pod
    # CIDRs (along the routes node/routes.py keeps) and to the API servers through the
    # kubernetes Service (a DNAT this table made); replies to connections that came in
    # (a NodePort from another host, a masqueraded Service call from another node) pass.
    off_node = f'iifname "{BRIDGE_GLOB}" oifname != "{BRIDGE_GLOB}" ct state new'
    forward_rules = []
    if apiservers:
        forward_rules.append(f"{off_node} ct status & dnat == dnat ip daddr . meta l4proto . th dport "
                             "{ " + ", ".join(sorted(set(apiservers))) + " } accept")
    forward_rules.append(f"{off_node} ip daddr != {cluster_cidr} drop")

    lines: list[str] = []
    if previous is None:
        # Replace whatever an earlier run left, in the same transaction: no moment without rules.
        lines += [f"add table ip {table}", f"delete table ip {table}"]
    lines.append(f"add table ip {table}")
    lines.append(f"flush table ip {table}")
    body = [
        ("nat-prerouting", "type nat hook prerouting priority -100; policy accept;", ["jump services"]),
        ("nat-output", "type nat hook output priority -100; policy accept;", ["jump services"]),
        ("nat-postrouting", "type nat hook postrouting priority 100; policy accept;",
         [f"meta mark & {MASQ_MARK:#x} == {MASQ_MARK:#x} masquerade"]),
        ("filter-input", "type filter hook input priority -110; policy accept;", input_rules),
        ("filter-forward", "type filter hook forward priority -110; policy accept;", forward_rules),
        ("reject-chain", "", ["meta l4proto tcp reject with tcp reset", "reject"]),
        ("services", "", services_rules),
    ] + [(name, "", rules) for name, rules in sorted(chains.items())]
    rst = nftstats.rst_rules(resets)
    if rst:
        body += [("count-rst-input", "type filter hook input priority -110; policy accept;", rst),
                 ("count-rst-forward", "type filter hook forward priority -110; policy accept;", rst)]
    start = len(lines)
    lines.append(f"table ip {table} {{")
    for name in sorted(counters):
        lines.append(f"\tcounter {name} {{ }}")
    for name, timeout in sorted(sets.items()):
        lines.append(f"\tset {name} {{ type ipv4_addr; flags dynamic,timeout; timeout {int(timeout)}s; }}")
    for name, hook, rules in body:
        lines.append(f"\tchain {name} {{")
        if hook:
            lines.append(f"\t\t{hook}")
        lines += [f"\t\t{r}" for r in rules]
        lines.append("\t}")
    lines.append("}")
    body_text = "\n".join(lines[start:])
    # Chains emptied by the flush and no longer wanted, and affinity sets of gone endpoints.
    wanted = {name for name, _, _ in body}
    if previous is not None:
        lines += [f"delete chain ip {table} {name}" for name in sorted(previous.chains - wanted)]
        lines += [f"delete set ip {table} {name}" for name in sorted(previous.sets - set(sets))]
        lines += [f"delete counter ip {table} {name}" for name in sorted(previous.counters.keys() - counters.keys())]
    node_ports = {(pr.protocol.upper(), pr.node_port) for pr in ports if pr.node_port}
    return Ruleset("\n".join(lines) + "\n", set(sets), wanted, udp_flows, udp_unserved, body_text, node_ports,
                   counters)


class NftError(Exception):
    """nft refused a ruleset or is missing."""


def nft_available() -> bool:
    """Whether the ``nft`` tool is installed."""
    return shutil.which("nft") is not None


async def nft(text: str, *args: str) -> str:
    """Run ``nft`` with ``text`` on stdin (``-f -``) or with ``args``; stdout."""
    argv = ["nft", *args] if args else ["nft", "-f", "-"]
    proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(text.encode() if not args else None), NFT_TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise NftError("nft did not answer") from None
    if proc.returncode != 0:
        raise NftError(err.decode(errors="replace").strip() or f"nft exited {proc.returncode}")
    return out.decode()


class NftProxy(Proxy):
    """The proxy with the kernel doing the forwarding: same informers and drain handshake,
    no listeners; every change rebuilds the table and applies it in one transaction."""

    def __init__(self, client: APIClient, *, node_name: str, node_ip: str, service_cidr: str,
                 pod_cidr: str = GUARD_CIDR, delete_on_stop: bool = True, factory: SharedInformerFactory | None = None,
                 table: str = "", cluster_cidr: str = GUARD_CIDR):
        super().__init__(client, node_name=node_name, node_ip=node_ip, factory=factory)
        self.service_cidr = service_cidr
        self.table = table or table_name(service_cidr)
        self.pod_cidr = pod_cidr  # this node's pods (masqueraded only towards their own bridge)
        self.cluster_cidr = cluster_cidr
        self.delete_on_stop = delete_on_stop
        self.applied: Ruleset | None = None
        self._lock = asyncio.Lock()
        self._dirty = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        self.applies = 0  # transactions sent to the kernel (tests, diagnostics)
        self._checked: set[str] = set()  # terminating pods whose open connections were (or are) waited for
        self._watchers: set[asyncio.Task[None]] = set()
        self.ports = PortHolder()
        self._counter_reader = nftstats.CounterReader()
        self._counting: asyncio.Task[None] | None = None

    async def sync(self, key: str) -> None:
        """Update the per-Service view (drain bookkeeping); the kernel follows in the next flush."""
        async with self._lock:
            await super().sync(key)

    async def _reconcile_listeners(self, key: str, st: _ServiceState,
                                   wanted: dict[tuple[str, int, str], tuple[Balancer, bool]]) -> bool:
        return False  # the kernel forwards; nothing listens in this process

    def _report(self) -> None:
        # Nothing is reported before the kernel holds the state it was computed from.
        self._dirty.set()

    async def _initial_sync_done(self) -> None:
        await self.flush()
        self._flusher = asyncio.create_task(self._flush_loop(), name="proxy-nft")
        self._counting = asyncio.create_task(self._count_loop(), name="proxy-nft-counters")

    async def read_counters(self) -> None:
        """Add what the table's named counters gained to the proxy's traffic counts (nftstats.py)."""
        applied = self.applied
        if applied is None or not applied.counters:
            return
        listing = await nft("", "-j", "list", "counters", "table", "ip", self.table)
        for key, counts in self._counter_reader.deltas(nftstats.read_counters(listing), applied.counters):
            self.stats.add(key, counts)

    async def _count_loop(self) -> None:
        while True:
            try:
                await self.read_counters()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # nft missing a beat must not end the counting
                log.debug("proxy: reading the counters of %s failed: %s", self.table, e)
            await asyncio.sleep(PUBLISH_INTERVAL)

    async def _flush_loop(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            try:
                await self.flush()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # nft refused or failed to run: try again, the state may have moved on
                log.error("proxy: applying the ruleset of %s failed: %s", self.table, e)
                await asyncio.sleep(1.0)
                self._dirty.set()

    async def flush(self) -> None:
        """Apply the rules for the informers' current view, then publish the drain state."""
        async with self._lock:
            rs = build_ruleset(self.table, self.services.list(), self.slices.list(), node_name=self.node_name,
                               node_ips=[self.node_ip], pod_cidr=self.pod_cidr, service_cidr=self.service_cidr,
                               cluster_cidr=self.cluster_cidr, weights=self.weight_table(),
                               previous=self.applied)
            if self.applied is None or rs.body != self.applied.body:
                await nft(rs.text)
                self.applies += 1
                prev = self.applied
                self.applied = rs
                if prev is not None:
                    await _forget_udp_flows(_udp_flows(prev) - _udp_flows(rs))
                    # Flows the reject answered stay in conntrack without a DNAT: drop them so
                    # the client's next datagram is translated now that there are endpoints.
                    await _forget_udp_flows({(front, "") for front in prev.udp_unserved - rs.udp_unserved})
            self.ports.hold(rs.node_ports)
            self._hold_connected_terminating()
            Proxy._report(self)

    def _hold_connected_terminating(self) -> None:
        """Keep a terminating pod off the drained list while the kernel still tracks
        established TCP connections to it (accepted or waiting in its listen queue): the
        userspace proxy counts what it forwarded, the kernel path asks conntrack. Bounded
        by the proxy's drain limit like the userspace wait. The hold is taken here, before
        the drain state is published; conntrack is asked by a task of its own, so no
        subprocess runs under the flush lock and delays the next rule change."""
        if shutil.which("conntrack") is None:
            return
        terminating = _terminating_addresses(self.slices.list())
        self._checked &= terminating.keys()
        for uid, ips in terminating.items():
            if uid in self._checked:
                continue
            self._checked.add(uid)
            self.traffic.hold(uid)
            task = asyncio.create_task(self._release_when_closed(uid, ips), name=f"proxy-nft-drain-{uid[:8]}")
            self._watchers.add(task)
            task.add_done_callback(self._watchers.discard)

    async def _release_when_closed(self, uid: str, ips: set[str]) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.connection_drain_limit
        still_open = True
        try:
            # conntrack has no "tell me when it closes" here: look again every CONNTRACK_POLL.
            for _ in range(int(self.connection_drain_limit / CONNTRACK_POLL) + 1):
                if loop.time() >= deadline:
                    break
                still_open = await _open_flows_to(ips)
                if not still_open:
                    break
                await asyncio.sleep(CONNTRACK_POLL)
            if still_open:
                # Said aloud: a request cut by the pod's SIGTERM later is explained by this line.
                log.warning("proxy: terminating pod %s (%s) still has open connections after %.0f s; "
                            "reporting it drained", uid, ",".join(sorted(ips)), self.connection_drain_limit)
        finally:
            self.traffic.release(uid)

    async def stop(self) -> None:
        """Stop syncing; delete the table unless the pods outlive this server (oci)."""
        for task in list(self._watchers):
            task.cancel()
        if self._counting is not None:
            self._counting.cancel()
            await asyncio.gather(self._counting, return_exceptions=True)
            self._counting = None
        if self._flusher is not None:
            self._flusher.cancel()
            await asyncio.gather(self._flusher, return_exceptions=True)
            self._flusher = None
        await super().stop()
        self.ports.close()
        if self.delete_on_stop:
            await delete_table(self.table)


CONNTRACK_POLL = 0.1  # seconds between looks at a terminating pod's open connections


def _terminating_addresses(slices: Iterable[dict[str, Any]]) -> dict[str, set[str]]:
    """Pod uid -> addresses of the endpoints that are terminating, from EndpointSlices."""
    out: dict[str, set[str]] = {}
    for sl in slices:
        for ep in sl.get("endpoints") or []:
            uid = (ep.get("targetRef") or {}).get("uid")
            if uid and (ep.get("conditions") or {}).get("terminating"):
                out.setdefault(uid, set()).update(a for a in ep.get("addresses") or [] if isinstance(a, str))
    return out


# TCP states in which a DNATed connection may still carry a request or its reply.  Not
# only ESTABLISHED: a SYN that reached a pod whose accept queue was full waits in SYN_SENT
# or SYN_RECV (the client retransmits it to the same pod after a second), and a client
# that half-closed after its request leaves the flow in FIN_WAIT or CLOSE_WAIT while the
# pod still answers.  Signalling the pod then would cut that request.
OPEN_TCP_STATES = frozenset({"SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT"})


def has_open_tcp_flow(listing: str) -> bool:
    """Whether a `conntrack -L -p tcp` listing holds a Service's (DNATed) flow in one of OPEN_TCP_STATES."""
    for line in listing.splitlines():
        fields = line.split()
        # "tcp 6 <timeout> <STATE> src=..."; the state is the first bare upper-case word.
        state = next((f for f in fields[3:5] if "=" not in f), "")
        if fields[:1] != ["tcp"] or state not in OPEN_TCP_STATES:
            continue
        # Only a flow whose first destination was translated to the pod came through a
        # Service. One dialled straight to the pod's address is not the proxy's to wait for,
        # and may be a leftover: a pod killed mid-connection leaves its flow ESTABLISHED
        # for days, which then held every later pod given that address for the whole limit.
        dsts = [f[4:] for f in fields if f.startswith("dst=")]
        srcs = [f[4:] for f in fields if f.startswith("src=")]
        if len(dsts) >= 1 and len(srcs) >= 2 and dsts[0] == srcs[1]:
            continue
        return True
    return False


async def _open_flows_to(ips: set[str]) -> bool:
    """Whether conntrack holds a TCP connection answered by one of ``ips`` that is still open, or cannot tell."""
    for ip in sorted(ips):
        try:
            proc = await asyncio.create_subprocess_exec(
                "conntrack", "-L", "-p", "tcp", "--dst-nat", "--reply-src", ip,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            out, err = await proc.communicate()
        except OSError:
            return False
        if proc.returncode != 0:
            # A listing that failed (an interrupted dump of a busy table) shows nothing, which
            # is not "no flows": keep the pod busy until a look succeeds or the drain limit passes.
            log.debug("proxy: conntrack -L for %s failed: %s", ip, err.decode(errors="replace").strip())
            return True
        if has_open_tcp_flow(out.decode(errors="replace")):
            return True
    return False


def _udp_flows(rs: Ruleset | None) -> set[tuple[str, str]]:
    """(front address, endpoint ip) pairs of the UDP DNATs in ``rs``."""
    return set(rs.udp_flows) if rs is not None else set()


async def _forget_udp_flows(flows: set[tuple[str, str]]) -> None:
    """Drop conntrack entries of UDP flows to ``front`` (through endpoint ``ep`` unless "")."""
    if not flows or shutil.which("conntrack") is None:
        return
    for front, ep in sorted(flows):
        ip, _, port = front.partition(":")
        args = ["conntrack", "-D", "-p", "udp"] + (["--dst-nat", ep] if ep else [])
        args += (["--orig-dst", ip] if ip else []) + ["--orig-port-dst", port]
        proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.DEVNULL,
                                                    stderr=asyncio.subprocess.DEVNULL)
        await proc.wait()


async def delete_table(table: str) -> None:
    """Remove a kubelite table if it exists."""
    try:
        await nft("", "delete", "table", "ip", table)
    except NftError as e:
        if "No such file" not in str(e):
            log.warning("proxy: cannot delete nftables table %s: %s", table, e)

