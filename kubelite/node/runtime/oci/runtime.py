"""The oci runtime: pods are containers run by runc, each watched by its own conmon.

A pod sandbox is the pod's network namespace (netns.py, as for the process runtime),
a pause container (catatonit -P) that owns the pod's IPC, UTS and, with
shareProcessNamespace, PID namespaces, a pod cgroup with the pids limit, a /dev/shm
tmpfs and the /etc/hosts, /etc/hostname and /etc/resolv.conf every container mounts.
A container is an overlay over the image (rootfs.py), a config.json (spec.py), and a
conmon that runs `runc create` and then holds stdio, log and exit code (conmon.py).

Containers are not children of the agent. Everything needed to find them again is on
disk (state.py), and `reap_orphans` — called when the agent starts — re-adopts them:
a running container is watched again, and the worker that asks to start it gets the
same container back (same ID) instead of a new one. An instance that exited while no
agent was watching is handed back already exited, so the worker records the exit and
restarts it as its restart policy says. `release_unclaimed` then removes the sandboxes
of pods the API no longer binds to this node.

When the agent stops (Ctrl-C, SIGTERM) it calls `detach`: containers keep running, as
with k3s. `kubelite killall` (killall.py) stops them all and removes the pod network.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from ....dns.resolvconf import PodDNS
from ....images.offline import offline_from_env
from ....images.store import ImageStore
from ... import netslot
from .. import logs
from ..base import (
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
from ..netns import NETNS_DIR, NetnsNetwork
from ..usage import Usage
from . import cgroups, conmon, rootfs, spec, state
from .exec import AttachSocket, PipeExec, TtyExec
from .portforward import open_in_netns
from .runc import Runc, RuncError, start_detail

log = logging.getLogger("kubelite.node")

POLL = 1.0                       # how often the exit file is also looked for (conmon's exit is watched)
SHM_SIZE = 64 * 1024 * 1024      # the pod's /dev/shm, as containerd sizes it
DEFAULT_POD_MAX_PIDS = 4096
PAUSE_BINARY = "catatonit"       # Debian's `catatonit`, static; `-P` makes it a pause process


class _Laps:
    """Durations of the steps of a start, for the agent's debug log (where the time goes)."""

    def __init__(self) -> None:
        self.t = time.monotonic()
        self.parts: list[str] = []

    def lap(self, what: str) -> None:
        now = time.monotonic()
        self.parts.append(f"{what} {(now - self.t) * 1000:.0f}")
        self.t = now

    def __str__(self) -> str:
        return ", ".join(self.parts) + " ms"


class OciUnavailable(RuntimeError):
    """This machine cannot run the oci runtime (the message says why)."""


class ContainerConfigError(StartError):
    """The container's configuration is refused before anything starts (CreateContainerConfigError)."""

    reason = "CreateContainerConfigError"

    def __init__(self, detail: str):
        self.detail = detail
        Exception.__init__(self, detail)


def state_dir(data_dir: str) -> str:
    """Where the oci runtime of the node agent on `data_dir` keeps its state."""
    return os.path.join(data_dir, "agent", "oci")


def missing() -> str | None:
    """Why the oci runtime cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return "the oci runtime needs root"
    for tool in ("runc", "conmon", PAUSE_BINARY, "ip", "nsenter"):
        if shutil.which(tool) is None and not (tool == "conmon" and conmon.binary()):
            return f"the oci runtime needs `{tool}` (Debian: apt-get install runc conmon catatonit iproute2)"
    try:
        with open("/proc/filesystems") as f:
            if "overlay" not in f.read():
                return "the oci runtime needs the overlay filesystem in the kernel"
    except OSError:
        pass
    return None


def remembered_slot(data_dir: str) -> int | None:
    """The network slot this data directory's containers live in, if some are left."""
    rec = state.load(os.path.join(state_dir(data_dir), "node.json"), state.NodeRecord)
    if rec is None or not os.listdir(os.path.join(state_dir(data_dir), "pods")):
        return None
    return rec.slot


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(t: datetime) -> str:
    return t.isoformat()


class ImagePuller(Protocol):
    """What fetches an image into the store (a registry client); without one, the store alone."""

    async def pull(self, image: str, secrets: Iterable[dict] = ()) -> ImageInfo:
        """The image, stored and unpacked; ImageNotFound when it cannot be had."""


@dataclass
class _Instance:
    """A container instance this runtime watches."""

    record: state.ContainerRecord
    handle: ContainerHandle
    done: asyncio.Future[ExitInfo] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    poller: asyncio.Task[None] | None = None
    message: str = ""            # why the exit is unusual (its monitor vanished)


class OciRuntime:
    """Containers under runc and conmon; pods share network, IPC and UTS namespaces."""

    serves_ports = True

    def __init__(self, data_dir: str, *, images: ImageStore, network: NetnsNetwork, slot: int,
                 pod_max_pids: int | None = None, log_max_size: int = logs.DEFAULT_MAX_SIZE,
                 puller: ImagePuller | None = None, dns: PodDNS | None = None):
        why = missing()
        if why:
            raise OciUnavailable(why)
        self.data_dir = data_dir
        self.root = state_dir(data_dir)
        self.pods_dir = os.path.join(self.root, "pods")
        os.makedirs(self.pods_dir, exist_ok=True)
        self.images = images
        self.puller = puller
        self.network = network
        self.dns = dns or PodDNS(offline=offline_from_env())
        self.runc = Runc(os.path.join(self.root, "runc"))
        self.log_max_size = log_max_size
        self.pod_max_pids = DEFAULT_POD_MAX_PIDS if pod_max_pids is None else pod_max_pids
        digest = hashlib.sha256(os.path.realpath(self.root).encode()).hexdigest()[:10]
        self.cgroups = cgroups.PodCgroups(f"kubelite-{digest}")
        self.limits = spec.HostLimits.current()
        self.pause_root = os.path.join(self.root, "pause-rootfs")
        self._node = state.NodeRecord(slot=slot, cgroup_name=self.cgroups.name, bridge=network.bridge,
                                      data_dir=os.path.realpath(data_dir))
        self._sandboxes: dict[str, Sandbox] = {}
        self._records: dict[str, state.SandboxRecord] = {}
        self._instances: dict[str, _Instance] = {}
        self._claimable: dict[tuple[str, str], _Instance] = {}
        self._pause_pids: dict[str, int] = {}
        self._detached = False
        self._prepare_pause_root()

    # -- images and sandboxes ----------------------------------------------------------------

    async def pull(self, ref: str, secrets: Sequence[dict] = ()) -> ImageInfo:
        """Pull `ref` (through the puller when there is one, else from the local store) and
        unpack it; raise ImageNotFound when it cannot be had."""
        if self.puller is not None:
            return await self.puller.pull(ref, secrets)
        return await asyncio.to_thread(self.images.pull, ref)

    def _prepare_pause_root(self) -> None:
        exe = os.path.join(self.pause_root, PAUSE_BINARY)
        if os.path.exists(exe):
            return
        for d in ("proc", "dev"):
            os.makedirs(os.path.join(self.pause_root, d), exist_ok=True)
        src = shutil.which(PAUSE_BINARY)
        if src is None:
            raise OciUnavailable(f"`{PAUSE_BINARY}` is not installed")
        tmp = exe + ".tmp"
        shutil.copy2(os.path.realpath(src), tmp)
        os.replace(tmp, exe)

    async def create_sandbox(self, pod: dict) -> Sandbox:
        """Network, pause container, cgroup and shared files of the pod (idempotent per uid)."""
        meta = pod.get("metadata") or {}
        uid = meta.get("uid") or str(uuid.uuid4())
        if uid in self._sandboxes:
            return self._sandboxes[uid]
        laps = _Laps()
        pod_dir = os.path.join(self.pods_dir, uid)
        os.makedirs(pod_dir, exist_ok=True)
        self._save_node()
        netslot.keep(self._node.slot, os.path.realpath(self.root))
        laps.lap("records")
        ip, netns = await self.network.add_namespace(uid)
        laps.lap("netns+veth")
        pod_spec = pod.get("spec") or {}
        hostname = pod_spec.get("hostname") or meta.get("name", "")
        rec = state.SandboxRecord(uid=uid, namespace=meta.get("namespace", "default"), name=meta.get("name", ""),
                                  ip=ip, netns=netns, dir=pod_dir, created_at=_iso(_now()), pause_id=f"{uid}-pause",
                                  share_pid=bool(pod_spec.get("shareProcessNamespace")),
                                  cgroup_dirs=self.cgroups.pod_dirs(uid))

        async def pause() -> None:
            await asyncio.to_thread(self._write_pod_files, rec, hostname, self.dns.render(pod))
            await asyncio.to_thread(self.cgroups.create_pod, uid, self.pod_max_pids)
            state.save(os.path.join(pod_dir, "sandbox.json"), rec)
            await self._start_pause(rec, hostname)

        # The pause container only needs the namespace to exist: it starts while `ip` sets
        # up the namespace's inside (no container of the pod runs before both are done).
        results = await asyncio.gather(self.network.configure_namespace(uid), pause(), return_exceptions=True)
        laps.lap("addresses ‖ files+cgroup+pause")
        failed = next((r for r in results if isinstance(r, BaseException)), None)
        if failed is not None:
            await self._teardown_sandbox(rec)
            raise failed
        sandbox = Sandbox(uid=uid, namespace=rec.namespace, name=rec.name, ip=ip, dir=pod_dir, netns=netns,
                          created_at=_now())
        self._sandboxes[uid] = sandbox
        self._records[uid] = rec
        log.debug("pod %s/%s: sandbox: %s", rec.namespace, rec.name, laps)
        return sandbox

    def _write_pod_files(self, rec: state.SandboxRecord, hostname: str, resolv: str) -> None:
        hosts = ("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n"
                 "::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\n"
                 "fe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n"
                 f"{rec.ip}\t{hostname}\n")
        # resolv.conf from the pod's dnsPolicy and dnsConfig (kubelite/dns/resolvconf.py),
        # bind-mounted at /etc/resolv.conf in every container.
        for name, text in (("hosts", hosts), ("hostname", hostname + "\n"), ("resolv.conf", resolv)):
            with open(os.path.join(rec.dir, name), "w") as f:
                f.write(text)
        shm = os.path.join(rec.dir, "shm")
        if not rootfs.is_mounted(shm):
            rootfs.mount_tmpfs(shm, SHM_SIZE)

    async def _start_pause(self, rec: state.SandboxRecord, hostname: str) -> None:
        bundle = os.path.join(rec.dir, "pause")
        os.makedirs(bundle, exist_ok=True)
        cfg = spec.pause_spec(rootfs=self.pause_root, hostname=hostname, netns=self._netns_path(rec),
                              cgroups_path=self.cgroups.container_path(rec.uid, "pause"),
                              args=[f"/{PAUSE_BINARY}", "-P"], limits=self.limits)
        _write_json(os.path.join(bundle, "config.json"), cfg)
        pid_file = os.path.join(bundle, "pidfile")
        try:
            await self.runc.run_detached(rec.pause_id, bundle, pid_file)
        except RuncError as e:
            raise StartError(f"pod sandbox: {start_detail(str(e))}") from None
        self._pause_pids[rec.uid] = conmon.read_pid(pid_file)

    @staticmethod
    def _netns_path(rec: state.SandboxRecord) -> str | None:
        return os.path.join(NETNS_DIR, rec.netns) if rec.netns else None

    async def _pause_pid(self, rec: state.SandboxRecord) -> int:
        pid = self._pause_pids.get(rec.uid, 0)
        if pid and os.path.exists(f"/proc/{pid}"):
            return pid
        st = await self.runc.state(rec.pause_id)
        if not st or st.get("status") != "running":
            raise StartError("the pod sandbox's pause container is not running")
        pid = int(st.get("pid") or 0)
        self._pause_pids[rec.uid] = pid
        return pid

    async def remove_sandbox(self, sandbox: Sandbox) -> None:
        """Stop every container of the pod and every process left in its cgroup; release the rest."""
        if self._detached:
            return
        for inst in [i for i in self._instances.values() if i.handle.sandbox_uid == sandbox.uid]:
            await self.stop_container(inst.handle, 0)
            self._instances.pop(inst.handle.id, None)
        for key in [k for k in self._claimable if k[0] == sandbox.uid]:
            del self._claimable[key]
        rec = self._records.pop(sandbox.uid, None) or state.load(
            os.path.join(self.pods_dir, sandbox.uid, "sandbox.json"), state.SandboxRecord)
        self._sandboxes.pop(sandbox.uid, None)
        if rec is not None:
            await self._teardown_sandbox(rec)
        else:
            await self.network.teardown(sandbox.uid)
            await asyncio.to_thread(rootfs.remove_tree, sandbox.dir)

    async def _teardown_sandbox(self, rec: state.SandboxRecord) -> None:
        """Pause container, leftover processes, mounts, network, cgroups and files of a pod."""
        await self.runc.kill(rec.pause_id, "KILL")
        await self.runc.delete(rec.pause_id)
        self._pause_pids.pop(rec.uid, None)
        await asyncio.to_thread(cgroups.kill_all, rec.cgroup_dirs)
        for inst_dir in _subdirs(os.path.join(rec.dir, "containers")):
            await self.runc.delete(os.path.basename(inst_dir))
        await self.network.teardown(rec.uid)
        await asyncio.to_thread(rootfs.remove_tree, rec.dir)
        await asyncio.to_thread(cgroups.remove, rec.cgroup_dirs)
        if not self._records:
            await asyncio.to_thread(cgroups.remove_parent, rec.cgroup_dirs)
            netslot.unkeep(self._node.slot, os.path.realpath(self.root))

    # -- containers ----------------------------------------------------------------------------

    async def start_container(self, sandbox: Sandbox, pod: dict, container: dict, image: ImageInfo,
                              env: dict[str, str], mounts: Sequence[Mount] = ()) -> ContainerHandle:
        """Start `container` of `pod` with its volume `mounts` (bound into it), or hand back
        the instance an earlier agent started."""
        name = container["name"]
        adopted = self._claimable.pop((sandbox.uid, name), None)
        if adopted is not None:
            log.info("pod %s/%s: re-adopted container %s (%s)", sandbox.namespace, sandbox.name, name,
                     adopted.handle.id[:12])
            return adopted.handle
        rec = self._records.get(sandbox.uid)
        if rec is None:
            raise StartError("the pod has no sandbox")
        laps = _Laps()
        image_root = await asyncio.to_thread(self.images.unpack, image)
        image_user = self._image_user(image)
        try:
            spec.check_non_root(pod, container, image_user, image_root)
            identity = spec.resolve_identity(pod, container, image_user, image_root)
        except spec.ConfigError as e:
            raise ContainerConfigError(str(e)) from None
        full_env = image.env_dict()
        full_env.setdefault("PATH", spec.DEFAULT_PATH)
        full_env["HOSTNAME"] = (pod.get("spec") or {}).get("hostname") or sandbox.name
        full_env.update(env)
        argv = container_argv(image, container, full_env)
        if not argv:
            raise StartError("no command specified")
        laps.lap("image")
        pause_pid = await self._pause_pid(rec)
        attempt = _next_attempt(os.path.join(sandbox.dir, "logs", name))
        cid = uuid.uuid4().hex
        bundle = os.path.join(sandbox.dir, "containers", cid)
        log_path = os.path.join(sandbox.dir, "logs", name, f"{attempt}.log")
        os.makedirs(bundle)
        await asyncio.to_thread(self._drop_old_instances, sandbox.dir, name)
        laps.lap("pause pid+dirs")
        try:
            await asyncio.to_thread(rootfs.mount_overlay, [image_root], os.path.join(bundle, "upper"),
                                    os.path.join(bundle, "work"), os.path.join(bundle, "rootfs"))
            laps.lap("overlay")
            cfg = self._container_spec(rec, pod, container, bundle, argv, full_env, identity, pause_pid,
                                       cwd=container.get("workingDir") or image.working_dir or "/", volumes=mounts)
            _write_json(os.path.join(bundle, "config.json"), cfg)
            crec = state.ContainerRecord(id=cid, name=name, sandbox_uid=sandbox.uid, attempt=attempt,
                                         started_at=_iso(_now()), log_path=log_path, image=image.ref, bundle=bundle)
            state.save(os.path.join(bundle, "container.json"), crec)
            laps.lap("spec")
            started = await conmon.create(runc=self.runc, cid=cid, name=name, bundle=bundle, log_path=log_path,
                                          log_max=self.log_max_size, stdin=bool(container.get("stdin")),
                                          stdin_once=bool(container.get("stdinOnce")),
                                          terminal=bool(container.get("tty")))
        except (conmon.ConmonError, OSError) as e:
            await self._discard(cid, bundle)
            raise StartError(start_detail(str(e))) from None
        laps.lap("conmon+runc create")
        try:
            await self.runc.start(cid)
        except RuncError as e:
            await self.runc.kill(cid, "KILL")
            await self._discard(cid, bundle)
            raise StartError(start_detail(str(e))) from None
        started_at = _now()
        crec.started_at, crec.pid, crec.conmon_pid = _iso(started_at), started.pid, started.conmon_pid
        state.save(os.path.join(bundle, "container.json"), crec)
        inst = self._watch(crec)
        laps.lap("runc start")
        log.debug("pod %s/%s: container %s: %s", sandbox.namespace, sandbox.name, name, laps)
        return inst.handle

    def _container_spec(self, rec: state.SandboxRecord, pod: dict, container: dict, bundle: str, argv: list[str],
                        env: dict[str, str], identity: spec.Identity, pause_pid: int, *, cwd: str,
                        volumes: Sequence[Mount] = ()) -> dict:
        mounts = [spec.bind(os.path.join(rec.dir, "hosts"), "/etc/hosts"),
                  spec.bind(os.path.join(rec.dir, "hostname"), "/etc/hostname"),
                  spec.bind(os.path.join(rec.dir, "resolv.conf"), "/etc/resolv.conf"),
                  spec.bind(os.path.join(rec.dir, "shm"), "/dev/shm", extra=("nosuid", "nodev", "noexec"))]
        mounts += spec.volume_mounts(volumes)
        ns = spec.Namespaces(network=self._netns_path(rec), ipc=f"/proc/{pause_pid}/ns/ipc",
                             uts=f"/proc/{pause_pid}/ns/uts",
                             pid=f"/proc/{pause_pid}/ns/pid" if rec.share_pid else None)
        return spec.container_spec(pod=pod, container=container, rootfs=os.path.join(bundle, "rootfs"), argv=argv,
                                   env=env, cwd=cwd, identity=identity, namespaces=ns,
                                   cgroups_path=self.cgroups.container_path(rec.uid, os.path.basename(bundle)),
                                   extra_mounts=mounts, swap_limit=self.cgroups.swap_limit(), limits=self.limits,
                                   tty=bool(container.get("tty")), cgroup_v2=self.cgroups.v2)

    def _image_user(self, image: ImageInfo) -> str:
        """The image config's User (the store's ImageConfig does not carry it)."""
        try:
            cfg = json.loads(self.images.get_blob(image.id))
        except (OSError, ValueError):
            return ""
        return str((cfg.get("config") or {}).get("User") or "")

    def _drop_old_instances(self, pod_dir: str, name: str) -> None:
        """Remove what is left of earlier, exited instances of container `name` (their logs stay)."""
        for d in _subdirs(os.path.join(pod_dir, "containers")):
            crec = state.load(os.path.join(d, "container.json"), state.ContainerRecord)
            if crec is not None and crec.name == name and crec.id not in self._instances:
                rootfs.remove_tree(d)

    async def _discard(self, cid: str, bundle: str) -> None:
        await self.runc.delete(cid)
        await asyncio.to_thread(rootfs.remove_tree, bundle)

    def _watch(self, crec: state.ContainerRecord) -> _Instance:
        handle = ContainerHandle(id=crec.id, name=crec.name, sandbox_uid=crec.sandbox_uid,
                                 started_at=datetime.fromisoformat(crec.started_at), log_path=crec.log_path,
                                 attempt=crec.attempt, pid=crec.pid or None, image=crec.image)
        inst = _Instance(record=crec, handle=handle)
        self._instances[crec.id] = inst
        inst.poller = asyncio.get_running_loop().create_task(self._poll(inst), name=f"oci-watch-{crec.id[:12]}")
        return inst

    async def _poll(self, inst: _Instance) -> None:
        """Wait for conmon's exit file; then report the exit and take down the instance's mounts."""
        crec = inst.record
        code: int | None = None
        exited = _ProcessExit(crec.conmon_pid)
        try:
            while code is None:
                code = conmon.exit_status(crec.bundle)
                if code is not None:
                    break
                if not conmon.alive(crec.conmon_pid, crec.id):
                    code = conmon.exit_status(crec.bundle)  # it may have written it just before exiting
                    if code is None:
                        # The monitor is gone (killed): nobody will record this container's exit.
                        await self.runc.kill(crec.id, "KILL", all_processes=True)
                        code, inst.message = 137, "the container's monitor (conmon) exited before it"
                    break
                # conmon writes the exit file and then exits: its exit wakes us at once.
                await exited.wait(POLL)
        finally:
            exited.close()
        try:
            finished = datetime.fromtimestamp(os.stat(os.path.join(crec.bundle, "exit")).st_mtime, UTC)
        except OSError:
            finished = _now()
        oom = conmon.oom_recorded(crec.bundle) or cgroups.oom_killed(
            self.cgroups.memory_dir(crec.sandbox_uid, crec.id))
        reason = "OOMKilled" if oom else exit_reason(code)
        # Like containerd, report 128+N as the exit code and leave `signal` unset.
        info = ExitInfo(exit_code=code, reason=reason, finished_at=finished, message=inst.message)
        # runc delete removes the container's cgroups (and kills any straggler of a shared PID
        # namespace); the overlay goes, the record and exit file stay for a later agent.
        await self.runc.delete(crec.id)
        await asyncio.to_thread(_drop_rootfs, crec.bundle)
        if not inst.done.done():
            inst.done.set_result(info)

    async def stop_container(self, handle: ContainerHandle, grace: float) -> None:
        """SIGTERM the container's process, SIGKILL everything of it after `grace`; wait until it is gone."""
        if self._detached:
            return
        inst = self._instances.get(handle.id)
        if inst is None:
            return
        if not inst.done.done():
            if grace > 0:
                await self.runc.kill(handle.id, "TERM")
                try:
                    await asyncio.wait_for(asyncio.shield(inst.done), timeout=grace)
                except TimeoutError:
                    pass
            if not inst.done.done():
                await self.runc.kill(handle.id, "KILL", all_processes=True)
        await asyncio.shield(inst.done)

    async def wait(self, handle: ContainerHandle) -> ExitInfo:
        """Wait for the container to exit."""
        return await asyncio.shield(self._instances[handle.id].done)

    def container_usage(self, handle: ContainerHandle, pod: dict) -> Usage | None:
        """Usage from the container's own cgroup."""
        return self.cgroups.usage(handle.sandbox_uid, handle.id)

    def log_path(self, handle: ContainerHandle) -> str:
        """The CRI log conmon writes for this instance."""
        return handle.log_path

    def probe_result(self, handle: ContainerHandle, kind: str) -> tuple[bool, str] | None:
        """Real containers answer their probes themselves."""
        return None

    # -- exec and port-forward -----------------------------------------------------------------

    async def exec(self, sandbox: Sandbox, handle: ContainerHandle, command: list[str], tty: bool,
                   env: dict[str, str] | None = None) -> ExecSession:
        """Run `command` in the container (its namespaces, user, environment)."""
        inst = self._instances.get(handle.id)
        if inst is None or inst.done.done():
            raise StartError("cannot exec in a stopped container")
        if not command:
            raise StartError("exec: no command specified")
        bundle = inst.record.bundle
        cfg = json.loads(Path(bundle, "config.json").read_bytes())
        proc = spec.process_for_exec(cfg, command, tty=tty, env=env)
        _check_command(os.path.join(bundle, "rootfs"), command[0], proc)
        token = uuid.uuid4().hex[:12]
        process_file = os.path.join(bundle, f"exec-{token}.json")
        pid_file = os.path.join(bundle, f"exec-{token}.pid")
        _write_json(process_file, proc)
        argv = self.runc.exec_argv(handle.id, process_file, pid_file, tty=tty)
        files = (process_file, pid_file)
        impl: PipeExec | TtyExec = await (TtyExec.start(argv, pid_file, files) if tty
                                          else PipeExec.start(argv, pid_file, files))
        return ExecSession(stdout=impl.stdout, stderr=impl.stderr, _impl=impl)

    async def attach(self, handle: ContainerHandle) -> ExecSession:
        """Attach to the container's stdin and output (`kubectl attach -i`, and `-it` to its
        terminal when it has `tty: true`); StartError when the container keeps no stdin open
        (its spec lacks `stdin: true`)."""
        inst = self._instances.get(handle.id)
        if inst is None or inst.done.done():
            raise StartError("cannot attach to a stopped container")
        bundle = inst.record.bundle
        cfg = json.loads(Path(bundle, "config.json").read_bytes())
        if not _opened_stdin(bundle):
            raise StartError(f"container {handle.name} does not keep its stdin open: set `stdin: true` in its spec")
        # A tty container's terminal is conmon's: resizes go to conmon's ctl FIFO.
        resize = (conmon.PacedResizer(bundle) if (cfg.get("process") or {}).get("terminal")
                  else None)
        try:
            impl = await AttachSocket.open(os.path.join(bundle, "attach"), resize)
        except OSError as e:
            raise StartError(f"attach: {e.strerror or e}") from None
        return ExecSession(stdout=impl.stdout, stderr=impl.stderr, _impl=impl)

    async def open_port(self, sandbox: Sandbox, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Connect to 127.0.0.1:`port` inside the pod's network namespace."""
        if not sandbox.netns:
            return await asyncio.open_connection(sandbox.ip, port)
        return await open_in_netns(os.path.join(NETNS_DIR, sandbox.netns), port)

    # -- agent restarts ------------------------------------------------------------------------

    def reap_orphans(self) -> int:
        """Re-adopt the sandboxes and containers an earlier agent left running (none is killed)."""
        sandboxes = containers = 0
        for pod_dir in _subdirs(self.pods_dir):
            rec = state.load(os.path.join(pod_dir, "sandbox.json"), state.SandboxRecord)
            if rec is None:
                # An agent stopped while creating this sandbox: take down what it had made.
                discard_partial(pod_dir, self.network.names(os.path.basename(pod_dir))[0],
                                self.cgroups.pod_dirs(os.path.basename(pod_dir)))
                continue
            uid = rec.uid
            self._records[uid] = rec
            self._sandboxes[uid] = Sandbox(uid=uid, namespace=rec.namespace, name=rec.name, ip=rec.ip, dir=rec.dir,
                                           netns=rec.netns, created_at=datetime.fromisoformat(rec.created_at))
            if rec.netns:
                self.network.namespaces[uid] = rec.netns
                self.network.alloc.by_uid[uid] = rec.ip
            sandboxes += 1
            latest: dict[str, _Instance] = {}
            for inst_dir in _subdirs(os.path.join(pod_dir, "containers")):
                crec = state.load(os.path.join(inst_dir, "container.json"), state.ContainerRecord)
                if crec is None or not crec.conmon_pid:
                    continue  # never got as far as running
                inst = self._watch(crec)
                containers += 1
                cur = latest.get(crec.name)
                if cur is None or crec.attempt > cur.record.attempt:
                    latest[crec.name] = inst
            for name, inst in latest.items():
                self._claimable[(uid, name)] = inst
        if sandboxes:
            log.info("oci runtime: re-adopted %d pod sandbox(es) and %d container instance(s) left by an "
                     "earlier agent", sandboxes, containers)
        return 0

    async def release_unclaimed(self, keep: set[str]) -> int:
        """Remove the sandboxes of pods not in `keep` (deleted while no agent watched); how many."""
        gone = [sb for uid, sb in self._sandboxes.items() if uid not in keep]
        for sb in gone:
            log.info("oci runtime: removing pod sandbox %s/%s (uid %s): the pod is no longer bound to this node",
                     sb.namespace, sb.name, sb.uid)
            await self.remove_sandbox(sb)
        return len(gone)

    def detach(self) -> None:
        """Leave every container running (the agent is stopping); stop watching them."""
        self._detached = True
        for inst in self._instances.values():
            if inst.poller is not None:
                inst.poller.cancel()

    async def cleanup_all(self) -> None:
        """Stop every container and release every sandbox (once detached: only an unused bridge)."""
        if self._detached:
            if not self._sandboxes:
                await self.network.cleanup_all()
            return
        for sandbox in list(self._sandboxes.values()):
            await self.remove_sandbox(sandbox)

    # -- bookkeeping ---------------------------------------------------------------------------

    def _save_node(self) -> None:
        state.save(os.path.join(self.root, "node.json"), self._node)


class _ProcessExit:
    """Wakes a waiter when a process (not our child: conmon) exits, through a pidfd."""

    def __init__(self, pid: int):
        self._loop = asyncio.get_running_loop()
        self._fd = -1
        self._exited = asyncio.Event()
        if pid <= 0:
            self._exited.set()
            return
        try:
            self._fd = os.pidfd_open(pid)
        except OSError:
            self._exited.set()  # already gone (or no pidfd here: then the caller's polling alone)
            return
        self._loop.add_reader(self._fd, self._exited.set)

    async def wait(self, timeout: float) -> None:
        """Until the process exited, or `timeout` passed."""
        if self._exited.is_set():
            # No pidfd: poll as often as before; exited: the caller looks once more and stops.
            await asyncio.sleep(min(timeout, 0.1) if self._fd < 0 else 0.01)
            return
        try:
            await asyncio.wait_for(self._exited.wait(), timeout)
        except TimeoutError:
            pass

    def close(self) -> None:
        """Stop watching."""
        if self._fd >= 0:
            self._loop.remove_reader(self._fd)
            os.close(self._fd)
            self._fd = -1


def discard_partial(pod_dir: str, netns: str, cgroup_dirs: list[str]) -> None:
    """Remove a sandbox that never got its record: processes, network namespace, mounts, cgroups."""
    cgroups.kill_all(cgroup_dirs)
    if os.path.exists(os.path.join(NETNS_DIR, netns)):
        subprocess.run(["ip", "netns", "del", netns], capture_output=True, timeout=30)
    rootfs.remove_tree(pod_dir)
    cgroups.remove(cgroup_dirs)


def _subdirs(path: str) -> list[str]:
    try:
        return [os.path.join(path, d) for d in sorted(os.listdir(path)) if os.path.isdir(os.path.join(path, d))]
    except OSError:
        return []


def _next_attempt(log_dir: str) -> int:
    """The next instance number of a container: one past the newest log (survives agent restarts)."""
    try:
        nums = [int(f.split(".")[0]) for f in os.listdir(log_dir) if f.endswith(".log") and f.split(".")[0].isdigit()]
    except OSError:
        return 0
    return max(nums) + 1 if nums else 0


def _drop_rootfs(bundle: str) -> None:
    """Unmount and delete an exited instance's overlay; keep its record and exit files."""
    for part in ("rootfs", "upper", "work"):
        rootfs.remove_tree(os.path.join(bundle, part))


def _check_command(root: str, name: str, proc: dict) -> None:
    """StartError, in runc's words, when `name` is not in the container's PATH (so the
    failure is an exec error, not output of the command)."""
    if "/" in name:
        return  # runc reports a missing path itself
    path = next((e.partition("=")[2] for e in proc.get("env") or [] if e.startswith("PATH=")), spec.DEFAULT_PATH)
    for d in path.split(":"):
        if d and os.path.lexists(os.path.join(root, d.lstrip("/"), name)):
            return
    raise StartError(f'exec: "{name}": executable file not found in $PATH')



def _opened_stdin(bundle: str) -> bool:
    """Whether the container's conmon was started with `--stdin` (read from its command line)."""
    pid = conmon.read_pid(os.path.join(bundle, "conmon.pid"))
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"--stdin" in f.read().split(b"\0")
    except OSError:
        return False


def _write_json(path: str, obj: dict) -> None:
    Path(path).write_text(json.dumps(obj))
