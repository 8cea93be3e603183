"""Stopping `kubelite server` leaves nothing of its pods behind: no processes, no network
namespaces or bridge of the agent's slot, no listening ports."""
from __future__ import annotations

import os
import socket
import subprocess

import pytest
from conftest import start_server
from nodeharness import BOOTCAMP, apply, pod, wait_ready


def _procs_under(root: str) -> list[int]:
    """PIDs whose working directory is inside `root` (pod processes run in pod directories)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/cwd").startswith(root):
                    out.append(int(entry))
            except OSError:
                pass
    return out


def _listening(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((host, port)) == 0


def test_stopping_the_server_leaves_no_pods_behind(tmp_path):
    srv = start_server(tmp_path)
    try:
        ns = "cleanup"
        srv.kubectl("create", "namespace", ns, check=True)
        apply(srv, ns, pod("web", image=BOOTCAMP, ports=[{"containerPort": 8080}]),
              pod("sleeper", command=["sh", "-c", "sleep 3600 & sleep 3600"]))
        web = wait_ready(srv, ns, "web")
        wait_ready(srv, ns, "sleeper")
        node = srv.kjson("get", "nodes")["items"][0]
        agent_port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
        pod_ip = web["status"]["podIP"]
        assert _listening(pod_ip, 8080) and _listening("127.0.0.1", agent_port)
        assert _procs_under(str(srv.data_dir))
        prefix = None
        if node["spec"].get("podCIDR"):  # the slot index is the third octet of 10.244.N.0/24
            prefix = f"kl{node['spec']['podCIDR'].split('.')[2]}-"
    finally:
        code = srv.stop()
    assert code == 0, srv.log_tail()
    assert _procs_under(str(srv.data_dir)) == []
    assert not _listening("127.0.0.1", srv.port)
    assert not _listening("127.0.0.1", agent_port)
    # The pod's address is not dialled again: with its bridge gone it has no local route, and
    # traffic must never leave the machine. Loopback pod addresses (host network) are safe.
    if pod_ip.startswith("127."):
        assert not _listening(pod_ip, 8080)
    if prefix and os.geteuid() == 0:
        names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
        assert [n for n in names if n.startswith(prefix)] == []
        assert not os.path.exists(f"/sys/class/net/{prefix[:-1]}")



@pytest.mark.parametrize("network", ["auto", "host"])
def test_processes_left_by_a_killed_server_are_stopped_when_it_restarts(tmp_path, network):
    srv = start_server(tmp_path, "--network", network)
    try:
        srv.kubectl("create", "namespace", "orphans", check=True)
        apply(srv, "orphans", pod("sleeper", command=["sh", "-c", "sleep 3600 & sleep 3600"]))
        wait_ready(srv, "orphans", "sleeper")
        before = set(srv.wait_for(lambda: len(_procs_under(str(srv.data_dir))) >= 2 and _procs_under(str(srv.data_dir)),
                                  what="the pod's processes"))
    finally:
        srv.stop(9)  # no chance to stop its containers
    # The container's main process dies with the agent; its child does not by itself.
    again = start_server(tmp_path, "--network", network, data_dir=srv.data_dir)
    try:
        again.wait_for(lambda: not (before & set(_procs_under(str(srv.data_dir)))),
                       what="the killed server's pod processes to be gone")
        wait_ready(again, "orphans", "sleeper")  # and the pod runs again
    finally:
        again.stop()
    assert _procs_under(str(srv.data_dir)) == []
