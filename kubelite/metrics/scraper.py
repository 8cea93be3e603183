"""Periodic scrape of every node's resource summary, turned into rates.

A point is published once two samples of the same container (or node) exist: CPU is the
counter's increase divided by the time between the samples (nanocores), memory is the
newer sample's working set, ``window`` the time between the two, ``timestamp`` the newer
sample's time. A container whose counter went backwards (restarted) waits for a new pair.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from kubelite.api.resources import NODES
from kubelite.apiserver.registry import Registry

log = logging.getLogger("kubelite.metrics")
Obj = dict[str, Any]

DEFAULT_RESOLUTION = 15.0  # metrics-server's --metric-resolution


@dataclass(frozen=True)
class Sample:
    """One reading of a cumulative CPU counter and a working set."""

    time: dt.datetime
    cpu_ns: int
    memory: int


@dataclass(frozen=True)
class Point:
    """A published usage: CPU in nanocores over ``window`` seconds ending at ``time``."""

    time: dt.datetime
    window: float
    cpu_nanocores: int
    memory: int


def rate(old: Sample, new: Sample) -> Point | None:
    """The point two samples give, or None when they cannot (same time, counter reset)."""
    seconds = (new.time - old.time).total_seconds()
    if seconds <= 0 or new.cpu_ns < old.cpu_ns:
        return None
    return Point(new.time, seconds, int((new.cpu_ns - old.cpu_ns) / seconds), new.memory)


def _parse_time(s: Any) -> dt.datetime | None:
    if not isinstance(s, str):
        return None
    try:
        return dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        return None


def _sample(cells: Obj) -> Sample | None:
    cpu, mem = cells.get("cpu") or {}, cells.get("memory") or {}
    when = _parse_time(cpu.get("time")) or _parse_time(mem.get("time"))
    counter = cpu.get("usageCoreNanoSeconds")
    if when is None or not isinstance(counter, int):
        return None
    ws = mem.get("workingSetBytes")
    return Sample(when, counter, ws if isinstance(ws, int) else 0)


@dataclass(frozen=True)
class PodPoints:
    """Every container of one pod, with a common time and window (the newest container's)."""

    time: dt.datetime
    window: float
    containers: tuple[tuple[str, Point], ...]


class NodeLister:
    """What the scraper needs from the API server: the Node objects."""

    def __init__(self, list_nodes: Callable[[], Awaitable[list[Obj]]]):
        self.list_nodes = list_nodes


class MetricsScraper:
    """Scrapes node agents and holds the latest points (in the API server's process)."""

    def __init__(self, nodes: NodeLister, client_ssl: ssl.SSLContext, resolution: float = DEFAULT_RESOLUTION):
        self.nodes = nodes
        self.client_ssl = client_ssl
        self.resolution = resolution
        self._node_samples: dict[str, Sample] = {}
        self._container_samples: dict[tuple[str, str, str, str], Sample] = {}  # ns, pod, uid, container
        self.node_points: dict[str, Point] = {}
        self.pod_points: dict[tuple[str, str], PodPoints] = {}
        self._session: aiohttp.ClientSession | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Scrape every ``resolution`` seconds until ``stop`` is set."""
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=max(5.0, self.resolution)))
        try:
            while not stop.is_set():
                try:
                    await self.scrape_once()
                except Exception:  # one bad round must not end the loop; the next one retries
                    log.exception("metrics scrape failed")
                try:
                    await asyncio.wait_for(stop.wait(), self.resolution)
                except TimeoutError:
                    pass
        finally:
            await self._session.close()

    async def scrape_once(self) -> None:
        """One round over every node; nodes that do not answer keep no points."""
        nodes = await self.nodes.list_nodes()
        results = await asyncio.gather(*(self._fetch(n) for n in nodes), return_exceptions=True)
        node_points: dict[str, Point] = {}
        pod_points: dict[tuple[str, str], PodPoints] = {}
        seen: set[tuple[str, str, str, str]] = set()
        node_seen: set[str] = set()
        for doc in results:
            if not isinstance(doc, dict):
                continue
            self._absorb(doc, node_points, pod_points, seen, node_seen)
        # Forget what was not seen this round: deleted pods, stopped nodes.
        self._container_samples = {k: v for k, v in self._container_samples.items() if k in seen}
        self._node_samples = {k: v for k, v in self._node_samples.items() if k in node_seen}
        self.node_points, self.pod_points = node_points, pod_points

    def _absorb(self, doc: Obj, node_points: dict[str, Point], pod_points: dict[tuple[str, str], PodPoints],
                seen: set[tuple[str, str, str, str]], node_seen: set[str]) -> None:
        node = doc.get("node") or {}
        name = node.get("nodeName")
        new = _sample(node)
        if isinstance(name, str) and new is not None:
            node_seen.add(name)
            old = self._node_samples.get(name)
            p = rate(old, new) if old is not None else None
            if p is not None:
                node_points[name] = p
            if p is not None or old is None or new.time > old.time:
                self._node_samples[name] = new
        for pod in doc.get("pods") or []:
            ref = pod.get("podRef") or {}
            ns, pname, uid = ref.get("namespace", ""), ref.get("name", ""), ref.get("uid", "")
            points: list[tuple[str, Point]] = []
            complete = True
            for c in pod.get("containers") or []:
                key = (ns, pname, uid, c.get("name", ""))
                s = _sample(c)
                if s is None:
                    complete = False
                    continue
                seen.add(key)
                old = self._container_samples.get(key)
                p = rate(old, s) if old is not None else None
                self._container_samples[key] = s
                if p is None:
                    complete = False
                else:
                    points.append((key[3], p))
            # metrics-server leaves out a pod until every container of it has a rate.
            if complete and points:
                newest = max(points, key=lambda cp: cp[1].time)[1]
                pod_points[(ns, pname)] = PodPoints(newest.time, newest.window, tuple(points))

    async def _fetch(self, node: Obj) -> Obj | None:
        st = node.get("status") or {}
        addr = next((a.get("address") for a in st.get("addresses") or [] if a.get("type") == "InternalIP"), None)
        port = ((st.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
        if not addr or not port or self._session is None:
            return None
        try:
            async with self._session.get(f"https://{addr}:{port}/stats/summary", ssl=self.client_ssl) as r:
                if r.status != 200:
                    return None
                doc = await r.json()
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as e:
            log.debug("metrics: node %s: %s", (node.get("metadata") or {}).get("name"), e)
            return None
        return doc if isinstance(doc, dict) else None


def registry_nodes(registry: Registry) -> NodeLister:
    """A NodeLister reading Nodes through the API server's registry."""
    async def list_nodes() -> list[Obj]:
        """Every Node, read through the registry (the API server's own store access)."""
        items, _rev, _cont, _rem = await registry.list(NODES, "")
        return list(items)
    return NodeLister(list_nodes)
