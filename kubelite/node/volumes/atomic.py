"""Write a volume's files so a reader never sees half an update (the kubelet's atomic writer).

Layout of a target directory::

    ..2026_12_07_03_50_00.1234567/   the current data, written whole before it is published
    ..data -> ..2026_12_07_03_50_00.1234567
    key    -> ..data/key              one symlink per top-level user-visible name

An update writes a fresh timestamped directory, points a temporary link at it and
renames that link over ``..data`` (rename(2) is atomic), adds links for new names, drops
links of names that went away, and removes the old data directory. A reader that
follows ``key`` sees either the old file or the new one. A bind mount of the target
directory sees every update; a bind mount of one resolved file (subPath) keeps the
file it was given, as upstream.

With an fsGroup the files are given that group and made group-readable, and directories
get the set-group-ID bit, as the kubelet's volume ownership step does for these volumes.
"""
from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass

DATA_LINK = "..data"
_TMP_LINK = "..data_tmp"


class PayloadError(ValueError):
    """A payload path that could escape the volume or clash with the writer's own names."""


@dataclass(frozen=True)
class FileProjection:
    """One file of a volume: its bytes, permission bits and (optionally) its owner."""

    data: bytes
    mode: int = 0o644
    uid: int | None = None


def check_path(path: str) -> None:
    """Refuse an absolute path, a `..` component or a name starting with `..` (the writer's)."""
    if not path or path.startswith("/"):
        raise PayloadError(f"invalid path {path!r}: must be relative")
    parts = path.split("/")
    if any(p == ".." for p in parts):
        raise PayloadError(f"invalid path {path!r}: must not contain '..'")
    if parts[0].startswith(".."):
        raise PayloadError(f"invalid path {path!r}: must not start with '..'")
    if any(p == "" for p in parts):
        raise PayloadError(f"invalid path {path!r}: empty path element")


def _current(target: str) -> str | None:
    """The timestamped directory `..data` points at, if any."""
    try:
        link = os.readlink(os.path.join(target, DATA_LINK))
    except OSError:
        return None
    return os.path.join(target, link)


def _unchanged(data_dir: str, payload: dict[str, FileProjection], gid: int | None) -> bool:
    """Whether `data_dir` holds exactly `payload` (same bytes, modes and owners)."""
    found: set[str] = set()
    for root, _dirs, files in os.walk(data_dir):
        for f in files:
            found.add(os.path.relpath(os.path.join(root, f), data_dir))
    if found != set(payload):
        return False
    for path, fp in payload.items():
        full = os.path.join(data_dir, path)
        try:
            st = os.lstat(full)
            with open(full, "rb") as fh:
                if fh.read() != fp.data:
                    return False
        except OSError:
            return False
        if (st.st_mode & 0o7777) != _file_mode(fp.mode, gid):
            return False
        if fp.uid is not None and os.geteuid() == 0 and st.st_uid != fp.uid:
            return False
    return True


def _file_mode(mode: int, gid: int | None) -> int:
    return (mode | 0o440) if gid is not None else mode


def _own(path: str, uid: int | None, gid: int | None) -> None:
    if (uid is None and gid is None) or os.geteuid() != 0:
        return  # only root can give files away; an unprivileged agent keeps them its own
    os.lchown(path, -1 if uid is None else uid, -1 if gid is None else gid)


def write(target: str, payload: dict[str, FileProjection], *, gid: int | None = None) -> bool:
    """Publish `payload` in `target`; False when it already holds exactly that."""
    for path in payload:
        check_path(path)
    os.makedirs(target, exist_ok=True)
    old = _current(target)
    if old is not None and os.path.isdir(old) and _unchanged(old, payload, gid):
        return False
    stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime())
    new = tempfile.mkdtemp(prefix=stamp, dir=target)
    dir_mode = 0o2755 if gid is not None else 0o755
    os.chmod(new, dir_mode)
    _own(new, None, gid)
    for path, fp in sorted(payload.items()):
        full = os.path.join(new, path)
        parent = os.path.dirname(full)
        if not os.path.isdir(parent):
            os.makedirs(parent, mode=0o755)
            d = parent
            while d != new:  # each directory made here gets the volume's group too
                os.chmod(d, dir_mode)
                _own(d, None, gid)
                d = os.path.dirname(d)
        with open(full, "wb") as f:
            f.write(fp.data)
        os.chmod(full, _file_mode(fp.mode, gid))
        _own(full, fp.uid, gid)
    tmp_link = os.path.join(target, _TMP_LINK)
    if os.path.lexists(tmp_link):
        os.unlink(tmp_link)
    os.symlink(os.path.basename(new), tmp_link)
    os.rename(tmp_link, os.path.join(target, DATA_LINK))
    wanted = {p.split("/")[0] for p in payload}
    for name in sorted(wanted):
        link = os.path.join(target, name)
        if not os.path.lexists(link):
            os.symlink(os.path.join(DATA_LINK, name), link)
    for name in os.listdir(target):
        if name.startswith("..") or name in wanted:
            continue
        gone = os.path.join(target, name)
        if os.path.islink(gone):
            os.unlink(gone)
    if old is not None and os.path.isdir(old) and os.path.realpath(old) != os.path.realpath(new):
        _remove_tree(old)
    return True


def _remove_tree(path: str) -> None:
    import shutil
    shutil.rmtree(path, ignore_errors=True)
