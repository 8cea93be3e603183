"""`kubelite server` start-up: what a user sees when a start cannot work, and that a
non-root user can still run a cluster (host network, a 127.x address per pod).

Every bad start must end with exit code 1 (2 for a bad flag) and one line saying what
is wrong and what to do — never a Python traceback.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import API_ONLY, KUBECTL, free_port, start_server

REPO = Path(__file__).resolve().parent.parent
NOBODY = 65534


def kubelite_server(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    """Run `kubelite server …` that is expected to give up; returns when it exits."""
    cmd = [sys.executable, "-m", "kubelite.cli", "server", *args]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO,
                              start_new_session=True)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"kubelite server {' '.join(args)} started instead of refusing:\n{e.stdout}") from None


def refused(p: subprocess.CompletedProcess, code: int = 1) -> str:
    """The one-line complaint of a refused start (asserting exit code and no traceback)."""
    assert "Traceback" not in p.stderr, p.stderr
    assert p.returncode == code, (p.returncode, p.stderr)
    lines = p.stderr.strip().splitlines()
    return lines[-1]


# -- bad starts --------------------------------------------------------------


def test_second_server_on_the_same_data_dir_is_refused(tmp_path):
    first = start_server(tmp_path, *API_ONLY)
    try:
        msg = refused(kubelite_server("--data-dir", str(first.data_dir), "--api-port", str(free_port())))
        assert msg == (f"kubelite: another kubelite server is already using {first.data_dir} "
                       f"(pid {first.proc.pid}); stop it first, or choose another --data-dir")
        # The first one is untouched.
        assert first.kubectl("get", "--raw", "/readyz").stdout == "ok"
    finally:
        first.stop()
    # Once it has stopped, the data dir is free again.
    again = start_server(tmp_path, *API_ONLY, data_dir=first.data_dir)
    again.stop()


def test_api_port_already_taken(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        msg = refused(kubelite_server("--data-dir", str(tmp_path / "d"), "--api-port", str(port)))
    assert msg == (f"kubelite: cannot listen on 127.0.0.1:{port}: address already in use "
                   "(is another server running? choose another port with --api-port)")


def test_api_port_out_of_range(tmp_path):
    msg = refused(kubelite_server("--data-dir", str(tmp_path / "d"), "--api-port", "99999"), code=2)
    assert msg == "kubelite server: error: argument --api-port: '99999' is not a port number (1-65535)"


def test_data_dir_is_a_file(tmp_path):
    (tmp_path / "d").write_text("not a directory")
    msg = refused(kubelite_server("--data-dir", str(tmp_path / "d"), "--api-port", str(free_port())))
    assert msg == f"kubelite: cannot use data directory {tmp_path / 'd'}: it is a file, not a directory"
    msg = refused(kubelite_server("--data-dir", str(tmp_path / "d" / "sub"), "--api-port", str(free_port())))
    assert msg == f"kubelite: cannot use data directory {tmp_path / 'd' / 'sub'}: not a directory"


@pytest.mark.parametrize("part, expected", [
    ("db", "kubelite: cannot open the store: {d}/db: a file is in the way of a directory"),
    ("tls", "kubelite: cannot create certificates: {d}/tls: a file is in the way of a directory"),
])
def test_a_file_where_a_directory_of_the_data_dir_belongs(tmp_path, part, expected):
    d = tmp_path / "d"
    d.mkdir()
    (d / part).write_text("x")
    msg = refused(kubelite_server("--data-dir", str(d), "--api-port", str(free_port())))
    assert msg == expected.format(d=d)


def test_kubeconfig_path_is_a_directory(tmp_path):
    d = tmp_path / "d"
    (d / "kubeconfig").mkdir(parents=True)
    msg = refused(kubelite_server("--data-dir", str(d), "--api-port", str(free_port()), *API_ONLY))
    assert msg == f"kubelite: cannot write the kubeconfig: {d}/kubeconfig: is a directory"


def test_corrupt_state_db(tmp_path):
    d = tmp_path / "d"
    (d / "db").mkdir(parents=True)
    (d / "db" / "state.db").write_bytes(os.urandom(8192))
    # A data directory with a store but no remembered range keeps the old default range
    # 127.96.0.0/16, which overlaps whatever server on this machine holds one of its first
    # /20 blocks (e.g. another test file's, under xdist): the supernet's last block is free.
    msg = refused(kubelite_server("--data-dir", str(d), "--api-port", str(free_port()),
                                  "--service-cidr", "127.111.240.0/20"))
    assert msg == (f"kubelite: cannot open the store {d}/db/state.db: file is not a database "
                   "(move the file away to start with an empty cluster)")


def test_damaged_certificate(tmp_path):
    srv = start_server(tmp_path, *API_ONLY)
    srv.stop()
    (srv.data_dir / "tls" / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\ngarbage\n")
    msg = refused(kubelite_server("--data-dir", str(srv.data_dir), "--api-port", str(free_port())))
    assert msg == (f"kubelite: a certificate or key in {srv.data_dir}/tls is damaged (move {srv.data_dir}/tls "
                   "away to make new ones; old kubeconfigs then stop working)")


# -- a non-root user ---------------------------------------------------------


def _as_nobody() -> list[str]:
    return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"] if os.geteuid() == 0 else []


@pytest.fixture(scope="module")
def nobody_env():
    """(argv prefix, env) that run kubelite as an unprivileged user.

    As root: setpriv to uid 65534, with the packages kubelite imports copied where that
    user can read them (root's site-packages usually is not). As anyone else: as is."""
    if os.geteuid() != 0:
        yield [sys.executable], dict(os.environ), Path(tempfile.mkdtemp())
        return
    top = Path(tempfile.mkdtemp(prefix="kubelite-nobody-"))
    os.chmod(top, 0o755)
    probe = ("import sys, json, importlib\n"
             "for m in ['kubelite.cli', 'kubelite.controllers.manager', 'kubelite.scheduler.scheduler',"
             " 'kubelite.node.agent', 'kubelite.proxy.proxy', 'kubelite.apiserver.openapi', 'uvloop',"
             " 'kubelite.controllers.cronjob', 'kubelite.dns.component', 'kubelite.ingress.controller', 'celpy']:\n"
             "    importlib.import_module(m)\n"
             "print(json.dumps([getattr(m, '__file__', None) for m in list(sys.modules.values())]))\n")
    files = json.loads(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                                      cwd=REPO).stdout)
    site = top / "site"
    site.mkdir()
    for sp in {p for p in sys.path if p.endswith("-packages")}:
        for f in files:
            if f and f.startswith(sp + os.sep):
                name = f[len(sp) + 1:].split(os.sep)[0]
                src, dst = os.path.join(sp, name), site / name
                if not dst.exists():
                    (shutil.copytree if os.path.isdir(src) else shutil.copy2)(src, dst)
    subprocess.run(["chmod", "-R", "a+rX", str(top)], check=True)
    env = dict(os.environ, PYTHONPATH=f"{REPO}:{site}", HOME=str(top / "no-home"))
    env.pop("VIRTUAL_ENV", None)
    yield _as_nobody() + [sys.executable], env, top
    shutil.rmtree(top, ignore_errors=True)


def test_non_root_with_a_data_dir_it_cannot_write(nobody_env):
    prefix, env, top = nobody_env
    locked = top / "locked"
    locked.mkdir(mode=0o755)  # owned by root: nobody may not write here
    if os.geteuid() != 0:
        locked.chmod(0o555)
    p = subprocess.run([*prefix, "-m", "kubelite.cli", "server", "--data-dir", str(locked / "data"),
                        "--api-port", str(free_port())], capture_output=True, text=True, env=env, timeout=30)
    assert refused(p) == (f"kubelite: cannot use data directory {locked / 'data'}: permission denied "
                          "(choose another with --data-dir or KUBELITE_DATA_DIR)")


def test_non_root_starts_on_the_host_network(nobody_env, tmp_path):
    prefix, env, top = nobody_env
    home = top / "home"
    home.mkdir(mode=0o755)
    if os.geteuid() == 0:
        os.chown(home, NOBODY, NOBODY)
    data, port = home / "data", free_port()
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([*prefix, "-m", "kubelite.cli", "server", "--data-dir", str(data), "--api-port",
                                 str(port)], stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    kenv = dict(os.environ, KUBECONFIG=str(data / "kubeconfig"), KUBECACHEDIR=str(tmp_path / "kcache"))

    def k(*args: str) -> str:
        return subprocess.run([KUBECTL, *args], capture_output=True, text=True, env=kenv, timeout=30).stdout

    def wait(cond, what: str, timeout: float = 40):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"server exited {proc.returncode}:\n{log_path.read_text()}"
            if cond():
                return
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}\n{log_path.read_text()[-4000:]}")

    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE

    def ready() -> bool:
        try:
            with urllib.request.urlopen(f"https://127.0.0.1:{port}/readyz", context=ctx, timeout=2) as r:
                return r.status == 200 and (data / "kubeconfig").exists()
        except OSError:
            return False
    try:
        wait(ready, "/readyz")
        wait(lambda: re.search(r"\sReady\s", k("get", "nodes")), "a Ready node")
        assert "falling back to the host network" in log_path.read_text()
        k("create", "deployment", "web", "--image=gcr.io/google-samples/kubernetes-bootcamp:v1")
        wait(lambda: " 1/1 " in k("get", "pods", "-l", "app=web"), "the pod Running")
        ip = k("get", "pods", "-l", "app=web", "-o", "jsonpath={.items[0].status.podIP}")
        assert ip.startswith("127.") and ip != "127.0.0.1", ip
        reply = subprocess.run(["curl", "-sS", "--max-time", "5", f"http://{ip}:8080"], capture_output=True,
                               text=True).stdout
        assert re.fullmatch(r"Hello Kubernetes bootcamp! \| Running on: web-\S+ \| v=1\n", reply), reply
        if os.geteuid() == 0:  # every file the server made belongs to the user who ran it
            assert {p.stat().st_uid for p in data.rglob("*")} == {NOBODY}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=45)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert "Traceback" not in log_path.read_text()
