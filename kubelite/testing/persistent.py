"""The persistent launcher: one warm zygote per user and kubelite version, shared by test processes.

The per-process launcher (``launcher.py``) makes every cluster after the first of a test
process cheap, but the first still pays the imports (most of a second).  Test suites of
operator authors are often short runs started again and again, so that first start is
most of what they wait for.  With ``KUBELITE_LAUNCHER=persistent`` (or the pytest
setting ``kubelite_launcher = persistent``) the launcher instead lives on between runs:

- it listens on ``<dir>/launcher-<stamp>.sock``; ``<dir>`` is ``$KUBELITE_LAUNCHER_DIR``,
  else ``$XDG_RUNTIME_DIR/kubelite``, else ``/tmp/kubelite-<uid>``, private to the user
  (mode 0700, and a peer of another uid is turned away);
- ``<stamp>`` hashes the interpreter, the package's location and every source file's size and
  modification time, so an edited checkout or an upgrade gets a new launcher instead of
  forking stale code (the old one idles out);
- each connection owns the servers it asked for: when it ends (the test process exited or
  was killed) they get SIGTERM, then SIGKILL after 30 s, and their directories are removed;
- a server gets the requesting process's environment and working directory;
- it exits after ``IDLE_SECONDS`` (``KUBELITE_LAUNCHER_IDLE``) with no connection and no
  server, or at once on ``python -m kubelite.testing.launcher --stop``.

The requests are the pipe launcher's (``start``, ``wait``) plus ``exit``; a ``wait`` with a
timeout is answered when the child exits or the timeout passes, without holding up other
connections.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from kubelite.testing.zygote import child, import_server

IDLE_SECONDS = 600.0
STOP_GRACE = 30.0
PACKAGE_ROOT = Path(__file__).resolve().parent.parent  # the kubelite package directory


def launcher_dir() -> Path:
    """The user's private directory for launcher sockets (made if missing, checked if present)."""
    env = os.environ.get("KUBELITE_LAUNCHER_DIR")
    if env:
        d = Path(env)
    elif os.environ.get("XDG_RUNTIME_DIR"):
        d = Path(os.environ["XDG_RUNTIME_DIR"]) / "kubelite"
    else:
        d = Path("/tmp") / f"kubelite-{os.getuid()}"
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = d.stat()
    # Anyone who can connect can make us run a server as this user: the directory must be ours alone.
    if st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise PermissionError(f"{d} must belong to uid {os.getuid()} with mode 0700 to hold the kubelite launcher")
    return d


def code_stamp(package: Path = PACKAGE_ROOT, executable: str = sys.executable) -> str:
    """A short hash naming this interpreter and this exact kubelite source tree."""
    h = hashlib.sha256(f"{executable}\0{package}\0".encode())
    for path in sorted(package.rglob("*.py")):
        st = path.stat()
        h.update(f"{path.relative_to(package)}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    return h.hexdigest()[:16]


def socket_path() -> Path:
    """Where the launcher for this interpreter and source tree listens."""
    return launcher_dir() / f"launcher-{code_stamp()}.sock"


# -- the client side ---------------------------------------------------------------------

def connect(path: Path, timeout: float) -> socket.socket:
    """A connection to the launcher at ``path``, starting one if none answers there."""
    deadline = time.monotonic() + timeout
    spawned = False
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(str(path))
            return sock
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
        if not spawned:
            spawn(path)
            spawned = True
        if time.monotonic() >= deadline:
            raise TimeoutError(f"no kubelite launcher answered at {path} within {timeout:g} s "
                               f"(its log: {path.with_suffix('.log')})")
        time.sleep(0.01)


def spawn(path: Path) -> None:
    """Start a launcher for ``path`` in its own session (it outlives this process)."""
    root = str(PACKAGE_ROOT.parent)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([root, *filter(None, [os.environ.get("PYTHONPATH")])]))
    with open(path.with_suffix(".log"), "a") as log:
        subprocess.Popen([sys.executable, "-m", "kubelite.testing.launcher", "--socket", str(path), "--idle",
                          os.environ.get("KUBELITE_LAUNCHER_IDLE", str(IDLE_SECONDS))],
                         stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, env=env,
                         cwd="/")


def stop_all() -> int:
    """Ask every launcher in the user's directory to stop its servers and exit."""
    for path in sorted(launcher_dir().glob("launcher-*.sock")):
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(STOP_GRACE + 10)
                sock.connect(str(path))
                sock.sendall(b'{"exit": true}\n')
                sock.recv(1024)  # answered once its servers are stopped
        except OSError:
            continue
    return 0


# -- the launcher side -------------------------------------------------------------------

@dataclass
class _Conn:
    sock: socket.socket
    buf: bytes = b""
    children: dict[int, str] = field(default_factory=dict)  # pid -> directory to remove when it is stopped
    waiting: tuple[int, float] | None = None  # a "wait" not answered yet: (pid, deadline)
    closed: bool = False


class _Launcher:
    """The select loop: connections, forks, reaping and the stopping of orphaned servers."""

    def __init__(self, listener: socket.socket, idle: float):
        self.listener = listener
        self.idle = idle
        self.sel = selectors.DefaultSelector()
        self.sel.register(listener, selectors.EVENT_READ)
        self.conns: dict[int, _Conn] = {}
        self.codes: dict[int, int] = {}
        self.orphans: dict[int, tuple[float, str]] = {}  # pid -> (SIGKILL deadline, directory)
        self.exit_conn: _Conn | None = None

    def run(self) -> None:
        """Serve until idle for ``idle`` seconds or asked to exit."""
        quiet_since = time.monotonic()
        while True:
            busy = any(c.waiting for c in self.conns.values()) or self.orphans
            for key, _ in self.sel.select(0.01 if busy else 0.5):
                if key.fileobj is self.listener:
                    self._accept()
                else:
                    self._read(self.conns[key.fd])
            self._reap()
            self._answer_waits()
            self._stop_orphans()
            if self.exit_conn is not None and not self.orphans:
                self._reply(self.exit_conn, {})
                return
            if self.conns or self.orphans:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= self.idle:
                return

    def _accept(self) -> None:
        sock, _ = self.listener.accept()
        _pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                              struct.calcsize("3i")))
        if uid != os.getuid():
            sock.close()
            return
        sock.setblocking(True)
        self.conns[sock.fileno()] = _Conn(sock)
        self.sel.register(sock, selectors.EVENT_READ)

    def _read(self, conn: _Conn) -> None:
        try:
            data = conn.sock.recv(65536)
        except OSError:
            data = b""
        if not data:
            self._drop(conn)
            return
        conn.buf += data
        self._process_lines(conn)

    def _process_lines(self, conn: _Conn) -> None:
        # One request at a time per connection: a pending wait holds back the next line.
        while b"\n" in conn.buf and conn.waiting is None and not conn.closed:
            line, conn.buf = conn.buf.split(b"\n", 1)
            try:
                req = json.loads(line)
            except ValueError:
                req = {}
            self._handle(conn, req if isinstance(req, dict) else {})

    def _handle(self, conn: _Conn, req: dict[str, object]) -> None:
        if "start" in req:
            args = [str(a) for a in req["start"]] if isinstance(req["start"], list) else []
            env = req.get("env")
            fds = (self.listener.fileno(), *self.conns)
            sys.stdout.flush()
            pid = os.fork()
            if pid == 0:
                child(args, str(req["log"]), env={str(k): str(v) for k, v in env.items()}
                       if isinstance(env, dict) else None, cwd=str(req.get("cwd") or "") or None,
                       close=tuple(fd for fd in fds if fd >= 0))
            conn.children[pid] = str(req.get("cleanup") or "")
            self._reply(conn, {"pid": pid})
        elif "wait" in req:
            pid = int(str(req["wait"]))
            timeout = float(str(req.get("timeout", 0)))
            conn.waiting = (pid, time.monotonic() + timeout)
            self._reap()
            self._answer_waits()
        elif "exit" in req:
            self.exit_conn = conn
            self.sel.unregister(self.listener)
            for other in list(self.conns.values()):
                if other is not conn:
                    self._drop(other)
            self._orphan(conn)
        else:
            self._reply(conn, {})

    def _reply(self, conn: _Conn, answer: dict[str, object]) -> None:
        try:
            conn.sock.sendall((json.dumps(answer) + "\n").encode())
        except OSError:
            self._drop(conn)

    def _answer_waits(self) -> None:
        for conn in list(self.conns.values()):
            if conn.waiting is None:
                continue
            pid, deadline = conn.waiting
            ours = pid in conn.children
            if ours and pid not in self.codes and time.monotonic() < deadline:
                continue
            conn.waiting = None
            code = self.codes.pop(pid, None) if ours else -1
            if ours and code is not None:
                del conn.children[pid]
            self._reply(conn, {"code": code})
            self._process_lines(conn)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid in self.orphans:
                _, directory = self.orphans.pop(pid)
                if directory:
                    shutil.rmtree(directory, ignore_errors=True)
            else:
                self.codes[pid] = os.waitstatus_to_exitcode(status)

    def _drop(self, conn: _Conn) -> None:
        """The connection ended: its servers are orphans now and get stopped."""
        if conn.closed:
            return
        conn.closed = True
        self.conns.pop(conn.sock.fileno(), None)
        self.sel.unregister(conn.sock)
        conn.sock.close()
        self._orphan(conn)

    def _orphan(self, conn: _Conn) -> None:
        for pid, directory in conn.children.items():
            if pid in self.codes:  # already exited, only its directory is left
                self.codes.pop(pid)
                if directory:
                    shutil.rmtree(directory, ignore_errors=True)
                continue
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            self.orphans[pid] = (time.monotonic() + STOP_GRACE, directory)
        conn.children.clear()

    def _stop_orphans(self) -> None:
        now = time.monotonic()
        for pid, (deadline, directory) in list(self.orphans.items()):
            if now >= deadline:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.orphans[pid] = (now + STOP_GRACE, directory)

    def stop_everything(self) -> None:
        """SIGTERM: stop every server, wait for them, remove their directories."""
        for conn in list(self.conns.values()):
            self._drop(conn)
        deadline = time.monotonic() + 2 * STOP_GRACE
        while self.orphans and time.monotonic() < deadline:
            self._reap()
            self._stop_orphans()
            time.sleep(0.01)


def serve_socket(path: str, idle: float) -> int:
    """Run a persistent launcher on the Unix socket ``path`` (see the module docstring)."""
    sock_path = Path(path)
    with open(sock_path.with_suffix(".lock"), "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return 0  # another launcher for this stamp is running or starting; clients will find it
        import_server()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock_path.unlink(missing_ok=True)  # a dead launcher's; we hold the lock, so no live one uses it
        old_umask = os.umask(0o177)
        try:
            listener.bind(str(sock_path))
        finally:
            os.umask(old_umask)
        listener.listen(64)
        launcher = _Launcher(listener, idle)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        try:
            launcher.run()
        finally:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            sock_path.unlink(missing_ok=True)
            listener.close()
            launcher.stop_everything()
    return 0
