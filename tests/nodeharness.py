"""Helpers for the node-agent and scheduler end-to-end tests: pod manifests, long-running
kubectl processes whose output is read line by line, kubectl under a pseudo-terminal, and
joined agents."""
from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from conftest import KUBECTL, Server

BOOTCAMP = "gcr.io/google-samples/kubernetes-bootcamp:v1"


def pod(name: str, *, image: str = BOOTCAMP, command: list[str] | None = None, **container) -> dict:
    """A one-container pod named `name` whose container is `c`; extra container fields as kwargs.

    ``spec`` (a dict) is merged into the pod spec."""
    spec_extra = container.pop("spec", {})
    c = {"name": "c", "image": image, **container}
    if command:
        c["command"] = command
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [c], **spec_extra}}


def apply(srv: Server, ns: str, *objs: dict) -> None:
    """kubectl apply the objects into `ns`."""
    srv.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                                 "items": list(objs)}), check=True)


def get_pod(srv: Server, ns: str, name: str) -> dict:
    """The pod as kubectl -o json shows it."""
    return srv.kjson("get", "pod", name, "-n", ns)


def container_status(srv: Server, ns: str, name: str) -> dict:
    """status.containerStatuses[0] (empty until the agent reports)."""
    return (get_pod(srv, ns, name).get("status", {}).get("containerStatuses") or [{}])[0]


def condition(p: dict, type_: str) -> str | None:
    """The status of a pod condition."""
    return next((c["status"] for c in p.get("status", {}).get("conditions") or [] if c["type"] == type_), None)


def wait_ready(srv: Server, ns: str, name: str, timeout: float = 30) -> dict:
    """Wait until the pod is Ready; the pod."""
    return srv.wait_for(lambda: (p := get_pod(srv, ns, name)) and condition(p, "Ready") == "True" and p,
                        timeout, what=f"pod {ns}/{name} Ready")


def http_get(url: str, timeout: float = 5) -> str:
    """GET a plain-http URL (loopback or our pod network only)."""
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def events_text(srv: Server, ns: str, name: str) -> str:
    """The Events section of kubectl describe pod."""
    out = srv.kubectl("describe", "pod", name, "-n", ns, check=True).stdout
    return out[out.find("Events:"):]


class LineProc:
    """A long-running kubectl whose stdout is read line by line with deadlines."""

    def __init__(self, srv: Server, *args: str, binary: str = KUBECTL):
        env = dict(os.environ, KUBECACHEDIR=str(srv.cache_dir), KUBECONFIG=srv.kubeconfig)
        env.pop("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", None)
        self.proc = subprocess.Popen([binary, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     env=env, start_new_session=True)
        self.seen: list[str] = []
        self._buf = b""

    def expect(self, pattern: str, timeout: float = 20) -> re.Match:
        """Read lines until one matches the regex; the match."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while True:
            while b"\n" in self._buf:
                line, self._buf = self._buf.split(b"\n", 1)
                text = line.decode(errors="replace")
                self.seen.append(text)
                m = rx.search(text)
                if m:
                    return m
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no line matching {pattern!r}; saw {self.seen!r}")
            r, _, _ = select.select([fd], [], [], left)
            if r:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise AssertionError(f"kubectl ended ({self.proc.wait()}) before {pattern!r}; saw {self.seen!r}")
                self._buf += chunk

    def stop(self) -> None:
        """Terminate kubectl."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()


class PtyKubectl:
    """kubectl run on a pseudo-terminal, as a person at a shell runs it."""

    def __init__(self, srv: Server, *args: str, binary: str = KUBECTL):
        env = dict(os.environ, KUBECACHEDIR=str(srv.cache_dir), KUBECONFIG=srv.kubeconfig, TERM="xterm")
        env.pop("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", None)
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen([binary, *args], stdin=slave, stdout=slave, stderr=slave, env=env,
                                     start_new_session=True)
        os.close(slave)
        self.output = b""
        self.pos = 0  # everything before this was matched by an earlier expect()

    def send(self, text: str) -> None:
        """Type text."""
        os.write(self.master, text.encode())

    def expect(self, needle: str, timeout: float = 20) -> None:
        """Read the terminal until `needle` appears (after what was consumed before)."""
        deadline = time.monotonic() + timeout
        start = self.pos
        while needle.encode() not in self.output[start:]:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{needle!r} not seen; terminal: {self.output[start:]!r}")
            r, _, _ = select.select([self.master], [], [], left)
            if r:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:  # EIO: the other side closed
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"terminal closed before {needle!r}: {self.output[start:]!r}")
                self.output += chunk
        # Consume up to the end of the match only: the next needle may be in the same chunk.
        self.pos = self.output.index(needle.encode(), start) + len(needle.encode())

    def wait(self, timeout: float = 20) -> int:
        """Wait for kubectl to exit, draining the terminal; its exit code."""
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            r, _, _ = select.select([self.master], [], [], 0.1)
            if r:
                try:
                    self.output += os.read(self.master, 65536)
                except OSError:
                    pass
        code = self.proc.wait(max(0.1, deadline - time.monotonic()))
        os.close(self.master)
        return code


def node_token(srv: Server) -> str:
    """The node join token (first field of tls/tokens.csv)."""
    return (srv.data_dir / "tls" / "tokens.csv").read_text().splitlines()[0].split(",")[0]


def start_agent(srv: Server, tmp: Path, name: str, node_ip: str, *extra: str) -> subprocess.Popen:
    """`kubelite agent --runtime fake` joined to srv, logging to tmp/agent-NAME.log."""
    data = tmp / f"agent-{name}"
    args = [sys.executable, "-m", "kubelite.cli", "agent", "--server", srv.url, "--token", node_token(srv),
            "--ca-file", str(srv.data_dir / "tls" / "ca.crt"), "--node-name", name, "--node-ip", node_ip,
            "--runtime", "fake", "--data-dir", str(data), *extra]
    with open(tmp / f"agent-{name}.log", "ab") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def stop_proc(p: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL if it lingers."""
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
