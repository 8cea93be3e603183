"""Container environment as the kubelet builds it: Service links, env, envFrom,
downward-API fieldRefs, ConfigMap/Secret references, then $(VAR) expansion."""
from __future__ import annotations

import base64
import re
from collections.abc import Awaitable, Callable
from typing import Any

from kubelite.api.validation_common import is_env_var_name
from kubelite.node.runtime.base import expand_vars
from kubelite.node.volumes.base import format_map, resource_value

Obj = dict[str, Any]
Lookup = Callable[[str, str, str], Awaitable[Obj | None]]  # (kind, namespace, name) -> object


def _svc_name(name: str) -> str:
    return name.upper().replace("-", "_")


def service_env(services: list[Obj]) -> dict[str, str]:
    """FOO_SERVICE_HOST/PORT and the docker-link style FOO_PORT_… variables."""
    env: dict[str, str] = {}
    for svc in sorted(services, key=lambda s: s["metadata"]["name"]):
        spec = svc.get("spec") or {}
        ip = spec.get("clusterIP")
        if not ip or ip == "None":
            continue
        n = _svc_name(svc["metadata"]["name"])
        ports = spec.get("ports") or []
        if not ports:
            continue
        env[f"{n}_SERVICE_HOST"] = ip
        env[f"{n}_SERVICE_PORT"] = str(ports[0]["port"])
        for p in ports:
            if p.get("name"):
                env[f"{n}_SERVICE_PORT_{_svc_name(p['name'])}"] = str(p["port"])
        first = ports[0]
        env[f"{n}_PORT"] = f"{first.get('protocol', 'TCP').lower()}://{ip}:{first['port']}"
        for p in ports:
            proto = p.get("protocol", "TCP")
            pre = f"{n}_PORT_{p['port']}_{proto.upper()}"
            env[pre] = f"{proto.lower()}://{ip}:{p['port']}"
            env[f"{pre}_PROTO"] = proto.lower()
            env[f"{pre}_PORT"] = str(p["port"])
            env[f"{pre}_ADDR"] = ip
    return env


_INDEXED = re.compile(r"^metadata\.(labels|annotations)\['([^']+)'\]$")
Warn = Callable[[str, str], None]  # (reason, message) of a Warning event about the pod


def field_ref(pod: Obj, path: str, host_ip: str, pod_ip: str) -> str:
    """Value of a downward-API fieldRef."""
    md, spec = pod.get("metadata", {}), pod.get("spec", {})
    m = _INDEXED.match(path)
    if m:
        return str((md.get(m.group(1)) or {}).get(m.group(2), ""))
    simple = {
        "metadata.name": md.get("name", ""), "metadata.namespace": md.get("namespace", ""),
        "metadata.uid": md.get("uid", ""), "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""), "status.hostIP": host_ip,
        "status.hostIPs": host_ip, "status.podIP": pod_ip, "status.podIPs": pod_ip,
    }
    if path in simple:
        return str(simple[path])
    if path in ("metadata.labels", "metadata.annotations"):
        return format_map(md.get(path.split(".")[1]) or {})
    return ""


def _configmap_data(obj: Obj | None) -> dict[str, str]:
    # Only `data`: binaryData does not reach the environment, as upstream.
    return {k: str(v) for k, v in ((obj or {}).get("data") or {}).items()}


def _secret_data(obj: Obj | None) -> dict[str, str]:
    out = {k: base64.b64decode(v).decode(errors="replace") for k, v in ((obj or {}).get("data") or {}).items()}
    out.update({k: str(v) for k, v in ((obj or {}).get("stringData") or {}).items()})
    return out


def _container_named(pod: Obj, name: str, default: Obj) -> Obj:
    spec = pod.get("spec") or {}
    for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
        if c.get("name") == name:
            return c
    return default


async def _env_from(pod: Obj, src: Obj, ns: str, lookup: Lookup, warn: Warn | None) -> dict[str, str]:
    """The variables of one envFrom source; keys that are no variable names are skipped with a warning."""
    prefix = str(src.get("prefix") or "")
    out: dict[str, str] = {}
    for key, secret in (("configMapRef", False), ("secretRef", True)):
        ref = src.get(key)
        if not ref:
            continue
        name = str(ref.get("name", ""))
        obj = await lookup("Secret" if secret else "ConfigMap", ns, name)
        if obj is None:
            if ref.get("optional"):
                continue
            raise ValueError(f'{"secret" if secret else "configmap"} "{name}" not found')
        invalid = []
        for k, v in (_secret_data(obj) if secret else _configmap_data(obj)).items():
            var = prefix + k
            if is_env_var_name(var):
                invalid.append(var)
                continue
            out[var] = v
        if invalid and warn is not None:
            what = "secret" if secret else "configMap"
            warn("InvalidEnvironmentVariableNames",
                 f"Keys [{', '.join(sorted(invalid))}] from the EnvFrom {what} {ns}/{name} were skipped since they "
                 f"are considered invalid environment variable names.")
    return out


async def _value_from(pod: Obj, container: Obj, vf: Obj, ns: str, *, host_ip: str, pod_ip: str,
                      lookup: Lookup) -> str | None:
    """One valueFrom (None: an optional reference that is absent, so no variable)."""
    if "fieldRef" in vf:
        return field_ref(pod, str((vf["fieldRef"] or {}).get("fieldPath", "")), host_ip, pod_ip)
    if "resourceFieldRef" in vf:
        rf = vf["resourceFieldRef"] or {}
        target = _container_named(pod, str(rf.get("containerName") or ""), container)
        return resource_value(target, str(rf.get("resource", "")), rf.get("divisor"))
    secret = "secretKeyRef" in vf
    ref = vf.get("secretKeyRef" if secret else "configMapKeyRef") or {}
    name, key = str(ref.get("name", "")), str(ref.get("key", ""))
    obj = await lookup("Secret" if secret else "ConfigMap", ns, name)
    if obj is None:
        if ref.get("optional"):
            return None
        raise ValueError(f'{"secret" if secret else "configmap"} "{name}" not found')
    data = _secret_data(obj) if secret else _configmap_data(obj)
    if key in data:
        return data[key]
    if ref.get("optional"):
        return None
    raise ValueError(f"couldn't find key {key} in {'Secret' if secret else 'ConfigMap'} {ns}/{name}")


async def container_env(pod: Obj, container: Obj, *, services: list[Obj], host_ip: str, pod_ip: str,
                        lookup: Lookup, warn: Warn | None = None) -> dict[str, str]:
    """The environment of one container (raises ValueError for a missing required reference)."""
    ns = pod["metadata"].get("namespace", "default")
    env: dict[str, str] = {}
    if (pod.get("spec") or {}).get("enableServiceLinks", True):
        env.update(service_env(services))
    for src in container.get("envFrom") or []:
        env.update(await _env_from(pod, src, ns, lookup, warn))
    for e in container.get("env") or []:
        name = e.get("name")
        if "value" in e or "valueFrom" not in e:
            env[name] = expand_vars(e.get("value", ""), env)
            continue
        value = await _value_from(pod, container, e["valueFrom"] or {}, ns, host_ip=host_ip, pod_ip=pod_ip,
                                  lookup=lookup)
        if value is not None:
            env[name] = value
    env["HOSTNAME"] = pod["metadata"]["name"]
    return env
