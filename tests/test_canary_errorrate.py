"""A canary judged by its error rate: the proxy's counters (proxy/stats.py), their Lease
annotation, the threshold decision (controllers/deployment/errorrate.py) and the
controller rolling back on it (against tests/fakeapi.py)."""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket

import pytest

from kubelite.api import meta
from kubelite.api.resources import DEPLOYMENTS, LEASES
from kubelite.controllers.deployment import errorrate, util
from kubelite.proxy import nftstats
from kubelite.proxy import stats as st
from kubelite.proxy.balancer import Balancer, Endpoint
from kubelite.proxy.drain import LEASE_NAMESPACE, DrainReporter
from kubelite.proxy.listener import TCPListener
from kubelite.proxy.nftables import build_ruleset, delete_table, nft
from kubelite.proxy.stats import TRAFFIC_ANNOTATION, Counts, StatsPublisher, TrafficStats, decode, encode
from tests.fakeapi import FakeAPI
from tests.test_autorollback import on_v2, ready, template_tag
from tests.test_canary_controller import weights
from tests.test_nft_ruleset import POD_CIDR, TABLE, build, ep, slc, svc

P = "rollout.kubelite.dev/"
KERNEL = os.geteuid() == 0 and shutil.which("nft") is not None
SVC = "default/web"


def lease(node: str, counts: dict[tuple[str, str, str], Counts]) -> dict:
    return {"metadata": {"name": f"kubelite-proxy-{node}", "namespace": LEASE_NAMESPACE,
                         "labels": {"kubelite.io/component": "proxy"},
                         "annotations": {TRAFFIC_ANNOTATION: encode(counts)}},
            "spec": {"holderIdentity": node}}


# --- counting ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name,h", [("web-645d5868d6-abcde", "645d5868d6"), ("my-app-7d5fc-x1", "7d5fc"),
                                    ("web-0", ""), ("web--x", ""), ("plain", "")])
def test_revision_of_pod_names(name, h):
    assert st.revision_of(name) == h


@pytest.mark.parametrize("chunk,code", [(b"HTTP/1.1 500 Internal Server Error\r\n", 500), (b"HTTP/1.0 200 OK\r\n", 200),
                                        (b"HTTP/1.1 50", None), (b"SSH-2.0-OpenSSH_9.2\r\n", None),
                                        (b"HTTP/2.0 500 x\r\n\r\n", None), (b"HTTP/1.1 5x0 Bad\r\n", None)])
def test_status_code_at_the_start_of_a_chunk(chunk, code):
    assert st.status_code(chunk) == code


def test_replies_counted_per_connection_first_and_kept_alive():
    stats = TrafficStats()
    w = stats.connected(SVC, "web-abc-1")
    assert w is not None
    w.up(b"GET / HTTP/1.1\r\n\r\n")
    w.down(b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n")
    w.down(b"HTTP/1.1 500 looks like a status line but is body")  # no new request: body
    w.up(b"GET / HTTP/1.1\r\n\r\n")
    w.down(b"HTTP/1.1 503 Service Unavailable\r\n\r\n")
    w.up(b"GET / HTTP/1.1\r\n\r\n")
    w.down(b"HTTP/1.1 502 Bad Gateway\r\n\r\n")
    stats.failed(SVC, "web-abc-2")
    assert stats.snapshot() == {("default", "web", "abc"): Counts(requests=4, errors=3, failed=1, http5xx=2)}


def test_non_http_connections_count_once_and_pods_without_revision_not_at_all():
    stats = TrafficStats()
    w = stats.connected(SVC, "db-xyz-1")
    assert w is not None
    w.down(b"220 smtp ready\r\n")
    w.up(b"HELO\r\n")
    w.down(b"HTTP/1.1 500 x\r\n")  # not an HTTP connection: ignored
    assert stats.connected(SVC, "web-0") is None
    stats.failed(SVC, "web-0")
    assert stats.snapshot() == {("default", "web", "xyz"): Counts(1, 0, 0, 0)}


def test_idle_revisions_are_forgotten():
    now = [0.0]
    stats = TrafficStats(clock=lambda: now[0])
    stats.failed(SVC, "web-old-1")
    now[0] = 500.0
    stats.failed(SVC, "web-new-1")
    now[0] = 700.0
    assert set(stats.snapshot()) == {("default", "web", "new")}


def test_annotation_round_trip_skips_garbage_and_sums_nodes():
    counts = {("default", "web", "abc"): Counts(10, 2, 1, 1), ("other", "web", "abc"): Counts(5, 5, 5, 0)}
    assert decode(encode(counts)) == counts
    assert decode("not json") == {} and decode('["x"]') == {}
    assert decode('{"a/b/c":[1,2,3],"a/b":[1,1,1,1],"x/y/z":[1,-1,0,0],"d/e/f":[4,3,2,1]}') == {
        ("d", "e", "f"): Counts(4, 3, 2, 1)}
    leases = [lease("n1", {("default", "web", "abc"): Counts(10, 2, 1, 1), ("default", "api", "abc"): Counts(1, 1, 0, 1),
                           ("default", "web", "old"): Counts(100, 0, 0, 0)}),
              lease("n2", {("default", "web", "abc"): Counts(4, 0, 0, 0), ("other", "web", "abc"): Counts(9, 9, 9, 0)}),
              {"metadata": {"name": "kubelite-proxy-n3"}}]
    assert st.revision_traffic(leases, "default", ["abc", "new"]) == {"abc": Counts(15, 3, 1, 2), "new": Counts()}


def test_counts_since_a_baseline_and_after_a_proxy_restart():
    assert Counts(30, 6, 1, 5).since(Counts(10, 1, 0, 1)) == Counts(20, 5, 1, 4)
    assert Counts(3, 3, 0, 3).since(Counts(10, 1, 0, 1)) == Counts(3, 3, 0, 3)


# --- the userspace listener counts what goes through it -------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_listener_counts_connections_refused_connects_and_5xx_replies():
    async def serve(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        # Keep-alive: two replies on one connection, the second a 500.
        for status in (b"200 OK", b"500 Internal Server Error"):
            await r.readuntil(b"\r\n\r\n")
            w.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 2\r\n\r\nok")
            await w.drain()
        w.close()
    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    up_port = server.sockets[0].getsockname()[1]
    dead_port = free_port()  # nothing listens: refused
    bal = Balancer()
    bal.set_endpoints([Endpoint("127.0.0.1", dead_port, pod_uid="u1", pod_name="web-bad-1"),
                       Endpoint("127.0.0.1", up_port, pod_uid="u2", pod_name="web-good-1")])
    stats = TrafficStats()
    lst = TCPListener("127.0.0.1", free_port(), bal, stats=stats, service_key=SVC)
    await lst.start()
    try:
        for _ in range(2):  # round robin: each endpoint is tried first once
            r, w = await asyncio.open_connection("127.0.0.1", lst.port)
            w.write(b"GET / HTTP/1.1\r\n\r\n")
            assert (await r.readuntil(b"ok")).startswith(b"HTTP/1.1 200")
            w.write(b"GET / HTTP/1.1\r\n\r\n")
            assert (await r.readuntil(b"ok")).startswith(b"HTTP/1.1 500")
            assert await r.read() == b""
            w.close()
        await lst.drain(5)
    finally:
        lst.close()
        server.close()
        await server.wait_closed()
    snap = stats.snapshot()
    assert snap[("default", "web", "good")] == Counts(requests=4, errors=2, failed=0, http5xx=2)
    assert snap[("default", "web", "bad")] == Counts(requests=1, errors=1, failed=1, http5xx=0)


async def test_publisher_writes_the_lease_annotation_only_when_counts_change():
    api = FakeAPI()
    stats = TrafficStats()
    pub = StatsPublisher(api, "node-1", stats)
    stats.failed(SVC, "web-abc-1")
    assert await pub.publish() is False  # no Lease yet: the drain reporter creates it
    reporter = DrainReporter(api, "node-1")
    reporter.start()
    await asyncio.wait_for(reporter.published.wait(), 10)
    try:
        assert await pub.publish() is True
        assert await pub.publish() is False
        got = api.get_obj("leases", LEASE_NAMESPACE, "kubelite-proxy-node-1")
        assert decode(meta.annotations_of(got)[TRAFFIC_ANNOTATION]) == {("default", "web", "abc"): Counts(1, 1, 1, 0)}
        assert "proxy.kubelite.io/drained-pods" in meta.annotations_of(got)  # the drain set is kept
        stats.failed(SVC, "web-abc-1")
        assert await pub.publish() is True
    finally:
        await reporter.stop()


# --- the decision -------------------------------------------------------------------------------

@pytest.mark.parametrize("text,rate", [("5%", 0.05), (" 12.5 % ", 0.125), ("0.1", 0.1), ("0%", 0.0), ("100%", 1.0)])
def test_parse_rate(text, rate):
    assert errorrate.parse_rate(text) == pytest.approx(rate)


@pytest.mark.parametrize("ann,words", [
    ({P + "canary-max-error-rate": "five"}, "canary-max-error-rate: \"five\" is not a rate"),
    ({P + "canary-max-error-rate": "120%"}, "not between 0% and 100%"),
    ({P + "canary-max-error-rate": "5%", P + "canary-min-requests": "0"}, "must be at least 1"),
    ({P + "canary-max-error-rate": "5%", P + "canary-min-requests": "lots"},
     "canary-min-requests: \"lots\" is not a whole number")])
def test_bad_limits_name_the_annotation(ann, words):
    with pytest.raises(ValueError, match=words):
        errorrate.limits_of({"metadata": {"annotations": ann}})


def test_limits_default_minimum_sample():
    d = {"metadata": {"annotations": {P + "canary-max-error-rate": "5%"}}}
    assert errorrate.limits_of(d) == errorrate.Limits(0.05, 20)
    assert errorrate.limits_of({"metadata": {}}) is None


@pytest.mark.parametrize("counts,limit,verdict", [
    (Counts(19, 19, 0, 19), (0.05, 20), None),                 # below the minimum sample
    (Counts(20, 1, 1, 0), (0.05, 20), None),                   # exactly 5 %: not over
    (Counts(20, 2, 0, 2), (0.05, 20), "error rate 10% over the limit of 5%: 2 of 20 requests through the proxy failed "
                                      "(2 HTTP 5xx)"),
    (Counts(40, 40, 1, 39), (0.0, 1), "error rate 100% over the limit of 0%: 40 of 40 requests through the proxy "
                                      "failed (39 HTTP 5xx, 1 failed connection)"),
    (Counts(1000, 25, 25, 0), (0.025, 20), None),
])
def test_verdict(counts, limit, verdict):
    assert errorrate.verdict(counts, errorrate.Limits(*limit)) == verdict


# --- the controller -----------------------------------------------------------------------------

async def canary_with_limit(annotations: dict[str, str]):
    env = await on_v2(replicas=4)
    d = env.get("web")
    d["metadata"]["annotations"].update({P + "strategy": "canary", P + "canary-steps": "25%,pause 60s,100%",
                                         **annotations})
    env.api.update(DEPLOYMENTS, d)
    await env.settle()
    env.set_image("web", "v3")
    await ready(env)
    return env


def canary_hash(env) -> str:
    return meta.annotations_of(env.get("web"))[P + "canary-revision"]


async def test_erroring_canary_is_rolled_back_with_an_event_naming_the_error_rate():
    env = await canary_with_limit({P + "canary-max-error-rate": "5%", P + "canary-min-requests": "10"})
    h = canary_hash(env)
    assert weights(env) == {"v3": 25, "v2": 75}
    assert meta.annotations_of(env.get("web"))[util.CANARY_BASELINE] == "0,0,0,0"
    # Few requests, all failed: not judged yet.
    env.api.create(LEASES, lease("n1", {("default", "web", h): Counts(4, 4, 0, 4)}), LEASE_NAMESPACE)
    env.dc.enqueue(env.get("web"))
    await env.settle()
    assert template_tag(env) == "v3"
    # Enough of them on two nodes: 6 of 12 failed.
    env.api.create(LEASES, lease("n2", {("default", "web", h): Counts(8, 2, 1, 1)}), LEASE_NAMESPACE)
    env.dc.enqueue(env.get("web"))
    await env.settle()
    assert template_tag(env) == "v2"
    msgs = env.rec.messages("AutoRollback")
    assert len(msgs) == 1 and "CanaryErrorRate (error rate 50% over the limit of 5%: 6 of 12 requests" in msgs[0], msgs
    assert "(5 HTTP 5xx, 1 failed connection)" in msgs[0]
    ann = meta.annotations_of(env.get("web"))
    assert ann[P + "rolled-back-from"].startswith("web-") and "CanaryErrorRate" in ann[P + "rolled-back-from"]
    cond = util.get_condition(env.get("web")["status"], "Progressing")
    assert cond is not None and "CanaryErrorRate" in cond["message"]
    # No loop: back on the completed revision nothing is judged again.
    await ready(env)
    env.dc.enqueue(env.get("web"))
    await env.settle()
    assert template_tag(env) == "v2" and len(env.rec.messages("AutoRollback")) == 1


async def test_error_rate_counts_from_the_start_of_the_step():
    # Errors from before the canary (the same revision tried earlier) are in the baseline.
    env = await on_v2(replicas=4)
    old = {("default", "web", "x"): Counts()}
    env.api.create(LEASES, lease("n1", old), LEASE_NAMESPACE)
    d = env.get("web")
    d["metadata"]["annotations"].update({P + "strategy": "canary", P + "canary-steps": "25%,pause 60s,100%",
                                         P + "canary-max-error-rate": "5%"})
    env.api.update(DEPLOYMENTS, d)
    await env.settle()
    env.set_image("web", "v3")
    await env.settle()
    h = canary_hash(env)
    assert meta.annotations_of(env.get("web"))[util.CANARY_BASELINE] == "0,0,0,0"
    # Counts seen before the next step begins (below the minimum sample, so not judged)...
    lz = env.api.get_obj("leases", LEASE_NAMESPACE, "kubelite-proxy-n1")
    lz["metadata"]["annotations"][TRAFFIC_ANNOTATION] = encode({("default", "web", h): Counts(19, 19, 0, 19)})
    env.api.update(LEASES, lz)
    await ready(env)  # the canary's pods are available: the timed pause begins
    assert template_tag(env) == "v3"
    # ... are that step's baseline.
    assert meta.annotations_of(env.get("web"))[util.CANARY_BASELINE] == "19,19,0,19"
    lz = env.api.get_obj("leases", LEASE_NAMESPACE, "kubelite-proxy-n1")
    lz["metadata"]["annotations"][TRAFFIC_ANNOTATION] = encode({("default", "web", h): Counts(119, 20, 0, 20)})
    env.api.update(LEASES, lz)
    env.dc.enqueue(env.get("web"))
    await env.settle()
    assert template_tag(env) == "v3"  # 1 error in 100 requests of this step: 1 %
    lz = env.api.get_obj("leases", LEASE_NAMESPACE, "kubelite-proxy-n1")
    lz["metadata"]["annotations"][TRAFFIC_ANNOTATION] = encode({("default", "web", h): Counts(139, 40, 0, 40)})
    env.api.update(LEASES, lz)
    env.dc.enqueue(env.get("web"))
    await env.settle()
    assert template_tag(env) == "v2"
    assert "21 of 120 requests" in env.rec.messages("AutoRollback")[0]


async def test_a_canary_held_by_its_pause_step_is_still_judged_and_the_pause_lifted():
    env = await on_v2(replicas=4)
    d = env.get("web")
    d["metadata"]["annotations"].update({P + "strategy": "canary", P + "canary-steps": "25%,pause,100%",
                                         P + "canary-max-error-rate": "5%", P + "canary-min-requests": "10"})
    env.api.update(DEPLOYMENTS, d)
    await env.settle()
    env.set_image("web", "v3")
    await ready(env)
    assert env.get("web")["spec"].get("paused") is True  # the indefinite pause step holds it
    assert util.paused_at_step(env.get("web"))
    env.api.create(LEASES, lease("n1", {("default", "web", canary_hash(env)): Counts(20, 10, 0, 10)}),
                   LEASE_NAMESPACE)
    env.dc.enqueue(env.get("web"))
    await env.settle()
    assert template_tag(env) == "v2"
    assert not env.get("web")["spec"].get("paused")
    assert "CanaryErrorRate" in env.rec.messages("AutoRollback")[0]


async def test_a_canary_a_person_paused_mid_step_is_left_paused():
    env = await canary_with_limit({P + "canary-max-error-rate": "5%", P + "canary-min-requests": "10"})
    h = canary_hash(env)
    d = env.get("web")
    d["spec"]["paused"] = True  # `kubectl rollout pause` during the timed pause step
    env.api.update(DEPLOYMENTS, d)
    await env.settle()
    assert not util.paused_at_step(env.get("web"))
    env.api.create(LEASES, lease("n1", {("default", "web", h): Counts(20, 10, 0, 10)}), LEASE_NAMESPACE)
    env.dc.enqueue(env.get("web"))
    await env.settle()
    assert template_tag(env) == "v3" and env.get("web")["spec"]["paused"] is True
    assert env.rec.messages("AutoRollback") == []


async def test_invalid_error_rate_is_a_warning_and_nothing_is_judged():
    env = await canary_with_limit({P + "canary-max-error-rate": "lots"})
    h = canary_hash(env)
    env.api.create(LEASES, lease("n1", {("default", "web", h): Counts(100, 100, 0, 100)}), LEASE_NAMESPACE)
    env.dc.enqueue(env.get("web"))
    await env.settle()
    assert template_tag(env) == "v3"
    msgs = env.rec.messages(errorrate.INVALID_REASON)
    assert msgs and 'canary-max-error-rate: "lots" is not a rate' in msgs[0], msgs


# --- the nftables path: named counters per revision ------------------------------------------------

def pod_ep(ip: str, pod: str) -> dict:
    e = ep(ip)
    e["targetRef"] = {"kind": "Pod", "name": pod, "uid": f"uid-{pod}"}
    return e


def test_ruleset_counts_new_connections_and_resets_per_revision_in_named_counters():
    rs = build([svc("web")], [slc("web", [pod_ep("10.244.3.2", "web-aaa-1"), pod_ep("10.244.3.3", "web-aaa-2"),
                                          pod_ep("10.244.3.4", "web-bbb-1"), ep("10.244.3.5")])])
    kinds = sorted(rs.counters.values())
    assert kinds == [("rq", ("default", "web", "aaa")), ("rq", ("default", "web", "bbb")),
                     ("rs", ("default", "web", "aaa")), ("rs", ("default", "web", "bbb"))]
    for name in rs.counters:
        assert f"counter {name} {{ }}" in rs.body
    rq = next(n for n, (k, key) in rs.counters.items() if k == "rq" and key[2] == "aaa")
    assert rs.body.count(f'counter name "{rq}"') == 2  # in both of that revision's ep- chains
    assert "type filter hook input priority -110" in rs.body and "type filter hook forward priority -110" in rs.body
    assert "tcp flags & rst == rst ct reply ip saddr . ct reply proto-src { 10.244.3.2 . 8080, 10.244.3.3 . 8080 }" in rs.body
    # A revision that leaves: its counters are deleted with the next transaction.
    nxt = build([svc("web")], [slc("web", [pod_ep("10.244.3.4", "web-bbb-1")])], previous=rs)
    gone = sorted(n for n, (_, key) in rs.counters.items() if key[2] == "aaa")
    assert [f"delete counter ip {TABLE} {n}" for n in gone] == [
        line for line in nxt.text.splitlines() if line.startswith("delete counter")]


def test_counter_reader_adds_what_grew():
    listing = json.dumps({"nftables": [{"metainfo": {}}, {"counter": {"name": "rq-x", "packets": 10, "bytes": 600}},
                                      {"counter": {"name": "rs-x", "packets": 2, "bytes": 80}},
                                      {"counter": {"name": "unknown", "packets": 5, "bytes": 1}}]})
    assert nftstats.read_counters(listing) == {"rq-x": 10, "rs-x": 2, "unknown": 5}
    assert nftstats.read_counters("garbage") == {}
    names = {"rq-x": ("rq", ("default", "web", "x")), "rs-x": ("rs", ("default", "web", "x"))}
    reader = nftstats.CounterReader()
    stats = TrafficStats()
    for key, c in reader.deltas(nftstats.read_counters(listing), names):
        stats.add(key, c)
    assert stats.snapshot() == {("default", "web", "x"): Counts(10, 2, 2, 0)}
    for key, c in reader.deltas({"rq-x": 15, "rs-x": 2}, names):
        stats.add(key, c)
    for key, c in reader.deltas({"rq-x": 3, "rs-x": 2}, names):  # recreated: counts from 0 again
        stats.add(key, c)
    assert stats.snapshot() == {("default", "web", "x"): Counts(18, 2, 2, 0)}


@pytest.mark.skipif(not KERNEL, reason="needs root and nft")
async def test_kernel_counts_connections_and_refusals_of_a_revision():
    # A real table: a ClusterIP on loopback in front of a port nothing listens on (refused).
    table = f"kubelite_errrate_{os.getpid()}"
    target = free_port()
    front = free_port()
    rs = build_ruleset(table, [svc("web", ip="127.0.0.240", ports=[{"name": "http", "port": front}])],
                       [slc("web", [pod_ep("127.0.0.241", "web-ccc-1")], port=target)], node_name="n1",
                       node_ips=["127.0.0.1"], pod_cidr=POD_CIDR, service_cidr="127.0.0.240/29")
    await nft(rs.text)
    try:
        for _ in range(3):
            with pytest.raises(OSError):
                _, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.240", front), 5)
                w.close()
        got = nftstats.read_counters(await nft("", "-j", "list", "counters", "table", "ip", table))
        by_kind = {rs.counters[n][0]: v for n, v in got.items() if n in rs.counters}
        assert by_kind == {"rq": 3, "rs": 3}, got
    finally:
        await delete_table(table)
