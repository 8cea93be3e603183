"""Validation of networking.k8s.io/v1 NetworkPolicy, with upstream's messages and paths."""
from __future__ import annotations

import ipaddress
from typing import Any

from kubelite.api.validation_common import (
    Errs,
    GoRepr,
    child,
    forbidden,
    go_quote,
    index,
    invalid,
    is_valid_port_name,
    is_valid_port_num,
    name_is_dns_subdomain,
    not_supported,
    required,
    validate_label_selector,
    validate_object_meta,
    validate_object_meta_update,
)

PROTOCOLS = ("TCP", "UDP", "SCTP")
POLICY_TYPES = ("Ingress", "Egress")
CIDR_MSG = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"


def _network(cidr: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """The network a CIDR string names (host bits allowed, as upstream's sloppy parser), or None."""
    if not isinstance(cidr, str) or "/" not in cidr:
        return None
    try:
        return ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return None


def _port(port: dict, path: str) -> Errs:
    errs: Errs = []
    proto = port.get("protocol")
    if proto is not None and proto not in PROTOCOLS:
        errs.append(not_supported(child(path, "protocol"), proto, PROTOCOLS))
    num = port.get("port")
    end = port.get("endPort")
    if num is None:
        if end is not None:
            errs.append(invalid(child(path, "endPort"), end, "may not be specified when `port` is not specified"))
    elif isinstance(num, int) and not isinstance(num, bool):
        errs += [invalid(child(path, "port"), num, m) for m in is_valid_port_num(num)]
        if end is not None:
            if isinstance(end, int) and end < num:
                # Upstream reports the start port as the value here.
                errs.append(invalid(child(path, "endPort"), num, "must be greater than or equal to `port`"))
            errs += [invalid(child(path, "endPort"), end, m) for m in is_valid_port_num(end)]
    else:
        if end is not None:
            errs.append(invalid(child(path, "endPort"), end, "may not be specified when `port` is non-numeric"))
        errs += [invalid(child(path, "port"), num, m) for m in is_valid_port_name(str(num))]
    return errs


def _ip_block(block: dict, path: str) -> Errs:
    cidr = block.get("cidr") or ""
    if not cidr:
        return [required(child(path, "cidr"))]
    net = _network(cidr)
    if net is None:
        return [invalid(child(path, "cidr"), cidr, CIDR_MSG)]
    errs: Errs = []
    for i, ex in enumerate(block.get("except") or []):
        p = index(child(path, "except"), i)
        sub = _network(ex)
        if sub is None:
            errs.append(invalid(p, ex, CIDR_MSG))
            continue
        if sub.version != net.version or sub.network_address not in net or net.prefixlen >= sub.prefixlen:
            errs.append(invalid(p, ex, "must be a strict subset of `cidr`"))
    return errs


def _peer(peer: dict, path: str) -> Errs:
    errs: Errs = []
    count = 0
    if peer.get("podSelector") is not None:
        count += 1
        errs += validate_label_selector(peer["podSelector"], child(path, "podSelector"))
    if peer.get("namespaceSelector") is not None:
        count += 1
        errs += validate_label_selector(peer["namespaceSelector"], child(path, "namespaceSelector"))
    if peer.get("ipBlock") is not None:
        count += 1
        errs += _ip_block(peer["ipBlock"], child(path, "ipBlock"))
    if count == 0:
        errs.append(required(path, "must specify a peer"))
    elif count > 1 and peer.get("ipBlock") is not None:
        errs.append(forbidden(path, "may not specify both ipBlock and another peer"))
    return errs


def validate_network_policy_spec(spec: dict, path: str = "spec") -> Errs:
    """ValidateNetworkPolicySpec."""
    errs = validate_label_selector(spec.get("podSelector"), child(path, "podSelector"))
    for direction, peers in (("ingress", "from"), ("egress", "to")):
        for i, rule in enumerate(spec.get(direction) or []):
            rp = index(child(path, direction), i)
            for j, port in enumerate(rule.get("ports") or []):
                errs += _port(port or {}, index(child(rp, "ports"), j))
            for j, peer in enumerate(rule.get(peers) or []):
                errs += _peer(peer or {}, index(child(rp, peers), j))
    types = spec.get("policyTypes") or []
    if len(types) > len(POLICY_TYPES):
        shown = GoRepr("&[]networking.PolicyType{" + ", ".join(go_quote(str(t)) for t in types) + "}")
        errs.append(invalid(child(path, "policyTypes"), shown, "may not specify more than two policyTypes"))
        return errs
    for i, t in enumerate(types):
        if t not in POLICY_TYPES:
            errs.append(not_supported(index(child(path, "policyTypes"), i), t, POLICY_TYPES))
    return errs


def validate_network_policy(obj: dict, old: dict | None = None) -> Errs:
    """ValidateNetworkPolicy / ValidateNetworkPolicyUpdate."""
    if old is None:
        errs = validate_object_meta(obj, True, name_is_dns_subdomain)
    else:
        errs = validate_object_meta_update(obj, old)
    return errs + validate_network_policy_spec(obj.get("spec") or {})
