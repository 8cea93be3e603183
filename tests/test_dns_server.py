"""The cluster DNS server, queried over UDP and TCP on loopback with dnspython.

The cluster state comes from the in-memory fake API (its informers); upstream resolvers
are stub servers these tests run on 127.0.0.x.  No query leaves the machine, and no
address in an answer is ever dialled.
"""
from __future__ import annotations

import asyncio
from types import SimpleNamespace

import dns.asyncquery
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.reversename
import dns.rrset
import pytest
from fakeapi import FakeAPI

from kubelite.api.resources import ENDPOINTSLICES, NAMESPACES, SERVICES
from kubelite.dns.forward import Forwarder, Upstream, choose_upstreams, parse_upstream
from kubelite.dns.index import ClusterIndex
from kubelite.dns.records import Resolver
from kubelite.dns.server import DNSServer

ZONE = "cluster.local"


def svc(name: str, ns: str = "default", *, ip: str = "", ports=(("http", 80, "TCP"),), headless: bool = False,
        external: str = "") -> dict:
    spec: dict = {"ports": [{"name": n, "port": p, "protocol": pr} for n, p, pr in ports]}
    if external:
        spec = {"type": "ExternalName", "externalName": external}
    elif headless:
        spec.update(clusterIP="None", clusterIPs=["None"])
    else:
        spec.update(clusterIP=ip, clusterIPs=[ip], type="ClusterIP")
    return {"metadata": {"name": name, "namespace": ns}, "spec": spec}


def eps(service: str, endpoints: list[dict], ns: str = "default", ports=(("http", 8080, "TCP"),), suffix="abc") -> dict:
    return {"metadata": {"name": f"{service}-{suffix}", "namespace": ns,
                         "labels": {"kubernetes.io/service-name": service}},
            "addressType": "IPv4", "endpoints": endpoints,
            "ports": [{"name": n, "port": p, "protocol": pr} for n, p, pr in ports]}


def ep(ip: str, *, ready: bool = True, hostname: str = "") -> dict:
    e: dict = {"addresses": [ip], "conditions": {"ready": ready}}
    if hostname:
        e["hostname"] = hostname
    return e


class Cluster:
    """A fake API, the index over its informers, and a running DNS server on loopback."""

    def __init__(self, upstreams: list[Upstream] | None = None, ttl: int = 5):
        self.api = FakeAPI()
        for n in ("default", "kube-system", "other"):
            self.api.create(NAMESPACES, {"metadata": {"name": n}}, "")
        infs = [self.api.informer(i) for i in (SERVICES, ENDPOINTSLICES, NAMESPACES)]
        self.index = ClusterIndex(*infs)
        for inf in infs:
            inf.add_handler(self.index.changed, self.index.changed, self.index.changed)
        self.index.synced = True
        self.forwarder = Forwarder(upstreams or [], timeout=1.0)
        self.server = DNSServer(Resolver(self.index, zone=ZONE, ttl=ttl, lookup=self.forwarder.lookup), self.forwarder)
        self.port = 0

    async def start(self) -> Cluster:
        _, self.port = await self.server.start("127.0.0.1", 0)
        return self

    async def query(self, name: str, rdtype: str = "A", *, tcp: bool = False, edns: bool = False) -> dns.message.Message:
        q = dns.message.make_query(name, rdtype, use_edns=0 if edns else None)
        if tcp:
            return await dns.asyncquery.tcp(q, "127.0.0.1", port=self.port, timeout=5)
        return await dns.asyncquery.udp(q, "127.0.0.1", port=self.port, timeout=5)


@pytest.fixture
async def cluster():
    c = await Cluster().start()
    c.api.create(SERVICES, svc("kube-dns", "kube-system", ip="127.96.0.10",
                               ports=(("dns", 53, "UDP"), ("dns-tcp", 53, "TCP"))), "kube-system")
    c.api.create(SERVICES, svc("web", ip="127.96.0.20", ports=(("http", 80, "TCP"), ("metrics", 9100, "TCP"))), "default")
    c.api.create(SERVICES, svc("nginx", headless=True, ports=(("web", 80, "TCP"),)), "default")
    c.api.create(ENDPOINTSLICES, eps("nginx", [ep("10.244.0.5", hostname="web-0"), ep("10.244.0.6"),
                                               ep("10.244.0.7", ready=False)], ports=(("web", 80, "TCP"),)), "default")
    yield c
    await c.server.stop()


def addresses(resp: dns.message.Message, rdtype=dns.rdatatype.A) -> list[str]:
    return sorted(rd.to_text() for rs in resp.answer if rs.rdtype == rdtype for rd in rs)


def soa_in_authority(resp: dns.message.Message) -> bool:
    return [rs.rdtype for rs in resp.authority] == [dns.rdatatype.SOA] and resp.authority[0].name.to_text() == "cluster.local."


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
async def test_should_provide_dns_for_services(cluster, tcp):
    r = await cluster.query("web.default.svc.cluster.local", tcp=tcp)
    assert r.rcode() == dns.rcode.NOERROR
    assert r.flags & dns.flags.AA
    assert addresses(r) == ["127.96.0.20"]
    assert r.answer[0].ttl == 5


async def test_names_are_case_insensitive_and_keep_the_asked_case(cluster):
    r = await cluster.query("WEB.Default.svc.Cluster.Local")
    assert addresses(r) == ["127.96.0.20"]
    assert r.answer[0].name.to_text() == "WEB.Default.svc.Cluster.Local."


async def test_nodata_for_a_type_the_name_lacks_and_nxdomain_for_missing_names(cluster):
    r = await cluster.query("web.default.svc.cluster.local", "AAAA")
    assert (r.rcode(), r.answer) == (dns.rcode.NOERROR, [])
    assert soa_in_authority(r)
    soa = r.authority[0][0]
    assert (soa.mname.to_text(), soa.rname.to_text(), soa.minimum) == ("ns.dns.cluster.local.", "hostmaster.cluster.local.", 5)
    for name in ("nope.default.svc.cluster.local", "web.nons.svc.cluster.local", "web.default.bogus.cluster.local",
                 "a.b.c.d.web.default.svc.cluster.local"):
        r = await cluster.query(name)
        assert r.rcode() == dns.rcode.NXDOMAIN, name
        assert soa_in_authority(r), name
    # Names that exist without records: the apex, svc., an existing namespace.
    for name in ("cluster.local", "svc.cluster.local", "default.svc.cluster.local", "other.pod.cluster.local"):
        r = await cluster.query(name)
        assert (r.rcode(), r.answer) == (dns.rcode.NOERROR, []), name
        assert soa_in_authority(r), name


async def test_apex_soa_and_ns_and_schema_version(cluster):
    r = await cluster.query("cluster.local", "SOA")
    assert r.answer and r.answer[0].rdtype == dns.rdatatype.SOA
    r = await cluster.query("cluster.local", "NS")
    assert [rd.to_text() for rd in r.answer[0]] == ["ns.dns.cluster.local."]
    assert [rd.to_text() for rs in r.additional for rd in rs] == ["127.96.0.10"]
    r = await cluster.query("dns-version.cluster.local", "TXT")
    assert [rd.to_text() for rd in r.answer[0]] == ['"1.1.0"']
    r = await cluster.query("cluster.local", "AXFR", tcp=True)
    assert r.rcode() == dns.rcode.REFUSED


async def test_should_provide_dns_for_headless_services(cluster):
    r = await cluster.query("nginx.default.svc.cluster.local")
    assert addresses(r) == ["10.244.0.5", "10.244.0.6"]  # not the endpoint that is not ready
    r = await cluster.query("web-0.nginx.default.svc.cluster.local")
    assert addresses(r) == ["10.244.0.5"]
    r = await cluster.query("10-244-0-6.nginx.default.svc.cluster.local")
    assert addresses(r) == ["10.244.0.6"]
    r = await cluster.query("10-244-0-7.nginx.default.svc.cluster.local")
    assert r.rcode() == dns.rcode.NXDOMAIN


async def test_headless_service_without_ready_endpoints_is_nxdomain(cluster):
    cluster.api.create(SERVICES, svc("empty", headless=True), "default")
    r = await cluster.query("empty.default.svc.cluster.local")
    assert r.rcode() == dns.rcode.NXDOMAIN


async def test_should_provide_dns_for_srv_records_of_named_ports(cluster):
    r = await cluster.query("_http._tcp.web.default.svc.cluster.local", "SRV")
    assert [rd.to_text() for rd in r.answer[0]] == ["0 100 80 web.default.svc.cluster.local."]
    assert [(rs.name.to_text(), rd.to_text()) for rs in r.additional for rd in rs] == \
        [("web.default.svc.cluster.local.", "127.96.0.20")]
    r = await cluster.query("_web._tcp.nginx.default.svc.cluster.local", "SRV")
    assert sorted(rd.to_text() for rd in r.answer[0]) == [
        "0 50 80 10-244-0-6.nginx.default.svc.cluster.local.", "0 50 80 web-0.nginx.default.svc.cluster.local."]
    assert sorted(rd.to_text() for rs in r.additional for rd in rs) == ["10.244.0.5", "10.244.0.6"]
    # Every port of the Service when the name carries none.
    r = await cluster.query("web.default.svc.cluster.local", "SRV")
    assert sorted(rd.port for rd in r.answer[0]) == [80, 9100]
    for name in ("_nope._tcp.web.default.svc.cluster.local", "_http._udp.web.default.svc.cluster.local"):
        assert (await cluster.query(name, "SRV")).rcode() == dns.rcode.NXDOMAIN


async def test_should_provide_dns_for_ptr_records(cluster):
    r = await cluster.query(dns.reversename.from_address("127.96.0.20").to_text(), "PTR")
    assert [rd.to_text() for rd in r.answer[0]] == ["web.default.svc.cluster.local."]
    r = await cluster.query(dns.reversename.from_address("10.244.0.5").to_text(), "PTR")
    assert [rd.to_text() for rd in r.answer[0]] == ["web-0.nginx.default.svc.cluster.local."]
    r = await cluster.query(dns.reversename.from_address("10.244.0.6").to_text(), "PTR")
    assert [rd.to_text() for rd in r.answer[0]] == ["10-244-0-6.nginx.default.svc.cluster.local."]
    # Not ours and no upstream (the fixture has none): refused, never sent anywhere.
    r = await cluster.query(dns.reversename.from_address("192.0.2.1").to_text(), "PTR")
    assert r.rcode() == dns.rcode.REFUSED


async def test_should_provide_dns_for_pods_insecure(cluster):
    r = await cluster.query("10-244-1-5.default.pod.cluster.local")
    assert addresses(r) == ["10.244.1.5"]
    assert (await cluster.query("10-244-1-5.nons.pod.cluster.local")).rcode() == dns.rcode.NXDOMAIN
    assert (await cluster.query("not-an-ip.default.pod.cluster.local")).rcode() == dns.rcode.NXDOMAIN
    r = await cluster.query("10-244-1-5.default.pod.cluster.local", "AAAA")
    assert (r.rcode(), r.answer) == (dns.rcode.NOERROR, [])


async def test_should_provide_dns_for_externalname_services(cluster):
    cluster.api.create(SERVICES, svc("db", external="db.example.com"), "default")
    cluster.api.create(SERVICES, svc("alias", external="web.default.svc.cluster.local"), "default")
    r = await cluster.query("db.default.svc.cluster.local", "CNAME")
    assert [rd.to_text() for rd in r.answer[0]] == ["db.example.com."]
    # An in-zone target is followed here.
    r = await cluster.query("alias.default.svc.cluster.local")
    assert [rs.rdtype for rs in r.answer] == [dns.rdatatype.CNAME, dns.rdatatype.A]
    assert addresses(r) == ["127.96.0.20"]
    # An outside target needs an upstream; without one the answer is empty (as CoreDNS).
    r = await cluster.query("db.default.svc.cluster.local")
    assert (r.rcode(), r.answer) == (dns.rcode.NOERROR, [])


async def test_changes_reach_answers(cluster):
    assert addresses(await cluster.query("web.default.svc.cluster.local")) == ["127.96.0.20"]
    cluster.api.delete(SERVICES, "web", "default")
    assert (await cluster.query("web.default.svc.cluster.local")).rcode() == dns.rcode.NXDOMAIN


async def test_cached_answers_follow_changes_and_keep_the_query_id(cluster):
    q = dns.message.make_query("web.default.svc.cluster.local", "A")
    first = dns.message.from_wire(await cluster.server.handle(q.to_wire(), tcp=False))
    q.id = (q.id + 1) & 0xFFFF
    again = dns.message.from_wire(await cluster.server.handle(q.to_wire(), tcp=False))
    assert again.id == q.id and addresses(again) == addresses(first) == ["127.96.0.20"]
    cluster.api.delete(SERVICES, "web", "default")
    cluster.api.create(SERVICES, svc("web", ip="127.96.0.21"), "default")
    assert addresses(await cluster.query("web.default.svc.cluster.local")) == ["127.96.0.21"]


async def test_before_the_first_list_missing_names_are_servfail(cluster):
    cluster.index.synced = False
    assert (await cluster.query("nope.default.svc.cluster.local")).rcode() == dns.rcode.SERVFAIL


async def test_large_answers_are_truncated_over_udp_and_whole_over_tcp(cluster):
    cluster.api.create(SERVICES, svc("big", headless=True), "default")
    many = [ep(f"10.244.{i // 200}.{i % 200 + 1}") for i in range(100)]
    cluster.api.create(ENDPOINTSLICES, eps("big", many), "default")
    q = dns.message.make_query("big.default.svc.cluster.local", "A")
    wire = await cluster.server.handle(q.to_wire(), tcp=False)
    assert wire is not None and len(wire) <= 512
    r = dns.message.from_wire(wire)
    assert r.flags & dns.flags.TC
    assert 0 < len(addresses(r)) < 100
    r = await cluster.query("big.default.svc.cluster.local", tcp=True)
    assert not r.flags & dns.flags.TC
    assert len(addresses(r)) == 100
    # A client announcing a larger buffer with EDNS gets everything over UDP.
    q = dns.message.make_query("big.default.svc.cluster.local", "A", use_edns=0, payload=4096)
    r = dns.message.from_wire(await cluster.server.handle(q.to_wire(), tcp=False))
    assert not r.flags & dns.flags.TC and len(addresses(r)) == 100


# -- forwarding ----------------------------------------------------------------------------

class StubResolver:
    """An upstream on 127.0.0.x: answers A for names under example.com, NXDOMAIN otherwise."""

    def __init__(self):
        self.seen: list[tuple[str, bool]] = []

        class Answers:
            index = SimpleNamespace(generation=0)

            async def answer(inner, query):  # a tiny stand-in for Resolver
                q = query.question[0]
                resp = dns.message.make_response(query)
                resp.flags |= dns.flags.RA
                if q.name.is_subdomain(dns.name.from_text("example.com.")):
                    resp.answer.append(dns.rrset.from_text(q.name, 60, "IN", "A", "192.0.2.1"))
                else:
                    resp.set_rcode(dns.rcode.NXDOMAIN)
                return resp

            async def answer_cacheable(inner, query):
                return await inner.answer(query), False

        stub = self

        class Recording(DNSServer):
            def cached(self, wire, *, tcp):
                return None

            async def handle(self, wire, *, tcp):
                stub.seen.append((dns.message.from_wire(wire).question[0].name.to_text(), tcp))
                return await super().handle(wire, tcp=tcp)

        self.server = Recording(Answers(), Forwarder([]))
        self.address = ("", 0)

    async def start(self, host: str = "127.0.0.2") -> Upstream:
        self.address = await self.server.start(host, 0)
        return Upstream(*self.address)


@pytest.fixture
async def stub():
    s = StubResolver()
    yield s
    await s.server.stop()


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
async def test_other_names_are_forwarded_to_the_upstream(stub, tcp):
    up = await stub.start()
    c = await Cluster(upstreams=[up]).start()
    try:
        r = await c.query("www.example.com", tcp=tcp)
        assert addresses(r) == ["192.0.2.1"]
        assert stub.seen == [("www.example.com.", tcp)]
        assert (await c.query("nothing.invalid", tcp=tcp)).rcode() == dns.rcode.NXDOMAIN
        # Cluster names never reach the upstream.
        await c.query("nope.default.svc.cluster.local", tcp=tcp)
        assert [n for n, _ in stub.seen] == ["www.example.com.", "nothing.invalid."]
    finally:
        await c.server.stop()


async def test_externalname_outside_the_cluster_is_followed_through_the_upstream(stub):
    up = await stub.start()
    c = await Cluster(upstreams=[up]).start()
    try:
        c.api.create(SERVICES, svc("db", external="db.example.com"), "default")
        r = await c.query("db.default.svc.cluster.local")
        assert [rs.rdtype for rs in r.answer] == [dns.rdatatype.CNAME, dns.rdatatype.A]
        assert addresses(r) == ["192.0.2.1"]
    finally:
        await c.server.stop()


async def test_an_upstream_that_does_not_answer_gives_servfail():
    # A loopback port nobody serves: the forwarder gives up after its timeout.
    c = await Cluster(upstreams=[Upstream("127.0.0.3", 9)]).start()
    try:
        assert (await c.query("www.example.com")).rcode() == dns.rcode.SERVFAIL
    finally:
        await c.server.stop()


def test_offline_never_forwards_off_the_machine(tmp_path):
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver 192.0.2.53\nnameserver 127.0.0.53\n")
    # The node's resolvers, even a loopback one, forward off the machine: none offline.
    assert choose_upstreams([], offline=True, resolv_conf=str(conf)) == []
    assert choose_upstreams([], offline=False, resolv_conf=str(conf)) == [Upstream("192.0.2.53"), Upstream("127.0.0.53")]
    explicit = [parse_upstream("192.0.2.53"), parse_upstream("127.0.0.9:5353")]
    assert choose_upstreams(explicit, offline=True) == [Upstream("127.0.0.9", 5353)]
    # Never ourselves.
    assert choose_upstreams([Upstream("127.0.0.9", 53)], offline=True, own={Upstream("127.0.0.9", 53)}) == []


async def test_offline_names_outside_the_cluster_are_refused(cluster):
    r = await cluster.query("www.example.com")
    assert r.rcode() == dns.rcode.REFUSED


def test_parse_upstream():
    assert parse_upstream("10.0.0.1") == Upstream("10.0.0.1", 53)
    assert parse_upstream("127.0.0.1:5353") == Upstream("127.0.0.1", 5353)
    assert parse_upstream("[::1]:5353") == Upstream("::1", 5353)
    assert parse_upstream("::1") == Upstream("::1", 53)
    for bad in ("dns.google", "1.2.3.4:0", "1.2.3.4:x", "[::1]x"):
        with pytest.raises(ValueError):
            parse_upstream(bad)


async def test_malformed_queries_get_formerr_and_responses_are_ignored(cluster):
    q = dns.message.make_query("web.default.svc.cluster.local", "A").to_wire()
    out = await cluster.server.handle(q[:14], tcp=False)
    assert out is not None and dns.message.from_wire(out).rcode() == dns.rcode.FORMERR
    resp = dns.message.make_response(dns.message.from_wire(q)).to_wire()
    assert await cluster.server.handle(resp, tcp=False) is None
    assert await cluster.server.handle(b"\x00", tcp=False) is None


async def test_udp_and_tcp_share_one_port(cluster):
    # Both transports answer on the port start() returned.
    udp, tcp = await asyncio.gather(cluster.query("web.default.svc.cluster.local"),
                                    cluster.query("web.default.svc.cluster.local", tcp=True))
    assert addresses(udp) == addresses(tcp) == ["127.96.0.20"]
