"""NetworkPolicies, pods and namespaces → the text of one ``nft -f`` transaction.

Semantics (as upstream documents them): a pod is isolated for ingress (egress) once any
policy selecting it lists Ingress (Egress) in its policyTypes; an isolated pod accepts
(sends) only what at least one rule of those policies allows; replies of allowed
connections pass (conntrack established/related); traffic from (to) the pod's own node
always passes, so probes and the node-local DNS keep working; a pod reaching itself
(through its own Service) is never blocked.

Where the rules sit: pods on one node share a bridge, and frames between two of them are
bridged, which the ``ip`` family never sees unless br_netfilter is loaded. So the same
chains go into two tables of one name: a ``bridge`` table (pod to pod on the bridge,
including a Service DNAT that br_netfilter turns back into a bridged frame) and an ``ip``
table on the forward hook (everything the host routes: a pod's Service traffic after the
proxy's DNAT, traffic from other interfaces). A hook sees the packet after DNAT and
before the masquerade, so ``ip saddr`` is the real client and ``ip daddr`` the real pod.
Where both apply (br_netfilter on) the two verdicts agree.

Layout of each table: two base chains on the forward hook, ``egress`` then ``ingress``
(an accept in one ends only that chain, so a packet must pass both); each sends a new
connection of an isolated pod through the per-policy chains of the policies selecting
it (``eg-``/``in-``), whose rules accept on a match, and drops it when none matched.
Sets: the isolated pods per direction, the pods each policy selects (``sel-``), the
peers of each rule (``peer-``, intervals: pods as /32 and ipBlocks minus their except
ranges) and, for named ports, the (pod address, protocol, port) triples they resolve to
(``named-``).
"""
from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from kubelite.api import meta
from kubelite.api.errors import StatusError
from kubelite.api.selectors import LabelSelector, selector_from_dict

Obj = dict[str, Any]
FAMILIES = ("bridge", "ip")
IPv4Net = ipaddress.IPv4Network


def table_name(service_cidr: str) -> str:
    """The enforcer's tables (one per family) for the server owning ``service_cidr``."""
    net = ipaddress.ip_network(service_cidr, strict=False)
    return "kubelite_np_" + str(net.network_address).replace(".", "_") + f"_{net.prefixlen}"


def _ident(prefix: str, *parts: str) -> str:
    """A set/chain name: readable, short, and unique through a hash of the parts."""
    text = "/".join(parts)
    clean = re.sub(r"[^A-Za-z0-9_]", "_", text)[:40]
    return f"{prefix}-{hashlib.sha256(text.encode()).hexdigest()[:8]}-{clean}"


def _selector(sel: Obj | None) -> LabelSelector | None:
    """A parsed label selector; None for one the API would not have accepted."""
    try:
        return selector_from_dict(sel if sel is not None else {})
    except StatusError:
        return None


@dataclass(frozen=True)
class PodView:
    """What the rules need of one pod."""

    namespace: str
    name: str
    ip: str
    labels: dict[str, str]
    ports: tuple[tuple[str, str, int], ...]  # (name, protocol, containerPort) of named ports


def pod_view(pod: Obj) -> PodView | None:
    """The pod as the rules see it; None when it has no IPv4 pod address of its own."""
    status = pod.get("status") or {}
    spec = pod.get("spec") or {}
    ip = status.get("podIP") or ""
    if not ip or ":" in ip or spec.get("hostNetwork") or status.get("phase") in ("Succeeded", "Failed"):
        return None  # host-network pods are the node's traffic; finished pods hold no address
    ports = []
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        for p in c.get("ports") or []:
            if p.get("name") and p.get("containerPort"):
                ports.append((p["name"], p.get("protocol") or "TCP", int(p["containerPort"])))
    return PodView(meta.namespace(pod), meta.name(pod), ip, dict(meta.labels(pod)), tuple(ports))


@dataclass
class Ruleset:
    """The transaction and the table body it installs (what decides whether anything changed)."""

    text: str
    body: str
    ingress_isolated: set[str] = field(default_factory=set)
    egress_isolated: set[str] = field(default_factory=set)


def _nets(block: Obj) -> list[IPv4Net]:
    """An ipBlock as IPv4 networks: cidr minus every except range (IPv6 blocks are skipped)."""
    try:
        base = ipaddress.ip_network(block.get("cidr") or "", strict=False)
    except ValueError:
        return []
    if not isinstance(base, IPv4Net):
        return []
    out = [base]
    for ex in block.get("except") or []:
        try:
            cut = ipaddress.ip_network(ex, strict=False)
        except ValueError:
            continue
        if not isinstance(cut, IPv4Net):
            continue
        nxt: list[IPv4Net] = []
        for n in out:
            if cut.subnet_of(n):
                nxt += list(n.address_exclude(cut))
            elif not n.subnet_of(cut):
                nxt.append(n)
        out = nxt
    return out


class _Cluster:
    """Pods and namespaces indexed for selector lookups."""

    def __init__(self, pods: Iterable[PodView], namespaces: dict[str, dict[str, str]]):
        self.pods = sorted(pods, key=lambda p: (p.namespace, p.name))
        self.namespaces = namespaces

    def in_namespace(self, ns: str, sel: LabelSelector) -> list[PodView]:
        """Pods of one namespace that ``sel`` selects."""
        return [p for p in self.pods if p.namespace == ns and sel.matches(p.labels)]

    def in_namespaces(self, ns_sel: LabelSelector, pod_sel: LabelSelector) -> list[PodView]:
        """Pods ``pod_sel`` selects in the namespaces ``ns_sel`` selects."""
        chosen = {n for n, labels in self.namespaces.items() if ns_sel.matches(labels)}
        return [p for p in self.pods if p.namespace in chosen and pod_sel.matches(p.labels)]

    def peer_pods(self, policy_ns: str, peer: Obj) -> list[PodView]:
        """The pods one NetworkPolicyPeer (without ipBlock) stands for."""
        pod_sel = _selector(peer.get("podSelector"))
        if pod_sel is None:
            return []
        if peer.get("namespaceSelector") is None:
            return self.in_namespace(policy_ns, pod_sel)
        ns_sel = _selector(peer.get("namespaceSelector"))
        return [] if ns_sel is None else self.in_namespaces(ns_sel, pod_sel)


def _elements(values: Iterable[str]) -> str:
    vals = sorted(set(values))
    return f" elements = {{ {', '.join(vals)} }};" if vals else ""


def _port_sort_key(n: IPv4Net) -> tuple[int, int]:
    return int(n.network_address), n.prefixlen


@dataclass
class _Tables:
    """What both families' tables hold, built once."""

    sets: list[str] = field(default_factory=list)              # set definitions
    chains: dict[str, list[str]] = field(default_factory=dict)  # per-policy chains
    egress_jumps: list[str] = field(default_factory=list)
    ingress_jumps: list[str] = field(default_factory=list)
    ingress_isolated: set[str] = field(default_factory=set)
    egress_isolated: set[str] = field(default_factory=set)

    def addr_set(self, name: str, ips: Iterable[str]) -> None:
        self.sets.append(f"set {name} {{ type ipv4_addr;{_elements(ips)} }}")

    def interval_set(self, name: str, nets: Iterable[IPv4Net]) -> None:
        merged = sorted(ipaddress.collapse_addresses(nets), key=_port_sort_key)
        elems = [str(n.network_address) if n.prefixlen == 32 else str(n) for n in merged]
        vals = f" elements = {{ {', '.join(elems)} }};" if elems else ""
        self.sets.append(f"set {name} {{ type ipv4_addr; flags interval;{vals} }}")

    def triple_set(self, name: str, triples: Iterable[tuple[str, str, int]]) -> None:
        elems = [f"{ip} . {proto} . {port}" for ip, proto, port in triples]
        self.sets.append(f"set {name} {{ type ipv4_addr . inet_proto . inet_service;{_elements(elems)} }}")


def _rule_lines(t: _Tables, cluster: _Cluster, key: str, direction: str, index: int, rule: Obj,
                policy_ns: str, selected: list[PodView]) -> list[str]:
    """The accept rules of one ingress/egress rule of a policy."""
    peers_field = "from" if direction == "in" else "to"
    peer_addr = "ip saddr" if direction == "in" else "ip daddr"
    peers = rule.get(peers_field) or []
    match = ""
    if peers:
        nets: list[IPv4Net] = []
        for peer in peers:
            if peer.get("ipBlock") is not None:
                nets += _nets(peer["ipBlock"])
            else:
                nets += [IPv4Net(p.ip) for p in cluster.peer_pods(policy_ns, peer)]
        name = _ident("peer", key, direction, str(index))
        t.interval_set(name, nets)
        match = f"{peer_addr} @{name} "
    ports = rule.get("ports") or []
    if not ports:
        return [f"{match}accept"]
    # Named ports belong to the destination: the selected pod (ingress) or the peer (egress).
    destinations = selected if direction == "in" else cluster.pods
    lines = []
    for j, port in enumerate(ports):
        proto = (port.get("protocol") or "TCP").lower()
        number = port.get("port")
        if number is None:
            lines.append(f"{match}meta l4proto {proto} accept")
        elif isinstance(number, int):
            end = port.get("endPort")
            span = f"{number}-{end}" if isinstance(end, int) and end > number else str(number)
            lines.append(f"{match}meta l4proto {proto} th dport {span} accept")
        else:
            name = _ident("named", key, direction, str(index), str(j))
            want = (port.get("protocol") or "TCP")
            t.triple_set(name, [(p.ip, proto, cport) for p in destinations
                                for pname, pproto, cport in p.ports if pname == number and pproto == want])
            lines.append(f"{match}ip daddr . meta l4proto . th dport @{name} accept")
    return lines


def _policy_types(spec: Obj) -> set[str]:
    types = spec.get("policyTypes")
    if types:
        return set(types)
    # Objects are defaulted on write; this covers one that somehow was not.
    return {"Ingress"} | ({"Egress"} if spec.get("egress") else set())


def _build(policies: Iterable[Obj], cluster: _Cluster) -> _Tables:
    t = _Tables()
    for pol in sorted(policies, key=meta.key):
        spec = pol.get("spec") or {}
        ns = meta.namespace(pol)
        key = meta.key(pol)
        sel = _selector(spec.get("podSelector"))
        if sel is None:
            continue
        selected = cluster.in_namespace(ns, sel)
        sel_set = _ident("sel", key)
        t.addr_set(sel_set, [p.ip for p in selected])
        types = _policy_types(spec)
        for direction, kind, rules_field in (("in", "Ingress", "ingress"), ("eg", "Egress", "egress")):
            if kind not in types:
                continue
            chain = _ident(direction, key)
            lines: list[str] = []
            for i, rule in enumerate(spec.get(rules_field) or []):
                lines += _rule_lines(t, cluster, key, direction, i, rule or {}, ns, selected)
            t.chains[chain] = lines
            if direction == "in":
                t.ingress_isolated |= {p.ip for p in selected}
                t.ingress_jumps.append(f"ip daddr @{sel_set} jump {chain}")
            else:
                t.egress_isolated |= {p.ip for p in selected}
                t.egress_jumps.append(f"ip saddr @{sel_set} jump {chain}")
    return t


def _table_block(family: str, table: str, t: _Tables) -> list[str]:
    """One family's table; the bridge one lets non-IPv4 frames (ARP …) through first."""
    first = ['ether type != ip accept'] if family == "bridge" else []
    # The node's own addresses: the bridge family never sees them on its forward hook.
    node_out = [] if family == "bridge" else ["fib daddr type local accept"]
    node_in = [] if family == "bridge" else ["fib saddr type local accept"]
    # A pod reaching itself (through its own Service) is never blocked, as upstream documents.
    own = "ip saddr . ip daddr @own accept"
    egress = first + ["ct state established,related accept", "ip saddr != @egress-isolated accept", own] \
        + node_out + t.egress_jumps + ["drop"]
    ingress = first + ["ct state established,related accept", "ip daddr != @ingress-isolated accept", own] \
        + node_in + t.ingress_jumps + ["drop"]
    lines = [f"table {family} {table} {{"]
    defs = list(t.sets)
    defs.append(f"set egress-isolated {{ type ipv4_addr;{_elements(t.egress_isolated)} }}")
    defs.append(f"set ingress-isolated {{ type ipv4_addr;{_elements(t.ingress_isolated)} }}")
    pairs = [f"{ip} . {ip}" for ip in t.ingress_isolated | t.egress_isolated]
    defs.append(f"set own {{ type ipv4_addr . ipv4_addr;{_elements(pairs)} }}")
    lines += [f"\t{d}" for d in sorted(defs)]
    base = [("egress", "type filter hook forward priority 0; policy accept;", egress),
            ("ingress", "type filter hook forward priority 1; policy accept;", ingress)]
    for name, hook, rules in base + [(n, "", r) for n, r in sorted(t.chains.items())]:
        lines.append(f"\tchain {name} {{")
        if hook:
            lines.append(f"\t\t{hook}")
        lines += [f"\t\t{r}" for r in rules]
        lines.append("\t}")
    lines.append("}")
    return lines


def build_ruleset(table: str, policies: Iterable[Obj], pods: Iterable[Obj], namespaces: Iterable[Obj], *,
                  bridge: bool = True) -> Ruleset:
    """One transaction that replaces the tables named ``table`` with rules for this state
    (the ``bridge`` one only when ``bridge``: the kernel must track bridged connections).

    The tables are deleted and defined again in the same transaction: the kernel switches
    from the old rules to the new ones at once, with no moment in between."""
    views = [v for v in (pod_view(p) for p in pods) if v is not None]
    cluster = _Cluster(views, {meta.name(n): dict(meta.labels(n)) for n in namespaces})
    t = _build(policies, cluster)
    families = FAMILIES if bridge else ("ip",)
    body: list[str] = []
    for family in families:
        body += _table_block(family, table, t)
    head: list[str] = []
    for family in FAMILIES:
        # A bridge table of an earlier run goes too when this one does without it.
        head += [f"add table {family} {table}", f"delete table {family} {table}"]
    body_text = "\n".join(body)
    return Ruleset("\n".join(head) + "\n" + body_text + "\n", body_text, t.ingress_isolated, t.egress_isolated)
