"""Units of weighted canary / blue-green rollouts: the step parser, the weight table the
proxies read, the userspace balancer's weighted choice and the nftables rules."""
from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
from collections import Counter

import pytest

from kubelite.controllers.deployment.canary import Step, canary_size, format_weights, parse_duration, parse_steps, strategy_of
from kubelite.proxy.balancer import Balancer, Endpoint
from kubelite.proxy.weights import TRAFFIC_WEIGHTS, WeightTable, parse_weights
from tests.test_nft_ruleset import build, ep, slc, svc

STABLE, CANARY = "645d5868d6", "7d5fc5d98d"


def deployment(weights: str, name: str = "web", ns: str = "default") -> dict:
    return {"metadata": {"name": name, "namespace": ns, "annotations": {TRAFFIC_WEIGHTS: weights}}}


def endpoint(ip: str, h: str, suffix: str = "abcde", name: str = "web") -> Endpoint:
    return Endpoint(ip, 8080, pod_uid=f"uid-{ip}", pod_name=f"{name}-{h}-{suffix}")


# --- the step parser ------------------------------------------------------------------

def test_steps_parse_weights_and_pauses():
    assert parse_steps("20%, pause 30s,50%,pause,100%") == [
        Step("weight", 20), Step("pause", seconds=30.0), Step("weight", 50), Step("pause"), Step("weight", 100)]
    assert parse_steps("10%,pause 1m30s,pause 2h,pause 45") == [
        Step("weight", 10), Step("pause", seconds=90.0), Step("pause", seconds=7200.0), Step("pause", seconds=45.0)]
    assert [s.text() for s in parse_steps("20%,pause 30s,pause")] == ["20%", "pause 30s", "pause"]


@pytest.mark.parametrize("text,words", [
    ("", "no steps given"),
    ("20%,,100%", "step 2 is empty"),
    ("twenty%", 'step 1 "twenty%": a weight is a whole percentage'),
    ("20.5%", "a weight is a whole percentage"),
    ("120%", "between 0% and 100%"),
    ("-5%", "between 0% and 100%"),
    ("50%,20%", "weights may not go down (50% before it)"),
    ("20%,pause soon", 'step 2 "pause soon": invalid pause duration'),
    ("20%,pause 0s", "longer than 0s"),
    ("20%,wait 30s", 'expected a weight such as 20%, "pause" or "pause 30s"'),
    ("setWeight: 20", "expected a weight"),
])
def test_bad_steps_are_a_clear_error_not_a_crash(text, words):
    with pytest.raises(ValueError) as e:
        parse_steps(text)
    assert words in str(e.value)


def test_durations():
    assert parse_duration("30s") == 30 and parse_duration("2m") == 120 and parse_duration("1h1m1s") == 3661
    for bad in ("", "s", "1d", "m5", "5 m"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_canary_size_is_its_share_of_pods_at_least_one():
    assert canary_size(4, 20) == 1 and canary_size(10, 20) == 2 and canary_size(10, 25) == 3
    assert canary_size(4, 0) == 1 and canary_size(3, 100) == 3 and canary_size(1, 50) == 1


def test_strategy_annotation():
    def d(v: str) -> dict:
        return {"metadata": {"annotations": {"rollout.kubelite.dev/strategy": v}}}
    assert strategy_of(d("canary")) == "canary" and strategy_of(d("Blue-Green")) == "blue-green"
    assert strategy_of(d("rolling")) is None and strategy_of({"metadata": {}}) is None


# --- the weight table (what both proxies read) -----------------------------------------

def test_weights_round_trip_and_skip_malformed_entries():
    text = format_weights({CANARY: 20, STABLE: 80})
    assert parse_weights(text) == {CANARY: 20, STABLE: 80}
    assert parse_weights("a=1,b,=3,c=x,d=-2, e = 5 ") == {"a": 1, "e": 5}


def test_endpoints_split_by_revision_from_their_pod_names():
    table = WeightTable([deployment(f"{CANARY}=20,{STABLE}=80")])
    eps = [endpoint("10.244.0.2", STABLE, "aaaaa"), endpoint("10.244.0.3", STABLE, "bbbbb"),
           endpoint("10.244.0.4", CANARY, "ccccc")]
    groups = table.groups("default", eps)
    assert groups is not None
    assert [(w, [e.ip for e in g]) for w, g in groups] == [(80, ["10.244.0.2", "10.244.0.3"]), (20, ["10.244.0.4"])]


def test_a_service_of_one_revision_or_of_other_pods_is_left_alone():
    table = WeightTable([deployment(f"{CANARY}=20,{STABLE}=80")])
    assert table.groups("default", [endpoint("10.244.0.2", STABLE), endpoint("10.244.0.3", STABLE, "x2")]) is None
    # A pod that is not the Deployment's: not this rollout's Service.
    mixed = [endpoint("10.244.0.2", STABLE), Endpoint("10.244.0.9", 8080, pod_name="db-0")]
    assert table.groups("default", mixed) is None
    assert table.groups("other", [endpoint("10.244.0.2", STABLE), endpoint("10.244.0.3", CANARY)]) is None
    assert not WeightTable([{"metadata": {"name": "web", "namespace": "default"}}])


def test_an_unlisted_revision_gets_weight_zero_and_all_zero_means_equal():
    table = WeightTable([deployment(f"{CANARY}=100,{STABLE}=0")])
    groups = table.groups("default", [endpoint("10.244.0.2", STABLE), endpoint("10.244.0.3", "oldhash")])
    assert groups is None  # nobody with weight can serve: spread equally rather than refuse
    groups = table.groups("default", [endpoint("10.244.0.2", CANARY), endpoint("10.244.0.3", "oldhash")])
    assert groups is not None and [w for w, _ in groups] == [100, 0]


# --- the userspace balancer ------------------------------------------------------------

def _balancer(weights: str) -> Balancer:
    table = WeightTable([deployment(weights)])
    bal = Balancer(rng=random.Random(7))
    eps = [endpoint(f"10.244.0.{i}", STABLE, f"s{i}xyz") for i in range(2, 6)] + [endpoint("10.244.0.9", CANARY)]
    bal.set_endpoints(eps, lambda e: table.groups("default", e))
    return bal


def test_userspace_balancer_sends_the_canary_its_weight_of_requests():
    bal = _balancer(f"{CANARY}=20,{STABLE}=80")
    firsts = Counter(bal.candidates("10.0.0.1")[0].pod_name.split("-")[1] for _ in range(5000))
    assert 1000 - 150 <= firsts[CANARY] <= 1000 + 150, firsts
    # Inside the stable revision, round-robin over its four pods.
    stable_pods = Counter(e.ip for e in (bal.candidates()[0] for _ in range(2000)) if e.ip != "10.244.0.9")
    assert len(stable_pods) == 4 and max(stable_pods.values()) - min(stable_pods.values()) <= 2
    # Every endpoint stays a fallback for a refused connect.
    assert len(bal.candidates()) == 5


def test_blue_green_preview_gets_no_traffic_then_all_of_it():
    bal = _balancer(f"{CANARY}=0,{STABLE}=100")
    assert {bal.candidates()[0].ip for _ in range(500)} == {f"10.244.0.{i}" for i in range(2, 6)}
    assert bal.candidates()[-1].ip == "10.244.0.9"  # weight 0: only as the last fallback
    bal = _balancer(f"{CANARY}=100,{STABLE}=0")
    assert {bal.candidates()[0].ip for _ in range(200)} == {"10.244.0.9"}


def test_without_weights_the_balancer_round_robins_as_before():
    bal = Balancer()
    bal.set_endpoints([endpoint("10.244.0.2", STABLE), endpoint("10.244.0.3", CANARY)])
    assert bal.groups() is None
    assert [bal.candidates()[0].ip for _ in range(4)] == ["10.244.0.2", "10.244.0.3"] * 2


# --- the nftables rules ----------------------------------------------------------------

def _ep(ip: str, h: str, suffix: str) -> dict:
    e = ep(ip)
    e["targetRef"] = {"kind": "Pod", "name": f"web-{h}-{suffix}", "uid": f"uid-{ip}"}
    return e


SLICE = [_ep("10.244.3.2", STABLE, "aaaaa"), _ep("10.244.3.3", STABLE, "bbbbb"), _ep("10.244.3.4", CANARY, "ccccc")]


def test_nftables_draws_a_revision_by_weight_then_an_endpoint():
    rs = build([svc("web", type_="NodePort", ports=[{"name": "http", "port": 80, "nodePort": 30080}])],
               [slc("web", SLICE)], weights=WeightTable([deployment(f"{CANARY}=20,{STABLE}=80")]))
    draws = re.findall(r"numgen random mod 5 vmap \{ ([^}]*) \}", rs.text)
    assert len(draws) == 2, rs.text  # the cluster IP's chain and the node port's
    for arms in draws:
        # Single values (no ranges), 20/80 reduced to 1/4.
        assert re.fullmatch(r"0 : goto (rev-0-\S+), 1 : goto \1, 2 : goto \1, 3 : goto \1, 4 : goto rev-1-\S+",
                            arms), arms
    # The stable revision's chain spreads over its two pods; the canary's goes to its one.
    assert rs.text.count("numgen random mod 2 vmap") == 2
    assert len(re.findall(r"chain rev-1-[^\n]*\n\t\tgoto ep-", rs.text)) == 2


def test_nftables_gives_a_weight_zero_revision_no_arm_and_leaves_plain_services_alone():
    rs = build([svc("web")], [slc("web", SLICE)], weights=WeightTable([deployment(f"{CANARY}=0,{STABLE}=100")]))
    assert "rev-" not in rs.text and "numgen random mod 5" not in rs.text
    svc_chain = re.search(r"chain svc-[^{]*\{\n\t\t([^\n]*)", rs.text)
    assert svc_chain is not None and svc_chain.group(1).startswith("numgen random mod 2 vmap")
    assert "10.244.3.4" not in svc_chain.group(1) and "dnat to 10.244.3.4:8080" in rs.text
    plain = build([svc("web")], [slc("web", SLICE)])
    weighted_elsewhere = build([svc("web")], [slc("web", SLICE)],
                               weights=WeightTable([deployment(f"{CANARY}=20,{STABLE}=80", ns="other")]))
    assert plain.text == weighted_elsewhere.text and "numgen random mod 3 vmap" in plain.text


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("nft") is None, reason="nft -c needs root and nftables")
def test_the_kernel_accepts_the_weighted_ruleset():
    rs = build([svc("web", type_="NodePort", ports=[{"name": "http", "port": 80, "nodePort": 30080}],
                    sessionAffinity="ClientIP")],
               [slc("web", SLICE)], weights=WeightTable([deployment(f"{CANARY}=1,{STABLE}=2")]))
    assert re.search(r"numgen random mod 3 vmap \{ 0 : goto rev-0-\S+, 1 : goto rev-0-\S+, 2 : goto rev-1-", rs.text)
    p = subprocess.run(["nft", "-c", "-f", "-"], input=rs.text, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
