"""The NetworkPolicy enforcer: an API client whose informers (NetworkPolicies, Pods,
Namespaces) drive the nftables tables of ``rules.py``.

Every change marks the state dirty; one loop rebuilds the whole transaction from the
caches and applies it with ``nft -f`` when the tables' text changed (level-based, like
the proxy). The tables outlive the process when the pods do (oci runtime), and the next
enforcer on the same data directory replaces them in one transaction, never flushing
first: the kernel holds the old rules until the new ones are in.

Bridged traffic: the ``bridge`` table needs connection tracking of bridged frames
(nf_conntrack_bridge). Where the kernel cannot do that, the ``ip`` table alone decides,
which sees bridged frames only through br_netfilter: the enforcer then switches
``nf_call_iptables`` on for its own node bridge (the machine's other bridges are left
alone), and warns when that is not possible.
"""
from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from kubelite.api import meta
from kubelite.api.resources import NAMESPACES, NETWORKPOLICIES, PODS
from kubelite.client.informer import InformerFactory
from kubelite.client.protocols import APIClient, SharedInformerFactory
from kubelite.netpol.rules import FAMILIES, Ruleset, build_ruleset
from kubelite.proxy.nftables import NftError, nft

log = logging.getLogger(__name__)
Obj = dict[str, Any]

USER = "kubelite:network-policy"  # the enforcer's identity (bootstrap ClusterRole of the same name)
RETRY = 1.0  # seconds before a failed apply is tried again
BRNF_SYSCTL = "/proc/sys/net/bridge/bridge-nf-call-iptables"

_PROBE = "table bridge {t} {{ chain c {{ type filter hook forward priority 0; ct state established accept; }} }}\n"


async def bridge_conntrack() -> bool:
    """Whether nft accepts connection-tracking rules in the bridge family here (checked, not applied)."""
    try:
        proc = await asyncio.create_subprocess_exec("nft", "-c", "-f", "-", stdin=asyncio.subprocess.PIPE,
                                                    stdout=asyncio.subprocess.DEVNULL,
                                                    stderr=asyncio.subprocess.DEVNULL)
    except OSError:
        return False
    await proc.communicate(_PROBE.format(t="kubelite_np_probe").encode())
    return proc.returncode == 0


async def _run(*argv: str) -> bool:
    try:
        proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.DEVNULL,
                                                    stderr=asyncio.subprocess.DEVNULL)
    except OSError:
        return False
    return await proc.wait() == 0


def _brnf_on() -> bool:
    try:
        with open(BRNF_SYSCTL) as f:
            return f.read().strip() == "1"
    except OSError:
        return False


async def delete_tables(table: str) -> None:
    """Remove the enforcer's tables (every family) if they exist."""
    for family in FAMILIES:
        try:
            await nft("", "delete", "table", family, table)
        except NftError as e:
            if "No such file" not in str(e):
                log.warning("network-policy: cannot delete nftables table %s %s: %s", family, table, e)


class NetworkPolicyEnforcer:
    """Keeps this node's NetworkPolicy tables in step with the API."""

    def __init__(self, client: APIClient, *, table: str, bridge: str = "", delete_on_stop: bool = True,
                 factory: SharedInformerFactory | None = None):
        self.client = client
        self.table = table
        self.bridge = bridge  # this node's pod bridge ("" when unknown)
        self.delete_on_stop = delete_on_stop
        self._own_factory = factory is None
        self.factory: SharedInformerFactory = factory or InformerFactory(client)
        self.policies = self.factory.informer(NETWORKPOLICIES)
        self.pods = self.factory.informer(PODS)
        self.namespaces = self.factory.informer(NAMESPACES)
        for inf in (self.policies, self.pods, self.namespaces):
            inf.add_handler(self._changed, self._updated, self._changed)
        self.applied: Ruleset | None = None
        self.applies = 0  # transactions sent to the kernel (tests, diagnostics)
        self.bridge_table = True
        self.synced = asyncio.Event()
        self._dirty = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None

    def _changed(self, obj: Obj) -> None:
        self._dirty.set()

    def _updated(self, old: Obj, new: Obj) -> None:
        # Pod status churn (conditions, restarts) that moves nothing the rules read is skipped.
        if (meta.labels(old) != meta.labels(new) or old.get("spec") != new.get("spec")
                or (old.get("status") or {}).get("podIP") != (new.get("status") or {}).get("podIP")
                or (old.get("status") or {}).get("phase") != (new.get("status") or {}).get("phase")):
            self._dirty.set()

    async def start(self) -> None:
        """Decide where bridged traffic is filtered, sync the caches, apply the first ruleset."""
        self.bridge_table = await bridge_conntrack()
        if not self.bridge_table:
            await self._bridged_through_ip()
        self.factory.start()
        await asyncio.gather(self.policies.wait_synced(), self.pods.wait_synced(), self.namespaces.wait_synced())
        await self.flush()
        self.synced.set()
        self._loop = asyncio.create_task(self._flush_loop(), name="network-policy")

    async def _bridged_through_ip(self) -> None:
        if _brnf_on():
            log.info("network-policy: no bridge conntrack here; bridged pod traffic is filtered in the ip "
                     "family through br_netfilter")
            return
        if self.bridge and await _run("ip", "link", "set", "dev", self.bridge, "type", "bridge",
                                      "nf_call_iptables", "1"):
            log.info("network-policy: no bridge conntrack here; %s hands its IPv4 frames to the ip family "
                     "(nf_call_iptables)", self.bridge)
            return
        log.warning("network-policy: neither bridge conntrack nor br_netfilter is available: traffic between "
                    "two pods on this node is not filtered (Service and off-node traffic is)")

    async def _flush_loop(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            try:
                await self.flush()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # nft refused or failed to run: try again, the state may have moved on
                log.error("network-policy: applying %s failed: %s", self.table, e)
                await asyncio.sleep(RETRY)
                self._dirty.set()

    async def flush(self) -> None:
        """Apply the rules for the caches' current view when they differ from what the kernel holds."""
        rs = build_ruleset(self.table, self.policies.list(), self.pods.list(), self.namespaces.list(),
                           bridge=self.bridge_table)
        if self.applied is not None and rs.body == self.applied.body:
            return
        await nft(rs.text)
        self.applied = rs
        self.applies += 1

    async def stop(self) -> None:
        """Stop syncing; delete the tables unless the pods outlive this process (oci)."""
        if self._loop is not None:
            self._loop.cancel()
            await asyncio.gather(self._loop, return_exceptions=True)
            self._loop = None
        if self._own_factory:
            await self.factory.stop()
        if self.delete_on_stop:
            await delete_tables(self.table)


async def warn_unenforced(client: APIClient, why: str, stop: asyncio.Event) -> None:
    """Where nothing enforces NetworkPolicy: log once per policy that it has no effect."""
    factory = InformerFactory(client)
    policies = factory.informer(NETWORKPOLICIES)
    warned: set[str] = set()
    changed = asyncio.Event()
    policies.add_handler(lambda o: changed.set(), None, None)
    factory.start()
    try:
        while not stop.is_set():
            await policies.wait_synced()
            for pol in policies.list():
                key = meta.key(pol)
                if key not in warned:
                    warned.add(key)
                    log.warning("NetworkPolicy %s is not enforced: %s", key, why)
            changed.clear()
            stopped = asyncio.ensure_future(stop.wait())
            woke = asyncio.ensure_future(changed.wait())
            try:
                await asyncio.wait([stopped, woke], return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopped.cancel()
                woke.cancel()
    finally:
        await factory.stop()


def data_dir_table(data_dir: str) -> str | None:
    """The enforcer's table of the server on ``data_dir`` (from its remembered service range)."""
    from kubelite.netpol.rules import table_name
    from kubelite.proxy.ranges import remembered
    cidr = remembered(os.path.abspath(data_dir))
    return table_name(cidr) if cidr else None
