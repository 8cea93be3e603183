"""Image layers: deterministic gzipped tars to build, and OCI extraction to apply them.

Built layers carry fixed timestamps and no ownership, so the same files give the same
digest on every machine. Applying a layer honours OCI whiteouts and refuses members that
would escape the target directory, as the "data" extraction filter does.
"""
from __future__ import annotations

import gzip
import io
import os
import shutil
import tarfile
from dataclasses import dataclass

# Fixed timestamps make built images byte-identical, so their digests are stable.
EPOCH = 0


def build_layer(files: dict[str, tuple[bytes, int]]) -> bytes:
    """A deterministic gzipped tar from {path: (content, mode)}; parent dirs are added."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs = sorted({os.path.dirname(p).strip("/") for p in files} - {""})
        for d in _with_parents(dirs):
            info = tarfile.TarInfo(d + "/")
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, EPOCH
            tar.addfile(info)
        for path in sorted(files):
            content, mode = files[path]
            info = tarfile.TarInfo(path.strip("/"))
            info.size, info.mode, info.mtime = len(content), mode, EPOCH
            tar.addfile(info, io.BytesIO(content))
    return _gzip(raw.getvalue())


@dataclass(frozen=True)
class Entry:
    """One member of a built layer: a file (`data`), a directory, or a symlink (`link`)."""

    mode: int = 0o644
    data: bytes = b""
    link: str = ""
    directory: bool = False


def build_tar(entries: dict[str, Entry], *, compress: bool = True) -> bytes:
    """A deterministic tar (gzipped unless `compress` is False) of `entries`; parent dirs are added.

    Paths are relative to the image root. Big layers of host binaries are left uncompressed:
    gzip would cost seconds at every start and save nothing on a local disk."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        explicit = {p.strip("/") for p, e in entries.items() if e.directory}
        parents = sorted({os.path.dirname(p.strip("/")) for p in entries} - {""})
        for d in _with_parents(parents):
            if d not in explicit:
                info = tarfile.TarInfo(d + "/")
                info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, EPOCH
                tar.addfile(info)
        for path in sorted(entries, key=lambda p: p.strip("/")):
            e = entries[path]
            name = path.strip("/")
            if e.directory:
                info = tarfile.TarInfo(name + "/")
                info.type = tarfile.DIRTYPE
            else:
                info = tarfile.TarInfo(name)
            info.mode, info.mtime = e.mode, EPOCH
            if e.link:
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, e.link, 0o777
                tar.addfile(info)
            elif e.directory:
                tar.addfile(info)
            else:
                info.size = len(e.data)
                tar.addfile(info, io.BytesIO(e.data))
    return _gzip(raw.getvalue()) if compress else raw.getvalue()


def is_gzip(blob: bytes) -> bool:
    """Whether a layer blob is gzip-compressed (else a plain tar)."""
    return blob[:2] == b"\x1f\x8b"


def build_layer_from_dir(directory: str) -> bytes:
    """A gzipped tar of `directory`'s contents, paths relative to it, ownership dropped."""
    raw = io.BytesIO()

    def scrub(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info

    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in sorted(os.listdir(directory)):
            tar.add(os.path.join(directory, entry), arcname=entry, filter=scrub)
    return _gzip(raw.getvalue())


def _with_parents(dirs: list[str]) -> list[str]:
    out: set[str] = set()
    for d in dirs:
        parts = d.split("/")
        out.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))
    return sorted(out)


def _gzip(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=EPOCH) as gz:
        gz.write(data)
    return buf.getvalue()


def apply_layer(blob: bytes, media_type: str, target: str) -> None:
    """Extract one layer, honouring OCI whiteouts (`.wh.name` deletes `name`)."""
    data = gzip.decompress(blob) if media_type.endswith("gzip") else blob
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        members = []
        for m in tar.getmembers():
            base = os.path.basename(m.name)
            if base.startswith(".wh."):
                parent = os.path.join(target, os.path.dirname(m.name))
                if base == ".wh..wh..opq":
                    for child in os.listdir(parent) if os.path.isdir(parent) else []:
                        _remove(os.path.join(parent, child))
                else:
                    _remove(os.path.join(parent, base[4:]))
                continue
            members.append(m)
        if hasattr(tarfile, "data_filter"):
            # The "data" filter refuses absolute paths, `..` escapes and device files.
            tar.extractall(target, members=members, filter="data")
        else:  # Python < 3.11.4 (Debian 12's python3 is 3.11.2): the same refusals by hand
            tar.extractall(target, members=[_data_member(m) for m in members])


def _data_member(m: tarfile.TarInfo) -> tarfile.TarInfo:
    """`m` as the "data" extraction filter would pass it, or TarError."""
    def escapes(name: str) -> bool:
        norm = os.path.normpath(name)
        return os.path.isabs(name) or norm == ".." or norm.startswith("../")
    link_escapes = (m.issym() and escapes(os.path.join(os.path.dirname(m.name), m.linkname))) or \
        (m.islnk() and escapes(m.linkname))
    if escapes(m.name) or m.isdev() or link_escapes:
        raise tarfile.TarError(f"refusing layer member {m.name!r}")
    m.mode &= 0o755  # no setuid/setgid/sticky, no group/other write
    m.uid, m.gid, m.uname, m.gname = os.getuid(), os.getgid(), "", ""  # files belong to the agent
    return m


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.unlink(path)
