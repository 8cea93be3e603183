"""Unpacking an image from the store into a root filesystem directory, with Debian's `umoci`.

umoci applies the layers in order, honours whiteouts (`.wh.x`, opaque directories),
refuses paths that escape the target, never writes through a symlink an earlier layer
made, and checks every blob it reads against its digest. It needs an OCI layout
naming the image by a tag, so each unpack makes a throw-away layout whose `blobs`
is a symlink to the store's own blobs and whose index holds just this manifest.

`--rootless` is used whoever runs it: files belong to the node agent's user and
device nodes are skipped, which is what the process runtime can use (its
containers run as the agent's user).

Afterwards absolute symlinks are rewritten as relative ones that reach the same
file inside the root. A container of the process runtime is not chrooted, so a link
such as `/bin/sh -> /bin/busybox` would otherwise lead to the host's file when the
runtime or the container follows it; the relative form keeps it in the image, and
means the same thing for a runtime that does chroot.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile

UMOCI = "umoci"
_TAG = "image"


class UnpackError(Exception):
    """The image could not be unpacked."""


def available() -> bool:
    """Whether umoci is installed."""
    return shutil.which(UMOCI) is not None


def unpack(store_root: str, manifest: dict, target: str) -> None:
    """Unpack the image whose manifest descriptor is `manifest` into the empty directory `target`."""
    layout = tempfile.mkdtemp(prefix=".layout-", dir=store_root)
    try:
        with open(os.path.join(layout, "oci-layout"), "w") as f:
            json.dump({"imageLayoutVersion": "1.0.0"}, f)
        desc = {k: manifest[k] for k in ("mediaType", "digest", "size") if k in manifest}
        desc["annotations"] = {"org.opencontainers.image.ref.name": _TAG}
        with open(os.path.join(layout, "index.json"), "w") as f:
            json.dump({"schemaVersion": 2, "manifests": [desc]}, f)
        os.symlink(os.path.join(os.path.abspath(store_root), "blobs"), os.path.join(layout, "blobs"))
        proc = subprocess.run([shutil.which(UMOCI) or UMOCI, "raw", "unpack", "--rootless", "--image",
                               f"{layout}:{_TAG}", target], capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            detail = proc.stderr.strip().splitlines()
            raise UnpackError(f"unpacking {manifest.get('digest')}: {detail[-1] if detail else 'umoci failed'}")
    finally:
        shutil.rmtree(layout, ignore_errors=True)
    relativize_symlinks(target)


def relativize_symlinks(root: str) -> int:
    """Rewrite every absolute symlink under `root` as a relative link to the same place in `root`."""
    changed = 0
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                continue
            target = os.readlink(path)
            if not target.startswith("/"):
                continue
            # "/../x" is "/x" at the root, as the kernel reads it inside a chroot.
            inside = os.path.normpath(target).lstrip("/")
            # The link's own directory is a real directory (os.walk does not follow links),
            # so a path relative to it, climbing to the root, names the image's file.
            depth = os.path.relpath(dirpath, root).count(os.sep) + (0 if dirpath == root else 1)
            rel = os.path.join(*([".."] * depth), inside) if depth else inside
            os.unlink(path)
            os.symlink(rel or ".", path)
            changed += 1
    return changed
