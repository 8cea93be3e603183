"""`kubelite killall`: stop every container of a data directory and remove its pod network.

The oci runtime's containers outlive `kubelite server` and `kubelite agent` (as k3s's
do); this is the one command that ends them, like `k3s-killall.sh`. It works from the
state on disk alone, so no server needs to run (stop the server first: a running agent
would start the pods again). For each pod: every runc container is killed and deleted,
whatever is left in the pod's cgroup is killed, mounts are taken down, the network
namespace and the cgroups removed. Then the node bridge, the slot mark and the nftables
table of the server's Services go.
Pod objects stay in the API; a server started again on the data directory runs them
anew.
"""
from __future__ import annotations

import fcntl
import os
import subprocess

from ... import netslot
from ..netns import NetnsNetwork
from . import cgroups, rootfs, state
from .runc import list_sync
from .runtime import discard_partial, state_dir


def _run(*argv: str) -> None:
    try:
        subprocess.run(argv, capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        pass


def _slot_unused(index: int) -> bool:
    """Whether no agent holds network slot `index` now (its bridge is nobody's)."""
    try:
        fd = os.open(os.path.join(netslot.LOCK_DIR, f"net-slot-{index}.lock"), os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def killall(data_dir: str) -> tuple[int, int]:
    """Stop every container and remove every pod sandbox of `data_dir`; (pods, containers)."""
    root = state_dir(os.path.abspath(data_dir))
    runc_root = os.path.join(root, "runc")
    containers = list_sync(runc_root)
    for c in containers:
        _run("runc", "--root", runc_root, "kill", "--all", c["id"], "KILL")
        _run("runc", "--root", runc_root, "delete", "--force", c["id"])
    pods_dir = os.path.join(root, "pods")
    node = state.load(os.path.join(root, "node.json"), state.NodeRecord)
    pods = 0
    parents: list[str] = []
    for uid in sorted(os.listdir(pods_dir)) if os.path.isdir(pods_dir) else []:
        pod_dir = os.path.join(pods_dir, uid)
        rec = state.load(os.path.join(pod_dir, "sandbox.json"), state.SandboxRecord)
        if rec is None and node is not None:
            # A sandbox its agent did not finish: its names follow from the slot and the uid.
            net = NetnsNetwork(bridge=node.bridge, prefix=f"kl{node.slot}")
            pod_cgroups = cgroups.PodCgroups(node.cgroup_name)
            discard_partial(pod_dir, net.names(uid)[0], pod_cgroups.pod_dirs(uid))
            parents += pod_cgroups.pod_dirs(uid)
        if rec is not None:
            cgroups.kill_all(rec.cgroup_dirs)
            if rec.netns:
                _run("ip", "netns", "del", rec.netns)
            parents += rec.cgroup_dirs
        rootfs.remove_tree(pod_dir)
        if rec is not None:
            cgroups.remove(rec.cgroup_dirs)
        pods += 1
    cgroups.remove_parent(parents)
    if node is not None:
        owner = os.path.realpath(root)
        if (netslot.kept(node.slot) in (owner, None) and os.path.exists(f"/sys/class/net/{node.bridge}")
                and _slot_unused(node.slot)):
            _run("ip", "link", "del", node.bridge)
        netslot.unkeep(node.slot, owner)
    # The Services' nftables rules outlive the server too; without the pods they only refuse.
    from kubelite.proxy.nftables import table_name
    from kubelite.proxy.ranges import remembered, shared_with_live_server
    cidr = remembered(os.path.abspath(data_dir))
    if cidr and shared_with_live_server(os.path.abspath(data_dir)):
        cidr = None  # a running server of the same cluster routes this range here: its tables stay
    if cidr:
        _run("nft", "delete", "table", "ip", table_name(cidr))
        # The NetworkPolicy enforcer's tables (kubelite/netpol), one per family.
        from kubelite.netpol.rules import FAMILIES
        from kubelite.netpol.rules import table_name as netpol_table
        for family in FAMILIES:
            _run("nft", "delete", "table", family, netpol_table(cidr))
    from kubelite.node.joinnet import remembered_table
    if table := remembered_table(os.path.abspath(data_dir)):  # a joined node's own table
        _run("nft", "delete", "table", "ip", table)
    from kubelite.netpol.rules import FAMILIES
    from kubelite.node.joinnet import NETPOL_TABLE_FILE
    if table := remembered_table(os.path.abspath(data_dir), NETPOL_TABLE_FILE):  # its NetworkPolicy tables
        for family in FAMILIES:
            _run("nft", "delete", "table", family, table)
    return pods, len(containers)
