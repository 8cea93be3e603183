"""Ingress and IngressClass validation (upstream ``pkg/apis/networking/validation``).

Field paths and messages are upstream's, so kubectl prints the same ``is invalid`` lines:
a rule needs paths, every path a pathType; Exact and Prefix paths are absolute and free of
``//``, ``/./``, ``/../`` and encoded slashes; a backend names a service (with a port name
or number, not both) or a resource, never both; hosts are DNS names (``*.`` wildcards
allowed, IPs not); TLS secret names are object names.  Updates accept what the old object
already had (a wildcard host or a bad secret name stored before those checks existed).
"""
from __future__ import annotations

import ipaddress
import re
from typing import Any

from kubelite.api.validation_common import (
    DNS1123_SUBDOMAIN_FMT,
    Errs,
    GoRepr,
    child,
    forbidden,
    immutable,
    index,
    invalid,
    is_dns1123_subdomain,
    is_valid_ip,
    is_valid_port_name,
    is_valid_port_num,
    max_len_error,
    name_is_dns1035_label,
    name_is_dns_label,
    name_is_dns_subdomain,
    not_supported,
    regex_error,
    required,
    too_long,
    validate_object_meta,
    validate_object_meta_update,
)

Obj = dict[str, Any]

CLASS_ANNOTATION = "kubernetes.io/ingress.class"
DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"
PATH_TYPES = ("Exact", "ImplementationSpecific", "Prefix")  # sorted, as NotSupported lists them
_BAD_SEQUENCES = ("//", "/./", "/../", "%2f", "%2F")
_BAD_SUFFIXES = ("/..", "/.")
_WILDCARD_FMT = "\\*\\." + DNS1123_SUBDOMAIN_FMT
_WILDCARD_RE = re.compile("^" + _WILDCARD_FMT + "$")
_WILDCARD_MSG = ("a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which "
                 "must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric "
                 "character")
_HTTP_PATH_FMT = "[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+"
_HTTP_PATH_RE = re.compile("^" + _HTTP_PATH_FMT + "$")
_CONTROLLER_MAX = 250
_SCOPES = ("Cluster", "Namespace")


def is_wildcard_dns1123_subdomain(value: str) -> list[str]:
    """IsWildcardDNS1123Subdomain."""
    errs = []
    if len(value) > 253:
        errs.append(max_len_error(253))
    if not _WILDCARD_RE.match(value) or value.endswith("\n"):
        errs.append(regex_error(_WILDCARD_MSG, _WILDCARD_FMT, "*.example.com"))
    return errs


def _path_segment_name(name: str) -> list[str]:
    """IsValidPathSegmentName."""
    if name in (".", ".."):
        return [f"may not be '{name}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in name]


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def _typed_ref(ref: Obj, path: str) -> Errs:
    """validateIngressTypedLocalObjectReference."""
    errs: Errs = []
    if ref.get("apiGroup") is not None:
        errs += [invalid(child(path, "apiGroup"), ref["apiGroup"], m) for m in is_dns1123_subdomain(ref["apiGroup"])]
    for f in ("kind", "name"):
        v = ref.get(f) or ""
        if not v:
            errs.append(required(child(path, f), f"{f} is required"))
        else:
            errs += [invalid(child(path, f), v, m) for m in _path_segment_name(v)]
    return errs


def _backend(backend: Obj, path: str) -> Errs:
    """validateIngressBackend: a service or a resource, exactly one."""
    svc, res = backend.get("service"), backend.get("resource")
    if svc is not None and res is not None:
        return [invalid(path, "", "cannot set both resource and service backends")]
    if res is not None:
        return _typed_ref(res, child(path, "resource"))
    if svc is None:
        return [invalid(path, "", "resource or service backend is required")]
    errs: Errs = []
    name = svc.get("name") or ""
    if not name:
        errs.append(required(child(path, "service", "name")))
    else:
        errs += [invalid(child(path, "service", "name"), name, m) for m in name_is_dns1035_label(name, False)]
    port = svc.get("port") or {}
    pname, pnum = port.get("name") or "", port.get("number") or 0
    if pname and pnum:
        errs.append(invalid(path, "", "cannot set both port name & port number"))
    elif pname:
        errs += [invalid(child(path, "service", "port", "name"), pname, m) for m in is_valid_port_name(pname)]
    elif pnum:
        errs += [invalid(child(path, "service", "port", "number"), pnum, m) for m in is_valid_port_num(pnum)]
    else:
        errs.append(required(path, "port name or number is required"))
    return errs


def _http_path(p: Obj, path: str) -> Errs:
    """validateHTTPIngressPath."""
    pt = p.get("pathType")
    if pt is None:
        return [required(child(path, "pathType"), "pathType must be specified")]
    errs: Errs = []
    value = p.get("path") or ""
    if pt in ("Exact", "Prefix"):
        if not value.startswith("/"):
            errs.append(invalid(child(path, "path"), value, "must be an absolute path"))
        if value:
            errs += [invalid(child(path, "path"), value, f"must not contain '{s}'") for s in _BAD_SEQUENCES if s in value]
            errs += [invalid(child(path, "path"), value, f"cannot end with '{s}'")
                     for s in _BAD_SUFFIXES if value.endswith(s)]
    elif pt == "ImplementationSpecific":
        if value and not value.startswith("/"):
            errs.append(invalid(child(path, "path"), value, "must be an absolute path"))
    else:
        errs.append(not_supported(child(path, "pathType"), pt, PATH_TYPES))
    return errs + _backend(p.get("backend") or {}, child(path, "backend"))


def _rules(rules: list[Obj], path: str, allow_wildcard_rule: bool) -> Errs:
    """validateIngressRules."""
    errs: Errs = []
    for i, rule in enumerate(rules):
        rpath = index(path, i)
        host = rule.get("host") or ""
        wildcard = False
        if host:
            if _is_ip(host):
                errs.append(invalid(child(rpath, "host"), host, "must be a DNS name, not an IP address"))
            if "*" in host:
                errs += [invalid(child(rpath, "host"), host, m) for m in is_wildcard_dns1123_subdomain(host)]
                wildcard = True
            else:
                errs += [invalid(child(rpath, "host"), host, m) for m in is_dns1123_subdomain(host)]
        if wildcard and allow_wildcard_rule:
            continue
        http = rule.get("http")
        if http is not None:
            hpath = child(rpath, "http")
            paths = http.get("paths") or []
            if not paths:
                errs.append(required(child(hpath, "paths")))
            for j, p in enumerate(paths):
                errs += _http_path(p or {}, index(child(hpath, "paths"), j))
    return errs


def _tls(tls: list[Obj], path: str, allow_bad_secret: bool) -> Errs:
    """validateIngressTLS."""
    errs: Errs = []
    for i, t in enumerate(tls):
        for j, host in enumerate(t.get("hosts") or []):
            hp = index(child(index(path, i), "hosts"), j)
            check = is_wildcard_dns1123_subdomain if "*" in host else is_dns1123_subdomain
            errs += [invalid(hp, host, m) for m in check(host)]
        secret = t.get("secretName") or ""
        if secret and not allow_bad_secret:
            errs += [invalid(child(index(path, i), "secretName"), secret, m)
                     for m in name_is_dns_subdomain(secret, False)]
    return errs


def _spec(spec: Obj, allow_bad_secret: bool, allow_wildcard_rule: bool) -> Errs:
    """ValidateIngressSpec."""
    errs: Errs = []
    rules = spec.get("rules") or []
    if not rules and spec.get("defaultBackend") is None:
        errs.append(invalid("spec", GoRepr("[]networking.IngressRule(nil)") if spec.get("rules") is None
                            else GoRepr("[]networking.IngressRule{}"),
                            "either `defaultBackend` or `rules` must be specified"))
    if spec.get("defaultBackend") is not None:
        errs += _backend(spec["defaultBackend"], "spec.defaultBackend")
    if rules:
        errs += _rules(rules, "spec.rules", allow_wildcard_rule)
    if spec.get("tls"):
        errs += _tls(spec["tls"], "spec.tls", allow_bad_secret)
    cls = spec.get("ingressClassName")
    if cls is not None:
        errs += [invalid("spec.ingressClassName", cls, m) for m in name_is_dns_subdomain(cls, False)]
    return errs


def _old_has_bad_secret(old: Obj) -> bool:
    return any(name_is_dns_subdomain(t.get("secretName") or "", False)
               for t in (old.get("spec") or {}).get("tls") or [] if t.get("secretName"))


def _old_has_wildcard_rule(old: Obj) -> bool:
    # A wildcard host whose rule fails today's path checks was stored by an older server.
    rules = (old.get("spec") or {}).get("rules") or []
    return any("*" in (r.get("host") or "") and _rules([r], "x", False) for r in rules)


def validate_ingress(ing: Obj, old: Obj | None = None) -> Errs:
    """ValidateIngressCreate / ValidateIngressUpdate."""
    spec = ing.get("spec") or {}
    if old is None:
        errs = validate_object_meta(ing, True, name_is_dns_subdomain)
        errs += _spec(spec, False, False)
        annotations = (ing.get("metadata") or {}).get("annotations") or {}
        cls = spec.get("ingressClassName")
        if CLASS_ANNOTATION in annotations and cls is not None and annotations[CLASS_ANNOTATION] != cls:
            errs.append(invalid(f"annotations.{CLASS_ANNOTATION}", annotations[CLASS_ANNOTATION],
                                "must match `ingressClassName` when both are specified"))
        return errs
    errs = validate_object_meta_update(ing, old)
    errs += validate_object_meta(ing, True, name_is_dns_subdomain)
    errs += _spec(spec, _old_has_bad_secret(old), _old_has_wildcard_rule(old))
    return errs


def validate_ingress_status(ing: Obj, old: Obj) -> Errs:
    """ValidateIngressStatusUpdate: the load balancer points are IPs or DNS names."""
    errs = validate_object_meta_update(ing, old)
    lb = ((ing.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    for i, point in enumerate(lb):
        path = index("status.loadBalancer.ingress", i)
        if point.get("ip"):
            errs += [invalid(child(path, "ip"), point["ip"], m) for m in is_valid_ip(point["ip"])]
        host = point.get("hostname") or ""
        if host:
            errs += [invalid(child(path, "hostname"), host, m) for m in is_dns1123_subdomain(host)]
            if _is_ip(host):
                errs.append(invalid(child(path, "hostname"), host, "must be a DNS name, not an IP address"))
    return errs


def _domain_prefixed_path(value: str, path: str) -> Errs:
    """IsDomainPrefixedPath (the IngressClass controller name)."""
    if not value:
        return [required(path)]
    parts = value.split("/", 1)
    if len(parts) != 2 or not parts[0] or not parts[1]:
        return [invalid(path, value, "must be a domain-prefixed path (such as \"acme.io/foo\")")]
    errs = [invalid(path, parts[0], m) for m in is_dns1123_subdomain(parts[0])]
    if not _HTTP_PATH_RE.match(parts[1]):
        errs.append(invalid(path, parts[1], regex_error("Invalid path", _HTTP_PATH_FMT)))
    return errs


def _parameters(params: Obj | None, path: str) -> Errs:
    """validateIngressClassParametersReference."""
    if params is None:
        return []
    errs = _typed_ref(params, path)
    scope = params.get("scope")
    if scope is None:
        return errs + [required(child(path, "scope"))]
    if scope not in _SCOPES:
        return errs + [not_supported(child(path, "scope"), scope, _SCOPES)]
    ns = params.get("namespace")
    if scope == "Namespace":
        if ns is None:
            errs.append(required(child(path, "namespace"), "`parameters.scope` is set to 'Namespace'"))
        else:
            errs += [invalid(child(path, "namespace"), ns, m) for m in name_is_dns_label(ns, False)]
    elif ns is not None:
        errs.append(forbidden(child(path, "namespace"), "`parameters.scope` is set to 'Cluster'"))
    return errs


def validate_ingress_class(ic: Obj, old: Obj | None = None) -> Errs:
    """ValidateIngressClass / ValidateIngressClassUpdate (the controller is immutable)."""
    spec = ic.get("spec") or {}
    errs: Errs = []
    if old is not None:
        errs += validate_object_meta_update(ic, old)
        errs += immutable(spec.get("controller") or "", (old.get("spec") or {}).get("controller") or "",
                          "spec.controller")
    errs += validate_object_meta(ic, False, name_is_dns_subdomain)
    controller = spec.get("controller") or ""
    if len(controller) > _CONTROLLER_MAX:
        errs.append(too_long("spec.controller", _CONTROLLER_MAX))
    errs += _domain_prefixed_path(controller, "spec.controller")
    errs += _parameters(spec.get("parameters"), "spec.parameters")
    return errs


def default_ingress_class(ic: Obj) -> None:
    """SetDefaults_IngressClass: a parameters reference is cluster-scoped unless told."""
    params = (ic.get("spec") or {}).get("parameters")
    if isinstance(params, dict) and params.get("scope") is None:
        params["scope"] = "Cluster"
