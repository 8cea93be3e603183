"""Service ranges of the kernel data path: one per server, never shared on one machine.

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

The whole supernet gets a ``local`` route: packets for a ClusterIP are delivered to this
host (where the table's DNAT or its reject catch them) and can never follow the default
route off the machine, whether or not a server is running.
"""
from __future__ import annotations

import fcntl
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


def _lock_path(cidr: str) -> str:
    net = ipaddress.ip_network(cidr, strict=False)
    return os.path.join(LOCK_DIR, f"service-cidr-{net.network_address}_{net.prefixlen}.lock")


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
    return name[len("service-cidr-"):-len(".lock")].replace("_", "/")


def remembered(data_dir: str) -> str | None:
    """The range this data directory used before, if any."""
    try:
        with open(os.path.join(data_dir, RANGE_FILE)) as f:
            text = f.read().strip()
        ipaddress.ip_network(text)
        return text
    except (OSError, ValueError):
        return None


def _holders(me: str) -> list[tuple[str, str, bool]]:
    """(cidr, owner data dir, held by a live process) for every other range lock."""
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
            owner = os.read(fd, 4096).decode(errors="replace").strip()
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                live = False
            except OSError:
                live = True
        finally:
            os.close(fd)
        if owner != me:
            out.append((cidr, owner, live))
    return out


def _conflict(cidr: str, me: str, *, owned_too: bool) -> tuple[str, str, bool] | None:
    """A range overlapping ``cidr`` that a live server holds (or, ``owned_too``, another data directory keeps)."""
    net = ipaddress.ip_network(cidr, strict=False)
    for other, owner, live in _holders(me):
        try:
            onet = ipaddress.ip_network(other, strict=False)
        except ValueError:
            continue
        if net.overlaps(onet) and (live or (owned_too and os.path.isdir(owner))):
            return other, owner, live
    return None


def _net(cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return None


def _claim(cidr: str, me: str) -> int:
    os.makedirs(LOCK_DIR, exist_ok=True)
    fd = os.open(_lock_path(cidr), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise RangeError(f"service CIDR {cidr} is in use by another kubelite server on this machine; "
                         "choose another with --service-cidr") from None
    os.ftruncate(fd, 0)
    os.write(fd, me.encode())
    return fd


def claim(data_dir: str, requested: str = "") -> ServiceRange:
    """Claim ``requested`` (or the remembered or first free block) for ``data_dir``; remember it."""
    me = os.path.realpath(data_dir)
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
            hit = _conflict(cidr, me, owned_too=False)
            if hit is not None:
                raise RangeError(f"service CIDR {cidr} overlaps {hit[0]}, used by the running kubelite server "
                                 f"of {hit[1]}; choose another with --service-cidr")
            fd = _claim(cidr, me)
    else:
        with _claiming():
            fd, cidr = _claim_first_free(me)
    _remember(data_dir, cidr, fd)
    return ServiceRange(cidr, fd)


def _claim_first_free(me: str) -> tuple[int, str]:
    """Take the first /20 of SUPERNET that no live server holds and no other data directory keeps."""
    for block in ipaddress.ip_network(SUPERNET).subnets(new_prefix=BLOCK_PREFIX):
        if _conflict(str(block), me, owned_too=True) is None:
            try:
                return _claim(str(block), me), str(block)
            except RangeError:
                continue
    raise RangeError(f"every service range in {SUPERNET} is in use; choose one with --service-cidr")


def claim_loopback(data_dir: str, requested: str = "", *, legacy: bool = False) -> ServiceRange:
    """Claim a loopback service range for the userspace proxy; ``legacy`` keeps LOOPBACK_DEFAULT."""
    me = os.path.realpath(data_dir)
    cidr = requested or remembered(data_dir) or (LOOPBACK_DEFAULT if legacy else "")
    if cidr:
        try:
            cidr = str(ipaddress.ip_network(cidr, strict=False))
        except ValueError as e:
            raise RangeError(f"invalid service CIDR {cidr!r}: {e}") from None
        with _claiming():
            hit = _conflict(cidr, me, owned_too=False)
            if hit is not None:
                raise RangeError(f"service CIDR {cidr} overlaps {hit[0]}, used by the running kubelite server "
                                 f"of {hit[1]}; stop that server or choose another range with --service-cidr")
            fd = _claim(cidr, me)
    else:
        with _claiming():
            fd, cidr = _claim_free_block(me)
    _remember(data_dir, cidr, fd)
    return ServiceRange(cidr, fd)


def _claim_free_block(me: str) -> tuple[int, str]:
    # Blocks nobody ever took come first, then those whose data directory is gone, and only
    # then blocks that a stopped server will want back: that server then finds its range
    # taken and says so at start, so such blocks are the last resort.
    # The lock directory is read once: reading it again for each of the 256 blocks made
    # every start take seconds on a machine with many old locks (the claim lock keeps other servers out meanwhile).
    holders = _holders(me)
    owners: dict[str, tuple[str, bool]] = {}
    for other, owner, live in holders:
        owners[other] = (owner, live)
    live_nets = [n for n in (_net(other) for other, _, live in holders if live) if n is not None]
    candidates = []
    for i, block in enumerate(ipaddress.IPv4Network(LOOPBACK_SUPERNET).subnets(new_prefix=BLOCK_PREFIX)):
        owner, live = owners.get(str(block), ("", False))
        if live or any(block.overlaps(n) for n in live_nets):
            continue
        rank = 0 if not owner else (2 if os.path.isdir(owner) else 1)
        candidates.append((rank, i, str(block)))
    for _, _, cidr in sorted(candidates):
        try:
            return _claim(cidr, me), cidr
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
