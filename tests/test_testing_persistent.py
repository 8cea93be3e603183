"""The persistent launcher (``KUBELITE_LAUNCHER=persistent``): shared by test processes, owning
each process's servers, private to the user, named after the code it runs, gone when idle."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubelite.testing import persistent
from tests.conftest import wait_for

ROOT = Path(__file__).resolve().parent.parent

# A test process: starts a cluster with the persistent launcher, prints what the test checks,
# then (with "hold") waits to be killed.
CLIENT = textwrap.dedent("""
    import json, os, sys, time
    from kubelite.testing import cluster
    with cluster() as c:
        with c.kubernetes_client() as api:
            import kubernetes.client
            ns = kubernetes.client.CoreV1Api(api).read_namespace("default")
        stat = open(f"/proc/{c.pid}/stat").read().rpartition(")")[2].split()
        print(json.dumps({"pid": c.pid, "ppid": int(stat[1]), "dir": str(c.data_dir.parent),
                          "cwd": os.readlink(f"/proc/{c.pid}/cwd"), "ns": ns.metadata.name}), flush=True)
        if "hold" in sys.argv:
            time.sleep(600)
""")


def alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def launcher_env() -> Iterator[dict[str, str]]:
    """An environment whose persistent launcher lives in a directory of this test's own
    (made 0700 under /tmp, whose parents another uid can traverse); the launcher is stopped
    and the directory removed at the end."""
    d = Path(tempfile.mkdtemp(prefix="kubelite-launchers-"))
    env = dict(os.environ, KUBELITE_LAUNCHER="persistent", KUBELITE_LAUNCHER_DIR=str(d),
               PYTHONPATH=os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
    yield env
    subprocess.run([sys.executable, "-m", "kubelite.testing.launcher", "--stop"], env=env, timeout=120, check=True)
    try:
        assert not list(d.glob("*.sock")), "the launcher's socket outlived --stop"
    finally:
        shutil.rmtree(d, ignore_errors=True)


def run_client(env: dict[str, str], cwd: Path) -> dict:
    """Run one test process to its end; what it printed."""
    p = subprocess.run([sys.executable, "-c", CLIENT], env=env, cwd=cwd, capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_test_processes_fork_their_clusters_from_one_persistent_launcher(launcher_env, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    first = run_client(launcher_env, work)
    second = run_client(launcher_env, work)
    assert first["ns"] == second["ns"] == "default"
    # Both servers are children of the same launcher, which outlived the first test process.
    assert first["ppid"] == second["ppid"]
    assert alive(first["ppid"])
    assert first["pid"] != second["pid"] and not alive(first["pid"]) and not alive(second["pid"])
    # A server runs in the directory of the process that asked for it, not the launcher's.
    assert first["cwd"] == str(work)
    assert not Path(first["dir"]).exists() and not Path(second["dir"]).exists()
    launcher_pid = first["ppid"]
    subprocess.run([sys.executable, "-m", "kubelite.testing.launcher", "--stop"], env=launcher_env, timeout=120,
                   check=True)
    wait_for(lambda: not alive(launcher_pid), "the launcher to exit on --stop", timeout=60)


def test_servers_of_a_killed_test_process_are_stopped_and_their_directories_removed(launcher_env, tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", CLIENT, "hold"], env=launcher_env, cwd=tmp_path,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        got = json.loads(proc.stdout.readline())
        assert alive(got["pid"]) and Path(got["dir"]).exists()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        wait_for(lambda: not alive(got["pid"]), "the killed process's server to stop", timeout=60)
        wait_for(lambda: not Path(got["dir"]).exists(), "its directory to be removed", timeout=60)
        assert alive(got["ppid"]), "the launcher itself stays for the next test process"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_launcher_exits_after_its_idle_time(launcher_env, tmp_path):
    env = dict(launcher_env, KUBELITE_LAUNCHER_IDLE="1")
    got = run_client(env, tmp_path)
    wait_for(lambda: not alive(got["ppid"]), "the idle launcher to exit", timeout=60)
    assert not list(Path(env["KUBELITE_LAUNCHER_DIR"]).glob("*.sock"))


def test_a_changed_source_file_names_another_launcher(tmp_path):
    pkg = tmp_path / "kubelite"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "a.py").write_text("x = 1\n")
    (pkg / "sub" / "b.py").write_text("y = 2\n")
    before = persistent.code_stamp(pkg, "/usr/bin/python3")
    assert persistent.code_stamp(pkg, "/usr/bin/python3") == before
    assert persistent.code_stamp(pkg, "/opt/other/python3") != before
    (pkg / "sub" / "b.py").write_text("y = 22\n")
    assert persistent.code_stamp(pkg, "/usr/bin/python3") != before


def test_a_launcher_directory_others_can_enter_is_refused(tmp_path, monkeypatch):
    d = tmp_path / "open"
    d.mkdir()
    d.chmod(0o755)
    monkeypatch.setenv("KUBELITE_LAUNCHER_DIR", str(d))
    with pytest.raises(PermissionError, match="mode 0700"):
        persistent.launcher_dir()
    d.chmod(0o700)
    assert persistent.launcher_dir() == d


def test_a_connection_of_another_user_is_turned_away(launcher_env, tmp_path):
    if os.getuid() != 0:
        pytest.skip("connecting as another uid needs root")
    run_client(launcher_env, tmp_path)  # the launcher is up
    sock = next(Path(launcher_env["KUBELITE_LAUNCHER_DIR"]).glob("*.sock"))
    os.chmod(sock.parent, 0o711)  # let uid 65534 reach the socket file, to test the launcher's own check
    os.chmod(sock, 0o666)
    probe = textwrap.dedent(f"""
        import os, socket
        os.setgid(65534); os.setuid(65534)
        s = socket.socket(socket.AF_UNIX)
        s.connect({str(sock)!r})
        try:
            s.sendall(b'{{"wait": 1, "timeout": 0}}\\n')
            print(repr(s.recv(100)))
        except (BrokenPipeError, ConnectionResetError):
            print("b''")  # closed by the launcher before or after the request
    """)
    p = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=30)
    os.chmod(sock.parent, 0o700)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "b''", "the launcher answered a process of another user"
