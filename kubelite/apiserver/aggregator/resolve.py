"""Where an APIService's Service is reached: one ready endpoint from its EndpointSlices.

Upstream's availability controller checks the Service, its port and its EndpointSlices in
this order, with these reasons and messages; the proxy then dials an endpoint (upstream's
``--enable-aggregator-routing``), which works without a Service data path.
"""
from __future__ import annotations

import random
from typing import Any

from kubelite.api import errors
from kubelite.api.resources import ENDPOINTSLICES, SERVICES
from kubelite.api.validation_common import go_quote
from kubelite.apiserver.registry import Registry

Obj = dict[str, Any]
SERVICE_NAME_LABEL = "kubernetes.io/service-name"


class Unavailable(Exception):
    """The Service cannot be reached: a condition reason and message say why."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def service_ref(apiservice: Obj) -> Obj | None:
    """spec.service, or None for a local APIService."""
    ref = (apiservice.get("spec") or {}).get("service")
    return ref if isinstance(ref, dict) else None


async def resolve(registry: Registry, ref: Obj) -> tuple[str, int]:
    """(address, port) of a ready endpoint behind the referenced Service port."""
    ns, name = str(ref.get("namespace") or ""), str(ref.get("name") or "")
    port = int(ref.get("port") or 443)
    where = f"service/{name} in {go_quote(ns)}"
    try:
        svc = await registry.get(SERVICES, ns, name)
    except errors.NotFound:
        raise Unavailable("ServiceNotFound", f"{where} is not present") from None
    spec = svc.get("spec") or {}
    if spec.get("type") == "ExternalName":
        return str(spec.get("externalName") or ""), port
    sp = next((p for p in spec.get("ports") or [] if isinstance(p, dict) and p.get("port") == port), None)
    if sp is None:
        raise Unavailable("ServicePortError", f"{where} is not listening on port {port}")
    port_name = str(sp.get("name") or "")

    def mine(o: Obj) -> bool:
        return ((o.get("metadata") or {}).get("labels") or {}).get(SERVICE_NAME_LABEL) == name
    slices, _, _, _ = await registry.list(ENDPOINTSLICES, ns, predicate=mine)
    if not slices:
        raise Unavailable("EndpointsNotFound", f"cannot find endpointslices for {where}")
    found: list[tuple[str, int]] = []
    for s in slices:
        number = next((p.get("port") for p in s.get("ports") or []
                       if isinstance(p, dict) and (p.get("name") or "") == port_name and p.get("port")), None)
        if number is None:
            continue
        for e in s.get("endpoints") or []:
            ready = ((e or {}).get("conditions") or {}).get("ready")
            if (ready is None or ready) and (e.get("addresses") or []):
                found.append((str(e["addresses"][0]), int(number)))
    if not found:
        raise Unavailable("MissingEndpoints",
                          f"endpointslices for {where} have no addresses with port name {go_quote(port_name)}")
    return random.choice(found)


def host_port(address: str, port: int) -> str:
    """``host:port``, with IPv6 addresses in brackets."""
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
