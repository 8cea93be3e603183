"""Network slots: keep the pod networks of several agents on one machine apart.

Each agent process holds an flock on ``/run/kubelite/net-slot-N.lock`` for its lifetime
and uses slot N's names and ranges: bridge ``klN``, namespaces ``klN-<uid8>``, pod CIDR
10.244.N.0/24 (or 127.(N+1).0.0/16 on the host network).  The kernel drops the lock when
the process dies however it dies, so a new owner of slot N knows that whatever still
carries slot N's names was left behind by a dead agent, and removes it first.

Except where a slot is kept: the oci runtime's containers outlive their agent, so while
a node has pods it marks its slot kept (``net-slot-N.keep`` names its state directory).
Other agents pass a kept slot by; the node's next agent asks for it back and finds its
pods' namespaces and bridge as they were.
"""
from __future__ import annotations

import fcntl
import logging
import os
import subprocess
from dataclasses import dataclass

log = logging.getLogger("kubelite.node")

LOCK_DIR = "/run/kubelite" if os.access("/run", os.W_OK) else os.path.join("/tmp", f"kubelite-{os.getuid()}")
MAX_SLOTS = 90  # 127.1–127.90 host ranges stay below the 127.96/12 service ranges
# Every pod CIDR is inside this range.  An "unreachable" route for the whole range makes a
# packet for a pod whose bridge is already gone fail locally instead of following the
# default route off the machine.
GUARD_CIDR = "10.244.0.0/16"


@dataclass
class NetSlot:
    """One agent's share of the machine's pod address space."""

    index: int
    lock_fd: int  # holds the flock; closing it gives the slot back

    @property
    def bridge(self) -> str:
        """The slot's node bridge."""
        return f"kl{self.index}"

    @property
    def prefix(self) -> str:
        """Prefix of the slot's namespace and veth names."""
        return f"kl{self.index}"

    @property
    def pod_cidr(self) -> str:
        """Pod addresses in network-namespace mode."""
        return f"10.244.{self.index}.0/24"

    @property
    def host_cidr(self) -> str:
        """Pod addresses on the host network (loopback)."""
        return f"127.{self.index + 1}.0.0/16"

    def release(self) -> None:
        """Give the slot back.  The guard route stays: once the bridges are gone it is what
        keeps a late packet for a pod address (a client, a test) from leaving the machine."""
        try:
            os.close(self.lock_fd)
        except OSError:
            pass


def acquire(prefer: int | None = None, keeper: str | None = None) -> NetSlot:
    """Take slot `prefer` if it is free, else the lowest free slot that nobody keeps, and
    clean up what a dead previous owner left (not when `keeper` kept the slot: its pods live)."""
    os.makedirs(LOCK_DIR, exist_ok=True)
    order = ([prefer] if prefer is not None else []) + [i for i in range(MAX_SLOTS) if i != prefer]
    for i in order:
        kept_by = kept(i)
        if kept_by is not None and kept_by != keeper:
            continue
        fd = os.open(os.path.join(LOCK_DIR, f"net-slot-{i}.lock"), os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        slot = NetSlot(i, fd)
        if kept_by is None:
            _clean_leftovers(slot)
        if os.geteuid() == 0 and "unreachable" not in _run("ip", "route", "show", GUARD_CIDR):
            _run("ip", "route", "add", "unreachable", GUARD_CIDR)
        return slot
    raise RuntimeError(f"all {MAX_SLOTS} pod network slots on this machine are in use")


# Fake-runtime nodes need no bridge, namespace or route, only a loopback pod range of their
# own: they draw from a pool of their own, so a machine can simulate many more nodes than
# MAX_SLOTS without taking the network slots real agents need.
MAX_FAKE_SLOTS = 2048


def acquire_fake() -> NetSlot:
    """The lowest free fake-node slot (its index picks the node's loopback pod range)."""
    os.makedirs(LOCK_DIR, exist_ok=True)
    for i in range(MAX_FAKE_SLOTS):
        fd = os.open(os.path.join(LOCK_DIR, f"fake-slot-{i}.lock"), os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        return NetSlot(i, fd)
    raise RuntimeError(f"all {MAX_FAKE_SLOTS} fake node slots on this machine are in use")


def _keep_file(index: int) -> str:
    return os.path.join(LOCK_DIR, f"net-slot-{index}.keep")


def keep(index: int, owner: str) -> None:
    """Mark slot `index` as holding pods of `owner` (a directory) that outlive its agent."""
    os.makedirs(LOCK_DIR, exist_ok=True)
    with open(_keep_file(index), "w") as f:
        f.write(owner)


def unkeep(index: int, owner: str) -> None:
    """Drop `owner`'s mark on slot `index` (its last pod is gone)."""
    if kept(index) == owner:
        try:
            os.unlink(_keep_file(index))
        except OSError:
            pass


def kept(index: int) -> str | None:
    """Who keeps slot `index`; a mark whose directory is gone is dropped."""
    try:
        with open(_keep_file(index)) as f:
            owner = f.read().strip()
    except OSError:
        return None
    if owner and os.path.isdir(owner):
        return owner
    try:
        os.unlink(_keep_file(index))
    except OSError:
        pass
    return None


def _run(*args: str) -> str:
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""


def _clean_leftovers(slot: NetSlot) -> None:
    if os.geteuid() != 0 or not os.path.isdir("/var/run/netns") and not os.path.exists(f"/sys/class/net/{slot.bridge}"):
        return
    stale = [line.split()[0] for line in _run("ip", "netns", "list").splitlines()
             if line.split() and line.split()[0].startswith(slot.prefix + "-")]
    for ns in stale:
        # Processes a dead agent left in its pods' namespaces (children of containers whose
        # main process died with the agent) die with the namespace they were left in.
        for pid in _run("ip", "netns", "pids", ns).split():
            try:
                os.kill(int(pid), 9)
            except (ValueError, OSError):
                pass
        _run("ip", "netns", "del", ns)
    if os.path.exists(f"/sys/class/net/{slot.bridge}"):
        _run("ip", "link", "del", slot.bridge)
    if stale:
        log.info("removed %d pod network namespace(s) left by a previous agent in slot %d", len(stale), slot.index)

