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
import dataclasses
import errno
import ipaddress
import json
import logging
import os
import signal
import socket
import sqlite3
import stat
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from kubelite import version
from kubelite.api import errors, meta
from kubelite.apiserver.aggregator.local import PROXY_CLIENT_CN
from kubelite.apiserver.allocators import run_repair
from kubelite.apiserver.app import APIServer, APIServerConfig
from kubelite.apiserver.authz.bootstrap import ensure_policy
from kubelite.apiserver.bootstrap import bootstrap
from kubelite.apiserver.health import CheckFailed, Health
from kubelite.apiserver.limits import LimitsConfig, raise_nofile_limit
from kubelite.apiserver.nodeproxy import NodeProxy
from kubelite.apiserver.registry import Registry, run_compactor
from kubelite.client.leaderelection import run_elected
from kubelite.client.rest import Client, ClientConfig
from kubelite.client.supervise import spawn
from kubelite.controllers.clientbuilder import ServiceAccountClients
from kubelite.dns.options import DNSOptions
from kubelite.images.store import GCPolicy
from kubelite.ingress.options import IngressOptions
from kubelite.metrics.api import MetricsAPI
from kubelite.metrics.scraper import MetricsScraper, registry_nodes
from kubelite.pki import PKI
from kubelite.proxy.ranges import LOOPBACK_DEFAULT, RangeError, ServiceRange
from kubelite.startup import StartupError, os_problem
from kubelite.startup import why as _why
from kubelite.store.base import KeyExists, Store, StoreError
from kubelite.store.sqlite import SqliteStore
from kubelite.version import user_agent

if TYPE_CHECKING:
    from aiohttp import web

    from kubelite.node.agent import Agent
    from kubelite.proxy.proxy import Proxy

log = logging.getLogger("kubelite.server")


@dataclass
class DatastoreOptions:
    """Where the cluster's state lives: the embedded SQLite store, or etcd (``endpoint`` set)."""

    endpoint: str = ""
    cafile: str = ""
    certfile: str = ""
    keyfile: str = ""
    event_ttl: float = 3600.0  # etcd only: Events are written on a lease of this many seconds (0: none)
    token: str = ""  # etcd only: the cluster's join token, to take its CA and keys from the datastore


@dataclass
class ServerOptions:
    """Flags of ``kubelite server``."""

    data_dir: str
    api_port: int = 6443
    bind_address: str = "127.0.0.1"
    service_cidr: str = ""         # "" = 127.96.0.0/16 for the userspace proxy, a free 10.96.x.0/20 for nftables
    proxy_mode: str = "auto"       # auto | nftables | userspace
    node_name: str = ""
    node_ip: str = "127.0.0.1"     # the in-process node's InternalIP (other nodes route its pod CIDR to it)
    runtime: str = "process"
    network: str = "auto"
    pod_max_pids: int | None = None
    image_gc: GCPolicy = field(default_factory=GCPolicy)  # the kubelet's image GC thresholds
    image_gc_period: float = 300.0
    with_agent: bool = True
    with_controllers: bool = True
    with_scheduler: bool = True
    separate: frozenset[str] = frozenset()  # components run as child processes (childproc.SEPARABLE)
    with_proxy: bool = True
    with_network_policy: bool = True  # the NetworkPolicy enforcer (kernel path only)
    offline: bool = False          # no registry off this machine is contacted (KUBELITE_OFFLINE=1 also sets it)
    registry_config: str = ""      # k3s-style registries.yaml (default DATA_DIR/registries.yaml)
    # A graceful stop ends the oci runtime's containers unless this is set (restarts and
    # upgrades, as k3s keeps them); a crash or kill -9 leaves them running either way.
    keep_pods_on_stop: bool = False
    # Hidden tuning (tests): how often history is compacted and how many revisions stay.
    compact_interval: float = 300.0
    compact_keep: int = 10_000
    # Test fixtures: serve POST /kubelite/snapshot and /kubelite/reset (apiserver/reset.py).
    allow_reset: bool = False
    metric_resolution: float = 15.0  # how often node summaries are scraped (metrics-server's flag)
    hpa_sync_period: float = 15.0    # kube-controller-manager's --horizontal-pod-autoscaler-sync-period
    # etcd instead of the embedded SQLite store, as k3s takes it: http(s)://host:port[,…]
    datastore: DatastoreOptions = field(default_factory=DatastoreOptions)
    audit_policy_file: str = ""  # kube-apiserver's --audit-policy-file (apiserver/audit.py)
    audit_log_path: str = ""     # kube-apiserver's --audit-log-path ("-": standard output)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    dns: DNSOptions = field(default_factory=DNSOptions)  # the cluster DNS (kube-dns)
    ingress: IngressOptions = field(default_factory=IngressOptions)  # the built-in ingress controller


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


# Modes of what is private in the data directory, tightened at every start whatever
# they were before (a directory made by an older version, by hand, or restored from a
# backup with looser modes): the store holds every Secret, tls/ the CA and admin keys.
PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
SECRET_DIRS = ("tls", "db", os.path.join("agent", "tls"))  # every file but a certificate is secret
SECRET_FILES = ("kubeconfig", "server.lock")


def tighten_modes(data_dir: str) -> None:
    """The data directory and the secret directories in it 0700, the secret files 0600."""
    def chmod(path: str, mode: int) -> None:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if stat.S_ISLNK(st.st_mode) or stat.S_IMODE(st.st_mode) & ~mode == 0:
            return  # never follow a link out of the directory; leave stricter modes alone
        if st.st_mode & stat.S_ISVTX:
            log.warning("%s is a shared (sticky) directory; not changing its mode", path)
            return
        try:
            os.chmod(path, stat.S_IMODE(st.st_mode) & mode)
        except OSError as e:
            raise StartupError(f"cannot make {path} private: {_why(e)}") from e

    chmod(data_dir, PRIVATE_DIR)
    for name in SECRET_FILES:
        chmod(os.path.join(data_dir, name), PRIVATE_FILE)
    for sub in SECRET_DIRS:
        d = os.path.join(data_dir, sub)
        if not os.path.isdir(d) or os.path.islink(d):
            continue
        chmod(d, PRIVATE_DIR)
        for entry in os.scandir(d):
            if entry.is_file(follow_symlinks=False) and not entry.name.endswith(".crt"):
                chmod(entry.path, PRIVATE_FILE)


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


async def open_store(data_dir: str, ds: DatastoreOptions) -> Store:
    """The store the options name: etcd when an endpoint is given, else DATA_DIR's SQLite file."""
    if not ds.endpoint:
        return _open_store(data_dir)
    # Imported here: grpc is only loaded by servers that use etcd.
    from kubelite.api.resources import RESOURCES
    from kubelite.store.etcd import EtcdStore, KeyLayout, TLSFiles, Unavailable, parse_endpoints
    try:
        endpoints = parse_endpoints(ds.endpoint)
    except ValueError as e:
        raise StartupError(f"--datastore-endpoint: {e}") from None
    for flag, path in (("--datastore-cafile", ds.cafile), ("--datastore-certfile", ds.certfile),
                       ("--datastore-keyfile", ds.keyfile)):
        if path and not os.path.isfile(path):
            raise StartupError(f"{flag}: {path}: no such file")
    if bool(ds.certfile) != bool(ds.keyfile):
        raise StartupError("--datastore-certfile and --datastore-keyfile go together")
    layout = KeyLayout(r.store_prefix() for r in RESOURCES)
    try:
        return await EtcdStore.open(endpoints, TLSFiles(ds.cafile, ds.certfile, ds.keyfile), layout,
                                    event_ttl=max(ds.event_ttl, 0.0))
    except Unavailable as e:
        raise StartupError(f"cannot use the datastore {ds.endpoint}: {e}") from None


def _open_store(data_dir: str) -> SqliteStore:
    path = os.path.join(data_dir, "db", "state.db")
    try:
        return SqliteStore(path)
    except OSError as e:
        raise StartupError(f"cannot open the store: {os_problem(e)}") from e
    except sqlite3.Error as e:  # not a database, malformed, locked, read-only …
        raise StartupError(f"cannot open the store {path}: {e} "
                           "(move the file away to start with an empty cluster)") from e


def _ensure_pki(pki: PKI, bind_address: str, extra: list[str] | None = None) -> None:
    try:
        pki.ensure(([bind_address] if bind_address not in ("0.0.0.0", "::") else []) + (extra or []))
    except OSError as e:
        raise StartupError(f"cannot create certificates: {os_problem(e)}") from e
    except ValueError as e:  # cryptography could not parse a PEM file
        raise StartupError(f"a certificate or key in {pki.dir} is damaged "
                           f"(move {pki.dir} away to make new ones; old kubeconfigs then stop working)") from e


KUBERNETES_NAMES = ["kubernetes", "kubernetes.default", "kubernetes.default.svc",
                    "kubernetes.default.svc.cluster.local"]


def _host_cannot_route() -> str:
    """Why this host cannot program the nftables Service path at all ("" if it can)."""
    import shutil
    if os.geteuid() != 0:
        return "it needs root"
    if shutil.which("nft") is None:
        return "the nft tool is not installed (Debian package nftables)"
    return ""


def kernel_path_missing(opts: ServerOptions) -> str:
    """Why the nftables Service path cannot run for ``opts`` ("" if it can)."""
    if not (opts.with_agent and opts.with_proxy):
        return "no node agent and proxy run in this server"
    if why := _host_cannot_route():
        return why
    if opts.runtime == "fake":
        return "the fake runtime's pods have loopback addresses"
    if opts.runtime == "process" and opts.network == "host":
        return "pods on the host network have loopback addresses"
    if opts.runtime == "process" and opts.network == "auto":
        from kubelite.node.runtime.netns import netns_supported
        if not netns_supported():
            return "pods cannot get network namespaces here"
    return ""


def plan_service_path(opts: ServerOptions, *, stored: str = "", cluster: str = "",
                      legacy: bool | None = None) -> tuple[ServiceRange, bool]:
    """The claimed service range, and whether the kernel (nftables) path serves it.

    ``stored``: the range the cluster's store already holds, which this server then uses for
    everything (claim, certificate, proxy); ``cluster``: the id its servers share a range by."""
    from kubelite.proxy import ranges
    if legacy is None:
        legacy = _legacy_range(opts)
    requested = opts.service_cidr
    if stored:
        if requested and _net_text(requested) != stored:
            log.warning("services: the cluster's service range is %s (stored); --service-cidr %s is not used",
                        stored, requested)
        requested, legacy = stored, False
    proxy = opts.with_proxy and opts.with_agent
    if opts.proxy_mode == "userspace":
        return _claim_loopback(opts, requested, legacy, cluster, proxy), False
    why = kernel_path_missing(opts)
    loopback = False
    if requested:
        try:
            loopback = ipaddress.ip_network(requested, strict=False).is_loopback
        except ValueError as e:
            raise StartupError(f"--service-cidr {requested}: {e}") from e
    else:
        remembered = ranges.remembered(opts.data_dir)
        if legacy:
            loopback = True
            requested = LOOPBACK_DEFAULT
        elif remembered is not None and ipaddress.ip_network(remembered).is_loopback:
            loopback = True
            requested = remembered
    if loopback and not why:
        why = f"its service range {requested} is loopback (pods cannot reach it); pass --service-cidr"
    if why and not loopback and _picks_for_nodes(opts, cluster, stored):
        rng = _claim_routable(opts, requested, cluster, proxy=False)
        log.info("services: service range %s, stored for the cluster's nodes (this server runs no node of "
                 "its own)", rng.cidr)
        return rng, False
    if why:
        if opts.proxy_mode == "nftables":
            raise StartupError(f"--proxy-mode nftables: {why}")
        log.info("services: userspace proxy (the nftables path is off: %s)", why)
        return _claim_loopback(opts, requested, legacy, cluster, proxy), False
    rng = _claim_routable(opts, requested, cluster, proxy)
    log.info("services: nftables data path, service range %s", rng.cidr)
    if _read_sysctl("net/ipv4/ip_forward") == "0":
        # Left as the host has it: the pod bridges get forwarding, other interfaces are the admin's.
        log.info("services: net.ipv4.ip_forward is 0, so other hosts reach NodePorts only through "
                 "interfaces with forwarding on (sysctl -w net.ipv4.ip_forward=1 turns it on for all)")
    return rng, True


def _picks_for_nodes(opts: ServerOptions, cluster: str, stored: str) -> bool:
    """Whether this server, without a node of its own, is the first of a shared-datastore
    cluster on a host where nodes can take the kernel path: the range it stores is then the
    one every node that joins later routes, so it must not be loopback."""
    if not cluster or stored or (opts.with_agent and opts.with_proxy):
        return False
    return not _host_cannot_route()


def _claim_routable(opts: ServerOptions, requested: str, cluster: str, proxy: bool) -> ServiceRange:
    """Claim a non-loopback block (or ``requested``) and its guard route."""
    from kubelite.proxy import ranges
    try:
        rng = ranges.claim(opts.data_dir, requested, cluster=cluster, proxy=proxy)
    except RangeError as e:
        raise StartupError(str(e)) from e
    try:
        ranges.guard_route(rng.cidr)
    except RangeError as e:
        rng.release()
        raise StartupError(str(e)) from e
    return rng


def _read_sysctl(name: str) -> str:
    try:
        with open(f"/proc/sys/{name}") as f:
            return f.read().strip()
    except OSError:
        return ""


def _claim_loopback(opts: ServerOptions, requested: str, legacy: bool, cluster: str = "",
                    proxy: bool = False) -> ServiceRange:
    from kubelite.proxy import ranges
    try:
        rng = ranges.claim_loopback(opts.data_dir, requested, legacy=legacy, cluster=cluster, proxy=proxy)
    except RangeError as e:
        raise StartupError(str(e)) from e
    log.info("services: service range %s", rng.cidr)
    return rng


def _legacy_range(opts: ServerOptions) -> bool:
    """Whether this data directory holds a cluster made before ranges were remembered (it used the loopback default)."""
    from kubelite.proxy import ranges
    return ranges.remembered(opts.data_dir) is None and os.path.exists(os.path.join(opts.data_dir, "db", "state.db"))


def _net_text(cidr: str) -> str:
    try:
        return str(ipaddress.ip_network(cidr, strict=False))
    except ValueError:
        return cidr


CLUSTER_ID_KEY = "/kubelite/cluster-id"


async def cluster_id(store: Store) -> str:
    """The id the servers of the cluster kept in ``store`` share (made by the first one to ask)."""
    for _ in range(3):
        kv = await store.get(CLUSTER_ID_KEY)
        if kv is not None:
            return kv.value.decode()
        try:
            made = uuid.uuid4().hex
            await store.create(CLUSTER_ID_KEY, made.encode())
            return made
        except KeyExists:
            continue  # another server made it meanwhile: read that one
    raise StartupError(f"cannot read or write {CLUSTER_ID_KEY} in the datastore")


async def stored_service_range(store: Store) -> str:
    """The cluster's service range as its store keeps it ("" when none is stored yet)."""
    from kubelite.apiserver.allocators import SERVICE_IPS_KEY, Bitmap
    kv = await store.get(SERVICE_IPS_KEY)
    return Bitmap.decode(kv.value, 0).range if kv is not None else ""


async def pin_service_range(store: Store, cidr: str) -> str:
    """Store ``cidr`` as the cluster's service range unless one is stored already; the range now stored.

    The first server writes the range before anything is allocated, so a server starting at the
    same moment finds it, takes it, and never serves a block of its own."""
    from kubelite.apiserver.allocators import SERVICE_IPS_KEY, Bitmap
    net = ipaddress.ip_network(cidr, strict=False)
    try:
        await store.create(SERVICE_IPS_KEY, Bitmap(str(net), net.num_addresses).encode(SERVICE_IPS_KEY.rsplit("/", 1)[1]))
        return str(net)
    except KeyExists:
        return await stored_service_range(store) or str(net)


# After a restart the node's pods start again; /readyz waits this long at most for those
# that were Ready before to be Ready again and routed by the proxy (a pod that no longer
# comes up must not keep the whole server unready).
NODE_RESTORE_TIMEOUT = 30.0
SERVING_PODS_FILE = "serving-pods.json"


class LocalReadiness:
    """What /readyz needs to know of the components that run in this process.

    Three readyz-only checks, kubelite's own (upstream's API server does not know its
    cluster's components): ``kubelite-controllers-synced`` (the controllers run here and
    their caches are filled), ``kubelite-node-agent-ready`` (the agent serves its API, has
    listed its pods, and every pod that was Ready when the server last stopped is Ready
    again) and ``kubelite-proxy-synced`` (every Service listener, NodePorts included, is
    open, and the proxy routes to those pods at their new addresses).
    """

    def __init__(self, data_dir: str) -> None:
        # The pods that served when the server last stopped: the agent marks them not
        # ready while it stops them, and that status may reach the store before the end.
        self.serving_file = os.path.join(data_dir, SERVING_PODS_FILE)
        self.controllers_synced = asyncio.Event()
        self.agent: Agent | None = None
        self.agent_synced = asyncio.Event()
        self.proxy: Proxy | None = None
        self._restoring: dict[str, str] = {}   # pod uid -> key: was Ready, not serving again yet
        self._rerouting: dict[str, str] = {}   # pod uid -> new IP: serving, proxy not caught up yet
        self._restore_deadline = 0.0
        self._watch: asyncio.Task[None] | None = None
        # Set for servers that share their store (etcd): true while another server's
        # controller manager holds the Lease, so this one is ready without running them.
        self.controllers_elsewhere: Callable[[], Awaitable[bool]] | None = None

    def install(self, health: Health, opts: ServerOptions) -> None:
        """Register the checks of the components ``opts`` runs here."""
        if opts.with_controllers:
            health.add_readiness("kubelite-controllers-synced", self._controllers)
        if opts.with_agent:
            health.add_readiness("kubelite-node-agent-ready", self._agent)
            if opts.with_proxy:
                health.add_readiness("kubelite-proxy-synced", self._proxy)

    def agent_started(self, agent: Agent) -> None:
        """A (new) agent runs: readiness starts over for it."""
        self.agent = agent
        self.agent_synced.clear()
        if self._watch is not None:
            self._watch.cancel()
        self._watch = asyncio.get_running_loop().create_task(self._snapshot(agent), name="readiness-agent")

    def close(self) -> None:
        """Stop watching the agent."""
        if self._watch is not None:
            self._watch.cancel()

    def remember_serving(self) -> None:
        """Note the pods that serve now, before the agent stops them (call as stopping begins)."""
        agent = self.agent
        if agent is None:
            return
        uids = sorted(uid for uid, w in agent.workers.items()
                      if w.sandbox is not None and not w.terminating.is_set() and w.main
                      and all(cs.ready for cs in w.main))
        try:
            tmp = self.serving_file + ".tmp"
            with open(tmp, "w") as f:
                json.dump(uids, f)
            os.replace(tmp, self.serving_file)
        except OSError as e:
            log.warning("cannot record the serving pods: %s", e)

    def _remembered(self) -> set[str]:
        """The pods that served when the server last stopped cleanly (read once)."""
        try:
            with open(self.serving_file) as f:
                uids = json.load(f)
            os.unlink(self.serving_file)  # a later kill -9 must not find this list
        except (OSError, ValueError):
            return set()
        return {u for u in uids if isinstance(u, str)} if isinstance(uids, list) else set()

    async def _snapshot(self, agent: Agent) -> None:
        await agent.pods.wait_synced()
        # Pods that served before the restart: remembered at a clean stop; otherwise (or
        # as well) the informer still holds what the previous run reported, Ready then.
        remembered = self._remembered()
        self._restoring = {meta.uid(p): meta.key(p) for p in agent.pods.list()
                           if not meta.is_deleting(p) and (meta.uid(p) in remembered or _pod_ready(p))}
        self._rerouting = {}
        self._restore_deadline = time.monotonic() + NODE_RESTORE_TIMEOUT
        self.agent_synced.set()

    def _refresh(self) -> None:
        """Move pods along restoring -> rerouting -> done; give up on them at the deadline."""
        agent = self.agent
        if agent is None:
            return
        for uid, key in list(self._restoring.items()):
            w = agent.workers.get(uid)
            if w is None:
                if agent.pods.get(key) is None:
                    del self._restoring[uid]  # deleted meanwhile
                continue
            if w.finished() or w.terminating.is_set():
                del self._restoring[uid]
            elif w.sandbox is not None and all(cs.ready for cs in w.main):
                del self._restoring[uid]
                self._rerouting[uid] = w.sandbox.ip
        proxy = self.proxy
        if proxy is None:
            self._rerouting.clear()
        elif self._rerouting:
            routes = proxy.routes()
            for uid, ip in list(self._rerouting.items()):
                pod = agent.workers[uid].pod if uid in agent.workers else None
                # A pod some Service selects must be routed, at its new address; while it
                # restarted its endpoint may have left the slices altogether.
                want = {(ip, True)}
                if routes.get(uid) == want or (uid not in routes and (pod is None or not _selected(proxy, pod))):
                    del self._rerouting[uid]
        if (self._restoring or self._rerouting) and time.monotonic() > self._restore_deadline:
            log.warning("readiness: %d pod(s) did not serve again within %gs of the restart; not waiting for them",
                        len(self._restoring) + len(self._rerouting), NODE_RESTORE_TIMEOUT)
            self._restoring.clear()
            self._rerouting.clear()

    async def _controllers(self) -> None:
        if not self.controllers_synced.is_set():
            if self.controllers_elsewhere is not None and await self.controllers_elsewhere():
                return
            raise CheckFailed("the controllers have not filled their caches yet")

    async def _agent(self) -> None:
        if self.agent is None or not self.agent.api_port:
            raise CheckFailed("the node agent is not serving yet")
        if not self.agent_synced.is_set():
            raise CheckFailed("the node agent has not listed its pods yet")
        self._refresh()
        if self._restoring:
            raise CheckFailed(f"{len(self._restoring)} pod(s) Ready before the restart are not Ready again yet")

    async def _proxy(self) -> None:
        if self.proxy is None or not self.proxy.synced.is_set():
            raise CheckFailed("the proxy has not opened its listeners yet")
        self._refresh()
        if self._rerouting:
            raise CheckFailed(f"the proxy does not route to {len(self._rerouting)} restarted pod(s) yet")


def _selected(proxy: Proxy, pod: dict[str, Any]) -> bool:
    """Does a Service the proxy knows select this pod (so its endpoint belongs in the slices)?"""
    labels = meta.labels(pod)
    for svc in proxy.services.list(meta.namespace(pod)):
        spec = svc.get("spec") or {}
        sel = spec.get("selector") or {}
        if sel and spec.get("type") != "ExternalName" and all(labels.get(k) == v for k, v in sel.items()):
            return True
    return False


def _pod_ready(pod: dict[str, Any]) -> bool:
    conds = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)

# A component that crashes is restarted after a second, then after doubling delays.
RESTART_DELAY = 1.0
MAX_RESTART_DELAY = 30.0


async def run_server(opts: ServerOptions, *, stop: asyncio.Event | None = None) -> None:
    """Run until ``stop`` is set (or SIGINT/SIGTERM)."""
    stop = stop or asyncio.Event()
    # Every connection, pod pipe and log file is a descriptor: take all the kernel allows
    # (the API server keeps its connections well below it, see apiserver/limits.py).
    raise_nofile_limit()
    _check_data_dir(opts.data_dir)
    tighten_modes(opts.data_dir)
    if opts.runtime == "oci" and opts.with_agent:
        from kubelite.node.runtime.oci.runtime import missing
        if why := missing():
            raise StartupError(f"--runtime oci: {why}")
    lock = _lock(opts.data_dir)
    claimed: ServiceRange | None = None
    opened: Store | None = None
    try:
        if opts.datastore.endpoint:
            # The service range belongs to the cluster: a server joining one takes its stored
            # range for everything, shared on this host with the cluster's other servers.
            legacy = _legacy_range(opts)
            opened = await open_store(opts.data_dir, opts.datastore)
            try:
                cluster = await cluster_id(opened)
                stored = await stored_service_range(opened)
            except (StoreError, ValueError) as e:
                raise StartupError(f"cannot read the cluster's service range from the datastore: {e}") from None
            claimed, kernel_path = plan_service_path(opts, stored=stored, cluster=cluster, legacy=legacy)
            try:
                pinned = stored or await pin_service_range(opened, claimed.cidr)
            except (StoreError, ValueError) as e:
                raise StartupError(f"cannot store the cluster's service range in the datastore: {e}") from None
            if pinned != claimed.cidr:
                claimed.release()  # another server stored its range first: that one is the cluster's
                claimed = None
                claimed, kernel_path = plan_service_path(opts, stored=pinned, cluster=cluster, legacy=legacy)
        else:
            claimed, kernel_path = plan_service_path(opts)
        if claimed.proxy_elsewhere and not kernel_path:
            # Both userspace proxies would listen on the same loopback ClusterIPs.
            opts = dataclasses.replace(opts, with_proxy=False)
            log.info("services: no Service proxy in this server: the kubelite server of %s, of the same cluster, "
                     "routes the service range %s on this host (one userspace proxy per host)",
                     claimed.proxy_elsewhere, claimed.cidr)
        elif claimed.proxy_elsewhere:
            log.info("services: the kubelite server of %s, of the same cluster, routes the service range %s on "
                     "this host too: this server's rules go to tables of its node's own, as a joined node's do",
                     claimed.proxy_elsewhere, claimed.cidr)
        service_cidr = claimed.cidr
        # Only the kernel path's range goes to the components: it means "route it in nftables".
        svc_range = claimed if kernel_path else None
        pki = PKI(opts.data_dir)
        # In-cluster clients dial the kubernetes Service by ClusterIP or by name.
        kube_ip = str(ipaddress.ip_network(service_cidr, strict=False).network_address + 1)
        sans = [kube_ip] + KUBERNETES_NAMES
        if opened is not None:
            # Servers on one etcd share the CA and keys kept there (bootstrapdata.py).
            from kubelite import bootstrapdata
            try:
                await bootstrapdata.share(opened, pki, opts.datastore.token,
                                          lambda: _ensure_pki(pki, opts.bind_address, sans))
            except bootstrapdata.BootstrapError as e:
                raise StartupError(str(e)) from None
        else:
            if opts.datastore.token:
                raise StartupError("--token joins this server to the cluster kept in an etcd: it needs "
                                   "--datastore-endpoint")
            _ensure_pki(pki, opts.bind_address, sans)
            opened = await open_store(opts.data_dir, opts.datastore)
        store = opened
        tighten_modes(opts.data_dir)  # what was created just now, too
    except BaseException:
        if opened is not None:
            await opened.close()
        if claimed is not None:
            claimed.release()
        lock.close()
        raise
    advertise = "127.0.0.1" if opts.bind_address in ("0.0.0.0", "::", "") else opts.bind_address
    from kubelite.apiserver import audit
    try:
        audit_log = audit.load(opts.audit_policy_file, opts.audit_log_path)
    except (audit.PolicyError, OSError) as e:
        await store.close()
        if claimed is not None:
            claimed.release()
        lock.close()
        raise StartupError(str(e) if isinstance(e, audit.PolicyError) else f"audit: {os_problem(e)}") from None
    cfg = APIServerConfig(audit=audit_log, bind_address=opts.bind_address, port=opts.api_port, service_cidr=service_cidr,
                          tls_cert=pki.serving_cert, tls_key=pki.serving_key, client_ca=pki.ca_cert,
                          token_file=pki.token_file, advertise_address=advertise, limits=opts.limits,
                          service_account_key=pki.service_account_key)
    # The aggregator's client certificate for extension API servers (upstream's front proxy).
    cfg.proxy_client_cert, cfg.proxy_client_key = pki.component_cert("front-proxy-client", PROXY_CLIENT_CN, [])
    api = APIServer(store, cfg, cert_signer=pki)
    api.openapi = _openapi
    node_proxy = NodeProxy(pki.admin_cert, pki.admin_key)
    node_proxy.install(api.extra_routes)
    if opts.with_controllers and "controllers" not in opts.separate:
        from kubelite.controllers import podautoscaler
        podautoscaler.configure(sync_period=opts.hpa_sync_period)
    scraper = MetricsScraper(registry_nodes(api.registry), node_proxy.client_ssl, opts.metric_resolution)
    api.metrics = MetricsAPI(scraper).handle
    try:
        await api.start()
    except OSError as e:
        await store.close()
        claimed.release()
        lock.close()
        why = _why(e)
        hint = {errno.EADDRINUSE: " (is another server running? choose another port with --api-port)",
                errno.EACCES: " (ports below 1024 need root; choose another with --api-port)"}.get(e.errno or 0, "")
        raise StartupError(f"cannot listen on {opts.bind_address}:{opts.api_port}: {why}{hint}") from e
    tasks: list[asyncio.Task[None]] = []
    clients = ComponentClients(pki)
    readiness = LocalReadiness(opts.data_dir)
    if opts.datastore.endpoint:
        registry = api.registry

        async def elsewhere() -> bool:
            return await lease_held(registry, CONTROLLER_MANAGER_LEASE)
        readiness.controllers_elsewhere = elsewhere
    try:
        # The Service ranges match the stored Services before anything allocates (upstream's repair).
        await api.registry.allocator.repair()
        await bootstrap(api.registry, api_address=advertise, api_port=opts.api_port)
        await ensure_policy(api.registry)
        if opts.with_agent:
            from kubelite.storage.bootstrap import ensure_default_class
            await ensure_default_class(api.registry)
        await api.aggregator.settle()  # local APIServices and the request-header ConfigMap
        if opts.dns.enabled:
            from kubelite.dns.component import ensure_service
            await ensure_service(api.registry, service_cidr)
        if opts.ingress.enabled and opts.with_agent:
            from kubelite.ingress.component import ensure_class
            await ensure_class(api.registry)
        if opts.allow_reset:  # last: what the bootstrap made is the state a reset returns to
            if not isinstance(store, SqliteStore):
                raise StartupError("--allow-reset needs the embedded SQLite store (not --datastore-endpoint)")
            _install_reset(api, store, opts)
        api.ready.set()
        readiness.install(api.health, opts)
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

        async def range_repair() -> None:
            await run_repair(api.registry.allocator, stop)
        tasks.append(_start("service-range-repair", range_repair, stop))

        async def metrics() -> None:
            await scraper.run(stop)
        tasks.append(_start("metrics", metrics, stop))
        clients.server = url
        starts: list[tuple[str, Callable[[], Awaitable[None]]]] = []
        if opts.datastore.endpoint:
            # Servers sharing the store: the kubernetes Service lists every live one.
            from kubelite.controllers.apiserverleases import APIServerLeases
            leases = APIServerLeases(clients.client("apiserver-leases", "system:apiserver", ["system:masters"]),
                                     address=advertise, port=opts.api_port, host=socket.gethostname())

            async def apiserver_lease() -> None:
                await leases.run(stop)
            starts.append(("apiserver-lease", apiserver_lease))
        starts += [(name, comp(stop)) for name, comp in _components(opts, pki, clients, readiness, api.registry,
                                                                    service_cidr, svc_range)]
        await clients.issue()  # every component's certificate exists before any of them connects
        tasks += [_start(name, run, stop) for name, run in starts]
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop.set)
            except (NotImplementedError, RuntimeError):
                pass
        await stop.wait()
        readiness.remember_serving()  # before the agent reacts to stop
        log.info("shutting down")
    finally:
        stop.set()
        readiness.close()
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
        if opts.with_agent and opts.runtime == "oci" and not opts.keep_pods_on_stop:
            await _stop_containers(opts.data_dir)
        claimed.release()
        lock.close()


async def _openapi(request: web.Request) -> web.StreamResponse:
    """The OpenAPI documents, imported on the first request for them (they are not needed to start)."""
    from kubelite.apiserver import openapi
    return await openapi.handle(request)


def _install_reset(api: APIServer, store: SqliteStore, opts: ServerOptions) -> None:
    """Serve the fixture's snapshot and reset, starting from the state bootstrap made."""
    from kubelite.apiserver.reset import ResetEndpoints

    async def refresh() -> None:
        api.security.rbac_cache.invalidate()
        await api.lookups.reload()  # the reset ended the copies' watches
        await api.crds.sync()
        await api.webhooks.start()  # webhooks and policies the reset removed stop applying
        await api.registry.allocator.repair()  # kept Services' values stay marked
    components = opts.with_controllers or opts.with_scheduler or opts.with_agent
    ResetEndpoints(store, refresh, keep_system=components).install(api.extra_paths)


async def _stop_containers(data_dir: str) -> None:
    """What `kubelite killall` does: every container, pod network and the Services' table."""
    from kubelite.node.runtime.oci.killall import killall
    try:
        pods, containers = await asyncio.to_thread(killall, data_dir)
    except Exception:
        log.exception("stopping the containers")
        return
    if pods:
        log.info("stopped %d container(s) of %d pod(s) (--keep-pods-on-stop leaves them running)", containers, pods)


def _start(name: str, run: Callable[[], Awaitable[None]], stop: asyncio.Event) -> asyncio.Task[None]:
    """Run a component as a supervised task: logged and restarted if it crashes, until stop."""
    return spawn(name, run, stop=stop, initial_delay=RESTART_DELAY, max_delay=MAX_RESTART_DELAY, logger=log)


# The upstream program each in-process component stands for (see kubelite.version); the
# others have no upstream counterpart and keep a kubelite name.
_PROGRAMS = {"controller-manager": version.CONTROLLER_MANAGER, "scheduler": version.SCHEDULER,
             "kube-proxy": version.KUBE_PROXY, "apiserver-leases": version.APISERVER}


def component_program(name: str) -> str:
    """The User-Agent program of the in-process component ``name`` (``node-X`` is a kubelet)."""
    if name.startswith("node-"):
        return version.KUBELET
    return _PROGRAMS.get(name, f"kubelite-{name}")


class ComponentClients:
    """One API client per in-process component, each with its own identity."""

    def __init__(self, pki: PKI):
        self.pki = pki
        self.server = ""
        self._clients: list[Client] = []
        self._sa_clients: list[ServiceAccountClients] = []
        # Certificates to issue in one go before the components run (``issue``); once that
        # happened, a client made later gets its certificate at once.
        self._wanted: list[tuple[str, str, list[str]]] | None = []

    def client(self, name: str, cn: str, orgs: list[str] | None = None) -> Client:
        """A client authenticating with a certificate for cn/orgs (issued by ``issue``, or at
        once when that ran already)."""
        if self._wanted is None:
            cert, key = self.pki.component_cert(name, cn, orgs or [])
        else:
            self._wanted.append((name, cn, orgs or []))
            cert, key = self.pki.component_paths(name)
        c = Client(ClientConfig(server=self.server, ca_file=self.pki.ca_cert, cert_file=cert, key_file=key,
                                user_agent=user_agent(component_program(name))))
        self._clients.append(c)
        return c

    async def issue(self, *extra: tuple[str, str, list[str]]) -> None:
        """Issue the certificates of the clients made so far (and ``extra`` ones), concurrently:
        each file is fsynced, and one after another they took a quarter of a second."""
        wanted, self._wanted = (self._wanted or []) + list(extra), None
        await asyncio.to_thread(self.pki.component_certs, wanted)

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

CONTROLLER_MANAGER_LEASE = "kube-controller-manager"


async def lease_held(registry: Registry, name: str) -> bool:
    """Whether kube-system/<name> names a holder that renewed it within its duration."""
    from kubelite.api.resources import LEASES
    try:
        lease = await registry.get(LEASES, "kube-system", name)
    except errors.NotFound:
        return False
    spec = lease.get("spec") or {}
    renewed = meta.parse_time(spec.get("renewTime") or "")
    if not spec.get("holderIdentity") or renewed is None:
        return False
    return time.time() < renewed.timestamp() + float(spec.get("leaseDurationSeconds") or 15)


def _child_component(name: str, opts: ServerOptions, pki: PKI, clients: ComponentClients,
                     readiness: LocalReadiness, node_name: str) -> tuple[str, Run]:
    """A component run as a child process (``--separate-processes``), with the identity it has in-process."""
    from kubelite.childproc import ChildCredentials, child_command, run_child
    # The name each has in-process (task, certificate file) and the user its certificate names.
    component, cn = {"controllers": ("controller-manager", "system:kube-controller-manager"),
                     "scheduler": ("scheduler", "system:kube-scheduler")}[name]
    cert, key = pki.component_cert(component, cn, [])
    # The controller manager always elects its leader (as in-process); the scheduler does with etcd.
    elect = name == "controllers" or bool(opts.datastore.endpoint)
    synced = readiness.controllers_synced.set if name == "controllers" else (lambda: None)

    def child(stop: asyncio.Event) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            creds = ChildCredentials(clients.server, pki.ca_cert, cert, key)
            await run_child(name, child_command(name, creds, node_name, elect), stop, synced)
        return run
    return (component, child)


def _components(opts: ServerOptions, pki: PKI, clients: ComponentClients,
                readiness: LocalReadiness, registry: Registry, service_cidr: str,
                svc_range: ServiceRange | None = None) -> list[tuple[str, Run]]:
    """The in-process components, each an API client with its own identity (their progress
    feeds /readyz); each entry makes, for a stop event, the run function a supervised task
    calls (again on restart)."""
    comps: list[tuple[str, Run]] = []
    node_name = opts.node_name or f"kubelite-{socket.gethostname().split('.')[0].lower()}"
    for name in ("controllers", "scheduler"):
        if name in opts.separate and (opts.with_controllers if name == "controllers" else opts.with_scheduler):
            comps.append(_child_component(name, opts, pki, clients, readiness, node_name))
    if opts.with_controllers and "controllers" not in opts.separate:
        from kubelite.controllers.manager import run_controller_manager
        manager = clients.client("controller-manager", "system:kube-controller-manager")
        accounts = clients.service_accounts(manager)

        def controllers(stop: asyncio.Event) -> Callable[[], Awaitable[None]]:
            async def run() -> None:
                await run_controller_manager(manager, stop=stop, identity=node_name, client_for=accounts.client_for,
                                             synced=readiness.controllers_synced)
            return run
        comps.append(("controller-manager", controllers))
    if opts.with_scheduler and "scheduler" not in opts.separate:
        from kubelite.scheduler.scheduler import LEASE_NAME as SCHEDULER_LEASE
        from kubelite.scheduler.scheduler import run_scheduler
        sched = clients.client("scheduler", "system:kube-scheduler")

        def scheduler(stop: asyncio.Event) -> Callable[[], Awaitable[None]]:
            async def run() -> None:
                if opts.datastore.endpoint:
                    # Servers sharing an etcd each run a scheduler; only the Lease holder binds.
                    await run_elected(sched, SCHEDULER_LEASE, node_name, stop,
                                      lambda inner: run_scheduler(sched, stop=inner))
                else:
                    await run_scheduler(sched, stop=stop)
            return run
        comps.append(("scheduler", scheduler))
    agent_up = asyncio.Event()  # an Agent object exists (its slot and pod network are known)
    if opts.with_agent:
        from kubelite.dns.component import kube_dns_ip
        from kubelite.images.offline import offline_from_env
        from kubelite.node.agent import Agent, AgentOptions
        kubelet = clients.client(f"node-{node_name}", f"system:node:{node_name}", ["system:nodes"])

        def agent(stop: asyncio.Event) -> Callable[[], Awaitable[None]]:
            async def run() -> None:
                a = Agent(kubelet, AgentOptions(node_name=node_name, data_dir=opts.data_dir, runtime=opts.runtime,
                                                network=opts.network, pki=pki, node_ip=opts.node_ip,
                                                offline=opts.offline or offline_from_env(),
                                                registry_config=opts.registry_config,
                                                pod_max_pids=opts.pod_max_pids,
                                                image_gc=opts.image_gc, image_gc_period=opts.image_gc_period,
                                                service_routing=svc_range is not None,
                                                cluster_dns=[kube_dns_ip(service_cidr)] if opts.dns.enabled else [],
                                                cluster_domain=opts.dns.cluster_domain))
                readiness.agent_started(a)
                agent_up.set()
                await a.run(stop)
            return run
        comps.append(("node-agent", agent))
    if opts.with_proxy and opts.with_agent:
        from kubelite.proxy.proxy import Proxy, node_internal_ip
        kube_proxy = clients.client("kube-proxy", "system:kube-proxy")

        def proxy(stop: asyncio.Event) -> Callable[[], Awaitable[None]]:
            async def run() -> None:
                ip = await node_internal_ip(kube_proxy, node_name)
                p: Proxy
                if svc_range is not None:
                    from kubelite.node.joinnet import node_pod_cidr
                    from kubelite.node.netslot import GUARD_CIDR
                    from kubelite.proxy.nftables import NftProxy
                    # The pods of this node's bridge, masqueraded when they call each other through a Service.
                    pod_cidr = await node_pod_cidr(kube_proxy, node_name, stop, timeout=30.0) or GUARD_CIDR
                    # The oci runtime's pods outlive the server: so do their Services' rules.
                    table = ""
                    if svc_range.proxy_elsewhere:
                        # The range's table is the other server's: ours is named after our node too
                        # (both hold the same ClusterIPs, as an agent's proxy beside its server's does).
                        from kubelite.node.joinnet import remember_table
                        from kubelite.proxy.nftables import node_table_name
                        table = node_table_name(svc_range.cidr, node_name)
                        remember_table(opts.data_dir, table)
                    p = NftProxy(kube_proxy, node_name=node_name, node_ip=ip, service_cidr=svc_range.cidr,
                                 delete_on_stop=opts.runtime != "oci", pod_cidr=pod_cidr, table=table)
                else:
                    p = Proxy(kube_proxy, node_name=node_name, node_ip=ip)
                readiness.proxy = p
                routes: asyncio.Task[None] | None = None
                if svc_range is not None:
                    # Pods in network namespaces: other nodes' pod CIDRs are routed (host-gw).
                    from kubelite.node.routes import RouteSyncer
                    routes = asyncio.create_task(RouteSyncer(kube_proxy, node_name=node_name, node_ip=ip).run(
                        stop, keep=opts.runtime == "oci"), name="node-routes")
                await p.start()
                try:
                    await stop.wait()
                finally:
                    await p.stop()
                    if routes is not None:
                        if not stop.is_set():
                            routes.cancel()  # this component restarts: the next run brings its own
                        await asyncio.gather(routes, return_exceptions=True)
            return run
        comps.append(("proxy", proxy))
    if opts.with_agent:
        comps.append(("local-path-provisioner", _local_path(opts, clients, node_name)))
    if opts.dns.enabled and opts.with_agent:
        comps.append(("cluster-dns", _cluster_dns(opts, clients, readiness, registry, agent_up)))
    if opts.with_agent:
        comps.append(("network-policy", _network_policy(opts, clients, readiness, svc_range, agent_up, node_name)))
    if opts.ingress.enabled and opts.with_agent:
        comps.append(("ingress", _ingress(opts, clients, node_name)))
    return comps


def _network_policy(opts: ServerOptions, clients: ComponentClients, readiness: LocalReadiness,
                    svc_range: ServiceRange | None, agent_up: asyncio.Event, node_name: str = "") -> Run:
    """The NetworkPolicy enforcer next to the kernel Service path (its node bridge known once the
    agent has its network); elsewhere a watcher that warns about every policy nothing enforces."""
    from kubelite.netpol.enforcer import USER, NetworkPolicyEnforcer, warn_unenforced
    from kubelite.netpol.rules import table_name
    client = clients.client("network-policy", USER)
    why = ("--disable network-policy" if not opts.with_network_policy else
           "the nftables data path is off (userspace proxy)" if svc_range is None else "")

    def network_policy(stop: asyncio.Event) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            if why or svc_range is None:
                await warn_unenforced(client, why, stop)
                return
            stopped = asyncio.ensure_future(stop.wait())
            try:
                await asyncio.wait([stopped, asyncio.ensure_future(agent_up.wait())], return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopped.cancel()
            agent = readiness.agent
            if stop.is_set() or agent is None:
                return
            table = table_name(svc_range.cidr)
            if svc_range.proxy_elsewhere:
                # The range's tables are another server's (same cluster, this host): ours carry our node's name.
                from kubelite.node.joinnet import NETPOL_TABLE_FILE, netpol_table_name, remember_table
                table = netpol_table_name(svc_range.cidr, node_name)
                remember_table(opts.data_dir, table, NETPOL_TABLE_FILE)
            # Like the Services' table: the oci runtime's pods outlive the server, so do their rules.
            e = NetworkPolicyEnforcer(client, table=table, bridge=agent.slot.bridge,
                                      delete_on_stop=opts.runtime != "oci")
            await e.start()
            try:
                await stop.wait()
            finally:
                await e.stop()
        return run
    return network_policy


def _ingress(opts: ServerOptions, clients: ComponentClients, node_name: str) -> Run:
    """The built-in ingress controller, listening on the node's address."""
    from kubelite.ingress.component import USER
    from kubelite.ingress.controller import IngressController
    from kubelite.proxy.proxy import node_internal_ip
    client = clients.client("ingress", USER)

    def ingress(stop: asyncio.Event) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            ip = await node_internal_ip(client, node_name)
            ctl = IngressController(client, node_ip=ip, listen=ip, http_port=opts.ingress.http_port,
                                    https_port=opts.ingress.https_port,
                                    tls_dir=os.path.join(opts.data_dir, "ingress", "tls"))
            await ctl.run(stop)
        return run
    return ingress


def _local_path(opts: ServerOptions, clients: ComponentClients, node_name: str) -> Run:
    """The local-path provisioner: volumes are directories under this server's data directory."""
    from kubelite.client.informer import InformerFactory
    from kubelite.storage.localpath import IDENTITY, LocalPathProvisioner
    client = clients.client("local-path-provisioner", IDENTITY)

    def local_path(stop: asyncio.Event) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            factory = InformerFactory(client)
            try:
                await LocalPathProvisioner(client, factory, data_dir=opts.data_dir, node_name=node_name).run(stop)
            finally:
                await factory.stop()
        return run
    return local_path


def _cluster_dns(opts: ServerOptions, clients: ComponentClients, readiness: LocalReadiness, registry: Registry,
                 agent_up: asyncio.Event) -> Run:
    """The DNS server, listening where this node's pods reach it, once the agent has its network."""
    from kubelite.dns.component import USER, default_port, listen_address, publish_endpoints, run_cluster_dns
    client = clients.client("cluster-dns", USER)

    def cluster_dns(stop: asyncio.Event) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            stopped = asyncio.ensure_future(stop.wait())
            try:
                await asyncio.wait([stopped, asyncio.ensure_future(agent_up.wait())], return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopped.cancel()
            agent = readiness.agent
            if stop.is_set() or agent is None:
                return
            host, freebind = listen_address(getattr(agent.runtime, "network", None), agent.slot.index)

            async def publish(address: str, port: int) -> None:
                await publish_endpoints(registry, address, port)
            await run_cluster_dns(client, opts.dns, host=host, port=opts.dns.port or default_port(),
                                  freebind=freebind, stop=stop, publish=publish, offline=opts.offline)
        return run
    return cluster_dns
