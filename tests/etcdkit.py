"""etcd members (Debian's etcd-server) on free loopback ports in a temp dir, for tests: one
member (``start_etcd``) or a cluster of several (``start_etcd_cluster``)."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ETCD = shutil.which("etcd") or "/usr/bin/etcd"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Etcd:
    """A running etcd member; ``endpoint`` is its client URL."""

    data_dir: Path
    client_port: int
    peer_port: int
    log_path: Path
    proc: subprocess.Popen | None = None
    # (CA, serving cert, serving key): clients must then use https and a certificate of that CA.
    tls: tuple[str, str, str] | None = None
    client_tls: tuple[str, str, str] | None = None  # (CA, client cert, client key) for etcdctl
    name: str = "t"
    initial_cluster: str = ""  # name=peer-url,… of every member ("" = this one alone)

    @property
    def endpoint(self) -> str:
        """The client URL (http, or https with ``tls``, on loopback)."""
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.client_port}"

    def _ctl_flags(self) -> list[str]:
        if not self.client_tls:
            return []
        ca, cert, key = self.client_tls
        return ["--cacert", ca, "--cert", cert, "--key", key]

    @property
    def peer_url(self) -> str:
        """The URL the other members reach this one at."""
        return f"http://127.0.0.1:{self.peer_port}"

    def launch(self) -> None:
        """Start the process (keeping its data) without waiting for it."""
        args = [ETCD, "--name", self.name, "--data-dir", str(self.data_dir),
                "--listen-client-urls", self.endpoint, "--advertise-client-urls", self.endpoint,
                "--listen-peer-urls", self.peer_url, "--initial-advertise-peer-urls", self.peer_url,
                "--initial-cluster", self.initial_cluster or f"{self.name}={self.peer_url}",
                "--listen-metrics-urls", f"http://127.0.0.1:{_free_port()}"]
        if self.tls:
            ca, cert, key = self.tls
            args += ["--cert-file", cert, "--key-file", key, "--trusted-ca-file", ca, "--client-cert-auth"]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_healthy(self, timeout: float = 30) -> Etcd:
        """Wait until the member answers as healthy (a cluster member needs its quorum)."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"etcd exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.client_port), timeout=1):
                    pass
                p = subprocess.run(["etcdctl", "--endpoints", self.endpoint, *self._ctl_flags(), "endpoint", "health"],
                                   capture_output=True, text=True, timeout=10, env=dict(os.environ, ETCDCTL_API="3"))
                if p.returncode == 0:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"etcd not healthy in {timeout:.0f} s:\n{self.log_tail()}")

    def start(self) -> Etcd:
        """Start (or restart, keeping its data) and wait until it answers."""
        self.launch()
        return self.wait_healthy()

    def kill(self) -> None:
        """SIGKILL the member (its data stays for a restart)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def stop(self) -> None:
        """Stop the member (SIGTERM, then SIGKILL)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def log_tail(self, n: int = 40) -> str:
        """The end of etcd's log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def etcdctl(self, *args: str) -> str:
        """Run etcdctl against this member and return its output."""
        p = subprocess.run(["etcdctl", "--endpoints", self.endpoint, *self._ctl_flags(), *args], capture_output=True, text=True,
                           timeout=30, env=dict(os.environ, ETCDCTL_API="3"), check=True)
        return p.stdout


def start_etcd(tmp: Path, tls: tuple[str, str, str] | None = None,
               client_tls: tuple[str, str, str] | None = None) -> Etcd:
    """A fresh one-member etcd in ``tmp`` (serving TLS and asking for client certificates with ``tls``)."""
    tmp.mkdir(parents=True, exist_ok=True)

    def attempt(n: int) -> list[Etcd]:
        data = tmp / ("etcd-data" if n == 0 else f"etcd-data-{n}")
        return [Etcd(data, _free_port(), _free_port(), tmp / "etcd.log", tls=tls, client_tls=client_tls).start()]
    return _with_fresh_ports(attempt)[0]


def _with_fresh_ports(attempt: Callable[[int], list[Etcd]], tries: int = 3) -> list[Etcd]:
    """``attempt(n)`` again with other ports when a port picked as free was taken before etcd
    bound it (other tests, running in parallel, open connections from the same port range)."""
    for n in range(tries):
        try:
            return attempt(n)
        except AssertionError as e:
            if "address already in use" not in str(e) or n == tries - 1:
                raise
    raise AssertionError("unreachable")


def start_etcd_cluster(tmp: Path, n: int = 3) -> list[Etcd]:
    """A fresh ``n``-member etcd cluster in ``tmp``; the client URLs joined by commas are the
    server's ``--datastore-endpoint``."""
    tmp.mkdir(parents=True, exist_ok=True)

    def attempt(k: int) -> list[Etcd]:
        members = [Etcd(tmp / f"etcd-data-{i}" if k == 0 else tmp / f"etcd-data-{i}-{k}", _free_port(), _free_port(),
                        tmp / f"etcd-{i}.log", name=f"m{i}") for i in range(n)]
        cluster = ",".join(f"{m.name}={m.peer_url}" for m in members)
        for m in members:
            m.initial_cluster = cluster
            m.launch()
        try:
            for m in members:
                m.wait_healthy(60)
        except BaseException:
            for m in members:
                m.stop()
            raise
        return members
    return _with_fresh_ports(attempt)
