"""The cluster DNS flags, apart from the DNS server itself.

``kubelite server`` builds these options on every start, ``--api-only`` too; keeping them
here means that building them does not import dnspython and the resolver.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kubelite.dns.forward import Upstream

DEFAULT_TTL = 5                 # CoreDNS kubernetes plugin's default


@dataclass
class DNSOptions:
    """Flags of the cluster DNS (``kubelite server``)."""

    enabled: bool = True
    cluster_domain: str = "cluster.local"
    ttl: int = DEFAULT_TTL
    upstreams: list[Upstream] = field(default_factory=list)
    port: int = 0                 # 0: 53 as root, else 10053
    resolv_conf: str = "/etc/resolv.conf"
