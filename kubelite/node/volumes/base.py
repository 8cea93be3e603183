"""What every volume kind shares: the failure a mount reports, and what the volume code
asks of its node (objects and tokens through the API; it never reads the store)."""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol

from kubelite.api import quantity

Obj = dict[str, Any]
Ref = tuple[str, str, str]          # (kind, namespace, name) of a ConfigMap or Secret
DEFAULT_MODE = 0o644


class SetupError(Exception):
    """A volume could not be set up; the message is the part after upstream's
    `MountVolume.SetUp failed for volume "x" : `."""


class VolumeAPI(Protocol):
    """The API calls volumes need; the node agent provides them (as an API client)."""

    async def get_object(self, kind: str, namespace: str, name: str) -> Obj | None:
        """A ConfigMap or Secret (kind "ConfigMap"/"Secret"), or None when it does not exist."""

    async def get_storage(self, kind: str, namespace: str, name: str) -> Obj | None:
        """A PersistentVolumeClaim or PersistentVolume (kind as named), or None when it does not exist."""

    async def request_token(self, namespace: str, service_account: str, request: Obj) -> Obj:
        """POST a TokenRequest for the ServiceAccount; the answered TokenRequest."""

    def watch_objects(self, owner: str, refs: set[Ref], on_change: Callable[[], None]) -> None:
        """Call `on_change` whenever one of `refs` changes (replaces `owner`'s earlier set)."""

    def forget(self, owner: str) -> None:
        """Stop watching for `owner`."""


def mode_of(value: object, default: int) -> int:
    """A mode from the API (an int, as JSON carries it), else `default`."""
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else default


def aggregate(errors: list[str]) -> str:
    """Several errors in one message, as upstream's error aggregate prints them."""
    return errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"


def go_quote(value: str) -> str:
    """`value` in double quotes with Go's %q escapes (the downward API's label files)."""
    out = ['"']
    for ch in value:
        code = ord(ch)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def format_map(m: dict[str, str]) -> str:
    """Labels or annotations as the downward API writes them: sorted `k="v"` lines."""
    return "\n".join(f"{k}={go_quote(str(v))}" for k, v in sorted(m.items()))


def node_allocatable() -> dict[str, str]:
    """What a container without a limit is told its limit is: the node's capacity."""
    import os
    mem = 0
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem = int(line.split()[1]) * 1024
    except OSError:
        pass
    return {"cpu": str(os.cpu_count() or 1), "memory": str(mem), "ephemeral-storage": "0"}


def resource_value(container: Obj, resource: str, divisor: object) -> str:
    """A resourceFieldRef's value: the request or limit divided by `divisor`, rounded up."""
    kind, _, name = resource.partition(".")
    res = (container.get("resources") or {}).get(kind) or {}
    raw = res.get(name)
    if raw is None and kind == "limits":
        raw = node_allocatable().get(name, "0")  # no limit: the node's allocatable, as upstream
    if name == "cpu":
        div = quantity.milli(str(divisor)) if divisor else 1000
        return str(math.ceil(quantity.milli(raw) / (div or 1)))
    div = quantity.value(str(divisor)) if divisor else 1
    return str(math.ceil(quantity.parse(raw) / (div or 1)))
