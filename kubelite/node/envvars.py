"""Container environment as the kubelet builds it: Service links, env, envFrom,
downward-API fieldRefs, ConfigMap/Secret references, then $(VAR) expansion."""
from __future__ import annotations

import base64
import re
from collections.abc import Awaitable, Callable
from typing import Any

from kubelite.node.runtime.base import expand_vars

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


def field_ref(pod: Obj, path: str, host_ip: str, pod_ip: str) -> str:
    """Value of a downward-API fieldRef."""
    md, spec = pod.get("metadata", {}), pod.get("spec", {})
    m = _INDEXED.match(path)
    if m:
        return (md.get(m.group(1)) or {}).get(m.group(2), "")
    simple = {
        "metadata.name": md.get("name", ""), "metadata.namespace": md.get("namespace", ""),
        "metadata.uid": md.get("uid", ""), "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""), "status.hostIP": host_ip,
        "status.hostIPs": host_ip, "status.podIP": pod_ip, "status.podIPs": pod_ip,
    }
    if path in simple:
        return simple[path]
    if path in ("metadata.labels", "metadata.annotations"):
        d = md.get(path.split(".")[1]) or {}
        return "\n".join(f'{k}="{v}"' for k, v in sorted(d.items()))
    return ""


def _data(obj: Obj | None, secret: bool) -> dict[str, str]:
    if not obj:
        return {}
    out = dict(obj.get("data") or {}) if not secret else {
        k: base64.b64decode(v).decode(errors="replace") for k, v in (obj.get("data") or {}).items()}
    if secret:
        out.update(obj.get("stringData") or {})
    else:
        out.update({k: base64.b64decode(v).decode(errors="replace") for k, v in (obj.get("binaryData") or {}).items()})
    return out


async def container_env(pod: Obj, container: Obj, *, services: list[Obj], host_ip: str, pod_ip: str,
                        lookup: Lookup) -> dict[str, str]:
    """The environment of one container (raises ValueError for a missing required reference)."""
    ns = pod["metadata"].get("namespace", "default")
    env: dict[str, str] = {}
    if (pod.get("spec") or {}).get("enableServiceLinks", True):
        env.update(service_env(services))
    for src in container.get("envFrom") or []:
        prefix = src.get("prefix", "")
        for key, secret in (("configMapRef", False), ("secretRef", True)):
            ref = src.get(key)
            if ref:
                obj = await lookup("Secret" if secret else "ConfigMap", ns, ref.get("name", ""))
                if obj is None and not ref.get("optional"):
                    raise ValueError(f'{"secret" if secret else "configmap"} "{ref.get("name")}" not found')
                for k, v in _data(obj, secret).items():
                    env[prefix + k] = v
    for e in container.get("env") or []:
        name = e.get("name")
        if "value" in e or "valueFrom" not in e:
            env[name] = expand_vars(e.get("value", ""), env)
            continue
        vf = e["valueFrom"]
        if "fieldRef" in vf:
            env[name] = field_ref(pod, vf["fieldRef"].get("fieldPath", ""), host_ip, pod_ip)
        elif "configMapKeyRef" in vf or "secretKeyRef" in vf:
            secret = "secretKeyRef" in vf
            ref = vf["secretKeyRef" if secret else "configMapKeyRef"]
            obj = await lookup("Secret" if secret else "ConfigMap", ns, ref.get("name", ""))
            data = _data(obj, secret)
            if ref.get("key") in data:
                env[name] = data[ref["key"]]
            elif not ref.get("optional"):
                what = "secret" if secret else "configmap"
                raise ValueError(f'couldn\'t find key {ref.get("key")} in {what} {ns}/{ref.get("name")}'
                                 if obj else f'{what} "{ref.get("name")}" not found')
        elif "resourceFieldRef" in vf:
            rf = vf["resourceFieldRef"]
            res = rf.get("resource", "")
            kind, _, r = res.partition(".")
            val = ((container.get("resources") or {}).get(kind) or {}).get(r)
            env[name] = str(val) if val is not None else "0"
    env["HOSTNAME"] = pod["metadata"]["name"]
    return env
