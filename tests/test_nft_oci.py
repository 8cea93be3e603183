"""The kernel Service path with the oci runtime: containers and rules outlive the server,
so a NodePort keeps answering through a kill -9 of the server and after it is back.
The load goes to 127.0.0.1 only; the pods live in namespaces the test's server made."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from kubelite.node.runtime.oci.runtime import missing
from tests.conftest import start_server
from tests.test_runtime_oci import build_busybox_dir

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("nft") is None,
                                reason="the kernel Service path needs root and nft (Debian nftables)")

IMAGE = "busybox-oci:1"


def tables() -> set[str]:
    out = subprocess.run(["nft", "list", "tables", "ip"], capture_output=True, text=True).stdout
    return {line.split()[-1] for line in out.splitlines() if line.startswith("table ip ")}


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kubelite.cli", *args], capture_output=True, text=True, timeout=120)


class Load:
    """One client in a thread: a fresh connection per request, every outcome counted."""

    def __init__(self, url: str):
        self.url = url
        self.ok = 0
        self.failed: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with urllib.request.urlopen(self.url, timeout=5) as r:
                    body = r.read()
                if b"hello from an oci container" in body:
                    self.ok += 1
                else:
                    self.failed.append(f"unexpected body {body[:60]!r}")
            except OSError as e:
                self.failed.append(str(e))
            time.sleep(0.01)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def wait_more(self, n: int, timeout: float = 30.0) -> None:
        """Until ``n`` more requests succeeded (the load is really flowing)."""
        want = self.ok + n
        deadline = time.monotonic() + timeout
        while self.ok < want and time.monotonic() < deadline and not self.failed:
            time.sleep(0.05)
        assert self.ok >= want, f"only {self.ok} of {want} answered; failures: {self.failed[:5]}"


def test_kill_9_of_the_server_under_load_through_a_node_port_fails_no_request(tmp_path: Path):
    why = missing()
    if why is not None:
        pytest.skip(f"the oci runtime is not usable here: {why}")
    data = tmp_path / "data"
    p = _cli("image", "import", IMAGE, str(build_busybox_dir(tmp_path / "image")), "--cmd", "sh",
             "--data-dir", str(data))
    assert p.returncode == 0, p.stderr
    srv = start_server(tmp_path, "--runtime", "oci", "--keep-pods-on-stop", data_dir=data)
    table = ""
    try:
        table = "kubelite_" + (data / "service-cidr").read_text().strip().replace(".", "_").replace("/", "_")
        container = {"name": "web", "image": IMAGE, "command": ["httpd", "-f", "-p", "8080", "-h", "/www"],
                     "ports": [{"containerPort": 8080}]}
        deploy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                  "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                           "template": {"metadata": {"labels": {"app": "web"}},
                                        "spec": {"terminationGracePeriodSeconds": 2, "containers": [container]}}}}
        srv.kubectl("apply", "-f", "-", input=json.dumps(deploy), check=True)
        srv.kubectl("expose", "deployment", "web", "--type=NodePort", "--port=8080", check=True)
        p = srv.kubectl("rollout", "status", "deployment/web", "--timeout=90s", timeout=120)
        assert p.returncode == 0, p.stderr + srv.log_tail()
        np = srv.kjson("get", "service", "web")["spec"]["ports"][0]["nodePort"]
        url = f"http://127.0.0.1:{np}/"

        def answers() -> bool:
            with urllib.request.urlopen(url, timeout=3) as r:
                return b"hello from an oci container" in r.read()
        srv.wait_for(answers, timeout=30, what=f"{url} answering")
        with Load(url) as load:
            load.wait_more(20)
            srv.stop(9)
            assert table in tables()
            load.wait_more(50)          # the kernel forwards while no server runs
            srv = start_server(tmp_path, "--runtime", "oci", "--keep-pods-on-stop", data_dir=data, port=srv.port)
            load.wait_more(50)          # and after the new one resynced the table
            assert table in tables()
        assert load.failed == [], f"{len(load.failed)} failed of {load.ok + len(load.failed)}: {load.failed[:5]}"
        srv.stop()
        assert table in tables()        # the containers live on, so do their Services
    finally:
        srv.stop()
        killed = _cli("killall", "--data-dir", str(data))
        assert killed.returncode == 0, killed.stderr
        if table:
            assert table not in tables()   # killall took it with the containers
