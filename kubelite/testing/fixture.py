"""``kubelite.testing.cluster()``: a kubelite server in a temporary directory, for tests.

The server is a separate process (forked from a warm launcher, see ``launcher.py``)
listening on a free port of 127.0.0.1; it is stopped and its directory removed when
the ``with`` block ends.  Nothing here imports the server's modules, so importing this
module (and the pytest plugin) stays cheap.
"""
from __future__ import annotations

import asyncio
import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    import kr8s.asyncio
    import kubernetes.client

START_TIMEOUT = 60.0
STOP_TIMEOUT = 45.0


class ClusterError(Exception):
    """The server could not start (the message ends with its log) or an admin call failed."""


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class _LauncherClient:
    """What a cluster asks of a launcher: fork a server, wait for one; the request line goes
    over the launcher's own channel (``_ask``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def warm(self) -> None:
        """Get the launcher going without waiting for it."""
        raise NotImplementedError

    def close(self) -> None:
        """Let go of the launcher (it stops the servers it still runs for this process)."""
        raise NotImplementedError

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def _start_fields(self) -> dict[str, Any]:
        """More fields of a start request (what a launcher not forked by this process needs)."""
        return {}

    def start(self, args: Sequence[str], log: str, cleanup: str = "") -> int:
        """Fork ``kubelite <args>`` with its output in ``log``; its pid (``cleanup``: a
        directory the launcher removes if this process dies first)."""
        with self._lock:
            return int(self._ask({"start": list(args), "log": log, "cleanup": cleanup, **self._start_fields()})["pid"])

    def wait(self, pid: int, timeout: float) -> int | None:
        """The exit code of ``pid`` if it exits within ``timeout`` seconds, else None."""
        with self._lock:
            code = self._ask({"wait": pid, "timeout": timeout})["code"]
            return None if code is None else int(code)


class _Launcher(_LauncherClient):
    """The client side of one warm launcher process (started on first use, per test process)."""

    def __init__(self) -> None:
        super().__init__()
        self._proc: subprocess.Popen[str] | None = None
        self._ready = False

    def warm(self) -> None:
        """Start the launcher now, without waiting for its imports."""
        with self._lock:
            self._spawn()

    def _spawn(self) -> subprocess.Popen[str]:
        if self._proc is None or self._proc.poll() is not None:
            # The launcher imports the same kubelite as this process (a checkout or the installed one).
            root = str(Path(__file__).resolve().parent.parent.parent)
            path = os.pathsep.join([root, *filter(None, [os.environ.get("PYTHONPATH")])])
            self._proc = subprocess.Popen([sys.executable, "-m", "kubelite.testing.launcher"], stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, text=True, bufsize=1,
                                          env=dict(os.environ, PYTHONPATH=path))
            self._ready = False
        return self._proc

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        proc = self._spawn()
        stdin, stdout = _pipes(proc)
        if not self._ready:
            line = stdout.readline()
            if not line:
                raise ClusterError(f"the kubelite launcher exited ({proc.wait()}) before it was ready")
            self._ready = True
        stdin.write(json.dumps(request) + "\n")
        stdin.flush()
        line = stdout.readline()
        if not line:
            raise ClusterError(f"the kubelite launcher exited ({proc.wait()})")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def close(self) -> None:
        """Stop the launcher (it stops any server it still runs)."""
        with self._lock:
            if self._proc is not None and self._proc.poll() is None:
                assert self._proc.stdin is not None
                self._proc.stdin.close()
                try:
                    self._proc.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait()
            self._proc = None


def _pipes(proc: subprocess.Popen[str]) -> tuple[IO[str], IO[str]]:
    assert proc.stdin is not None and proc.stdout is not None
    return proc.stdin, proc.stdout


class _PersistentLauncher(_LauncherClient):
    """The client side of the user's persistent launcher (``persistent.py``): one connection
    per test process; the servers it started stop when the connection ends."""

    def __init__(self) -> None:
        super().__init__()
        self._file: IO[str] | None = None
        self._path: Path | None = None  # hashing the sources once per process is enough

    def _socket_path(self) -> Path:
        from kubelite.testing import persistent
        if self._path is None:
            self._path = persistent.socket_path()
        return self._path

    def warm(self) -> None:
        """Start the persistent launcher if none is listening yet, without waiting for it."""
        from kubelite.testing import persistent
        with self._lock:
            path = self._socket_path()
            if self._file is None and not path.exists():
                persistent.spawn(path)

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        from kubelite.testing import persistent
        if self._file is None:
            try:
                sock = persistent.connect(self._socket_path(), START_TIMEOUT)
            except (OSError, TimeoutError) as e:
                raise ClusterError(f"the persistent kubelite launcher: {e}") from e
            self._file = sock.makefile("rw", encoding="utf-8", newline="\n")
            sock.close()  # the file object keeps its own reference to the connection
        self._file.write(json.dumps(request) + "\n")
        self._file.flush()
        line = self._file.readline()
        if not line:
            self._file = None
            raise ClusterError("the persistent kubelite launcher closed the connection")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def _start_fields(self) -> dict[str, Any]:
        # The launcher was not forked from this process: the server gets our environment and directory.
        return {"env": dict(os.environ), "cwd": os.getcwd()}

    def close(self) -> None:
        """End this process's connection (the launcher stops the servers it still runs for it)."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


_launcher = _Launcher()
_persistent_launcher = _PersistentLauncher()
LAUNCHERS = ("process", "persistent")
_chosen: str | None = None


def use_launcher(kind: str) -> None:
    """Fork servers from a launcher of this test process ("process", the default) or from the
    user's persistent one ("persistent"); ``$KUBELITE_LAUNCHER`` sets it too."""
    global _chosen
    if kind not in LAUNCHERS:
        raise ValueError(f"launcher must be one of {', '.join(LAUNCHERS)}, not {kind!r}")
    _chosen = kind


def _current_launcher() -> _LauncherClient:
    kind = _chosen or os.environ.get("KUBELITE_LAUNCHER") or "process"
    if kind not in LAUNCHERS:
        raise ClusterError(f"KUBELITE_LAUNCHER must be one of {', '.join(LAUNCHERS)}, not {kind!r}")
    return _persistent_launcher if kind == "persistent" else _launcher


def warm_up() -> None:
    """Start the launcher in the background, so that the first cluster starts fast too."""
    _current_launcher().warm()


class Cluster:
    """A running kubelite server made by ``cluster()``: where it is and how to use it."""

    def __init__(self, *, api_only: bool = True, controllers: bool = False, runtime: str = "process",
                 args: Sequence[str] = (), directory: str | None = None, keep_directory: bool = False) -> None:
        self.api_only = api_only
        self._args = list(args)
        self._components = ["controllers"] if (api_only and controllers) else []
        self._runtime = runtime
        self._parent_dir = directory
        self._keep = keep_directory
        self.data_dir = Path()
        self.port = 0
        self.pid = 0
        self.start_seconds = 0.0  # from fork to the first successful request
        self._launcher: _LauncherClient = _launcher  # the one that forked this server (set by start())
        self._conn: http.client.HTTPSConnection | None = None
        self._conn_lock = threading.Lock()

    # -- where things are ----------------------------------------------------------------
    @property
    def url(self) -> str:
        """The API server's address, https://127.0.0.1:PORT."""
        return f"https://127.0.0.1:{self.port}"

    @property
    def kubeconfig(self) -> str:
        """Path of the admin kubeconfig (system:masters, client certificate)."""
        return str(self.data_dir / "kubeconfig")

    @property
    def ca_file(self) -> str:
        """The cluster CA certificate (PEM), which signed the serving certificate."""
        return str(self.data_dir / "tls" / "ca.crt")

    @property
    def cert_file(self) -> str:
        """The admin client certificate (PEM)."""
        return str(self.data_dir / "tls" / "admin.crt")

    @property
    def key_file(self) -> str:
        """The admin client key (PEM)."""
        return str(self.data_dir / "tls" / "admin.key")

    @property
    def log_file(self) -> str:
        """The server's output."""
        return str(self.data_dir.parent / "server.log")

    def env(self) -> dict[str, str]:
        """Environment variables that point kubectl and client libraries at this cluster."""
        return {"KUBECONFIG": self.kubeconfig}

    def log_tail(self, lines: int = 40) -> str:
        """The end of the server's output (for error messages)."""
        try:
            return "\n".join(Path(self.log_file).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    # -- clients -------------------------------------------------------------------------
    def kubernetes_configuration(self) -> kubernetes.client.Configuration:
        """A ``kubernetes.client.Configuration`` for the PyPI ``kubernetes`` package (admin)."""
        import kubernetes.client
        import kubernetes.config
        cfg = kubernetes.client.Configuration()
        kubernetes.config.load_kube_config(config_file=self.kubeconfig, client_configuration=cfg)
        return cfg

    def kubernetes_client(self) -> kubernetes.client.ApiClient:
        """A ``kubernetes.client.ApiClient`` for this cluster (close it, or use it in ``with``)."""
        import kubernetes.client
        return kubernetes.client.ApiClient(self.kubernetes_configuration())

    async def kr8s_api(self) -> kr8s.asyncio.Api:
        """A ``kr8s.asyncio.Api`` for this cluster (needs the kr8s package)."""
        import kr8s.asyncio
        return await kr8s.asyncio.api(kubeconfig=self.kubeconfig)

    # -- admin calls ---------------------------------------------------------------------
    def reset(self) -> None:
        """Back to the state of the last ``snapshot()`` (or of start-up), in one store transaction.

        Every open watch ends and history is compacted: a client that re-watches from an
        older resourceVersion gets 410 Expired and re-lists, as informers do.
        """
        self._post("/kubelite/reset")

    def snapshot(self) -> None:
        """Make the current state what ``reset()`` returns to (e.g. after installing CRDs)."""
        self._post("/kubelite/snapshot")

    async def areset(self) -> None:
        """``reset()`` for async tests."""
        await asyncio.to_thread(self.reset)

    async def asnapshot(self) -> None:
        """``snapshot()`` for async tests."""
        await asyncio.to_thread(self.snapshot)

    def _post(self, path: str) -> None:
        with self._conn_lock:
            for attempt in (1, 2):  # a kept-alive connection the server closed: once more on a new one
                if self._conn is None:
                    ctx = ssl.create_default_context(cafile=self.ca_file)
                    ctx.load_cert_chain(self.cert_file, self.key_file)
                    self._conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=ctx, timeout=60)
                try:
                    self._conn.request("POST", path, headers={"Accept": "application/json", "Content-Length": "0"})
                    resp = self._conn.getresponse()
                    body = resp.read()
                except (http.client.HTTPException, ConnectionError) as e:
                    self._conn.close()
                    self._conn = None
                    if attempt == 2:
                        raise ClusterError(f"POST {path}: {e}") from e
                    continue
                if resp.status != 200:
                    raise ClusterError(f"POST {path}: {resp.status} {body.decode(errors='replace')}")
                return

    # -- life cycle ----------------------------------------------------------------------
    def server_args(self) -> list[str]:
        """The ``kubelite`` command line this cluster runs (without the program name)."""
        args = ["server", "--data-dir", str(self.data_dir), "--api-port", str(self.port), "--allow-reset"]
        if self.api_only:
            args.append("--api-only")
            if self._components:
                args += ["--enable", ",".join(self._components)]
        else:
            args += ["--runtime", self._runtime, "--network", "host", "--offline"]
        return args + self._args

    def start(self) -> Cluster:
        """Start the server and wait until it answers an authenticated request."""
        root = Path(tempfile.mkdtemp(prefix="kubelite-fixture-", dir=self._parent_dir))
        self.data_dir = root / "data"
        try:
            for attempt in range(3):  # the free port may be taken by someone else meanwhile
                self.port = free_port()
                began = time.monotonic()
                self._launcher = _current_launcher()
                self.pid = self._launcher.start(self.server_args(), self.log_file, "" if self._keep else str(root))
                try:
                    self._wait_ready()
                except ClusterError as e:
                    self._stop_process()
                    if "cannot listen" in str(e) and attempt < 2:
                        continue
                    raise
                self.start_seconds = time.monotonic() - began
                return self
            raise AssertionError("unreachable: the last attempt returns or raises")
        except BaseException:  # interrupted too: no server and no directory left behind
            self._stop_process()
            self._remove()
            raise

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        kubeconfig = Path(self.kubeconfig)
        while time.monotonic() < deadline:
            code = self._launcher.wait(self.pid, 0)
            if code is not None:
                raise ClusterError(f"kubelite server exited with {code}:\n{self.log_tail()}")
            if kubeconfig.exists():  # written once the bootstrap objects exist
                try:
                    # The API server alone is ready with its bootstrap objects; a whole
                    # cluster once /readyz says its node, controllers and proxy are too.
                    if self._get("/api/v1/namespaces/default" if self.api_only else "/readyz") == 200:
                        return
                except (OSError, http.client.HTTPException):
                    pass
            time.sleep(0.002)
        raise ClusterError(f"kubelite server not ready in {START_TIMEOUT:g} s:\n{self.log_tail()}")

    def _get(self, path: str) -> int:
        ctx = ssl.create_default_context(cafile=self.ca_file)
        ctx.load_cert_chain(self.cert_file, self.key_file)
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=ctx, timeout=10)
        try:
            conn.request("GET", path, headers={"Accept": "application/json"})
            resp = conn.getresponse()
            resp.read()
            return resp.status
        finally:
            conn.close()

    def _stop_process(self) -> None:
        if not self.pid:
            return
        if self._launcher.wait(self.pid, 0) is None:
            try:
                os.kill(self.pid, 15)
            except ProcessLookupError:
                pass
            if self._launcher.wait(self.pid, STOP_TIMEOUT) is None:
                os.kill(self.pid, 9)
                self._launcher.wait(self.pid, STOP_TIMEOUT)
        self.pid = 0

    def _remove(self) -> None:
        if not self._keep and self.data_dir != Path():
            shutil.rmtree(self.data_dir.parent, ignore_errors=True)

    def stop(self) -> None:
        """Stop the server and remove its directory (unless ``keep_directory``)."""
        with self._conn_lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
        self._stop_process()
        self._remove()

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, typ: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    async def __aenter__(self) -> Cluster:
        return await asyncio.to_thread(self.start)

    async def __aexit__(self, typ: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await asyncio.to_thread(self.stop)


def cluster(api_only: bool = True, *, controllers: bool = False, runtime: str = "process",
            args: Sequence[str] = (), directory: str | None = None, keep_directory: bool = False) -> Cluster:
    """A kubelite cluster for a ``with`` (or ``async with``) block.

    ``api_only`` (default): the API server alone, as envtest; ``controllers=True`` adds the
    controller manager (garbage collector, namespace deletion, …).  ``api_only=False``:
    the whole cluster with a node whose pods run with ``runtime`` ("process" or "fake").
    ``args`` are more ``kubelite server`` flags.  The directory is made under ``directory``
    (default the system's temporary directory) and removed at the end unless
    ``keep_directory``.
    """
    return Cluster(api_only=api_only, controllers=controllers, runtime=runtime, args=args, directory=directory,
                   keep_directory=keep_directory)
