"""Answers for the cluster domain, shaped as CoreDNS's ``kubernetes`` plugin shapes them.

Names under the zone (``cluster.local`` unless configured):

- ``svc.ns.svc.Z``: the ClusterIPs (A/AAAA by family); for a headless Service one record
  per ready endpoint address; for ExternalName a CNAME (an A/AAAA query follows it, in
  the zone itself or through the upstream resolvers);
- ``host.svc.ns.svc.Z``: one endpoint, by its hostname or its dashed address;
- ``_port._proto.svc.ns.svc.Z``: SRV (with the targets' addresses as additional records);
- ``a-b-c-d.ns.pod.Z``: the address spelled by the name, for an existing namespace
  (``pods insecure``);
- PTR in ``in-addr.arpa``/``ip6.arpa`` for ClusterIPs and endpoint addresses.

What CoreDNS distinguishes, we distinguish too: a name that cannot exist gets NXDOMAIN, a
name that exists without records of the asked type (AAAA of an IPv4 Service, ``ns.svc.Z``
of an existing namespace, the apex) gets NOERROR with no answer ("NODATA"); both carry the
zone's SOA in the authority section, whose minimum TTL tells resolvers how long to cache
the denial.  A reverse name we know nothing of is not ours: ``answer`` returns None and
the caller forwards it, as CoreDNS's default ``fallthrough in-addr.arpa ip6.arpa`` does.
"""
from __future__ import annotations

import ipaddress
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.reversename
import dns.rrset
from dns.flags import AA
from dns.rcode import Rcode
from dns.rdatatype import RdataType

from kubelite.dns.index import ClusterIndex
from kubelite.dns.options import DEFAULT_TTL

DNS_SCHEMA_VERSION = "1.1.0"    # answered for TXT dns-version.<zone>
SCHEMA_TTL = 28800
MAX_CNAME_CHAIN = 7
KUBE_DNS = ("kube-system", "kube-dns")
REVERSE_ZONES = (dns.name.from_text("in-addr.arpa."), dns.name.from_text("ip6.arpa."))

# Looks a name up outside the cluster zone (the forwarder); None when it cannot.
Lookup = Callable[[dns.name.Name, RdataType], Awaitable[list[dns.rrset.RRset] | None]]


@dataclass
class Rec:
    """One backend record before it becomes an RR (CoreDNS's msg.Service)."""

    host: str       # an address, or a target name (ExternalName)
    port: int = 0
    key: str = ""   # the name that owns the address, the target of an SRV record
    text: str = ""


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def _family(host: str) -> RdataType | None:
    """The address record type of an IP (A or AAAA), None for a name."""
    try:
        return dns.rdatatype.A if ipaddress.ip_address(host).version == 4 else dns.rdatatype.AAAA
    except ValueError:
        return None


def _strip(label: str) -> str:
    return label[1:] if label.startswith("_") else label


def _same(a: str, b: str) -> bool:
    return a.lower() == b.lower()


def _pod_ip(label: str) -> str:
    """The address a pod record's first label spells ("" when none)."""
    if label.count("-") == 3 and "--" not in label:
        text = label.replace("-", ".")
    else:
        text = label.replace("-", ":")
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return ""


class Resolver:
    """Answers queries for one cluster zone (and the reverse zones) from a ClusterIndex."""

    def __init__(self, index: ClusterIndex, *, zone: str = "cluster.local", ttl: int = DEFAULT_TTL,
                 lookup: Lookup | None = None) -> None:
        self.index = index
        self.zone = dns.name.from_text(zone.rstrip(".") + ".")
        self.zone_text = self.zone.to_text()
        self.ttl = ttl
        self.lookup = lookup

    # -- the request, parsed as CoreDNS's parseRequest ------------------------------------
    def _records(self, labels: tuple[str, ...], qname: dns.name.Name) -> tuple[list[Rec], bool]:
        """Records for a name relative to the zone, and whether it is a name error."""
        if not labels or labels in (("svc",), ("pod",)):
            return [], False
        kind = labels[-1]
        if kind not in ("svc", "pod"):
            return [], True
        ns = labels[-2] if len(labels) > 1 else ""
        if ns and ns not in self.index.namespaces:
            return [], True
        if len(labels) <= 2:
            return [], False
        name, rest = labels[-3], labels[:-3]
        endpoint = port = proto = ""
        if len(rest) == 1:
            endpoint = rest[0]
        elif len(rest) == 2:
            port, proto = _strip(rest[0]), _strip(rest[1])
        elif len(rest) > 2:
            return [], True
        if kind == "pod":
            ip = _pod_ip(name)
            return ([Rec(ip, key=qname.to_text())], False) if ip else ([], True)
        return self._service_records(ns, name, endpoint, port, proto)

    def _service_records(self, ns: str, name: str, endpoint: str, port: str,
                         proto: str) -> tuple[list[Rec], bool]:
        svc = self.index.by_name.get((ns, name))
        if svc is None:
            return [], True
        base = f"{svc.name}.{svc.namespace}.svc.{self.zone_text}"

        def wanted(p_name: str, p_proto: str) -> bool:
            return (not port or _same(port, p_name)) and (not proto or _same(proto, p_proto))

        out: list[Rec] = []
        if svc.external_name:
            if endpoint or port or proto or _is_ip(svc.external_name):
                return [], True
            return [Rec(svc.external_name, key=base)], False
        if svc.headless or endpoint:
            for sub in svc.subsets:
                for a in sub.addresses:
                    if endpoint and not _same(endpoint, a.hostname):
                        continue
                    out += [Rec(a.ip, p.port, f"{a.hostname}.{base}") for p in sub.ports if wanted(p.name, p.protocol)]
            return out, not out
        found = False
        for p in svc.ports:
            if wanted(p.name, p.protocol):
                found = True
                out += [Rec(ip, p.port, base) for ip in svc.cluster_ips]
        return out, not found

    def _labels(self, qname: dns.name.Name) -> tuple[str, ...]:
        rel = qname.relativize(self.zone)
        return tuple(lbl.decode("ascii", "replace").lower() for lbl in rel.labels) if rel != dns.name.empty else ()

    def _services(self, qname: dns.name.Name, qtype: RdataType) -> tuple[list[Rec], bool]:
        """CoreDNS's Services(): the special names, then the request's records."""
        labels = self._labels(qname)
        if qtype == dns.rdatatype.TXT:
            if labels == ("dns-version",):
                return [Rec("", text=DNS_SCHEMA_VERSION)], False
            recs, _ = self._records(labels, qname)
            return [], not recs
        if labels == ("ns", "dns"):
            return [Rec(ip, key=qname.to_text()) for ip in self._dns_ips() if _family(ip) == qtype], False
        recs, err = self._records(labels, qname)
        if qtype == dns.rdatatype.SRV:
            recs = [r for r in recs if _is_ip(r.host)]
        return recs, err

    def _dns_ips(self) -> list[str]:
        svc = self.index.by_name.get(KUBE_DNS)
        return list(svc.cluster_ips) if svc else []

    # -- building answers ------------------------------------------------------------------
    def _rrset(self, name: dns.name.Name, rdtype: RdataType, texts: list[str], ttl: int | None = None) -> dns.rrset.RRset:
        return dns.rrset.from_text_list(name, self.ttl if ttl is None else ttl, dns.rdataclass.IN, rdtype, texts)

    def soa(self) -> dns.rrset.RRset:
        """The zone's SOA (its minimum TTL is the record TTL, as CoreDNS's)."""
        text = (f"ns.dns.{self.zone_text} hostmaster.{self.zone_text} {self.index.serial} "
                f"7200 1800 86400 {self.ttl}")
        return self._rrset(self.zone, dns.rdatatype.SOA, [text], min(self.ttl, 300))

    async def _addresses(self, owner: dns.name.Name, recs: list[Rec], qtype: RdataType,
                         chain: list[tuple[dns.name.Name, dns.name.Name]], asked: list[bool]) -> list[dns.rrset.RRset]:
        """A/AAAA records for ``owner``, following ExternalName CNAMEs."""
        out: list[dns.rrset.RRset] = []
        seen: set[str] = set()
        ips: list[str] = []
        for r in recs:
            fam = _family(r.host)
            if fam:
                if fam == qtype and r.host not in seen:
                    seen.add(r.host)
                    ips.append(r.host)
                continue
            target = dns.name.from_text(r.host.rstrip(".") + ".")
            if target == owner or len(chain) > MAX_CNAME_CHAIN or (owner, target) in chain:
                continue
            cname = self._rrset(owner, dns.rdatatype.CNAME, [target.to_text()])
            if target.is_subdomain(self.zone):
                nrecs, err = self._services(target, qtype)
                if not err:
                    more = await self._addresses(target, nrecs, qtype, [*chain, (owner, target)], asked)
                    if more:
                        out += [cname, *more]
                continue
            asked.append(True)  # the answer depends on the upstream too
            found = await self.lookup(target, qtype) if self.lookup else None
            if found is None:
                continue  # as CoreDNS: an unresolvable external target adds nothing, not even the CNAME
            out += [cname, *found]
        if ips:
            out.insert(0, self._rrset(owner, qtype, ips))
        return out

    def _srv(self, owner: dns.name.Name, recs: list[Rec]) -> tuple[list[dns.rrset.RRset], list[dns.rrset.RRset]]:
        # Every record weighs 100 within priority 0; a record's share is scaled to 100.
        total = 100 * len(recs)
        srv: list[str] = []
        extra: dict[tuple[str, str], dns.rrset.RRset] = {}
        done: set[tuple[str, int]] = set()
        for r in recs:
            if r.port == -1:
                continue
            weight = max(1, math.floor(100.0 / total * 100))
            if (r.key, r.port) not in done:
                done.add((r.key, r.port))
                srv.append(f"0 {weight} {r.port} {r.key}")
            if (r.key, r.host) not in extra:
                extra[(r.key, r.host)] = self._rrset(dns.name.from_text(r.key), _family(r.host) or dns.rdatatype.A,
                                                     [r.host])
        answer = [self._rrset(owner, dns.rdatatype.SRV, srv)] if srv else []
        return answer, list(extra.values())

    def _reverse(self, qname: dns.name.Name) -> list[str]:
        """PTR targets for a reverse name: a Service's ClusterIP, else its endpoints."""
        try:
            ip = str(ipaddress.ip_address(dns.reversename.to_address(qname)))
        except Exception:  # not a complete address: dnspython raises several kinds
            return []
        svc = self.index.by_cluster_ip.get(ip)
        if svc is not None:
            return [f"{svc.name}.{svc.namespace}.svc.{self.zone_text}"]
        out: list[str] = []
        for svc, label in self.index.by_endpoint_ip.get(ip, []):
            t = f"{label}.{svc.name}.{svc.namespace}.svc.{self.zone_text}"
            if t not in out:
                out.append(t)
        return out

    def _reply(self, query: dns.message.Message, rcode: Rcode, answer: list[dns.rrset.RRset] | None = None,
               extra: list[dns.rrset.RRset] | None = None) -> dns.message.Message:
        resp = dns.message.make_response(query)
        resp.flags |= AA
        resp.set_rcode(rcode)
        if answer:
            resp.answer = list(answer)
            resp.additional = list(extra or [])
        else:
            resp.authority = [self.soa()]
        return resp

    # -- the entry point --------------------------------------------------------------------
    async def answer(self, query: dns.message.Message) -> dns.message.Message | None:
        """The response for ``query``, or None when the name is not ours (forward it)."""
        return (await self.answer_cacheable(query))[0]

    async def answer_cacheable(self, query: dns.message.Message) -> tuple[dns.message.Message | None, bool]:
        """``answer``, and whether the response depends on the cluster state alone (so it
        stays right until the next change)."""
        asked: list[bool] = []
        resp = await self._answer(query, asked)
        return resp, resp is not None and not asked

    async def _answer(self, query: dns.message.Message, asked: list[bool]) -> dns.message.Message | None:
        if len(query.question) != 1:
            return None
        q = query.question[0]
        qname, qtype = q.name, q.rdtype
        self.index.refresh()
        if not qname.is_subdomain(self.zone):
            if qtype == dns.rdatatype.PTR and any(qname.is_subdomain(z) for z in REVERSE_ZONES):
                targets = self._reverse(qname)
                if targets:
                    return self._reply(query, dns.rcode.NOERROR, [self._rrset(qname, dns.rdatatype.PTR, targets)])
            return None
        if qtype in (dns.rdatatype.AXFR, dns.rdatatype.IXFR):
            resp = dns.message.make_response(query)
            resp.set_rcode(dns.rcode.REFUSED)
            return resp
        answer: list[dns.rrset.RRset] = []
        extra: list[dns.rrset.RRset] = []
        err = False
        if qtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            recs, err = self._services(qname, qtype)
            if not err:
                answer = await self._addresses(qname, recs, qtype, [], asked)
        elif qtype == dns.rdatatype.SRV:
            recs, err = self._services(qname, qtype)
            if not err:
                answer, extra = self._srv(qname, recs)
        elif qtype == dns.rdatatype.PTR:
            recs, err = self._services(qname, qtype)
            names = list(dict.fromkeys(r.host for r in recs if not _is_ip(r.host)))
            if names and not err:
                answer = [self._rrset(qname, dns.rdatatype.PTR, [n.rstrip(".") + "." for n in names])]
        elif qtype == dns.rdatatype.CNAME:
            recs, err = self._services(qname, qtype)
            if recs and not _is_ip(recs[0].host) and not err:
                answer = [self._rrset(qname, dns.rdatatype.CNAME, [recs[0].host.rstrip(".") + "."])]
        elif qtype == dns.rdatatype.TXT:
            recs, err = self._services(qname, qtype)
            if recs and not err:
                answer = [self._rrset(qname, dns.rdatatype.TXT, [f'"{recs[0].text}"'], SCHEMA_TTL)]
        elif qtype == dns.rdatatype.SOA:
            if qname == self.zone:
                answer = [self.soa()]
        elif qtype == dns.rdatatype.NS and qname == self.zone:
            ns_name = dns.name.from_text(f"ns.dns.{self.zone_text}")
            ips = self._dns_ips()
            if ips:
                answer = [self._rrset(qname, dns.rdatatype.NS, [ns_name.to_text()])]
                extra = [self._rrset(ns_name, _family(ip) or dns.rdatatype.A, [ip]) for ip in ips]
        else:
            # Any other type: NXDOMAIN if the name cannot exist, else NODATA (CoreDNS asks A).
            _, err = self._services(qname, dns.rdatatype.A)
        if err:
            # Before the first list every name would look missing: say "try again" instead.
            return self._reply(query, dns.rcode.NXDOMAIN if self.index.synced else dns.rcode.SERVFAIL)
        return self._reply(query, dns.rcode.NOERROR, answer, extra)
