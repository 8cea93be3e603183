"""One pod's life on a node: the kubelet's pod worker, as one asyncio task per pod.

Order of things (upstream's SyncPod / SyncTerminatingPod):
1. sandbox (directory + network, gives the pod IP), then the pod's volumes
   (volumes/manager.py), retried with FailedMount events until every one is set up and
   from then on rewritten when their ConfigMaps, Secrets or tokens change;
2. init containers one at a time, each to successful completion;
3. regular containers, each in its own loop: pull (ErrImagePull → ImagePullBackOff with
   10 s doubling to 5 min), start, run probes, wait for exit, restart per restartPolicy
   with CrashLoopBackOff back-off (reset after 10 minutes of running);
4. on deletion: mark unready, wait until every proxy has stopped sending new
   connections (bounded by ``DRAIN_WAIT_MAX``, before the grace period starts), run
   preStop hooks, SIGTERM then SIGKILL, remove the sandbox, and delete the pod object
   with grace 0.
Every state change schedules a status write; writes are coalesced.

A worker knows its node only as a ``PodHost`` (host.py): the runtime, the event
recorder, and the few API calls it needs (status writes, lookups, the final delete).
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from typing import Any

from kubelite.api import meta
from kubelite.client import retry
from kubelite.client.errors import NotFound, StatusError
from kubelite.client.events import NORMAL, WARNING
from kubelite.images.pull import go_duration, rpc_message
from kubelite.node import deadline, envvars, pullsecrets
from kubelite.node.host import PodHost
from kubelite.node.probes import ExecFn, ProbeFn, Prober, ResultFn, run_probe
from kubelite.node.runtime.base import ContainerHandle, ImageInfo, ImageNotFound, Sandbox, StartError
from kubelite.node.status import ContainerStatus, build_status
from kubelite.node.volumes.manager import PodVolumes, failed_mount

log = logging.getLogger("kubelite.node")
Obj = dict[str, Any]

# The drain handshake's own bound, outside the grace period.  A live proxy lists a pod
# once it routes nothing new there and what it forwarded has finished, which it waits for
# up to CONNECTION_DRAIN_LIMIT (5 s, kubelite/proxy/drain.py); on a loaded node applying
# the slice and renewing its Lease adds to that.  So the bound must be well above 5 s, or
# SIGTERM lands on requests still in flight.  Only a proxy that died (its Lease stays
# live for up to 40 s) or a publishNotReadyAddresses Service makes the wait run out; taking
# that time from the grace period once left later pods about 0 s for preStop and SIGTERM.
DRAIN_WAIT_MAX = 15.0


def drain_wait_bound(grace: float) -> float:
    """How long termination waits for the proxies to drain a pod: at most DRAIN_WAIT_MAX, never more than its grace."""
    return max(0.0, min(grace, DRAIN_WAIT_MAX))


IMAGE_BACKOFF = (10.0, 300.0)
MOUNT_BACKOFF = (0.5, 30.0)      # retries of a failed volume setup (upstream: 0.5 s doubling)
CRASH_BACKOFF = (10.0, 300.0)
BACKOFF_RESET = 600.0
# While a container is being started (its sandbox made, its image looked up, the runtime
# creating it) or waits for its declared ports to open, a status change waits up to this
# long for the next one, so that a container serving at once goes from Pending to Running
# and Ready in one write, not two or three (a fake node's start delay is 0.5 s).
START_HOLD = 1.0
PORT_GATE_POLL = (0.005, 0.05)   # first and longest wait between connection attempts


def may_be_served(pod: Obj, services: list[Obj]) -> bool:
    """Whether a Service of the pod's namespace (among ``services``) may route to the pod: one
    whose selector matches its labels, or one without a selector (its EndpointSlices are
    written by hand). The proxies route only to Services."""
    ns, labels = meta.namespace(pod), meta.labels(pod)
    for svc in services:
        if meta.namespace(svc) != ns:
            continue
        sel = (svc.get("spec") or {}).get("selector") or {}
        if not sel or all(labels.get(k) == v for k, v in sel.items()):
            return True
    return False


class PodWorker:
    """Drives one pod toward its spec until it is deleted."""

    def __init__(self, host: PodHost, pod: Obj):
        self.host = host
        self.pod = pod
        self.uid = meta.uid(pod)
        self.key = meta.key(pod)
        spec = pod["spec"]
        prev = {c["name"]: c for c in (pod.get("status") or {}).get("containerStatuses") or []}
        self.init = [ContainerStatus(c["name"], c["image"], init=True) for c in spec.get("initContainers") or []]
        self.main = [ContainerStatus(c["name"], c["image"], restart_count=int(prev.get(c["name"], {}).get("restartCount", 0)))
                     for c in spec.get("containers") or []]
        self.sandbox: Sandbox | None = None
        self.handles: dict[str, ContainerHandle] = {}
        self.probers: dict[str, list[Prober]] = {}
        self.start_time = (pod.get("status") or {}).get("startTime") or meta.rfc3339()
        self.dirty = asyncio.Event()
        self._progress = asyncio.Event()  # any state change (the status writer's hold waits on it)
        self._stopping = False  # termination is stopping the containers; it writes the outcome once
        self.terminating = asyncio.Event()
        self.done = asyncio.Event()
        self._image_backoff: dict[str, tuple[float, float, str]] = {}  # image -> (next try, delay, last error)
        self._task: asyncio.Task[None] | None = None
        self._status_task: asyncio.Task[None] | None = None
        self._container_tasks: list[asyncio.Task[None]] = []
        self._images: dict[str, ImageInfo] = {}
        self._gates: dict[str, asyncio.Task[None]] = {}
        self._sent: Obj | None = None  # the last status written
        self._last_write_error: BaseException | None = None
        self._background: set[asyncio.Task[None]] = set()  # fire-and-forget kills, referenced until done
        self.failure: tuple[str, str] | None = None  # (reason, message) once the node failed the pod
        self.failure_condition: Obj | None = None  # a condition the failure adds (DisruptionTarget)
        self.deadline = deadline.ActiveDeadline(self._deadline_exceeded)
        self._fail_task: asyncio.Task[None] | None = None
        self.volumes: PodVolumes | None = None
        self._volumes_changed = asyncio.Event()  # a source object, the pod's metadata or a token is due
        self._volume_task: asyncio.Task[None] | None = None
        self._watching = False
        self._t0 = time.monotonic()  # for the debug log's "+N ms" stamps of the start path

    def _since(self) -> str:
        return f"+{(time.monotonic() - self._t0) * 1000:.0f} ms"

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker and its status writer."""
        self._task = asyncio.create_task(self._run(), name=f"pod-{self.key}")
        self._status_task = asyncio.create_task(self._status_writer(), name=f"status-{self.key}")
        self.deadline.arm(self.pod, self.start_time)

    def update(self, pod: Obj) -> None:
        """A newer version of the pod from the informer."""
        old = self.pod.get("metadata") or {}
        self.pod = pod
        md = pod.get("metadata") or {}
        if self.volumes is not None and (old.get("labels"), old.get("annotations")) != (md.get("labels"),
                                                                                       md.get("annotations")):
            self._volumes_changed.set()  # downwardAPI files show labels and annotations
        if meta.is_deleting(pod):
            self.terminating.set()
        self.deadline.arm(pod, self.start_time)

    async def kill_now(self) -> None:
        """Stop everything at once (pod object already gone, or agent shutdown)."""
        self.terminating.set()
        for t in self._container_tasks:
            t.cancel()
        if self._task:
            self._task.cancel()
        self._stop_volumes()
        await self._stop_all(0)
        if self._status_task:
            self._status_task.cancel()
        self.done.set()

    @property
    def c_spec(self) -> dict[str, Obj]:
        """Every container's spec (init and regular), by name."""
        spec = self.pod["spec"]
        return {c["name"]: c for c in (spec.get("initContainers") or []) + (spec.get("containers") or [])}

    def _event(self, type_: str, reason: str, message: str, container: str = "") -> None:
        fp = ""
        if container:
            kind = "initContainers" if any(c.name == container for c in self.init) else "containers"
            fp = f"spec.{kind}{{{container}}}"
        self.host.recorder.event(self.pod, type_, reason, message, field_path=fp)

    def _changed(self) -> None:
        self.dirty.set()
        self._progress.set()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    @property
    def _sandbox(self) -> Sandbox:
        """The sandbox; containers, probes and hooks only run once it exists."""
        if self.sandbox is None:
            raise RuntimeError(f"pod {self.key} has no sandbox")
        return self.sandbox

    async def _run(self) -> None:
        try:
            if not self.terminating.is_set():
                t0 = time.monotonic()
                await self._create_sandbox()
                log.debug("pod %s: %s: sandbox in %.0f ms", self.key, self._since(), (time.monotonic() - t0) * 1000)
            if self.sandbox and not self.terminating.is_set() and await self._mount_volumes():
                ok = await self._run_init_containers()
                if ok:
                    self._container_tasks = [asyncio.create_task(self._container_loop(c)) for c in self.main]
            await self.terminating.wait()
            await self._terminate()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("pod worker %s failed", self.key)
            await self._stop_all(0)
        finally:
            self.done.set()
            self.deadline.cancel()
            if self._status_task is not None:
                self._status_task.cancel()

    async def _create_sandbox(self) -> None:
        try:
            self.sandbox = await self.host.runtime.create_sandbox(self.pod)
        except Exception as e:
            self._event(WARNING, "FailedCreatePodSandBox", f"Failed to create pod sandbox: {e}")
            raise
        self._changed()

    # -- volumes ---------------------------------------------------------------------------
    async def _mount_volumes(self) -> bool:
        """Set up the pod's volumes, retrying with FailedMount events until they all are (False: halted)."""
        if not (self.pod.get("spec") or {}).get("volumes") or not self.host.runtime.serves_ports:
            return True  # a simulated pod (fake runtime, as kwok) mounts nothing
        vols = PodVolumes(self.pod, self._sandbox.dir, self.host.volume_api)
        self.volumes = vols
        refs = vols.refs()
        if refs:
            self.host.volume_api.watch_objects(self.uid, refs, self._volumes_changed.set)
            self._watching = True
        delay = MOUNT_BACKOFF[0]
        while not self._halted():
            self._volumes_changed.clear()
            vols.pod = self.pod
            failures = await vols.setup()
            if not failures:
                self._volume_task = asyncio.create_task(self._keep_volumes(vols), name=f"volumes-{self.key}")
                return True
            for name, message in failures:
                self._event(WARNING, "FailedMount", failed_mount(name, message))
            await self._wait_volumes(delay)
            delay = min(delay * 2, MOUNT_BACKOFF[1])
        return False

    async def _wait_volumes(self, timeout: float | None) -> None:
        """Until a volume source changed, the pod is stopping, or `timeout` passed."""
        waits = [asyncio.ensure_future(self._volumes_changed.wait()), asyncio.ensure_future(self.terminating.wait())]
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    async def _keep_volumes(self, vols: PodVolumes) -> None:
        """Rewrite the volumes when their sources change or a token is due, while the pod runs."""
        while not self._halted():
            due = vols.next_refresh()
            await self._wait_volumes(None if due is None else max(0.0, due - time.time()))
            if self._halted():
                return
            self._volumes_changed.clear()
            vols.pod = self.pod
            failures = await vols.refresh()
            for name, message in failures:
                self._event(WARNING, "FailedMount", failed_mount(name, message))
            if failures:
                await self._wait_volumes(MOUNT_BACKOFF[1])

    def _stop_volumes(self) -> None:
        if self._volume_task is not None:
            self._volume_task.cancel()
        if self._watching:
            self.host.volume_api.forget(self.uid)
            self._watching = False

    # -- containers ------------------------------------------------------------------------
    async def _run_init_containers(self) -> bool:
        policy = self.pod["spec"].get("restartPolicy", "Always")
        for cs in self.init:
            delay, restarting = 0.0, False
            while not self._halted():
                exit_code = await self._run_once(cs, restart=restarting)
                if exit_code == 0:
                    break
                if exit_code is None:
                    continue
                if policy == "Never":
                    self._changed()
                    return False
                restarting = True
                if delay:
                    await self._crash_backoff(cs, delay)
                delay = min(delay * 2, CRASH_BACKOFF[1]) if delay else CRASH_BACKOFF[0]
            if self._halted():
                return False
        return True

    async def _container_loop(self, cs: ContainerStatus) -> None:
        policy = self.pod["spec"].get("restartPolicy", "Always")
        # Upstream's kubelet restarts after the first exit at once, then backs off 10 s, 20 s, …
        # restartCount counts instances started after the first, so it grows on (re)start.
        delay, restarting = 0.0, False
        while not self._halted():
            started = time.monotonic()
            exit_code = await self._run_once(cs, restart=restarting)
            if exit_code is None or self._halted():
                continue
            if policy == "Never" or (policy == "OnFailure" and exit_code == 0):
                self._changed()
                return
            if time.monotonic() - started > BACKOFF_RESET:
                delay = 0.0
            restarting = True
            if delay:
                await self._crash_backoff(cs, delay)
            delay = min(delay * 2, CRASH_BACKOFF[1]) if delay else CRASH_BACKOFF[0]

    async def _crash_backoff(self, cs: ContainerStatus, delay: float) -> None:
        """Waiting/CrashLoopBackOff for ``delay`` seconds (the container's last state is kept)."""
        pod = self.pod["metadata"]
        if cs.terminated is not None:
            cs.last_state = {"terminated": cs.terminated}
        cs.state = {"waiting": {"reason": "CrashLoopBackOff",
                                "message": f"back-off {int(delay)}s restarting failed container={cs.name} "
                                           f"pod={pod['name']}_{pod.get('namespace')}({self.uid})"}}
        cs.ready = False
        cs.started = False
        self._changed()
        self._event(WARNING, "BackOff",
                    f"Back-off restarting failed container {cs.name} in pod {pod['name']}_{pod.get('namespace')}({self.uid})",
                    cs.name)
        await self._sleep(delay)

    async def _sleep(self, delay: float) -> None:
        try:
            await asyncio.wait_for(self.terminating.wait(), delay)
        except TimeoutError:
            pass

    async def _pull(self, cs: ContainerStatus, spec: Obj) -> ImageInfo | None:
        """Pull per imagePullPolicy; ErrImagePull / ImagePullBackOff on failure (returns None)."""
        image = spec["image"]
        policy = spec.get("imagePullPolicy", "IfNotPresent")
        rt = self.host.runtime
        nxt = self._image_backoff.get(image)
        if nxt and time.monotonic() < nxt[0]:
            cs.state = {"waiting": {"reason": "ImagePullBackOff",
                                    "message": f'Back-off pulling image "{image}": ErrImagePull: {nxt[2]}'}}
            self._changed()
            self._event(NORMAL, "BackOff", f'Back-off pulling image "{image}"', cs.name)
            self._event(WARNING, "Failed", "Error: ImagePullBackOff", cs.name)
            await self._sleep(nxt[0] - time.monotonic())
            return None
        present = policy != "Always" and self.host.image_present(image)
        if policy == "Never" and not present:
            msg = f'Container image "{image}" is not present with pull policy of Never'
            cs.state = {"waiting": {"reason": "ErrImageNeverPull", "message": msg}}
            self._changed()
            self._event(WARNING, "ErrImageNeverPull", msg, cs.name)
            await self._sleep(IMAGE_BACKOFF[0])
            return None
        t0 = time.monotonic()
        secrets: list[Obj] = []
        if not present:
            self._event(NORMAL, "Pulling", f'Pulling image "{image}"', cs.name)
            secrets, missing = await pullsecrets.fetch(self.pod, self.host.lookup)
            if missing:
                self._event(WARNING, pullsecrets.MISSING_REASON, pullsecrets.missing_message(missing))
        try:
            # A present image is only unpacked from the store; a pull may contact a registry.
            info = await (asyncio.to_thread(rt.images.pull, image) if present else rt.pull(image, secrets))
        except ImageNotFound as e:
            delay = min(nxt[1] * 2, IMAGE_BACKOFF[1]) if nxt else IMAGE_BACKOFF[0]
            msg = rpc_message(e)
            self._image_backoff[image] = (time.monotonic() + delay, delay, msg)
            cs.state = {"waiting": {"reason": "ErrImagePull", "message": msg}}
            self._changed()
            self._event(WARNING, "Failed", f'Failed to pull image "{image}": {msg}', cs.name)
            self._event(WARNING, "Failed", "Error: ErrImagePull", cs.name)
            await self._sleep(min(delay, 1.0))  # show ErrImagePull briefly, then back off
            return None
        self._image_backoff.pop(image, None)
        if present:
            self._event(NORMAL, "Pulled", f'Container image "{image}" already present on machine', cs.name)
        else:
            took = go_duration(time.monotonic() - t0)
            self._event(NORMAL, "Pulled", f'Successfully pulled image "{image}" in {took} ({took} including waiting). '
                                          f'Image size: {info.size} bytes.', cs.name)
        return info

    async def _run_once(self, cs: ContainerStatus, restart: bool = False) -> int | None:
        """Pull, start, probe and wait for one container instance; its exit code (None: not started).

        ``restart``: this instance replaces one that exited (restartCount grows when it starts)."""
        spec = self.c_spec[cs.name]
        info = await self._pull(cs, spec)
        if info is None or self.terminating.is_set():
            return None
        cs.image_id = info.repo_digest
        self._images[cs.name] = info
        try:
            env = await envvars.container_env(self.pod, spec, services=self.host.services_for(self.pod),
                                              host_ip=self.host.node_ip, pod_ip=self._sandbox.ip,
                                              lookup=self.host.lookup,
                                              warn=lambda reason, msg: self._event(WARNING, reason, msg))
            mounts = self.volumes.container_mounts(spec, env) if self.volumes is not None else []
        except ValueError as e:
            cs.state = {"waiting": {"reason": "CreateContainerConfigError", "message": str(e)}}
            self._changed()
            self._event(WARNING, "Failed", f"Error: {e}", cs.name)
            await self._sleep(IMAGE_BACKOFF[0])
            return None
        if cs.terminated is not None:
            cs.last_state = {"terminated": cs.terminated}
        if restart:
            cs.restart_count += 1
        try:
            handle = await self.host.runtime.start_container(self._sandbox, self.pod, spec, info, env, mounts)
        except StartError as e:
            if e.reason == "CreateContainerConfigError":  # refused before creation: waiting, as upstream
                if restart:
                    cs.restart_count -= 1
                cs.state = {"waiting": {"reason": e.reason, "message": str(e)}}
                self._changed()
                self._event(WARNING, "Failed", f"Error: {e}", cs.name)
                await self._sleep(IMAGE_BACKOFF[0])
                return None
            now = meta.rfc3339()
            cs.state = {"terminated": {"exitCode": e.exit_code, "reason": e.reason, "message": str(e),
                                       "startedAt": "1970-01-01T00:00:00Z", "finishedAt": now}}
            cs.ready = False
            self._changed()
            self._event(WARNING, "Failed", f"Error: {e}", cs.name)
            return e.exit_code
        self.handles[cs.name] = handle
        log.debug("pod %s: %s: container %s started", self.key, self._since(), cs.name)
        cs.container_id = f"kubelite://{handle.id}"
        cs.state = {"running": {"startedAt": meta.rfc3339(handle.started_at)}}
        self._event(NORMAL, "Created", f"Created container {cs.name}", cs.name)
        self._event(NORMAL, "Started", f"Started container {cs.name}", cs.name)
        await self._post_start(cs, spec)
        self._start_probes(cs, spec)
        self._changed()
        exit_info = await self.host.runtime.wait(handle)
        self._stop_probes(cs)
        cs.ready = False
        term: Obj = {"exitCode": exit_info.exit_code, "reason": exit_info.reason,
                "startedAt": meta.rfc3339(handle.started_at), "finishedAt": meta.rfc3339(exit_info.finished_at),
                "containerID": cs.container_id}
        if exit_info.message:
            term["message"] = exit_info.message
        if exit_info.signal:
            term["signal"] = exit_info.signal
        cs.state = {"terminated": term}
        cs.started = False
        self.handles.pop(cs.name, None)
        self._changed()
        return exit_info.exit_code

    async def _post_start(self, cs: ContainerStatus, spec: Obj) -> None:
        hook = ((spec.get("lifecycle") or {}).get("postStart"))
        if hook:
            ok, msg = await self._run_hook(cs, spec, hook, 30.0)
            if not ok:
                self._event(WARNING, "FailedPostStartHook", f"PostStartHook failed: {msg}", cs.name)

    async def _run_hook(self, cs: ContainerStatus, spec: Obj, hook: Obj, limit: float) -> tuple[bool, str]:
        if "sleep" in hook:
            await asyncio.sleep(min(float(hook["sleep"].get("seconds", 0)), limit))
            return True, ""
        simulated = self._simulated(cs, "hook")
        if simulated is not None:
            return simulated
        try:
            return await asyncio.wait_for(
                run_probe(dict(hook, timeoutSeconds=max(int(limit), 1)), spec, self._sandbox.ip, self._exec_fn(cs)),
                limit)
        except TimeoutError:
            return False, "hook timed out"

    def _exec_fn(self, cs: ContainerStatus) -> ExecFn:
        async def run(cmd: list[str], timeout: float) -> tuple[int, str]:
            handle = self.handles.get(cs.name)
            if handle is None:
                return 1, "container not running"
            sess = await self.host.runtime.exec(self._sandbox, handle, cmd, False)
            await sess.close_stdin()
            try:
                out = await asyncio.wait_for(sess.stdout.read(), timeout)
                code = await asyncio.wait_for(sess.wait(), timeout)
            except TimeoutError:
                await sess.kill()
                return 1, "command timed out"
            return code, out.decode(errors="replace")
        return run

    # -- probes ------------------------------------------------------------------------------
    def _start_probes(self, cs: ContainerStatus, spec: Obj) -> None:
        probers: list[Prober] = []
        startup = spec.get("startupProbe")

        def on_result(kind: str, ok: bool | None, msg: str) -> None:
            if ok is None:  # one failed attempt: upstream records Unhealthy for each
                self._event(WARNING, "Unhealthy", f"{kind.capitalize()} probe failed: {msg}", cs.name)
                return
            if kind == "startup" and ok:
                cs.started = True
                for p in list(probers):
                    if p.kind == "startup":
                        p.stop()
                self._after_started(cs, spec, probers, on_result)
            elif kind == "startup" and not ok:
                self._kill_for_probe(cs, spec, "startup")
            elif kind == "readiness":
                cs.ready = bool(ok) and cs.started
            elif kind == "liveness" and not ok:
                self._kill_for_probe(cs, spec, "liveness")
            self._changed()

        self.probers[cs.name] = probers
        if startup:
            cs.started = False
            p = Prober("startup", startup, spec, self._sandbox.ip, self._exec_fn(cs), on_result,
                       run=self._probe_runner(cs, "startup"))
            probers.append(p)
            p.start()
        else:
            cs.started = True
            self._after_started(cs, spec, probers, on_result)

    def _after_started(self, cs: ContainerStatus, spec: Obj, probers: list[Prober], on_result: ResultFn) -> None:
        simulated = self._simulated(cs, "readiness")
        if not spec.get("readinessProbe") and simulated is not None:
            cs.ready = simulated[0]
        elif not spec.get("readinessProbe"):
            # A runtime whose pods serve nothing (fake) would keep the gate shut forever.
            ports = self._tcp_ports(cs, spec) if self.host.runtime.serves_ports else []
            if ports:
                # kubelite's zero-downtime rule: with no readiness probe, a container that
                # declares TCP ports is Ready once it accepts connections on them, not merely
                # once its process exists (upstream marks it Ready at start).
                cs.ready = False
                self._gates[cs.name] = asyncio.create_task(self._port_gate(cs, ports))
            else:
                cs.ready = True
        for kind in ("readiness", "liveness"):
            probe = spec.get(f"{kind}Probe")
            if probe:
                p = Prober(kind, probe, spec, self._sandbox.ip, self._exec_fn(cs), on_result,
                           run=self._probe_runner(cs, kind))
                probers.append(p)
                p.start()

    def _simulated(self, cs: ContainerStatus, kind: str) -> tuple[bool, str] | None:
        """The runtime's own answer to a probe or hook of this container (fake: nothing is dialled)."""
        handle = self.handles.get(cs.name)
        return self.host.runtime.probe_result(handle, kind) if handle is not None else None

    def _probe_runner(self, cs: ContainerStatus, kind: str) -> ProbeFn | None:
        """A probe attempt answered by the runtime, when it simulates its pods."""
        if self._simulated(cs, kind) is None:
            return None

        async def run() -> tuple[bool, str]:
            return self._simulated(cs, kind) or (False, "container not running")
        return run

    def _tcp_ports(self, cs: ContainerStatus, spec: Obj) -> list[int]:
        ports = [int(p["containerPort"]) for p in spec.get("ports") or []
                 if p.get("protocol", "TCP") == "TCP" and p.get("containerPort")]
        if not ports and not spec.get("command") and not spec.get("args"):
            # The image's EXPOSE says what its own entrypoint and cmd serve; a replaced command
            # or cmd (`kubectl run … -- sh`) may serve nothing, and must not wait forever for a
            # port it never opens.
            info = self._images.get(cs.name)
            for ep in info.exposed_ports if info else []:
                num, _, proto = str(ep).partition("/")
                if num.isdigit() and (proto or "tcp").lower() == "tcp":
                    ports.append(int(num))
        return ports

    async def _port_gate(self, cs: ContainerStatus, ports: list[int]) -> None:
        """Mark the container Ready once every declared TCP port accepts a connection."""
        pending = list(ports)
        delay = PORT_GATE_POLL[0]
        while pending and cs.name in self.handles and not self.terminating.is_set():
            port = pending[0]
            try:
                _, w = await asyncio.wait_for(asyncio.open_connection(self._sandbox.ip, port), 1.0)
                w.close()
                pending.pop(0)
                continue
            except (TimeoutError, OSError):
                # Most servers listen within milliseconds of starting; slow ones are polled
                # less often.
                await asyncio.sleep(delay)
                delay = min(delay * 2, PORT_GATE_POLL[1])
        if not pending and cs.name in self.handles and not self.terminating.is_set():
            log.debug("pod %s: %s: container %s accepts connections on %s", self.key, self._since(), cs.name, ports)
            cs.ready = True
            self._changed()

    def _kill_for_probe(self, cs: ContainerStatus, spec: Obj, kind: str) -> None:
        handle = self.handles.get(cs.name)
        if handle is None:
            return
        self._event(NORMAL, "Killing", f"Container {cs.name} failed {kind} probe, will be restarted", cs.name)
        grace = float(self.pod["spec"].get("terminationGracePeriodSeconds", 30))
        self._spawn(self.host.runtime.stop_container(handle, grace))

    def _stop_probes(self, cs: ContainerStatus) -> None:
        for p in self.probers.pop(cs.name, []):
            p.stop()
        gate = self._gates.pop(cs.name, None)
        if gate is not None:
            gate.cancel()

    def volume_path(self, name: str) -> str | None:
        """Where the pod's volume `name` is on the node, once set up."""
        return self.volumes.paths.get(name) if self.volumes is not None else None

    # -- the node ends the pod ----------------------------------------------------------------
    def _halted(self) -> bool:
        return self.terminating.is_set() or self.failure is not None

    def finished(self) -> bool:
        """The pod is done on this node (terminal, failed by the node, or going away)."""
        if self.failure is not None or self.done.is_set():
            return True
        return self.status()["phase"] in ("Succeeded", "Failed")

    def _deadline_exceeded(self) -> None:
        if self.finished() or self.terminating.is_set():
            return  # a pod that already ended keeps its own phase
        self._event(NORMAL, deadline.REASON, deadline.MESSAGE)
        self._fail_task = asyncio.get_running_loop().create_task(self.fail(deadline.REASON, deadline.MESSAGE))

    async def fail(self, reason: str, message: str, *, grace: float | None = None,
                   condition: Obj | None = None) -> None:
        """Fail the pod on this node for good: phase Failed with reason/message (and a pod
        `condition`, e.g. DisruptionTarget), containers stopped within `grace` (default the pod's)."""
        if self._halted():
            return
        self.failure = (reason, message)
        self.failure_condition = condition
        self._changed()
        if grace is None:
            grace = float(self.pod["spec"].get("terminationGracePeriodSeconds", 30))
        await self._stop_all(grace)
        # Loops waiting on a container see its exit and return; ones pulling or backing off are ended.
        if self._container_tasks:
            _, pending = await asyncio.wait(self._container_tasks, timeout=1.0)
            for t in pending:
                t.cancel()
        self._changed()

    # -- termination -------------------------------------------------------------------------
    async def _terminate(self) -> None:
        md = self.pod["metadata"]
        grace = float(md.get("deletionGracePeriodSeconds", self.pod["spec"].get("terminationGracePeriodSeconds", 30)))
        # Unready first, so the proxies stop sending new connections, then wait for them to
        # drain it. No Service can route to a pod no Service selects: it is stopped at once
        # and reported once, stopped (one write and no drain lookups per deleted pod).
        served = may_be_served(self.pod, self.host.services_for(self.pod))
        self._stopping = not served
        for cs in self.main + self.init:
            cs.ready = False
        self._changed()
        if served:
            await self._flush_status()
            if self.handles and grace > 0:
                await self.host.wait_drained(self.pod, drain_wait_bound(grace))
        # The grace period starts after the drain wait: preStop and SIGTERM keep all of it.
        deadline = time.monotonic() + grace
        # Containers stopping one by one, the sandbox going: the writer holds these changes
        # (bounded by START_HOLD each) and one write before the delete reports them all.
        self._stopping = True
        for cs in self.main:
            if cs.name in self.handles:
                self._event(NORMAL, "Killing", f"Stopping container {cs.name}", cs.name)
        hooks = []
        for cs in self.main:
            spec = self.c_spec.get(cs.name, {})
            pre = (spec.get("lifecycle") or {}).get("preStop")
            if pre and cs.name in self.handles:
                hooks.append(self._run_hook(cs, spec, pre, max(0.0, deadline - time.monotonic())))
        if hooks:
            await asyncio.gather(*hooks, return_exceptions=True)
        await self._stop_all(max(0.0, deadline - time.monotonic()))
        for t in self._container_tasks:
            t.cancel()
        await asyncio.gather(*self._container_tasks, return_exceptions=True)
        self._stop_volumes()
        if self.sandbox is not None:
            try:
                await self.host.runtime.remove_sandbox(self.sandbox)
            except Exception:
                log.exception("removing sandbox of %s", self.key)
        self._stopping = False
        await self._flush_status()
        await self.host.delete_pod(self.pod)

    async def _stop_all(self, grace: float) -> None:
        stops = [self.host.runtime.stop_container(h, grace) for h in list(self.handles.values())]
        for cs in list(self.probers):
            self._stop_probes_by_name(cs)
        if stops:
            await asyncio.gather(*stops, return_exceptions=True)

    def _stop_probes_by_name(self, name: str) -> None:
        for p in self.probers.pop(name, []):
            p.stop()

    # -- status ------------------------------------------------------------------------------
    def status(self) -> Obj:
        """The pod status as of now."""
        st = build_status(self.pod, init=self.init, main=self.main, host_ip=self.host.node_ip,
                          pod_ip=self.sandbox.ip if self.sandbox else "", start_time=self.start_time,
                          sandbox_ready=self.sandbox is not None, now=meta.rfc3339())
        if self.failure is not None:
            st["phase"] = "Failed"
            st["reason"], st["message"] = self.failure
            if self.failure_condition is not None:
                cond = self.failure_condition
                st["conditions"] = [c for c in st.get("conditions") or [] if c.get("type") != cond["type"]] + [cond]
        return st

    async def _flush_status(self) -> bool:
        """Write the current status if it changed; False when the write failed (dirty again)."""
        self.dirty.clear()
        st = self.status()
        if st == self._sent:
            return True
        try:
            t0 = time.monotonic()
            await self.host.write_status(self.pod, st)
            log.debug("pod %s: %s: status %s (ready %s) written in %.0f ms", self.key, self._since(), st.get("phase"),
                      all(c.ready for c in self.main), (time.monotonic() - t0) * 1000)
            self._sent = st
        except NotFound:
            pass  # the pod is gone; its deletion reaches the agent as a watch event
        except Exception as e:
            if not (isinstance(e, StatusError) or retry.is_retriable(e)):
                raise
            # 429, 5xx, a dropped connection, or a rejected write: the next attempt sends
            # the newest status, after a back-off so a busy server is not hammered.
            log.debug("status of %s: %s", self.key, e)
            self.dirty.set()
            self._last_write_error = e
            return False
        return True

    def _starting(self) -> bool:
        """Whether a container is being created or waits for its ports, or termination is
        stopping them (the pod's next change is near)."""
        if self._stopping:
            return True
        if self._halted():
            return False
        if any(not t.done() for t in self._gates.values()):
            return True
        # From the sandbox to the runtime's start (a present image looked up, the container
        # created) nothing the pod shows changes but the wait: one write at the end says it all.
        return any((c.state.get("waiting") or {}).get("reason") == "ContainerCreating" for c in self.init + self.main)

    async def _hold_while_starting(self) -> None:
        """Let the changes of a start that is under way gather, for at most START_HOLD."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_HOLD
        while self._starting() and (left := deadline - loop.time()) > 0:
            self._progress.clear()
            try:
                await asyncio.wait_for(self._progress.wait(), left)
            except TimeoutError:
                return

    async def _status_writer(self) -> None:
        failures = 0
        while not self.done.is_set():
            await self.dirty.wait()
            await self._hold_while_starting()
            if await self._flush_status():
                failures = 0
                await asyncio.sleep(0.01)  # coalesce bursts of changes into one write
            else:
                await asyncio.sleep(retry.backoff(self._last_write_error or TimeoutError(), failures))
                failures += 1
