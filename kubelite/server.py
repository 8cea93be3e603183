"""``kubelite server``: the API server plus every component, in one process (as k3s).

Only the API server touches the store.  The controllers, scheduler, node agent and
service proxy started here are API clients over HTTPS, exactly as they would be from
another process or machine, each with its own identity and only the rights upstream
gives it: client certificates for ``system:kube-controller-manager``,
``system:kube-scheduler``, ``system:kube-proxy`` and ``system:node:<name>`` (group
``system:nodes``), and, for each controller, a token of its ServiceAccount in
kube-system (``controllers/clientbuilder.py``).  Only the admin kubeconfig is
``system:masters``.
"""
from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import socket
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TextIO

from kubelite.apiserver import openapi
from kubelite.apiserver.app import APIServer, APIServerConfig
from kubelite.apiserver.authz.bootstrap import ensure_policy
from kubelite.apiserver.bootstrap import bootstrap
from kubelite.apiserver.nodeproxy import NodeProxy
from kubelite.apiserver.registry import run_compactor
from kubelite.client.rest import Client, ClientConfig
from kubelite.client.supervise import spawn
from kubelite.controllers.clientbuilder import ServiceAccountClients
from kubelite.pki import PKI
from kubelite.store.sqlite import SqliteStore

log = logging.getLogger("kubelite.server")


class StartupError(Exception):
    """A problem the user can fix; printed without a traceback."""


@dataclass
class ServerOptions:
    """Flags of ``kubelite server``."""

    data_dir: str
    api_port: int = 6443
    bind_address: str = "127.0.0.1"
    service_cidr: str = "127.96.0.0/16"
    node_name: str = ""
    runtime: str = "process"
    network: str = "auto"
    with_agent: bool = True
    with_controllers: bool = True
    with_scheduler: bool = True
    with_proxy: bool = True
    # Hidden tuning (tests): how often history is compacted and how many revisions stay.
    compact_interval: float = 300.0
    compact_keep: int = 10_000


def default_data_dir() -> str:
    """$KUBELITE_DATA_DIR or ~/.kubelite."""
    return os.environ.get("KUBELITE_DATA_DIR") or os.path.join(os.path.expanduser("~"), ".kubelite")


def _why(e: OSError) -> str:
    """The plain reason of an OSError ("address already in use"), without wrapping text."""
    if e.errno and e.errno > 0:
        return os.strerror(e.errno).lower()
    return str(e.strerror or e)  # e.g. socket.gaierror: "Name or service not known"


def os_problem(e: OSError) -> str:
    """'PATH: what went wrong', in words (no errno numbers)."""
    what = _why(e)
    if e.errno == errno.EEXIST:  # makedirs found a file where a directory belongs
        what = "a file is in the way of a directory"
    path = e.filename2 or e.filename  # a rename names its target second
    return f"{path}: {what}" if path else what


def _check_data_dir(path: str) -> None:
    if os.path.exists(path) and not os.path.isdir(path):
        raise StartupError(f"cannot use data directory {path}: it is a file, not a directory")
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
    except OSError as e:
        hint = " (choose another with --data-dir or KUBELITE_DATA_DIR)" if e.errno == errno.EACCES else ""
        raise StartupError(f"cannot use data directory {path}: {_why(e)}{hint}") from e
    if not os.access(path, os.W_OK | os.X_OK):
        raise StartupError(f"cannot use data directory {path}: permission denied "
                           "(choose another with --data-dir or KUBELITE_DATA_DIR)")


def _lock(path: str) -> TextIO:
    """Hold an exclusive lock on DATA_DIR/server.lock (kept open while the server runs)."""
    import fcntl
    try:
        f = open(os.path.join(path, "server.lock"), "a+")  # noqa: SIM115 - the lock lives as long as the file is open
    except OSError as e:
        raise StartupError(f"cannot lock the data directory: {os_problem(e)}") from e
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        f.seek(0)
        pid = f.read().strip()
        f.close()
        raise StartupError(f"another kubelite server is already using {path}" + (f" (pid {pid})" if pid else "")
                           + "; stop it first, or choose another --data-dir") from e
    f.seek(0)
    f.truncate()
    f.write(str(os.getpid()))
    f.flush()
    return f


def _open_store(data_dir: str) -> SqliteStore:
    path = os.path.join(data_dir, "db", "state.db")
    try:
        return SqliteStore(path)
    except OSError as e:
        raise StartupError(f"cannot open the store: {os_problem(e)}") from e
    except sqlite3.Error as e:  # not a database, malformed, locked, read-only …
        raise StartupError(f"cannot open the store {path}: {e} "
                           "(move the file away to start with an empty cluster)") from e


def _ensure_pki(pki: PKI, bind_address: str) -> None:
    try:
        pki.ensure([bind_address] if bind_address not in ("0.0.0.0", "::") else [])
    except OSError as e:
        raise StartupError(f"cannot create certificates: {os_problem(e)}") from e
    except ValueError as e:  # cryptography could not parse a PEM file
        raise StartupError(f"a certificate or key in {pki.dir} is damaged "
                           f"(move {pki.dir} away to make new ones; old kubeconfigs then stop working)") from e


# A component that crashes is restarted after a second, then after doubling delays.
RESTART_DELAY = 1.0
MAX_RESTART_DELAY = 30.0


async def run_server(opts: ServerOptions, *, stop: asyncio.Event | None = None) -> None:
    """Run until ``stop`` is set (or SIGINT/SIGTERM)."""
    stop = stop or asyncio.Event()
    _check_data_dir(opts.data_dir)
    lock = _lock(opts.data_dir)
    try:
        pki = PKI(opts.data_dir)
        _ensure_pki(pki, opts.bind_address)
        store = _open_store(opts.data_dir)
    except BaseException:
        lock.close()
        raise
    advertise = "127.0.0.1" if opts.bind_address in ("0.0.0.0", "::", "") else opts.bind_address
    cfg = APIServerConfig(bind_address=opts.bind_address, port=opts.api_port, service_cidr=opts.service_cidr,
                          tls_cert=pki.serving_cert, tls_key=pki.serving_key, client_ca=pki.ca_cert,
                          token_file=pki.token_file, advertise_address=advertise,
                          service_account_key=pki.service_account_key)
    api = APIServer(store, cfg, cert_signer=pki)
    api.openapi = openapi.handle
    node_proxy = NodeProxy(pki.admin_cert, pki.admin_key)
    node_proxy.install(api.extra_routes)
    try:
        await api.start()
    except OSError as e:
        await store.close()
        lock.close()
        why = _why(e)
        hint = {errno.EADDRINUSE: " (is another server running? choose another port with --api-port)",
                errno.EACCES: " (ports below 1024 need root; choose another with --api-port)"}.get(e.errno or 0, "")
        raise StartupError(f"cannot listen on {opts.bind_address}:{opts.api_port}: {why}{hint}") from e
    tasks: list[asyncio.Task[None]] = []
    clients = ComponentClients(pki)
    try:
        await bootstrap(api.registry, api_address=advertise, api_port=opts.api_port)
        await ensure_policy(api.registry)
        api.ready.set()
        url = f"https://{advertise}:{opts.api_port}"
        kubeconfig = os.path.join(opts.data_dir, "kubeconfig")
        try:
            pki.write_kubeconfig(kubeconfig, url)
        except OSError as e:
            raise StartupError(f"cannot write the kubeconfig: {os_problem(e)}") from e
        print(f"kubelite API server listening on {url}", flush=True)
        print(f"export KUBECONFIG={kubeconfig}", flush=True)

        async def compactor() -> None:
            await run_compactor(api.registry, stop, interval=opts.compact_interval, keep=opts.compact_keep)
        tasks.append(_start("compactor", compactor, stop))
        clients.server = url
        for name, comp in _components(opts, pki, clients):
            tasks.append(_start(name, comp(stop), stop))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop.set)
            except (NotImplementedError, RuntimeError):
                pass
        await stop.wait()
        log.info("shutting down")
    finally:
        stop.set()
        # Components first (the node agent stops its pods), then the API server, then the store.
        if tasks:
            done, pending = await asyncio.wait(tasks, timeout=40)
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await clients.close()
        await api.stop()
        await node_proxy.close()
        await store.close()
        lock.close()


def _start(name: str, run: Callable[[], Awaitable[None]], stop: asyncio.Event) -> asyncio.Task[None]:
    """Run a component as a supervised task: logged and restarted if it crashes, until stop."""
    return spawn(name, run, stop=stop, initial_delay=RESTART_DELAY, max_delay=MAX_RESTART_DELAY, logger=log)


class ComponentClients:
    """One API client per in-process component, each with its own identity."""

    def __init__(self, pki: PKI):
        self.pki = pki
        self.server = ""
        self._clients: list[Client] = []
        self._sa_clients: list[ServiceAccountClients] = []

    def client(self, name: str, cn: str, orgs: list[str] | None = None) -> Client:
        """A client authenticating with a certificate for cn/orgs (issued on first use)."""
        cert, key = self.pki.component_cert(name, cn, orgs or [])
        c = Client(ClientConfig(server=self.server, ca_file=self.pki.ca_cert, cert_file=cert, key_file=key,
                                user_agent="kubelite-server"))
        self._clients.append(c)
        return c

    def service_accounts(self, base: Client) -> ServiceAccountClients:
        """Clients acting as kube-system ServiceAccounts, through ``base``'s TokenRequests."""
        sa = ServiceAccountClients(base)
        self._sa_clients.append(sa)
        return sa

    async def close(self) -> None:
        """Close every client."""
        for sa in self._sa_clients:
            await sa.close()
        for c in self._clients:
            await c.close()


Run = Callable[[asyncio.Event], Callable[[], Awaitable[None]]]


def _components(opts: ServerOptions, pki: PKI, clients: ComponentClients) -> list[tuple[str, Run]]:
    """The in-process components, each an API client with its own identity; each entry
    makes, for a stop event, the run function a supervised task calls (again on restart)."""
    comps: list[tuple[str, Run]] = []
    node_name = opts.node_name or f"kubelite-{socket.gethostname().split('.')[0].lower()}"
    if opts.with_controllers:
        from kubelite.controllers.manager import run_controller_manager
        manager = clients.client("controller-manager", "system:kube-controller-manager")
        accounts = clients.service_accounts(manager)

        def controllers(stop: asyncio.Event) -> Callable[[], Awaitable[None]]:
            async def run() -> None:
                await run_controller_manager(manager, stop=stop, identity=node_name, client_for=accounts.client_for)
            return run
        comps.append(("controller-manager", controllers))
    if opts.with_scheduler:
        from kubelite.scheduler.scheduler import run_scheduler
        sched = clients.client("scheduler", "system:kube-scheduler")

        def scheduler(stop: asyncio.Event) -> Callable[[], Awaitable[None]]:
            async def run() -> None:
                await run_scheduler(sched, stop=stop)
            return run
        comps.append(("scheduler", scheduler))
    if opts.with_agent:
        from kubelite.node.agent import AgentOptions, run_agent
        kubelet = clients.client(f"node-{node_name}", f"system:node:{node_name}", ["system:nodes"])

        def agent(stop: asyncio.Event) -> Callable[[], Awaitable[None]]:
            async def run() -> None:
                await run_agent(kubelet, AgentOptions(node_name=node_name, data_dir=opts.data_dir, runtime=opts.runtime,
                                                      network=opts.network, pki=pki), stop=stop)
            return run
        comps.append(("node-agent", agent))
    if opts.with_proxy and opts.with_agent:
        from kubelite.proxy.proxy import run_proxy
        kube_proxy = clients.client("kube-proxy", "system:kube-proxy")

        def proxy(stop: asyncio.Event) -> Callable[[], Awaitable[None]]:
            async def run() -> None:
                await run_proxy(kube_proxy, node_name=node_name, stop=stop)
            return run
        comps.append(("proxy", proxy))
    return comps
