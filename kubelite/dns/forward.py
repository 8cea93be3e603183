"""Forwarding of names outside the cluster to upstream resolvers (CoreDNS's ``forward``).

Upstreams are ``--dns-upstream ADDR[:PORT]`` (repeatable), by default the node's
``/etc/resolv.conf`` nameservers.  With ``KUBELITE_OFFLINE=1`` (every test, bench and CI
run) nothing leaves the machine: the node's resolvers are not used at all (even a loopback
one, such as systemd-resolved's 127.0.0.53, forwards off the machine) and an explicit
upstream is kept only when it is a loopback address, so a test can run a stub resolver
on 127.0.0.x.  With no upstream left, forwarded names are answered REFUSED.
"""
from __future__ import annotations

import ipaddress
import logging
import random
from typing import NamedTuple

import dns.asyncquery
import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rrset
from dns.rcode import Rcode
from dns.rdatatype import RdataType

log = logging.getLogger("kubelite.dns")

DEFAULT_TIMEOUT = 2.0
HOST_RESOLV_CONF = "/etc/resolv.conf"


class Upstream(NamedTuple):
    """One upstream resolver."""

    host: str
    port: int = 53

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_upstream(text: str) -> Upstream:
    """``1.2.3.4``, ``1.2.3.4:5353``, ``::1`` or ``[::1]:5353``; ValueError when it is none."""
    text = text.strip()
    host, port = text, 53
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"{text!r} is not ADDR[:PORT]")
            port = int(rest[1:])
    elif text.count(":") == 1:
        host, p = text.split(":")
        port = int(p)
    ipaddress.ip_address(host)  # a name would need resolving itself: refuse it
    if not 1 <= port <= 65535:
        raise ValueError(f"{text!r}: port out of range")
    return Upstream(host, port)


def host_nameservers(path: str = HOST_RESOLV_CONF) -> list[Upstream]:
    """The ``nameserver`` lines of a resolv.conf file ([] when it cannot be read)."""
    out: list[Upstream] = []
    try:
        with open(path) as f:
            for line in f:
                fields = line.split()
                if len(fields) >= 2 and fields[0] == "nameserver":
                    try:
                        out.append(Upstream(str(ipaddress.ip_address(fields[1].split("%")[0]))))
                    except ValueError:
                        continue
    except OSError:
        return []
    return out


def is_loopback(host: str) -> bool:
    """Is ``host`` a loopback address?"""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def choose_upstreams(explicit: list[Upstream], *, offline: bool, resolv_conf: str = HOST_RESOLV_CONF,
                     own: set[Upstream] | None = None) -> list[Upstream]:
    """The upstreams to use: explicit ones, else the node's; only loopback ones offline; never ourselves."""
    if explicit:
        chosen = list(explicit)
    elif offline:
        chosen = []  # the machine's resolver forwards off the machine, whatever its address
    else:
        chosen = host_nameservers(resolv_conf)
    if offline:
        dropped = [u for u in chosen if not is_loopback(u.host)]
        if dropped:
            log.warning("cluster DNS: offline, not forwarding to %s", ", ".join(map(str, dropped)))
        chosen = [u for u in chosen if is_loopback(u.host)]
    return [u for u in chosen if u not in (own or set())]


class Forwarder:
    """Sends queries to the upstreams in random order until one answers."""

    def __init__(self, upstreams: list[Upstream], *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.upstreams = list(upstreams)
        self.timeout = timeout

    async def forward(self, query: dns.message.Message, *, tcp: bool = False) -> dns.message.Message:
        """The upstream's response; REFUSED without upstreams, SERVFAIL when none answers."""
        if not self.upstreams:
            return _reply(query, dns.rcode.REFUSED)
        order = random.sample(self.upstreams, len(self.upstreams))
        for u in order:
            try:
                if tcp:
                    return await dns.asyncquery.tcp(query, u.host, timeout=self.timeout, port=u.port)
                return await dns.asyncquery.udp(query, u.host, timeout=self.timeout, port=u.port,
                                                ignore_unexpected=True)
            except (OSError, EOFError, dns.exception.DNSException) as e:
                log.debug("cluster DNS: upstream %s failed: %s", u, e)
        return _reply(query, dns.rcode.SERVFAIL)

    async def lookup(self, name: dns.name.Name, rdtype: RdataType) -> list[dns.rrset.RRset] | None:
        """The answer records for a name (an ExternalName target), None when there are none."""
        if not self.upstreams:
            return None
        resp = await self.forward(dns.message.make_query(name, rdtype))
        if resp.rcode() != dns.rcode.NOERROR or not resp.answer:
            return None
        return list(resp.answer)


def _reply(query: dns.message.Message, rcode: Rcode) -> dns.message.Message:
    resp = dns.message.make_response(query)
    resp.set_rcode(rcode)
    return resp
