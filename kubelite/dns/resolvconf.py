"""A pod's resolv.conf, composed from its dnsPolicy and dnsConfig as the kubelet does.

- ``ClusterFirst`` (not host network) and ``ClusterFirstWithHostNet``: the cluster DNS
  Service's address as the only nameserver, the search path
  ``<ns>.svc.<domain> svc.<domain> <domain>`` followed by the node's own search domains,
  and ``options ndots:5``.  Without a cluster DNS address the kubelet falls back to
  ``Default`` (and says so in an event).
- ``ClusterFirst`` with ``hostNetwork: true``, and ``Default``: the node's resolv.conf.
- ``None``: nothing but what ``dnsConfig`` gives.

``dnsConfig`` is then merged in: its nameservers and searches appended without duplicates,
its options replacing options of the same name.  Last, the kubelet's limits: at most 3
nameservers, at most 32 search domains, none longer than 253 characters, and a search line
of at most 2048 characters; what is cut is reported as a ``DNSConfigForming`` warning.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]

MAX_NAMESERVERS = 3
MAX_SEARCH_PATHS = 32
MAX_SEARCH_LIST_CHARS = 2048
MAX_SEARCH_LENGTH = 253
DEFAULT_OPTIONS = ("ndots:5",)
HOST_RESOLV_CONF = "/etc/resolv.conf"


@dataclass
class DNSConfig:
    """What a resolv.conf says: nameservers, search domains, options."""

    nameservers: list[str] = field(default_factory=list)
    searches: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)

    def render(self) -> str:
        """The file's text (search, nameserver and options lines, as container runtimes write it)."""
        lines = []
        if self.searches:
            lines.append("search " + " ".join(self.searches))
        lines += [f"nameserver {ns}" for ns in self.nameservers]
        if self.options:
            lines.append("options " + " ".join(self.options))
        return "".join(line + "\n" for line in lines)


def parse_resolv_conf(text: str) -> DNSConfig:
    """Nameservers accumulate; the last search and options lines win; trailing dots go."""
    cfg = DNSConfig()
    for raw in text.splitlines():
        fields = raw.strip().split()
        if not fields or fields[0].startswith("#"):
            continue
        if fields[0] == "nameserver" and len(fields) >= 2:
            cfg.nameservers.append(fields[1])
        elif fields[0] == "search":
            cfg.searches = [s.removesuffix(".") for s in fields[1:]]
        elif fields[0] == "options":
            cfg.options = fields[1:]
    return cfg


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%")[0]).is_loopback
    except ValueError:
        return False


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def merge_options(existing: list[str], extra: list[Obj]) -> list[str]:
    """Options by name; a dnsConfig option replaces an existing one of the same name."""
    opts: dict[str, str] = {}
    for op in existing:
        name, _, value = op.partition(":")
        opts[name] = value
    for extra_op in extra:
        opts[extra_op.get("name") or ""] = extra_op.get("value") or ""
    return [f"{k}:{v}" if v else k for k, v in opts.items()]


@dataclass
class PodDNS:
    """The node's DNS settings (the kubelet's --cluster-dns, --cluster-domain, --resolv-conf)."""

    cluster_dns: list[str] = field(default_factory=list)
    cluster_domain: str = "cluster.local"
    resolv_conf: str = HOST_RESOLV_CONF
    # KUBELITE_OFFLINE: the node's resolvers forward off the machine; pods get none of them
    # (a loopback one stays: in a pod's network namespace it is the pod's own loopback).
    offline: bool = False

    def host_config(self) -> DNSConfig:
        """The node's own resolv.conf (empty when it cannot be read)."""
        try:
            with open(self.resolv_conf) as f:
                cfg = parse_resolv_conf(f.read())
        except OSError:
            return DNSConfig()
        if self.offline:
            cfg.nameservers = [ns for ns in cfg.nameservers if _loopback(ns)]
        return cfg

    def for_pod(self, pod: Obj) -> tuple[DNSConfig, list[str]]:
        """The pod's DNS configuration and the warnings the kubelet would record."""
        spec = pod.get("spec") or {}
        policy = spec.get("dnsPolicy") or "ClusterFirst"
        host_network = bool(spec.get("hostNetwork"))
        warnings: list[str] = []
        host = self.host_config()
        if policy == "None":
            cfg = DNSConfig()
        elif policy == "ClusterFirstWithHostNet" or (policy == "ClusterFirst" and not host_network):
            if self.cluster_dns:
                ns = (pod.get("metadata") or {}).get("namespace") or "default"
                d = self.cluster_domain
                cfg = DNSConfig(list(self.cluster_dns),
                                _unique([f"{ns}.svc.{d}", f"svc.{d}", d, *host.searches]) if d else host.searches,
                                list(DEFAULT_OPTIONS))
            else:
                warnings.append('kubelet does not have ClusterDNS IP configured and cannot create Pod using '
                                '"ClusterFirst" policy. Falling back to "Default" policy.')
                cfg = host
        else:
            cfg = host
        extra = spec.get("dnsConfig")
        if extra:
            cfg = DNSConfig(_unique(cfg.nameservers + list(extra.get("nameservers") or [])),
                            _unique(cfg.searches + list(extra.get("searches") or [])),
                            merge_options(cfg.options, list(extra.get("options") or [])))
        return _fit_limits(cfg, warnings)

    def render(self, pod: Obj) -> str:
        """The pod's resolv.conf text."""
        return self.for_pod(pod)[0].render()


def _fit_limits(cfg: DNSConfig, warnings: list[str]) -> tuple[DNSConfig, list[str]]:
    if len(cfg.nameservers) > MAX_NAMESERVERS:
        cfg.nameservers = cfg.nameservers[:MAX_NAMESERVERS]
        warnings.append("Nameserver limits were exceeded, some nameservers have been omitted, "
                        f"the applied nameserver line is: {' '.join(cfg.nameservers)}")
    search, cut = cfg.searches[:MAX_SEARCH_PATHS], len(cfg.searches) > MAX_SEARCH_PATHS
    kept = [s for s in search if len(s) <= MAX_SEARCH_LENGTH]
    cut = cut or len(kept) != len(search)
    while kept and len(" ".join(kept)) > MAX_SEARCH_LIST_CHARS:
        kept.pop()  # drop from the end until the line fits
        cut = True
    cfg.searches = kept
    if cut:
        warnings.append("Search Line limits were exceeded, some search paths have been omitted, "
                        f"the applied search line is: {' '.join(kept)}")
    return cfg, warnings
