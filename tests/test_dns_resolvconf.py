"""A pod's resolv.conf for each dnsPolicy, dnsConfig merging, the kubelet's limits, and the
API server's dnsConfig validation (messages as upstream's)."""
from __future__ import annotations

import pytest

from kubelite.api.defaults import admit_pod, apply_defaults
from kubelite.api.validation import validate
from kubelite.dns.component import endpoint_objects, kube_dns_ip, service_object
from kubelite.dns.resolvconf import PodDNS, parse_resolv_conf

HOST = "# the node's\nnameserver 192.0.2.53\nnameserver 192.0.2.54\nsearch corp.example. lab.example\noptions edns0 attempts:2\n"


@pytest.fixture
def node(tmp_path):
    path = tmp_path / "resolv.conf"
    path.write_text(HOST)
    return PodDNS(["127.96.0.10"], "cluster.local", str(path))


def pod(ns="web", **spec):
    return {"metadata": {"name": "p", "namespace": ns}, "spec": spec}


def test_parse_resolv_conf():
    cfg = parse_resolv_conf(HOST + "search a.example\n")
    assert cfg.nameservers == ["192.0.2.53", "192.0.2.54"]
    assert cfg.searches == ["a.example"]  # the last search line wins
    assert cfg.options == ["edns0", "attempts:2"]


def test_cluster_first(node):
    assert node.render(pod(dnsPolicy="ClusterFirst")) == (
        "search web.svc.cluster.local svc.cluster.local cluster.local corp.example lab.example\n"
        "nameserver 127.96.0.10\n"
        "options ndots:5\n")


def test_cluster_first_on_the_host_network_is_default(node):
    text = node.render(pod(dnsPolicy="ClusterFirst", hostNetwork=True))
    assert text == ("search corp.example lab.example\nnameserver 192.0.2.53\nnameserver 192.0.2.54\n"
                    "options edns0 attempts:2\n")
    assert node.render(pod(dnsPolicy="Default")) == text


def test_cluster_first_with_host_net(node):
    text = node.render(pod(dnsPolicy="ClusterFirstWithHostNet", hostNetwork=True))
    assert text.splitlines()[:2] == ["search web.svc.cluster.local svc.cluster.local cluster.local corp.example "
                                     "lab.example", "nameserver 127.96.0.10"]


def test_none_takes_only_dns_config(node):
    p = pod(dnsPolicy="None", dnsConfig={"nameservers": ["192.0.2.1"], "searches": ["my.example"],
                                         "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]})
    assert node.render(p) == "search my.example\nnameserver 192.0.2.1\noptions ndots:2 edns0\n"


def test_dns_config_merges_into_cluster_first(node):
    p = pod(dnsConfig={"nameservers": ["192.0.2.1", "127.96.0.10"], "searches": ["cluster.local", "x.example"],
                       "options": [{"name": "ndots", "value": "1"}, {"name": "single-request"}]})
    cfg, warnings = node.for_pod(p)
    assert cfg.nameservers == ["127.96.0.10", "192.0.2.1"]
    assert cfg.searches == ["web.svc.cluster.local", "svc.cluster.local", "cluster.local", "corp.example",
                            "lab.example", "x.example"]
    assert cfg.options == ["ndots:1", "single-request"]  # dnsConfig's ndots replaces the default
    assert warnings == []


def test_without_a_cluster_dns_address_cluster_first_falls_back_to_default(tmp_path):
    path = tmp_path / "resolv.conf"
    path.write_text(HOST)
    cfg, warnings = PodDNS([], "cluster.local", str(path)).for_pod(pod(dnsPolicy="ClusterFirst"))
    assert cfg.nameservers == ["192.0.2.53", "192.0.2.54"]
    assert warnings and "Falling back to \"Default\" policy" in warnings[0]


def test_kubelet_limits_cut_and_warn(node):
    p = pod(dnsPolicy="None", dnsConfig={"nameservers": ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"],
                                         "searches": [f"s{i}.example" for i in range(40)]})
    cfg, warnings = node.for_pod(p)
    assert cfg.nameservers == ["192.0.2.1", "192.0.2.2", "192.0.2.3"]
    assert len(cfg.searches) == 32
    assert warnings == [
        "Nameserver limits were exceeded, some nameservers have been omitted, the applied nameserver line is: "
        "192.0.2.1 192.0.2.2 192.0.2.3",
        "Search Line limits were exceeded, some search paths have been omitted, the applied search line is: "
        + " ".join(f"s{i}.example" for i in range(32))]
    long = ["a" * 60 + f".e{i}" for i in range(32)]  # 32 names, 2 k characters with spaces
    cfg, _ = node.for_pod(pod(dnsPolicy="None", dnsConfig={"nameservers": ["192.0.2.1"], "searches": long}))
    assert len(" ".join(cfg.searches)) <= 2048 and cfg.searches == long[:len(cfg.searches)]


def test_offline_pods_get_none_of_the_nodes_resolvers(tmp_path):
    path = tmp_path / "resolv.conf"
    path.write_text(HOST + "nameserver 127.0.0.53\n")
    cfg, _ = PodDNS([], resolv_conf=str(path), offline=True).for_pod(pod(dnsPolicy="Default"))
    assert cfg.nameservers == ["127.0.0.53"]
    assert cfg.searches == ["corp.example", "lab.example"]


def test_unreadable_host_resolv_conf_gives_an_empty_default(tmp_path):
    assert PodDNS(["127.96.0.10"], resolv_conf=str(tmp_path / "none")).render(pod(dnsPolicy="Default")) == ""


# -- the API server's validation ----------------------------------------------------------

def api_pod(**spec):
    p = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
         "spec": {"containers": [{"name": "c", "image": "x:1"}]}}
    p["spec"].update(spec)
    apply_defaults("Pod", "v1", p)
    admit_pod(p, token_volume=False)
    return [(c.field, c.message) for c in validate("Pod", "v1", p, None)]


@pytest.mark.parametrize("spec,expected", [
    ({"dnsPolicy": "None"},
     [("spec.dnsConfig", "Required value: must provide `dnsConfig` when `dnsPolicy` is None")]),
    ({"dnsPolicy": "None", "dnsConfig": {"searches": ["a.example"]}},
     [("spec.dnsConfig.nameservers", "Required value: must provide at least one DNS nameserver when `dnsPolicy` is None")]),
    ({"dnsConfig": {"nameservers": ["1.1.1.1", "1.1.1.2", "1.1.1.3", "1.1.1.4"]}},
     [("spec.dnsConfig.nameservers", 'Invalid value: []string{"1.1.1.1", "1.1.1.2", "1.1.1.3", "1.1.1.4"}: '
                                     "must not have more than 3 nameservers")]),
    ({"dnsConfig": {"nameservers": ["dns.example"]}},
     [("spec.dnsConfig.nameservers[0]", 'Invalid value: "dns.example": must be a valid IP address, '
                                        "(e.g. 10.9.8.7 or 2001:db8::ffff)")]),
    ({"dnsConfig": {"searches": ["Bad_Name"]}},
     [("spec.dnsConfig.searches[0]", 'Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain must consist of lower '
                                     "case alphanumeric characters, '-' or '.', and must start and end with an "
                                     "alphanumeric character (e.g. 'example.com', regex used for validation is "
                                     "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")]),
    ({"dnsConfig": {"options": [{"value": "1"}]}},
     [("spec.dnsConfig.options[0]", "Required value: Option.Name must not be empty")]),
])
def test_dns_config_validation(spec, expected):
    assert api_pod(**spec) == expected


def test_dns_config_search_limits():
    errs = api_pod(dnsConfig={"searches": [f"s{i}.example" for i in range(33)]})
    assert [f for f, _ in errs] == ["spec.dnsConfig.searches"]
    assert errs[0][1].endswith("must not have more than 32 search paths")
    errs = api_pod(dnsConfig={"searches": ["a" * 63 + "." + "b" * 63 + f".x{i}" for i in range(16)]})
    assert [m.split(": ")[-1] for _, m in errs] == [
        "must not have more than 2048 characters (including spaces) in the search list"]
    # A trailing dot is fine, and a valid dnsConfig passes.
    assert api_pod(dnsPolicy="None", dnsConfig={"nameservers": ["192.0.2.1"], "searches": ["ok.example."],
                                                "options": [{"name": "ndots", "value": "2"}]}) == []


# -- the kube-dns objects -----------------------------------------------------------------

def test_kube_dns_service_is_at_the_tenth_address_with_upstreams_ports():
    assert kube_dns_ip("127.96.0.0/16") == "127.96.0.10"
    assert kube_dns_ip("10.43.0.0/16") == "10.43.0.10"
    svc = service_object("10.43.0.10")
    assert svc["metadata"]["labels"]["k8s-app"] == "kube-dns"
    assert [(p["name"], p["port"], p["protocol"]) for p in svc["spec"]["ports"]] == [
        ("dns", 53, "UDP"), ("dns-tcp", 53, "TCP"), ("metrics", 9153, "TCP")]
    ep, eps = endpoint_objects("127.3.255.254", 10053)
    assert eps["endpoints"][0]["addresses"] == ["127.3.255.254"]
    assert {(p["name"], p["port"]) for p in eps["ports"]} == {("dns", 10053), ("dns-tcp", 10053)}
    assert validate("Endpoints", "v1", {**ep, "metadata": {**ep["metadata"]}}, None) == []
