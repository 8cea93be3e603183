"""The real kubectl (SPDY in ≤1.29, WebSockets after) and the Python client against kubelite.streams."""
from __future__ import annotations

import fcntl
import http.client
import os
import pty
import select
import signal
import socket
import struct
import subprocess
import termios
import urllib.request

import pytest
from test_streams_harness import KUBECTL, FakeCluster, PodHTTPServer

EXEC_VERSIONS = ["27", "28", "29", "30", "33"]  # 27–29 SPDY, 30+ WebSocket v5
PF_VERSIONS = ["28", "30", "31", "33"]  # ≤30 SPDY, ≥31 SPDY tunnelled in a WebSocket


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = FakeCluster().start()
    pod = PodHTTPServer(c.loop).start()
    c.pod_ports[8080] = pod.port
    c.dir = tmp_path_factory.mktemp("kube")
    yield c
    c.stop()


def kubectl_env(cluster) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
    env["KUBECONFIG"] = str(cluster.kubeconfig(cluster.dir))
    env["KUBECACHEDIR"] = str(cluster.dir / "cache")
    env["HOME"] = str(cluster.dir)
    return env


def kubectl(cluster, version: str, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([KUBECTL.format(version), *args], input=input, capture_output=True,
                          env=kubectl_env(cluster), timeout=60)


@pytest.mark.parametrize("version", EXEC_VERSIONS)
def test_exec_echo(cluster, version):
    res = kubectl(cluster, version, "exec", "p", "--", "echo", "hi")
    assert res.returncode == 0, res.stderr
    assert res.stdout == b"hi\n"


@pytest.mark.parametrize("version", EXEC_VERSIONS)
def test_exec_nonzero_exit_code_is_reported(cluster, version):
    res = kubectl(cluster, version, "exec", "p", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert res.returncode == 3
    assert res.stdout == b"out\n"
    assert b"err\n" in res.stderr
    assert b"command terminated with exit code 3" in res.stderr


@pytest.mark.parametrize("version", EXEC_VERSIONS)
def test_exec_stdin_is_piped_until_eof(cluster, version):
    res = kubectl(cluster, version, "exec", "-i", "p", "--", "sh", "-c", "cat; echo done",
                  input=b"abc\n" * 1000)
    assert res.returncode == 0, res.stderr
    assert res.stdout == b"abc\n" * 1000 + b"done\n"


@pytest.mark.parametrize("version", ["28", "33"])
def test_exec_large_output(cluster, version):
    res = kubectl(cluster, version, "exec", "p", "--", "sh", "-c", "head -c 3000000 /dev/zero")
    assert res.returncode == 0, res.stderr
    assert len(res.stdout) == 3000000


@pytest.mark.parametrize("version", ["28", "33"])
def test_attach_runs_the_container_session(cluster, version):
    res = kubectl(cluster, version, "attach", "-i", "p", input=b"echo attached\nexit 0\n")
    assert b"attached" in res.stdout, res.stderr


def _read_until(fd: int, buf: bytearray, token: bytes) -> bool:
    while token not in buf:
        ready, _, _ = select.select([fd], [], [], 20)
        if not ready:
            return False
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            return False
        if not chunk:
            return False
        buf += chunk
    return True


@pytest.mark.parametrize("version", ["28", "33"])
def test_exec_tty_session_with_resize(cluster, version):
    pid, fd = pty.fork()
    if pid == 0:  # child: become kubectl
        os.execve(KUBECTL.format(version), ["kubectl", "exec", "-ti", "p", "--", "sh"], kubectl_env(cluster))
    try:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))
        out = bytearray()
        assert _read_until(fd, out, b"$ "), bytes(out)
        os.write(fd, b"echo $((6*7)); stty size\r")
        assert _read_until(fd, out, b"40 100"), bytes(out)
        assert b"42\r\n" in out
        os.write(fd, b"exit 5\r")
        _read_until(fd, out, b"command terminated with exit code 5")
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 5
    finally:
        os.close(fd)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("version", PF_VERSIONS)
def test_port_forward_serves_pod_http(cluster, version):
    local = _free_port()
    proc = subprocess.Popen([KUBECTL.format(version), "port-forward", "pod/p", f"{local}:8080"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=kubectl_env(cluster))
    try:
        line = proc.stdout.readline()
        assert f"Forwarding from 127.0.0.1:{local} -> 8080".encode() in line, proc.stderr.read1(4096)
        for path in ("/one", "/two"):
            with urllib.request.urlopen(f"http://127.0.0.1:{local}{path}", timeout=10) as resp:
                assert resp.read() == f"hello from pod path={path} body=0\n".encode()
        req = urllib.request.Request(f"http://127.0.0.1:{local}/post", data=b"x" * 200000)
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.read() == b"hello from pod path=/post body=200000\n"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()


@pytest.mark.parametrize("version", ["28", "33"])
def test_port_forward_reports_unreachable_port(cluster, version):
    local = _free_port()
    proc = subprocess.Popen([KUBECTL.format(version), "port-forward", "pod/p", f"{local}:9999"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=kubectl_env(cluster))
    try:
        assert b"Forwarding from" in proc.stdout.readline()
        # kubectl drops the local connection when the pod refuses: a reset or an empty reply.
        with (pytest.raises((OSError, http.client.HTTPException)),
              urllib.request.urlopen(f"http://127.0.0.1:{local}/", timeout=10) as resp):
            resp.read()
        proc.wait(30)  # kubectl ≥1.29 gives up on the error; older ones keep serving
    except subprocess.TimeoutExpired:
        pass
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            proc.wait(10)
        err = proc.stderr.read()
        proc.stdout.close()
        proc.stderr.close()
    assert b"error forwarding port 9999" in err
    assert b"connection refused" in err


# -- the Python kubernetes client --------------------------------------------------------


@pytest.fixture(scope="module")
def core_v1(cluster):
    from kubernetes import client, config
    api_client = config.new_client_from_config(str(cluster.kubeconfig(cluster.dir)))
    return client.CoreV1Api(api_client)


def test_python_client_exec(core_v1):
    from kubernetes.stream import stream
    out = stream(core_v1.connect_get_namespaced_pod_exec, "p", "default",
                 command=["sh", "-c", "echo hi; echo e >&2"], stderr=True, stdin=False, stdout=True, tty=False)
    assert out == "hi\ne\n"


def test_python_client_exec_returncode_and_stdin(core_v1):
    from kubernetes.stream import stream
    resp = stream(core_v1.connect_get_namespaced_pod_exec, "p", "default",
                  command=["sh", "-c", "read line; echo got $line; exit 4"], stderr=True, stdin=True,
                  stdout=True, tty=False, _preload_content=False)
    resp.write_stdin("ping\n")
    resp.run_forever(timeout=20)
    assert resp.read_stdout() == "got ping\n"
    assert resp.returncode == 4


def test_python_client_portforward(core_v1):
    from kubernetes.stream import portforward
    pf = portforward(core_v1.connect_get_namespaced_pod_portforward, "p", "default", ports="8080")
    sock = pf.socket(8080)
    sock.setblocking(True)
    sock.sendall(b"GET /z HTTP/1.1\r\nHost: pod\r\nConnection: close\r\n\r\n")
    data = b""
    while chunk := sock.recv(4096):
        data += chunk
    sock.close()
    assert data.endswith(b"hello from pod path=/z body=0\n")
    assert pf.error(8080) is None
    pf.close()
