"""An erroring canary is rolled back automatically, on a full cluster: the proxy counts the
canary's errors per revision and publishes them on its Lease, and the Deployment controller
rolls back once the error rate passes the limit.

Userspace path: the canary's pods answer HTTP 500 (the proxy reads the status lines).
nftables path (as root): the kernel sees no replies, so the canary's pods refuse
connections instead (nothing listens), counted from the RSTs they send back."""
from __future__ import annotations

import json
import os
import shutil
import time

import pytest

from kubelite.proxy.stats import TRAFFIC_ANNOTATION, decode
from tests.conftest import Server, create_namespace
from tests.test_canary_e2e import annotations, events, opt_in
from tests.test_services_rollout import CONTAINER, V1, Load, expose, node_ip, rolled_out

PREFIX = "rollout.kubelite.dev/"

# The bootcamp image's BusyBox httpd serving a CGI that answers every request with a 500
# (httpd passes a reply that starts with its own status line through as it is).
ERRORING = ("mkdir -p err/cgi-bin && printf '%s\\n' '#!../../../bin/sh' "
            "'printf \"HTTP/1.1 500 Internal Server Error\\r\\nContent-Length: 0\\r\\n\\r\\n\"' "
            "> err/cgi-bin/index.cgi && chmod 755 err/cgi-bin/index.cgi && "
            "exec httpd -f -p \"${POD_IP:-0.0.0.0}:8080\" -h err")
# Runs, is Ready (no probe), and listens on nothing: every connection to it is refused.
REFUSING = "exec sleep 3600"
KERNEL = os.geteuid() == 0 and shutil.which("nft") is not None


def proxy_counts(k: Server, ns: str) -> dict:
    """Every proxy Lease's counts for this namespace, by revision."""
    out: dict = {}
    for lease in k.kjson("-n", "kube-system", "get", "leases", "-l", "kubelite.io/component=proxy")["items"]:
        for (lns, _svc, h), c in decode((lease["metadata"].get("annotations") or {}).get(TRAFFIC_ANNOTATION)).items():
            if lns == ns:
                out[h] = c
    return out


@pytest.mark.parametrize("mode,command,seen", [("userspace", ERRORING, "HTTP 5xx"),
                                               ("nftables", REFUSING, "failed connection")])
def test_erroring_canary_is_rolled_back_automatically(clusters, request, mode, command, seen):
    if mode == "nftables" and not KERNEL:
        pytest.skip("the nftables data path needs root and nft")
    k = clusters(mode)
    ns = create_namespace(k, request)
    port = expose(k, ns, 3)
    host = node_ip(k)
    opt_in(k, ns, "strategy=canary", "canary-steps=25%,pause 300s,100%", "canary-max-error-rate=10%",
           "canary-min-requests=10")
    with Load(host, port, clients=4, pause=0.02) as load:
        k.wait_for(lambda: len(load.replies) >= 30, what="load flowing")
        patch = {"spec": {"template": {"spec": {"containers": [
            {"name": CONTAINER, "command": ["sh", "-c", command]}]}}}}
        k.kubectl("-n", ns, "patch", "deployment", "web", "-p", json.dumps(patch), check=True)
        k.wait_for(lambda: annotations(k, ns).get(PREFIX + "rolled-back-from"), timeout=120,
                   what="an automatic rollback on the canary's error rate")
        canary = annotations(k, ns)[PREFIX + "rolled-back-from"]
        rolled_out(k, ns)
        done = time.monotonic()
        k.wait_for(lambda: len(load.since(done)) >= 30, what="load after the rollback")
    # The canary failed requests (the load saw them) until it was rolled back; after that only v1.
    sign = "bad reply b'HTTP/1.1 500" if mode == "userspace" else "Connection"
    assert load.failures and all(sign in f for f in load.failures), load.failures[:5]
    assert {v for t, _, v in load.replies if t >= done} == {1}
    d = k.kjson("-n", ns, "get", "deployment", "web")
    c = d["spec"]["template"]["spec"]["containers"][0]
    assert c["image"] == V1 and "command" not in c
    rolled = events(k, ns, "AutoRollback")
    assert len(rolled) == 1 and "CanaryErrorRate (error rate " in rolled[0] and seen in rolled[0], rolled
    assert "CanaryErrorRate" in canary
    # The counts that decided it are on the proxy's Lease: the canary's requests mostly failed.
    rss = {r["metadata"]["labels"]["pod-template-hash"]: r for r in k.kjson("-n", ns, "get", "replicasets")["items"]}
    bad = next(h for h, r in rss.items() if r["spec"]["template"]["spec"]["containers"][0].get("command"))
    counts = proxy_counts(k, ns)
    assert counts[bad].errors >= 10 and counts[bad].errors / counts[bad].requests > 0.1, counts
    if mode == "userspace":
        assert counts[bad].http5xx >= 10, counts  # (a connect before httpd listened counts as failed)
    else:
        assert counts[bad].failed == counts[bad].errors and counts[bad].http5xx == 0, counts
    good = next(h for h in rss if h != bad)
    assert counts[good].requests > 30 and counts[good].errors == 0, counts
    describe = k.kubectl("-n", ns, "describe", "deployment", "web", check=True).stdout
    assert "CanaryErrorRate" in describe
