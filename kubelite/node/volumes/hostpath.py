"""hostPath volumes: a path of the node, checked (or created) per its `type` as upstream."""
from __future__ import annotations

import os
import stat

from .base import Obj, SetupError

_CHECKS = {
    "Directory": (stat.S_ISDIR, "is not a directory"),
    "File": (stat.S_ISREG, "is not a file"),
    "Socket": (stat.S_ISSOCK, "is not a socket file"),
    "CharDevice": (stat.S_ISCHR, "is not a character device"),
    "BlockDevice": (stat.S_ISBLK, "is not a block device"),
}


def setup(source: Obj) -> str:
    """The checked host path of a hostPath volume."""
    path = str(source.get("path") or "")
    kind = str(source.get("type") or "")
    if not path.startswith("/"):
        raise SetupError(f"hostPath {path!r} is not an absolute path")
    if kind == "DirectoryOrCreate":
        if not os.path.exists(path):
            os.makedirs(path, mode=0o755)
        kind = "Directory"
    elif kind == "FileOrCreate":
        if not os.path.exists(path):
            try:
                fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o644)
            except OSError as e:
                raise SetupError(f"hostPath type check failed: {path}: {e.strerror}") from None
            os.close(fd)
        kind = "File"
    if not kind:
        return path
    if kind not in _CHECKS:
        raise SetupError(f"hostPath type check failed: unknown type {kind!r}")
    test, what = _CHECKS[kind]
    try:
        st = os.stat(path)
    except OSError:
        raise SetupError(f"hostPath type check failed: {path} {what}") from None
    if not test(st.st_mode):
        raise SetupError(f"hostPath type check failed: {path} {what}")
    return path
