"""Joining a node with k3s's K10 join token: the CA pinned by hash, fetched from /cacerts."""
from __future__ import annotations

import hashlib
import ssl
import subprocess
import sys
import urllib.request

import pytest
from conftest import start_server
from nodeharness import node_token, stop_proc

from kubelite import jointoken


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("join"), "--runtime", "fake")
    yield s
    s.stop()


def _kubelite(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kubelite.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_token_command_prints_the_ca_hash_and_the_bootstrap_token(srv):
    out = _kubelite("token", "--data-dir", str(srv.data_dir))
    assert out.returncode == 0, out.stderr
    ca = (srv.data_dir / "tls" / "ca.crt").read_bytes()
    assert out.stdout.strip() == f"K10{hashlib.sha256(ca).hexdigest()}::node:{node_token(srv)}"


def test_token_command_without_a_cluster_says_so(tmp_path):
    out = _kubelite("token", "--data-dir", str(tmp_path / "none"))
    assert out.returncode == 1 and "start `kubelite server` there first" in out.stderr


def test_cacerts_is_served_without_credentials(srv):
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with urllib.request.urlopen(f"{srv.url}/cacerts", context=ctx, timeout=10) as resp:
        assert resp.read() == (srv.data_dir / "tls" / "ca.crt").read_bytes()


def test_parse_accepts_k10_and_bare_tokens_and_refuses_a_malformed_k10():
    h = "ab" * 32
    assert jointoken.parse(f"K10{h}::node:s3cret") == jointoken.JoinToken(h, "s3cret")
    assert jointoken.parse("plain-token") == jointoken.JoinToken(None, "plain-token")
    with pytest.raises(jointoken.JoinTokenError):
        jointoken.parse("K10nothex::node:x")
    assert jointoken.JoinToken(None, "x").matches(b"anything")
    assert not jointoken.JoinToken(h, "x").matches(b"other CA")


def test_an_agent_with_only_the_join_token_joins_and_gets_ready(srv, tmp_path):
    token = _kubelite("token", "--data-dir", str(srv.data_dir)).stdout.strip()
    data = tmp_path / "agent"
    with open(tmp_path / "agent.log", "ab") as log:  # the child keeps its own copy of the descriptor
        agent = subprocess.Popen([sys.executable, "-m", "kubelite.cli", "agent", "--server", srv.url, "--token",
                                  token, "--node-name", "joined", "--node-ip", "127.0.0.5", "--runtime", "fake",
                                  "--data-dir", str(data)], stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True)
    try:
        def ready() -> bool:
            nodes = {n["metadata"]["name"]: n for n in srv.kjson("get", "nodes")["items"]}
            return any(c["type"] == "Ready" and c["status"] == "True"
                       for c in ((nodes.get("joined") or {}).get("status") or {}).get("conditions") or [])
        srv.wait_for(ready, timeout=60, what="node joined Ready")
        assert (data / "server-ca.crt").read_bytes() == (srv.data_dir / "tls" / "ca.crt").read_bytes()
    finally:
        stop_proc(agent)
        srv.kubectl("delete", "node", "joined", "--wait=false")


def test_an_agent_refuses_a_ca_that_does_not_match_the_token(srv, tmp_path):
    wrong = f"K10{'0' * 64}::node:{node_token(srv)}"
    out = _kubelite("agent", "--server", srv.url, "--token", wrong, "--node-name", "impostor", "--runtime", "fake",
                    "--data-dir", str(tmp_path / "agent"), timeout=60)
    assert out.returncode != 0
    assert "is not the one the join token pins" in out.stderr + out.stdout
    assert "impostor" not in [n["metadata"]["name"] for n in srv.kjson("get", "nodes")["items"]]
    # A --ca-file that is not the pinned CA is refused too.
    other = tmp_path / "other.crt"
    other.write_bytes(b"-----BEGIN CERTIFICATE-----\nnot the cluster CA\n-----END CERTIFICATE-----\n")
    token = _kubelite("token", "--data-dir", str(srv.data_dir)).stdout.strip()
    out = _kubelite("agent", "--server", srv.url, "--token", token, "--ca-file", str(other), "--node-name",
                    "impostor", "--runtime", "fake", "--data-dir", str(tmp_path / "agent2"), timeout=60)
    assert out.returncode != 0 and "is not the CA the join token pins" in out.stderr + out.stdout
