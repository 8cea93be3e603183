"""ClusterIP and NodePort allocation for Services (upstream's ipallocator/portallocator).

The set of used addresses and ports is derived from the stored Services on each
allocation instead of being kept in a separate bitmap: it can never drift from the
store, survives restarts for free, and Services are few.
"""
from __future__ import annotations

import ipaddress
import random
from collections.abc import Callable, Iterable
from typing import Any

from kubelite.api.errors import Cause, invalid

Obj = dict[str, Any]

NODE_PORT_RANGE = (30000, 32767)


class ServiceAllocator:
    """Allocates cluster IPs from a CIDR and node ports from 30000–32767."""

    def __init__(self, service_cidr: str, *, port_free: Callable[[int, str], bool] | None = None):
        self.net = ipaddress.ip_network(service_cidr)
        # Asked before a port is handed out: another server on this host may route it.
        self.port_free = port_free

    @property
    def api_service_ip(self) -> str:
        """The first address: the ``kubernetes`` Service's cluster IP."""
        return str(self.net.network_address + 1)

    def allocate(self, svc: Obj, old: Obj | None, others: Iterable[Obj]) -> None:
        """Fill clusterIP(s) and nodePorts on a Service being created or updated."""
        others = [o for o in others if o["metadata"]["name"] != svc["metadata"]["name"]
                  or o["metadata"].get("namespace") != svc["metadata"].get("namespace")]
        spec = svc.setdefault("spec", {})
        name = svc["metadata"].get("name", "")
        self._cluster_ip(spec, (old or {}).get("spec", {}), others, name)
        self._node_ports(spec, (old or {}).get("spec", {}), others, name)

    @staticmethod
    def keep_allocated(svc: Obj, old: Obj) -> None:
        """An update that omits the allocated cluster IPs or node ports keeps the old ones
        (upstream's patchAllocatedValues), so a client's PUT need not echo them."""
        spec, old_spec = svc.setdefault("spec", {}), old.get("spec") or {}
        if spec.get("type") == "ExternalName" or old_spec.get("type") == "ExternalName":
            return
        if not spec.get("clusterIP") and old_spec.get("clusterIP"):
            spec["clusterIP"] = old_spec["clusterIP"]
        if not spec.get("clusterIPs") and old_spec.get("clusterIPs") and spec.get("clusterIP") == old_spec.get("clusterIP"):
            spec["clusterIPs"] = list(old_spec["clusterIPs"])
        if spec.get("type") in ("NodePort", "LoadBalancer"):
            old_np = {(p.get("port"), p.get("protocol", "TCP")): p["nodePort"]
                      for p in old_spec.get("ports") or [] if p.get("nodePort")}
            for p in spec.get("ports") or []:
                if not p.get("nodePort"):
                    np = old_np.get((p.get("port"), p.get("protocol", "TCP")))
                    if np:
                        p["nodePort"] = np

    def _cluster_ip(self, spec: Obj, old_spec: Obj, others: list[Obj], name: str) -> None:
        if spec.get("type") == "ExternalName":
            return
        if old_spec.get("clusterIP") and not spec.get("clusterIP"):
            spec["clusterIP"] = old_spec["clusterIP"]  # immutable; an update may omit it
        ip = spec.get("clusterIP") or ""
        if ip == "None":
            spec["clusterIPs"] = ["None"]
            return
        used = {o.get("spec", {}).get("clusterIP") for o in others}
        if ip and ip != old_spec.get("clusterIP"):
            try:
                addr = ipaddress.ip_address(ip)
            except ValueError:
                raise invalid("Service", "", name, [Cause("FieldValueInvalid",
                              f'Invalid value: "{ip}": must be a valid IP address', "spec.clusterIPs[0]")]) from None
            if addr not in self.net:
                raise invalid("Service", "", name, [Cause(
                    "FieldValueInvalid",
                    f'Invalid value: "{ip}": failed to allocate IP {ip}: the provided IP ({ip}) is not in the valid range. '
                    f'The range of valid IPs is {self.net}',
                    "spec.clusterIPs")])
            if ip in used:
                raise invalid("Service", "", name, [Cause(
                    "FieldValueInvalid",
                    f'Invalid value: []string{{"{ip}"}}: failed to allocate IP {ip}: provided IP is already allocated',
                    "spec.clusterIPs")])
        if not ip:
            ip = self._free_ip(used)
            spec["clusterIP"] = ip
        spec["clusterIPs"] = [ip]

    def _free_ip(self, used: set) -> str:
        # Skip the network address and the first host (reserved for `kubernetes`) unless asked.
        size = self.net.num_addresses
        start = random.randrange(2, max(3, size - 1))
        for i in range(size - 3):
            cand = self.net.network_address + 2 + ((start - 2 + i) % (size - 3))
            if str(cand) not in used:
                return str(cand)
        raise invalid("Service", "", "", [Cause("FieldValueInvalid", "range is full", "spec.clusterIPs")])

    def _pick(self, free: list[int], protocol: str) -> int:
        # A port something else on this host holds (another server's Service, any program)
        # would not answer for us; after a few tries take one anyway, as upstream would.
        for _ in range(64):
            np = random.choice(free)
            if self.port_free is None or self.port_free(np, protocol):
                return np
        return random.choice(free)

    def _node_ports(self, spec: Obj, old_spec: Obj, others: list[Obj], name: str) -> None:
        wants = spec.get("type") in ("NodePort", "LoadBalancer")
        if spec.get("type") == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is False:
            wants = False
        ports = spec.get("ports") or []
        if not wants:
            if spec.get("type") in ("ClusterIP", None, "ExternalName"):
                for p in ports:
                    p.pop("nodePort", None)
            return
        used: set[int] = set()
        for o in others:
            for p in o.get("spec", {}).get("ports") or []:
                if p.get("nodePort"):
                    used.add(int(p["nodePort"]))
        old_by_port = {(p.get("port"), p.get("protocol", "TCP")): p.get("nodePort")
                       for p in old_spec.get("ports") or [] if p.get("nodePort")}
        mine: set[int] = set()
        lo, hi = NODE_PORT_RANGE
        for i, p in enumerate(ports):
            np = p.get("nodePort")
            if not np:
                np = old_by_port.get((p.get("port"), p.get("protocol", "TCP")))
            if np:
                np = int(np)
                field = f"spec.ports[{i}].nodePort"
                if not lo <= np <= hi:
                    raise invalid("Service", "", name, [Cause(
                        "FieldValueInvalid",
                        f"Invalid value: {np}: provided port is not in the valid range. The range of valid ports is {lo}-{hi}",
                        field)])
                if np in used or (np in mine and np not in old_by_port.values()):
                    raise invalid("Service", "", name, [Cause(
                        "FieldValueInvalid", f"Invalid value: {np}: provided port is already allocated", field)])
            else:
                free = [n for n in range(lo, hi + 1) if n not in used and n not in mine]
                if not free:
                    raise invalid("Service", "", name, [Cause("FieldValueInvalid", "range is full", f"spec.ports[{i}].nodePort")])
                np = self._pick(free, p.get("protocol") or "TCP")
            p["nodePort"] = np
            mine.add(np)
