"""Network slots: keep the pod networks of several agents on one machine apart.

Each agent process holds an flock on ``/run/kubelite/net-slot-N.lock`` for its lifetime
and uses slot N's names and ranges: bridge ``klN``, namespaces ``klN-<uid8>``, pod CIDR
10.244.N.0/24 (or 127.(N+1).0.0/16 on the host network).  The kernel drops the lock when
the process dies however it dies, so a new owner of slot N knows that whatever still
carries slot N's names was left behind by a dead agent, and removes it first.
"""
from __future__ import annotations

import fcntl
import logging
import os
import subprocess
from dataclasses import dataclass

log = logging.getLogger("kubelite.node")

LOCK_DIR = "/run/kubelite" if os.access("/run", os.W_OK) else os.path.join("/tmp", f"kubelite-{os.getuid()}")
MAX_SLOTS = 90  # 127.1–127.90 host ranges stay below the 127.96/16 service range
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


def acquire() -> NetSlot:
    """Take the lowest free slot and clean up what a dead previous owner left."""
    os.makedirs(LOCK_DIR, exist_ok=True)
    for i in range(MAX_SLOTS):
        fd = os.open(os.path.join(LOCK_DIR, f"net-slot-{i}.lock"), os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        slot = NetSlot(i, fd)
        _clean_leftovers(slot)
        if os.geteuid() == 0 and "unreachable" not in _run("ip", "route", "show", GUARD_CIDR):
            _run("ip", "route", "add", "unreachable", GUARD_CIDR)
        return slot
    raise RuntimeError(f"all {MAX_SLOTS} pod network slots on this machine are in use")


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

