"""Servers on one etcd share the cluster's CA and keys through the datastore (k3s's bootstrap data):
a second server given `--token` joins with nothing copied by hand; a wrong token, a token that
pins another CA, or no token at all is refused before the server serves."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from kubelite import bootstrapdata
from kubelite.pki import PKI
from tests.conftest import API_ONLY, KUBECTL, free_port, start_server
from tests.etcdkit import start_etcd


@pytest.fixture(scope="module")
def etcd(tmp_path_factory):
    """One etcd member for the module's servers."""
    e = start_etcd(tmp_path_factory.mktemp("etcd"))
    yield e
    e.stop()


def token_of(data_dir) -> str:
    """What `kubelite token` prints for a server's data directory."""
    return subprocess.run([sys.executable, "-m", "kubelite.cli", "token", "--data-dir", str(data_dir)],
                          capture_output=True, text=True, timeout=60, check=True).stdout.strip()


def refused(tmp_path, name: str, endpoint: str, *extra: str) -> str:
    """Start a server that must refuse to start; its error output."""
    p = subprocess.run([sys.executable, "-m", "kubelite.cli", "server", "--data-dir", str(tmp_path / name),
                        "--api-port", str(free_port()), *API_ONLY, "--datastore-endpoint", endpoint, *extra],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode != 0, p.stderr
    return p.stderr


def kubectl_at(kubeconfig, port: int, *args: str, token: str = "", ca: str = "") -> subprocess.CompletedProcess[str]:
    """kubectl with one server's kubeconfig (or a bearer token) against another server's port."""
    auth = ["--token", token, "--certificate-authority", ca, "--kubeconfig", os.devnull] if token else \
        ["--kubeconfig", str(kubeconfig)]
    return subprocess.run([KUBECTL, *auth, "--server", f"https://127.0.0.1:{port}", *args],
                          capture_output=True, text=True, timeout=60)


def test_a_second_server_given_the_token_joins_with_the_clusters_ca_and_keys(etcd, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = start_server(tmp_path / "a", *API_ONLY, "--datastore-endpoint", etcd.endpoint)
    b = None
    try:
        token = token_of(a.data_dir)
        assert token.startswith("K10")
        b = start_server(tmp_path / "b", *API_ONLY, "--datastore-endpoint", etcd.endpoint, "--token", token)
        for name in bootstrapdata.SHARED:
            assert (b.data_dir / "tls" / name).read_bytes() == (a.data_dir / "tls" / name).read_bytes(), name
        # Its own serving certificate, issued by the shared CA: A's admin kubeconfig works against B.
        assert (b.data_dir / "tls" / "serving.key").read_bytes() != (a.data_dir / "tls" / "serving.key").read_bytes()
        a.kubectl("create", "namespace", "made-on-a", check=True)
        got = kubectl_at(a.kubeconfig, b.port, "get", "namespace", "made-on-a", "-o", "name")
        assert got.returncode == 0 and got.stdout.strip() == "namespace/made-on-a", got.stderr
        # A service-account token minted by A is accepted by B (one signing key).
        a.kubectl("create", "serviceaccount", "robot", "-n", "made-on-a", check=True)
        sa_token = a.kubectl("create", "token", "robot", "-n", "made-on-a", check=True).stdout.strip()
        who = kubectl_at(None, b.port, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}",
                         token=sa_token, ca=str(a.data_dir / "tls" / "ca.crt"))
        assert who.returncode == 0 and who.stdout == "system:serviceaccount:made-on-a:robot", who.stderr
        # The join token printed on B is the cluster's, the same as A's.
        assert token_of(b.data_dir) == token
        # B restarts without --token: its own data directory opens the cluster's data.
        b.stop()
        b = start_server(tmp_path / "b", *API_ONLY, "--datastore-endpoint", etcd.endpoint, data_dir=b.data_dir)
        got = kubectl_at(a.kubeconfig, b.port, "get", "namespace", "made-on-a", "-o", "name")
        assert got.returncode == 0, got.stderr
    finally:
        if b is not None:
            b.stop()
        a.stop()


def test_a_server_with_a_wrong_or_missing_token_is_refused_before_it_serves(tmp_path):
    e = start_etcd(tmp_path / "etcd")
    try:
        (tmp_path / "a").mkdir()
        a = start_server(tmp_path / "a", *API_ONLY, "--datastore-endpoint", e.endpoint)
        try:
            token = token_of(a.data_dir)
            ca_hash = token[3:67]
            err = refused(tmp_path, "wrong", e.endpoint, "--token", f"K10{ca_hash}::node:not-the-secret")
            assert "--token does not open the cluster's bootstrap data" in err
            other = "0" * 64
            err = refused(tmp_path, "pinned", e.endpoint, "--token", f"K10{other}::node:{token.rsplit(':', 1)[1]}")
            assert "does not have the hash --token pins" in err
            err = refused(tmp_path, "none", e.endpoint)
            assert "the datastore already holds a cluster: start this server with --token" in err
            # None of them left the cluster's CA in its data directory.
            for name in ("wrong", "pinned", "none"):
                assert not (tmp_path / name / "tls" / "ca.key").exists()
        finally:
            a.stop()
    finally:
        e.stop()


def test_a_data_directory_of_another_cluster_is_refused(tmp_path):
    PKI(str(tmp_path / "solo" / "data")).ensure()  # a data directory with a CA of its own
    e = start_etcd(tmp_path / "etcd")
    try:
        (tmp_path / "a").mkdir()
        a = start_server(tmp_path / "a", *API_ONLY, "--datastore-endpoint", e.endpoint)
        try:
            err = refused(tmp_path, "solo/data", e.endpoint, "--token", token_of(a.data_dir))
            assert "differ from the cluster's in the datastore" in err
            assert (tmp_path / "solo" / "data" / "tls" / "ca.key").read_bytes() != \
                (a.data_dir / "tls" / "ca.key").read_bytes(), "the refused server's own CA was overwritten"
        finally:
            a.stop()
    finally:
        e.stop()


def test_token_without_etcd_is_refused(tmp_path):
    p = subprocess.run([sys.executable, "-m", "kubelite.cli", "server", "--data-dir", str(tmp_path / "d"),
                        "--api-port", str(free_port()), *API_ONLY, "--token", "abc"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode != 0 and "--token joins this server to the cluster kept in an etcd" in p.stderr


def test_sealed_data_opens_only_with_its_secret():
    files = {"ca.crt": b"cert", "ca.key": b"key"}
    blob = bootstrapdata.seal(files, "s3cret")
    assert b"Y2VydA" not in blob and b"cert" not in blob  # neither the plain bytes nor their base64
    assert bootstrapdata.unseal(blob, "s3cret") == files
    with pytest.raises(bootstrapdata.BootstrapError, match="does not open"):
        bootstrapdata.unseal(blob, "other")
    with pytest.raises(bootstrapdata.BootstrapError, match="damaged"):
        bootstrapdata.unseal(b"{}", "s3cret")
