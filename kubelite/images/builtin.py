"""The tutorial's sample images, built on this machine into the local store.

This module only says what each image holds; the store (store.py) adds it when a
reference names one, and the node agent preloads them at start.

An image has two layers:

- a userland taken from this machine's Debian packages: BusyBox (`busybox-static`) with
  its applets as links in /bin (`sh`, `tar`, `ls`, …), the real `bash` and `curl` with
  the shared libraries `ldd` finds for them, a few terminfo entries, and /etc files for
  root. It is the same for every version, so the store keeps one copy of it. It is left
  uncompressed: it is built from host files at every start, and gzip would cost seconds.
- the app (bootcamp_app.py): `start.sh`, the CGI script and `server.js` under /app.

So the images run on the oci runtime, which shows a container nothing of the host, and
on the process runtime alike. Builds are deterministic: the same host packages give the
same digests.
"""
from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from typing import Any

from .bootcamp_app import app_files
from .layers import Entry, build_tar

# normalised name -> app version
BUILTIN_IMAGES: dict[str, str] = {
    "gcr.io/google-samples/kubernetes-bootcamp:v1": "1",
    "docker.io/jocatalin/kubernetes-bootcamp:v1": "1",
    "docker.io/jocatalin/kubernetes-bootcamp:v2": "2",
}

_ENV = [
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
]

# Debian packages the userland is taken from (.ci/run installs them).
PACKAGES = "busybox-static bash curl ncurses-base"
_TERMINFO = ("d/dumb", "l/linux", "v/vt100", "v/vt220", "x/xterm", "x/xterm-256color", "x/xterm-color",
             "s/screen", "s/screen-256color", "t/tmux", "t/tmux-256color")
_TERMINFO_DIRS = ("/lib/terminfo", "/usr/share/terminfo")
_LDD_LINE = re.compile(r"^\s*(?:\S+\s+=>\s+)?(/\S+)\s+\(0x[0-9a-f]+\)\s*$")

_ETC = {
    "etc/passwd": "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n",
    "etc/group": "root:x:0:\nnogroup:x:65534:\n",
    "etc/nsswitch.conf": "passwd: files\ngroup: files\nhosts: files dns\n",
    # Read by Debian's bash for every interactive shell: a prompt like the original image's.
    "etc/bash.bashrc": "PS1='\\u@\\h:\\w\\$ '\n",
}


class BuildError(Exception):
    """A built-in image cannot be built on this machine (the message says what is missing)."""


def is_builtin(name: str) -> bool:
    """Whether the normalised `name` is one of the built-in images."""
    return name in BUILTIN_IMAGES


def _which(name: str) -> str:
    path = shutil.which(name) or next((p for p in (f"/bin/{name}", f"/usr/bin/{name}") if os.path.exists(p)), None)
    if path is None:
        raise BuildError(f"the built-in bootcamp images need `{name}` on this machine "
                         f"(Debian: apt-get install {PACKAGES})")
    return path


def shared_libraries(binary: str) -> list[str]:
    """The paths `ldd` names for what `binary` loads (the dynamic loader included); [] if static."""
    try:
        out = subprocess.run(["ldd", binary], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    found = []
    for line in out.splitlines():
        m = _LDD_LINE.match(line)
        if m:
            found.append(m.group(1))
    return found


def _read(path: str) -> bytes:
    with open(os.path.realpath(path), "rb") as f:
        return f.read()


@functools.cache
def userland_layer() -> bytes:
    """The layer every built-in image shares (built once per process from the host's files)."""
    entries: dict[str, Entry] = {}
    busybox = _which("busybox")
    entries["bin/busybox"] = Entry(mode=0o755, data=_read(busybox))
    bash, curl = _which("bash"), _which("curl")
    entries["bin/bash"] = Entry(mode=0o755, data=_read(bash))
    entries["usr/bin/curl"] = Entry(mode=0o755, data=_read(curl))
    for lib in sorted({lib for b in (busybox, bash, curl) for lib in shared_libraries(b)}):
        entries[lib.lstrip("/")] = Entry(mode=0o755, data=_read(lib))
    try:
        applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, timeout=30).stdout.split()
    except (OSError, subprocess.TimeoutExpired) as e:
        raise BuildError(f"{busybox} --list: {e}") from None
    for applet in applets:
        if "/" not in applet and f"bin/{applet}" not in entries and f"usr/bin/{applet}" not in entries:
            entries[f"bin/{applet}"] = Entry(link="busybox")
    for term in _TERMINFO:
        src = next((os.path.join(d, term) for d in _TERMINFO_DIRS if os.path.exists(os.path.join(d, term))), None)
        if src is not None:
            entries[f"lib/terminfo/{term}"] = Entry(data=_read(src))
    for path, text in _ETC.items():
        entries[path] = Entry(data=text.encode())
    entries["etc/hostname"] = Entry(data=b"")
    entries["etc/hosts"] = Entry(data=b"127.0.0.1\tlocalhost\n")
    entries["etc/resolv.conf"] = Entry(data=b"")
    for d, mode in (("tmp", 0o1777), ("root", 0o700), ("proc", 0o755), ("sys", 0o755), ("dev", 0o755),
                    ("usr/local/bin", 0o755), ("sbin", 0o755), ("usr/sbin", 0o755), ("var/tmp", 0o1777)):
        entries[d] = Entry(mode=mode, directory=True)
    return build_tar(entries, compress=False)


def contents(name: str) -> tuple[list[bytes], dict[str, Any]]:
    """The layers and OCI config section of the built-in image `name` (normalised)."""
    version = BUILTIN_IMAGES[name]
    app = build_tar({path: Entry(mode=mode, data=data) for path, (data, mode) in app_files(version).items()})
    config = {
        "Cmd": ["sh", "start.sh"],
        "Env": list(_ENV),
        "WorkingDir": "/app",
        "ExposedPorts": {"8080/tcp": {}},
    }
    return [userland_layer(), app], config
