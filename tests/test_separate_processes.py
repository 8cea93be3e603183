"""`kubelite server --separate-processes controllers,scheduler`: the controller manager and the
scheduler run as child processes of the server, supervised by it."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from conftest import start_server


def children(pid: int) -> dict[int, str]:
    """pid -> command line of each `kubelite component` process whose parent is ``pid``."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid and "kubelite.cli component" in cmd:
            found[int(entry)] = cmd
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_deployment_rolls_out_with_controllers_and_scheduler_in_their_own_processes(tmp_path):
    srv = start_server(tmp_path, "--runtime", "fake", "--separate-processes", "controllers,scheduler")
    try:
        kids = children(srv.proc.pid)
        assert sorted(cmd.split("component ")[1].split()[0] for cmd in kids.values()) == ["controllers", "scheduler"]
        srv.kubectl("create", "deployment", "web", "--image=jocatalin/kubernetes-bootcamp:v1", "--replicas=3",
                    check=True)
        srv.kubectl("rollout", "status", "deployment/web", "--timeout=60s", check=True)
        srv.kubectl("set", "image", "deployment/web", "kubernetes-bootcamp=jocatalin/kubernetes-bootcamp:v2",
                    check=True)
        srv.kubectl("rollout", "status", "deployment/web", "--timeout=60s", check=True)
        pods = srv.kjson("get", "pods", "-l", "app=web")["items"]
        assert all(p["spec"].get("nodeName") for p in pods)

        # A child that dies is started again, and the cluster goes on working.
        victim = next(pid for pid, cmd in kids.items() if "component scheduler" in cmd)
        os.kill(victim, signal.SIGKILL)
        srv.wait_for(lambda: any("component scheduler" in c for c in children(srv.proc.pid).values())
                     and victim not in children(srv.proc.pid), timeout=60, what="a new scheduler process")
        srv.kubectl("scale", "deployment/web", "--replicas=5", check=True)
        srv.kubectl("rollout", "status", "deployment/web", "--timeout=90s", check=True)
        kids = children(srv.proc.pid)
    finally:
        srv.stop(signal.SIGKILL)
    # With the server killed, its children stop too (the kernel tells them).
    srv.wait_for(lambda: not any(alive(pid) for pid in kids), timeout=30, what="the children to stop with the server")


def test_an_unknown_component_is_refused(tmp_path):
    p = subprocess.run([sys.executable, "-m", "kubelite.cli", "server", "--data-dir", str(tmp_path / "d"),
                        "--separate-processes", "controllers,proxy"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "--separate-processes" in p.stderr and "proxy" in p.stderr
