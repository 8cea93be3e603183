"""Service ranges of the kernel data path: one per cluster, never shared by two clusters on one machine.

With the nftables path every server's ClusterIPs must be addresses a pod can reach
that are not loopback, so they come from ``SUPERNET`` (upstream's default 10.96.0.0/12):
by default the first free /20 block, remembered in ``DATA_DIR/service-cidr`` so a
restart keeps its ClusterIPs (and finds its nftables table again).  A server holds an
flock on ``LOCK_DIR/service-cidr-<range>.lock`` (holding its data directory) for its
lifetime; a range that overlaps one a live server holds, or one another data directory
still owns, is refused at start.  Looking at the other servers' locks and taking one's own
happen under one machine-wide flock (``LOCK_DIR/service-cidr.claim.lock``): two servers
starting at once would otherwise both see a range free, and a range of another size than
a /20 overlaps blocks whose lock files have other names.

Without the kernel path (the userspace proxy) ClusterIPs are loopback addresses, which
every process of this machine can listen on; each server then takes a /20 block of
``LOOPBACK_SUPERNET`` the same way, so two servers never share a ClusterIP (the
``kubernetes`` Service's address above all).  A cluster made before ranges were claimed
keeps ``LOOPBACK_DEFAULT``.

Servers of one cluster (one etcd) share the cluster's range instead: each takes the range
stored in the cluster (or, the first, its own block) under the range's lock file or, when a
server of its cluster holds that one, a file of its own, ``service-cidr-<range>+<data dir
hash>.lock``; both name the cluster in their text; a live holder of the
same cluster is no conflict, one of another cluster (or a server without one) still is.  The
lock records whether its holder runs the Service proxy in the tables named after the range;
a server that finds one already doing so (``ServiceRange.proxy_elsewhere``) routes the same
ClusterIPs in tables named after its node too, as a joined node beside its server does, or,
with the userspace proxy (which listens on the ClusterIPs), runs no proxy.

The whole supernet gets a ``local`` route: packets for a ClusterIP are delivered to this
host (where the table's DNAT or its reject catch them) and can never follow the default
route off the machine, whether or not a server is running.
"""
from __future__ import annotations

import fcntl
import functools
import hashlib
import ipaddress
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from kubelite.node.netslot import LOCK_DIR

SUPERNET = "10.96.0.0/12"
BLOCK_PREFIX = 20
RANGE_FILE = "service-cidr"
LOOPBACK_SUPERNET = "127.96.0.0/12"  # the userspace proxy's blocks (rootless)
LOOPBACK_DEFAULT = "127.96.0.0/16"  # what every server used before blocks were claimed
CLAIM_LOCK = "service-cidr.claim.lock"  # held while a server scans and takes its range


class RangeError(Exception):
    """The service range cannot be used; the message says why and what to do."""


@dataclass
class ServiceRange:
    """A claimed service range; ``release()`` gives it back."""

    cidr: str
    lock_fd: int | None = None
    # The data directory of a live server of the same cluster that routes this range's
    # ClusterIPs on this host ("" when none does, or this server does).
    proxy_elsewhere: str = ""

    @property
    def kubernetes_ip(self) -> str:
        """The ClusterIP of default/kubernetes: the range's first address."""
        return str(ipaddress.ip_network(self.cidr, strict=False).network_address + 1)

    def release(self) -> None:
        """Drop the lock (the remembered range stays with the data directory)."""
        if self.lock_fd is not None:
            try:
                os.close(self.lock_fd)
            except OSError:
                pass
            self.lock_fd = None


def _lock_path(cidr: str, me: str = "") -> str:
    """The range's lock file; ``me`` given: that data directory's own one (shared cluster ranges)."""
    net = ipaddress.ip_network(cidr, strict=False)
    mine = "+" + hashlib.sha256(me.encode()).hexdigest()[:12] if me else ""
    return os.path.join(LOCK_DIR, f"service-cidr-{net.network_address}_{net.prefixlen}{mine}.lock")


@dataclass
class Holder:
    """One range lock file as another server left it."""

    cidr: str
    owner: str
    live: bool
    cluster: str = ""  # "" for servers that share their range with nobody
    proxy: bool = False  # its holder routes the range's ClusterIPs on this host
    claimed_at: float = 0.0  # when it was last claimed (the lock file's mtime)


@contextmanager
def _claiming() -> Iterator[None]:
    """Hold the machine-wide claim lock, so one server at a time scans the ranges and takes one."""
    os.makedirs(LOCK_DIR, exist_ok=True)
    fd = os.open(os.path.join(LOCK_DIR, CLAIM_LOCK), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        # Blocking: a claim takes milliseconds, and a holder that dies drops the lock with it.
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _cidr_of_lock(name: str) -> str | None:
    if not (name.startswith("service-cidr-") and name.endswith(".lock")):
        return None
    return name[len("service-cidr-"):-len(".lock")].split("+", 1)[0].replace("_", "/")


def remembered(data_dir: str) -> str | None:
    """The range this data directory used before, if any."""
    try:
        with open(os.path.join(data_dir, RANGE_FILE)) as f:
            text = f.read().strip()
        ipaddress.ip_network(text)
        return text
    except (OSError, ValueError):
        return None


def _holders(me: str) -> list[Holder]:
    """Every other server's range lock: its range, owner data dir, liveness and cluster."""
    out = []
    try:
        names = os.listdir(LOCK_DIR)
    except OSError:
        return []
    for name in names:
        cidr = _cidr_of_lock(name)
        if cidr is None:
            continue
        path = os.path.join(LOCK_DIR, name)
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            lines = os.read(fd, 4096).decode(errors="replace").strip().splitlines() or [""]
            claimed_at = os.fstat(fd).st_mtime
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                live = False
            except OSError:
                live = True
        finally:
            os.close(fd)
        owner, fields = lines[0].strip(), dict(x.partition("=")[::2] for x in lines[1:])
        if owner != me:
            out.append(Holder(cidr, owner, live, fields.get("cluster", ""), fields.get("proxy") == "1", claimed_at))
    return out


def _conflict(cidr: str, me: str, *, owned_too: bool, cluster: str = "") -> tuple[str, str, bool] | None:
    """A range overlapping ``cidr`` that a live server holds (or, ``owned_too``, another data
    directory keeps); servers of ``cluster`` (when given) share it and are no conflict."""
    return _first_overlap(ipaddress.ip_network(cidr, strict=False), _holders(me), owned_too=owned_too, cluster=cluster)


def _first_overlap(net: ipaddress.IPv4Network | ipaddress.IPv6Network, holders: list[Holder], *, owned_too: bool,
                   cluster: str = "") -> tuple[str, str, bool] | None:
    """``_conflict`` over lock files read already (a scan of many blocks reads the directory once)."""
    for h in holders:
        if cluster and h.cluster == cluster:
            continue
        onet = _net(h.cidr)
        if onet is not None and net.overlaps(onet) and (h.live or (owned_too and os.path.isdir(h.owner))):
            return h.cidr, h.owner, h.live
    return None


def _proxy_holder(cidr: str, me: str, cluster: str) -> str:
    """The data directory of a live server of ``cluster`` that routes ``cidr`` here ("" if none)."""
    if not cluster:
        return ""
    for h in _holders(me):
        if h.live and h.proxy and h.cluster == cluster and h.cidr == cidr:
            return h.owner
    return ""


def shared_with_live_server(data_dir: str) -> str:
    """The data directory of a live server of this data directory's cluster that routes its range
    here ("" if none): the tables named after the range are then that server's and must stay."""
    me = os.path.realpath(data_dir)
    cidr = remembered(data_dir)
    if not cidr:
        return ""
    cluster = ""
    for path in (_lock_path(cidr), _lock_path(cidr, me)):  # its own file is one of these two
        try:
            with open(path) as f:
                lines = f.read().splitlines() or [""]
        except (OSError, ValueError):
            continue
        if lines[0].strip() == me:
            cluster = dict(x.partition("=")[::2] for x in lines[1:]).get("cluster", "")
            break
    if not cluster:
        return ""
    for h in _holders(me):
        if h.live and h.proxy and h.cluster == cluster and h.cidr == str(ipaddress.ip_network(cidr, strict=False)):
            return h.owner
    return ""


@functools.cache  # a scan parses each lock's range once per block otherwise; the values are immutable
def _net(cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return None


def _claim(cidr: str, me: str, cluster: str = "", proxy: bool = False) -> int:
    os.makedirs(LOCK_DIR, exist_ok=True)
    # The range's plain lock file first: older kubelite versions on this machine know only that
    # name. A server of the same cluster holding it already sends this one to a file of its own.
    paths = [_lock_path(cidr)] + ([_lock_path(cidr, me)] if cluster else [])
    for path in paths:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except OSError:
            os.close(fd)
    else:
        raise RangeError(f"service CIDR {cidr} is in use by another kubelite server on this machine; "
                         "choose another with --service-cidr")
    os.ftruncate(fd, 0)
    text = me + (f"\ncluster={cluster}\nproxy={int(proxy)}\n" if cluster else "")
    os.write(fd, text.encode())
    return fd


def _claim_shared(cidr: str, me: str, cluster: str, proxy: bool) -> tuple[int, str]:
    """Take ``cidr`` beside the servers of ``cluster`` already on it; run the proxy only if none of them does."""
    elsewhere = _proxy_holder(cidr, me, cluster) if proxy else ""
    return _claim(cidr, me, cluster, proxy and not elsewhere), elsewhere


def claim(data_dir: str, requested: str = "", *, cluster: str = "", proxy: bool = False) -> ServiceRange:
    """Claim ``requested`` (or the remembered or first free block) for ``data_dir``; remember it.

    ``cluster`` names the cluster this server belongs to: its other servers' claims on the
    same range are shared; ``proxy``: this server would route the range (see ``proxy_elsewhere``)."""
    me = os.path.realpath(data_dir)
    elsewhere = ""
    cidr = requested or remembered(data_dir)
    if cidr:
        try:
            net = ipaddress.ip_network(cidr, strict=False)
        except ValueError as e:
            raise RangeError(f"invalid service CIDR {cidr!r}: {e}") from None
        if not isinstance(net, ipaddress.IPv4Network) or net.is_loopback or net.prefixlen > 28:
            raise RangeError(f"service CIDR {cidr}: the kernel data path needs an IPv4 range outside "
                             "127.0.0.0/8 of at least 16 addresses")
        cidr = str(net)
        with _claiming():
            hit = _conflict(cidr, me, owned_too=False, cluster=cluster)
            if hit is not None:
                raise RangeError(f"service CIDR {cidr} overlaps {hit[0]}, used by the running kubelite server "
                                 f"of {hit[1]}; choose another with --service-cidr")
            fd, elsewhere = _claim_shared(cidr, me, cluster, proxy)
    else:
        with _claiming():
            fd, cidr = _claim_first_free(me, cluster, proxy)
    _remember(data_dir, cidr, fd)
    return ServiceRange(cidr, fd, elsewhere)


def _claim_first_free(me: str, cluster: str = "", proxy: bool = False) -> tuple[int, str]:
    """Take the first /20 of SUPERNET that no live server holds and no other data directory keeps."""
    # The lock directory is read once, not once per block: with the hundreds of old locks a
    # test suite leaves it took seconds of every start (the claim lock keeps other servers out meanwhile).
    holders = _holders(me)
    for block in ipaddress.IPv4Network(SUPERNET).subnets(new_prefix=BLOCK_PREFIX):
        if _first_overlap(block, holders, owned_too=True) is None:
            try:
                return _claim(str(block), me, cluster, proxy), str(block)
            except RangeError:
                continue
    raise RangeError(f"every service range in {SUPERNET} is in use; choose one with --service-cidr")


def claim_loopback(data_dir: str, requested: str = "", *, legacy: bool = False, cluster: str = "",
                   proxy: bool = False) -> ServiceRange:
    """Claim a loopback service range for the userspace proxy; ``legacy`` keeps LOOPBACK_DEFAULT
    (``cluster`` and ``proxy`` as for ``claim``)."""
    me = os.path.realpath(data_dir)
    elsewhere = ""
    cidr = requested or remembered(data_dir) or (LOOPBACK_DEFAULT if legacy else "")
    if cidr:
        try:
            cidr = str(ipaddress.ip_network(cidr, strict=False))
        except ValueError as e:
            raise RangeError(f"invalid service CIDR {cidr!r}: {e}") from None
        with _claiming():
            hit = _conflict(cidr, me, owned_too=False, cluster=cluster)
            if hit is not None:
                raise RangeError(f"service CIDR {cidr} overlaps {hit[0]}, used by the running kubelite server "
                                 f"of {hit[1]}; stop that server or choose another range with --service-cidr")
            fd, elsewhere = _claim_shared(cidr, me, cluster, proxy)
    else:
        with _claiming():
            fd, cidr = _claim_free_block(me, cluster, proxy)
    _remember(data_dir, cidr, fd)
    return ServiceRange(cidr, fd, elsewhere)


def _claim_free_block(me: str, cluster: str = "", proxy: bool = False) -> tuple[int, str]:
    # Blocks nobody ever took come first, then those whose data directory is gone, and only
    # then blocks that a stopped server will want back: that server then finds its range
    # taken and says so at start, so such blocks are the last resort.
    # The lock directory is read once: reading it again for each of the 256 blocks made
    # every start take seconds on a machine with many old locks (the claim lock keeps other servers out meanwhile).
    # Within a rank, the block claimed longest ago goes first: a server that stopped a moment ago
    # (a restart, a test that stops and starts its server) most likely wants its block back soon.
    # A block may have several lock files (the servers of one etcd cluster share it): it ranks
    # by the one that asks most to leave it alone, and was claimed when the last of them was.
    holders = _holders(me)
    kept: dict[str, tuple[int, float]] = {}
    for h in holders:
        rank = 0 if not h.owner else (2 if os.path.isdir(h.owner) else 1)
        before = kept.get(h.cidr, (0, 0.0))
        kept[h.cidr] = (max(before[0], rank), max(before[1], h.claimed_at))
    live_nets = [n for n in (_net(h.cidr) for h in holders if h.live) if n is not None]
    candidates = []
    for i, block in enumerate(ipaddress.IPv4Network(LOOPBACK_SUPERNET).subnets(new_prefix=BLOCK_PREFIX)):
        if any(block.overlaps(n) for n in live_nets):
            continue
        rank, claimed_at = kept.get(str(block), (0, 0.0))
        candidates.append((rank, claimed_at, i, str(block)))
    for _, _, _, cidr in sorted(candidates):
        try:
            return _claim(cidr, me, cluster, proxy), cidr
        except RangeError:
            continue
    raise RangeError(f"every service range in {LOOPBACK_SUPERNET} is held by a running kubelite server; "
                     "choose one with --service-cidr")


def _remember(data_dir: str, cidr: str, fd: int) -> None:
    try:
        tmp = os.path.join(data_dir, RANGE_FILE + ".tmp")
        with open(tmp, "w") as f:
            f.write(cidr + "\n")
        os.replace(tmp, os.path.join(data_dir, RANGE_FILE))
    except OSError:
        os.close(fd)
        raise


def guard_route(cidr: str) -> None:
    """Make the service supernet (or ``cidr`` if outside it) local to this host."""
    net = ipaddress.ip_network(cidr, strict=False)
    supernet = ipaddress.IPv4Network(SUPERNET)
    inside = isinstance(net, ipaddress.IPv4Network) and net.subnet_of(supernet)
    target = str(supernet if inside else net)
    table = subprocess.run(["ip", "route", "show", "table", "local", target], capture_output=True, text=True)
    if "local" not in table.stdout:
        r = subprocess.run(["ip", "route", "add", "local", target, "dev", "lo", "table", "local"],
                           capture_output=True, text=True)
        if r.returncode != 0 and "exists" not in r.stderr:
            raise RangeError(f"cannot route the service range {target} locally: {r.stderr.strip()}")
