"""The process runtime: every container is a host process.

A container starts from its image's unpacked root: the runtime copies the image rootfs
into the container's own directory (its "writable layer", fresh per start), resolves
the command against the image's PATH inside that copy first and the host second, and
runs it with the image's working directory as cwd, in a new session, inside the pod's
network (see netns.py).

Process lifetime mirrors a container with its own PID namespace: the container is the
whole session its first process leads. When that process exits, whatever it left
running in the session is killed, as the kernel does when a PID namespace's init
dies. Stopping sends SIGTERM to every session member, and SIGKILL after the grace
period. (A process that calls setsid() itself leaves the session; without cgroups we
cannot follow it — see the module report.)

Output is copied from pipes into a rotating CRI log (logs.py) in fixed-size chunks,
so a flooding process is slowed by the pipe instead of growing our memory.
"""
from __future__ import annotations

import asyncio
import fcntl
import functools
import itertools
import json
import logging
import os
import pty
import shutil
import signal
import sys
import termios
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ...dns.resolvconf import PodDNS
from ...images.offline import offline_from_env
from ...images.pull import Puller
from ...images.store import ImageConfig, ImageStore, default_root
from . import logs
from .base import (
    ContainerHandle,
    ExecSession,
    ExitInfo,
    ImageInfo,
    Mount,
    Sandbox,
    StartError,
    container_argv,
    exit_reason,
)
from .netns import DEFAULT_BRIDGE, DEFAULT_HOST_CIDR, DEFAULT_POD_CIDR, PodNetwork, make_network
from .oci import rootfs
from .ptyio import PtyStream
from .usage import Usage, session_usage

log = logging.getLogger(__name__)
CHUNK = 64 * 1024
# How long exited-leader leftovers may keep the output pipes open before we stop reading.
PIPE_DRAIN_TIMEOUT = 2.0


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Container:
    handle: ContainerHandle
    proc: asyncio.subprocess.Process
    writer: logs.LogWriter
    exited: asyncio.Event = field(default_factory=asyncio.Event)
    done: asyncio.Future[ExitInfo] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    outputs: tuple[int, int] = (-1, -1)   # read ends of the stdout and stderr pipes


class ProcessRuntime:
    """Containers as host processes, pods as directories plus a network (host or netns)."""

    serves_ports = True  # a container's declared ports are real listening sockets

    def __init__(self, data_dir: str, *, images: ImageStore | None = None, network: str = "host",
                 pod_cidr: str = DEFAULT_POD_CIDR, host_cidr: str = DEFAULT_HOST_CIDR,
                 bridge: str = DEFAULT_BRIDGE, log_max_size: int = logs.DEFAULT_MAX_SIZE,
                 log_max_files: int = logs.DEFAULT_MAX_FILES, pod_network: PodNetwork | None = None,
                 puller: Puller | None = None, dns: PodDNS | None = None):
        self.data_dir = data_dir
        self.dns = dns or PodDNS(offline=offline_from_env())
        self.pods_dir = os.path.join(data_dir, "pods")
        os.makedirs(self.pods_dir, exist_ok=True)
        self.images = images or ImageStore(default_root(data_dir))
        self.puller = puller or Puller(self.images)
        self.network = pod_network or make_network(network, pod_cidr=pod_cidr, host_cidr=host_cidr, bridge=bridge)
        self.log_max_size = log_max_size
        self.log_max_files = log_max_files
        self._sandboxes: dict[str, Sandbox] = {}
        self._containers: dict[str, _Container] = {}
        self._attempts: dict[tuple[str, str], itertools.count] = {}
        self._said_volumes = False

    # -- images and sandboxes -------------------------------------------------

    async def pull(self, ref: str, secrets: Sequence[dict] = ()) -> ImageInfo:
        """Pull `ref` into the store (registry or local) and unpack it; raise ImageNotFound on failure."""
        return await self.puller.pull(ref, secrets)

    async def create_sandbox(self, pod: dict) -> Sandbox:
        """Create the pod directory and network (idempotent per uid)."""
        meta = pod.get("metadata", {})
        uid = meta.get("uid") or str(uuid.uuid4())
        if uid in self._sandboxes:
            return self._sandboxes[uid]
        pod_dir = os.path.join(self.pods_dir, uid)
        os.makedirs(pod_dir, exist_ok=True)
        # The pod's resolv.conf, for reading only: a host process keeps the node's
        # /etc/resolv.conf (no mount namespace to put this one in its place).
        Path(pod_dir, "resolv.conf").write_text(self.dns.render(pod))
        ip, netns = await self.network.setup(uid)
        sandbox = Sandbox(uid=uid, namespace=meta.get("namespace", "default"), name=meta.get("name", ""),
                          ip=ip, dir=pod_dir, netns=netns, created_at=_now())
        Path(pod_dir, "sandbox.json").write_text(json.dumps({"uid": uid, "namespace": sandbox.namespace,
                                                             "name": sandbox.name, "ip": ip, "netns": netns}))
        self._sandboxes[uid] = sandbox
        return sandbox

    async def remove_sandbox(self, sandbox: Sandbox) -> None:
        """Kill the pod's remaining containers, release its network, delete its directory."""
        for c in [c for c in self._containers.values() if c.handle.sandbox_uid == sandbox.uid]:
            await self.stop_container(c.handle, 0)
            self._containers.pop(c.handle.id, None)
        await self.network.teardown(sandbox.uid)
        self._sandboxes.pop(sandbox.uid, None)
        for key in [k for k in self._attempts if k[0] == sandbox.uid]:
            del self._attempts[key]
        # A Memory emptyDir is a tmpfs below the pod's directory: unmounted before the delete.
        await asyncio.to_thread(rootfs.remove_tree, sandbox.dir)

    # -- containers -----------------------------------------------------------

    async def start_container(self, sandbox: Sandbox, pod: dict, container: dict, image: ImageInfo,
                              env: dict[str, str], mounts: Sequence[Mount] = ()) -> ContainerHandle:
        """Start `container` of `pod` from `image`; raise StartError if it cannot run.

        A host process cannot be given mounts: each volume appears as a symlink at its
        mountPath inside the container's copy of the image, not at the absolute path."""
        name = container["name"]
        attempt = next(self._attempts.setdefault((sandbox.uid, name), itertools.count()))
        full_env = self._container_env(sandbox, pod, image, env)
        argv = container_argv(image, container, full_env)
        if not argv:
            raise StartError("no command specified")
        cdir = os.path.join(sandbox.dir, "containers", name)
        root = os.path.join(cdir, str(attempt))
        await asyncio.to_thread(_fresh_rootfs, self.images.unpack(image), root, cdir, attempt)
        if mounts and not self._said_volumes:
            self._said_volumes = True
            log.warning("process runtime: a container's volumes are symlinks at their mountPath inside its copy of "
                        "the image, not at the absolute path (it has no mount namespace; --runtime oci mounts them)")
        await asyncio.to_thread(_link_volumes, root, mounts)
        workdir = container.get("workingDir") or image.working_dir or "/"
        cwd = _inside(root, workdir)
        os.makedirs(cwd, exist_ok=True)
        exe = resolve_executable(argv[0], root, cwd, full_env.get("PATH", ""))
        log_path = os.path.join(sandbox.dir, "logs", name, f"{attempt}.log")
        writer = logs.LogWriter(log_path, max_size=self.log_max_size, max_files=self.log_max_files)
        # Plain OS pipes, not asyncio's: asyncio's Process.wait() would also wait for the
        # pipes to close, which a leftover child holding them open could delay for ever.
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.network.enter(sandbox.netns, [exe] + argv[1:]), cwd=cwd, env=full_env,
                stdin=asyncio.subprocess.DEVNULL, stdout=out_w, stderr=err_w, start_new_session=True,
                preexec_fn=_die_with_agent)
        except OSError as e:
            writer.close()
            os.close(out_r)
            os.close(err_r)
            raise StartError(f'exec: "{argv[0]}": {e.strerror.lower() if e.strerror else e}') from None
        finally:
            os.close(out_w)
            os.close(err_w)
        handle = ContainerHandle(id=uuid.uuid4().hex, name=name, sandbox_uid=sandbox.uid, started_at=_now(),
                                 log_path=log_path, attempt=attempt, pid=proc.pid, image=image.ref)
        c = _Container(handle, proc, writer, outputs=(out_r, err_r))
        self._containers[handle.id] = c
        asyncio.create_task(self._supervise(c), name=f"container-{sandbox.name}-{name}")
        return handle

    def _container_env(self, sandbox: Sandbox, pod: dict, image: ImageConfig, env: dict[str, str]) -> dict[str, str]:
        out = image.env_dict()
        out.setdefault("PATH", os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"))
        out["HOSTNAME"] = pod.get("spec", {}).get("hostname") or sandbox.name
        out.update(env)
        if not sandbox.netns:
            # Host network: every pod shares the host's ports, so its servers must bind
            # their own 127.x address.  In a pod network namespace they bind anything.
            out.setdefault("POD_IP", sandbox.ip)
        return out

    async def _supervise(self, c: _Container) -> None:
        """Copy output to the log; when the leader exits, kill its session and record the exit."""
        pumps = [asyncio.create_task(self._pump(c.outputs[0], "stdout", c.writer)),
                 asyncio.create_task(self._pump(c.outputs[1], "stderr", c.writer))]
        code = await c.proc.wait()
        c.exited.set()
        finished = _now()
        await _kill_session(c.proc.pid, signal.SIGKILL, until_gone=True)
        _, slow = await asyncio.wait(pumps, timeout=PIPE_DRAIN_TIMEOUT)
        for task in slow:
            task.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
        c.writer.close()
        sig = -code if code < 0 else None
        exit_code = 128 + sig if sig else code
        info = ExitInfo(exit_code=exit_code, reason=exit_reason(exit_code), finished_at=finished, signal=sig)
        if not c.done.done():
            c.done.set_result(info)

    @staticmethod
    async def _pump(fd: int, name: str, writer: logs.LogWriter) -> None:
        """Copy one pipe into the log until EOF (or cancellation), then close it, once."""
        # Not loop.connect_read_pipe: uvloop's pipe transport closes the descriptor and then
        # the file object closes the same number again; a socket or file another thread opened
        # in between (a Service's listener, a /proc scan) lost its descriptor, and with it the
        # server its NodePort or its life.
        loop = asyncio.get_running_loop()
        os.set_blocking(fd, False)
        readable = asyncio.Event()
        loop.add_reader(fd, readable.set)
        try:
            while True:
                try:
                    chunk = os.read(fd, CHUNK)
                except BlockingIOError:
                    readable.clear()
                    await readable.wait()
                    continue
                if not chunk:
                    return
                writer.write(name, chunk)
        finally:
            loop.remove_reader(fd)
            os.close(fd)

    async def stop_container(self, handle: ContainerHandle, grace: float) -> None:
        """SIGTERM the container's whole session, SIGKILL after `grace`; wait until all are gone."""
        c = self._containers.get(handle.id)
        if c is None:
            return
        if not c.exited.is_set():
            await _kill_session(c.proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(c.exited.wait(), timeout=max(grace, 0))
            except TimeoutError:
                await _kill_session(c.proc.pid, signal.SIGKILL)
        await asyncio.shield(c.done)

    async def wait(self, handle: ContainerHandle) -> ExitInfo:
        """Wait for the container to exit."""
        return await asyncio.shield(self._containers[handle.id].done)

    def container_usage(self, handle: ContainerHandle, pod: dict) -> Usage | None:
        """Usage of the container's session, read from /proc (each container starts a session)."""
        return session_usage(handle.pid) if handle.pid else None

    def log_path(self, handle: ContainerHandle) -> str:
        """The CRI log of this container instance."""
        return handle.log_path

    def probe_result(self, handle: ContainerHandle, kind: str) -> tuple[bool, str] | None:
        """Real processes answer their probes themselves."""
        return None

    # -- exec and port-forward ------------------------------------------------

    async def exec(self, sandbox: Sandbox, handle: ContainerHandle, command: list[str], tty: bool,
                   env: dict[str, str] | None = None) -> ExecSession:
        """Run `command` in the container's directory, env and network."""
        c = self._containers.get(handle.id)
        if c is None or c.exited.is_set():
            raise StartError("cannot exec in a stopped container")
        cenv = _proc_environ(c.proc.pid) or dict(os.environ)
        cenv.update(env or {})
        if tty:
            cenv.setdefault("TERM", "xterm")
        cwd = _proc_cwd(c.proc.pid) or sandbox.dir
        if not command:
            raise StartError("exec: no command specified")
        root = os.path.join(sandbox.dir, "containers", handle.name, str(handle.attempt))
        exe = resolve_executable(command[0], root, cwd, cenv.get("PATH", ""))
        argv = self.network.enter(sandbox.netns, [exe] + list(command[1:]))
        impl = await (_TtyExec.start(argv, cwd, cenv) if tty else _PipeExec.start(argv, cwd, cenv))
        return ExecSession(stdout=impl.stdout, stderr=impl.stderr, _impl=impl)

    async def open_port(self, sandbox: Sandbox, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Connect to `port` on the pod's IP."""
        return await asyncio.open_connection(sandbox.ip, port)

    def reap_orphans(self) -> int:
        """Kill processes still running in this runtime's pod directories: what a previous
        agent on the same data directory left when it was killed (-9) before it could stop
        its containers.  Only one agent uses a data directory at a time (the server lock)."""
        root = os.path.realpath(self.pods_dir) + os.sep
        killed = 0
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                cwd = os.readlink(f"/proc/{entry}/cwd")
            except OSError:
                continue
            if (cwd + os.sep).startswith(root):
                try:
                    os.kill(int(entry), signal.SIGKILL)
                    killed += 1
                except OSError:
                    pass
        return killed

    async def cleanup_all(self) -> None:
        """Kill every container, release every sandbox and network resource."""
        for sandbox in list(self._sandboxes.values()):
            await self.remove_sandbox(sandbox)
        for c in list(self._containers.values()):
            await self.stop_container(c.handle, 0)
        self._containers.clear()
        await self.network.cleanup_all()


# -- processes ---------------------------------------------------------------


def _session_members(sid: int, *, outside_group: bool = False) -> list[int]:
    """PIDs whose session id is `sid` (the container's processes); optionally only those
    that left the session leader's process group."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # Fields after the parenthesised command: state ppid pgrp session ...
        fields = stat[stat.rfind(b")") + 2:].split()
        # Zombies are already dead; only their parent can reap them.
        if (len(fields) > 3 and int(fields[3]) == sid and fields[0] not in (b"Z", b"X")
                and not (outside_group and int(fields[2]) == sid)):
            out.append(int(entry))
    return out


async def _kill_session(sid: int, sig: int, *, until_gone: bool = False) -> None:
    """Signal the container's process group and every other member of its session.

    With `until_gone`, repeat until no member is left (a member may fork while we look).
    """
    try:
        os.killpg(sid, sig)
    except (ProcessLookupError, PermissionError):
        pass
    for attempt in range(100):
        # killpg already reached the leader's group: signal it again only when looping
        # for SIGKILL, so a trapping process sees one SIGTERM, not two.
        members = await asyncio.to_thread(_session_members, sid, outside_group=not until_gone)
        for pid in members:
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        if not until_gone or not members:
            return
        await asyncio.sleep(0.01 * min(attempt + 1, 10))
    log.warning("processes of session %d survive SIGKILL", sid)


def _proc_environ(pid: int) -> dict[str, str] | None:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    env = {}
    for item in raw.split(b"\0"):
        if b"=" in item:
            k, _, v = item.partition(b"=")
            env[k.decode(errors="replace")] = v.decode(errors="replace")
    return env


def _proc_cwd(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return None


def _inside(root: str, path: str) -> str:
    """`path` of the image, as a host path under `root` (never escaping it)."""
    return os.path.join(root, os.path.normpath("/" + path).lstrip("/"))


def _die_with_agent() -> None:
    """In the child before exec: get SIGKILL if the agent dies (even by kill -9), so a
    crashed server leaves no orphan containers behind."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
    except Exception:
        pass


def _fresh_rootfs(image_root: str, root: str, cdir: str, attempt: int) -> None:
    """Copy the image into a new container root; drop roots older than the previous one."""
    if os.path.exists(root):
        shutil.rmtree(root)
    shutil.copytree(image_root, root, symlinks=True, copy_function=_link_big_files)
    for old in os.listdir(cdir):
        if old.isdigit() and int(old) < attempt - 1:
            shutil.rmtree(os.path.join(cdir, old), ignore_errors=True)


def _link_volumes(root: str, mounts: Sequence[Mount]) -> None:
    """Each volume as a symlink at its mountPath in the container's root copy."""
    for m in mounts:
        at = _inside(root, m.destination)
        if os.path.isdir(at) and not os.path.islink(at):
            shutil.rmtree(at)
        elif os.path.lexists(at):
            os.unlink(at)
        os.makedirs(os.path.dirname(at), exist_ok=True)
        os.symlink(m.source, at)


# Files at least this big (programs and shared libraries) are hard-linked from the image
# instead of copied: a container rewriting one in place is unheard of, and copying the
# 20 MB of an image's binaries at every start made starts seconds slower on a busy machine.
# Smaller files (scripts, configuration) are each container's own copy.
LINK_MIN_SIZE = 64 * 1024


def _link_big_files(src: str, dst: str) -> None:
    """copytree's copy function: hard-link a big file, copy a small one."""
    try:
        if os.path.getsize(src) >= LINK_MIN_SIZE:
            os.link(src, dst)
            return
    except OSError:
        pass
    shutil.copy2(src, dst)


def resolve_executable(name: str, root: str, cwd: str, path: str) -> str:
    """Host path of the program `name`: image root first, then the host; StartError if none."""
    if "/" in name:
        candidates = [_inside(root, name), name] if name.startswith("/") else [os.path.join(cwd, name)]
    else:
        dirs = [d for d in path.split(":") if d]
        candidates = [os.path.join(_inside(root, d), name) for d in dirs]
        if name in ("python", "python3"):
            # The built-in images are Python apps; run them on kubelite's own interpreter.
            candidates.append(sys.executable)
        candidates += [os.path.join(d, name) for d in dirs]
    for cand in candidates:
        if os.path.isfile(cand):
            if not os.access(cand, os.X_OK):
                raise StartError(f'exec: "{name}": permission denied')
            return cand
    if "/" in name:
        raise StartError(f'exec: "{name}": stat {name}: no such file or directory')
    raise StartError(f'exec: "{name}": executable file not found in $PATH')


class _PipeExec:
    """exec without a tty: separate stdout and stderr pipes."""

    def __init__(self, proc: asyncio.subprocess.Process):
        if proc.stdout is None or proc.stderr is None:
            raise RuntimeError("exec without output pipes")
        self.proc = proc
        self.stdout: asyncio.StreamReader = proc.stdout
        self.stderr: asyncio.StreamReader | None = proc.stderr

    @classmethod
    async def start(cls, argv: list[str], cwd: str, env: dict[str, str]) -> _PipeExec:
        proc = await asyncio.create_subprocess_exec(
            *argv, cwd=cwd, env=env, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, start_new_session=True)
        return cls(proc)

    async def write(self, data: bytes) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.write(data)
            try:
                await self.proc.stdin.drain()
            except (BrokenPipeError, ConnectionResetError):
                pass

    async def close_stdin(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.close()

    def resize(self, width: int, height: int) -> None:
        """No terminal, nothing to resize."""

    async def wait(self) -> int:
        code = await self.proc.wait()
        return 128 - code if code < 0 else code

    async def kill(self) -> None:
        if self.proc.returncode is None:
            await _kill_session(self.proc.pid, signal.SIGKILL)
        await self.proc.wait()


class _TtyExec(PtyStream):
    """exec with a tty: the command's controlling terminal is a pty; one output stream."""

    def __init__(self, proc: asyncio.subprocess.Process, master: int):
        super().__init__(master)
        self.proc = proc

    @classmethod
    async def start(cls, argv: list[str], cwd: str, env: dict[str, str]) -> _TtyExec:
        master, slave = pty.openpty()
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, cwd=cwd, env=env, stdin=slave, stdout=slave, stderr=slave,
                preexec_fn=functools.partial(_take_controlling_tty, slave))
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        return cls(proc, master)

    async def wait(self) -> int:
        code = await self.proc.wait()
        return 128 - code if code < 0 else code

    async def kill(self) -> None:
        if self.proc.returncode is None:
            await _kill_session(self.proc.pid, signal.SIGKILL)
        await self.proc.wait()
        self._close()


def _take_controlling_tty(slave: int) -> None:
    """In the child: a new session whose controlling terminal is the pty slave.

    Both steps are done here, on the slave's own descriptor, because uvloop runs
    preexec_fn right after fork — before it redirects stdin or calls setsid()."""
    os.setsid()
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
