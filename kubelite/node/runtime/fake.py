"""The fake runtime (kwok-like): pods and containers without processes, for scale work.

Images still resolve through the real store, so a missing image fails to pull exactly
as with the process runtime. A started container counts as running after
`delay` seconds and stays so until stopped; it writes no output, so its log is
an empty file. Pod IPs come from the node's pod CIDR but nothing listens on them.
"""
from __future__ import annotations

import asyncio
import ipaddress
import os
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from ...images.store import ImageStore, default_root
from .base import ContainerHandle, ExecSession, ExitInfo, ImageInfo, Sandbox
from .netns import DEFAULT_POD_CIDR


def _now() -> datetime:
    return datetime.now(UTC)


class FakeRuntime:
    """Containers that exist only as records."""

    serves_ports = False  # nothing listens in a fake pod, so no gate may wait for its ports

    def __init__(self, data_dir: str, *, images: ImageStore | None = None, delay: float = 0.0,
                 pod_cidr: str = DEFAULT_POD_CIDR):
        self.data_dir = data_dir
        self.images = images or ImageStore(default_root(data_dir))
        self.start_delay = delay
        self.net = ipaddress.ip_network(pod_cidr, strict=False)
        self._next_ip = 1
        self._free_ips: list[str] = []
        self._sandboxes: dict[str, Sandbox] = {}
        self._exits: dict[str, asyncio.Future] = {}
        self._handles: dict[str, ContainerHandle] = {}
        self._logs_dir = os.path.join(data_dir, "fake-logs")

    async def pull(self, ref: str, secrets: Sequence[dict] = ()) -> ImageInfo:
        """Resolve `ref` in the store (no unpacking); raise ImageNotFound if absent."""
        image = await asyncio.to_thread(self.images.resolve, ref)
        if image is None:
            await asyncio.to_thread(self.images.pull, ref)  # raises ImageNotFound with the right text
        return image

    async def create_sandbox(self, pod: dict) -> Sandbox:
        """Record the pod and give it an address from the pod CIDR."""
        meta = pod.get("metadata", {})
        uid = meta.get("uid") or str(uuid.uuid4())
        if uid not in self._sandboxes:
            self._sandboxes[uid] = Sandbox(uid=uid, namespace=meta.get("namespace", "default"),
                                           name=meta.get("name", ""), ip=self._allocate(),
                                           dir=os.path.join(self.data_dir, "pods", uid), created_at=_now())
        return self._sandboxes[uid]

    def _allocate(self) -> str:
        if self._free_ips:
            return self._free_ips.pop()
        self._next_ip += 1
        if self._next_ip >= self.net.num_addresses - 1:
            raise RuntimeError(f"fake runtime: pod CIDR {self.net} exhausted")
        return str(self.net.network_address + self._next_ip)

    async def start_container(self, sandbox: Sandbox, pod: dict, container: dict, image: ImageInfo,
                              env: dict[str, str]) -> ContainerHandle:
        """Become running after the configured delay."""
        if self.start_delay > 0:
            await asyncio.sleep(self.start_delay)
        cid = uuid.uuid4().hex
        handle = ContainerHandle(id=cid, name=container["name"], sandbox_uid=sandbox.uid, started_at=_now(),
                                 log_path=os.path.join(self._logs_dir, f"{cid}.log"), image=image.ref)
        self._exits[cid] = asyncio.get_running_loop().create_future()
        self._handles[cid] = handle
        return handle

    async def stop_container(self, handle: ContainerHandle, grace: float) -> None:
        """Exit at once with code 0."""
        fut = self._exits.get(handle.id)
        if fut is not None and not fut.done():
            fut.set_result(ExitInfo(exit_code=0, reason="Completed", finished_at=_now()))

    async def wait(self, handle: ContainerHandle) -> ExitInfo:
        """Wait until the container is stopped."""
        return await asyncio.shield(self._exits[handle.id])

    def is_running(self, handle: ContainerHandle) -> bool:
        """Whether the container has not been stopped."""
        fut = self._exits.get(handle.id)
        return fut is not None and not fut.done()

    async def remove_sandbox(self, sandbox: Sandbox) -> None:
        """Stop the pod's containers and forget it."""
        for handle in [h for h in self._handles.values() if h.sandbox_uid == sandbox.uid]:
            await self.stop_container(handle, 0)
            self._handles.pop(handle.id, None)
            self._exits.pop(handle.id, None)
        if self._sandboxes.pop(sandbox.uid, None) is not None:
            self._free_ips.append(sandbox.ip)

    async def exec(self, sandbox: Sandbox, handle: ContainerHandle, command: list[str], tty: bool,
                   env: dict[str, str] | None = None) -> ExecSession:
        """A command that prints nothing and exits 0."""
        impl = _NullExec(tty)
        return ExecSession(stdout=impl.stdout, stderr=impl.stderr, _impl=impl)

    async def open_port(self, sandbox: Sandbox, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Nothing listens in a fake pod."""
        raise ConnectionRefusedError(f"fake pod {sandbox.namespace}/{sandbox.name} has no port {port}")

    def log_path(self, handle: ContainerHandle) -> str:
        """An empty log file (created on demand)."""
        if not os.path.exists(handle.log_path):
            os.makedirs(self._logs_dir, exist_ok=True)
            open(handle.log_path, "ab").close()
        return handle.log_path

    async def cleanup_all(self) -> None:
        """Forget every pod."""
        for sandbox in list(self._sandboxes.values()):
            await self.remove_sandbox(sandbox)


class _NullExec:
    def __init__(self, tty: bool):
        self.stdout = asyncio.StreamReader()
        self.stdout.feed_eof()
        self.stderr = None
        if not tty:
            self.stderr = asyncio.StreamReader()
            self.stderr.feed_eof()

    async def write(self, data: bytes) -> None:
        pass

    async def close_stdin(self) -> None:
        pass

    def resize(self, width: int, height: int) -> None:
        pass

    async def wait(self) -> int:
        return 0

    async def kill(self) -> None:
        pass
