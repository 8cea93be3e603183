"""The OCI runtime spec (config.json) of a container and of a pod's pause container.

The shape follows what containerd's CRI plugin hands runc for a Kubernetes container:
the same default capability set, the same masked and read-only /proc paths, /dev as a
small tmpfs with devpts and mqueue, /sys read-only, and devices denied except runc's
defaults. Per pod the pause container owns the IPC, UTS (hostname = pod name) and,
for `shareProcessNamespace`, PID namespaces; every container joins them by path, joins
the pod's network namespace, and gets a mount and (usually) a PID namespace of its own.

securityContext: runAsUser/runAsGroup/supplementalGroups/fsGroup pick the process
identity (the image's USER otherwise, names looked up in the image's /etc/passwd),
runAsNonRoot refuses uid 0 with the kubelet's words, readOnlyRootFilesystem,
privileged (every capability, every device, no masked paths), capabilities add/drop
and allowPrivilegeEscalation (noNewPrivileges).

Everything here is pure: inputs in, a dict out, so it is tested without runc.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kubelite.api import quantity
from kubelite.node.runtime.base import Mount
from kubelite.node.runtime.oci import cgroups

Obj = dict[str, Any]

OCI_VERSION = "1.0.2"

# containerd's default set for CRI containers.
DEFAULT_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
    "CAP_AUDIT_WRITE",
]

ALL_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
]

MASKED_PATHS = [
    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
    "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CPU_PERIOD = 100_000          # µs, the kubelet's CFS period
MIN_SHARES, MAX_SHARES = 2, 262_144
MIN_QUOTA = 1_000


class ConfigError(Exception):
    """The container's configuration cannot be honoured (CreateContainerConfigError)."""


@dataclass
class Identity:
    """The uid, gid and supplementary groups a container's processes run as."""

    uid: int
    gid: int
    groups: list[int] = field(default_factory=list)


# -- identity -----------------------------------------------------------------------------


def _passwd(rootfs: str, name: str) -> tuple[int, int] | None:
    """(uid, gid) of user `name` (or numeric uid) in the image's /etc/passwd."""
    for line in _read_lines(os.path.join(rootfs, "etc/passwd")):
        parts = line.split(":")
        if len(parts) >= 4 and (parts[0] == name or parts[2] == name) and parts[2].isdigit() and parts[3].isdigit():
            return int(parts[2]), int(parts[3])
    return None


def _group_id(rootfs: str, name: str) -> int | None:
    for line in _read_lines(os.path.join(rootfs, "etc/group")):
        parts = line.split(":")
        if len(parts) >= 3 and parts[0] == name and parts[2].isdigit():
            return int(parts[2])
    return None


def _member_groups(rootfs: str, user: str, uid: int) -> list[int]:
    """Groups of /etc/group that list `user` as a member (what `initgroups` would add)."""
    names = {user, str(uid)}
    out = []
    for line in _read_lines(os.path.join(rootfs, "etc/group")):
        parts = line.split(":")
        if len(parts) >= 4 and parts[2].isdigit() and names & set(parts[3].split(",")):
            out.append(int(parts[2]))
    return out


def _read_lines(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return [line.rstrip("\n") for line in f if line.strip() and not line.startswith("#")]
    except OSError:
        return []


def image_user_uid(image_user: str, rootfs: str) -> int | None:
    """The uid the image's USER means, or None when it is a name (unverifiable for runAsNonRoot)."""
    user = image_user.partition(":")[0]
    if not user:
        return 0
    if user.isdigit():
        return int(user)
    return None


def check_non_root(pod: Obj, container: Obj, image_user: str, rootfs: str) -> None:
    """Refuse, as the kubelet does, a runAsNonRoot container that would run as root."""
    sc = effective_security(pod, container)
    if not sc.get("runAsNonRoot"):
        return
    who = f'(pod: "{pod_label(pod)}", container: {container["name"]})'
    run_as = sc.get("runAsUser")
    if run_as is not None:
        if int(run_as) == 0:
            raise ConfigError(f"container's runAsUser breaks non-root policy {who}")
        return
    uid = image_user_uid(image_user, rootfs)
    if uid is None:
        raise ConfigError(f"container has runAsNonRoot and image has non-numeric user "
                          f"({image_user.partition(':')[0]}), cannot verify user is non-root {who}")
    if uid == 0:
        raise ConfigError(f"container has runAsNonRoot and image will run as root {who}")


def pod_label(pod: Obj) -> str:
    """name_namespace(uid), how the kubelet names a pod in messages."""
    md = pod.get("metadata") or {}
    return f"{md.get('name', '')}_{md.get('namespace', '')}({md.get('uid', '')})"


def effective_security(pod: Obj, container: Obj) -> Obj:
    """The container's securityContext over the pod's (the identity fields the pod may set)."""
    psc = (pod.get("spec") or {}).get("securityContext") or {}
    csc = container.get("securityContext") or {}
    out = {k: psc[k] for k in ("runAsUser", "runAsGroup", "runAsNonRoot") if psc.get(k) is not None}
    out.update({k: v for k, v in csc.items() if v is not None})
    return out


def resolve_identity(pod: Obj, container: Obj, image_user: str, rootfs: str) -> Identity:
    """The process identity: securityContext first, then the image's USER, then root."""
    sc = effective_security(pod, container)
    psc = (pod.get("spec") or {}).get("securityContext") or {}
    user, _, group = image_user.partition(":")
    uid, gid, name = 0, 0, "root"
    if user:
        if user.isdigit():
            uid, name = int(user), user
            found = _passwd(rootfs, user)
            gid = found[1] if found else 0
        else:
            found = _passwd(rootfs, user)
            if found is None:
                raise ConfigError(f"unable to find user {user}: no matching entries in passwd file")
            (uid, gid), name = found, user
    if group:
        gid_found = int(group) if group.isdigit() else _group_id(rootfs, group)
        if gid_found is None:
            raise ConfigError(f"unable to find group {group}: no matching entries in group file")
        gid = gid_found
    if sc.get("runAsUser") is not None:
        uid = int(sc["runAsUser"])
        found = _passwd(rootfs, str(uid))
        gid = found[1] if found else 0
        name = str(uid)
    if sc.get("runAsGroup") is not None:
        gid = int(sc["runAsGroup"])
    groups = _member_groups(rootfs, name, uid)
    for extra in (psc.get("supplementalGroups") or []) + ([psc["fsGroup"]] if psc.get("fsGroup") is not None else []):
        groups.append(int(extra))
    return Identity(uid, gid, sorted(set(groups) - {gid}))


# -- capabilities, resources ---------------------------------------------------------------


def capabilities(container: Obj) -> list[str]:
    """The capability set after securityContext.capabilities drop/add (privileged: all)."""
    sc = container.get("securityContext") or {}
    if sc.get("privileged"):
        return list(ALL_CAPS)
    caps = (sc.get("capabilities") or {})

    def norm(name: str) -> str:
        name = str(name).upper()
        return name if name.startswith("CAP_") or name == "ALL" else "CAP_" + name
    drop = {norm(c) for c in caps.get("drop") or []}
    add = [norm(c) for c in caps.get("add") or []]
    out = [] if "ALL" in drop else [c for c in DEFAULT_CAPS if c not in drop]
    for c in (ALL_CAPS if "ALL" in add else add):
        if c not in out:
            out.append(c)
    return out


def cpu_shares(milli: int) -> int:
    """cpu.shares for a CPU request in millicores, as the kubelet computes it."""
    if milli == 0:
        return MIN_SHARES
    return max(MIN_SHARES, min(MAX_SHARES, milli * 1024 // 1000))


def cpu_quota(milli: int) -> int:
    """CFS quota (µs per CPU_PERIOD) for a CPU limit in millicores."""
    return max(MIN_QUOTA, milli * CPU_PERIOD // 1000)


def resources(container: Obj, *, swap_limit: bool, cgroup_v2: bool = False) -> Obj:
    """linux.resources of a container: devices, memory limit, CPU shares and quota (on a
    cgroup v2 host also as the v2 files, in `unified`)."""
    res = container.get("resources") or {}
    limits, requests = res.get("limits") or {}, res.get("requests") or {}
    out: Obj = {"devices": [{"allow": False, "access": "rwm"}]}
    mem = quantity.value(limits.get("memory")) if limits.get("memory") else 0
    if mem > 0:
        out["memory"] = {"limit": mem}
        if swap_limit:
            out["memory"]["swap"] = mem  # memory+swap = memory: no swap, as the kubelet sets it
    # A CPU request defaults to the limit when only the limit is given (API defaulting).
    req = requests.get("cpu") or limits.get("cpu")
    cpu: Obj = {"shares": cpu_shares(quantity.milli(req) if req else 0)}
    if limits.get("cpu"):
        cpu["quota"] = cpu_quota(quantity.milli(limits["cpu"]))
        cpu["period"] = CPU_PERIOD
    out["cpu"] = cpu
    if cgroup_v2:
        out["unified"] = cgroups.unified_resources(mem, cpu["shares"], cpu.get("quota"), CPU_PERIOD)
    return out


def oom_score_adj(pod: Obj, container: Obj) -> int:
    """The kubelet's OOM score by QoS class: Guaranteed -997, BestEffort 1000, Burstable between."""
    qos = (pod.get("status") or {}).get("qosClass") or _qos(pod)
    if qos == "Guaranteed":
        return -997
    if qos == "BestEffort":
        return 1000
    req = quantity.value(((container.get("resources") or {}).get("requests") or {}).get("memory"))
    total = _mem_total()
    if not req or not total:
        return 999
    return int(min(999, max(3, 1000 - 1000 * req // total)))


def _qos(pod: Obj) -> str:
    containers = (pod.get("spec") or {}).get("containers") or []
    if not any((c.get("resources") or {}).get("requests") or (c.get("resources") or {}).get("limits")
               for c in containers):
        return "BestEffort"
    for c in containers:
        r = c.get("resources") or {}
        lim, req = r.get("limits") or {}, r.get("requests") or {}
        for k in ("cpu", "memory"):
            if k not in lim or (k in req and req[k] != lim[k]):
                return "Burstable"
    return "Guaranteed"


def _mem_total() -> int:
    for line in _read_lines("/proc/meminfo"):
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


# -- mounts and the spec -------------------------------------------------------------------


def default_mounts(*, privileged: bool) -> list[Obj]:
    """/proc, /dev, /dev/pts, /dev/mqueue, /sys and the cgroup tree, as containerd mounts them."""
    sys_opts = ["nosuid", "noexec", "nodev"] + ([] if privileged else ["ro"])
    return [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": sys_opts},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
    ]


def bind(source: str, destination: str, *, readonly: bool = False, extra: tuple[str, ...] = ()) -> Obj:
    """A private bind mount of a host file or directory."""
    return {"destination": destination, "type": "bind", "source": source,
            "options": ["rbind", "rprivate", "ro" if readonly else "rw", *extra]}


def volume_mounts(volumes: Sequence[Mount]) -> list[Obj]:
    """Bind mounts of a container's volumes, parents before what is mounted inside them."""
    ordered = sorted(volumes, key=lambda m: len([p for p in m.destination.split("/") if p]))
    return [bind(m.source, m.destination, readonly=m.readonly) for m in ordered]


@dataclass(frozen=True)
class HostLimits:
    """What the agent itself may hand out: without CAP_SYS_RESOURCE no process may raise its
    open-files hard limit or lower its OOM score below the agent's own."""

    nofile: int = 1_048_576
    oom_floor: int = -1000

    @classmethod
    def current(cls) -> HostLimits:
        """The limits of this process."""
        import resource
        if _has_cap(24):  # CAP_SYS_RESOURCE
            return cls()
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        try:
            with open("/proc/self/oom_score_adj") as f:
                floor = int(f.read().strip())
        except (OSError, ValueError):
            floor = 0
        return cls(nofile=min(cls.nofile, hard if hard > 0 else cls.nofile), oom_floor=floor)

    def oom(self, value: int) -> int:
        """`value` raised to what this agent may set."""
        return max(value, self.oom_floor)


def _has_cap(bit: int) -> bool:
    for line in _read_lines("/proc/self/status"):
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) & (1 << bit))
    return False


@dataclass
class Namespaces:
    """Where a container's namespaces come from: a path joins one, None makes a new one."""

    network: str | None
    ipc: str | None
    uts: str | None
    pid: str | None


def container_spec(*, pod: Obj, container: Obj, rootfs: str, argv: list[str], env: dict[str, str], cwd: str,
                   identity: Identity, namespaces: Namespaces, cgroups_path: str, extra_mounts: list[Obj],
                   swap_limit: bool, limits: HostLimits, tty: bool = False, cgroup_v2: bool = False) -> Obj:
    """config.json of an application container of `pod`."""
    sc = container.get("securityContext") or {}
    privileged = bool(sc.get("privileged"))
    caps = capabilities(container)
    env_list = [f"{k}={v}" for k, v in env.items()]
    if tty and "TERM" not in env:
        env_list.append("TERM=xterm")  # as containerd sets it for a tty container
    spec: Obj = {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": tty,
            "user": {"uid": identity.uid, "gid": identity.gid, "additionalGids": identity.groups},
            "args": argv,
            "env": env_list,
            "cwd": cwd,
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps, "inheritable": [],
                             "ambient": []},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": limits.nofile, "soft": limits.nofile}],
            "noNewPrivileges": sc.get("allowPrivilegeEscalation") is False and not privileged,
            "oomScoreAdj": limits.oom(oom_score_adj(pod, container)),
        },
        "root": {"path": rootfs, "readonly": bool(sc.get("readOnlyRootFilesystem"))},
        "mounts": default_mounts(privileged=privileged) + extra_mounts,
        "linux": {
            "namespaces": _namespaces(namespaces),
            "cgroupsPath": cgroups_path,
            "resources": resources(container, swap_limit=swap_limit, cgroup_v2=cgroup_v2),
            "maskedPaths": [] if privileged else list(MASKED_PATHS),
            "readonlyPaths": [] if privileged else list(READONLY_PATHS),
        },
    }
    if privileged:
        spec["linux"]["resources"]["devices"] = [{"allow": True, "access": "rwm"}]
    return spec


def pause_spec(*, rootfs: str, hostname: str, netns: str | None, cgroups_path: str, args: list[str],
               limits: HostLimits) -> Obj:
    """config.json of a pod's pause container: it holds the pod's IPC, UTS and PID namespaces."""
    return {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": [f"PATH={DEFAULT_PATH}"],
            "cwd": "/",
            "capabilities": {"bounding": [], "effective": [], "permitted": [], "inheritable": [], "ambient": []},
            "noNewPrivileges": True,
            "oomScoreAdj": limits.oom(-998),
        },
        "root": {"path": rootfs, "readonly": True},
        "hostname": hostname,
        # runc needs /proc inside the container to close inherited descriptors before exec.
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
                   {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                    "options": ["nosuid", "strictatime", "mode=755", "size=64k"]}],
        "linux": {
            "namespaces": _namespaces(Namespaces(network=netns, ipc=None, uts=None, pid=None)),
            "cgroupsPath": cgroups_path,
            "resources": {"devices": [{"allow": False, "access": "rwm"}], "cpu": {"shares": MIN_SHARES}},
            "maskedPaths": list(MASKED_PATHS),
            "readonlyPaths": list(READONLY_PATHS),
        },
    }


def _namespaces(ns: Namespaces) -> list[Obj]:
    out: list[Obj] = [{"type": "mount"}]
    for kind, path in (("network", ns.network), ("ipc", ns.ipc), ("uts", ns.uts), ("pid", ns.pid)):
        out.append({"type": kind, "path": path} if path else {"type": kind})
    return out


def process_for_exec(spec: Obj, command: list[str], *, tty: bool, env: dict[str, str] | None = None) -> Obj:
    """The process of an exec: the container's own (user, capabilities, env, cwd), another command."""
    proc = dict(spec["process"])
    proc["args"] = list(command)
    proc["terminal"] = tty
    envs = list(proc.get("env") or [])
    extra = dict(env or {})
    if tty:
        extra.setdefault("TERM", "xterm")
    if extra:
        keep = [e for e in envs if e.partition("=")[0] not in extra]
        envs = keep + [f"{k}={v}" for k, v in extra.items()]
    proc["env"] = envs
    if tty:
        proc["consoleSize"] = {"height": 24, "width": 80}
    proc.pop("oomScoreAdj", None)
    return proc
