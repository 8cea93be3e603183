"""Pod and PodTemplateSpec validation (upstream ``pkg/apis/core/validation``, pod parts).

The checks run in upstream's order so a multi-error response lists causes the way a
real API server does.  Volume sources are not inspected beyond names: kubelite's node
agent only needs the names to wire mounts.
"""
from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

from kubelite.api.errors import Cause
from kubelite.api.validation_common import (
    Errs,
    GoRepr,
    child,
    duplicate,
    forbidden,
    go_value,
    immutable,
    inclusive_range_error,
    index,
    invalid,
    is_config_map_key,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_env_var_name,
    is_http_header_name,
    is_qualified_name,
    is_valid_ip,
    is_valid_label_value,
    is_valid_port_name,
    is_valid_port_num,
    key,
    name_is_dns_subdomain,
    nonnegative,
    not_supported,
    required,
    validate_annotations,
    validate_label_name,
    validate_labels,
    validate_object_meta,
    validate_object_meta_update,
)

MAX_INT32 = 2**31 - 1
PROTOCOLS = ("SCTP", "TCP", "UDP")  # sets.List() order
RESTART_POLICIES = ("Always", "OnFailure", "Never")
DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
PREEMPTION_POLICIES = ("PreemptLowerPriority", "Never")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")

_QUANTITY_RE = re.compile(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")
_SUFFIX: dict[str, int | Fraction] = {
    "": 1, "n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 1000),
    "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
}


def not_found(path: str, value: Any) -> Cause:
    """field.NotFound."""
    return Cause("FieldValueNotFound", f"Not found: {go_value(value)}", path)


def parse_quantity(q: Any) -> Fraction | None:
    """A resource.Quantity as an exact number, or None when it does not parse."""
    if isinstance(q, bool):
        return None
    if isinstance(q, (int, float)):
        return Fraction(q)
    if not isinstance(q, str):
        return None
    m = _QUANTITY_RE.match(q.strip())
    if not m:
        return None
    num, suffix = m.groups()
    try:
        base = Fraction(num)
    except (ValueError, ZeroDivisionError):
        return None
    if suffix in _SUFFIX:
        return base * _SUFFIX[suffix]
    if suffix[:1] in ("e", "E"):
        try:
            return base * Fraction(10) ** int(suffix[1:])
        except ValueError:
            return None
    return None


# --- containers ------------------------------------------------------------------------

def port_num_or_name(port: Any, path: str) -> Errs:
    """ValidatePortNumOrName for an IntOrString port."""
    if isinstance(port, str):
        return [invalid(path, port, m) for m in is_valid_port_name(port)]
    if isinstance(port, int) and not isinstance(port, bool):
        return [invalid(path, port, m) for m in is_valid_port_num(port)]
    return [Cause("InternalError", f"Internal error: unknown type: {port!r}", path)]


def _container_ports(ports: list, path: str) -> Errs:
    errs: Errs = []
    names: set[str] = set()
    for i, p in enumerate(ports or []):
        ip = index(path, i)
        name = p.get("name") or ""
        if name:
            msgs = is_valid_port_name(name)
            if msgs:
                errs += [invalid(child(ip, "name"), name, m) for m in msgs]
            elif name in names:
                errs.append(duplicate(child(ip, "name"), name))
            else:
                names.add(name)
        cp = p.get("containerPort") or 0
        if cp == 0:
            errs.append(required(child(ip, "containerPort")))
        else:
            errs += [invalid(child(ip, "containerPort"), cp, m) for m in is_valid_port_num(cp)]
        hp = p.get("hostPort") or 0
        if hp:
            errs += [invalid(child(ip, "hostPort"), hp, m) for m in is_valid_port_num(hp)]
        proto = p.get("protocol") or ""
        if not proto:
            errs.append(required(child(ip, "protocol")))
        elif proto not in PROTOCOLS:
            errs.append(not_supported(child(ip, "protocol"), proto, PROTOCOLS))
    return errs


def _env(env: list, path: str) -> Errs:
    errs: Errs = []
    for i, ev in enumerate(env or []):
        ip = index(path, i)
        name = ev.get("name") or ""
        if not name:
            errs.append(required(child(ip, "name")))
        else:
            errs += [invalid(child(ip, "name"), name, m) for m in is_env_var_name(name)]
        errs += _env_value_from(ev, child(ip, "valueFrom"))
    return errs


# Downward API fields an env var may read (validEnvDownwardAPIFieldPathExpressions, sorted).
ENV_FIELD_PATHS = ("metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName", "spec.serviceAccountName",
                   "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs")
# What ConvertDownwardAPIFieldLabel accepts for v1 pods before the env-specific list applies.
_POD_FIELD_LABELS = frozenset(ENV_FIELD_PATHS) | {"metadata.annotations", "metadata.labels", "spec.restartPolicy",
                                                   "spec.schedulerName", "status.phase", "spec.host"}
RESOURCE_FIELD_PATHS = ("limits.cpu", "limits.ephemeral-storage", "limits.memory", "requests.cpu",
                        "requests.ephemeral-storage", "requests.memory")
_SUBSCRIPTED = re.compile(r"^(metadata\.(?:annotations|labels))\['(.*)'\]$")


def _env_value_from(ev: dict, path: str) -> Errs:
    """validateEnvVarValueFrom: exactly one source, each source well formed."""
    vf = ev.get("valueFrom")
    if vf is None:
        return []
    errs: Errs = []
    sources = 0
    if vf.get("fieldRef") is not None:
        sources += 1
        errs += _object_field_selector(vf["fieldRef"], child(path, "fieldRef"))
    if vf.get("resourceFieldRef") is not None:
        sources += 1
        ref = vf["resourceFieldRef"]
        res = ref.get("resource") or ""
        if not res:
            errs.append(required(child(path, "resourceFieldRef", "resource")))
        elif res not in RESOURCE_FIELD_PATHS and not res.startswith(("requests.hugepages-", "limits.hugepages-")):
            errs.append(not_supported(child(path, "resourceFieldRef", "resource"), res, RESOURCE_FIELD_PATHS))
    for kind, source in (("configMapKeyRef", "configMapKeyRef"), ("secretKeyRef", "secretKeyRef")):
        ref = vf.get(source)
        if ref is None:
            continue
        sources += 1
        p = child(path, kind)
        name = ref.get("name") or ""
        errs += [invalid(child(p, "name"), name, m) for m in name_is_dns_subdomain(name, False)]
        k = ref.get("key") or ""
        if not k:
            errs.append(required(child(p, "key")))
        else:
            errs += [invalid(child(p, "key"), k, m) for m in is_config_map_key(k)]
    if sources == 0:
        errs.append(invalid(path, "", "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or "
                                      "`secretKeyRef`"))
    elif ev.get("value"):
        errs.append(invalid(path, "", "may not be specified when `value` is not empty"))
    elif sources > 1:
        errs.append(invalid(path, "", "may not have more than one field specified at a time"))
    return errs


def _object_field_selector(fs: dict, path: str) -> Errs:
    """validateObjectFieldSelector for env vars."""
    version = fs.get("apiVersion") or ""
    field_path = fs.get("fieldPath") or ""
    if not version:
        return [required(child(path, "apiVersion"))]
    if not field_path:
        return [required(child(path, "fieldPath"))]
    m = _SUBSCRIPTED.match(field_path)
    base = m.group(1) if m else field_path
    if version != "v1":
        return [invalid(child(path, "fieldPath"), field_path,
                        f"error converting fieldPath: unsupported pod version: {version}")]
    if base not in _POD_FIELD_LABELS:
        return [invalid(child(path, "fieldPath"), field_path,
                        f"error converting fieldPath: field label not supported: {field_path}")]
    if m:
        sub = m.group(2)
        return [invalid(path, sub, e) for e in is_qualified_name(sub.lower() if "annotations" in base else sub)]
    if base == "spec.host":
        base = "spec.nodeName"
    if base not in ENV_FIELD_PATHS:
        return [not_supported(child(path, "fieldPath"), base, ENV_FIELD_PATHS)]
    return []


def _handler(h: dict, path: str) -> Errs:
    errs: Errs = []
    count = 0
    for kind in ("exec", "httpGet", "tcpSocket", "grpc"):
        action = h.get(kind)
        if action is None:
            continue
        if count:
            errs.append(forbidden(child(path, kind), "may not specify more than 1 handler type"))
            continue
        count += 1
        p = child(path, kind)
        if kind == "exec":
            if not action.get("command"):
                errs.append(required(child(p, "command")))
        elif kind == "httpGet":
            if not action.get("path"):
                errs.append(required(child(p, "path")))
            errs += port_num_or_name(action.get("port", 0), child(p, "port"))
            scheme = action.get("scheme") or ""
            if scheme not in ("HTTP", "HTTPS"):
                errs.append(not_supported(child(p, "scheme"), scheme, ("HTTP", "HTTPS")))
            for hdr in action.get("httpHeaders") or []:
                errs += [invalid(child(p, "httpHeaders"), hdr.get("name", ""), m)
                         for m in is_http_header_name(hdr.get("name", ""))]
        elif kind == "tcpSocket":
            errs += port_num_or_name(action.get("port", 0), child(p, "port"))
        else:
            errs += [invalid(child(p, "port"), action.get("port", 0), m) for m in is_valid_port_num(action.get("port", 0))]
    if count == 0:
        errs.append(required(path, "must specify a handler type"))
    return errs


def _probe(probe: dict | None, path: str, which: str) -> Errs:
    if probe is None:
        return []
    errs = _handler(probe, path)
    for f in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold"):
        errs += nonnegative(probe.get(f, 0), child(path, f))
    tgps = probe.get("terminationGracePeriodSeconds")
    if tgps is not None and tgps <= 0:
        errs.append(invalid(child(path, "terminationGracePeriodSeconds"), tgps, "must be greater than 0"))
    if which in ("liveness", "startup") and probe.get("successThreshold", 0) != 1:
        errs.append(invalid(child(path, "successThreshold"), probe.get("successThreshold", 0), "must be 1"))
    if which == "readiness" and tgps is not None:
        errs.append(invalid(child(path, "terminationGracePeriodSeconds"), tgps, "must not be set for readinessProbes"))
    return errs


_STANDARD_CONTAINER_RESOURCES = {"cpu", "memory", "ephemeral-storage"}
_INTEGER_RESOURCES = {"pods", "services", "replicationcontrollers", "resourcequotas", "secrets",
                      "configmaps", "persistentvolumeclaims"}


def _resource_name(name: str, path: str) -> Errs:
    errs = [invalid(path, name, m) for m in is_qualified_name(name)]
    if errs:
        return errs
    if "/" not in name and name not in _STANDARD_CONTAINER_RESOURCES and not name.startswith("hugepages-"):
        errs.append(invalid(path, name, "must be a standard resource for containers"))
    return errs


def _quantity_errs(name: str, q: Any, path: str) -> Errs:
    v = parse_quantity(q)
    if v is None:
        return [invalid(path, q, "quantities must match the regular expression "
                        "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")]
    errs: Errs = []
    if v < 0:
        errs.append(invalid(path, str(q), "must be greater than or equal to 0"))
    if (name in _INTEGER_RESOURCES or "/" in name and not name.startswith("kubernetes.io/")) and v.denominator != 1:
        errs.append(invalid(path, str(q), "must be an integer"))
    return errs


def _overcommit_allowed(name: str) -> bool:
    # Extended (vendor/…) and hugepages resources must have request == limit.
    return not name.startswith("hugepages-") and ("/" not in name or name.startswith("kubernetes.io/"))


def resource_requirements(res: dict | None, path: str) -> Errs:
    """ValidateResourceRequirements (names, non-negative, requests <= limits)."""
    res = res or {}
    errs: Errs = []
    limits = res.get("limits") or {}
    requests = res.get("requests") or {}
    lim_path, req_path = child(path, "limits"), child(path, "requests")
    for name, q in limits.items():
        p = key(lim_path, name)
        errs += _resource_name(name, p) + _quantity_errs(name, q, p)
    for name, q in requests.items():
        p = key(req_path, name)
        errs += _resource_name(name, p) + _quantity_errs(name, q, p)
        rv = parse_quantity(q)
        if name in limits:
            lv = parse_quantity(limits[name])
            if rv is None or lv is None:
                continue
            if rv != lv and not _overcommit_allowed(name):
                errs.append(invalid(req_path, str(q), f"must be equal to {name} limit of {limits[name]}"))
            elif rv > lv:
                errs.append(invalid(req_path, str(q), f"must be less than or equal to {name} limit of {limits[name]}"))
        elif not _overcommit_allowed(name):
            errs.append(required(lim_path, "Limit must be set for non overcommitable resources"))
    return errs


def _volume_mounts(mounts: list, volumes: set[str], path: str) -> Errs:
    errs: Errs = []
    seen: set[str] = set()
    for i, m in enumerate(mounts or []):
        ip = index(path, i)
        name = m.get("name") or ""
        if not name:
            errs.append(required(child(ip, "name")))
        elif name not in volumes:
            errs.append(not_found(child(ip, "name"), name))
        mp = m.get("mountPath") or ""
        if not mp:
            errs.append(required(child(ip, "mountPath")))
        elif mp in seen:
            errs.append(invalid(child(ip, "mountPath"), mp, "must be unique"))
        seen.add(mp)
    return errs


def _container_common(c: dict, volumes: set[str], path: str) -> Errs:
    errs: Errs = []
    name = c.get("name") or ""
    if not name:
        errs.append(required(child(path, "name")))
    else:
        errs += [invalid(child(path, "name"), name, m) for m in is_dns1123_label(name)]
    if not c.get("image"):
        errs.append(required(child(path, "image")))
    tmp = c.get("terminationMessagePolicy") or ""
    if not tmp:
        errs.append(required(child(path, "terminationMessagePolicy")))
    elif tmp not in ("File", "FallbackToLogsOnError"):
        errs.append(not_supported(child(path, "terminationMessagePolicy"), tmp, ("File", "FallbackToLogsOnError")))
    errs += _container_ports(c.get("ports") or [], child(path, "ports"))
    errs += _env(c.get("env") or [], child(path, "env"))
    errs += _volume_mounts(c.get("volumeMounts") or [], volumes, child(path, "volumeMounts"))
    pp = c.get("imagePullPolicy") or ""
    if not pp:
        errs.append(required(child(path, "imagePullPolicy")))
    elif pp not in PULL_POLICIES:
        errs.append(not_supported(child(path, "imagePullPolicy"), pp, PULL_POLICIES))
    errs += resource_requirements(c.get("resources"), child(path, "resources"))
    return errs


def _containers(containers: list, volumes: set[str], path: str) -> Errs:
    if not containers:
        return [required(path)]
    errs: Errs = []
    names: set[str] = set()
    for i, c in enumerate(containers):
        ip = index(path, i)
        errs += _container_common(c, volumes, ip)
        name = c.get("name") or ""
        if name in names:
            errs.append(duplicate(child(ip, "name"), name))
        else:
            names.add(name)
        lc = c.get("lifecycle")
        if lc:
            for hook in ("postStart", "preStop"):
                if lc.get(hook) is not None:
                    errs += _handler(lc[hook], child(ip, "lifecycle", hook))
        errs += _probe(c.get("livenessProbe"), child(ip, "livenessProbe"), "liveness")
        errs += _probe(c.get("readinessProbe"), child(ip, "readinessProbe"), "readiness")
        errs += _probe(c.get("startupProbe"), child(ip, "startupProbe"), "startup")
        if c.get("restartPolicy") is not None:
            errs.append(forbidden(child(ip, "restartPolicy"), "may not be set for non-init containers"))
    errs += _host_port_conflicts(containers, path)
    return errs


def _host_port_conflicts(containers: list, path: str) -> Errs:
    errs: Errs = []
    seen: set[str] = set()
    for ci, c in enumerate(containers):
        for pi, p in enumerate(c.get("ports") or []):
            hp = p.get("hostPort") or 0
            if not hp:
                continue
            k = f"{p.get('hostIP', '')}/{p.get('protocol', '')}/{hp}"
            if k in seen:
                errs.append(duplicate(child(index(child(index(path, ci), "ports"), pi), "hostPort"), k))
            seen.add(k)
    return errs


def _init_containers(inits: list, containers: list, volumes: set[str], path: str) -> Errs:
    errs: Errs = []
    names = {c.get("name") for c in containers or []}
    for i, c in enumerate(inits or []):
        ip = index(path, i)
        errs += _container_common(c, volumes, ip)
        name = c.get("name") or ""
        if name in names:
            errs.append(duplicate(child(ip, "name"), name))
        else:
            names.add(name)
        rp = c.get("restartPolicy")
        if rp is not None and rp != "Always":
            errs.append(not_supported(child(ip, "restartPolicy"), rp, ("Always",)))
    return errs


def _volumes(volumes: list, path: str) -> tuple[set[str], Errs]:
    errs: Errs = []
    names: set[str] = set()
    for i, v in enumerate(volumes or []):
        np = child(index(path, i), "name")
        name = v.get("name") or ""
        if not name:
            errs.append(required(np))
            continue
        msgs = is_dns1123_label(name)
        if msgs:
            errs += [invalid(np, name, m) for m in msgs]
        elif name in names:
            errs.append(duplicate(np, name))
        names.add(name)
    return names, errs


def tolerations(tols: list, path: str) -> Errs:
    """ValidateTolerations."""
    errs: Errs = []
    for i, t in enumerate(tols or []):
        ip = index(path, i)
        k = t.get("key") or ""
        op = t.get("operator") or ""
        effect = t.get("effect") or ""
        if k:
            errs += validate_label_name(k, child(ip, "key"))
        if not k and op != "Exists":
            errs.append(invalid(child(ip, "operator"), op,
                                'operator must be Exists when `key` is empty, which means "match all values and all keys"'))
        if t.get("tolerationSeconds") is not None and effect != "NoExecute":
            errs.append(invalid(child(ip, "effect"), effect, "effect must be 'NoExecute' when `tolerationSeconds` is set"))
        if op in ("Equal", ""):
            msgs = is_valid_label_value(t.get("value") or "")
            if msgs:
                errs.append(invalid(child(ip, "operator"), t.get("value") or "", ";".join(msgs)))
        elif op == "Exists":
            if t.get("value"):
                errs.append(invalid(child(ip, "operator"), GoRepr("core.Toleration{...}"),
                                    "value must be empty when `operator` is 'Exists'"))
        else:
            errs.append(not_supported(child(ip, "operator"), op, ("Equal", "Exists")))
        if effect and effect not in TAINT_EFFECTS:
            errs.append(not_supported(child(ip, "effect"), effect, TAINT_EFFECTS))
    return errs


# The pod DNS limits (upstream's expanded DNS config limits).
MAX_DNS_NAMESERVERS = 3
MAX_DNS_SEARCH_PATHS = 32
MAX_DNS_SEARCH_LIST_CHARS = 2048


def _dns_config(cfg: dict | None, policy: str, path: str) -> Errs:
    """validatePodDNSConfig: dnsPolicy None needs nameservers; the resolver's limits."""
    if policy == "None":
        if cfg is None:
            return [required(path, "must provide `dnsConfig` when `dnsPolicy` is None")]
        if not cfg.get("nameservers"):
            return [required(child(path, "nameservers"), "must provide at least one DNS nameserver when `dnsPolicy` is None")]
    if cfg is None:
        return []
    errs: Errs = []
    servers = list(cfg.get("nameservers") or [])
    if len(servers) > MAX_DNS_NAMESERVERS:
        errs.append(invalid(child(path, "nameservers"), servers,
                            f"must not have more than {MAX_DNS_NAMESERVERS} nameservers"))
    for i, ns in enumerate(servers):
        errs += [invalid(index(child(path, "nameservers"), i), ns, m) for m in is_valid_ip(str(ns))]
    searches = list(cfg.get("searches") or [])
    if len(searches) > MAX_DNS_SEARCH_PATHS:
        errs.append(invalid(child(path, "searches"), searches, f"must not have more than {MAX_DNS_SEARCH_PATHS} search paths"))
    if len(" ".join(map(str, searches))) > MAX_DNS_SEARCH_LIST_CHARS:
        errs.append(invalid(child(path, "searches"), searches,
                            f"must not have more than {MAX_DNS_SEARCH_LIST_CHARS} characters (including spaces) "
                            "in the search list"))
    for i, search in enumerate(searches):
        trimmed = str(search).removesuffix(".")  # a trailing dot is fine
        errs += [invalid(index(child(path, "searches"), i), trimmed, m) for m in is_dns1123_subdomain(trimmed)]
    for i, option in enumerate(cfg.get("options") or []):
        if not (option or {}).get("name"):
            errs.append(required(index(child(path, "options"), i), "Option.Name must not be empty"))
    return errs


def validate_pod_spec(spec: dict, path: str) -> Errs:
    """ValidatePodSpec (pods and templates)."""
    errs: Errs = []
    vols, verrs = _volumes(spec.get("volumes") or [], child(path, "volumes"))
    errs += verrs
    errs += _containers(spec.get("containers") or [], vols, child(path, "containers"))
    errs += _init_containers(spec.get("initContainers") or [], spec.get("containers") or [], vols,
                             child(path, "initContainers"))
    rp = spec.get("restartPolicy") or ""
    if not rp:
        errs.append(required(child(path, "restartPolicy")))
    elif rp not in RESTART_POLICIES:
        errs.append(not_supported(child(path, "restartPolicy"), rp, RESTART_POLICIES))
    dp = spec.get("dnsPolicy") or ""
    if not dp:
        errs.append(required(child(path, "dnsPolicy")))
    elif dp not in DNS_POLICIES:
        errs.append(not_supported(child(path, "dnsPolicy"), dp, DNS_POLICIES))
    errs += validate_labels(spec.get("nodeSelector"), child(path, "nodeSelector"))
    san = spec.get("serviceAccountName") or ""
    if san:
        errs += [invalid(child(path, "serviceAccountName"), san, m) for m in name_is_dns_subdomain(san, False)]
    nn = spec.get("nodeName") or ""
    if nn:
        errs += [invalid(child(path, "nodeName"), nn, m) for m in name_is_dns_subdomain(nn, False)]
    ads = spec.get("activeDeadlineSeconds")
    if ads is not None and not 1 <= ads <= MAX_INT32:
        errs.append(invalid(child(path, "activeDeadlineSeconds"), ads, inclusive_range_error(1, MAX_INT32)))
    for f in ("hostname", "subdomain"):
        if spec.get(f):
            errs += [invalid(child(path, f), spec[f], m) for m in is_dns1123_label(spec[f])]
    if spec.get("tolerations"):
        errs += tolerations(spec["tolerations"], child(path, "tolerations"))
    errs += _dns_config(spec.get("dnsConfig"), dp, child(path, "dnsConfig"))
    pp = spec.get("preemptionPolicy")
    if pp is not None:
        if not pp:
            errs.append(required(child(path, "preemptionPolicy")))
        elif pp not in PREEMPTION_POLICIES:
            errs.append(not_supported(child(path, "preemptionPolicy"), pp, PREEMPTION_POLICIES))
    return errs


def validate_pod_template(tmpl: dict | None, path: str) -> Errs:
    """ValidatePodTemplateSpec."""
    if tmpl is None:
        return [required(path)]
    md = tmpl.get("metadata") or {}
    errs = validate_labels(md.get("labels"), child(path, "metadata", "labels"))
    errs += validate_annotations(md.get("annotations"), child(path, "metadata", "annotations"))
    errs += validate_pod_spec(tmpl.get("spec") or {}, child(path, "spec"))
    if (tmpl.get("spec") or {}).get("ephemeralContainers"):
        errs.append(forbidden(child(path, "spec", "ephemeralContainers"), "ephemeral containers not allowed in pod template"))
    return errs


def _pod_metadata_and_spec(pod: dict) -> Errs:
    errs = validate_object_meta(pod, True, name_is_dns_subdomain)
    spec = pod.get("spec") or {}
    errs += validate_pod_spec(spec, "spec")
    if not spec.get("serviceAccountName"):
        for vi, vol in enumerate(spec.get("volumes") or []):
            for si, src in enumerate((vol.get("projected") or {}).get("sources") or []):
                if src.get("serviceAccountToken") is not None:
                    errs.append(forbidden(f"spec.volumes[{vi}].projected.sources[{si}].serviceAccountToken",
                                          "must not be specified when serviceAccountName is not set"))
    return errs


def validate_pod_create(pod: dict) -> Errs:
    """ValidatePodCreate."""
    errs = _pod_metadata_and_spec(pod)
    spec = pod.get("spec") or {}
    if spec.get("ephemeralContainers"):
        errs.append(forbidden("spec.ephemeralContainers", "cannot be set on create"))
    if spec.get("nodeName") and spec.get("schedulingGates"):
        errs.append(forbidden("spec.nodeName", "cannot be set until all schedulingGates have been cleared"))
    return errs


UPDATABLE_POD_FIELDS = (
    "`spec.containers[*].image`",
    "`spec.initContainers[*].image`",
    "`spec.activeDeadlineSeconds`",
    "`spec.tolerations` (only additions to existing tolerations)",
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
)


def _container_updates(new: list, old: list, path: str) -> tuple[Errs, bool]:
    if len(new) != len(old):
        return [forbidden(path, "pod updates may not add or remove containers")], True
    errs: Errs = []
    for i, c in enumerate(new):
        img = c.get("image") or ""
        if not img:
            errs.append(required(child(index(path, i), "image")))
        if img.strip() != img:
            errs.append(invalid(child(index(path, i), "image"), img, "must not have leading or trailing whitespace"))
    return errs, False


def _only_added_tolerations(new: list, old: list, path: str) -> Errs:
    for o in old:
        base = {k: v for k, v in o.items() if k != "tolerationSeconds"}
        if not any({k: v for k, v in n.items() if k != "tolerationSeconds"} == base for n in new):
            return [forbidden(path, "existing toleration can not be modified except its tolerationSeconds")]
    return tolerations(new, path)


def _spec_diff(old: Any, new: Any, path: str = "") -> list[str]:
    """A short list of changed paths, standing in for upstream's cmp.Diff text."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for k in sorted(set(old) | set(new)):
            out += _spec_diff(old.get(k), new.get(k), f"{path}.{k}" if path else k)
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        out = []
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            out += _spec_diff(a, b, f"{path}[{i}]")
        return out
    if old != new:
        return [f"  {path}: {go_value(old) if not isinstance(old, (dict, list)) else '{...}'} -> "
                f"{go_value(new) if not isinstance(new, (dict, list)) else '{...}'}"]
    return []


def validate_pod_update(new: dict, old: dict) -> Errs:
    """ValidatePodUpdate: only images, activeDeadlineSeconds and added tolerations may change."""
    errs = validate_object_meta_update(new, old)
    errs += _pod_metadata_and_spec(new)
    ns, os_ = new.get("spec") or {}, old.get("spec") or {}
    for f in ("containers", "initContainers"):
        cerrs, stop = _container_updates(ns.get(f) or [], os_.get(f) or [], f"spec.{f}")
        errs += cerrs
        if stop:
            return errs
    nads, oads = ns.get("activeDeadlineSeconds"), os_.get("activeDeadlineSeconds")
    if nads is not None:
        if nads < 0 or nads > MAX_INT32:
            return errs + [invalid("spec.activeDeadlineSeconds", nads, inclusive_range_error(0, MAX_INT32))]
        if oads is not None and oads < nads:
            return errs + [invalid("spec.activeDeadlineSeconds", nads, "must be less than or equal to previous value")]
    elif oads is not None:
        errs.append(invalid("spec.activeDeadlineSeconds", None, "must not update from a positive integer to nil value"))
    errs += _only_added_tolerations(ns.get("tolerations") or [], os_.get("tolerations") or [], "spec.tolerations")
    if ns == os_:
        return errs
    munged = dict(ns)
    for f in ("containers", "initContainers"):
        if f in ns:
            munged[f] = [dict(c, image=(os_.get(f) or [])[i].get("image")) for i, c in enumerate(ns[f])]
    for f in ("activeDeadlineSeconds", "tolerations", "schedulingGates"):
        munged.pop(f, None)
        if f in os_:
            munged[f] = os_[f]
    otg = os_.get("terminationGracePeriodSeconds")
    if otg is not None and otg < 0 and munged.get("terminationGracePeriodSeconds") == 1:
        munged["terminationGracePeriodSeconds"] = otg
    if _normalise(munged) != _normalise(os_):
        diff = "\n".join(_spec_diff(os_, munged))
        errs.append(forbidden("spec", "pod updates may not change fields other than "
                              + ",".join(UPDATABLE_POD_FIELDS) + "\n" + diff))
    return errs


def _normalise(v: Any) -> Any:
    # Semantic.DeepEqual treats a missing list/map like an empty one.
    if isinstance(v, dict):
        return {k: _normalise(x) for k, x in v.items() if x not in (None, [], {})}
    if isinstance(v, list):
        return [_normalise(x) for x in v]
    return v


def validate_pod_status_update(new: dict, old: dict) -> Errs:
    """ValidatePodStatusUpdate (metadata plus a nodeName that may not change)."""
    errs = validate_object_meta_update(new, old)
    errs += immutable((new.get("spec") or {}).get("nodeName", ""), (old.get("spec") or {}).get("nodeName", ""),
                      "spec.nodeName")
    return errs


__all__ = ["validate_pod_create", "validate_pod_update", "validate_pod_status_update", "validate_pod_template",
           "validate_pod_spec", "resource_requirements", "tolerations", "port_num_or_name", "parse_quantity"]
