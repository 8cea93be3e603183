"""`kubectl cp`, `exec -i` and `attach -i` into containers of the oci runtime, with the real
kubectl 1.33 and the built-in bootcamp image (BusyBox's `tar` and `sh` inside).

Everything reaches the pods through the API server's exec and attach streams; at the end
`kubelite killall` stops the containers, which outlive the server.
"""
from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from conftest import KUBECTL, Server, create_namespace, start_server

from kubelite.node.runtime.oci.runtime import missing

IMAGE = "gcr.io/google-samples/kubernetes-bootcamp:v1"


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    """A server on the oci runtime; its containers are stopped with `kubelite killall` at the end."""
    assert missing() is None, f"these tests need the oci runtime (root, runc, conmon, catatonit): {missing()}"
    tmp = tmp_path_factory.mktemp("ocicp")
    s = start_server(tmp, "--runtime", "oci")
    yield s
    s.stop()
    killed = subprocess.run([sys.executable, "-m", "kubelite.cli", "killall", "--data-dir", str(s.data_dir)],
                            capture_output=True, text=True, timeout=120)
    assert killed.returncode == 0, killed.stderr


@pytest.fixture
def ns(request, srv):
    return create_namespace(srv, request)


def run_pod(srv: Server, ns: str, name: str, command: list[str], **container: object) -> None:
    """Create a pod of the bootcamp image running `command` and wait until it runs."""
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
           "spec": {"restartPolicy": "Never",
                    "containers": [{"name": "c", "image": IMAGE, "command": command, **container}]}}
    srv.kubectl("apply", "-f", "-", input=json.dumps(pod), check=True)

    def running() -> bool:
        st = srv.kjson("get", "pod", name, "-n", ns).get("status", {})
        return any("running" in (c.get("state") or {}) for c in st.get("containerStatuses") or [])
    srv.wait_for(running, 90, what=f"pod {name} running")


def read_until(proc: subprocess.Popen, want: bytes, timeout: float = 30) -> bytes:
    """What `proc` printed on stdout until `want` appeared (or it ended, or the deadline)."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    out = b""
    deadline = time.monotonic() + timeout
    while want not in out and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            out += chunk
    return out


def kubectl_proc(srv: Server, *args: str) -> subprocess.Popen:
    env = dict(os.environ, KUBECACHEDIR=str(srv.cache_dir), KUBECONFIG=srv.kubeconfig)
    return subprocess.Popen([KUBECTL, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=30)


def test_kubectl_copy_should_copy_a_file_to_and_from_a_running_pod(srv, ns, tmp_path):
    run_pod(srv, ns, "cp", ["sleep", "3600"])
    name = f"kubelite-cp-{uuid.uuid4().hex[:8]}.txt"
    src = tmp_path / "in.txt"
    src.write_bytes(os.urandom(3000) + b"\nend\n")
    p = srv.kubectl("cp", str(src), f"{ns}/cp:/tmp/{name}", timeout=60)
    assert p.returncode == 0, p.stderr
    # Written inside the container, not on the host.
    assert not os.path.exists(f"/tmp/{name}")
    p = srv.kubectl("exec", "cp", "-n", ns, "--", "sha256sum", f"/tmp/{name}", check=True)
    import hashlib
    assert p.stdout.split()[0] == hashlib.sha256(src.read_bytes()).hexdigest()
    # And back, with a directory made in the container.
    srv.kubectl("exec", "cp", "-n", ns, "--", "sh", "-c", "mkdir -p /tmp/d/sub && echo one > /tmp/d/a && "
                "echo two > /tmp/d/sub/b", check=True)
    p = srv.kubectl("cp", f"{ns}/cp:/tmp/{name}", str(tmp_path / "back.txt"), timeout=60)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "back.txt").read_bytes() == src.read_bytes()
    p = srv.kubectl("cp", f"{ns}/cp:/tmp/d", str(tmp_path / "d"), timeout=60)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "d" / "a").read_text() == "one\n" and (tmp_path / "d" / "sub" / "b").read_text() == "two\n"


def test_kubectl_copy_into_a_missing_directory_fails_with_tars_message(srv, ns, tmp_path):
    # (Copying a missing file *from* a pod exits 0 with upstream's kubectl too: kubectl#980.)
    run_pod(srv, ns, "cpmissing", ["sleep", "3600"])
    src = tmp_path / "x.txt"
    src.write_text("x\n")
    p = srv.kubectl("cp", str(src), f"{ns}/cpmissing:/no/such/dir/x.txt", timeout=60)
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert "tar: can't change directory to '/no/such/dir': No such file or directory" in p.stderr, p.stderr
    assert "command terminated with exit code 1" in p.stderr, p.stderr


def test_exec_stdin_reaches_the_command_and_its_exit_code_comes_back(srv, ns):
    run_pod(srv, ns, "stdin", ["sleep", "3600"])
    p = srv.kubectl("exec", "-i", "stdin", "-n", ns, "--", "sh", "-c", "cat; echo; exit 3", input="from kubectl\n")
    assert p.stdout == "from kubectl\n\n", p.stderr
    assert p.returncode == 3, p.stderr


def test_attach_i_sends_input_and_stdin_stays_open_between_attachments(srv, ns):
    run_pod(srv, ns, "attach", ["sh", "-c", 'while read -r line; do echo "got $line"; done; echo "stdin closed"'],
            stdin=True)
    for word in ("hello", "again"):
        proc = kubectl_proc(srv, "attach", "-i", "attach", "-n", ns)
        try:
            assert proc.stdin is not None
            # Until the attachment is made, input would be lost: send until it is echoed.
            out = b""
            deadline = time.monotonic() + 30
            while f"got {word}".encode() not in out and time.monotonic() < deadline:
                proc.stdin.write(f"{word}\n".encode())
                proc.stdin.flush()
                out += read_until(proc, f"got {word}".encode(), timeout=1)
            assert f"got {word}".encode() in out, (out, proc.stderr.read() if proc.poll() is not None else "")
        finally:
            stop(proc)
    # Without stdinOnce the container's stdin survives each client's leaving.
    st = srv.kjson("get", "pod", "attach", "-n", ns)["status"]["containerStatuses"][0]
    assert "running" in st["state"], st


def test_attach_i_to_a_container_without_stdin_is_refused(srv, ns):
    run_pod(srv, ns, "nostdin", ["sleep", "3600"])
    p = srv.kubectl("attach", "-i", "nostdin", "-n", ns, input="x\n", timeout=60)
    assert p.returncode != 0
    assert "stdin" in p.stderr, p.stderr


def test_run_i_rm_pipes_input_and_deletes_the_pod(srv, ns):
    p = srv.kubectl("run", "once", "-n", ns, "-i", "--rm", "--restart=Never", f"--image={IMAGE}", "--",
                    "sh", "-c", "read -r line; echo \"read: $line\"; cat > /dev/null; echo done",
                    input="first line\nmore\n", timeout=120)
    assert p.returncode == 0, p.stderr
    assert "read: first line" in p.stdout and "done" in p.stdout, (p.stdout, p.stderr)
    srv.wait_for(lambda: srv.kubectl("get", "pod", "once", "-n", ns).returncode != 0, 60, what="pod once deleted")


def test_attach_i_with_stdin_once_ends_with_the_input(srv, ns, tmp_path: Path):
    run_pod(srv, ns, "once", ["sh", "-c", "cat; echo end-of-input"], stdin=True, stdinOnce=True)
    proc = kubectl_proc(srv, "attach", "-i", "once", "-n", ns)
    try:
        assert proc.stdin is not None
        proc.stdin.write(b"payload\n")
        proc.stdin.close()
        out = read_until(proc, b"end-of-input", timeout=60)
        assert b"end-of-input" in out, out
        assert proc.wait(timeout=60) == 0
    finally:
        stop(proc)

    def exited() -> bool:
        st = srv.kjson("get", "pod", "once", "-n", ns)["status"]["containerStatuses"][0]
        return (st["state"].get("terminated") or {}).get("exitCode") == 0
    srv.wait_for(exited, 60, what="the container to end after its stdin closed")


def _tty_kubectl(srv: Server, rows: int, cols: int, *args: str) -> tuple[subprocess.Popen, int]:
    """kubectl on a pty of `rows` x `cols` (it is its controlling terminal); the master end."""
    import fcntl
    import pty
    import struct
    import termios
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    env = dict(os.environ, KUBECACHEDIR=str(srv.cache_dir), KUBECONFIG=srv.kubeconfig)

    def controlling_tty() -> None:
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    proc = subprocess.Popen([KUBECTL, *args], stdin=slave, stdout=slave, stderr=slave, env=env,
                            preexec_fn=controlling_tty)
    os.close(slave)
    return proc, master


def _type_until(master: int, line: bytes, want: bytes, timeout: float = 45) -> bytes:
    """Type `line` on the terminal until `want` comes back (input sent before the attachment
    is made is lost); everything read."""
    out = b""
    deadline = time.monotonic() + timeout
    next_send = 0.0
    while want not in out and time.monotonic() < deadline:
        if time.monotonic() >= next_send:
            os.write(master, line)
            next_send = time.monotonic() + 2
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    return out


def test_attach_it_to_a_tty_container_gets_its_terminal_and_detaching_leaves_it_running(srv, ns):
    import fcntl
    import signal
    import struct
    import termios
    run_pod(srv, ns, "tty", ["sh"], stdin=True, tty=True)
    proc, master = _tty_kubectl(srv, 33, 101, "attach", "-it", "tty", "-n", ns)
    try:
        # The shell runs on a terminal (`-t` is true for it) and computes what it is sent.
        out = _type_until(master, b"export MARK=kept-$((40+2)); [ -t 0 ] && echo tty-$((6*7))\r", b"tty-42")
        assert b"tty-42" in out, out
        # kubectl sends its terminal's size on attaching: conmon sets it on the container's pty.
        out = _type_until(master, b"stty size\r", b"33 101")
        assert b"33 101" in out, out
        # A later resize of kubectl's terminal reaches it too.
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 41, 132, 0, 0))
        os.kill(proc.pid, signal.SIGWINCH)
        out = _type_until(master, b"stty size\r", b"41 132")
        assert b"41 132" in out, out
    finally:
        stop(proc)
        os.close(master)
    # Detaching left the same shell running: a second attachment finds its variable.
    proc, master = _tty_kubectl(srv, 24, 80, "attach", "-it", "tty", "-n", ns)
    try:
        out = _type_until(master, b"echo \"$MARK\"\r", b"kept-42")
        assert b"kept-42" in out, out
    finally:
        stop(proc)
        os.close(master)
    st = srv.kjson("get", "pod", "tty", "-n", ns)["status"]["containerStatuses"][0]
    assert "running" in st["state"] and st["restartCount"] == 0, st
