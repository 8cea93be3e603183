"""Offline mode and the loopback test every registry contact goes through.

`kubelite server --offline`, `kubelite agent --offline` or `KUBELITE_OFFLINE=1` make a
node offline: it never contacts a registry off this machine and never even resolves a
registry's name. What stays allowed is decided from the text of the host alone: an IP
literal in 127.0.0.0/8 or ::1, or the name `localhost` (which /etc/hosts answers, no
DNS). Any other name is treated as off the machine, because telling otherwise would
take the very lookup offline mode promises not to make.
"""
from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping

ENV = "KUBELITE_OFFLINE"
_TRUE = {"1", "true", "yes", "on"}


def offline_from_env(environ: Mapping[str, str] | None = None) -> bool:
    """Whether `KUBELITE_OFFLINE` asks for offline mode (1, true, yes, on)."""
    env = os.environ if environ is None else environ
    return env.get(ENV, "").strip().lower() in _TRUE


def split_host_port(host: str) -> tuple[str, str]:
    """`[::1]:5000` → (`::1`, `5000`); `127.0.0.1:5000` → (`127.0.0.1`, `5000`); no port → ''."""
    if host.startswith("["):
        end = host.find("]")
        if end != -1:
            rest = host[end + 1:]
            return host[1:end], rest[1:] if rest.startswith(":") else ""
    if host.count(":") == 1:
        name, _, port = host.partition(":")
        return name, port
    return host, ""


def is_loopback_host(host: str) -> bool:
    """Whether a registry host (with or without port) is this machine, judged without a lookup."""
    name, _ = split_host_port(host)
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def offline_reason(host: str) -> str:
    """The sentence a refused pull carries: the node is offline and `host` is off this machine."""
    return (f"node is offline ({ENV}=1 or --offline): registry {host} is not on this machine and is "
            f"not contacted (not even resolved); only the local image store and registries at a "
            f"loopback address are used")
