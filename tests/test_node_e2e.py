"""The node agent end to end: a real `kubelite server` (process runtime) driven by the real
kubectl — pods that serve HTTP, logs, exec (with and without a terminal), port-forward,
kubectl proxy, probes, restarts and CrashLoopBackOff, image pull back-off, and graceful
termination."""
from __future__ import annotations

import os
import subprocess
import time

import pytest
from conftest import KUBECTL, KUBECTL_OLD, create_namespace
from nodeharness import (
    BOOTCAMP,
    LineProc,
    PtyKubectl,
    apply,
    condition,
    container_status,
    events_text,
    get_pod,
    http_get,
    pod,
    wait_ready,
)

HELLO = "Hello Kubernetes bootcamp! | Running on: web | v=1"


@pytest.fixture
def kns(request, cluster):
    """A fresh namespace on the module's cluster."""
    return create_namespace(cluster, request, "n")


@pytest.fixture(scope="module")
def web(cluster):
    """A bootcamp pod named `web` in its own namespace; (namespace, pod IP)."""
    ns = "web-" + os.urandom(2).hex()
    cluster.kubectl("create", "namespace", ns, check=True)
    cluster.kubectl("run", "web", "-n", ns, f"--image={BOOTCAMP}", "--port=8080", check=True)
    p = wait_ready(cluster, ns, "web")
    return ns, p["status"]["podIP"]


def test_pod_runs_and_answers_on_its_ip(cluster, web):
    ns, ip = web
    p = get_pod(cluster, ns, "web")
    assert p["status"]["phase"] == "Running"
    cs = p["status"]["containerStatuses"][0]
    assert cs["ready"] and cs["started"] and cs["restartCount"] == 0 and "running" in cs["state"]
    assert http_get(f"http://{ip}:8080/") == HELLO + "\n"
    out = cluster.kubectl("get", "pod", "web", "-n", ns, "-o", "wide", check=True).stdout
    assert "1/1" in out and "Running" in out and ip in out


def test_logs_tail_and_follow(cluster, web):
    ns, ip = web
    http_get(f"http://{ip}:8080/")
    logs = cluster.kubectl("logs", "web", "-n", ns, check=True).stdout
    assert "Kubernetes Bootcamp App Started At:" in logs
    assert "Running On: web | Total Requests:" in logs
    last = cluster.kubectl("logs", "web", "-n", ns, "--tail=1", check=True).stdout
    assert last.count("\n") == 1 and last.startswith("Running On: web | Total Requests:")
    follow = LineProc(cluster, "logs", "-f", "web", "-n", ns, "--tail=1")
    try:
        first = follow.expect(r"Total Requests: (\d+)")
        http_get(f"http://{ip}:8080/")
        nxt = follow.expect(r"Total Requests: (\d+)")
        assert int(nxt.group(1)) == int(first.group(1)) + 1
    finally:
        follow.stop()


@pytest.mark.parametrize("binary", [KUBECTL, KUBECTL_OLD], ids=["1.33-websocket", "1.28-spdy"])
def test_attach_follows_the_running_containers_output(cluster, web, binary):
    ns, ip = web
    att = LineProc(cluster, "attach", "web", "-n", ns, binary=binary)
    try:
        att.expect(r"If you don't see a command prompt")
        # Only output written after attaching arrives; send requests until one shows up.
        deadline = time.monotonic() + 20
        got = None
        while got is None and time.monotonic() < deadline:
            http_get(f"http://{ip}:8080/")
            try:
                got = att.expect(r"Running On: web \| Total Requests: (\d+)", timeout=1)
            except AssertionError:
                pass
        assert got is not None, "no request log line arrived through kubectl attach"
    finally:
        att.stop()
    refused = cluster.kubectl("attach", "-i", "web", "-n", ns, binary=binary, timeout=20)
    assert refused.returncode != 0 and "does not accept stdin" in refused.stderr


@pytest.mark.parametrize("binary", [KUBECTL, KUBECTL_OLD], ids=["1.33-websocket", "1.28-spdy"])
def test_exec_without_terminal(cluster, web, binary):
    ns, _ = web
    p = cluster.kubectl("exec", "web", "-n", ns, "--", "sh", "-c", "curl -s localhost:8080; echo err >&2; exit 4",
                        binary=binary)
    assert p.returncode == 4
    assert p.stdout == HELLO + "\n"
    assert "err" in p.stderr and "command terminated with exit code 4" in p.stderr
    env = cluster.kubectl("exec", "web", "-n", ns, "--", "env", binary=binary, check=True).stdout
    assert "HOSTNAME=web" in env.splitlines() and "KUBERNETES_SERVICE_PORT=443" in env.splitlines()


@pytest.mark.parametrize("binary", [KUBECTL, KUBECTL_OLD], ids=["1.33-websocket", "1.28-spdy"])
@pytest.mark.parametrize("shell", ["bash", "sh"])
def test_exec_interactive_shell_on_a_terminal(cluster, web, binary, shell):
    ns, _ = web
    t = PtyKubectl(cluster, "exec", "-ti", "web", "-n", ns, "--", shell, binary=binary)
    try:
        t.send("echo tty-$((6*7)); tty\r")
        t.expect("tty-42")
        t.expect("/dev/pts/")
        t.send("curl -s localhost:8080; echo\r")
        t.expect(HELLO)
        t.send("exit 0\r")
        assert t.wait() == 0
    finally:
        if t.proc.poll() is None:
            t.proc.kill()
            t.proc.wait()


def test_port_forward(cluster, web):
    ns, _ = web
    pf = LineProc(cluster, "port-forward", "pod/web", "-n", ns, ":8080")
    try:
        port = int(pf.expect(r"Forwarding from 127\.0\.0\.1:(\d+) -> 8080").group(1))
        assert http_get(f"http://127.0.0.1:{port}/") == HELLO + "\n"
        assert http_get(f"http://127.0.0.1:{port}/") == HELLO + "\n"
        pf.expect("Handling connection for")
    finally:
        pf.stop()


def test_kubectl_proxy_reaches_pod_and_api(cluster, web):
    ns, _ = web
    px = LineProc(cluster, "proxy", "--port=0")
    try:
        port = int(px.expect(r"Starting to serve on 127\.0\.0\.1:(\d+)").group(1))
        assert http_get(f"http://127.0.0.1:{port}/api/v1/namespaces/{ns}/pods/web:8080/proxy/") == HELLO + "\n"
        assert '"gitVersion"' in http_get(f"http://127.0.0.1:{port}/version")
    finally:
        px.stop()


def test_readiness_probe_flips_ready(cluster, kns, tmp_path):
    flag = tmp_path / "ready"
    probe = {"exec": {"command": ["test", "-f", str(flag)]}, "periodSeconds": 1, "failureThreshold": 1,
             "successThreshold": 1}
    apply(cluster, kns, pod("r", command=["sh", "-c", "sleep 3600"], readinessProbe=probe))
    cluster.wait_for(lambda: "running" in container_status(cluster, kns, "r").get("state", {}), what="running")
    p = get_pod(cluster, kns, "r")
    assert condition(p, "Ready") == "False" and not p["status"]["containerStatuses"][0]["ready"]
    flag.touch()
    wait_ready(cluster, kns, "r")
    flag.unlink()
    cluster.wait_for(lambda: condition(get_pod(cluster, kns, "r"), "Ready") == "False", what="unready again")
    assert container_status(cluster, kns, "r")["restartCount"] == 0
    assert "Readiness probe failed" in events_text(cluster, kns, "r")


def test_liveness_failure_restarts_the_container(cluster, kns, tmp_path):
    alive = tmp_path / "alive"
    alive.touch()
    probe = {"exec": {"command": ["test", "-f", str(alive)]}, "periodSeconds": 1, "failureThreshold": 1}
    apply(cluster, kns, pod("l", command=["sh", "-c", "echo up; sleep 3600"], livenessProbe=probe))
    wait_ready(cluster, kns, "l")
    alive.unlink()
    cs = cluster.wait_for(lambda: (c := container_status(cluster, kns, "l")).get("restartCount", 0) >= 1 and c,
                          what="a restart")
    alive.touch()
    term = cs["lastState"]["terminated"]
    assert term["exitCode"] == 143 and term["reason"] == "Error"  # stopped with SIGTERM (128 + 15)
    ev = events_text(cluster, kns, "l")
    assert "Liveness probe failed" in ev
    assert "Container c failed liveness probe, will be restarted" in ev


def test_crash_loop_back_off_states(cluster, kns):
    apply(cluster, kns, pod("crash", command=["sh", "-c", "echo crashing; exit 3"]))
    cs = cluster.wait_for(lambda: (c := container_status(cluster, kns, "crash"))
                          .get("state", {}).get("waiting", {}).get("reason") == "CrashLoopBackOff" and c,
                          what="CrashLoopBackOff")
    uid = get_pod(cluster, kns, "crash")["metadata"]["uid"]
    assert cs["restartCount"] >= 1 and not cs["ready"] and cs["started"] is False
    msg = cs["state"]["waiting"]["message"]
    assert msg.startswith("back-off ") and msg.endswith(f"s restarting failed container=c pod=crash_{kns}({uid})")
    term = cs["lastState"]["terminated"]
    assert term["exitCode"] == 3 and term["reason"] == "Error" and term["containerID"] == cs["containerID"]
    assert term["startedAt"] <= term["finishedAt"]
    row = cluster.kubectl("get", "pod", "crash", "-n", kns, "--no-headers", check=True).stdout.split()
    assert row[1] == "0/1" and row[2] == "CrashLoopBackOff"
    assert get_pod(cluster, kns, "crash")["status"]["phase"] == "Running"
    assert cluster.kubectl("logs", "crash", "-n", kns, "--previous", check=True).stdout == "crashing\n"
    ev = events_text(cluster, kns, "crash")
    assert "Back-off restarting failed container c in pod" in ev


def test_logs_previous_after_a_restart(cluster, kns, tmp_path):
    marker = tmp_path / "ran-once"
    script = f"if [ -e {marker} ]; then echo second; sleep 3600; else touch {marker}; echo first; exit 1; fi"
    apply(cluster, kns, pod("again", command=["sh", "-c", script]))
    cluster.wait_for(lambda: (c := container_status(cluster, kns, "again")).get("restartCount") == 1
                     and "running" in c["state"], what="running again after one restart")
    assert cluster.kubectl("logs", "again", "-n", kns, check=True).stdout == "second\n"
    assert cluster.kubectl("logs", "again", "-n", kns, "-p", check=True).stdout == "first\n"
    cs = container_status(cluster, kns, "again")
    assert cs["lastState"]["terminated"]["exitCode"] == 1
    never = cluster.kubectl("logs", "web-none", "-n", kns)
    assert never.returncode != 0


def test_image_pull_failure_backs_off(cluster, kns):
    image = "gcr.io/google-samples/kubernetes-bootcamp:v10"
    apply(cluster, kns, pod("bad", image=image))
    cluster.wait_for(lambda: container_status(cluster, kns, "bad").get("state", {}).get("waiting", {})
                     .get("reason") == "ImagePullBackOff", what="ImagePullBackOff")
    ev = events_text(cluster, kns, "bad")
    assert f'Pulling image "{image}"' in ev
    assert f'Failed to pull image "{image}"' in ev
    assert "Error: ErrImagePull" in ev
    assert f'Back-off pulling image "{image}"' in ev
    assert "Error: ImagePullBackOff" in ev
    row = cluster.kubectl("get", "pod", "bad", "-n", kns, "--no-headers", check=True).stdout.split()
    assert row[1] == "0/1" and row[2] in ("ImagePullBackOff", "ErrImagePull")
    p = get_pod(cluster, kns, "bad")
    assert p["status"]["phase"] == "Pending" and p["status"]["containerStatuses"][0]["restartCount"] == 0
    logs = cluster.kubectl("logs", "bad", "-n", kns)
    assert logs.returncode == 1
    assert 'container "c" in pod "bad" is waiting to start: ' in logs.stderr


def test_missing_command_is_a_start_error_and_the_node_keeps_working(cluster, kns):
    apply(cluster, kns, pod("nocmd", command=["/no/such/binary"]))
    cs = cluster.wait_for(lambda: (c := container_status(cluster, kns, "nocmd")).get("lastState", {})
                          .get("terminated") and c.get("state", {}).get("waiting") and c, what="a failed start")
    term = cs["lastState"]["terminated"]
    assert term["reason"] == "StartError" and term["exitCode"] == 128 and "/no/such/binary" in term["message"]
    assert cs["state"]["waiting"]["reason"] in ("CrashLoopBackOff", "RunContainerError")
    ev = events_text(cluster, kns, "nocmd")
    assert "Error: " in ev and "/no/such/binary" in ev
    apply(cluster, kns, pod("fine", command=["sh", "-c", "echo fine; sleep 3600"]))
    wait_ready(cluster, kns, "fine")
    assert cluster.kubectl("logs", "fine", "-n", kns, check=True).stdout == "fine\n"


def _trace_pod(name: str, trace, grace: int, exit_on_term: bool) -> dict:
    on_term = f"echo term >> {trace}" + ("; exit 0" if exit_on_term else "")
    script = (f"trap '{on_term}' TERM; echo start >> {trace}; "
              f"while true; do sleep 0.1; echo tick >> {trace}; done")
    return pod(name, command=["sh", "-c", script], spec={"terminationGracePeriodSeconds": grace},
               lifecycle={"preStop": {"exec": {"command": ["sh", "-c", f"echo prestop >> {trace}"]}}})


def _collapse(lines: list[str]) -> list[str]:
    out: list[str] = []
    for line in lines:
        if not out or out[-1] != line:
            out.append(line)
    return out


def _alive(marker: str) -> list[str]:
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in ps.splitlines() if marker in line and "ps -eo" not in line]


def test_graceful_termination_runs_prestop_then_sigterm(cluster, kns, tmp_path):
    trace = tmp_path / "polite.trace"
    apply(cluster, kns, _trace_pod("polite", trace, 30, exit_on_term=True))
    wait_ready(cluster, kns, "polite")
    cluster.wait_for(lambda: "tick" in trace.read_text(), what="ticks")
    cluster.kubectl("delete", "pod", "polite", "-n", kns, "--wait=true", check=True)
    assert _collapse(trace.read_text().split()) == ["start", "tick", "prestop", "tick", "term"] or \
        _collapse(trace.read_text().split()) == ["start", "tick", "prestop", "term"]
    assert cluster.kubectl("get", "pod", "polite", "-n", kns).returncode == 1
    assert _alive(str(trace)) == []


def test_sigterm_ignored_until_the_grace_period_then_sigkill(cluster, kns, tmp_path):
    trace = tmp_path / "stubborn.trace"
    apply(cluster, kns, _trace_pod("stubborn", trace, 2, exit_on_term=False))
    wait_ready(cluster, kns, "stubborn")
    cluster.wait_for(lambda: "tick" in trace.read_text(), what="ticks")
    cluster.kubectl("delete", "pod", "stubborn", "-n", kns, "--wait=true", check=True)
    lines = trace.read_text().split()
    seq = _collapse(lines)
    assert seq[:2] == ["start", "tick"] and "prestop" in seq
    assert seq[seq.index("prestop"):] in (["prestop", "tick", "term", "tick"], ["prestop", "term", "tick"])
    assert lines.count("term") == 1  # one SIGTERM, then SIGKILL ends it (no exit line, ticks after TERM)
    assert cluster.kubectl("get", "pod", "stubborn", "-n", kns).returncode == 1
    assert _alive(str(trace)) == []
