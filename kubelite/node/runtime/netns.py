"""Pod networking for the process runtime: one network namespace per pod, or 127.x addresses.

`netns` mode (root or CAP_NET_ADMIN, and a working `ip`): a node bridge (default `kl0`)
holds the first address of the node's pod CIDR; each pod gets a namespace `kl-<uid8>`,
a veth pair whose host end `klv<uid8>` is enslaved to the bridge and whose pod end is
`eth0` with the pod's IP, loopback up and a default route via the bridge. Containers
and exec sessions enter the namespace through `nsenter --net=…`, which execs the
command in place, so the process we spawn is the container's own process.

`host` mode (rootless fallback): pods share the host network; every pod gets its own
address from 127.0.0.0/8 (Linux routes the whole block to `lo`, so nothing needs to
be configured) and is told to bind it through POD_IP.

Either way teardown leaves nothing behind: namespaces, veths and the bridge this
object created are deleted by `cleanup_all`.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import shutil
import subprocess
from collections.abc import Iterable
from typing import Protocol

log = logging.getLogger(__name__)

DEFAULT_HOST_CIDR = "127.1.0.0/16"
DEFAULT_POD_CIDR = "10.244.0.0/24"
DEFAULT_BRIDGE = "kl0"
NETNS_DIR = "/run/netns"


class NetworkError(Exception):
    """Setting up or tearing down a pod network failed."""


class PodNetwork(Protocol):
    """How the runtime gives a pod an address and runs commands inside its network."""

    mode: str

    async def setup(self, uid: str) -> tuple[str, str | None]:
        """Give pod `uid` an address; return (ip, netns name or None)."""

    async def teardown(self, uid: str) -> None:
        """Release pod `uid`'s address and namespace."""

    def enter(self, netns: str | None, argv: list[str]) -> list[str]:
        """argv that runs `argv` inside the pod's network."""

    async def cleanup_all(self) -> None:
        """Release everything this network made."""


class _Allocator:
    """Hands out host addresses of a CIDR, skipping reserved ones."""

    def __init__(self, cidr: str, reserved: Iterable[str] = ()):
        self.net = ipaddress.ip_network(cidr, strict=False)
        self.reserved = set(reserved)
        self.by_uid: dict[str, str] = {}
        self._next = 0

    def allocate(self, uid: str) -> str:
        if uid in self.by_uid:
            return self.by_uid[uid]
        used = set(self.by_uid.values()) | self.reserved
        hosts = self.net.num_addresses - 2
        for _ in range(hosts):
            self._next = self._next % hosts + 1
            ip = str(self.net.network_address + self._next)
            # .0 and .255 look odd as pod addresses; skip them in big blocks as well.
            if ip not in used and not ip.endswith((".0", ".255")):
                self.by_uid[uid] = ip
                return ip
        raise NetworkError(f"no free address left in {self.net}")

    def release(self, uid: str) -> None:
        self.by_uid.pop(uid, None)


class HostNetwork:
    """Rootless fallback: the host network, a distinct 127.x address per pod."""

    mode = "host"

    def __init__(self, cidr: str = DEFAULT_HOST_CIDR):
        net = ipaddress.ip_network(cidr, strict=False)
        if not isinstance(net, ipaddress.IPv4Network) or not net.subnet_of(ipaddress.IPv4Network("127.0.0.0/8")):
            raise ValueError(f"host-network pod addresses must be in 127.0.0.0/8, got {cidr}")
        self.alloc = _Allocator(cidr, {"127.0.0.1"})

    async def setup(self, uid: str) -> tuple[str, str | None]:
        """The next free 127.x address; no namespace."""
        return self.alloc.allocate(uid), None

    async def teardown(self, uid: str) -> None:
        """Give the pod's address back."""
        self.alloc.release(uid)

    def enter(self, netns: str | None, argv: list[str]) -> list[str]:
        """The host network needs no entering: `argv` as is."""
        return argv

    async def cleanup_all(self) -> None:
        """Forget every address."""
        self.alloc.by_uid.clear()


class NetnsNetwork:
    """One network namespace per pod, veths into a node bridge."""

    mode = "netns"

    def __init__(self, pod_cidr: str = DEFAULT_POD_CIDR, bridge: str = DEFAULT_BRIDGE, prefix: str = "kl"):
        self.net = ipaddress.ip_network(pod_cidr, strict=False)
        self.gateway = str(self.net.network_address + 1)
        self.bridge = bridge
        self.prefix = prefix
        self.alloc = _Allocator(pod_cidr, {self.gateway})
        self.namespaces: dict[str, str] = {}
        self._bridge_made = False
        self._lock = asyncio.Lock()
        self.service_routing = False  # set by the agent when the server runs the nftables Service path
        self._routing_set = False

    def names(self, uid: str) -> tuple[str, str]:
        """(namespace, host veth) names for a pod; interface names stay within 15 bytes."""
        short = uid.replace("-", "")[:8]
        return f"{self.prefix}-{short}", f"{self.prefix}v{short}"[:15]

    async def setup(self, uid: str) -> tuple[str, str | None]:
        """Namespace, veth into the bridge, address and default route for pod `uid`."""
        if uid in self.namespaces:  # already set up
            return self.alloc.allocate(uid), self.namespaces[uid]
        ip, ns = await self.add_namespace(uid)
        await self.configure_namespace(uid)
        return ip, ns

    async def add_namespace(self, uid: str) -> tuple[str, str]:
        """The first half of `setup`: pod `uid`'s address, its namespace and the veth whose
        host end is in the bridge. Containers may join the namespace from here on, while
        `configure_namespace` sets up its inside."""
        async with self._lock:
            # Only the bridge is shared: the pods' own `ip` commands run concurrently.
            await self._ensure_bridge()
        ns, veth = self.names(uid)
        ip = self.alloc.allocate(uid)
        if uid in self.namespaces:
            return ip, ns
        self.namespaces[uid] = ns
        try:
            # One `ip` process per namespace side instead of one per command (each costs ~10 ms).
            await _ip_batch(None, [
                ["netns", "add", ns],
                ["link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns],
                ["link", "set", veth, "master", self.bridge, "up"]])
        except NetworkError:
            await self.teardown(uid)
            raise
        # Hairpin: a pod reaching itself through a Service's DNAT leaves and re-enters by this port.
        _sysctl(f"/sys/class/net/{veth}/brport/hairpin_mode", "1")
        return ip, ns

    async def configure_namespace(self, uid: str) -> None:
        """The second half of `setup`: loopback, eth0 with the pod's address, default route."""
        ns, _ = self.names(uid)
        ip = self.alloc.allocate(uid)
        try:
            await _ip_batch(ns, [
                ["link", "set", "lo", "up"],
                ["addr", "add", f"{ip}/{self.net.prefixlen}", "dev", "eth0"],
                ["link", "set", "eth0", "up"],
                ["route", "add", "default", "via", self.gateway]])
        except NetworkError:
            await self.teardown(uid)
            raise

    async def teardown(self, uid: str) -> None:
        """Delete the pod's veth and namespace and release its address."""
        ns, veth = self.names(uid)
        await _ip("link", "del", veth, check=False)
        if self.namespaces.pop(uid, None) or os.path.exists(os.path.join(NETNS_DIR, ns)):
            await _ip("netns", "del", ns, check=False)
        self.alloc.release(uid)

    def enter(self, netns: str | None, argv: list[str]) -> list[str]:
        """`argv` under nsenter into the pod's network namespace."""
        if not netns:
            return argv
        return [shutil.which("nsenter") or "nsenter", f"--net={os.path.join(NETNS_DIR, netns)}", "--"] + argv

    async def cleanup_all(self) -> None:
        """Tear down every pod network, then the bridge if this object made it."""
        for uid in list(self.namespaces):
            await self.teardown(uid)
        if self._bridge_made:
            await _ip("link", "del", self.bridge, check=False)
            self._bridge_made = False

    async def _ensure_bridge(self) -> None:
        if not os.path.exists(f"/sys/class/net/{self.bridge}"):
            await _ip("link", "add", self.bridge, "type", "bridge")
            self._bridge_made = True
            await _ip("addr", "add", f"{self.gateway}/{self.net.prefixlen}", "dev", self.bridge)
            await _ip("link", "set", self.bridge, "up")
        if self.service_routing and not self._routing_set:
            # The kernel Service path (proxy/nftables.py, whose table keeps forwarded traffic
            # on the pod bridges): pods' traffic DNATed to another pod is routed back into
            # this bridge, and to a node loopback endpoint (the API server) it needs
            # route_localnet; on this bridge only.
            for knob in ("forwarding", "route_localnet"):
                _sysctl(f"/proc/sys/net/ipv4/conf/{self.bridge}/{knob}", "1")
            self._routing_set = True


def _sysctl(path: str, value: str) -> None:
    try:
        with open(path, "w") as f:
            f.write(value)
    except OSError as e:
        log.warning("cannot set %s: %s", path, e)


async def _ip(*args: str, check: bool = True) -> str:
    proc = await asyncio.create_subprocess_exec(
        "ip", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    if check and proc.returncode != 0:
        raise NetworkError(f"ip {' '.join(args)}: {err.decode().strip()}")
    return out.decode()


async def _ip_batch(netns: str | None, commands: list[list[str]]) -> None:
    """Run `commands` through one `ip -batch` (inside namespace `netns` when given); the
    first failing command stops the batch and is named in the NetworkError."""
    text = "".join(" ".join(c) + "\n" for c in commands)
    proc = await asyncio.create_subprocess_exec(
        "ip", *(["-n", netns] if netns else []), "-batch", "-", stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate(text.encode())
    if proc.returncode != 0:
        raise NetworkError(f"ip {'-n ' + netns + ' ' if netns else ''}-batch: {err.decode().strip()}")


def netns_supported() -> bool:
    """Whether this process can create network namespaces (root/CAP_NET_ADMIN and `ip`, `nsenter`)."""
    if not shutil.which("ip") or not shutil.which("nsenter"):
        return False
    if os.geteuid() != 0 and not _has_cap_net_admin():
        return False
    probe = f"klprobe-{os.getpid()}"
    try:
        made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False
    if made:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True, timeout=10)
    return made


def _has_cap_net_admin() -> bool:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) & (1 << 12))
    except OSError:
        pass
    return False


def make_network(mode: str = "host", *, pod_cidr: str = DEFAULT_POD_CIDR, host_cidr: str = DEFAULT_HOST_CIDR,
                 bridge: str = DEFAULT_BRIDGE) -> PodNetwork:
    """Pick the pod network for `mode` ("auto", "host" or "netns")."""
    if mode not in ("auto", "host", "netns"):
        raise ValueError(f"unknown network mode {mode!r}")
    if mode == "netns" or (mode == "auto" and netns_supported()):
        if mode == "netns" and not netns_supported():
            raise NetworkError("network mode netns needs root or CAP_NET_ADMIN and the ip/nsenter tools")
        log.info("pod network: one network namespace per pod, bridge %s, pod CIDR %s", bridge, pod_cidr)
        return NetnsNetwork(pod_cidr, bridge)
    if mode == "auto":
        log.warning("pod network: no CAP_NET_ADMIN or no `ip`; falling back to the host network "
                    "with one 127.x address per pod from %s (apps must bind POD_IP)", host_cidr)
    else:
        log.info("pod network: host network, one 127.x address per pod from %s", host_cidr)
    return HostNetwork(host_cidr)
