"""Shared fixtures: a real `kubelite server` on a free port in a temporary data dir.

Each test gets (or shares, per module) a fresh server process and drives it with the
real kubectl binaries and the Python clients, as a user would.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

# The network rule: nothing the tests start may try to reach a registry off this machine,
# nor resolve its name. Every server, agent and runtime they start (in this process or as
# a child, which inherits the environment) runs offline; loopback registries still work.
os.environ["KUBELITE_OFFLINE"] = "1"

KUBECTL_DIR = "/usr/lib/google-cloud-sdk/bin"
KUBECTL = os.path.join(KUBECTL_DIR, "kubectl.1.33")
KUBECTL_OLD = os.path.join(KUBECTL_DIR, "kubectl.1.28")


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """A running kubelite server process."""

    data_dir: Path
    port: int
    proc: subprocess.Popen
    cache_dir: Path
    log_path: Path
    args: list[str] = field(default_factory=list)
    host: str = "127.0.0.1"  # the address it serves on (its --bind-address)

    @property
    def kubeconfig(self) -> str:
        return str(self.data_dir / "kubeconfig")

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    def kubectl(self, *args: str, binary: str = KUBECTL, input: str | None = None, timeout: float = 60,
                env: dict | None = None, check: bool = False) -> subprocess.CompletedProcess:
        """Run a real kubectl against this server."""
        e = dict(os.environ, KUBECACHEDIR=str(self.cache_dir), KUBECONFIG=self.kubeconfig)
        e.pop("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", None)
        if env:
            e.update(env)
        p = subprocess.run([binary, *args], input=input, capture_output=True, text=True, timeout=timeout, env=e)
        if check and p.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({p.returncode}): {p.stderr}")
        return p

    def kjson(self, *args: str, binary: str = KUBECTL) -> dict:
        """kubectl … -o json, parsed."""
        p = self.kubectl(*args, "-o", "json", binary=binary, check=True)
        return json.loads(p.stdout)

    def wait_for(self, cond, timeout: float = 30.0, interval: float = 0.1, what: str = "condition"):
        """Poll cond() until it returns a truthy value; fail with the server log tail."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                last = cond()
                if last:
                    return last
            except Exception as e:  # keep polling; report the last error
                last = e
            time.sleep(interval)
        raise AssertionError(f"timed out waiting for {what}; last={last!r}\n--- server log\n{self.log_tail()}")

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def client_config(self):
        from kubelite.client.rest import ClientConfig
        return ClientConfig.from_kubeconfig(self.kubeconfig)

    def stop(self, sig: int = 15) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=45)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


START_TIMEOUT = 90.0


def audit_flags(tmp: Path, policy: str) -> tuple[list[str], Path]:
    """`kubelite server` flags that write the audit log ``policy`` (YAML) selects into ``tmp``;
    the flags and the log's path."""
    (tmp / "audit-policy.yaml").write_text(policy)
    log = tmp / "audit.log"
    return ["--audit-policy-file", str(tmp / "audit-policy.yaml"), "--audit-log-path", str(log)], log


def audit_events(log: Path) -> list[dict]:
    """Every audit event written to ``log`` so far."""
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def wait_for(cond, what: str, timeout: float = 30.0):
    """Poll ``cond`` every 50 ms until it returns something truthy (returned); AssertionError
    naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def start_server(tmp: Path, *extra: str, data_dir: Path | None = None, port: int | None = None,
                 host: str = "127.0.0.1") -> Server:
    """Start `kubelite server` and wait for /readyz (at ``host``, where its --bind-address puts it)."""
    data_dir = data_dir or (tmp / "data")
    port = port or free_port()
    cache = tmp / "kcache"
    log_path = tmp / f"server-{port}.log"
    if "--runtime" not in extra:
        # The server's default (auto) is the oci runtime as root, whose containers outlive the
        # server and need `kubelite killall`: a test that wants it asks for it (and cleans up).
        extra = ("--runtime", "process", *extra)
    args = [sys.executable, "-m", "kubelite.cli", "server", "--data-dir", str(data_dir), "--api-port", str(port), *extra]
    with open(log_path, "ab") as log:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    srv = Server(data_dir, port, proc, cache, log_path, args, host)
    # Generous: on a 2-core machine running test files in parallel a start can take this long;
    # a server that cannot start fails sooner, when its process exits.
    deadline = time.monotonic() + START_TIMEOUT
    import ssl
    import urllib.request
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}:\n{srv.log_tail()}")
        if (data_dir / "kubeconfig").exists():
            try:
                with urllib.request.urlopen(f"https://{host}:{port}/readyz", context=ctx, timeout=2) as r:
                    if r.status == 200:
                        return srv
            except OSError:
                pass
        time.sleep(0.05)
    srv.stop(9)
    raise AssertionError(f"server not ready in {START_TIMEOUT:g} s:\n{srv.log_tail()}")


API_ONLY = ("--disable", "controllers,scheduler,agent,proxy")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Under `-n N --dist loadgroup`, keep each file on one worker (its module-scoped servers
    start once) unless a test names its own `xdist_group` (tests that must not run beside
    each other share one)."""
    if not config.pluginmanager.hasplugin("xdist"):
        return
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::", 1)[0]))


@pytest.fixture(scope="module")
def clusters(tmp_path_factory):
    """Whole-cluster servers by proxy mode ("nftables", "userspace"), each started when a test
    of the module first asks for it."""
    started: dict[str, Server] = {}

    def get(mode: str) -> Server:
        if mode not in started:
            started[mode] = start_server(tmp_path_factory.mktemp(f"proxy-{mode}"), "--proxy-mode", mode)
        return started[mode]
    yield get
    for srv in started.values():
        srv.stop()


@pytest.fixture(scope="module")
def api_server(tmp_path_factory):
    """An API server alone (no controllers or node): for API-surface tests."""
    tmp = tmp_path_factory.mktemp("api")
    srv = start_server(tmp, *API_ONLY)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A whole cluster: API server, controllers, scheduler, one node agent, proxy."""
    tmp = tmp_path_factory.mktemp("cluster")
    srv = start_server(tmp)
    yield srv
    srv.stop()


def namespace_name(request, prefix: str = "t") -> str:
    """A unique, DNS-safe namespace name made from the test's id (parametrized ids too)."""
    import re
    base = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower().removeprefix("test_"))[:40].strip("-")
    return f"{prefix}-{base}-{os.urandom(2).hex()}"


def create_namespace(srv: Server, request, prefix: str = "t") -> str:
    """Create a fresh namespace for one test on ``srv`` (as kr8s's tests do); its name."""
    name = namespace_name(request, prefix)
    srv.kubectl("create", "namespace", name, check=True)
    return name


@pytest.fixture
def ns(request, api_server):
    """A fresh namespace per test on the module's API server."""
    return create_namespace(api_server, request)
