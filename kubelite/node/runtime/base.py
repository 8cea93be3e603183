"""The small interface between the node agent and a container runtime (our CRI).

The node agent drives a pod through: `pull` each image → `create_sandbox` (pod dir and
network, gives the pod IP) → `start_container` per container → `wait` for its exit /
`stop_container` → `remove_sandbox`. `exec`, `open_port` and `log_path` serve
`kubectl exec`, `port-forward` and `logs`. Everything is asyncio; records are small
dataclasses, pods and containers are the API's plain dicts.
"""
from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from ...images.store import ImageConfig, ImageNotFound, ImageStore  # noqa: F401  (ImageNotFound re-exported)

ImageInfo = ImageConfig


class RuntimeFailure(Exception):
    """Base of runtime failures a caller can catch as one."""


class StartError(RuntimeFailure):
    """The container could not be started; the node reports reason StartError, exit code 128."""

    reason = "StartError"
    exit_code = 128

    def __init__(self, detail: str):
        self.detail = detail
        # The shape containerd+runc give the kubelet for a start failure.
        super().__init__(
            "failed to create containerd task: failed to create shim task: OCI runtime create failed: "
            f"runc create failed: unable to start container process: {detail}: unknown"
        )


@dataclass
class Sandbox:
    """A pod's shared environment: its directory and network."""

    uid: str
    namespace: str
    name: str
    ip: str
    dir: str
    netns: str | None = None          # network namespace name, None on the host network
    created_at: datetime | None = None


@dataclass(frozen=True)
class Mount:
    """A volume as a container sees it: host path `source` at `destination`, maybe read-only."""

    source: str
    destination: str
    readonly: bool = False


@dataclass
class ContainerHandle:
    """One started container instance (a restart gives a new handle)."""

    id: str
    name: str
    sandbox_uid: str
    started_at: datetime
    log_path: str
    attempt: int = 0
    pid: int | None = None
    image: str = ""


@dataclass
class ExitInfo:
    """How a container ended, in the terms of a terminated ContainerState."""

    exit_code: int
    reason: str                       # Completed, Error, OOMKilled, StartError
    finished_at: datetime
    message: str = ""
    signal: int | None = None


@dataclass
class ExecSession:
    """A running `kubectl exec`: write stdin, read stdout/stderr (one stream with a tty)."""

    stdout: asyncio.StreamReader
    stderr: asyncio.StreamReader | None
    _impl: ExecImpl = field(repr=False)

    async def write(self, data: bytes) -> None:
        """Send bytes to the command's stdin."""
        await self._impl.write(data)

    async def close_stdin(self) -> None:
        """Close the command's stdin (EOF)."""
        await self._impl.close_stdin()

    def resize(self, width: int, height: int) -> None:
        """Set the terminal size (tty sessions only)."""
        self._impl.resize(width, height)

    async def wait(self) -> int:
        """Wait for the command; return its exit code (128+N when killed by signal N)."""
        return await self._impl.wait()

    async def kill(self) -> None:
        """Stop the command (client went away)."""
        await self._impl.kill()


class ExecImpl(Protocol):
    """The runtime-specific half of an ExecSession (a pipe or a pty process)."""

    async def write(self, data: bytes) -> None:
        """Send bytes to the command's stdin."""

    async def close_stdin(self) -> None:
        """Close the command's stdin."""

    def resize(self, width: int, height: int) -> None:
        """Set the terminal size (a no-op without a tty)."""

    async def wait(self) -> int:
        """The command's exit code, once it ends."""

    async def kill(self) -> None:
        """Stop the command and what it started."""


@runtime_checkable
class Runtime(Protocol):
    """What the node agent needs from a container runtime."""

    @property
    def images(self) -> ImageStore:
        """The node's local image store (what `pull` resolves against)."""

    @property
    def serves_ports(self) -> bool:
        """Whether a container's declared ports are really listened on (False: a simulation)."""

    def reap_orphans(self) -> int:
        """Stop what an earlier agent on the same data directory left running; how many."""

    def probe_result(self, handle: ContainerHandle, kind: str) -> tuple[bool, str] | None:
        """The runtime's own answer to a probe or hook of a container, or None: run it for real."""

    async def pull(self, ref: str, secrets: Sequence[dict] = ()) -> ImageInfo:
        """Make the image available locally (with the pod's pull Secrets); raise ImageNotFound on failure."""

    async def create_sandbox(self, pod: dict) -> Sandbox:
        """Create the pod's directory and network; idempotent per pod uid."""

    async def start_container(self, sandbox: Sandbox, pod: dict, container: dict, image: ImageInfo,
                              env: dict[str, str], mounts: Sequence[Mount] = ()) -> ContainerHandle:
        """Start one container of the pod with its volume `mounts`; raise StartError if it cannot start."""

    async def stop_container(self, handle: ContainerHandle, grace: float) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds; returns when everything is gone."""

    async def wait(self, handle: ContainerHandle) -> ExitInfo:
        """Wait for the container to exit."""

    async def remove_sandbox(self, sandbox: Sandbox) -> None:
        """Stop what is left in the pod and release its network and directory."""

    async def exec(self, sandbox: Sandbox, handle: ContainerHandle, command: list[str], tty: bool,
                   env: dict[str, str] | None = None) -> ExecSession:
        """Run a command in the container's environment."""

    async def open_port(self, sandbox: Sandbox, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Connect to a port of the pod (for port-forward)."""

    def log_path(self, handle: ContainerHandle) -> str:
        """The CRI log file of this container instance."""

    async def cleanup_all(self) -> None:
        """Stop every container and release every sandbox this runtime made."""


def exit_reason(exit_code: int) -> str:
    """Terminated reason for an exit code, as containerd reports it."""
    return "Completed" if exit_code == 0 else "Error"


def expand_vars(text: str, env: dict[str, str]) -> str:
    """Kubelet `$(VAR)` expansion: `$$` escapes, unknown references stay as written."""
    out = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "$" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "(":
                close = text.find(")", i + 2)
                if close != -1:
                    name = text[i + 2:close]
                    out.append(env[name] if name in env else text[i:close + 1])
                    i = close + 1
                    continue
        out.append(ch)
        i += 1
    return "".join(out)


def container_argv(image: ImageInfo, container: dict, env: dict[str, str]) -> list[str]:
    """The argv k8s runs: command replaces Entrypoint, args replace Cmd (and drop it with command)."""
    command = container.get("command")
    args = container.get("args")
    if command:
        argv = list(command) + list(args or [])
    else:
        argv = list(image.entrypoint) + list(args if args else image.cmd)
    return [expand_vars(a, env) for a in argv]
