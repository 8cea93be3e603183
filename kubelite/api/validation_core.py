"""Validation for the non-pod core kinds and the small groups (coordination, discovery,
events): Service, Namespace, Node, ConfigMap, Secret, ServiceAccount, Endpoints,
EndpointSlice, Lease and Event."""
from __future__ import annotations

import base64
import ipaddress
from typing import Any

from kubelite.api.validation_common import (
    Errs,
    GoRepr,
    child,
    duplicate,
    forbidden,
    go_quote,
    go_string_slice,
    immutable,
    index,
    invalid,
    is_config_map_key,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_qualified_name,
    is_valid_ip,
    is_valid_label_value,
    is_valid_port_num,
    key,
    name_is_dns1035_label,
    name_is_dns_label,
    name_is_dns_subdomain,
    not_supported,
    required,
    too_long,
    too_many,
    validate_labels,
    validate_object_meta,
    validate_object_meta_update,
)
from kubelite.api.validation_pod import port_num_or_name

PROTOCOLS = ("SCTP", "TCP", "UDP")
SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
NODE_PORT_RANGE = (30000, 32767)
MAX_SECRET_SIZE = 1024 * 1024
KUBELET_PORT = 10250


# --- Service ---------------------------------------------------------------------------

def _is_headless(svc: dict) -> bool:
    return (svc.get("spec") or {}).get("clusterIP") == "None"


def _service_port(sp: dict, require_name: bool, names: set[str], path: str) -> Errs:
    errs: Errs = []
    name = sp.get("name") or ""
    if require_name and not name:
        errs.append(required(child(path, "name")))
    elif name:
        errs += [invalid(child(path, "name"), name, m) for m in is_dns1123_label(name)]
        if name in names:
            errs.append(duplicate(child(path, "name"), name))
        else:
            names.add(name)
    port = sp.get("port", 0)
    errs += [invalid(child(path, "port"), port, m) for m in is_valid_port_num(port)]
    proto = sp.get("protocol") or ""
    if not proto:
        errs.append(required(child(path, "protocol")))
    elif proto not in PROTOCOLS:
        errs.append(not_supported(child(path, "protocol"), proto, PROTOCOLS))
    errs += port_num_or_name(sp.get("targetPort", 0), child(path, "targetPort"))
    if sp.get("appProtocol") is not None:
        errs += [invalid(child(path, "appProtocol"), sp["appProtocol"], m) for m in is_qualified_name(sp["appProtocol"])]
    return errs


def node_port_range_errors(svc: dict, port_range: tuple[int, int] = NODE_PORT_RANGE) -> Errs:
    """The allocator's check on explicitly requested nodePorts (422 like upstream's REST)."""
    errs: Errs = []
    lo, hi = port_range
    for i, p in enumerate((svc.get("spec") or {}).get("ports") or []):
        np = p.get("nodePort") or 0
        if np and not lo <= np <= hi:
            errs.append(invalid(f"spec.ports[{i}].nodePort", np,
                                f"provided port is not in the valid range. The range of valid ports is {lo}-{hi}"))
    return errs


def _cluster_ips(svc: dict) -> Errs:
    spec = svc.get("spec") or {}
    if spec.get("type") == "ExternalName":
        return []
    errs: Errs = []
    cip = spec.get("clusterIP") or ""
    cips = spec.get("clusterIPs") or []
    if cip:
        if not cips:
            errs.append(required("spec.clusterIPs"))
        elif cips[0] != cip:
            errs.append(invalid("spec.clusterIPs", GoRepr(go_string_slice(cips)), "first value must match `clusterIP`"))
    elif cips:
        errs.append(invalid("spec.clusterIPs", GoRepr(go_string_slice(cips)), "must be empty when `clusterIP` is not specified"))
    seen: set[str] = set()
    for i, fam in enumerate(spec.get("ipFamilies") or []):
        if fam not in ("IPv4", "IPv6"):
            errs.append(not_supported(f"spec.ipFamilies[{i}]", fam, ("IPv4", "IPv6")))
        if fam in seen:
            errs.append(duplicate(f"spec.ipFamilies[{i}]", fam))
        seen.add(fam)
    pol = spec.get("ipFamilyPolicy")
    if pol is not None and pol not in ("PreferDualStack", "RequireDualStack", "SingleStack"):
        errs.append(not_supported("spec.ipFamilyPolicy", pol, ("PreferDualStack", "RequireDualStack", "SingleStack")))
    for i, ip in enumerate(cips):
        if i == 0 and ip == "None":
            if len(cips) > 1:
                errs.append(invalid("spec.clusterIPs", GoRepr(go_string_slice(cips)), "'None' must be the first and only value"))
            continue
        errs += [invalid(f"spec.clusterIPs[{i}]", ip, m) for m in is_valid_ip(ip)]
    if len(cips) > 2:
        errs.append(invalid("spec.clusterIPs", GoRepr(go_string_slice(cips)), "may only hold up to 2 values"))
    return errs


def validate_service(svc: dict, old: dict | None = None) -> Errs:
    """ValidateService (+ ValidateServiceUpdate when ``old`` is given)."""
    errs: Errs = []
    if old is not None:
        errs += validate_object_meta_update(svc, old)
        errs += _cluster_ip_update(svc, old)
        errs += validate_service_spec(svc)
        return errs
    errs += validate_object_meta(svc, True, name_is_dns1035_label)
    return errs + validate_service_spec(svc)


def validate_service_spec(svc: dict) -> Errs:
    """The spec half of ValidateService."""
    spec = svc.get("spec") or {}
    errs: Errs = []
    stype = spec.get("type") or ""
    ports = spec.get("ports") or []
    headless = _is_headless(svc)
    if not ports and not headless and stype != "ExternalName":
        errs.append(required("spec.ports"))
    if stype == "LoadBalancer":
        for i, p in enumerate(ports):
            if p.get("port") == KUBELET_PORT:
                errs.append(invalid(f"spec.ports[{i}]", KUBELET_PORT,
                                    f"may not expose port {KUBELET_PORT} externally since it is used by kubelet"))
        if headless:
            errs.append(invalid("spec.clusterIPs[0]", "None", "may not be set to 'None' for LoadBalancer services"))
    elif stype == "NodePort" and headless:
        errs.append(invalid("spec.clusterIPs[0]", "None", "may not be set to 'None' for NodePort services"))
    elif stype == "ExternalName":
        if spec.get("clusterIPs"):
            errs.append(forbidden("spec.clusterIPs", "may not be set for ExternalName services"))
        if spec.get("ipFamilies"):
            errs.append(forbidden("spec.ipFamilies", "may not be set for ExternalName services"))
        if spec.get("ipFamilyPolicy") is not None:
            errs.append(forbidden("spec.ipFamilyPolicy", "may not be set for ExternalName services"))
        cname = (spec.get("externalName") or "").removesuffix(".")
        if cname:
            errs += [invalid("spec.externalName", cname, m) for m in is_dns1123_subdomain(cname)]
        else:
            errs.append(required("spec.externalName"))
    names: set[str] = set()
    for i, p in enumerate(ports):
        errs += _service_port(p, len(ports) > 1, names, f"spec.ports[{i}]")
    if spec.get("selector") is not None:
        errs += validate_labels(spec["selector"], "spec.selector")
    sa = spec.get("sessionAffinity") or ""
    if not sa:
        errs.append(required("spec.sessionAffinity"))
    elif sa not in ("ClientIP", "None"):
        errs.append(not_supported("spec.sessionAffinity", sa, ("ClientIP", "None")))
    if sa == "None" and spec.get("sessionAffinityConfig") is not None:
        errs.append(forbidden("spec.sessionAffinityConfig", "must not be set when session affinity is None"))
    errs += _cluster_ips(svc)
    for i, ip in enumerate(spec.get("externalIPs") or []):
        errs += [invalid(f"spec.externalIPs[{i}]", ip, m) for m in is_valid_ip(ip)]
    if not stype:
        errs.append(required("spec.type"))
    elif stype not in SERVICE_TYPES:
        errs.append(not_supported("spec.type", stype, SERVICE_TYPES))
    if stype == "ClusterIP":
        for i, p in enumerate(ports):
            if p.get("nodePort"):
                errs.append(forbidden(f"spec.ports[{i}].nodePort", "may not be used when `type` is 'ClusterIP'"))
    seen_np: set[tuple] = set()
    seen_port: set[tuple] = set()
    for i, p in enumerate(ports):
        if p.get("nodePort"):
            k = (p.get("protocol"), p["nodePort"])
            if k in seen_np:
                errs.append(duplicate(f"spec.ports[{i}].nodePort", p["nodePort"]))
            seen_np.add(k)
    for i, p in enumerate(ports):
        k = (p.get("protocol"), p.get("port"))
        if k in seen_port:
            errs.append(duplicate(f"spec.ports[{i}]", GoRepr(
                f'core.ServicePort{{Name:"", Protocol:"{k[0] or ""}", AppProtocol:(*string)(nil), Port:{k[1]}, '
                'TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}')))
        seen_port.add(k)
    if spec.get("allocateLoadBalancerNodePorts") is not None and stype != "LoadBalancer":
        errs.append(forbidden("spec.allocateLoadBalancerNodePorts", "may only be used when `type` is 'LoadBalancer'"))
    if stype == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        errs.append(required("allocateLoadBalancerNodePorts"))
    etp = spec.get("externalTrafficPolicy") or ""
    if stype in ("NodePort", "LoadBalancer"):
        if not etp:
            errs.append(required("spec.externalTrafficPolicy"))
        elif etp not in ("Cluster", "Local"):
            errs.append(not_supported("spec.externalTrafficPolicy", etp, ("Cluster", "Local")))
    elif etp:
        errs.append(invalid("spec.externalTrafficPolicy", etp, "may only be set when `type` is 'NodePort' or 'LoadBalancer'"))
    itp = spec.get("internalTrafficPolicy")
    if itp is None and stype in ("NodePort", "LoadBalancer", "ClusterIP"):
        errs.append(required("spec.internalTrafficPolicy"))
    if itp is not None and itp not in ("Cluster", "Local"):
        errs.append(not_supported("spec.internalTrafficPolicy", itp, ("Cluster", "Local")))
    return errs


def _cluster_ip_update(new: dict, old: dict) -> Errs:
    ns, os_ = new.get("spec") or {}, old.get("spec") or {}
    if "ExternalName" in (ns.get("type"), os_.get("type")):
        return []
    if _is_headless(new) and _is_headless(old):
        return []
    nips, oips = ns.get("clusterIPs") or [], os_.get("clusterIPs") or []
    shown = GoRepr(go_string_slice(nips))
    errs: Errs = []
    if len(nips) == len(oips):
        for i, ip in enumerate(oips):
            if ip != nips[i]:
                errs.append(invalid(f"spec.clusterIPs[{i}]", shown, "may not change once set"))
    elif len(oips) > len(nips):
        if not nips:
            errs.append(invalid("spec.clusterIPs[0]", shown, "primary clusterIP can not be unset"))
        elif oips and nips[0] != oips[0]:
            errs.append(invalid("spec.clusterIPs[0]", shown, "may not change once set"))
    elif oips and nips[0] != oips[0]:
        errs.append(invalid("spec.clusterIPs[0]", shown, "may not change once set"))
    return errs


# --- Namespace, Node, ServiceAccount ---------------------------------------------------

def validate_namespace(ns: dict, old: dict | None = None) -> Errs:
    """ValidateNamespace / ValidateNamespaceUpdate."""
    if old is not None:
        return validate_object_meta_update(ns, old)
    errs = validate_object_meta(ns, False, name_is_dns_label)
    for f in (ns.get("spec") or {}).get("finalizers") or []:
        errs += [invalid("spec.finalizers", f, m) for m in is_qualified_name(f)]
        if "/" not in f and f != "kubernetes":
            errs.append(invalid("spec.finalizers", f, "name is neither a standard finalizer name nor is it fully qualified"))
    return errs


def _taints(taints: list, path: str) -> Errs:
    errs: Errs = []
    seen: set[tuple] = set()
    for i, t in enumerate(taints or []):
        ip = index(path, i)
        k = t.get("key") or ""
        errs += [invalid(child(ip, "key"), k, m) for m in is_qualified_name(k)]
        errs += [invalid(child(ip, "value"), t.get("value", ""), m) for m in is_valid_label_value(t.get("value") or "")]
        eff = t.get("effect") or ""
        if not eff:
            errs.append(required(child(ip, "effect")))
        elif eff not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
            errs.append(not_supported(child(ip, "effect"), eff, ("NoSchedule", "PreferNoSchedule", "NoExecute")))
        if (k, eff) in seen:
            errs.append(duplicate(ip, GoRepr(f"core.Taint{{Key:{go_quote(k)}, Effect:{go_quote(eff)}}}")))
        seen.add((k, eff))
    return errs


def validate_node(node: dict, old: dict | None = None) -> Errs:
    """ValidateNode / ValidateNodeUpdate (podCIDR may only be set once)."""
    errs = validate_object_meta(node, False, name_is_dns_subdomain) if old is None else \
        validate_object_meta_update(node, old)
    spec = node.get("spec") or {}
    errs += _taints(spec.get("taints") or [], "spec.taints")
    cidrs = spec.get("podCIDRs") or []
    for i, c in enumerate(cidrs):
        try:
            ipaddress.ip_network(c, strict=False)
        except ValueError:
            errs.append(invalid(f"spec.podCIDRs[{i}]", c, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"))
    if len(cidrs) > 2:
        errs.append(invalid("spec.podCIDRs", GoRepr(go_string_slice(cidrs)),
                            "may specify no more than one CIDR for each IP family"))
    if old is not None:
        ospec = old.get("spec") or {}
        if ospec.get("podCIDRs") and ospec.get("podCIDRs") != cidrs:
            errs.append(forbidden("spec.podCIDRs", "node updates may not change podCIDR except from \"\" to valid"))
        if ospec.get("providerID") and ospec.get("providerID") != spec.get("providerID"):
            errs.append(forbidden("spec.providerID", "node updates may not change providerID except from \"\" to valid"))
    return errs


def validate_service_account(sa: dict, old: dict | None = None) -> Errs:
    """ValidateServiceAccount."""
    if old is not None:
        return validate_object_meta_update(sa, old)
    return validate_object_meta(sa, True, name_is_dns_subdomain)


# --- ConfigMap and Secret --------------------------------------------------------------

def _immutable_data(new: dict, old: dict, fields: tuple[str, ...]) -> Errs:
    errs: Errs = []
    if old.get("immutable"):
        if not new.get("immutable"):
            errs.append(forbidden("immutable", "field is immutable when `immutable` is set"))
        for f in fields:
            if (new.get(f) or {}) != (old.get(f) or {}):
                errs.append(forbidden(f, "field is immutable when `immutable` is set"))
    return errs


def validate_configmap(cm: dict, old: dict | None = None) -> Errs:
    """ValidateConfigMap (+ update rules)."""
    errs: Errs = []
    if old is not None:
        errs += validate_object_meta_update(cm, old) + _immutable_data(cm, old, ("data", "binaryData"))
    errs += validate_object_meta(cm, True, name_is_dns_subdomain) if old is None else []
    total = 0
    data, binary = cm.get("data") or {}, cm.get("binaryData") or {}
    for k, v in data.items():
        errs += [invalid(key("data", k), k, m) for m in is_config_map_key(k)]
        if k in binary:
            errs.append(invalid(key("data", k), k, "duplicate of key present in binaryData"))
        total += len(v or "")
    for k, v in binary.items():
        errs += [invalid(key("binaryData", k), k, m) for m in is_config_map_key(k)]
        total += len(v or "") * 3 // 4
    if total > MAX_SECRET_SIZE:
        errs.append(too_long("", MAX_SECRET_SIZE))
    return errs


def _decoded_len(v: Any) -> int:
    try:
        return len(base64.b64decode(v or "", validate=False))
    except (ValueError, TypeError):
        return len(v or "")


def validate_secret(sec: dict, old: dict | None = None) -> Errs:
    """ValidateSecret (+ type immutability and `immutable` rules on update)."""
    errs: Errs = []
    if old is not None:
        errs += validate_object_meta_update(sec, old)
        errs += immutable(sec.get("type", ""), old.get("type", ""), "type")
        errs += _immutable_data(sec, old, ("data",))
    else:
        errs += validate_object_meta(sec, True, name_is_dns_subdomain)
    data = sec.get("data") or {}
    total = 0
    for k, v in data.items():
        errs += [invalid(key("data", k), k, m) for m in is_config_map_key(k)]
        total += _decoded_len(v)
    if total > MAX_SECRET_SIZE:
        errs.append(too_long("data", MAX_SECRET_SIZE))
    stype = sec.get("type") or ""
    ann = (sec.get("metadata") or {}).get("annotations") or {}
    if stype == "kubernetes.io/service-account-token":
        if not ann.get("kubernetes.io/service-account.name"):
            errs.append(required("metadata.annotations[kubernetes.io/service-account.name]"))
    elif stype == "kubernetes.io/dockercfg":
        if ".dockercfg" not in data:
            errs.append(required("data[.dockercfg]"))
    elif stype == "kubernetes.io/dockerconfigjson":
        if ".dockerconfigjson" not in data:
            errs.append(required("data[.dockerconfigjson]"))
    elif stype == "kubernetes.io/basic-auth":
        if "username" not in data and "password" not in data:
            errs += [required("data[username]"), required("data[password]")]
    elif stype == "kubernetes.io/ssh-auth":
        if not data.get("ssh-privatekey"):
            errs.append(required("data[ssh-privatekey]"))
    elif stype == "kubernetes.io/tls":
        if "tls.crt" not in data:
            errs.append(required("data[tls.crt]"))
        if "tls.key" not in data:
            errs.append(required("data[tls.key]"))
    return errs


# --- Endpoints, EndpointSlice, Lease, Event --------------------------------------------

_LINK_LOCAL_MULTICAST_V4 = ipaddress.ip_network("224.0.0.0/24")


def non_special_ip(path: str, ip: str, *, allow_loopback: bool = False) -> Errs:
    """ValidateNonSpecialIP: an endpoint may not be unspecified, loopback or link-local
    (an unparsable address is reported by ``is_valid_ip`` instead)."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return []
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped  # Go treats ::ffff:a.b.c.d as the IPv4 address
    errs = []
    if addr.is_unspecified:
        errs.append(invalid(path, ip, f"may not be unspecified ({ip})"))
    if addr.is_loopback and not allow_loopback:
        errs.append(invalid(path, ip, "may not be in the loopback range (127.0.0.0/8, ::1/128)"))
    if addr.is_link_local:
        errs.append(invalid(path, ip, "may not be in the link-local range (169.254.0.0/16, fe80::/10)"))
    if addr in _LINK_LOCAL_MULTICAST_V4 or (addr.version == 6 and addr.packed[:1] == b"\xff"
                                            and addr.packed[1] & 0x0F == 2):
        errs.append(invalid(path, ip, "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"))
    return errs


# The server's own Endpoints: kubelite advertises 127.0.0.1 for the API server, and its
# cluster DNS listens on a 127.x address on the host network; upstream would refuse both.
# The server itself writes these two objects.
_SERVER_ENDPOINTS = {("default", "kubernetes"), ("kube-system", "kube-dns")}


def _loopback_allowed(ep: dict, address: dict) -> bool:
    """Loopback is a pod's own address here: the process and fake runtimes give every pod
    a 127.x address, so an address that names its Pod (what the endpoints controller
    writes) may be one.  Upstream pods never have loopback addresses."""
    md = ep.get("metadata") or {}
    if (md.get("namespace"), md.get("name")) in _SERVER_ENDPOINTS:
        return True
    ref = address.get("targetRef") or {}
    return ref.get("kind") == "Pod" and bool(ref.get("name"))


def validate_endpoints(ep: dict, old: dict | None = None) -> Errs:
    """ValidateEndpoints: addresses are IPs that are not special, ports valid, named when several."""
    errs = validate_object_meta(ep, True, name_is_dns_subdomain) if old is None else \
        validate_object_meta_update(ep, old)
    for si, ss in enumerate(ep.get("subsets") or []):
        sp = f"subsets[{si}]"
        addrs, nready = ss.get("addresses") or [], ss.get("notReadyAddresses") or []
        if not addrs and not nready:
            errs.append(required(sp, "must specify `addresses` or `notReadyAddresses`"))
        for field, lst in (("addresses", addrs), ("notReadyAddresses", nready)):
            for ai, a in enumerate(lst):
                ip_path, ip = f"{sp}.{field}[{ai}].ip", a.get("ip", "")
                errs += [invalid(ip_path, ip, m) for m in is_valid_ip(ip)]
                errs += non_special_ip(ip_path, ip, allow_loopback=_loopback_allowed(ep, a))
                if a.get("nodeName"):
                    errs += [invalid(f"{sp}.{field}[{ai}].nodeName", a["nodeName"], m)
                             for m in is_dns1123_subdomain(a["nodeName"])]
        ports = ss.get("ports") or []
        for pi, p in enumerate(ports):
            pp = f"{sp}.ports[{pi}]"
            name = p.get("name") or ""
            if len(ports) > 1 and not name:
                errs.append(required(f"{pp}.name"))
            elif name:
                errs += [invalid(f"{pp}.name", name, m) for m in is_dns1123_label(name)]
            errs += [invalid(f"{pp}.port", p.get("port", 0), m) for m in is_valid_port_num(p.get("port", 0))]
            proto = p.get("protocol") or ""
            if not proto:
                errs.append(required(f"{pp}.protocol"))
            elif proto not in PROTOCOLS:
                errs.append(not_supported(f"{pp}.protocol", proto, PROTOCOLS))
    return errs


def validate_endpoint_slice(es: dict, old: dict | None = None) -> Errs:
    """ValidateEndpointSlice (+ immutable addressType)."""
    errs = validate_object_meta(es, True, name_is_dns_subdomain) if old is None else \
        validate_object_meta_update(es, old)
    at = es.get("addressType") or ""
    if not at:
        errs.append(required("addressType"))
    elif at not in ("IPv4", "IPv6", "FQDN"):
        errs.append(not_supported("addressType", at, ("FQDN", "IPv4", "IPv6")))
    eps = es.get("endpoints") or []
    if len(eps) > 1000:
        errs.append(too_many("endpoints", len(eps), 1000))
    for i, ep in enumerate(eps):
        ap = f"endpoints[{i}].addresses"
        addrs = ep.get("addresses") or []
        if not addrs:
            errs.append(required(ap, "must contain at least 1 address"))
        elif len(addrs) > 100:
            errs.append(too_many(ap, len(addrs), 100))
        for j, a in enumerate(addrs):
            try:
                ip = ipaddress.ip_address(a) if at in ("IPv4", "IPv6") else None
            except ValueError:
                ip = None
            if at == "IPv4" and (ip is None or ip.version != 4):
                errs.append(invalid(f"{ap}[{j}]", a, "must be a valid IPv4 address"))
            elif at == "IPv6" and (ip is None or ip.version != 6):
                errs.append(invalid(f"{ap}[{j}]", a, "must be a valid IPv6 address"))
        if ep.get("nodeName"):
            errs += [invalid(f"endpoints[{i}].nodeName", ep["nodeName"], m) for m in is_dns1123_subdomain(ep["nodeName"])]
        if ep.get("hostname") is not None:
            errs += [invalid(f"endpoints[{i}].hostname", ep["hostname"], m) for m in is_dns1123_label(ep["hostname"])]
    names: set[str] = set()
    ports = es.get("ports") or []
    if len(ports) > 100:
        errs.append(too_many("ports", len(ports), 100))
    for i, p in enumerate(ports):
        name = p.get("name") or ""
        if name:
            errs += [invalid(f"ports[{i}].name", name, m) for m in is_dns1123_label(name)]
        if name in names:
            errs.append(duplicate(f"ports[{i}].name", name))
        names.add(name)
        proto = p.get("protocol")
        if proto is None:
            errs.append(required(f"ports[{i}].protocol"))
        elif proto not in PROTOCOLS:
            errs.append(not_supported(f"ports[{i}].protocol", proto, PROTOCOLS))
    if old is not None:
        errs += immutable(at, old.get("addressType") or "", "addressType")
    return errs


def validate_lease(lease: dict, old: dict | None = None) -> Errs:
    """ValidateLease."""
    errs = validate_object_meta(lease, True, name_is_dns_subdomain) if old is None else \
        validate_object_meta_update(lease, old)
    spec = lease.get("spec") or {}
    lds = spec.get("leaseDurationSeconds")
    if lds is not None and lds <= 0:
        errs.append(invalid("spec.leaseDurationSeconds", lds, "must be greater than 0"))
    lt = spec.get("leaseTransitions")
    if lt is not None and lt < 0:
        errs.append(invalid("spec.leaseTransitions", lt, "must be greater than or equal to 0"))
    return errs


def validate_event(ev: dict, api_version: str, old: dict | None = None) -> Errs:
    """The legacy (core/v1) event checks; events.k8s.io/v1 adds name and eventTime rules."""
    errs: Errs = []
    md = ev.get("metadata") or {}
    ns = md.get("namespace") or ""
    core = api_version == "v1"
    involved = ev.get("involvedObject") if core else ev.get("regarding")
    involved = involved or {}
    inv_path = "involvedObject.namespace" if core else "regarding.namespace"
    inv_ns = involved.get("namespace") or ""
    if not ev.get("eventTime"):
        if not inv_ns:
            if ns not in ("", "default"):
                errs.append(invalid(inv_path, inv_ns, "does not match event.namespace"))
        elif ns != inv_ns:
            errs.append(invalid(inv_path, inv_ns, "does not match event.namespace"))
    else:
        if not inv_ns and ns not in ("default", "kube-system"):
            errs.append(invalid(inv_path, inv_ns, "does not match event.namespace"))
        rc_field = "reportingComponent" if core else "reportingController"
        rc = ev.get(rc_field) or ""
        if not rc:
            errs.append(required(rc_field))
        errs += [invalid(rc_field, rc, m) for m in is_qualified_name(rc)]
        if not ev.get("reportingInstance"):
            errs.append(required("reportingInstance"))
        if not ev.get("action"):
            errs.append(required("action"))
        if not ev.get("reason"):
            errs.append(required("reason"))
    errs += [invalid("namespace", ns, m) for m in is_dns1123_subdomain(ns)]
    if not core:
        errs += validate_object_meta(ev, True, name_is_dns_subdomain) if old is None else \
            validate_object_meta_update(ev, old)
        if old is None and not ev.get("eventTime"):
            errs.append(required("eventTime"))
        if ev.get("type") not in ("Normal", "Warning"):
            errs.append(invalid("type", "", f"has invalid value: {ev.get('type') or ''}"))
    return errs
