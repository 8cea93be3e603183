"""The fake runtime (kwok-like): pods and containers without processes, for scale work.

Images still resolve through the real store, so a missing image fails to pull exactly
as with the process runtime. A started container counts as running after `delay`
seconds; it writes no output, so its log is an empty file.

Addresses: a fake pod's IP is in 127.0.0.0/8 whatever the node's network mode, in a
range of its own per fake node (the /20 of its fake-node slot in ``127.128.0.0/9``), clear of the process runtime's
host-network pods (127.1–127.90) and of the userspace service ranges (127.96.0.0/12). Nothing
listens there, and a packet for it never leaves the machine: whatever dials a fake pod
(the API server's pod proxy, a Service, a probe) gets a local "connection refused".

Behaviour comes from pod annotations (see README, "runtimes"), for the regular
containers of the pod or, with ``<container>.`` before the key, for one container:

- ``fake.kubelite.dev/exit-after: "5s"`` — the container exits that long after it starts;
- ``fake.kubelite.dev/exit-code: "1"`` — with that code (default 0; alone: exits at once);
- ``fake.kubelite.dev/never-ready: "true"`` — it runs but its readiness never succeeds;
- ``fake.kubelite.dev/oom-killed: "true"`` — its exits are reported as ``OOMKilled`` (code 137
  unless ``exit-code`` says otherwise), as the kernel's OOM killer would end it;
- ``fake.kubelite.dev/cpu-usage: "250m"``, ``fake.kubelite.dev/memory-usage: "64Mi"`` — the
  usage the node's summary (and so ``kubectl top`` and autoscalers) reports for it; read
  on every measurement, so changing the annotation changes the usage (default: zero).

Init containers exit with code 0 right after starting unless annotated by name. The node
agent restarts, backs off and reports these exits exactly as real ones. Probes and
lifecycle hooks are answered by `probe_result`, never by dialling the pod.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from ...api import quantity
from ...images.store import ImageStore, default_root
from .base import ContainerHandle, ExecSession, ExitInfo, ImageInfo, Mount, Sandbox, exit_reason
from .usage import Usage

log = logging.getLogger("kubelite.node")

ANNOTATION_PREFIX = "fake.kubelite.dev/"
EXIT_AFTER = "exit-after"
EXIT_CODE = "exit-code"
NEVER_READY = "never-ready"
OOM_KILLED = "oom-killed"
CPU_USAGE = "cpu-usage"
MEMORY_USAGE = "memory-usage"
# Fake nodes' pod ranges: /20 blocks of 127.128.0.0/9, one per fake-node slot (netslot.py's
# fake pool): 2,048 nodes of 4,094 addresses each, clear of the process runtime's host ranges
# (127.1–127.90) and of the userspace service ranges (127.96.0.0/12).
FAKE_SUPERNET = ipaddress.IPv4Network("127.128.0.0/9")
FAKE_NODE_PREFIX = 20
LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")


def pod_cidr_for_slot(index: int) -> str:
    """The fake pod range of fake-node slot ``index``."""
    size = 1 << (32 - FAKE_NODE_PREFIX)
    if not 0 <= index < FAKE_SUPERNET.num_addresses // size:
        raise ValueError(f"no fake pod range for slot {index}")
    return f"{FAKE_SUPERNET.network_address + index * size}/{FAKE_NODE_PREFIX}"


DEFAULT_POD_CIDR = pod_cidr_for_slot(0)


def _now() -> datetime:
    return datetime.now(UTC)


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds in a Go duration ("1m30s", "500ms") or a plain number of seconds; ValueError otherwise."""
    s = text.strip()
    try:
        value = float(s)
    except ValueError:
        pos, value = 0, 0.0
        for m in _DURATION_PART.finditer(s):
            if m.start() != pos:
                break
            value += float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
            pos = m.end()
        if pos != len(s) or not s:
            raise ValueError(f"not a duration: {text!r}") from None
    if value < 0 or value != value:
        raise ValueError(f"not a duration: {text!r}")
    return value


@dataclass(frozen=True)
class Behaviour:
    """How one fake container acts, from the pod's annotations."""

    exit_after: float | None = None   # None: runs until stopped
    exit_code: int = 0
    never_ready: bool = False
    oom_killed: bool = False


def behaviour(pod: dict, container: str, *, init: bool = False) -> Behaviour:
    """The behaviour the pod's annotations give ``container`` (bad values are ignored, logged)."""
    ann = (pod.get("metadata") or {}).get("annotations") or {}

    def value(key: str) -> str | None:
        own = ann.get(f"{ANNOTATION_PREFIX}{container}.{key}")
        if own is not None or init:
            return own
        return ann.get(f"{ANNOTATION_PREFIX}{key}")

    exit_after: float | None = 0.0 if init else None
    exit_code = 0
    raw_after, raw_code, raw_ready = value(EXIT_AFTER), value(EXIT_CODE), value(NEVER_READY)
    oom = (value(OOM_KILLED) or "").strip().lower() == "true"
    if oom and raw_code is None:
        raw_code = "137"
    if raw_code is not None:
        try:
            exit_code = int(raw_code)
            if not 0 <= exit_code <= 255:
                raise ValueError
            if exit_after is None:
                exit_after = 0.0
        except ValueError:
            log.warning("fake runtime: %s%s=%r is not an exit code (0-255); ignored", ANNOTATION_PREFIX, EXIT_CODE,
                        raw_code)
            exit_code = 0
    if raw_after is not None:
        try:
            exit_after = parse_duration(raw_after)
        except ValueError:
            log.warning("fake runtime: %s%s=%r is not a duration; ignored", ANNOTATION_PREFIX, EXIT_AFTER, raw_after)
    return Behaviour(exit_after=exit_after, exit_code=exit_code,
                     never_ready=(raw_ready or "").strip().lower() == "true", oom_killed=oom)


class FakeRuntime:
    """Containers that exist only as records."""

    serves_ports = False  # nothing listens in a fake pod, so no gate may wait for its ports

    def __init__(self, data_dir: str, *, images: ImageStore | None = None, delay: float = 0.0,
                 pod_cidr: str = DEFAULT_POD_CIDR):
        self.data_dir = data_dir
        self.images = images or ImageStore(default_root(data_dir))
        self.start_delay = delay
        # Safety, not style: an address outside loopback would send packets off the machine.
        refusal = f"fake pod addresses must be in 127.0.0.0/8, got {pod_cidr}"
        try:
            self.net = ipaddress.IPv4Network(pod_cidr, strict=False)
        except ValueError:
            raise ValueError(refusal) from None
        if not self.net.subnet_of(LOOPBACK):
            raise ValueError(refusal)
        self.pod_cidr = str(self.net)
        self._next_ip = 1
        self._free_ips: list[str] = []
        self._sandboxes: dict[str, Sandbox] = {}
        self._exits: dict[str, asyncio.Future[ExitInfo]] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._handles: dict[str, ContainerHandle] = {}
        self._behaviour: dict[str, Behaviour] = {}
        self._logs_dir = os.path.join(data_dir, "fake-logs")
        # CPU time so far per container: (when last measured, nanoseconds), integrated from
        # the annotated rate so a rate change moves the counter's slope, not its value.
        self._cpu: dict[str, tuple[float, float]] = {}

    async def pull(self, ref: str, secrets: Sequence[dict] = ()) -> ImageInfo:
        """Resolve `ref` in the store (no unpacking); raise ImageNotFound if absent."""
        image = await asyncio.to_thread(self.images.resolve, ref)
        if image is None:
            return await asyncio.to_thread(self.images.pull, ref)  # raises ImageNotFound with the right text
        return image

    async def create_sandbox(self, pod: dict) -> Sandbox:
        """Record the pod and give it a loopback address from the pod range."""
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
            raise RuntimeError(f"fake runtime: pod range {self.net} exhausted")
        return str(self.net.network_address + self._next_ip)

    async def start_container(self, sandbox: Sandbox, pod: dict, container: dict, image: ImageInfo,
                              env: dict[str, str], mounts: Sequence[Mount] = ()) -> ContainerHandle:
        """Become running after the configured delay; exit later if the annotations say so."""
        if self.start_delay > 0:
            await asyncio.sleep(self.start_delay)
        cid = uuid.uuid4().hex
        handle = ContainerHandle(id=cid, name=container["name"], sandbox_uid=sandbox.uid, started_at=_now(),
                                 log_path=os.path.join(self._logs_dir, f"{cid}.log"), image=image.ref)
        loop = asyncio.get_running_loop()
        self._exits[cid] = loop.create_future()
        self._handles[cid] = handle
        init_names = {c.get("name") for c in (pod.get("spec") or {}).get("initContainers") or []}
        b = behaviour(pod, container["name"], init=container["name"] in init_names)
        self._behaviour[cid] = b
        if b.exit_after is not None:
            self._timers[cid] = loop.call_later(b.exit_after, self._exit, cid, b.exit_code, b.oom_killed)
        return handle

    def _exit(self, cid: str, code: int, oom: bool = False) -> None:
        self._timers.pop(cid, None)
        fut = self._exits.get(cid)
        if fut is not None and not fut.done():
            reason = "OOMKilled" if oom else exit_reason(code)
            fut.set_result(ExitInfo(exit_code=code, reason=reason, finished_at=_now()))

    async def stop_container(self, handle: ContainerHandle, grace: float) -> None:
        """Exit at once with code 0."""
        timer = self._timers.pop(handle.id, None)
        if timer is not None:
            timer.cancel()
        self._exit(handle.id, 0)

    async def wait(self, handle: ContainerHandle) -> ExitInfo:
        """Wait until the container exits or is stopped."""
        return await asyncio.shield(self._exits[handle.id])

    def is_running(self, handle: ContainerHandle) -> bool:
        """Whether the container has neither exited nor been stopped."""
        fut = self._exits.get(handle.id)
        return fut is not None and not fut.done()

    def probe_result(self, handle: ContainerHandle, kind: str) -> tuple[bool, str]:
        """What a probe (startup, readiness, liveness) or hook of this container reports: no dialling.

        Everything succeeds except readiness of a never-ready container."""
        b = self._behaviour.get(handle.id) or Behaviour()
        if kind == "readiness" and b.never_ready:
            return False, f"fake container {handle.name} is never ready ({ANNOTATION_PREFIX}{NEVER_READY})"
        return True, ""

    def container_usage(self, handle: ContainerHandle, pod: dict) -> Usage | None:
        """The usage the pod's annotations give this container (zero without them)."""
        if not self.is_running(handle):
            return None
        ann = (pod.get("metadata") or {}).get("annotations") or {}

        def value(key: str) -> str | None:
            own = ann.get(f"{ANNOTATION_PREFIX}{handle.name}.{key}")
            return own if own is not None else ann.get(f"{ANNOTATION_PREFIX}{key}")

        try:
            rate_milli = quantity.milli(value(CPU_USAGE) or "0")
            memory = quantity.value(value(MEMORY_USAGE) or "0")
        except (ValueError, ArithmeticError):
            log.warning("fake runtime: bad usage annotation on %s; reporting zero", handle.name)
            rate_milli, memory = 0, 0
        now = _now().timestamp()
        last, used = self._cpu.get(handle.id, (handle.started_at.timestamp(), 0.0))
        used += max(0.0, now - last) * rate_milli * 1_000_000  # milli-cores × s → ns
        self._cpu[handle.id] = (now, used)
        return Usage(cpu_ns=int(used), memory_bytes=max(0, memory))

    async def remove_sandbox(self, sandbox: Sandbox) -> None:
        """Stop the pod's containers and forget it."""
        for handle in [h for h in self._handles.values() if h.sandbox_uid == sandbox.uid]:
            await self.stop_container(handle, 0)
            self._handles.pop(handle.id, None)
            self._exits.pop(handle.id, None)
            self._behaviour.pop(handle.id, None)
            self._cpu.pop(handle.id, None)
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

    def reap_orphans(self) -> int:
        """Nothing of a fake pod outlives its agent."""
        return 0


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
