"""Container root filesystems: an overlay of the image's unpacked layers, and pod tmpfs mounts.

Each container instance gets `<container dir>/{upper,work,rootfs}`: the image's
unpacked root is the read-only lower layer (several lower directories when a store
keeps layers apart), writes land in `upper`, and `rootfs` is what runc pivots into.
Nothing of the host or of the data directory is below `rootfs` but the image.

Mounts are made with mount(2) directly (no `mount` process per container) and taken
down with a lazy unmount, so a file some straggler still holds open never makes
cleanup fail.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil

MNT_DETACH = 2
MS_NOSUID, MS_NODEV, MS_NOEXEC = 2, 4, 8

_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


class MountError(OSError):
    """A mount or unmount failed."""


def _mount(source: str, target: str, fstype: str, flags: int, data: str) -> None:
    if _libc.mount(source.encode(), target.encode(), fstype.encode(), flags, data.encode()) != 0:
        err = ctypes.get_errno()
        raise MountError(err, f"mount {fstype} on {target}: {os.strerror(err)}")


def mount_overlay(lowers: list[str], upper: str, work: str, target: str) -> None:
    """Mount an overlay of `lowers` (top first) with `upper` for writes on `target`."""
    for d in (upper, work, target):
        os.makedirs(d, exist_ok=True)
    opts = f"lowerdir={':'.join(lowers)},upperdir={upper},workdir={work}"
    _mount("overlay", target, "overlay", 0, opts)


def mount_tmpfs(target: str, size_bytes: int, mode: int = 0o1777) -> None:
    """A tmpfs of at most `size_bytes` on `target` (the pod's /dev/shm)."""
    os.makedirs(target, exist_ok=True)
    _mount("shm", target, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, f"mode={mode:o},size={size_bytes}")


def unmount(target: str) -> None:
    """Lazily unmount whatever is mounted on `target` (nothing mounted: nothing to do)."""
    while is_mounted(target):
        if _libc.umount2(target.encode(), MNT_DETACH) != 0:
            err = ctypes.get_errno()
            raise MountError(err, f"umount {target}: {os.strerror(err)}")


def mounts_below(top: str) -> list[str]:
    """Mount points at or below `top`, deepest first (what to unmount before removing it)."""
    top = os.path.realpath(top)
    out = [p for p in _mount_points() if p == top or p.startswith(top + "/")]
    return sorted(out, key=len, reverse=True)


def is_mounted(path: str) -> bool:
    """Whether `path` is a mount point."""
    return os.path.realpath(path) in _mount_points()


def _mount_points() -> list[str]:
    try:
        with open("/proc/self/mountinfo") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    # Field 5 is the mount point, with spaces and the like written as octal escapes.
    return [_unescape(line.split()[4]) for line in lines if len(line.split()) > 4]


def _unescape(text: str) -> str:
    return text.encode().decode("unicode_escape") if "\\" in text else text


def remove_tree(top: str) -> None:
    """Unmount everything below `top`, then delete it."""
    for point in mounts_below(top):
        unmount(point)
    shutil.rmtree(top, ignore_errors=True)
