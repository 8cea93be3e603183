"""emptyDir volumes: a directory of the pod's own on the node, or a tmpfs for
`medium: Memory` (sized by sizeLimit, else the node's memory), gone with the pod."""
from __future__ import annotations

import os

from kubelite.api import quantity

from . import ownership
from .base import Obj, SetupError, node_allocatable


def setup(path: str, source: Obj, *, fs_group: int | None, change_policy: str | None = None) -> None:
    """Make the volume at `path` (idempotent: an existing one keeps its contents) and give
    it to the pod's fsGroup per `change_policy` (fsGroupChangePolicy)."""
    medium = str(source.get("medium") or "")
    if medium not in ("", "Memory"):
        raise SetupError(f"emptyDir medium {medium!r} is not supported on this node")
    fresh = not os.path.isdir(path)
    os.makedirs(path, exist_ok=True)
    if medium == "Memory":
        from kubelite.node.runtime.oci import rootfs
        if not rootfs.is_mounted(path):
            if os.geteuid() != 0:
                raise SetupError("emptyDir with medium Memory needs a tmpfs mount, and the node agent is not root")
            size = quantity.value(source.get("sizeLimit")) if source.get("sizeLimit") else 0
            size = size or int(node_allocatable()["memory"]) or 64 * 1024 * 1024
            rootfs.mount_tmpfs(path, size, mode=0o777)
            fresh = True
    if fresh:
        # Anyone in the pod may write an emptyDir, as upstream makes it (0777, fsGroup's setgid).
        os.chmod(path, 0o2777 if fs_group is not None else 0o777)
    ownership.apply(path, fs_group, change_policy)
