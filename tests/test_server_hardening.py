"""The server is as safe as kube-apiserver against its own data directory and its clients:
private file modes whatever existed before, limits on connections and requests in flight,
and /readyz that says ok only when everything local is serving."""
from __future__ import annotations

import functools
import json
import os
import socket
import ssl
import stat
import threading
from pathlib import Path

from conftest import API_ONLY, start_server

from kubelite.pki import PKI


def _mode(p: Path) -> int:
    return stat.S_IMODE(os.lstat(p).st_mode)


def _loosen(data: Path) -> None:
    """Every directory 0755 and every file 0644 under data, as a careless copy would leave them."""
    for root, _dirs, files in os.walk(data):
        os.chmod(root, 0o755)
        for f in files:
            os.chmod(os.path.join(root, f), 0o644)


def _secret_modes(data: Path) -> dict[str, int]:
    """The modes of what must be private: the data dir, tls/ and db/ and their secrets, the kubeconfig."""
    out = {".": _mode(data)}
    for sub in ("tls", "db"):
        out[sub] = _mode(data / sub)
        for f in (data / sub).iterdir():
            if not f.name.endswith(".crt"):
                out[f"{sub}/{f.name}"] = _mode(f)
    out["kubeconfig"] = _mode(data / "kubeconfig")
    return out


def test_data_directory_and_secrets_are_private_whatever_existed_before(tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    os.chmod(data, 0o755)  # whatever the umask said
    (data / "notes.txt").write_text("left by the user")
    srv = start_server(tmp_path, *API_ONLY, data_dir=data)
    try:
        srv.kubectl("create", "secret", "generic", "s", "--from-literal=k=v", check=True)
        modes = _secret_modes(data)
    finally:
        srv.stop()
    assert {"db/state.db", "db/state.db-wal", "db/state.db-shm", "tls/ca.key", "tls/tokens.csv"} <= set(modes)
    assert modes == {k: (0o700 if k in (".", "tls", "db") else 0o600) for k in modes}

    # A data directory restored with loose modes (dirs 0755, files 0644) is tightened at start.
    _loosen(data)
    assert _mode(data / "db" / "state.db") == 0o644
    srv = start_server(tmp_path, *API_ONLY, data_dir=data, port=srv.port)
    try:
        srv.kubectl("create", "secret", "generic", "s2", "--from-literal=k=v", check=True)
        modes = _secret_modes(data)
    finally:
        srv.stop()
    assert {"db/state.db", "db/state.db-wal", "db/state.db-shm"} <= set(modes)
    assert modes == {k: (0o700 if k in (".", "tls", "db") else 0o600) for k in modes}
    # Certificates are public and the user's own files are left alone.
    assert _mode(data / "tls" / "ca.crt") == 0o644
    assert _mode(data / "notes.txt") == 0o644


# -- slow clients --------------------------------------------------------------------------

FLOOD = 2000             # half-header TLS connections, all from kubectl's own address
PER_ADDRESS = 300        # the server's per-address cap in this test
SLOW_BODIES = 20         # requests whose body never finishes, from another address
MUTATING_INFLIGHT = 10


@functools.cache
def _client_context(cert: tuple[str, str] | None) -> ssl.SSLContext:
    """One client TLS context per identity (building one reads the system's CA store: slow)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if cert:
        ctx.load_cert_chain(*cert)
    return ctx


def _tls(port: int, source: str, cert: tuple[str, str] | None = None) -> ssl.SSLSocket:
    """A TLS connection to the test server from ``source`` (a 127.x address of this machine)."""
    ctx = _client_context(cert)
    raw = socket.create_connection(("127.0.0.1", port), timeout=30, source_address=(source, 0))
    try:
        return ctx.wrap_socket(raw)
    except BaseException:
        raw.close()
        raise


def _closed_by_server(s: ssl.SSLSocket) -> bool:
    """Has the server closed this connection (EOF or reset), without waiting?"""
    s.setblocking(False)
    try:
        return s.recv(1) == b""
    except (ssl.SSLWantReadError, BlockingIOError):
        return False
    except OSError:
        return True


def _half_header(port: int, source: str) -> ssl.SSLSocket | None:
    """A connection that sends part of a request header and then nothing (None: refused at once)."""
    try:
        s = _tls(port, source)
        s.sendall(b"GET /api/v1/namespaces HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow")
        return s
    except OSError:
        return None  # evicted or refused while connecting: what the caps are for


def _slow_body(port: int, source: str, cert: tuple[str, str]) -> ssl.SSLSocket:
    """An authenticated create whose body stops after 100 of 2000 bytes."""
    s = _tls(port, source, cert)
    s.sendall(b"POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: 127.0.0.1\r\n"
              b"Content-Type: application/json\r\nContent-Length: 2000\r\n\r\n" + b" " * 100)
    return s


def _read_until_closed(s: ssl.SSLSocket) -> bytes:
    """Everything the server sends until it closes the connection."""
    s.setblocking(True)
    s.settimeout(60)
    out = b""
    try:
        while chunk := s.recv(65536):
            out += chunk
    except (ssl.SSLEOFError, ConnectionResetError):
        pass  # closed without a TLS goodbye: what was read is the reply
    return out


def _post(port: int, cert: tuple[str, str], name: str) -> tuple[int, dict[str, str], bytes]:
    """POST a ConfigMap as the given client certificate: status, headers, body."""
    import http.client
    c = http.client.HTTPSConnection("127.0.0.1", port, context=_client_context(cert), timeout=30)
    try:
        body = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}})
        c.request("POST", "/api/v1/namespaces/default/configmaps", body=body,
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        c.close()


def _answers(srv) -> None:
    """kubectl reads and writes, and the Python client lists: all succeed."""
    from kubernetes import client, config
    srv.kubectl("get", "namespaces", check=True)
    name = f"during-{os.urandom(3).hex()}"
    srv.kubectl("create", "configmap", name, "--from-literal=a=b", check=True)
    assert srv.kjson("get", "configmap", name)["data"] == {"a": "b"}
    api = config.new_client_from_config(config_file=srv.kubeconfig)
    try:
        assert any(n.metadata.name == "default" for n in client.CoreV1Api(api).list_namespace().items)
    finally:
        api.close()


def test_slow_clients_do_not_lock_out_kubectl(tmp_path):
    """A bounded slow-client flood: stalled TLS headers from kubectl's own address, bodies that
    never finish, and a user over the in-flight cap; kubectl keeps getting answers throughout."""
    srv = start_server(tmp_path, *API_ONLY, "--max-connections-per-address", str(PER_ADDRESS),
                       "--request-header-timeout", "10", "--request-body-timeout", "10",
                       "--max-mutating-requests-inflight", str(MUTATING_INFLIGHT))
    flood: list[ssl.SSLSocket] = []
    slow: list[ssl.SSLSocket] = []
    try:
        limits = (srv.data_dir / ".." / "limits").resolve()
        limits.mkdir()
        pki = PKI(str(srv.data_dir))
        admin = (pki.admin_cert, pki.admin_key)
        user = (str(limits / "user.crt"), str(limits / "user.key"))
        pki.issue_client("limited-user", [], *user)  # not system:masters: the in-flight caps apply

        # The server runs with every descriptor the hard limit allows.
        lim = Path(f"/proc/{srv.proc.pid}/limits").read_text()
        soft, hard = next(line.split()[3:5] for line in lim.splitlines() if line.startswith("Max open files"))
        assert soft == hard

        # Stalled headers from 127.0.0.1 while kubectl (also 127.0.0.1) works.
        opened = threading.Event()

        def open_flood() -> None:
            for _ in range(FLOOD):
                s = _half_header(srv.port, "127.0.0.1")
                if s is not None:
                    flood.append(s)
            opened.set()
        t = threading.Thread(target=open_flood, daemon=True)
        t.start()
        while not opened.is_set():
            _answers(srv)  # during the flood
        t.join()
        _answers(srv)
        # The address's cap held: the server closed all but at most PER_ADDRESS of them.
        still_open = [s for s in flood if not _closed_by_server(s)]
        assert len(still_open) <= PER_ADDRESS
        # ... and the descriptors of the connections it pushed out are released, not lingering.
        assert len(os.listdir(f"/proc/{srv.proc.pid}/fd")) < FLOOD // 2

        # Bodies that never finish take the mutating seats; other users then get 429 ...
        slow = [_slow_body(srv.port, "127.0.0.2", admin) for _ in range(SLOW_BODIES)]
        status, headers, body = srv.wait_for(
            lambda: (r := _post(srv.port, user, f"u-{os.urandom(3).hex()}"))[0] == 429 and r,
            what="a 429 for a user over the mutating in-flight cap")
        assert headers["Retry-After"] == "1"
        assert body == b"Too many requests, please try again later.\n"
        # ... while kubectl (system:masters) is always answered, reads and writes.
        _answers(srv)

        # Every late body is answered 408 and its connection closed; the seats are free again.
        for s in slow:
            reply = _read_until_closed(s)
            assert reply.startswith(b"HTTP/1.1 408 "), reply[:80]
            status_body = json.loads(reply.split(b"\r\n\r\n", 1)[1])
            assert status_body["kind"] == "Status" and status_body["reason"] == "Timeout"
        code, _, _ = _post(srv.port, user, f"u-{os.urandom(3).hex()}")
        assert code != 429

        # Stalled headers are closed by the header timeout; kubectl still answers afterwards.
        srv.wait_for(lambda: all(_closed_by_server(s) for s in flood), timeout=60,
                     what="the server to close every stalled connection")
        _answers(srv)
        assert srv.proc.poll() is None
    finally:
        for s in flood + slow:
            s.close()
        srv.stop()


# -- readiness -----------------------------------------------------------------------------


def test_readyz_says_ok_only_when_node_ports_and_restarted_pods_serve(tmp_path):
    """After a restart, the first request through a NodePort after /readyz said ok succeeds.

    Host networking: the pod's address is a 127.x one, so nothing is dialled outside this
    machine even while the restarted server still holds the old endpoints."""
    import urllib.request

    from nodeharness import BOOTCAMP

    srv = start_server(tmp_path, "--network", "host")
    try:
        # A pod that takes a while to serve again after the restart (longer than the
        # controllers and the proxy take to sync), so /readyz must wait for it in particular.
        container = {"name": "web", "image": BOOTCAMP, "ports": [{"containerPort": 8080}],
                     "command": ["sh", "-c", "sleep 3; exec sh start.sh"]}
        deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                      "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                               "template": {"metadata": {"labels": {"app": "web"}},
                                            "spec": {"containers": [container]}}}}
        srv.kubectl("apply", "-f", "-", input=json.dumps(deployment), check=True)
        srv.kubectl("expose", "deployment/web", "--type=NodePort", "--port", "8080", check=True)
        node_port = srv.kjson("get", "service", "web")["spec"]["ports"][0]["nodePort"]
        url = f"http://127.0.0.1:{node_port}/"

        def answers() -> bool:
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.status == 200
        srv.wait_for(answers, 60, what="the NodePort to answer")
        pod = srv.kjson("get", "pods", "-l", "app=web")["items"][0]["metadata"]["name"]
    finally:
        srv.stop()

    # While stopping, the agent may report its pods not ready before the API server goes:
    # the stored status then no longer says the pod served. Make that happen for sure.
    api = start_server(tmp_path, *API_ONLY, data_dir=srv.data_dir, port=srv.port)
    try:
        api.kubectl("patch", "pod", pod, "--subresource=status", "-p",
                    json.dumps({"status": {"conditions": [{"type": "Ready", "status": "False"}]}}), check=True)
        conds = api.kjson("get", "pod", pod)["status"]["conditions"]
        assert {"type": "Ready", "status": "False"}.items() <= next(c for c in conds if c["type"] == "Ready").items()
    finally:
        api.stop()

    # start_server polls /readyz every 50 ms and returns at the first 200.
    srv = start_server(tmp_path, "--network", "host", data_dir=srv.data_dir, port=srv.port)
    try:
        with urllib.request.urlopen(url, timeout=10) as r:  # one attempt, no retry
            assert r.status == 200
            assert r.read().startswith(b"Hello Kubernetes bootcamp!")
        verbose = srv.kubectl("get", "--raw", "/readyz?verbose", check=True).stdout
        for check in ("kubelite-controllers-synced", "kubelite-node-agent-ready", "kubelite-proxy-synced"):
            assert f"[+]{check} ok" in verbose.splitlines()
        assert srv.kubectl("get", "--raw", "/readyz/kubelite-proxy-synced", check=True).stdout == "ok"
        # Liveness does not depend on the components.
        assert "kubelite-" not in srv.kubectl("get", "--raw", "/livez?verbose", check=True).stdout
    finally:
        srv.stop()


def test_readyz_without_components_has_no_component_checks(tmp_path):
    srv = start_server(tmp_path, *API_ONLY)
    try:
        verbose = srv.kubectl("get", "--raw", "/readyz?verbose", check=True).stdout
        assert "kubelite-" not in verbose and verbose.endswith("readyz check passed\n")
    finally:
        srv.stop()
