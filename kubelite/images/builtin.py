"""The tutorial's sample images, built into the local store the first time they are asked for.

This module only says what each image holds; the store (store.py) adds it when a
reference names one.

Each is one layer holding `/app/server.py` (bootcamp_app.py with its VERSION set) and is
run by the host's `python3` from `/app`, like the original `node server.js`. Builds are
deterministic, so every machine computes the same digests.
"""
from __future__ import annotations

import os
from typing import Any

from .layers import build_layer

# normalised name -> app version
BUILTIN_IMAGES: dict[str, str] = {
    "gcr.io/google-samples/kubernetes-bootcamp:v1": "1",
    "docker.io/jocatalin/kubernetes-bootcamp:v1": "1",
    "docker.io/jocatalin/kubernetes-bootcamp:v2": "2",
}

_ENV = [
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
]


def is_builtin(name: str) -> bool:
    """Whether the normalised `name` is one of the built-in images."""
    return name in BUILTIN_IMAGES


def app_source(version: str) -> bytes:
    """The bootcamp server script with its version baked in."""
    path = os.path.join(os.path.dirname(__file__), "bootcamp_app.py")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    marker = 'VERSION = "1"'
    if marker not in text:
        raise RuntimeError("bootcamp_app.py lost its VERSION marker")
    return text.replace(marker, f'VERSION = "{version}"', 1).encode()


def contents(name: str) -> tuple[list[bytes], dict[str, Any]]:
    """The layers and OCI config section of the built-in image `name` (normalised)."""
    version = BUILTIN_IMAGES[name]
    layer = build_layer({"app/server.py": (app_source(version), 0o644)})
    config = {
        "Cmd": ["python3", "server.py"],
        "Env": list(_ENV),
        "WorkingDir": "/app",
        "ExposedPorts": {"8080/tcp": {}},
    }
    return [layer], config
