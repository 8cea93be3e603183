"""The nftables ruleset the kernel data path generates, for representative Services."""
from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from kubelite.proxy.nftables import build_ruleset, table_name

TABLE = "kubelite_test"
CIDR = "10.96.0.0/20"
POD_CIDR = "10.244.3.0/24"


def svc(name: str, *, ip: str = "10.96.0.10", type_: str = "ClusterIP", ports: list[dict] | None = None,
        **spec: object) -> dict:
    return {"metadata": {"name": name, "namespace": "default"},
            "spec": {"type": type_, "clusterIP": ip, "ports": ports or [{"name": "http", "port": 80}], **spec}}


def ep(ip: str, *, ready: bool = True, serving: bool | None = None, terminating: bool = False,
       node: str = "n1") -> dict:
    cond: dict = {"ready": ready, "terminating": terminating}
    if serving is not None:
        cond["serving"] = serving
    return {"addresses": [ip], "conditions": cond, "nodeName": node}


def slc(service: str, endpoints: list[dict], *, port: int = 8080, name: str = "http", proto: str = "TCP",
        slice_name: str = "") -> dict:
    return {"metadata": {"name": slice_name or f"{service}-x", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": service}},
            "addressType": "IPv4", "ports": [{"name": name, "port": port, "protocol": proto}],
            "endpoints": endpoints}


def build(services: list[dict], slices: list[dict], **kw: object):
    return build_ruleset(TABLE, services, slices, node_name="n1", node_ips=["127.0.0.1"], pod_cidr=POD_CIDR,
                         service_cidr=CIDR, **kw)  # type: ignore[arg-type]


def dnats(text: str) -> list[str]:
    return sorted(re.findall(r"dnat to (\S+)", text))


def test_cluster_ip_balances_randomly_over_ready_endpoints_only():
    rs = build([svc("web")], [slc("web", [ep("10.244.3.2"), ep("10.244.3.3"), ep("10.244.3.4", ready=False)])])
    assert "10.96.0.10 . tcp . 80 : goto svc-" in rs.text
    assert "numgen random mod 2 vmap" in rs.text
    assert dnats(rs.text) == ["10.244.3.2:8080", "10.244.3.3:8080"]
    # A pod calling a pod of its own bridge, or itself, is masqueraded; loopback clients too.
    assert f"ip saddr {POD_CIDR} meta mark set meta mark | 0x4000" in rs.text
    assert "ip saddr 10.244.3.2 meta mark set" in rs.text
    assert "meta mark & 0x4000 == 0x4000 masquerade" in rs.text


def test_serving_terminating_endpoints_are_the_fallback_when_none_is_ready():
    eps = [ep("10.244.3.2", ready=False, serving=True, terminating=True),
           ep("10.244.3.3", ready=False, serving=False, terminating=True)]
    rs = build([svc("web")], [slc("web", eps)])
    assert dnats(rs.text) == ["10.244.3.2:8080"]
    rs = build([svc("web")], [slc("web", eps + [ep("10.244.3.9")])])
    assert dnats(rs.text) == ["10.244.3.9:8080"]  # a Ready one wins over every terminating one


def test_service_without_endpoints_is_rejected_at_once():
    rs = build([svc("none", type_="NodePort", ports=[{"name": "http", "port": 80, "nodePort": 30001}])], [])
    assert "goto svc-" not in rs.text and "dnat to" not in rs.text
    assert "ct state new ip daddr . meta l4proto . th dport { 10.96.0.10 . tcp . 80 } goto reject-chain" in rs.text
    assert "ct state new meta l4proto . th dport { tcp . 30001 } goto reject-chain" in rs.text
    assert "meta l4proto tcp reject with tcp reset" in rs.text
    # Anything else addressed to the range is refused too (nothing there may leave the host).
    assert f"ct state new ip daddr {CIDR} goto reject-chain" in rs.text


def test_node_port_matches_every_local_address_and_uses_the_external_chain():
    s = svc("web", type_="NodePort", ports=[{"name": "http", "port": 80, "nodePort": 30080}])
    rs = build([s], [slc("web", [ep("10.244.3.2")])])
    assert re.search(r"fib daddr type local meta l4proto \. th dport vmap \{ tcp \. 30080 : goto ext-\S+ \}", rs.text)
    assert re.search(r"chain ext-\S+ \{\n\t\tgoto ep-", rs.text)


def test_session_affinity_client_ip_keeps_clients_in_sets_with_the_timeout():
    s = svc("web", sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}})
    rs = build([s], [slc("web", [ep("10.244.3.2"), ep("10.244.3.3")])])
    assert len(rs.sets) == 2
    for name in rs.sets:
        assert f"set {name} {{ type ipv4_addr; flags dynamic,timeout; timeout 60s; }}" in rs.text
        assert f"update @{name} {{ ip saddr }}" in rs.text
        assert f"ip saddr @{name} goto ep-" in rs.text
    # The sticky lookups come before the random choice.
    chain = re.search(r"chain svc-\S+ \{\n(.*?)\n\t\}", rs.text, re.S)
    assert chain is not None
    lines = chain.group(1).splitlines()
    assert "numgen random" in lines[-1] and all("@aff-" in line for line in lines[:-1])


def test_traffic_policy_local_keeps_this_nodes_endpoints():
    s = svc("web", type_="NodePort", ports=[{"name": "http", "port": 80, "nodePort": 30080}],
            internalTrafficPolicy="Local", externalTrafficPolicy="Local")
    rs = build([s], [slc("web", [ep("10.244.3.2", node="n1"), ep("10.244.9.2", node="n2")])])
    assert dnats(rs.text) == ["10.244.3.2:8080"]
    s["spec"]["internalTrafficPolicy"] = "Cluster"
    rs = build([s], [slc("web", [ep("10.244.3.2", node="n1"), ep("10.244.9.2", node="n2")])])
    svc_chain = re.search(r"chain svc-\S+ \{\n(.*?)\n\t\}", rs.text, re.S)
    ext_chain = re.search(r"chain ext-\S+ \{\n(.*?)\n\t\}", rs.text, re.S)
    assert svc_chain is not None and ext_chain is not None
    assert "numgen random mod 2" in svc_chain.group(1)
    assert "numgen" not in ext_chain.group(1)
    # Only local endpoints exist on n1 for external traffic, none for a node without any.
    rs = build_ruleset(TABLE, [s], [slc("web", [ep("10.244.9.2", node="n2")])], node_name="n1",
                       node_ips=["127.0.0.1"], pod_cidr=POD_CIDR, service_cidr=CIDR)
    assert "ct state new meta l4proto . th dport { tcp . 30080 } goto reject-chain" in rs.text


def test_named_target_ports_take_each_slices_port_number():
    s = svc("web", ports=[{"name": "http", "port": 80, "targetPort": "web"}])
    rs = build([s], [slc("web", [ep("10.244.3.2")], port=8080, slice_name="a"),
                     slc("web", [ep("10.244.3.3")], port=9090, slice_name="b")])
    assert dnats(rs.text) == ["10.244.3.2:8080", "10.244.3.3:9090"]


def test_udp_headless_and_external_name():
    dns = svc("dns", ports=[{"name": "dns", "port": 53, "protocol": "UDP"},
                            {"name": "dns-tcp", "port": 53, "protocol": "TCP"}])
    rs = build([dns, svc("headless", ip="None"), svc("ext", ip="", type_="ExternalName", externalName="a.b")],
               [slc("dns", [ep("10.244.3.5")], port=53, name="dns", proto="UDP"),
                slc("dns", [ep("10.244.3.5")], port=53, name="dns-tcp", slice_name="dns-t")])
    assert "10.96.0.10 . udp . 53 : goto svc-" in rs.text and "10.96.0.10 . tcp . 53 : goto svc-" in rs.text
    assert "meta l4proto udp dnat to 10.244.3.5:53" in rs.text
    assert rs.udp_flows == {("10.96.0.10:53", "10.244.3.5")}
    assert "headless" not in rs.text and "/ext/" not in rs.text


def test_first_sync_replaces_the_table_later_syncs_remove_what_went():
    s = svc("web", sessionAffinity="ClientIP")
    first = build([s], [slc("web", [ep("10.244.3.2"), ep("10.244.3.3")])])
    assert first.text.startswith(f"add table ip {TABLE}\ndelete table ip {TABLE}\n")
    second = build([s], [slc("web", [ep("10.244.3.2")])], previous=first)
    assert f"delete table ip {TABLE}" not in second.text
    assert f"flush table ip {TABLE}" in second.text
    gone_chain = next(c for c in first.chains - second.chains)
    gone_set = next(iter(first.sets - second.sets))
    assert "10.244.3.3" in gone_chain and "10.244.3.3" in gone_set
    assert f"delete chain ip {TABLE} {gone_chain}" in second.text
    assert f"delete set ip {TABLE} {gone_set}" in second.text
    # The set still wanted is not deleted: sticky clients stay where they are.
    assert "10.244.3.2" not in "".join(line for line in second.text.splitlines() if line.startswith("delete"))


def test_table_name_follows_the_service_range():
    assert table_name("10.96.16.0/20") == "kubelite_10_96_16_0_20"
    assert table_name("10.96.16.0/20") != table_name("10.96.0.0/20")


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("nft") is None, reason="nft -c needs root and nftables")
def test_generated_ruleset_is_accepted_by_nft():
    s = svc("web", type_="NodePort", ports=[{"name": "http", "port": 80, "nodePort": 30080},
                                            {"name": "dns", "port": 53, "protocol": "UDP"}],
            sessionAffinity="ClientIP", externalIPs=["127.0.0.1"])
    first = build([s, svc("none", ip="10.96.0.11")], [slc("web", [ep("10.244.3.2"), ep("10.244.3.3")])])
    for text in (first.text, build([s], []).text):
        # -c: checked by the kernel in a transaction that is never committed.
        p = subprocess.run(["nft", "-c", "-f", "-"], input=text, capture_output=True, text=True)
        assert p.returncode == 0, p.stderr + text


def test_udp_flows_of_a_gone_endpoint_are_forgotten_in_conntrack(monkeypatch):
    import asyncio

    from kubelite.proxy import nftables

    dns = svc("dns", type_="NodePort", ports=[{"name": "dns", "port": 53, "protocol": "UDP", "nodePort": 30053}])
    before = build([dns], [slc("dns", [ep("10.244.3.5"), ep("10.244.3.6")], port=53, name="dns", proto="UDP")])
    after = build([dns], [slc("dns", [ep("10.244.3.5")], port=53, name="dns", proto="UDP")], previous=before)
    gone = nftables._udp_flows(before) - nftables._udp_flows(after)
    assert gone == {("10.96.0.10:53", "10.244.3.6"), (":30053", "10.244.3.6")}

    calls: list[tuple[str, ...]] = []

    class Done:
        async def wait(self) -> int:
            return 0

    async def fake_exec(*argv: str, **kw: object) -> Done:
        calls.append(argv)
        return Done()
    monkeypatch.setattr(nftables.shutil, "which", lambda name: "/usr/sbin/" + name)
    monkeypatch.setattr(nftables.asyncio, "create_subprocess_exec", fake_exec)
    asyncio.run(nftables._forget_udp_flows(gone))
    assert sorted(calls) == [
        ("conntrack", "-D", "-p", "udp", "--dst-nat", "10.244.3.6", "--orig-dst", "10.96.0.10",
         "--orig-port-dst", "53"),
        ("conntrack", "-D", "-p", "udp", "--dst-nat", "10.244.3.6", "--orig-port-dst", "30053"),
    ]


def test_udp_fronts_without_endpoints_are_listed_and_an_unchanged_view_changes_nothing():
    dns = svc("dns", type_="NodePort", ports=[{"name": "dns", "port": 53, "protocol": "UDP", "nodePort": 30053}])
    empty = build([dns], [])
    assert empty.udp_unserved == {"10.96.0.10:53", ":30053"}
    served = build([dns], [slc("dns", [ep("10.244.3.5")], port=53, name="dns", proto="UDP")], previous=empty)
    assert served.udp_unserved == set()
    again = build([dns], [slc("dns", [ep("10.244.3.5")], port=53, name="dns", proto="UDP")], previous=served)
    assert again.body == served.body and again.text != empty.text


def test_terminating_endpoints_are_found_by_pod_uid_for_the_in_flight_wait():
    from kubelite.proxy.nftables import _terminating_addresses
    slices = [{"endpoints": [
        {"addresses": ["10.244.0.5"], "targetRef": {"kind": "Pod", "uid": "u-old"},
         "conditions": {"ready": False, "serving": True, "terminating": True}},
        {"addresses": ["10.244.0.6"], "targetRef": {"kind": "Pod", "uid": "u-new"},
         "conditions": {"ready": True, "serving": True, "terminating": False}},
        {"addresses": ["10.244.0.7"], "conditions": {"terminating": True}},  # no pod behind it
    ]}, {"endpoints": None}]
    assert _terminating_addresses(slices) == {"u-old": {"10.244.0.5"}}


def test_clients_outside_the_pod_network_are_masqueraded_to_endpoints_on_other_nodes():
    """A NodePort client on another host would get the reply straight from the endpoint's node."""
    s = svc("web", type_="NodePort", ports=[{"name": "http", "port": 80, "nodePort": 30080}])
    rs = build([s], [slc("web", [ep("10.244.3.2", node="n1"), ep("10.244.90.2", node="n2")])])
    local = re.search(r"chain ep-\S+10\.244\.3\.2_8080 \{\n(.*?)\n\t\}", rs.text, re.S)
    remote = re.search(r"chain ep-\S+10\.244\.90\.2_8080 \{\n(.*?)\n\t\}", rs.text, re.S)
    assert local is not None and remote is not None
    assert "saddr !=" not in local.group(1)
    # Outside the cluster CIDR (every node's pods), not this node's pods alone: pods keep their addresses.
    assert "ip saddr != 10.244.0.0/16 meta mark set meta mark | 0x4000" in remote.group(1)
    assert f"ip saddr {POD_CIDR} meta" not in remote.group(1)


def test_a_flow_still_opening_or_half_closed_keeps_a_terminating_pod_busy():
    from kubelite.proxy.nftables import has_open_tcp_flow
    row = ("tcp      6 {t} {state} src=10.0.0.1 dst=10.96.0.9 sport=5 dport=80 "
           "src=10.244.0.7 dst=10.0.0.1 sport=80 dport=5 mark=0 use=1")
    for state in ("SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT"):
        assert has_open_tcp_flow(row.format(t=117, state=state)), state
    for state in ("TIME_WAIT", "CLOSE", "LAST_ACK"):
        assert not has_open_tcp_flow(row.format(t=117, state=state)), state
    assert not has_open_tcp_flow("")
    assert not has_open_tcp_flow("conntrack v1.4.7 (conntrack-tools): 0 flow entries have been shown.\n")
    both = row.format(t=1, state="TIME_WAIT") + "\n" + row.format(t=2, state="SYN_RECV")
    assert has_open_tcp_flow(both)


def test_a_flow_dialled_straight_to_the_pod_does_not_hold_its_drain():
    # Not translated by a Service (reply source == original destination): a direct
    # connection, or one left ESTABLISHED by an earlier pod that had the same address.
    from kubelite.proxy.nftables import has_open_tcp_flow
    direct = ("tcp 6 390912 ESTABLISHED src=10.244.1.1 dst=10.244.1.2 sport=44340 dport=8080 "
              "src=10.244.1.2 dst=10.244.1.1 sport=8080 dport=44340 [ASSURED] mark=0 use=1")
    assert not has_open_tcp_flow(direct)
    via_node_port = ("tcp 6 431999 ESTABLISHED src=10.244.1.1 dst=127.0.0.1 sport=44341 dport=31568 "
                     "src=10.244.1.2 dst=10.244.1.1 sport=8080 dport=44341 [ASSURED] mark=0 use=1")
    assert has_open_tcp_flow(direct + "\n" + via_node_port)


def test_a_failed_conntrack_listing_keeps_a_terminating_pod_busy(tmp_path, monkeypatch):
    # A listing that fails shows no flows; that must not read as "nothing open" (the pod
    # would be signalled while it still answers), only a listing that worked may.
    import asyncio

    from kubelite.proxy.nftables import _open_flows_to
    fake = tmp_path / "conntrack"
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    fake.write_text("#!/bin/sh\necho 'conntrack v1.4.7 (conntrack-tools): Operation failed: Interrupted system call' >&2\n"
                    "exit 1\n")
    fake.chmod(0o755)
    assert asyncio.run(_open_flows_to({"10.244.0.7"})) is True
    fake.write_text("#!/bin/sh\necho 'conntrack v1.4.7 (conntrack-tools): 0 flow entries have been shown.' >&2\n")
    assert asyncio.run(_open_flows_to({"10.244.0.7"})) is False
    fake.write_text("#!/bin/sh\necho 'tcp 6 117 SYN_RECV src=10.0.0.1 dst=10.96.0.9 sport=5 dport=80 "
                    "src=10.244.0.7 dst=10.0.0.1 sport=80 dport=5 mark=0 use=1'\n")
    assert asyncio.run(_open_flows_to({"10.244.0.7"})) is True
