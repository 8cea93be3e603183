"""Cluster DNS against a real `kubelite server`, driven with the real kubectl 1.33.

The server runs the fake runtime, so every pod address is a loopback address and the DNS
listener is on the node slot's 127.x address; the test reads that address from the
kube-dns EndpointSlice and queries it directly with dnspython.  No pod is ever dialled:
the assertions compare DNS answers with what the API says.
"""
from __future__ import annotations

import ipaddress
import json

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.reversename
import pytest
from conftest import create_namespace, start_server
from nodeharness import apply, pod

LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    """A whole cluster whose node runs the fake runtime (loopback pod addresses)."""
    srv = start_server(tmp_path_factory.mktemp("dns"), "--runtime", "fake")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def listener(fake):
    """The address and port of the server's DNS listener, from the kube-dns EndpointSlice."""
    eps = fake.wait_for(lambda: fake.kjson("get", "endpointslice", "kube-dns", "-n", "kube-system"),
                        what="the kube-dns EndpointSlice")
    addr = eps["endpoints"][0]["addresses"][0]
    # The network rule: only ever query a loopback address.
    assert ipaddress.ip_address(addr) in LOOPBACK, addr
    port = next(p["port"] for p in eps["ports"] if p["protocol"] == "UDP")
    return addr, port


@pytest.fixture
def ns(request, fake):
    return create_namespace(fake, request, "d")


def ask(listener, name: str, rdtype: str = "A", *, tcp: bool = False) -> dns.message.Message:
    q = dns.message.make_query(name, rdtype)
    addr, port = listener
    if tcp:
        return dns.query.tcp(q, addr, port=port, timeout=5)
    return dns.query.udp(q, addr, port=port, timeout=5)


def service_ip(server, n: int) -> str:
    """The n-th address of the server's own service range (each server claims a block)."""
    cidr = (server.data_dir / "service-cidr").read_text().strip()
    return str(ipaddress.ip_network(cidr).network_address + n)


def records(resp: dns.message.Message, rdtype: int = dns.rdatatype.A) -> list[str]:
    return sorted(rd.to_text() for rs in resp.answer if rs.rdtype == rdtype for rd in rs)


def test_kube_dns_service_in_kube_system(fake, listener):
    svc = fake.kjson("get", "service", "kube-dns", "-n", "kube-system")
    assert svc["metadata"]["labels"]["k8s-app"] == "kube-dns"
    assert svc["spec"]["clusterIP"] == service_ip(fake, 10)  # the 10th address of the service range
    assert ipaddress.ip_address(service_ip(fake, 10)) in ipaddress.ip_network("127.96.0.0/12")
    assert [(p["name"], p["port"], p["protocol"]) for p in svc["spec"]["ports"]] == [
        ("dns", 53, "UDP"), ("dns-tcp", 53, "TCP"), ("metrics", 9153, "TCP")]
    ep = fake.kjson("get", "endpoints", "kube-dns", "-n", "kube-system")
    assert ep["subsets"][0]["addresses"] == [{"ip": listener[0]}]
    r = ask(listener, "kube-dns.kube-system.svc.cluster.local")
    assert records(r) == [service_ip(fake, 10)]
    r = ask(listener, "kubernetes.default.svc.cluster.local", tcp=True)
    assert records(r) == [service_ip(fake, 1)]


def test_should_provide_dns_for_services(fake, listener, ns):
    web = pod("web-1")
    web["metadata"]["labels"] = {"app": "web"}
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
           "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}
    apply(fake, ns, web, svc)
    ip = fake.kjson("get", "service", "web", "-n", ns)["spec"]["clusterIP"]
    # The DNS server learns of the Service through its watch, a moment after kubectl returns.
    fake.wait_for(lambda: records(ask(listener, f"web.{ns}.svc.cluster.local")) == [ip], what="the Service in DNS")
    for tcp in (False, True):
        r = ask(listener, f"web.{ns}.svc.cluster.local", tcp=tcp)
        assert (r.rcode(), records(r)) == (dns.rcode.NOERROR, [ip])
    r = ask(listener, f"_http._tcp.web.{ns}.svc.cluster.local", "SRV")
    assert records(r, dns.rdatatype.SRV) == [f"0 100 80 web.{ns}.svc.cluster.local."]
    r = ask(listener, dns.reversename.from_address(ip).to_text(), "PTR")
    assert records(r, dns.rdatatype.PTR) == [f"web.{ns}.svc.cluster.local."]
    r = ask(listener, f"web.{ns}.svc.cluster.local", "AAAA")
    assert (r.rcode(), r.answer, [rs.rdtype for rs in r.authority]) == (dns.rcode.NOERROR, [], [dns.rdatatype.SOA])
    r = ask(listener, f"nope.{ns}.svc.cluster.local")
    assert (r.rcode(), [rs.rdtype for rs in r.authority]) == (dns.rcode.NXDOMAIN, [dns.rdatatype.SOA])
    # A deleted Service is gone from DNS.
    fake.kubectl("delete", "service", "web", "-n", ns, check=True)
    fake.wait_for(lambda: ask(listener, f"web.{ns}.svc.cluster.local").rcode() == dns.rcode.NXDOMAIN,
                  what="NXDOMAIN for the deleted Service")


def test_should_provide_dns_for_pods_for_hostname_and_subdomain(fake, listener, ns):
    pods = []
    for i in range(2):
        p = pod(f"db-{i}", spec={"hostname": f"db-{i}", "subdomain": "db"})
        p["metadata"]["labels"] = {"app": "db"}
        pods.append(p)
    headless = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db"},
                "spec": {"clusterIP": "None", "selector": {"app": "db"},
                         "ports": [{"name": "tcp-db", "port": 5432, "targetPort": 5432}]}}
    apply(fake, ns, *pods, headless)
    ips = fake.wait_for(lambda: (got := {p["metadata"]["name"]: p["status"].get("podIP")
                                         for p in fake.kjson("get", "pods", "-n", ns)["items"]})
                        and all(got.get(f"db-{i}") for i in range(2)) and got, what="pod IPs")
    # Every ready endpoint, once the endpoints controller has published them.
    fake.wait_for(lambda: records(ask(listener, f"db.{ns}.svc.cluster.local")) == sorted(ips.values()),
                  what="one A record per ready pod of the headless Service")
    r = ask(listener, f"db-0.db.{ns}.svc.cluster.local")
    assert records(r) == [ips["db-0"]]
    r = ask(listener, f"_tcp-db._tcp.db.{ns}.svc.cluster.local", "SRV", tcp=True)
    assert records(r, dns.rdatatype.SRV) == [f"0 50 5432 db-{i}.db.{ns}.svc.cluster.local." for i in range(2)]
    r = ask(listener, dns.reversename.from_address(ips["db-1"]).to_text(), "PTR")
    assert records(r, dns.rdatatype.PTR) == [f"db-1.db.{ns}.svc.cluster.local."]
    dashed = ips["db-0"].replace(".", "-")
    assert records(ask(listener, f"{dashed}.{ns}.pod.cluster.local")) == [ips["db-0"]]


def test_should_provide_dns_for_externalname_services(fake, listener, ns):
    fake.kubectl("create", "service", "externalname", "ext", "--external-name", "db.example.com", "-n", ns, check=True)
    fake.wait_for(lambda: records(ask(listener, f"ext.{ns}.svc.cluster.local", "CNAME"), dns.rdatatype.CNAME)
                  == ["db.example.com."], what="the ExternalName Service's CNAME")
    # Tests run offline: a name outside the cluster is refused, never forwarded.
    assert ask(listener, "db.example.com").rcode() == dns.rcode.REFUSED


# -- resolv.conf with the process runtime ---------------------------------------------------

@pytest.fixture(scope="module")
def host(tmp_path_factory):
    """A cluster whose pods are host processes on 127.x addresses."""
    srv = start_server(tmp_path_factory.mktemp("dnshost"), "--runtime", "process", "--network", "host")
    yield srv
    srv.stop()


def test_pod_resolv_conf_follows_dns_policy(host, request):
    ns = create_namespace(host, request, "r")
    cmd = ["sh", "-c", "sleep 3600"]
    pods = [pod("first", command=cmd),
            pod("default", command=cmd, spec={"dnsPolicy": "Default"}),
            pod("none", command=cmd, spec={"dnsPolicy": "None",
                                           "dnsConfig": {"nameservers": ["192.0.2.10"], "searches": ["a.example"],
                                                         "options": [{"name": "ndots", "value": "2"}]}})]
    apply(host, ns, *pods)
    uids = {p["metadata"]["name"]: p["metadata"]["uid"] for p in host.kjson("get", "pods", "-n", ns)["items"]}

    def text(name: str) -> str:
        return (host.data_dir / "agent" / "pods" / uids[name] / "resolv.conf").read_text()

    first = host.wait_for(lambda: text("first"), what="the pod's resolv.conf")
    assert first.startswith(f"search {ns}.svc.cluster.local svc.cluster.local cluster.local")
    assert f"nameserver {service_ip(host, 10)}\n" in first and first.endswith("options ndots:5\n")
    assert service_ip(host, 10) not in host.wait_for(lambda: text("default") or "(empty)", what="Default resolv.conf")
    assert host.wait_for(lambda: text("none"), what="None resolv.conf") == (
        "search a.example\nnameserver 192.0.2.10\noptions ndots:2\n")
    bad = json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bad"},
                      "spec": {"dnsPolicy": "None", "containers": [{"name": "c", "image": "x"}]}})
    out = host.kubectl("apply", "-n", ns, "-f", "-", input=bad)
    assert out.returncode != 0
    assert "spec.dnsConfig: Required value: must provide `dnsConfig` when `dnsPolicy` is None" in out.stderr
    host.kubectl("delete", "pods", "--all", "-n", ns, "--grace-period=0", "--force", "--wait=true", timeout=60)
