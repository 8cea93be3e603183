"""What the oci runtime keeps on disk, so a new agent re-adopts what an old one started.

Layout under `<data dir>/agent/oci`:

    node.json                       the network slot and cgroup name of this node
    runc/                           runc's state (`runc --root`)
    pause-rootfs/                   the pause container's root (one static binary)
    pods/<uid>/sandbox.json         a SandboxRecord
    pods/<uid>/{hosts,hostname,resolv.conf,shm/}   files every container of the pod mounts
    pods/<uid>/pause/config.json    the pause container's bundle
    pods/<uid>/containers/<cid>/    a container instance: container.json (ContainerRecord),
                                    config.json, upper/ work/ rootfs/ (the overlay),
                                    exit and oom (written by conmon), conmon.pid
    pods/<uid>/logs/<name>/<n>.log  the CRI log of instance n of a container (conmon writes it)

Records are written to a temporary name and renamed, so a crash leaves the old or the
new version, never half of one.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")


@dataclass
class NodeRecord:
    """The parts of a node's identity its pods depend on."""

    slot: int
    cgroup_name: str
    bridge: str
    data_dir: str


@dataclass
class SandboxRecord:
    """A pod sandbox: its network, its pause container and its cgroup directories."""

    uid: str
    namespace: str
    name: str
    ip: str
    netns: str | None
    dir: str
    created_at: str
    pause_id: str
    share_pid: bool = False
    cgroup_dirs: list[str] = field(default_factory=list)


@dataclass
class ContainerRecord:
    """One container instance, as started."""

    id: str
    name: str
    sandbox_uid: str
    attempt: int
    started_at: str
    log_path: str
    image: str
    bundle: str
    pid: int = 0
    conmon_pid: int = 0


def save(path: str, record: DataclassInstance) -> None:
    """Write a record as JSON atomically."""
    data = json.dumps(asdict(record), indent=1).encode()
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load(path: str, cls: type[T]) -> T | None:
    """Read a record; None when missing or unreadable (a crash before the first write)."""
    try:
        with open(path, "rb") as f:
            raw: dict[str, Any] = json.loads(f.read())
    except (OSError, ValueError):
        return None
    names = {f.name for f in fields(cls)}
    try:
        return cls(**{k: v for k, v in raw.items() if k in names})
    except TypeError:
        return None
