"""ClusterIP and NodePort allocation for Services (upstream's ipallocator/portallocator).

Each range is a bitmap kept in the store as upstream keeps it, in a RangeAllocation
(``/registry/ranges/serviceips`` and ``/registry/ranges/servicenodeports``; ``data`` is
the bitmap as a big-endian number, bit i = the i-th address or port of the range).
Every allocation and release is a compare-and-swap update of that key, so API servers
sharing one store (etcd) never hand out the same address or port; within one server a
lock keeps its own writers from racing each other for the key.  A value is reserved
before the Service is written and given back if that write fails; a server that dies
in between leaks it until the repair pass (upstream's repair controller, at start and
every few minutes) frees values no Service holds, and marks values Services hold that
the bitmap lost.
"""
from __future__ import annotations

import asyncio
import base64
import ipaddress
import logging
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson

from kubelite.api import meta
from kubelite.api.errors import Cause, invalid
from kubelite.store.base import KeyExists, KeyNotFound, RevisionMismatch, Store, StoreError

Obj = dict[str, Any]
T = TypeVar("T")
log = logging.getLogger(__name__)

NODE_PORT_RANGE = (30000, 32767)
SERVICE_IPS_KEY = "/registry/ranges/serviceips"
NODE_PORTS_KEY = "/registry/ranges/servicenodeports"
SERVICES_PREFIX = "/registry/core/services/"
CAS_TRIES = 200
# A value the bitmap holds but no Service does is freed only after this many repair passes
# saw it so (upstream's numRepairsBeforeLeakCleanup): it may belong to a create in flight.
REPAIRS_BEFORE_LEAK_CLEANUP = 3
REPAIR_INTERVAL = 180.0  # seconds between repair passes (upstream's 3 minutes)


class Bitmap:
    """The used offsets of one range."""

    def __init__(self, range_text: str, size: int, bits: int = 0):
        self.range = range_text
        self.size = size
        self.bits = bits

    def has(self, i: int) -> bool:
        """Whether offset ``i`` is taken."""
        return bool(self.bits >> i & 1)

    def set(self, i: int) -> None:
        """Take offset ``i``."""
        self.bits |= 1 << i

    def clear(self, i: int) -> None:
        """Free offset ``i``."""
        self.bits &= ~(1 << i)

    def offsets(self) -> list[int]:
        """Every taken offset, ascending."""
        out, b, i = [], self.bits, 0
        while b:
            if b & 1:
                out.append(i)
            b >>= 1
            i += 1
        return out

    def encode(self, name: str) -> bytes:
        """The stored RangeAllocation."""
        data = self.bits.to_bytes((self.bits.bit_length() + 7) // 8, "big")
        return orjson.dumps({"apiVersion": "v1", "kind": "RangeAllocation",
                             "metadata": {"name": name, "creationTimestamp": meta.rfc3339()},
                             "range": self.range, "data": base64.b64encode(data).decode()})

    @staticmethod
    def decode(value: bytes, size: int) -> Bitmap:
        """A stored RangeAllocation back into a bitmap."""
        d = orjson.loads(value)
        return Bitmap(str(d.get("range") or ""), size, int.from_bytes(base64.b64decode(d.get("data") or ""), "big"))


class RangeKey:
    """One bitmap in the store, changed only by guarded read-modify-write."""

    def __init__(self, store: Store | None, key: str, range_text: str, size: int):
        self.store = store
        self.key = key
        self.name = key.rsplit("/", 1)[1]
        self.range = range_text
        self.size = size
        self.lock = asyncio.Lock()
        self._memory = Bitmap(range_text, size)  # without a store (unit tests)

    async def read(self) -> tuple[Bitmap, int | None]:
        """The bitmap and the revision it was read at (None: not stored yet)."""
        if self.store is None:
            return Bitmap(self.range, self.size, self._memory.bits), 0
        kv = await self.store.get(self.key)
        if kv is None:
            return Bitmap(self.range, self.size), None
        bm = Bitmap.decode(kv.value, self.size)
        bm.range = self.range
        return bm, kv.mod_revision

    async def write(self, bm: Bitmap, revision: int | None) -> bool:
        """Store ``bm`` if the key is still at ``revision``; False when it moved."""
        if self.store is None:
            self._memory.bits = bm.bits
            return True
        try:
            if revision is None:
                await self.store.create(self.key, bm.encode(self.name))
            else:
                await self.store.update(self.key, bm.encode(self.name), revision)
        except (KeyExists, KeyNotFound, RevisionMismatch):
            return False
        return True

    async def change(self, fn: Callable[[Bitmap], T], *, write: bool = True) -> T:
        """Apply ``fn`` to the current bitmap and store the result atomically (``fn`` may
        raise to refuse; it is called again when another server changed the key meanwhile)."""
        async with self.lock:
            for attempt in range(CAS_TRIES):
                bm, rev = await self.read()
                before = bm.bits
                out = fn(bm)
                if not write or bm.bits == before or await self.write(bm, rev):
                    return out
                await asyncio.sleep(random.uniform(0, min(0.05, 0.002 * (attempt + 1))))
        raise StoreError(f"{self.key}: too many concurrent changes")


@dataclass
class Reservation:
    """What one Service write took from the ranges (given back if the write fails), and
    what it let go of (freed once the write succeeded)."""

    ips: list[str] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)
    freed_ips: list[str] = field(default_factory=list)
    freed_ports: list[int] = field(default_factory=list)


def _cluster_ips_of(spec: Obj) -> list[str]:
    if spec.get("type") == "ExternalName":
        return []
    ips = list(spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else []))
    return [ip for ip in ips if ip and ip != "None"]


def _node_ports_of(spec: Obj) -> list[int]:
    return [int(p["nodePort"]) for p in spec.get("ports") or [] if p.get("nodePort")]


class ServiceAllocator:
    """Allocates cluster IPs from a CIDR and node ports from 30000–32767, in the store."""

    def __init__(self, service_cidr: str, *, port_free: Callable[[int, str], bool] | None = None,
                 store: Store | None = None):
        self.net = ipaddress.ip_network(service_cidr)
        # Asked before a port is handed out: another server on this host may route it.
        self.port_free = port_free
        self.ips = RangeKey(store, SERVICE_IPS_KEY, str(self.net), self.net.num_addresses)
        lo, hi = NODE_PORT_RANGE
        self.ports = RangeKey(store, NODE_PORTS_KEY, f"{lo}-{hi}", hi - lo + 1)
        self._leaks: dict[tuple[str, int], int] = {}

    @property
    def api_service_ip(self) -> str:
        """The first address: the ``kubernetes`` Service's cluster IP."""
        return str(self.net.network_address + 1)

    def _use_net(self, cidr: str) -> None:
        self.net = ipaddress.ip_network(cidr)
        self.ips.range, self.ips.size = str(self.net), self.net.num_addresses

    # -- the Service's fields ------------------------------------------------------------
    @staticmethod
    def keep_allocated(svc: Obj, old: Obj) -> None:
        """An update that omits the allocated cluster IPs or node ports keeps the old ones
        (upstream's patchAllocatedValues), so a client's PUT need not echo them."""
        spec, old_spec = svc.setdefault("spec", {}), old.get("spec") or {}
        if spec.get("type") == "ExternalName" or old_spec.get("type") == "ExternalName":
            return
        if not spec.get("clusterIP") and old_spec.get("clusterIP"):
            spec["clusterIP"] = old_spec["clusterIP"]
        if not spec.get("clusterIPs") and old_spec.get("clusterIPs") and spec.get("clusterIP") == old_spec.get("clusterIP"):
            spec["clusterIPs"] = list(old_spec["clusterIPs"])
        if spec.get("type") in ("NodePort", "LoadBalancer"):
            old_np = {(p.get("port"), p.get("protocol", "TCP")): p["nodePort"]
                      for p in old_spec.get("ports") or [] if p.get("nodePort")}
            for p in spec.get("ports") or []:
                if not p.get("nodePort"):
                    np = old_np.get((p.get("port"), p.get("protocol", "TCP")))
                    if np:
                        p["nodePort"] = np

    def allocate(self, svc: Obj, old: Obj | None, others: Iterable[Obj]) -> None:
        """Fill clusterIP(s) and nodePorts against the given Services only (no store)."""
        others = [o for o in others if o["metadata"]["name"] != svc["metadata"]["name"]
                  or o["metadata"].get("namespace") != svc["metadata"].get("namespace")]
        ips, ports = Bitmap(self.ips.range, self.ips.size), Bitmap(self.ports.range, self.ports.size)
        for o in others:
            self._mark(o.get("spec") or {}, ips, ports)
        self._assign(svc, old, ips, ports)

    async def reserve(self, svc: Obj, old: Obj | None, *, dry_run: bool = False) -> Reservation:
        """Fill clusterIP(s) and nodePorts on a Service being created or updated, taking the
        new values in the stored ranges (``dry_run``: checked, not taken); 422 when a
        requested value is taken or out of range."""
        spec = svc.setdefault("spec", {})
        old_spec = (old or {}).get("spec") or {}
        name = svc["metadata"].get("name", "")
        res = Reservation()
        self._prepare(spec, old_spec, name)
        old_ips, old_ports = set(_cluster_ips_of(old_spec)), set(_node_ports_of(old_spec))

        # Each attempt starts from what the client asked: a value picked in an attempt
        # whose write lost the race is not a request.
        asked_ip, asked_ips = spec.get("clusterIP"), spec.get("clusterIPs")
        asked_ports = [p.get("nodePort") for p in spec.get("ports") or []]

        def take_ip(bm: Bitmap) -> None:
            for k, v in (("clusterIP", asked_ip), ("clusterIPs", asked_ips)):
                if v is None:
                    spec.pop(k, None)
                else:
                    spec[k] = v
            self._cluster_ip(spec, old_spec, bm, name)
        await self.ips.change(take_ip, write=not dry_run)
        res.ips = [ip for ip in _cluster_ips_of(spec) if ip not in old_ips]
        try:
            def take_ports(bm: Bitmap) -> None:
                for p, v in zip(spec.get("ports") or [], asked_ports, strict=False):
                    if v is None:
                        p.pop("nodePort", None)
                    else:
                        p["nodePort"] = v
                self._node_ports(spec, old_spec, bm, name)
            await self.ports.change(take_ports, write=not dry_run)
        except BaseException:
            if not dry_run:
                await self.release(res.ips, [])
            raise
        res.ports = [p for p in _node_ports_of(spec) if p not in old_ports]
        new_ips, new_ports = set(_cluster_ips_of(spec)), set(_node_ports_of(spec))
        res.freed_ips = sorted(old_ips - new_ips)
        res.freed_ports = sorted(old_ports - new_ports)
        if dry_run:
            res.ips, res.ports = [], []
        return res

    async def release(self, ips: Iterable[str], ports: Iterable[int]) -> None:
        """Give values back (a failed write's reservation, a deleted Service's); a failure
        only leaks them until the repair pass."""
        ip_offsets = [o for o in (self._ip_offset(ip) for ip in ips) if o is not None]
        port_offsets = [p - NODE_PORT_RANGE[0] for p in ports if NODE_PORT_RANGE[0] <= p <= NODE_PORT_RANGE[1]]

        def clear(offsets: list[int]) -> Callable[[Bitmap], None]:
            def fn(bm: Bitmap) -> None:
                for o in offsets:
                    bm.clear(o)
            return fn
        try:
            if ip_offsets:
                await self.ips.change(clear(ip_offsets))
            if port_offsets:
                await self.ports.change(clear(port_offsets))
        except StoreError as e:
            log.warning("could not free %s %s (the repair pass will): %s", list(ips), list(ports), e)

    async def release_service(self, svc: Obj) -> None:
        """Free everything a deleted Service held."""
        spec = svc.get("spec") or {}
        await self.release(_cluster_ips_of(spec), _node_ports_of(spec))

    def _ip_offset(self, ip: str) -> int | None:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return None
        if addr not in self.net:
            return None
        return int(addr) - int(self.net.network_address)

    def _mark(self, spec: Obj, ips: Bitmap, ports: Bitmap) -> None:
        for ip in _cluster_ips_of(spec):
            o = self._ip_offset(ip)
            if o is not None:
                ips.set(o)
        for p in _node_ports_of(spec):
            if NODE_PORT_RANGE[0] <= p <= NODE_PORT_RANGE[1]:
                ports.set(p - NODE_PORT_RANGE[0])

    def _assign(self, svc: Obj, old: Obj | None, ips: Bitmap, ports: Bitmap) -> None:
        spec = svc.setdefault("spec", {})
        old_spec = (old or {}).get("spec") or {}
        name = svc["metadata"].get("name", "")
        self._prepare(spec, old_spec, name)
        self._cluster_ip(spec, old_spec, ips, name)
        self._node_ports(spec, old_spec, ports, name)

    # -- picking values ------------------------------------------------------------------
    def _prepare(self, spec: Obj, old_spec: Obj, name: str) -> None:
        """Checks that need no range: the requested IP is an address of ours."""
        if spec.get("type") == "ExternalName":
            return
        if old_spec.get("clusterIP") and not spec.get("clusterIP"):
            spec["clusterIP"] = old_spec["clusterIP"]  # immutable; an update may omit it
        ip = spec.get("clusterIP") or ""
        if not ip or ip == "None" or ip == old_spec.get("clusterIP"):
            return
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            raise invalid("Service", "", name, [Cause("FieldValueInvalid",
                          f'Invalid value: "{ip}": must be a valid IP address', "spec.clusterIPs[0]")]) from None
        if addr not in self.net:
            raise invalid("Service", "", name, [Cause(
                "FieldValueInvalid",
                f'Invalid value: "{ip}": failed to allocate IP {ip}: the provided IP ({ip}) is not in the valid range. '
                f'The range of valid IPs is {self.net}',
                "spec.clusterIPs")])

    def _cluster_ip(self, spec: Obj, old_spec: Obj, used: Bitmap, name: str) -> None:
        if spec.get("type") == "ExternalName":
            return
        ip = spec.get("clusterIP") or ""
        if ip == "None":
            spec["clusterIPs"] = ["None"]
            return
        if ip and ip != old_spec.get("clusterIP"):
            o = self._ip_offset(ip)
            if o is not None and used.has(o):
                raise invalid("Service", "", name, [Cause(
                    "FieldValueInvalid",
                    f'Invalid value: []string{{"{ip}"}}: failed to allocate IP {ip}: provided IP is already allocated',
                    "spec.clusterIPs")])
            if o is not None:
                used.set(o)
        if not ip:
            ip = self._free_ip(used)
            spec["clusterIP"] = ip
        spec["clusterIPs"] = [ip]

    def _free_ip(self, used: Bitmap) -> str:
        # Skip the network address and the first host (reserved for `kubernetes`) unless asked.
        size = self.net.num_addresses
        start = random.randrange(2, max(3, size - 1))
        for i in range(size - 3):
            off = 2 + ((start - 2 + i) % (size - 3))
            if not used.has(off):
                used.set(off)
                return str(self.net.network_address + off)
        raise invalid("Service", "", "", [Cause("FieldValueInvalid", "range is full", "spec.clusterIPs")])

    def _pick(self, free: list[int], protocol: str) -> int:
        # A port something else on this host holds (another server's Service, any program)
        # would not answer for us; after a few tries take one anyway, as upstream would.
        for _ in range(64):
            np = random.choice(free)
            if self.port_free is None or self.port_free(np, protocol):
                return np
        return random.choice(free)

    def _node_ports(self, spec: Obj, old_spec: Obj, used: Bitmap, name: str) -> None:
        wants = spec.get("type") in ("NodePort", "LoadBalancer")
        if spec.get("type") == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is False:
            wants = False
        ports = spec.get("ports") or []
        if not wants:
            if spec.get("type") in ("ClusterIP", None, "ExternalName"):
                for p in ports:
                    p.pop("nodePort", None)
            return
        old_by_port = {(p.get("port"), p.get("protocol", "TCP")): p.get("nodePort")
                       for p in old_spec.get("ports") or [] if p.get("nodePort")}
        old_values = {int(v) for v in old_by_port.values()}
        mine: set[int] = set()
        lo, hi = NODE_PORT_RANGE
        for i, p in enumerate(ports):
            np = p.get("nodePort")
            if not np:
                np = old_by_port.get((p.get("port"), p.get("protocol", "TCP")))
            if np:
                np = int(np)
                field = f"spec.ports[{i}].nodePort"
                if not lo <= np <= hi:
                    raise invalid("Service", "", name, [Cause(
                        "FieldValueInvalid",
                        f"Invalid value: {np}: provided port is not in the valid range. The range of valid ports is {lo}-{hi}",
                        field)])
                # A port of the old Service stays ours; one port may serve two protocols.
                if (np not in old_values and np not in mine and used.has(np - lo)) \
                        or (np in mine and np not in old_values):
                    raise invalid("Service", "", name, [Cause(
                        "FieldValueInvalid", f"Invalid value: {np}: provided port is already allocated", field)])
            else:
                free = [n for n in range(lo, hi + 1) if not used.has(n - lo) and n not in mine]
                if not free:
                    raise invalid("Service", "", name, [Cause("FieldValueInvalid", "range is full", f"spec.ports[{i}].nodePort")])
                np = self._pick(free, p.get("protocol") or "TCP")
            p["nodePort"] = np
            used.set(np - lo)
            mine.add(np)

    # -- repair ----------------------------------------------------------------------------
    async def repair(self) -> None:
        """Make the stored bitmaps match the stored Services (upstream's repair controllers):
        values Services hold are marked; values no Service holds are freed once several
        passes saw them so.  A server on a store whose IP range differs from its own takes
        the stored one: the range belongs to the cluster."""
        if self.ips.store is None:
            return
        kv = await self.ips.store.get(SERVICE_IPS_KEY)
        if kv is not None:
            stored = Bitmap.decode(kv.value, 0).range
            if stored and stored != str(self.net):
                log.warning("the cluster's service range is %s (stored); this server was given %s and uses the "
                            "stored one", stored, self.net)
                self._use_net(stored)
        await self._repair(self.ips, lambda spec: [o for o in map(self._ip_offset, _cluster_ips_of(spec)) if o is not None])
        lo, hi = NODE_PORT_RANGE
        await self._repair(self.ports, lambda spec: [p - lo for p in _node_ports_of(spec) if lo <= p <= hi])

    async def _repair(self, rk: RangeKey, held: Callable[[Obj], list[int]]) -> None:
        assert rk.store is not None
        store = rk.store
        before = dict(self._leaks)
        async with rk.lock:
            for _ in range(CAS_TRIES):
                # The bitmap first, then the Services: a value taken after the read makes
                # the write below fail and the pass start over.
                snapshot, rev = await rk.read()
                kvs, _ = await store.list(SERVICES_PREFIX)
                rebuilt = Bitmap(rk.range, rk.size)
                for kv in kvs:
                    svc = orjson.loads(kv.value)
                    for o in held(svc.get("spec") or {}):
                        if rebuilt.has(o):
                            log.warning("%s: %s holds a value another Service holds too (offset %d)", rk.name,
                                        kv.key.removeprefix(SERVICES_PREFIX), o)
                        elif not snapshot.has(o):
                            log.info("%s: offset %d of %s was not marked as allocated; marked now", rk.name, o,
                                     kv.key.removeprefix(SERVICES_PREFIX))
                        rebuilt.set(o)
                leaks: dict[tuple[str, int], int] = {}
                for o in snapshot.offsets():
                    if rebuilt.has(o) or o >= rk.size:
                        continue
                    n = before.get((rk.name, o), 0) + 1
                    if n < REPAIRS_BEFORE_LEAK_CLEANUP:
                        leaks[(rk.name, o)] = n
                        rebuilt.set(o)  # may still be a create in flight
                    else:
                        log.info("%s: offset %d is held by no Service; freed", rk.name, o)
                self._leaks = {k: v for k, v in before.items() if k[0] != rk.name} | leaks
                if (rev is not None and rebuilt.bits == snapshot.bits) or await rk.write(rebuilt, rev):
                    return
        raise StoreError(f"{rk.key}: too many concurrent changes during repair")


async def run_repair(allocator: ServiceAllocator, stop: asyncio.Event, interval: float = REPAIR_INTERVAL) -> None:
    """Repair the ranges every ``interval`` seconds until ``stop`` (the first pass runs at start)."""
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), interval)
        except TimeoutError:
            pass
        if stop.is_set():
            return
        try:
            await allocator.repair()
        except StoreError as e:
            log.warning("repairing the service ranges: %s", e)
