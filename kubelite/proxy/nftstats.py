"""Requests and refused connections per revision on the nftables path (see stats.py).

The kernel cannot see HTTP replies; what it can count cheaply:

- new connections: every endpoint's ``ep-`` chain is only entered by a connection's first
  packet (it sits behind the nat hooks), so a ``counter name`` there counts new
  connections, into one named counter per (namespace, Service, revision);
- refused / reset connections: a TCP RST that an endpoint sends back on a DNATed flow
  (``ct direction reply``, ``ct status dnat``), counted in two filter chains (``input``
  for clients on this host, ``forward`` for clients elsewhere).  The endpoint is matched
  by the connection's reply tuple (``ct reply ip saddr . ct reply proto-src``), which
  stays the endpoint's whether or not the packet's own addresses were translated back
  yet (a pod on loopback answers through output/postrouting, where they already are).

Named counters, not rule counters: the table is flushed and rebuilt on every change,
which would zero rule counters; named counter objects survive a flush and keep counting
(they go only with the table, or when a revision leaves).  ``NftProxy`` reads them with
``nft -j list counters`` every ``stats.PUBLISH_INTERVAL`` and adds what grew to the
proxy's ``TrafficStats``.
"""
from __future__ import annotations

import json
from collections.abc import Iterable

from kubelite.proxy.balancer import Endpoint
from kubelite.proxy.stats import Counts, revision_of

Key = tuple[str, str, str]  # (namespace, service, revision)
REQUESTS = "rq"
RESETS = "rs"


def service_of(port_key: str) -> tuple[str, str]:
    """(namespace, service) from a PortRules key ``namespace/name/protocol/port``."""
    ns, name = port_key.split("/")[:2]
    return ns, name


def revision_key(port_key: str, ep: Endpoint) -> Key | None:
    """The counters' key for an endpoint of this Service port (None: not a revision's pod)."""
    h = revision_of(ep.pod_name)
    if not h:
        return None
    ns, name = service_of(port_key)
    return (ns, name, h)


def rst_rules(resets: dict[str, tuple[Key, set[tuple[str, int]]]]) -> list[str]:
    """One rule per revision counting RSTs its endpoints send back on DNATed TCP flows."""
    rules = []
    for name, (_key, addrs) in sorted(resets.items()):
        if not addrs:
            continue
        elems = ", ".join(f"{ip} . {port}" for ip, port in sorted(addrs))
        rules.append(f"ct direction reply ct status & dnat == dnat tcp flags & rst == rst "
                     f"ct reply ip saddr . ct reply proto-src {{ {elems} }} counter name \"{name}\"")
    return rules


def read_counters(listing: str) -> dict[str, int]:
    """Packets per named counter from ``nft -j list counters`` (unparsable: empty)."""
    try:
        doc = json.loads(listing or "{}")
    except ValueError:
        return {}
    out: dict[str, int] = {}
    for item in doc.get("nftables") or [] if isinstance(doc, dict) else []:
        c = item.get("counter") if isinstance(item, dict) else None
        if isinstance(c, dict) and isinstance(c.get("name"), str) and isinstance(c.get("packets"), int):
            out[c["name"]] = c["packets"]
    return out


class CounterReader:
    """Turns cumulative kernel counters into the counts a ``TrafficStats`` adds up."""

    def __init__(self) -> None:
        self._last: dict[str, int] = {}

    def deltas(self, packets: dict[str, int], names: dict[str, tuple[str, Key]]) -> Iterable[tuple[Key, Counts]]:
        """What each named counter gained since the last read (a recreated counter from 0)."""
        for name, value in packets.items():
            meaning = names.get(name)
            if meaning is None:
                continue
            before = self._last.get(name, 0)
            gained = value - before if value >= before else value
            self._last[name] = value
            if gained <= 0:
                continue
            kind, key = meaning
            yield key, (Counts(requests=gained) if kind == REQUESTS else Counts(errors=gained, failed=gained))
        for name in [n for n in self._last if n not in packets]:
            del self._last[name]
