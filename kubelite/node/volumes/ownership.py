"""A volume's ownership for the pod's `fsGroup`, as the kubelet's volume ownership step.

Every file and directory of the volume gets the fsGroup as its group and group read and
write (directories also search and the set-group-ID bit, so what containers create there
inherits the group). `fsGroupChangePolicy: OnRootMismatch` skips the walk when the
volume's root already has that group and those bits; `Always` (the default) walks every
time the volume is set up. Symbolic links are not followed.
"""
from __future__ import annotations

import logging
import os
import stat

log = logging.getLogger("kubelite.node")

RW = 0o660
RO = 0o440
EXEC = 0o110
ALWAYS, ON_ROOT_MISMATCH = "Always", "OnRootMismatch"


def needs_change(root: str, gid: int, *, readonly: bool = False) -> bool:
    """Whether the volume's root lacks the group or the bits the fsGroup asks for."""
    try:
        st = os.lstat(root)
    except OSError:
        return True
    if st.st_gid != gid:
        return True
    want = RO if readonly else RW
    if not stat.S_ISDIR(st.st_mode):
        return (st.st_mode & want) != want
    want |= EXEC
    return (st.st_mode & want) != want or not st.st_mode & stat.S_ISGID


def _change(path: str, st: os.stat_result, gid: int, readonly: bool) -> None:
    os.lchown(path, -1, gid)
    if stat.S_ISLNK(st.st_mode):
        return
    mask = RO if readonly else RW
    if stat.S_ISDIR(st.st_mode):
        mask |= EXEC | stat.S_ISGID
    mode = stat.S_IMODE(st.st_mode)
    if mode | mask != mode:
        os.chmod(path, mode | mask)


def apply(root: str, gid: int | None, policy: str | None = None, *, readonly: bool = False) -> int:
    """Give the volume at `root` to group `gid` (None: nothing to do); how many entries
    changed (0 when OnRootMismatch found the root right, or when not root)."""
    if gid is None or os.geteuid() != 0:
        return 0
    if policy == ON_ROOT_MISMATCH and not needs_change(root, gid, readonly=readonly):
        return 0
    _change(root, os.lstat(root), gid, readonly)
    changed = 1
    for top, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(top, name)
            try:
                _change(path, os.lstat(path), gid, readonly)
                changed += 1
            except OSError as e:  # removed meanwhile: the rest still gets its group
                log.debug("fsGroup on %s: %s", path, e)
    return changed
