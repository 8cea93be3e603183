"""The oci runtime end to end: a real `kubelite server --runtime oci` (root, runc, conmon),
a tiny image built from Debian's busybox-static, and the real kubectl.

Every check goes through exec or port-forward (never a pod address from the host), and
the module's last fixture step proves that nothing is left: no runc container, no mount
under the data directory, no cgroup, no network namespace of the node's slot.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import KUBECTL, Server, create_namespace, free_port, start_server

from kubelite.node.runtime.oci import cgroups, rootfs, state
from kubelite.node.runtime.oci.runc import list_sync
from kubelite.node.runtime.oci.runtime import missing, state_dir

IMAGE = "busybox-oci:1"
POD_MAX_PIDS = 40
APPLETS = ("sh", "ls", "cat", "sleep", "httpd", "wget", "id", "ps", "hostname", "setsid", "echo", "mkdir", "test",
           "grep", "stty", "touch", "tty", "env")


def build_busybox_dir(root: Path) -> Path:
    """An image root holding only busybox-static, its applets as relative links, and a passwd file."""
    busybox = shutil.which("busybox") or "/bin/busybox"
    (root / "bin").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "tmp").mkdir()
    (root / "www").mkdir()
    shutil.copy(busybox, root / "bin" / "busybox")
    for applet in APPLETS:
        os.symlink("busybox", root / "bin" / applet)
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\nnogroup:x:65534:\n")
    (root / "www" / "index.html").write_text("hello from an oci container\n")
    return root


@dataclass
class Node:
    """The module's server (replaced when a test restarts it) and where its state lives."""

    srv: Server
    tmp: Path

    @property
    def data_dir(self) -> Path:
        return self.srv.data_dir

    @property
    def oci_dir(self) -> str:
        return state_dir(str(self.data_dir))

    def start(self, *extra: str) -> Server:
        self.srv = start_server(self.tmp, "--runtime", "oci", "--pod-max-pids", str(POD_MAX_PIDS), *extra,
                                data_dir=self.data_dir, port=self.srv.port)
        return self.srv


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kubelite.cli", *args], capture_output=True, text=True, timeout=120)


def _leftovers(oci_dir: str, data_dir: Path, cgroup_name: str, slot_prefix: str) -> list[str]:
    """What the node's containers could have left behind on the machine."""
    found = [f"runc container {c['id']}" for c in list_sync(os.path.join(oci_dir, "runc"))]
    found += [f"mount {m}" for m in rootfs.mounts_below(str(data_dir))]
    for h in cgroups.hierarchies():
        d = h.path(cgroup_name)
        if os.path.exists(d):
            found.append(f"cgroup {d}")
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split("\n")
    found += [f"netns {line.split()[0]}" for line in netns if line.startswith(slot_prefix + "-")]
    return found


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    """A server with the oci runtime and the busybox image; at the end, proof nothing is left."""
    why = missing()
    assert why is None, f"the oci runtime tests need root, runc, conmon and catatonit: {why}"
    tmp = tmp_path_factory.mktemp("oci")
    data = tmp / "data"
    image_dir = build_busybox_dir(tmp / "image")
    p = _cli("image", "import", IMAGE, str(image_dir), "--cmd", "sh", "--data-dir", str(data))
    assert p.returncode == 0, p.stderr
    srv = start_server(tmp, "--runtime", "oci", "--pod-max-pids", str(POD_MAX_PIDS), data_dir=data)
    n = Node(srv, tmp)
    try:
        yield n
    finally:
        n.srv.stop()
        rec = state.load(os.path.join(n.oci_dir, "node.json"), state.NodeRecord)
        killed = _cli("killall", "--data-dir", str(data))
        assert killed.returncode == 0, killed.stderr
        if rec is not None:
            left = _leftovers(n.oci_dir, data, rec.cgroup_name, f"kl{rec.slot}")
            assert left == [], f"left behind: {left}"


@pytest.fixture
def ns(request, node):
    return create_namespace(node.srv, request)


def pod_manifest(name: str, command: list[str], *, pod_extra: dict | None = None, container_extra: dict | None = None,
                 restart: str = "Always") -> str:
    container = {"name": "c", "image": IMAGE, "command": command, **(container_extra or {})}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
           "spec": {"restartPolicy": restart, "terminationGracePeriodSeconds": 2, "containers": [container],
                    **(pod_extra or {})}}
    return json.dumps(pod)


def create_pod(node: Node, ns: str, manifest: str) -> None:
    node.srv.kubectl("-n", ns, "apply", "-f", "-", input=manifest, check=True)


def container_status(node: Node, ns: str, name: str) -> dict:
    pod = node.srv.kjson("-n", ns, "get", "pod", name)
    return ((pod.get("status") or {}).get("containerStatuses") or [{}])[0]


def wait_running(node: Node, ns: str, name: str, *, ready: bool = True) -> dict:
    def running() -> dict | None:
        cs = container_status(node, ns, name)
        return cs if "running" in (cs.get("state") or {}) and (cs.get("ready") or not ready) else None
    result: dict = node.srv.wait_for(running, timeout=60, what=f"pod {ns}/{name} running")
    return result


def wait_terminated(node: Node, ns: str, name: str) -> dict:
    def done() -> dict | None:
        return (container_status(node, ns, name).get("state") or {}).get("terminated")
    result: dict = node.srv.wait_for(done, timeout=60, what=f"pod {ns}/{name} terminated")
    return result


def host_pids_of(pattern: str) -> set[int]:
    """Host processes whose command line is exactly `pattern` (words joined by spaces)."""
    out = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").strip().decode()
        except OSError:
            continue
        if cmd == pattern:
            out.add(int(entry))
    return out


def alive(pid: int) -> bool:
    """Whether process `pid` exists and is not a zombie waiting for its parent."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2:].split()[0] not in (b"Z", b"X")


HTTPD = ["sh", "-c", "echo serving; exec httpd -f -p 8080 -h /www"]


def test_pod_serves_http_reached_through_exec_and_port_forward(node, ns):
    create_pod(node, ns, pod_manifest("web", HTTPD, container_extra={"ports": [{"containerPort": 8080}]}))
    wait_running(node, ns, "web")
    got = node.srv.kubectl("-n", ns, "exec", "web", "--", "wget", "-qO-", "127.0.0.1:8080", check=True)
    assert got.stdout == "hello from an oci container\n"
    assert node.srv.kubectl("-n", ns, "logs", "web", check=True).stdout == "serving\n"
    local = free_port()
    pf = subprocess.Popen([KUBECTL, "-n", ns, "port-forward", "pod/web", f"{local}:8080"], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, env=dict(os.environ, KUBECONFIG=node.srv.kubeconfig))
    try:
        assert pf.stdout is not None
        assert b"Forwarding from" in pf.stdout.readline()
        with urllib.request.urlopen(f"http://127.0.0.1:{local}/", timeout=10) as resp:
            assert resp.read() == b"hello from an oci container\n"
    finally:
        pf.send_signal(signal.SIGINT)
        pf.wait(10)
        for stream in (pf.stdout, pf.stderr):
            if stream is not None:
                stream.close()


def test_exec_sees_the_container_filesystem_not_the_hosts(node, ns):
    create_pod(node, ns, pod_manifest("fs", ["sleep", "3600"]))
    wait_running(node, ns, "fs")
    k = node.srv.kubectl
    listing = k("-n", ns, "exec", "fs", "--", "ls", "/", check=True).stdout.split()
    # `var` holds the service-account token mount (/var/run/secrets/kubernetes.io/serviceaccount).
    assert set(listing) == {"bin", "dev", "etc", "proc", "sys", "tmp", "var", "www"}
    for host_path in (str(node.data_dir), str(node.data_dir / "tls" / "ca.key"), "/usr/bin/python3"):
        assert k("-n", ns, "exec", "fs", "--", "test", "-e", host_path).returncode == 1, host_path
    assert k("-n", ns, "exec", "fs", "--", "hostname", check=True).stdout == "fs\n"
    # Masked as runc's defaults mask it (the host's file is not empty).
    assert Path("/proc/timer_list").read_text() != ""
    assert k("-n", ns, "exec", "fs", "--", "cat", "/proc/timer_list", check=True).stdout == ""
    ro = k("-n", ns, "exec", "fs", "--", "sh", "-c", "echo 1 > /proc/sys/kernel/domainname")
    assert ro.returncode != 0 and "Read-only file system" in ro.stderr
    # Writes land in the container's own layer, not in the image.
    k("-n", ns, "exec", "fs", "--", "touch", "/www/mine", check=True)
    assert k("-n", ns, "exec", "fs", "--", "ls", "/www", check=True).stdout.split() == ["index.html", "mine"]
    assert list((node.data_dir / "images").rglob("mine")) == []


def test_memory_limit_ends_in_oomkilled(node, ns):
    create_pod(node, ns, pod_manifest("hog", ["sh", "-c", "a=0123456789abcdef; while true; do a=$a$a; done"],
                                      container_extra={"resources": {"limits": {"memory": "24Mi"}}}, restart="Never"))
    term = wait_terminated(node, ns, "hog")
    assert term["reason"] == "OOMKilled"
    assert term["exitCode"] == 137


def test_fork_bomb_is_stopped_by_the_pod_pids_limit(node, ns):
    # A bounded loop: 200 background sleeps would all start without a limit, and then print.
    create_pod(node, ns, pod_manifest("bomb", ["sh", "-c", "i=0; while [ $i -lt 200 ]; do sleep 60 & i=$((i+1)); "
                                                           "done; echo all-started"], restart="Never"))
    term = wait_terminated(node, ns, "bomb")
    out = node.srv.kubectl("-n", ns, "logs", "bomb", check=True).stdout
    assert "can't fork" in out
    assert "all-started" not in out
    assert term["exitCode"] != 0


def test_run_as_non_root_refuses_a_root_image(node, ns):
    create_pod(node, ns, pod_manifest("root", ["sleep", "3600"], pod_extra={"securityContext": {"runAsNonRoot": True}}))

    def refused() -> dict | None:
        waiting = (container_status(node, ns, "root").get("state") or {}).get("waiting") or {}
        return waiting if waiting.get("reason") == "CreateContainerConfigError" else None
    waiting = node.srv.wait_for(refused, timeout=30, what="CreateContainerConfigError")
    uid = node.srv.kjson("-n", ns, "get", "pod", "root")["metadata"]["uid"]
    assert waiting["message"] == (f'container has runAsNonRoot and image will run as root '
                                  f'(pod: "root_{ns}({uid})", container: c)')


def test_security_context_user_read_only_root_and_capabilities(node, ns):
    sc = {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    create_pod(node, ns, pod_manifest("user", ["sleep", "3600"], container_extra={"securityContext": sc},
                                      pod_extra={"securityContext": {"runAsNonRoot": True, "runAsUser": 1000,
                                                                     "runAsGroup": 3000}}))
    wait_running(node, ns, "user")
    k = node.srv.kubectl
    assert k("-n", ns, "exec", "user", "--", "id", "-u", check=True).stdout == "1000\n"
    assert k("-n", ns, "exec", "user", "--", "id", "-g", check=True).stdout == "3000\n"
    status = k("-n", ns, "exec", "user", "--", "cat", "/proc/self/status", check=True).stdout
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    assert fields["CapBnd"].strip() == "0000000000000000"
    assert fields["NoNewPrivs"].strip() == "1"
    touch = k("-n", ns, "exec", "user", "--", "touch", "/tmp/x")
    assert touch.returncode != 0 and "Read-only file system" in touch.stderr


def test_deleted_pod_leaves_no_process_not_even_a_setsid_child(node, ns):
    tag = 3000 + os.getpid() % 900
    create_pod(node, ns, pod_manifest("ss", ["sh", "-c", f"setsid sleep {tag}1 & exec sleep {tag}2"]))
    wait_running(node, ns, "ss")
    pids = node.srv.wait_for(lambda: (host_pids_of(f"sleep {tag}1") | host_pids_of(f"sleep {tag}2"))
                             if len(host_pids_of(f"sleep {tag}1") | host_pids_of(f"sleep {tag}2")) == 2 else None,
                             timeout=20, what="both sleeps")
    uid = node.srv.kjson("-n", ns, "get", "pod", "ss")["metadata"]["uid"]
    node.srv.kubectl("-n", ns, "delete", "pod", "ss", "--wait=true", check=True, timeout=90)
    node.srv.wait_for(lambda: not any(alive(p) for p in pids), timeout=30,
                      what="the pod's processes to end")
    pod_dir = os.path.join(node.oci_dir, "pods", uid)
    assert not os.path.exists(pod_dir)
    assert [m for m in rootfs.mounts_below(str(node.data_dir)) if uid in m] == []
    rec = state.load(os.path.join(node.oci_dir, "node.json"), state.NodeRecord)
    assert rec is not None
    assert not any(os.path.exists(h.path(f"{rec.cgroup_name}/pod{uid}")) for h in cgroups.hierarchies())


def test_force_deleted_pod_leaves_no_process_nor_sandbox(node, ns):
    create_pod(node, ns, pod_manifest("gone", ["sh", "-c", "setsid sleep 3600 & exec sleep 3601"]))
    wait_running(node, ns, "gone")
    uid = node.srv.kjson("-n", ns, "get", "pod", "gone")["metadata"]["uid"]
    pids = {int(c["pid"]) for c in list_sync(os.path.join(node.oci_dir, "runc")) if uid in c["bundle"]}
    assert len(pids) == 2  # the pause container and the container
    node.srv.kubectl("-n", ns, "delete", "pod", "gone", "--force", "--grace-period=0", check=True)
    pod_dir = os.path.join(node.oci_dir, "pods", uid)
    node.srv.wait_for(lambda: not os.path.exists(pod_dir), timeout=30, what="the sandbox to go")
    assert not any(alive(p) for p in pids)
    assert not any(uid in c["bundle"] for c in list_sync(os.path.join(node.oci_dir, "runc")))


def test_containers_of_a_pod_share_network_ipc_uts_and_with_share_process_namespace_pids(node, ns):
    def pod(name: str, share: bool) -> str:
        return json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                           "spec": {"shareProcessNamespace": share, "terminationGracePeriodSeconds": 1,
                                    "containers": [{"name": "a", "image": IMAGE, "command": HTTPD},
                                                   {"name": "b", "image": IMAGE, "command": ["sleep", "3600"]}]}})
    create_pod(node, ns, pod("shared", True))
    create_pod(node, ns, pod("apart", False))
    for name in ("shared", "apart"):
        node.srv.wait_for(lambda n=name: all(c.get("ready") for c in node.srv.kjson(
            "-n", ns, "get", "pod", n)["status"].get("containerStatuses") or [{}]), timeout=60, what=f"{name} ready")
        got = node.srv.kubectl("-n", ns, "exec", name, "-c", "b", "--", "wget", "-qO-", "127.0.0.1:8080", check=True)
        assert got.stdout == "hello from an oci container\n"  # one network: localhost is shared
        assert node.srv.kubectl("-n", ns, "exec", name, "-c", "b", "--", "hostname", check=True).stdout == name + "\n"
    shared = node.srv.kubectl("-n", ns, "exec", "shared", "-c", "b", "--", "ps", check=True).stdout
    apart = node.srv.kubectl("-n", ns, "exec", "apart", "-c", "b", "--", "ps", check=True).stdout
    assert "httpd" in shared and "catatonit" in shared
    assert "httpd" not in apart


def test_tty_exec_session(node, ns):
    import fcntl
    import pty
    import select
    import struct
    import termios
    create_pod(node, ns, pod_manifest("tty", ["sleep", "3600"]))
    wait_running(node, ns, "tty")
    pid, fd = pty.fork()
    if pid == 0:  # child: become kubectl
        os.execve(KUBECTL, ["kubectl", "-n", ns, "exec", "-ti", "tty", "--", "sh"],
                  dict(os.environ, KUBECONFIG=node.srv.kubeconfig))
    try:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))
        out = bytearray()

        def read_until(token: bytes) -> bool:
            deadline = time.monotonic() + 20
            while token not in out and time.monotonic() < deadline:
                if select.select([fd], [], [], 1)[0]:
                    try:
                        chunk = os.read(fd, 4096)
                    except OSError:
                        return False
                    if not chunk:
                        return False
                    out.extend(chunk)
            return token in out
        assert read_until(b"# "), bytes(out)
        os.write(fd, b"echo $((6*7)); stty size; tty\r")
        assert read_until(b"40 100"), bytes(out)
        # One CR, or now and then two: `runc exec -t` clears ONLCR on the container's terminal
        # once it holds it, and a shell that read its settings before that restores ONLCR after
        # each line, so both terminals translate (renders the same; see the README). A bare LF
        # (no terminal translating) would be a real fault.
        assert re.search(rb"42\r\r?\n", bytes(out)), bytes(out)
        assert read_until(b"/dev/pts/0"), bytes(out)
        os.write(fd, b"exit 5\r")
        read_until(b"command terminated with exit code 5")
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 5
    finally:
        os.close(fd)


def test_logs_follow_and_previous_read_conmons_log(node, ns):
    create_pod(node, ns, pod_manifest("crash", ["sh", "-c", "echo instance-output; sleep 1; exit 3"]))
    node.srv.wait_for(lambda: container_status(node, ns, "crash").get("restartCount", 0) >= 1, timeout=60,
                      what="a restart")
    prev = node.srv.kubectl("-n", ns, "logs", "crash", "--previous", check=True).stdout
    assert prev == "instance-output\n"
    last = container_status(node, ns, "crash")["lastState"]["terminated"]
    assert (last["exitCode"], last["reason"]) == (3, "Error")
    create_pod(node, ns, pod_manifest("talk", ["sh", "-c", "echo one; sleep 2; echo two; sleep 3600"]))
    wait_running(node, ns, "talk")
    follow = subprocess.Popen([KUBECTL, "-n", ns, "logs", "-f", "talk"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=dict(os.environ, KUBECONFIG=node.srv.kubeconfig))
    try:
        assert follow.stdout is not None
        assert follow.stdout.readline() == b"one\n"
        assert follow.stdout.readline() == b"two\n"
    finally:
        follow.kill()
        follow.wait(10)
        for stream in (follow.stdout, follow.stderr):
            if stream is not None:
                stream.close()
    stamped = node.srv.kubectl("-n", ns, "logs", "--timestamps", "talk", check=True).stdout.splitlines()
    assert [line.split(" ", 1)[1] for line in stamped] == ["one", "two"]


def test_containers_survive_kill_9_of_the_server_and_are_readopted(node, ns):
    create_pod(node, ns, pod_manifest("keep", HTTPD, container_extra={"ports": [{"containerPort": 8080}]}))
    before = wait_running(node, ns, "keep")
    assert before["restartCount"] == 0
    uid = node.srv.kjson("-n", ns, "get", "pod", "keep")["metadata"]["uid"]
    httpd = node.srv.wait_for(lambda: _container_pids(node, uid), timeout=20, what="the httpd process")
    node.srv.stop(signal.SIGKILL)
    assert all(alive(p) for p in httpd), "the container died with the server"
    node.start()
    after = wait_running(node, ns, "keep")
    assert after["containerID"] == before["containerID"]
    assert after["restartCount"] == 0
    assert all(alive(p) for p in httpd), "a new container was started"
    got = node.srv.kubectl("-n", ns, "exec", "keep", "--", "wget", "-qO-", "127.0.0.1:8080", check=True)
    assert got.stdout == "hello from an oci container\n"
    # logs written before the restart are still there, and -f follows the re-adopted instance
    assert node.srv.kubectl("-n", ns, "logs", "keep", check=True).stdout == "serving\n"


def test_stopping_the_server_stops_its_containers_and_pod_network(node, ns):
    create_pod(node, ns, pod_manifest("stopped", ["sleep", "3600"]))
    wait_running(node, ns, "stopped")
    rec = state.load(os.path.join(node.oci_dir, "node.json"), state.NodeRecord)
    assert rec is not None
    pids = [c["pid"] for c in list_sync(os.path.join(node.oci_dir, "runc")) if c["status"] == "running"]
    assert pids
    assert node.srv.stop(signal.SIGTERM) == 0
    node.srv.wait_for(lambda: not any(alive(pid) for pid in pids), timeout=20, what="the containers to end")
    assert _leftovers(node.oci_dir, node.data_dir, rec.cgroup_name, f"kl{rec.slot}") == []
    node.start()  # the pods are still API objects: the new agent runs them anew
    wait_running(node, ns, "stopped")


def test_keep_pods_on_stop_leaves_containers_running_until_killall(node, ns):
    node.srv.stop()
    node.start("--keep-pods-on-stop")
    create_pod(node, ns, pod_manifest("left", ["sleep", "3600"]))
    wait_running(node, ns, "left")
    uid = node.srv.kjson("-n", ns, "get", "pod", "left")["metadata"]["uid"]
    rec = state.load(os.path.join(node.oci_dir, "node.json"), state.NodeRecord)
    assert rec is not None

    def left_running() -> dict[str, int]:
        # This pod's containers only: other tests' pods on the shared node may be restarting.
        return {c["id"]: c["pid"] for c in list_sync(os.path.join(node.oci_dir, "runc"))
                if c["status"] == "running" and uid in c["bundle"]}
    running = left_running()
    assert running
    assert node.srv.stop(signal.SIGTERM) == 0
    assert left_running() == running
    pids = [c["pid"] for c in list_sync(os.path.join(node.oci_dir, "runc")) if c["status"] == "running"]
    p = _cli("killall", "--data-dir", str(node.data_dir))
    assert p.returncode == 0, p.stderr
    node.srv.wait_for(lambda: not any(alive(pid) for pid in pids), timeout=20, what="the containers to end")
    assert _leftovers(node.oci_dir, node.data_dir, rec.cgroup_name, f"kl{rec.slot}") == []
    node.start()
    wait_running(node, ns, "left")


def _container_pids(node: Node, uid: str) -> set[int]:
    """Host pids of the running runc containers of pod `uid` but its pause container."""
    return {int(c["pid"]) for c in list_sync(os.path.join(node.oci_dir, "runc"))
            if c["status"] == "running" and uid in c["bundle"] and not c["id"].endswith("-pause")}
