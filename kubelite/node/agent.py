"""The node agent (kubelet twin): registers a Node, heartbeats its Lease, runs the pods
bound to it and serves logs/exec/attach/port-forward for the API server.

It is an API client only: pods come from a watch filtered on ``spec.nodeName``;
status, events and the final pod deletion go through the API.

The agent is the host of its pod workers and of its HTTPS API: it implements the
``PodHost`` and ``PodIndex`` protocols of host.py, which is all those two know of it.
"""
from __future__ import annotations

import asyncio
import logging
import os
import platform
import socket
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from kubelite.api import meta
from kubelite.api.resources import CONFIGMAPS, LEASES, NODES, PODS, SECRETS, SERVICES
from kubelite.client.errors import Conflict, NotFound, StatusError
from kubelite.client.events import EventRecorder
from kubelite.client.informer import InformerFactory
from kubelite.client.protocols import SharedInformerFactory
from kubelite.client.rest import Client
from kubelite.client.retry import with_retries
from kubelite.dns.resolvconf import PodDNS
from kubelite.images import gc as image_gc
from kubelite.images.store import GCPolicy, ImageStore
from kubelite.node import emptydir_eviction, netslot
from kubelite.node.admission import Admitter
from kubelite.node.api import AgentAPI, ServingTLS
from kubelite.node.host import RunningPod
from kubelite.node.podworker import DRAIN_WAIT_MAX, PodWorker
from kubelite.node.runtime.base import Runtime
from kubelite.node.runtime.netns import NetnsNetwork
from kubelite.node.volumes.objects import WatchedObjects
from kubelite.pki import PKI

log = logging.getLogger("kubelite.node")
Obj = dict[str, Any]

LEASE_RENEW = 10.0
LEASE_DURATION = 40
STATUS_EVERY = 60.0
# The kubelet's housekeeping period: pods whose watch event was missed or whose worker
# ended without finishing the job are found within this long.
HOUSEKEEPING_EVERY = 2.0
# A terminating worker gets its grace period, the drain wait before it and this much on
# top before housekeeping stops the pod by force and deletes the object.
TERMINATION_SLACK = 10.0
IMAGE_GC_EVERY = 300.0   # the kubelet's ImageGCPeriod
KUBELET_VERSION = "v1.33.0+kubelite"


@dataclass
class AgentOptions:
    """How the agent runs."""

    node_name: str
    data_dir: str
    runtime: str = "process"
    network: str = "auto"
    pki: PKI | None = None     # the server's PKI when in-process (serving cert from the cluster CA)
    ca_file: str | None = None  # a joined agent: the cluster CA (verifies the API server both ways)
    node_ip: str = "127.0.0.1"
    port: int = 0              # agent API port; 0 picks a free one
    labels: dict[str, str] | None = None
    fake_delay: float = 0.5
    offline: bool = False      # --offline; KUBELITE_OFFLINE=1 also makes the node offline
    registry_config: str = ""  # registries.yaml; default DATA_DIR/registries.yaml when it exists
    pod_max_pids: int | None = None  # --pod-max-pids: the pids limit of each pod (oci runtime)
    image_gc: GCPolicy = field(default_factory=GCPolicy)  # --image-gc-high/low-threshold, --image-minimum-gc-age
    image_gc_period: float = IMAGE_GC_EVERY
    service_routing: bool = False  # the server's nftables Service path: pod bridges forward (netns.py)
    cluster_dns: list[str] = field(default_factory=list)  # the kubelet's --cluster-dns (kube-dns ClusterIP)
    cluster_domain: str = "cluster.local"                  # the kubelet's --cluster-domain
    # A joined agent whose pods get network namespaces takes its pod CIDR from the server
    # (controllers/nodeipam.py) instead of its network slot's, and routes to other nodes.
    pod_cidr_from_server: bool = False


@runtime_checkable
class OutlivesAgent(Protocol):
    """A runtime whose containers outlive the agent (oci): it re-adopts them when the agent
    starts, drops the sandboxes of pods gone meanwhile, and leaves them running when it stops."""

    async def release_unclaimed(self, keep: set[str]) -> int:
        """Remove the sandboxes of pods whose uid is not in `keep`; how many."""

    def detach(self) -> None:
        """Stop watching; leave every container running."""


def node_pod_cidr(opts: AgentOptions, slot: netslot.NetSlot) -> str:
    """The node's spec.podCIDR: the range its runtime takes pod addresses from."""
    if opts.runtime == "fake":
        from kubelite.node.runtime.fake import pod_cidr_for_slot
        return pod_cidr_for_slot(slot.index)  # loopback whatever --network says
    return slot.pod_cidr


def make_runtime(opts: AgentOptions, slot: netslot.NetSlot, images: ImageStore | None = None) -> Runtime:
    """The configured container runtime, its pod network inside this agent's slot; fake nodes
    simulated in one process share ``images``."""
    if opts.runtime == "fake":
        from kubelite.node.runtime.fake import FakeRuntime
        return FakeRuntime(os.path.join(opts.data_dir, "agent", opts.node_name), delay=opts.fake_delay,
                           pod_cidr=node_pod_cidr(opts, slot), images=images)
    from kubelite.images.offline import offline_from_env
    from kubelite.images.pull import Puller
    from kubelite.images.registries import RegistryConfig
    from kubelite.images.store import ImageStore, default_root
    from kubelite.node.runtime.netns import NetnsNetwork, make_network
    # DATA_DIR/images, where `kubelite image import` and `image pull` write too.
    store = ImageStore(default_root(opts.data_dir))
    config = RegistryConfig.load(opts.registry_config or os.path.join(opts.data_dir, "registries.yaml"))
    offline = opts.offline or offline_from_env()
    if offline:
        log.info("offline: images come from the local store and from registries at loopback addresses only")
    puller = Puller(store, offline=offline, config=config)
    pod_dns = PodDNS(list(opts.cluster_dns), opts.cluster_domain, offline=offline)
    if opts.runtime == "oci":
        from kubelite.node.runtime.oci.runtime import OciRuntime
        oci_net = NetnsNetwork(slot.pod_cidr, slot.bridge, prefix=slot.prefix)
        oci_net.service_routing = opts.service_routing
        return OciRuntime(opts.data_dir, images=store, network=oci_net, slot=slot.index,
                          pod_max_pids=opts.pod_max_pids, puller=puller, dns=pod_dns)
    from kubelite.node.runtime.process import ProcessRuntime
    net = make_network(opts.network, pod_cidr=slot.pod_cidr, host_cidr=slot.host_cidr, bridge=slot.bridge)
    if isinstance(net, NetnsNetwork):
        net.prefix = slot.prefix
        net.service_routing = opts.service_routing
    return ProcessRuntime(os.path.join(opts.data_dir, "agent"), pod_network=net, images=store, puller=puller,
                          dns=pod_dns)


class Agent:
    """One node: the host of its pod workers (``PodHost``) and of its API (``PodIndex``)."""

    def __init__(self, client: Client, opts: AgentOptions, factory: SharedInformerFactory | None = None,
                 images: ImageStore | None = None):
        self.client = client
        self.opts = opts
        self.node_name = opts.node_name
        self.node_ip = opts.node_ip
        prefer, keeper = None, None
        if opts.runtime == "oci":
            # Containers that outlived an earlier agent live in its network slot: take it back.
            from kubelite.node.runtime.oci.runtime import remembered_slot, state_dir
            prefer, keeper = remembered_slot(opts.data_dir), os.path.realpath(state_dir(opts.data_dir))
            if prefer is None:
                # Otherwise from the top: agents that know nothing of kept slots take the lowest
                # free one, and would clean up this node's pods while no agent of it runs.
                prefer = netslot.MAX_SLOTS - 1
        # A fake node needs only a pod range of its own, not one of the scarce network slots.
        self.slot = netslot.acquire_fake() if opts.runtime == "fake" else netslot.acquire(prefer, keeper)
        self.runtime = make_runtime(opts, self.slot, images)
        self.recorder = EventRecorder(client, "kubelet", host=opts.node_name)
        self.factory: SharedInformerFactory = factory or InformerFactory(client)
        self.pods = self.factory.informer(PODS, field_selector=f"spec.nodeName={opts.node_name}")
        self.services = self.factory.informer(SERVICES)
        self.objects = WatchedObjects(client)
        self.workers: dict[str, PodWorker] = {}
        self._pods_api = client.resource(PODS)
        self._nodes_api = client.resource(NODES)
        self._leases_api = client.resource(LEASES)
        self.api_port = 0
        self._lease: Obj | None = None  # the node's Lease as last written (renewals start from it)
        # Fire-and-forget work (reaping finished workers, last deletions) is held here so
        # the loop keeps a reference until it is done.
        self._background: set[asyncio.Task[None]] = set()
        # uids whose pod object this agent deleted (or found gone): the informer may still
        # show them for a moment, and housekeeping must not terminate them twice.
        self._deleted: set[str] = set()
        self._forcing: set[str] = set()  # uids being stopped by force by housekeeping
        self._deleting: set[str] = set()  # uids whose final DELETE is in flight
        self._restarts: dict[str, tuple[float, float]] = {}  # uid -> (back-off, next start) for housekeeping
        self.pods.add_handler(self._on_pod, lambda o, n: self._on_pod(n), self._on_pod_deleted)
        self.admitter = Admitter(self._pods_api, self.recorder)
        # A store shared by several simulated nodes is collected by none of them: each knows
        # only its own pods' images.
        self._shared_images = images is not None

    # -- pods ------------------------------------------------------------------------------
    def _on_pod(self, pod: Obj) -> None:
        uid = meta.uid(pod)
        w = self.workers.get(uid)
        if w is not None and not w.done.is_set():
            w.update(pod)
            return
        if w is not None:
            del self.workers[uid]  # ended before _reap ran: a newer event needs a new worker
        if uid in self._deleted or uid in self._deleting:
            return  # its last DELETE is done or under way
        phase = (pod.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed") and not meta.is_deleting(pod):
            return  # finished before we (re)started
        if phase in ("Succeeded", "Failed") and meta.is_deleting(pod):
            self._spawn(self.delete_pod(pod))
            return
        if not meta.is_deleting(pod) and self.admitter.refuses(
                pod, lambda: [x.pod for x in self.workers.values() if not x.finished()]):
            return
        w = PodWorker(self, pod)
        self.workers[uid] = w
        if meta.is_deleting(pod):
            w.terminating.set()
        w.start()
        self._spawn(self._reap(w))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _reap(self, w: PodWorker) -> None:
        await w.done.wait()
        if self.workers.get(w.uid) is w:
            del self.workers[w.uid]

    def _on_pod_deleted(self, pod: Obj) -> None:
        self.admitter.forget(pod)
        self._deleted.discard(meta.uid(pod))
        self._restarts.pop(meta.uid(pod), None)
        w = self.workers.pop(meta.uid(pod), None)
        if w is not None:
            self._spawn(self._kill_and_release(w))

    async def _kill_and_release(self, w: PodWorker) -> None:
        """A pod removed without termination (force delete): stop it and release its sandbox."""
        await w.kill_now()
        if w.sandbox is not None:
            try:
                await self.runtime.remove_sandbox(w.sandbox)
            except Exception:
                log.exception("removing the sandbox of %s", w.key)

    @property
    def volume_api(self) -> WatchedObjects:
        """The watched ConfigMaps and Secrets, and TokenRequests, of the pods' volumes."""
        return self.objects

    def running_pod(self, namespace: str, name: str) -> PodWorker | None:
        """The worker of pod ``namespace/name`` on this node, if any (for the agent API)."""
        for w in self.workers.values():
            md = w.pod["metadata"]
            if md.get("namespace") == namespace and md.get("name") == name:
                return w
        return None

    def running_pods(self) -> list[RunningPod]:
        """The workers of every pod on this node that has not finished (for the summary)."""
        return [w for w in self.workers.values() if not w.finished()]

    def services_for(self, pod: Obj) -> list[Obj]:
        """Services whose env vars a pod gets: its namespace's, plus `kubernetes` from default."""
        ns = meta.namespace(pod)
        out = self.services.list(ns)
        if ns != "default":
            k = self.services.get_by_name("default", "kubernetes")
            if k:
                out = out + [k]
        return out

    async def lookup(self, kind: str, namespace: str, name: str) -> Obj | None:
        """GET a ConfigMap or Secret for env references (None when absent)."""
        info = SECRETS if kind == "Secret" else CONFIGMAPS
        try:
            return await self.client.resource(info).get(name, namespace)
        except NotFound:
            return None

    def image_present(self, image: str) -> bool:
        """Is the image already in the local store (IfNotPresent skips the pull event)?"""
        try:
            return self.runtime.images.resolve(image) is not None
        except Exception:
            return False

    def housekeeping(self, now: float | None = None) -> None:
        """Compare the pods bound here with the workers (the kubelet's HandlePodCleanups).

        Events can be missed (a handler that failed, a worker that ended early, a final
        DELETE that failed for good), and then nothing would ever look at the pod again:
        a deleting pod with no worker gets one that terminates it, a worker that missed
        the deletion is told, a worker stuck past its grace period is stopped by force,
        and a pod that should run and has no worker is started."""
        wall = time.time() if now is None else now
        for pod in self.pods.list():
            uid = meta.uid(pod)
            if uid in self._deleted or uid in self._forcing or uid in self._deleting:
                continue
            w = self.workers.get(uid)
            if w is not None and w.done.is_set():
                del self.workers[uid]  # ended; _reap has not run yet
                w = None
            if w is None:
                if meta.is_deleting(pod):
                    log.info("pod %s is being deleted and has no worker: terminating it", meta.key(pod))
                elif not self._restart_due(uid):
                    continue  # its worker failed not long ago: back off
                self._on_pod(pod)
            elif meta.is_deleting(pod) and not w.terminating.is_set():
                w.update(pod)
            elif meta.is_deleting(pod) and wall > _termination_deadline(pod):
                log.warning("pod %s still terminating past its grace period: stopping it", meta.key(pod))
                self._forcing.add(uid)
                self.workers.pop(uid, None)
                self._spawn(self._force_terminate(w, pod))

    def _restart_due(self, uid: str) -> bool:
        """May housekeeping start a worker for this pod now?  Doubling back-off per pod (2 s to 5 min)."""
        now = time.monotonic()
        delay, due = self._restarts.get(uid, (0.0, 0.0))
        if now < due:
            return False
        delay = min(max(delay * 2, HOUSEKEEPING_EVERY), 300.0)
        self._restarts[uid] = (delay, now + delay)
        return True

    async def _force_terminate(self, w: PodWorker, pod: Obj) -> None:
        try:
            await self._kill_and_release(w)
            await self.delete_pod(pod)
        finally:
            self._forcing.discard(w.uid)

    async def _housekeeping_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), HOUSEKEEPING_EVERY)
            except TimeoutError:
                pass
            try:
                self.housekeeping()
            except Exception:  # a bug here must not end the agent's other loops
                log.exception("pod housekeeping")

    async def write_status(self, pod: Obj, status: Obj) -> None:
        """Merge-patch pod status (lists such as conditions are replaced whole)."""
        cur = self.pods.get(meta.key(pod)) or pod
        old = cur.get("status") or {}
        patch = dict(status)
        for k in old:
            if k not in patch and k not in ("qosClass", "nominatedNodeName"):
                patch[k] = None
        await self._pods_api.patch(meta.name(pod), {"status": patch}, meta.namespace(pod), patch_type="merge",
                                   subresource="status", field_manager="kubelet")

    async def delete_pod(self, pod: Obj) -> None:
        """The last step of termination: remove the pod object (grace 0, same uid), retrying until done."""
        uid = meta.uid(pod)
        if uid in self._deleting:
            return  # already under way (the worker's, or an earlier housekeeping's)
        self._deleting.add(uid)
        try:
            await with_retries(f"deleting pod {meta.key(pod)}", lambda: self._pods_api.delete(
                meta.name(pod), meta.namespace(pod), grace_period_seconds=0, preconditions={"uid": uid}))
        except (NotFound, Conflict):
            pass  # already gone, or a new pod of the same name (the uid precondition failed)
        except StatusError as e:
            log.warning("deleting pod %s: %s", meta.key(pod), e.message)
            return  # housekeeping tries again
        finally:
            self._deleting.discard(uid)
        cur = self.pods.get(meta.key(pod))
        if cur is not None and meta.uid(cur) == uid:
            self._deleted.add(uid)  # until the informer sees it go

    async def wait_drained(self, pod: Obj, timeout: float) -> None:
        """Before SIGTERM: wait (bounded) until no service proxy sends new connections to the pod."""
        from kubelite.proxy.drain import wait_endpoint_drained
        try:
            if not await wait_endpoint_drained(self.client, pod, timeout):
                # Said aloud: a request cut by the SIGTERM that follows is explained by this line.
                log.warning("pod %s: the service proxies did not report it drained within %.0f s; stopping it anyway",
                            meta.key(pod), timeout)
        except Exception as e:  # the handshake may delay a termination, never block it
            log.debug("drain wait for %s: %s", meta.key(pod), e)

    # -- node and lease ----------------------------------------------------------------------
    def node_object(self) -> Obj:
        """The Node as registered: labels, capacity, addresses, nodeInfo, conditions."""
        cpu = os.cpu_count() or 1
        mem_kib = 0
        try:
            with open("/proc/meminfo") as f:
                for line in f:
                    if line.startswith("MemTotal:"):
                        mem_kib = int(line.split()[1])
        except OSError:
            pass
        arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
        capacity = {"cpu": str(cpu), "memory": f"{mem_kib}Ki", "pods": "110", "ephemeral-storage": "0"}
        try:
            st = os.statvfs(self.opts.data_dir)
            capacity["ephemeral-storage"] = f"{st.f_blocks * st.f_frsize // 1024}Ki"
        except OSError:
            pass
        labels = {"beta.kubernetes.io/arch": arch, "beta.kubernetes.io/os": "linux", "kubernetes.io/arch": arch,
                  "kubernetes.io/hostname": self.node_name, "kubernetes.io/os": "linux"}
        labels.update(self.opts.labels or {})
        now = meta.rfc3339()
        os_image = "Linux"
        try:
            with open("/etc/os-release") as f:
                for line in f:
                    if line.startswith("PRETTY_NAME="):
                        os_image = line.split("=", 1)[1].strip().strip('"')
        except OSError:
            pass
        return {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": self.node_name, "labels": labels,
                         "annotations": {"node.alpha.kubernetes.io/ttl": "0",
                                         "volumes.kubernetes.io/controller-managed-attach-detach": "true"}},
            "spec": self._node_spec(),
            "status": {
                "capacity": capacity, "allocatable": dict(capacity),
                "conditions": self._conditions(now, now),
                "addresses": [{"type": "InternalIP", "address": self.node_ip},
                              {"type": "Hostname", "address": self.node_name}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": self.api_port}},
                "nodeInfo": {"machineID": _machine_id(), "systemUUID": _machine_id(), "bootID": _boot_id(),
                             "kernelVersion": platform.release(), "osImage": os_image,
                             "containerRuntimeVersion": f"kubelite-{self.opts.runtime}://0.1.0",
                             "kubeletVersion": KUBELET_VERSION, "kubeProxyVersion": KUBELET_VERSION,
                             "operatingSystem": "linux", "architecture": arch},
            },
        }

    @property
    def pod_network(self) -> NetnsNetwork | None:
        """The runtime's pod network when pods get network namespaces (else None)."""
        from kubelite.node.runtime.netns import NetnsNetwork
        net = getattr(self.runtime, "network", None)
        return net if isinstance(net, NetnsNetwork) else None

    @property
    def cidr_from_server(self) -> bool:
        """Whether the server assigns this node's pod CIDR (node IPAM) rather than its slot."""
        return self.opts.pod_cidr_from_server and self.pod_network is not None

    def _node_spec(self) -> Obj:
        """spec.podCIDR(s) as this node proposes them (none when node IPAM assigns one)."""
        if self.cidr_from_server:
            return {}
        cidr = node_pod_cidr(self.opts, self.slot)
        return {"podCIDR": cidr, "podCIDRs": [cidr]}

    async def _take_pod_cidr(self, stop: asyncio.Event) -> None:
        """Wait for the server's node IPAM to assign spec.podCIDR, then give pods addresses from it."""
        net = self.pod_network
        if net is None or not self.cidr_from_server:
            return
        waited = False
        while not stop.is_set():
            node = await with_retries("reading the node", lambda: self._nodes_api.get(self.node_name))
            cidr = (node.get("spec") or {}).get("podCIDR")
            if cidr:
                net.use_cidr(cidr)
                log.info("pod CIDR %s (assigned by the server)", cidr)
                return
            if not waited:
                log.info("waiting for the server to assign this node a pod CIDR")
                waited = True
            try:
                await asyncio.wait_for(stop.wait(), 0.5)
            except TimeoutError:
                pass

    @staticmethod
    def _conditions(heartbeat: str, transition: str) -> list[Obj]:
        def c(t: str, s: str, reason: str, msg: str) -> Obj:
            return {"type": t, "status": s, "lastHeartbeatTime": heartbeat, "lastTransitionTime": transition,
                    "reason": reason, "message": msg}
        return [c("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                c("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                c("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                c("Ready", "True", "KubeletReady", "kubelet is posting ready status")]

    async def register(self) -> None:
        """Create the Node, or refresh an existing one's status."""
        node = self.node_object()
        try:
            created = await self._nodes_api.create(node)
            created["status"] = node["status"]
            await self._nodes_api.update_status(created)
            self.recorder.event(created, "Normal", "Starting", "Starting kubelet.")
        except Conflict:  # AlreadyExists: registered before; refresh it
            await self.update_node_status(full=True)

    async def update_node_status(self, full: bool = False) -> None:
        """Heartbeat the Node's conditions (and everything else on ``full``)."""
        for _ in range(5):
            cur = await self._nodes_api.get(self.node_name)
            fresh = self.node_object()
            now = meta.rfc3339()
            old = {c["type"]: c for c in (cur.get("status") or {}).get("conditions") or []}
            conds = []
            for c in fresh["status"]["conditions"]:
                o = old.get(c["type"])
                if o and o.get("status") == c["status"]:
                    c["lastTransitionTime"] = o.get("lastTransitionTime", now)
                c["lastHeartbeatTime"] = now
                conds.append(c)
            st = dict(cur.get("status") or {})
            if full:
                st.update(fresh["status"])
            st["conditions"] = conds
            st["daemonEndpoints"] = fresh["status"]["daemonEndpoints"]
            cur["status"] = st
            try:
                await self._nodes_api.update_status(cur)
                return
            except Conflict:
                continue  # someone wrote the Node in between: read it again

    async def _renew_lease(self) -> None:
        ns = "kube-node-lease"
        now = meta.rfc3339_micro()
        # As the kubelet does, renew from the Lease this agent last wrote: one request per
        # renewal instead of a read and a write (a hundred simulated nodes renew every 10 s).
        if self._lease is not None:
            self._lease["spec"]["renewTime"] = now
            self._lease["spec"]["holderIdentity"] = self.node_name
            try:
                self._lease = await self._leases_api.update(self._lease)
                return
            except (Conflict, NotFound):
                self._lease = None  # changed or gone meanwhile: read it again
        try:
            lease = await self._leases_api.get(self.node_name, ns)
            lease["spec"]["renewTime"] = now
            lease["spec"]["holderIdentity"] = self.node_name
            self._lease = await self._leases_api.update(lease)
        except NotFound:
            node = await self._nodes_api.get(self.node_name)
            self._lease = await self._leases_api.create({
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.node_name, "namespace": ns,
                             "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": self.node_name,
                                                  "uid": meta.uid(node)}]},
                "spec": {"holderIdentity": self.node_name, "leaseDurationSeconds": LEASE_DURATION,
                         "renewTime": now}}, ns)

    async def _lease_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                # A few quick retries: a renewal lost to a busy server must not wait 10 s.
                await with_retries("lease renewal", self._renew_lease, attempts=4)
            except Exception as e:
                log.warning("lease renewal failed: %s", e)
            try:
                await asyncio.wait_for(stop.wait(), LEASE_RENEW)
            except TimeoutError:
                pass

    def images_in_use(self) -> set[str]:
        """Every image a pod on this node names or runs (image GC never removes these)."""
        out: set[str] = set()
        for w in list(self.workers.values()):
            spec, status = w.pod.get("spec") or {}, w.pod.get("status") or {}
            for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
                if c.get("image"):
                    out.add(c["image"])
            for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
                if cs.get("imageID"):
                    out.add(cs["imageID"])
        return out

    async def _image_gc_loop(self, stop: asyncio.Event) -> None:
        """The kubelet's image GC, every period: unused images go when the disk fills."""
        await image_gc.run(self.runtime.images, self.opts.image_gc, self.images_in_use, stop,
                           self.opts.image_gc_period)

    async def _status_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), STATUS_EVERY)
            except TimeoutError:
                try:
                    await with_retries("node status update", self.update_node_status, attempts=4)
                except Exception as e:
                    log.warning("node status update failed: %s", e)

    # -- running -----------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Serve the agent API, register, then run pods until stop."""
        if n := self.runtime.reap_orphans():
            log.info("stopped %d process(es) left running by a previous agent on this data directory", n)
        # The tutorial's images are built into the store from this machine's packages, in the
        # background: a pod that needs one first builds it itself.
        # (A shared store is preloaded once by whoever shares it.)
        preload = asyncio.create_task(asyncio.sleep(0) if self._shared_images else
                                      asyncio.to_thread(self.runtime.images.preload_builtins))
        tls = ServingTLS(node_name=self.node_name, dir=os.path.join(self.opts.data_dir, "agent", "tls"),
                         pki=self.opts.pki, ca_file=self.opts.ca_file)
        server = AgentAPI(self, tls)
        self.api_port = await server.start(self.node_ip, self.opts.port)
        await with_retries("registering the node", self.register)
        await self._take_pod_cidr(stop)
        self.factory.start()
        await self.factory.wait_synced()
        if isinstance(self.runtime, OutlivesAgent) and (n := await self.runtime.release_unclaimed(set(self.workers))):
            log.info("removed %d pod sandbox(es) of pods deleted while no agent ran", n)
        loops = [asyncio.create_task(self._lease_loop(stop)), asyncio.create_task(self._status_loop(stop)),
                 asyncio.create_task(self._housekeeping_loop(stop)),
                 asyncio.create_task(emptydir_eviction.run(lambda: list(self.workers.values()), self.recorder, stop))]
        if not self._shared_images:
            loops.append(asyncio.create_task(self._image_gc_loop(stop)))
        log.info("node %s ready (agent API on %s:%d, runtime %s)", self.node_name, self.node_ip, self.api_port,
                 self.opts.runtime)
        try:
            await stop.wait()
        finally:
            preload.cancel()
            for t in loops:
                t.cancel()
            await self.factory.stop()
            await self.objects.stop()
            if isinstance(self.runtime, OutlivesAgent):
                # Like k3s: stopping the agent leaves the containers running (`kubelite killall` stops them).
                self.runtime.detach()
                log.info("node agent stopping; its containers keep running (stop them with `kubelite killall`)")
            await asyncio.gather(*(w.kill_now() for w in list(self.workers.values())), return_exceptions=True)
            try:
                await self.runtime.cleanup_all()
            except Exception:
                log.exception("runtime cleanup")
            await server.stop()
            await self.recorder.flush()
            self.slot.release()


def _termination_deadline(pod: Obj) -> float:
    """When a deleting pod must be gone at the latest (epoch seconds): its deletionTimestamp
    (the delete request plus the grace period), the drain wait and some slack."""
    ts = meta.parse_time(pod["metadata"].get("deletionTimestamp"))
    if ts is None:
        return float("inf")
    return ts.timestamp() + DRAIN_WAIT_MAX + TERMINATION_SLACK


def _machine_id() -> str:
    try:
        return open("/etc/machine-id").read().strip()
    except OSError:
        return "0" * 32


def _boot_id() -> str:
    try:
        return open("/proc/sys/kernel/random/boot_id").read().strip()
    except OSError:
        return ""


async def run_agent(client: Client, opts: AgentOptions, *, stop: asyncio.Event) -> None:
    """Entry point used by ``kubelite server`` and ``kubelite agent``."""
    await Agent(client, opts).run(stop)


def default_node_name() -> str:
    """kubelite-<short host name>."""
    return f"kubelite-{socket.gethostname().split('.')[0].lower()}"
