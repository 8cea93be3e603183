"""Pod and container cgroups, on cgroup v1 (also the hybrid layout) and v2.

`mode` tells the layouts apart: v2 is the unified hierarchy alone at /sys/fs/cgroup; the
hybrid one (these machines) has the v1 controllers there and an empty unified hierarchy
at /sys/fs/cgroup/unified, and is driven as v1, as runc does. On v2 the container's
limits also go into the OCI spec's `linux.resources.unified` (`unified_resources`), so
cpu.weight is the kubelet's conversion of the shares; the pod level's pids.max is
written here, after memory, cpu and pids are delegated down the tree.

Layout: `<agent's own cgroup>/kubelite-<id>/pod<uid>/<container id>` in every v1
hierarchy, where `<id>` names the data directory, so two kubelite nodes on one machine
never share a parent. runc is given the relative path `kubelite-<id>/pod<uid>/<cid>`:
it resolves a relative path against its own cgroup in each hierarchy, which is the
agent's (conmon and runc inherit it). Nesting under the agent's own cgroup keeps the
containers inside whatever limits the agent itself runs under. On v2 a cgroup with
processes cannot delegate controllers to children, so there the parent is the root:
`/kubelite-<id>/pod<uid>/<cid>`.

The pod level carries the pod's pids limit (the kubelet's `--pod-max-pids`) and is how
every process of a pod is found and killed, whatever it did to its session or parent:
the cgroup is inherited across fork, setsid and double forks.

The absolute per-hierarchy directories of a pod are stored with the sandbox, so a later
agent or `kubelite killall`, running in another cgroup, still finds them.
"""
from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass

from ..usage import Usage, cgroup_v1_usage, cgroup_v2_usage

CGROUP_ROOT = "/sys/fs/cgroup"


@dataclass(frozen=True)
class Hierarchy:
    """One mounted cgroup hierarchy and the agent's place in it."""

    key: str           # "memory", "cpu,cpuacct", "name=systemd", "" (the unified one)
    mount: str         # where it is mounted
    own: str           # the agent's cgroup in it ("/" at the top)

    def path(self, relative: str) -> str:
        """Host directory of `relative` (to the agent's own cgroup) in this hierarchy."""
        return os.path.join(self.mount, self.own.lstrip("/"), relative)


def is_v2(root: str = CGROUP_ROOT) -> bool:
    """Whether `root` (/sys/fs/cgroup) is the unified (v2) hierarchy alone."""
    return os.path.exists(os.path.join(root, "cgroup.controllers"))


def mode(root: str = CGROUP_ROOT) -> str:
    """The host's cgroup layout: "v2" (unified alone), "hybrid" (v1 controllers plus an
    empty unified hierarchy at `root`/unified, as systemd mounts it) or "v1"."""
    if is_v2(root):
        return "v2"
    if os.path.exists(os.path.join(root, "unified", "cgroup.controllers")):
        return "hybrid"
    return "v1"


def cpu_weight(shares: int) -> int:
    """cgroup v2 cpu.weight for v1 cpu.shares, with the kubelet's linear mapping
    (2..262144 onto 1..10000)."""
    shares = max(2, min(262_144, shares))
    return (shares - 2) * 9999 // 262_142 + 1


def unified_resources(memory_limit: int, cpu_shares: int, cpu_quota: int | None, cpu_period: int) -> dict[str, str]:
    """The `linux.resources.unified` entries of a container on a v2 host: the kubelet's
    values written as the v2 files (runc writes them as given, over its own conversion of
    the v1-style fields, whose shares-to-weight mapping differs in newer runc)."""
    out = {"cpu.weight": str(cpu_weight(cpu_shares)),
           "cpu.max": f"{cpu_quota if cpu_quota else 'max'} {cpu_period}"}
    if memory_limit > 0:
        out["memory.max"] = str(memory_limit)
        out["memory.swap.max"] = "0"  # no swap, as the kubelet's default (NoSwap) sets it
    return out


def hierarchies() -> list[Hierarchy]:
    """Every cgroup hierarchy this process is in, with its mount point."""
    mounts = _cgroup_mounts()
    out = []
    try:
        with open("/proc/self/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    for line in lines:
        hid, _, rest = line.partition(":")
        key, _, own = rest.partition(":")
        mount = mounts.get(key)
        if mount is None:
            continue
        out.append(Hierarchy(key, mount, own or "/"))
    return out


def _cgroup_mounts() -> dict[str, str]:
    """{hierarchy key: mount point} from /proc/self/mountinfo (v1 keys as /proc/self/cgroup spells them)."""
    out: dict[str, str] = {}
    try:
        with open("/proc/self/mountinfo") as f:
            lines = f.read().splitlines()
    except OSError:
        return out
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, rfields = left.split(), right.split()
        if len(fields) < 5 or len(rfields) < 3:
            continue
        fstype, mount, root = rfields[0], fields[4], fields[3]
        if root != "/":
            continue  # a bind of a sub-tree: not where runc would look
        if fstype == "cgroup2":
            out.setdefault("", mount)
        elif fstype == "cgroup":
            opts = rfields[2].split(",")
            names = [o for o in opts if o.startswith("name=")]
            known = {"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "net_cls", "net_prio", "blkio",
                     "perf_event", "hugetlb", "pids", "rdma", "misc"}
            ctrls = [o for o in opts if o in known]
            key = ",".join(sorted(ctrls) + names) if ctrls or names else ""
            if key:
                out.setdefault(key, mount)
    # /proc/self/cgroup lists co-mounted controllers in the kernel's order; map both spellings.
    for key in list(out):
        parts = key.split(",")
        if len(parts) > 1:
            out.setdefault(",".join(parts[::-1]), out[key])
    return out


class PodCgroups:
    """The cgroup directories of the pods of one node (one data directory)."""

    def __init__(self, name: str, root: str = CGROUP_ROOT):
        self.name = name                      # "kubelite-<id>"
        self.root = root                      # where the cgroup filesystems are (a fake one in tests)
        self.mode = mode(root)
        self.v2 = self.mode == "v2"
        self.tree = [] if self.v2 else hierarchies()

    def container_path(self, pod_uid: str, cid: str) -> str:
        """The cgroupsPath runc gets for a container (relative on v1, absolute on v2)."""
        rel = f"{self.name}/pod{pod_uid}/{cid}"
        return "/" + rel if self.v2 else rel

    def pod_dirs(self, pod_uid: str) -> list[str]:
        """The pod's absolute directories, one per hierarchy (v2: one)."""
        rel = f"{self.name}/pod{pod_uid}"
        if self.v2:
            return [os.path.join(self.root, rel)]
        return [h.path(rel) for h in self.tree]

    def swap_limit(self) -> bool:
        """Whether memory+swap can be limited (v1 needs swap accounting; v2 always can)."""
        if self.v2:
            return True
        mem = next((h for h in self.tree if "memory" in h.key.split(",")), None)
        return mem is not None and os.path.exists(os.path.join(mem.mount, mem.own.lstrip("/"),
                                                               "memory.memsw.limit_in_bytes"))

    def create_pod(self, pod_uid: str, pids_max: int | None) -> list[str]:
        """Create the pod level where limits live; return every directory the pod will use."""
        dirs = self.pod_dirs(pod_uid)
        if self.v2:
            _enable_v2(self.root, os.path.join(self.root, self.name, f"pod{pod_uid}"))
            if pids_max:
                _write(os.path.join(dirs[0], "pids.max"), str(pids_max))
            return dirs
        for h in self.tree:
            keys = h.key.split(",")
            if "pids" in keys:
                d = h.path(f"{self.name}/pod{pod_uid}")
                os.makedirs(d, exist_ok=True)
                if pids_max:
                    _write(os.path.join(d, "pids.max"), str(pids_max))
        return dirs

    def memory_dir(self, pod_uid: str, cid: str) -> str | None:
        """The container's memory cgroup directory (where the OOM counter is)."""
        if self.v2:
            return os.path.join(self.root, self.container_path(pod_uid, cid).lstrip("/"))
        mem = next((h for h in self.tree if "memory" in h.key.split(",")), None)
        return mem.path(self.container_path(pod_uid, cid)) if mem else None

    def usage(self, pod_uid: str, cid: str) -> Usage | None:
        """The container's CPU time and memory working set (None once its cgroup is gone)."""
        if self.v2:
            return cgroup_v2_usage(os.path.join(self.root, self.container_path(pod_uid, cid).lstrip("/")))
        acct = next((h for h in self.tree if "cpuacct" in h.key.split(",")), None)
        cpu_dir = acct.path(self.container_path(pod_uid, cid)) if acct else None
        return cgroup_v1_usage(cpu_dir, self.memory_dir(pod_uid, cid))


def oom_killed(memory_dir: str | None) -> bool:
    """Whether the kernel's OOM killer killed a process of this memory cgroup."""
    if not memory_dir:
        return False
    for name, key in (("memory.oom_control", "oom_kill"), ("memory.events", "oom_kill")):
        try:
            with open(os.path.join(memory_dir, name)) as f:
                for line in f:
                    k, _, v = line.partition(" ")
                    if k == key and v.strip().isdigit() and int(v) > 0:
                        return True
        except OSError:
            continue
    return False


def pids(dirs: list[str]) -> set[int]:
    """Every process in the given cgroup directories and below."""
    out: set[int] = set()
    for top in dirs:
        for root, _subdirs, _files in os.walk(top):
            try:
                with open(os.path.join(root, "cgroup.procs")) as f:
                    out.update(int(x) for x in f.read().split())
            except (OSError, ValueError):
                continue
    return out


def kill_all(dirs: list[str], *, timeout: float = 10.0) -> int:
    """SIGKILL every process in `dirs` until none is left (forks in between are caught by
    the next round); return how many were signalled."""
    killed = 0
    deadline = time.monotonic() + timeout
    frozen = _freeze(dirs, True)
    try:
        while True:
            found = pids(dirs)
            if not found:
                return killed
            for pid in found:
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed += 1
                except OSError:
                    pass
            if frozen:
                _freeze(dirs, False)
                frozen = []
            if time.monotonic() > deadline:
                return killed
            time.sleep(0.02)
    finally:
        if frozen:
            _freeze(dirs, False)


def _freeze(dirs: list[str], on: bool) -> list[str]:
    """Freeze (or thaw) the v1 freezer directories among `dirs`, so nothing forks while we kill."""
    done = []
    for d in dirs:
        state = os.path.join(d, "freezer.state")
        if os.path.exists(state):
            try:
                _write(state, "FROZEN" if on else "THAWED")
                done.append(d)
            except OSError:
                pass
    return done


def remove(dirs: list[str]) -> None:
    """rmdir the directories and whatever empty cgroups are left below them (deepest first)."""
    for top in dirs:
        if not os.path.isdir(top):
            continue
        for root, _subdirs, _files in sorted(os.walk(top, topdown=False), key=lambda t: -len(t[0])):
            try:
                os.rmdir(root)
            except OSError:
                pass


def remove_parent(dirs: list[str]) -> None:
    """rmdir the node level above pod directories once it is empty."""
    for d in {os.path.dirname(x) for x in dirs}:
        try:
            os.rmdir(d)
        except OSError:
            pass


def _enable_v2(root: str, path: str) -> None:
    """Create a v2 cgroup and enable memory, cpu and pids for it in every ancestor (from `root`)."""
    rel = os.path.relpath(path, root).split("/")
    cur = root
    for part in rel:
        try:
            _write(os.path.join(cur, "cgroup.subtree_control"), "+memory +cpu +pids")
        except OSError:
            pass
        cur = os.path.join(cur, part)
        os.makedirs(cur, exist_ok=True)


def _write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)
