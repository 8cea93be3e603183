"""NetworkPolicy rule generation: selectors → address sets → nftables rules (no kernel needed,
except for the one check that nft accepts the generated text)."""
from __future__ import annotations

import ipaddress
import os
import re
import shutil
import subprocess
from typing import Any

import pytest

from kubelite.api.defaults import apply_defaults
from kubelite.api.validation import validate
from kubelite.netpol.rules import build_ruleset, table_name

Obj = dict[str, Any]
TABLE = "kubelite_np_unit"


def pod(name: str, ip: str, ns: str = "default", ports: list[Obj] | None = None, **labels: str) -> Obj:
    return {"metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {"containers": [{"name": "c", "ports": ports or []}]},
            "status": {"podIP": ip, "phase": "Running"}}


def namespace(name: str, **labels: str) -> Obj:
    return {"metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name, **labels}}}


def policy(name: str, spec: Obj, ns: str = "default") -> Obj:
    obj = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
           "metadata": {"name": name, "namespace": ns}, "spec": spec}
    apply_defaults("NetworkPolicy", "networking.k8s.io/v1", obj)
    return obj


NAMESPACES = [namespace("default"), namespace("other", team="blue"), namespace("third")]
PODS = [pod("server", "10.244.7.2", app="server", ports=[{"name": "serve-80", "containerPort": 80}]),
        pod("client-a", "10.244.7.3", app="client", role="a"),
        pod("client-b", "10.244.7.4", app="client", role="b"),
        pod("remote", "10.244.7.5", ns="other", app="client"),
        pod("far", "10.244.7.6", ns="third", app="client")]


def ip_table(text: str) -> str:
    return text[text.index(f"table ip {TABLE} {{"):]


def set_elements(text: str, prefix: str) -> list[set[str]]:
    """Elements of every set whose name starts with ``prefix`` in the ip table, in order."""
    out = []
    for m in re.finditer(r"set (" + re.escape(prefix) + r"\S*) \{([^\n]*)\}", ip_table(text)):
        el = re.search(r"elements = \{ ([^}]*) \}", m.group(2))
        out.append({e.strip() for e in el.group(1).split(",")} if el else set())
    return out


def chain_rules(text: str, prefix: str) -> list[str]:
    """Rules of the first ip-table chain whose name starts with ``prefix``."""
    m = re.search(r"\tchain " + re.escape(prefix) + r"\S* \{\n(.*?)\t\}", ip_table(text), re.S)
    assert m, f"no chain {prefix}"
    return [line.strip() for line in m.group(1).splitlines() if line.strip() and not line.strip().startswith("type ")]


def addresses(elements: set[str]) -> set[str]:
    """Every address an interval set's elements cover (they are merged, so 10.244.7.2/31 stands for two)."""
    return {str(a) for e in elements for a in ipaddress.ip_network(e)}


def build(*policies: Obj, pods: list[Obj] = PODS, bridge: bool = True) -> str:
    return build_ruleset(TABLE, policies, pods, NAMESPACES, bridge=bridge).text


def test_without_policies_no_pod_is_isolated():
    text = build()
    assert set_elements(text, "ingress-isolated") == [set()]
    assert set_elements(text, "egress-isolated") == [set()]
    assert "ip daddr != @ingress-isolated accept" in chain_rules(text, "ingress")


def test_should_support_a_default_deny_ingress_policy():
    text = build(policy("deny", {"podSelector": {}}))
    # Every pod of the policy's namespace, and none elsewhere.
    assert set_elements(text, "ingress-isolated") == [{"10.244.7.2", "10.244.7.3", "10.244.7.4"}]
    assert set_elements(text, "egress-isolated") == [set()]  # policyTypes defaulted to Ingress only
    assert chain_rules(text, "in-") == []
    assert chain_rules(text, "ingress")[-1] == "drop"


def test_an_isolated_pod_still_reaches_itself():
    text = build(policy("deny", {"podSelector": {"matchLabels": {"app": "server"}}}))
    assert set_elements(text, "own") == [{"10.244.7.2 . 10.244.7.2"}]
    assert "ip saddr . ip daddr @own accept" in chain_rules(text, "ingress")


def test_should_support_a_default_deny_egress_policy():
    text = build(policy("deny", {"podSelector": {}, "policyTypes": ["Egress"]}))
    assert set_elements(text, "egress-isolated") == [{"10.244.7.2", "10.244.7.3", "10.244.7.4"}]
    assert set_elements(text, "ingress-isolated") == [set()]
    assert "fib daddr type local accept" in chain_rules(text, "egress")  # the own node stays reachable


def test_should_enforce_policy_to_allow_traffic_only_from_a_pod_in_the_same_namespace_based_on_podselector():
    text = build(policy("allow-a", {"podSelector": {"matchLabels": {"app": "server"}},
                                    "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "a"}}}]}]}))
    assert set_elements(text, "ingress-isolated") == [{"10.244.7.2"}]
    assert set_elements(text, "peer-") == [{"10.244.7.3"}]
    [rule] = chain_rules(text, "in-")
    assert rule.startswith("ip saddr @peer-") and rule.endswith(" accept")


def test_should_enforce_policy_to_allow_traffic_only_from_a_different_namespace_based_on_namespaceselector():
    text = build(policy("from-blue", {"podSelector": {"matchLabels": {"app": "server"}},
                                      "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "blue"}}}]}]}))
    assert set_elements(text, "peer-") == [{"10.244.7.5"}]


def test_should_enforce_policy_based_on_podselector_and_namespaceselector():
    both = {"namespaceSelector": {"matchExpressions": [{"key": "team", "operator": "DoesNotExist"}]},
            "podSelector": {"matchLabels": {"app": "client"}}}
    text = build(policy("both", {"podSelector": {"matchLabels": {"app": "server"}}, "ingress": [{"from": [both]}]}))
    # default and third have no team label; "other" is excluded.
    assert [addresses(e) for e in set_elements(text, "peer-")] == [{"10.244.7.3", "10.244.7.4", "10.244.7.6"}]


def test_should_enforce_except_clause_while_egress_access_to_server_in_cidr_block():
    text = build(policy("cidr", {"podSelector": {"matchLabels": {"role": "a"}}, "policyTypes": ["Egress"],
                                 "egress": [{"to": [{"ipBlock": {"cidr": "10.244.7.0/24",
                                                                 "except": ["10.244.7.2/32"]}}]}]}))
    [elements] = set_elements(text, "peer-")
    assert addresses(elements) == {f"10.244.7.{i}" for i in range(256)} - {"10.244.7.2"}
    assert set_elements(text, "egress-isolated") == [{"10.244.7.3"}]
    assert chain_rules(text, "eg-")[0].startswith("ip daddr @peer-")


def test_should_allow_ingress_access_on_one_named_port():
    text = build(policy("named", {"podSelector": {"matchLabels": {"app": "server"}},
                                  "ingress": [{"ports": [{"port": "serve-80"}, {"port": "serve-81"}]}]}))
    # Resolved against the selected pod: only it has serve-80; serve-81 matches nobody.
    assert set_elements(text, "named-") == [{"10.244.7.2 . tcp . 80"}, set()]
    rules = chain_rules(text, "in-")
    assert all(r.startswith("ip daddr . meta l4proto . th dport @named-") for r in rules)


def test_named_port_of_another_protocol_does_not_match():
    server = pod("server", "10.244.7.2", app="server", ports=[{"name": "dns", "containerPort": 53, "protocol": "UDP"}])
    text = build(policy("named", {"podSelector": {"matchLabels": {"app": "server"}},
                                  "ingress": [{"ports": [{"port": "dns", "protocol": "TCP"}]}]}), pods=[server])
    assert set_elements(text, "named-") == [set()]


def test_should_enforce_policy_to_allow_ingress_traffic_from_pods_in_all_namespaces_with_port_range():
    text = build(policy("range", {"podSelector": {"matchLabels": {"app": "server"}},
                                  "ingress": [{"from": [{"namespaceSelector": {}}],
                                               "ports": [{"port": 80, "endPort": 90}, {"protocol": "UDP"}]}]}))
    # Every pod of every namespace, the server itself included.
    assert [addresses(e) for e in set_elements(text, "peer-")] == [{f"10.244.7.{i}" for i in range(2, 7)}]
    rules = chain_rules(text, "in-")
    assert rules[0].endswith("meta l4proto tcp th dport 80-90 accept")
    assert rules[1].endswith("meta l4proto udp accept")


def test_rules_of_policies_selecting_one_pod_add_up():
    text = build(policy("one", {"podSelector": {"matchLabels": {"app": "server"}},
                                "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "a"}}}]}]}),
                 policy("two", {"podSelector": {"matchLabels": {"app": "server"}},
                                "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "b"}}}]}]}))
    jumps = [r for r in chain_rules(text, "ingress") if " jump in-" in r]
    assert len(jumps) == 2  # either policy's rule admits, the packet is dropped only when neither does
    assert sorted(map(sorted, set_elements(text, "peer-"))) == [["10.244.7.3"], ["10.244.7.4"]]


def test_an_egress_section_defaults_policy_types_to_both():
    pol = policy("both", {"podSelector": {"matchLabels": {"app": "server"}}, "egress": [{}]})
    assert pol["spec"]["policyTypes"] == ["Ingress", "Egress"]
    text = build(pol)
    assert set_elements(text, "ingress-isolated") == [{"10.244.7.2"}]
    assert set_elements(text, "egress-isolated") == [{"10.244.7.2"}]
    assert chain_rules(text, "eg-") == ["accept"]


def test_host_network_and_finished_pods_are_not_selected():
    host = pod("host", "192.0.2.10", app="server")
    host["spec"]["hostNetwork"] = True
    done = pod("done", "10.244.7.9", app="server")
    done["status"]["phase"] = "Succeeded"
    text = build(policy("deny", {"podSelector": {}}), pods=[host, done])
    assert set_elements(text, "ingress-isolated") == [set()]


def test_the_bridge_table_is_left_out_without_bridge_conntrack_but_an_old_one_is_removed():
    text = build(policy("deny", {"podSelector": {}}), bridge=False)
    assert "table bridge kubelite_np_unit {" not in text
    assert "delete table bridge kubelite_np_unit" in text
    with_bridge = build(policy("deny", {"podSelector": {}}))
    assert "table bridge kubelite_np_unit {" in with_bridge
    assert "ether type != ip accept" in with_bridge  # ARP must pass the bridge


def test_table_is_named_after_the_servers_service_range():
    assert table_name("10.96.16.0/20") == "kubelite_np_10_96_16_0_20"


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("nft") is None, reason="nft -c needs root and nft")
def test_nft_accepts_the_generated_transaction():
    text = build(policy("p", {"podSelector": {"matchLabels": {"app": "server"}}, "policyTypes": ["Ingress", "Egress"],
                              "ingress": [{"from": [{"podSelector": {}}, {"ipBlock": {"cidr": "10.0.0.0/8",
                                                                                     "except": ["10.244.0.0/16"]}}],
                                           "ports": [{"port": "serve-80"}, {"port": 53, "endPort": 60,
                                                                            "protocol": "UDP"}]}],
                              "egress": [{"to": [{"namespaceSelector": {}}]}]}), bridge=False)
    p = subprocess.run(["nft", "-c", "-f", "-"], input=text, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr + text


def _causes(spec: Obj) -> list[str]:
    obj = policy("x", spec)
    return [f"{c.field}: {c.message}" for c in validate("NetworkPolicy", "networking.k8s.io/v1", obj)]


def test_validation_speaks_upstreams_messages():
    assert _causes({"podSelector": {}, "ingress": [{"from": [{}]}]}) == [
        "spec.ingress[0].from[0]: Required value: must specify a peer"]
    assert _causes({"podSelector": {}, "ingress": [{"from": [{"podSelector": {}, "ipBlock": {"cidr": "10.0.0.0/8"}}]}]}) == [
        "spec.ingress[0].from[0]: Forbidden: may not specify both ipBlock and another peer"]
    assert _causes({"podSelector": {}, "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8",
                                                                        "except": ["11.0.0.0/16"]}}]}]}) == [
        'spec.egress[0].to[0].ipBlock.except[0]: Invalid value: "11.0.0.0/16": must be a strict subset of `cidr`']
    assert _causes({"podSelector": {}, "ingress": [{"ports": [{"port": "http", "endPort": 90}]}]}) == [
        "spec.ingress[0].ports[0].endPort: Invalid value: 90: may not be specified when `port` is non-numeric"]
    assert _causes({"podSelector": {}, "ingress": [{"ports": [{"port": 90, "endPort": 80}]}]}) == [
        "spec.ingress[0].ports[0].endPort: Invalid value: 90: must be greater than or equal to `port`"]
    assert _causes({"podSelector": {}, "policyTypes": ["Sideways"]}) == [
        'spec.policyTypes[0]: Unsupported value: "Sideways": supported values: "Ingress", "Egress"']
    assert _causes({"podSelector": {}, "ingress": [{"ports": [{"protocol": "ICMP"}]}]}) == [
        'spec.ingress[0].ports[0].protocol: Unsupported value: "ICMP": supported values: "TCP", "UDP", "SCTP"']
    assert _causes({"podSelector": {}, "ingress": [{"ports": [{"port": 80}], "from": [{"namespaceSelector": {}}]}]}) == []
